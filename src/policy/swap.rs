//! The swap device: finite slots, a latency per 4 KiB read or write, and a
//! throughput limit beyond which requests queue.
//!
//! The device serves up to `queue_depth` requests at once (an NVMe drive
//! has many internal channels, a disk has one head), so each 4 KiB request
//! occupies it for max(4 KiB / bandwidth, latency / queue_depth). The device
//! is a fluid queue: requests add that much work, the device works it off
//! at one second per second, and a request waits for the work ahead of it,
//! then completes one latency later. An idle device answers in its latency;
//! a saturated one adds the queue.
//!
//! Reads (swap-ins, which a vCPU waits for) go ahead of queued page-outs:
//! the block layer prefers reads (mq-deadline) and NVMe arbitrates
//! round-robin between per-CPU submission queues, so a fault does not wait
//! behind kswapd's whole batch. The device works off reads first; once more
//! than [`WRITE_BACKLOG_NS`] of writes are queued, reads wait for the
//! excess, so the device never does more than its bandwidth in total.
//!
//! Guests play their slices one after another, so requests can reach the
//! device slightly out of time order; a fluid queue, unlike a "busy until"
//! timestamp, charges a request only for the work really queued.

use crate::scenario::Swap;

/// Queued page-outs beyond this much device time delay reads too. The
/// kernel throttles reclaim writeback at about this horizon (vmscan's
/// congestion waits are HZ/10 = 100 ms; dirty throttling aims at 200 ms of
/// writeback); we take 50 ms.
pub const WRITE_BACKLOG_NS: f64 = 50e6;

#[derive(Debug, Clone)]
pub struct SwapDevice {
    /// Slots in simulated pages.
    pub capacity: u64,
    pub used: u64,
    pub peak_used: u64,
    read_ns: u64,
    write_ns: u64,
    /// Device time one simulated page's I/O takes (scaled by 1/R in sampled
    /// mode, since a simulated page stands for 1/R real pages).
    occupancy_ns: f64,
    /// Queued work (ns of device time) for reads and writes, as of `clock`.
    read_work: f64,
    write_work: f64,
    clock: f64,
    /// Host RAM each stored page costs (zram keeps compressed pages in RAM).
    pub ram_per_page: f64,
    pub reads: u64,
    pub writes: u64,
}

impl SwapDevice {
    pub fn new(spec: Option<&Swap>, sample_rate: f64) -> SwapDevice {
        let Some(s) = spec else {
            return SwapDevice {
                capacity: 0,
                used: 0,
                peak_used: 0,
                read_ns: 0,
                write_ns: 0,
                occupancy_ns: 0.0,
                read_work: 0.0,
                write_work: 0.0,
                clock: 0.0,
                ram_per_page: 0.0,
                reads: 0,
                writes: 0,
            };
        };
        let per_page_bw = 4096.0 * 1e9 / s.bandwidth_bytes_per_s as f64;
        let parallel = f64::from(s.queue_depth.max(1));
        let occupancy = per_page_bw.max(s.read_latency.nanos().max(s.write_latency.nanos()) as f64 / parallel);
        SwapDevice {
            capacity: (s.size.bytes() as f64 / 4096.0 * sample_rate).floor() as u64,
            used: 0,
            peak_used: 0,
            read_ns: s.read_latency.nanos(),
            write_ns: s.write_latency.nanos(),
            occupancy_ns: occupancy / sample_rate,
            read_work: 0.0,
            write_work: 0.0,
            clock: 0.0,
            ram_per_page: s.ram_per_page,
            reads: 0,
            writes: 0,
        }
    }

    pub fn is_full(&self) -> bool {
        self.used >= self.capacity
    }

    /// Work off the queue up to `now` (reads first). A request stamped
    /// before the device's clock is taken as arriving now.
    #[inline]
    fn advance(&mut self, now: u64) {
        let t = now as f64;
        if t > self.clock {
            let elapsed = t - self.clock;
            let on_reads = elapsed.min(self.read_work);
            self.read_work -= on_reads;
            self.write_work = (self.write_work - (elapsed - on_reads)).max(0.0);
            self.clock = t;
        }
    }

    /// Queue a page-out at `now` and take a slot. The writer does not wait.
    #[inline]
    pub fn write(&mut self, now: u64) {
        self.advance(now);
        self.write_work += self.occupancy_ns;
        self.used += 1;
        self.peak_used = self.peak_used.max(self.used);
        self.writes += 1;
        let _ = self.write_ns;
    }

    /// Read a page back at `now`, freeing its slot; returns how long the
    /// faulting vCPU waits for it.
    #[inline]
    pub fn read(&mut self, now: u64) -> u64 {
        self.advance(now);
        let wait = self.read_work + (self.write_work - WRITE_BACKLOG_NS).max(0.0);
        self.read_work += self.occupancy_ns;
        self.used -= 1;
        self.reads += 1;
        wait as u64 + self.read_ns
    }

    /// Drop the slots of a dead guest without I/O.
    pub fn discard(&mut self, pages: u64) {
        self.used -= pages;
    }

    /// Frames of host RAM the stored pages occupy (zram), rounded up.
    pub fn ram_frames(&self) -> u64 {
        (self.used as f64 * self.ram_per_page).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{ByteSize, Span};

    fn nvme() -> Swap {
        Swap {
            size: ByteSize::gib(1),
            device: "nvme".into(),
            read_latency: Span(80_000),
            write_latency: Span(20_000),
            bandwidth_bytes_per_s: 2 << 30,
            queue_depth: 64,
            ram_per_page: 0.0,
        }
    }

    #[test]
    fn idle_device_answers_in_its_latency() {
        let mut d = SwapDevice::new(Some(&nvme()), 1.0);
        d.write(0);
        // The write occupies the device for 4096 B / 2 GiB/s = 1907 ns; a
        // read 10 us later finds it idle.
        assert_eq!(d.read(10_000), 80_000);
    }

    #[test]
    fn reads_queue_behind_reads() {
        let mut d = SwapDevice::new(Some(&nvme()), 1.0);
        for _ in 0..1000 {
            d.write(0);
        }
        for _ in 0..999 {
            d.read(0);
        }
        // Each 4 KiB takes 4096 B / 2 GiB/s = 1907.35 ns of the device; the
        // 1000th read at time 0 starts after 999 of them, then takes 80 us.
        let wait = d.read(0);
        assert!((1_985_440..=1_985_450).contains(&wait), "{wait}");
    }

    #[test]
    fn reads_pass_a_short_write_queue_but_not_a_long_one() {
        let mut d = SwapDevice::new(Some(&nvme()), 1.0);
        for _ in 0..1000 {
            d.write(0);
        }
        // 1.9 ms of queued page-outs is under the 50 ms backlog: the read
        // goes first and sees only its own latency.
        assert_eq!(d.read(0), 80_000);
        let mut d = SwapDevice::new(Some(&nvme()), 1.0);
        for _ in 0..100_001 {
            d.write(0);
        }
        // 100 001 × 1907.3486 ns = 190.737 ms queued: the read waits for
        // the 140.737 ms beyond the 50 ms backlog, then its 80 us latency.
        let wait = d.read(0);
        assert!((140_816_000..=140_817_500).contains(&wait), "{wait}");
    }

    #[test]
    fn a_disk_serves_one_request_at_a_time() {
        let hdd = Swap {
            read_latency: Span(12_700_000),
            write_latency: Span(12_700_000),
            bandwidth_bytes_per_s: 150 << 20,
            queue_depth: 1,
            ..nvme()
        };
        let mut d = SwapDevice::new(Some(&hdd), 1.0);
        d.write(0);
        d.write(0);
        // Two queued page-outs (25.4 ms) are under the backlog: reads pass them.
        d.read(0);
        // One head: a second read waits for the first 12.7 ms one.
        assert_eq!(d.read(0), 25_400_000);
    }
}
