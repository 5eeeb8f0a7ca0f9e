//! Swap as the engine sees it: [`SwapBackend`], the trait every swap
//! backend implements (a block device, zram; each is a policy file under
//! `policy/swap/`), and [`QueuedDevice`], the device model they share:
//! finite slots, a latency per 4 KiB read or write, and a throughput limit
//! beyond which requests queue.
//!
//! The device serves up to `queue_depth` requests at once (an NVMe drive
//! has many internal channels, a disk has one head), so each 4 KiB request
//! occupies it for max(4 KiB / bandwidth, latency / queue_depth). The device
//! is a fluid queue: requests add that much work, the device works it off
//! at one second per second, and a request waits for the work ahead of it,
//! then completes one latency later. An idle device answers in its latency;
//! a saturated one adds the queue.
//!
//! Reads (swap-ins, which a vCPU waits for) go ahead of queued page-outs.
//! With no I/O scheduler (NVMe, zram) the device's parallel queues serve a
//! read without waiting behind kswapd's batch: it works off reads first
//! and writes with what is left. With mq-deadline (SATA disks and SSDs)
//! reads are preferred but not forever: after two read batches with
//! writes waiting a write batch goes (`writes_starved` = 2), so while both
//! wait, writes get a third of the device. Writers are held back too:
//! reclaim stops queueing page-outs while more than [`WRITE_BACKLOG_NS`]
//! of them wait (the kernel's reclaim_throttle on writeback), so the
//! device never does more than its bandwidth in total.
//!
//! A read is a random 4 KiB access. Page-outs are not: the swap allocator
//! hands out slots in order (per-CPU clusters, mm/swapfile.c), so a
//! reclaim batch of SWAP_CLUSTER_MAX = 32 pages lands in adjacent slots and
//! the block layer merges it into one request, which pays the device's
//! write latency once. On a disk that is one seek per 128 KiB instead of
//! one per page. zram compresses every page on its own, so it merges
//! nothing.
//!
//! Guests play their slices one after another, so requests can reach the
//! device slightly out of time order; a fluid queue, unlike a "busy until"
//! timestamp, charges a request only for the work really queued.
//!
//! In sampled mode one simulated request stands for 1/R real ones, which
//! would reach the device spread out in time, not as one lump. The fluid
//! then tracks sustained overload (the backlog beyond one lump), and the
//! random queueing of a device below saturation comes from the M/D/1 mean
//! wait ρ·s / (2(1 − ρ)) at the reads' measured utilisation ρ (service
//! time s): reads wait only for reads, as in the fluid, so page-outs do
//! not count (with them, a burst of reclaim writing at 90% of the
//! device's bandwidth would add ten service times to every swap-in).

use crate::model::wbt::Wbt;
use crate::units::Span;

/// A page as swap sees it: whose, which, and whether it is all zeros now
/// (its content class is zero and it was not written since).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapPage {
    pub guest: u32,
    pub page: u64,
    pub zero: bool,
}

impl SwapPage {
    /// Guest `guest`'s page `page` in state `state` (its page byte).
    pub fn of(guest: u32, page: u64, state: u8) -> SwapPage {
        use super::page::{Content, WRITTEN};
        SwapPage { guest, page, zero: Content::of(state) == Content::Zero && state & WRITTEN == 0 }
    }
}

/// What a compressed cache in front of the device (zswap) has done, in
/// simulated pages; the counters of `/proc/vmstat` and zswap's debugfs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CacheCounters {
    /// Pages stored in the pool (`zswpout`) and loaded from it (`zswpin`).
    pub stores: u64,
    pub loads: u64,
    /// Pages written back from the pool to the device (`zswpwb`).
    pub written_back: u64,
    /// Stores refused while the pool was full or above the accept
    /// threshold (those pages went to the device).
    pub rejected_full: u64,
    /// Checks that found the pool at its limit (`pool_limit_hit`).
    pub pool_limit_hit: u64,
    /// Zero-filled pages the swap core kept as a bit (`swpout_zero`,
    /// `swpin_zero`).
    pub zero_out: u64,
    pub zero_in: u64,
    /// Pages stored now (`stored_pages`), of them stored as-is because
    /// they do not compress (`stored_incompressible_pages`), and the
    /// pool's size in pages now and at most (`pool_total_size` / 4 KiB).
    pub stored: u64,
    pub stored_incompressible: u64,
    pub pool_pages: u64,
    pub pool_peak_pages: u64,
}

/// A page given back on a fault: how long the faulting vCPU waits, whether
/// its slot stays taken (the page is in the swap cache: see
/// [`super::swapcache`]), and whether it comes back dirty (its slot's copy
/// is gone, as zswap's exclusive loads leave it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapIn {
    pub wait: u64,
    pub kept: bool,
    pub dirty: bool,
}

/// What reclaim, faults and the summary ask of swap. A backend stores the
/// pages reclaim writes, gives them back on a fault (saying how long the
/// vCPU waits), and says what it holds and what host RAM that costs.
pub trait SwapBackend: std::fmt::Debug + Send {
    /// Slots, in simulated pages.
    fn capacity(&self) -> u64;
    /// Pages stored now, and at most so far.
    fn used(&self) -> u64;
    fn peak_used(&self) -> u64;
    /// Pages read back (`pswpin`) and written (`pswpout`) so far.
    fn reads(&self) -> u64;
    fn writes(&self) -> u64;
    fn is_full(&self) -> bool {
        self.used() >= self.capacity()
    }
    /// Store a page reclaim takes at `now`. The writer does not wait for
    /// the device; it returns the CPU time the store itself took on the
    /// writer (zswap compresses on the reclaiming CPU; a device only
    /// queues the write: 0). `has_slot`: the page kept its slot from its
    /// last swap-in (a dirty swap-cache page), which it is written to;
    /// else it takes one.
    fn write(&mut self, now: u64, page: SwapPage, has_slot: bool) -> f64;
    /// Give a page back at `now`. `keep`: the kernel would leave it in the
    /// swap cache with its slot (a read fault, swap at most half full); a
    /// backend whose device is synchronous (zram) frees the slot anyway.
    fn read(&mut self, now: u64, page: SwapPage, keep: bool) -> SwapIn;
    /// Whether pages read back may keep their slots (a block device, and
    /// zswap in front of one); zram frees them at once.
    fn keeps_slots(&self) -> bool {
        false
    }
    /// How long reclaim must wait before it may queue more page-outs (0:
    /// now).
    fn write_throttle(&mut self, now: u64) -> f64;
    /// Take a slot for a page stored when the run begins (a warm start),
    /// without I/O.
    fn occupy(&mut self, page: SwapPage);
    /// Drop a stored page, or the slot a resident page kept, without I/O
    /// (a page the balloon took, one KSM merged).
    fn discard(&mut self, page: SwapPage);
    /// Drop the `pages` slots a dead guest held (its swapped pages and
    /// those its resident pages kept), without I/O.
    fn discard_guest(&mut self, guest: u32, pages: u64);
    /// Frames of host RAM the stored pages take (zram keeps them
    /// compressed in RAM); a block device takes none.
    fn ram_frames(&self) -> u64 {
        0
    }
    /// Whether [`Self::ram_frames`] can be anything but 0.
    fn keeps_pages_in_ram(&self) -> bool {
        false
    }
    /// Pages the backend allocated on guests' behalf since last asked,
    /// with their guests: zswap's write-back reads each entry into a new
    /// page in the swap cache, charged to the entry's memory cgroup until
    /// it is written and freed, so a cgroup at its limit reclaims for it.
    fn take_charges(&mut self) -> Vec<(u32, u64)> {
        Vec::new()
    }
    /// Let work the backend does beside the guests (zswap's shrink
    /// worker) catch up to `now`, after its charges were settled; the
    /// reclaim that settling took, `stall_ns`, was the worker's own time.
    fn tick(&mut self, _now: u64, _stall_ns: f64) {}
    /// The counters of a compressed cache in front of the device, if the
    /// backend has one.
    fn cache(&self) -> Option<CacheCounters> {
        None
    }
}

/// The [`SwapBackend`] methods of a backend that is one [`QueuedDevice`]
/// (its field `$q`): slots, counters and I/O all the device's. A block
/// device and zram are; they differ in how the device is built, whether a
/// page read back keeps its slot (`$keeps`: a block device's does, zram's
/// is freed), and what the stored pages cost in RAM.
#[macro_export]
macro_rules! queued_device_slots {
    ($q:ident, keeps_slots: $keeps:expr) => {
        fn capacity(&self) -> u64 {
            self.$q.capacity
        }
        fn used(&self) -> u64 {
            self.$q.used
        }
        // Asked on every page reclaim looks at: one call, not three.
        fn is_full(&self) -> bool {
            self.$q.is_full()
        }
        fn peak_used(&self) -> u64 {
            self.$q.peak_used
        }
        fn reads(&self) -> u64 {
            self.$q.reads
        }
        fn writes(&self) -> u64 {
            self.$q.writes
        }
        fn write(&mut self, now: u64, _: $crate::model::swap::SwapPage, has_slot: bool) -> f64 {
            self.$q.write(now, !has_slot);
            0.0
        }
        fn read(&mut self, now: u64, _: $crate::model::swap::SwapPage, keep: bool) -> $crate::model::swap::SwapIn {
            let kept = keep && $keeps;
            $crate::model::swap::SwapIn { wait: self.$q.read(now, !kept), kept, dirty: false }
        }
        fn keeps_slots(&self) -> bool {
            $keeps
        }
        fn write_throttle(&mut self, now: u64) -> f64 {
            self.$q.write_throttle(now)
        }
        fn occupy(&mut self, _: $crate::model::swap::SwapPage) {
            self.$q.occupy(1);
        }
        fn discard(&mut self, _: $crate::model::swap::SwapPage) {
            self.$q.discard(1);
        }
        fn discard_guest(&mut self, _: u32, pages: u64) {
            self.$q.discard(pages);
        }
    };
}
pub use queued_device_slots;

/// No swap: nothing can be written.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSwap;

impl SwapBackend for NoSwap {
    fn capacity(&self) -> u64 {
        0
    }
    fn used(&self) -> u64 {
        0
    }
    fn peak_used(&self) -> u64 {
        0
    }
    fn reads(&self) -> u64 {
        0
    }
    fn writes(&self) -> u64 {
        0
    }
    fn write(&mut self, _: u64, _: SwapPage, _: bool) -> f64 {
        unreachable!("nothing is written to a host without swap (is_full holds)")
    }
    fn read(&mut self, _: u64, _: SwapPage, _: bool) -> SwapIn {
        unreachable!("nothing was written, so nothing is read")
    }
    fn write_throttle(&mut self, _: u64) -> f64 {
        0.0
    }
    fn occupy(&mut self, _: SwapPage) {
        unreachable!("no swap to start pages on (is_full holds)")
    }
    fn discard(&mut self, _: SwapPage) {
        unreachable!("no swap holds pages")
    }
    fn discard_guest(&mut self, _: u32, pages: u64) {
        assert_eq!(pages, 0, "no swap holds pages");
    }
}

/// How the device orders swap-ins against page-outs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoScheduler {
    /// No scheduler, the kernel's default for NVMe (and zram, which is no
    /// queue at all): the device's many parallel queues serve a swap-in
    /// without waiting behind queued page-outs.
    None,
    /// mq-deadline, the kernel's default for single-queue (SATA, SAS)
    /// devices: reads are preferred, but after `writes_starved` = 2 read
    /// batches with writes waiting a write batch goes
    /// (Documentation/block/deadline-iosched.rst), so page-outs get a
    /// third of a busy device.
    MqDeadline,
}

/// A device's figures: what a preset gives and a scenario may adjust.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Figures {
    /// Time to read one 4 KiB page when the device is idle.
    pub read_latency: Span,
    /// Time to write one 4 KiB page when the device is idle.
    pub write_latency: Span,
    /// Sustained bytes per second; requests beyond it queue.
    pub bandwidth_bytes_per_s: u64,
    /// Requests the device serves at once (1 for a disk's single head).
    pub queue_depth: u32,
    /// The block layer's I/O scheduler (`/sys/block/DEV/queue/scheduler`).
    pub scheduler: IoScheduler,
}

/// Reclaim stops queueing page-outs while more than this much device time
/// of them waits. The kernel throttles reclaimers on writeback for up to
/// HZ/10 = 100 ms at a time (mm/vmscan.c, reclaim_throttle with
/// VMSCAN_THROTTLE_WRITEBACK); we hold the queue to 50 ms.
pub const WRITE_BACKLOG_NS: f64 = 50e6;

/// Pages reclaim takes in one batch (SWAP_CLUSTER_MAX in mm/vmscan.c):
/// direct reclaim's target, the pages a block device gets as one merged
/// write, and the writeback a throttled reclaimer waits for.
pub const SWAP_CLUSTER_MAX: u64 = 32;

/// The share of a busy device mq-deadline gives waiting writes: one write
/// batch after every `writes_starved` = 2 read batches.
pub const MQ_DEADLINE_WRITE_SHARE: f64 = 1.0 / 3.0;

/// The window over which sampled mode measures device utilisation.
pub const UTILISATION_WINDOW_NS: f64 = 10e6;

/// The device model: a fluid queue with slots (see the module's text).
#[derive(Debug, Clone)]
pub struct QueuedDevice {
    /// Slots in simulated pages.
    pub capacity: u64,
    pub used: u64,
    pub peak_used: u64,
    read_ns: u64,
    write_ns: u64,
    /// Device time one simulated page's read takes (scaled by 1/R in
    /// sampled mode, since a simulated page stands for 1/R real pages).
    occupancy_ns: f64,
    /// Device time of one real read (equal to `occupancy_ns` when exact).
    real_occupancy_ns: f64,
    /// The same for a page-out, written with its batch.
    write_occupancy_ns: f64,
    real_write_occupancy_ns: f64,
    /// The device's share that waiting writes get while reads wait too (0:
    /// reads always first).
    write_share: f64,
    /// Recent reads arrived (ns of device time), decaying with
    /// [`UTILISATION_WINDOW_NS`]: the reads' utilisation = recent / window.
    recent_work: f64,
    sampled: bool,
    /// Queued work (ns of device time) for reads and writes, as of `clock`.
    read_work: f64,
    write_work: f64,
    clock: f64,
    pub reads: u64,
    pub writes: u64,
    /// Writeback throttling, where a writer it holds uses the device
    /// ([`QueuedDevice::with_writeback_throttling`]): without one its
    /// windows would be kept for nothing on every read and write.
    wbt: Option<Wbt>,
    /// Device time of one unmerged page-out (a write-back to a random
    /// slot), per simulated page; and real pages per simulated one.
    unmerged_write_occupancy_ns: f64,
    real_per_page: f64,
}

impl QueuedDevice {
    /// A device of `size_bytes` with `figures`, at the run's sampling
    /// rate. `merge_writes`: the block layer merges a reclaim batch of
    /// page-outs into one request (a block device; zram compresses each
    /// page on its own and merges nothing).
    pub fn new(figures: &Figures, size_bytes: u64, merge_writes: bool, sample_rate: f64) -> QueuedDevice {
        let s = figures;
        let per_page_bw = 4096.0 * 1e9 / s.bandwidth_bytes_per_s as f64;
        let parallel = f64::from(s.queue_depth.max(1));
        let occupancy = per_page_bw.max(s.read_latency.nanos() as f64 / parallel);
        let merge = if merge_writes { SWAP_CLUSTER_MAX as f64 } else { 1.0 };
        let write_occupancy = per_page_bw.max(s.write_latency.nanos() as f64 / (parallel * merge));
        let unmerged = per_page_bw.max(s.write_latency.nanos() as f64 / parallel);
        QueuedDevice {
            capacity: (size_bytes as f64 / 4096.0 * sample_rate).floor() as u64,
            used: 0,
            peak_used: 0,
            read_ns: s.read_latency.nanos(),
            write_ns: s.write_latency.nanos(),
            occupancy_ns: occupancy / sample_rate,
            real_occupancy_ns: occupancy,
            write_occupancy_ns: write_occupancy / sample_rate,
            real_write_occupancy_ns: write_occupancy,
            write_share: match s.scheduler {
                IoScheduler::None => 0.0,
                IoScheduler::MqDeadline => MQ_DEADLINE_WRITE_SHARE,
            },
            recent_work: 0.0,
            sampled: sample_rate < 1.0,
            read_work: 0.0,
            write_work: 0.0,
            clock: 0.0,
            reads: 0,
            writes: 0,
            wbt: None,
            unmerged_write_occupancy_ns: unmerged / sample_rate,
            real_per_page: 1.0 / sample_rate,
        }
    }

    /// The block device's writeback throttling (blk-wbt: a request queue;
    /// zram has none), for a writer it holds: zswap's write-backs. A disk
    /// of one request at a time is taken as rotational (its latency target
    /// 75 ms, else 2 ms).
    pub fn with_writeback_throttling(mut self, figures: &Figures) -> QueuedDevice {
        self.wbt = Some(Wbt::new(figures.queue_depth, figures.queue_depth == 1));
        self
    }

    /// Count a page-out, taking a slot if `new_slot`.
    #[inline]
    fn count_write(&mut self, new_slot: bool) {
        if new_slot {
            self.used += 1;
            self.peak_used = self.peak_used.max(self.used);
        }
        self.writes += 1;
    }

    pub fn is_full(&self) -> bool {
        self.used >= self.capacity
    }

    /// Work off the queue up to `now` (reads first, or shared with waiting
    /// writes under mq-deadline). A request stamped before the device's
    /// clock is taken as arriving now.
    #[inline]
    fn advance(&mut self, now: u64) {
        let t = now as f64;
        if t > self.clock {
            let mut elapsed = t - self.clock;
            if self.sampled {
                self.recent_work *= (-elapsed / UTILISATION_WINDOW_NS).exp();
            }
            let ws = self.write_share;
            if ws > 0.0 && self.read_work > 0.0 && self.write_work > 0.0 {
                // Both wait: shared until one runs dry (or time runs out).
                let both = elapsed.min(self.read_work / (1.0 - ws)).min(self.write_work / ws);
                self.read_work = (self.read_work - both * (1.0 - ws)).max(0.0);
                self.write_work = (self.write_work - both * ws).max(0.0);
                elapsed -= both;
            }
            let on_reads = elapsed.min(self.read_work);
            self.read_work -= on_reads;
            self.write_work = (self.write_work - (elapsed - on_reads)).max(0.0);
            self.clock = t;
        }
    }

    /// Queue a page-out at `now`, taking a slot if `new_slot` (else the
    /// page has one from its last swap-in). The writer does not wait.
    #[inline]
    pub fn write(&mut self, now: u64, new_slot: bool) {
        self.advance(now);
        self.write_work += self.write_occupancy_ns;
        if let Some(w) = self.wbt.as_mut() {
            w.untracked_write(now as f64);
        }
        self.count_write(new_slot);
    }

    /// Read a page back at `now`, freeing its slot if `free_slot`; returns
    /// how long the faulting vCPU waits for it.
    #[inline]
    pub fn read(&mut self, now: u64, free_slot: bool) -> u64 {
        self.advance(now);
        // A request stamped before the device's clock (another guest's
        // slice ran ahead) finds the queue as of the clock; the device
        // worked through `gap` of it since the request's own time, and
        // what it still holds beyond that came after the request.
        let gap = (self.clock - now as f64).max(0.0);
        let queued = (self.read_work - gap).max(0.0);
        // Under mq-deadline, reads ahead of this one move at 1 − share of
        // the device while writes wait, and at full speed once they are done.
        let ws = self.write_share;
        let mut wait = if ws > 0.0 && self.write_work > 0.0 {
            (queued / (1.0 - ws)).min(queued + self.write_work)
        } else {
            queued
        };
        if self.sampled {
            let lump = self.occupancy_ns - self.real_occupancy_ns;
            let rho = (self.recent_work / UTILISATION_WINDOW_NS).min(0.99);
            wait = (wait - lump).max(0.0) + rho * self.real_occupancy_ns / (2.0 * (1.0 - rho));
        }
        self.read_work += self.occupancy_ns;
        self.recent_work += self.occupancy_ns;
        if let Some(w) = self.wbt.as_mut() {
            w.read(now as f64, wait + self.read_ns as f64);
        }
        if free_slot {
            self.used -= 1;
        }
        self.reads += 1;
        wait as u64 + self.read_ns
    }

    /// An unmerged page-out by a writer writeback throttling holds (zswap's
    /// write-back of an entry to its own slot), which wants to write at
    /// `now`: returns when it could issue it (it waits for that), taking a
    /// slot if `new_slot`.
    pub fn write_throttled(&mut self, now: f64, new_slot: bool) -> f64 {
        let at = self.wbt.as_mut().map_or(now, |w| w.admit(now));
        self.advance(at as u64);
        // Done once the work queued ahead of it and its own write are.
        let ahead = self.read_work + self.write_work;
        self.write_work += self.unmerged_write_occupancy_ns;
        self.count_write(new_slot);
        if let Some(w) = self.wbt.as_mut() {
            w.issue(at, at + ahead, self.write_ns as f64, self.real_per_page);
        }
        at
    }

    /// How long before the queued page-outs drop under the backlog limit
    /// (0 when reclaim may write now).
    pub fn write_throttle(&mut self, now: u64) -> f64 {
        self.advance(now);
        if self.write_work <= WRITE_BACKLOG_NS {
            return 0.0;
        }
        // A throttled reclaimer sleeps until a batch of writeback
        // (SWAP_CLUSTER_MAX = 32 real pages) has completed, as the kernel
        // wakes reclaimers on writeback progress, so it then queues a batch.
        // In sampled mode that is at least one simulated page: 32 simulated
        // pages (16 384 real ones at 1/512) let the backlog sag between
        // wake-ups and read the large host's fault ratios 20% low.
        let batch =
            (SWAP_CLUSTER_MAX as f64 * self.real_write_occupancy_ns).max(self.write_occupancy_ns).min(WRITE_BACKLOG_NS);
        // A caller whose clock is behind the device's also waits for the
        // difference.
        let behind = (self.clock - now as f64).max(0.0);
        self.write_work - (WRITE_BACKLOG_NS - batch) + behind
    }

    /// Take `pages` slots for pages already on the device when the run
    /// begins (a warm start), without I/O.
    pub fn occupy(&mut self, pages: u64) {
        self.used += pages;
        self.peak_used = self.peak_used.max(self.used);
    }

    /// Drop the slots of a dead guest without I/O.
    pub fn discard(&mut self, pages: u64) {
        self.used -= pages;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Span;

    fn nvme() -> Figures {
        Figures {
            read_latency: Span(80_000),
            write_latency: Span(20_000),
            bandwidth_bytes_per_s: 2 << 30,
            queue_depth: 64,
            scheduler: IoScheduler::None,
        }
    }

    #[test]
    fn idle_device_answers_in_its_latency() {
        let mut d = QueuedDevice::new(&nvme(), 1 << 30, true, 1.0);
        d.write(0, true);
        // The write occupies the device for 4096 B / 2 GiB/s = 1907 ns; a
        // read 10 us later finds it idle.
        assert_eq!(d.read(10_000, true), 80_000);
    }

    #[test]
    fn reads_queue_behind_reads() {
        let mut d = QueuedDevice::new(&nvme(), 1 << 30, true, 1.0);
        for _ in 0..1000 {
            d.write(0, true);
        }
        for _ in 0..999 {
            d.read(0, true);
        }
        // Each 4 KiB takes 4096 B / 2 GiB/s = 1907.35 ns of the device; the
        // 1000th read at time 0 starts after 999 of them, then takes 80 us.
        let wait = d.read(0, true);
        assert!((1_985_440..=1_985_450).contains(&wait), "{wait}");
    }

    #[test]
    fn reads_pass_queued_writes_and_writers_are_throttled() {
        let mut d = QueuedDevice::new(&nvme(), 1 << 30, true, 1.0);
        for _ in 0..100_001 {
            d.write(0, true);
        }
        // Reads go first: 190.7 ms of queued page-outs do not delay a read.
        assert_eq!(d.read(0, true), 80_000);
        // 100 001 × 1907.3486 ns = 190.737 ms queued: writers must wait
        // until a batch of 32 pages (61.035 us) is below the 50 ms limit:
        // 140.737 + 0.061 = 140.798 ms.
        let t = d.write_throttle(0);
        assert!((t - 140_797_805.0).abs() < 1_000.0, "{t}");
        // The device works off the read (1.9 us) first, then the writes;
        // a little after that writers may go on.
        assert!(d.write_throttle(140_800_000) < 1.0);
    }

    #[test]
    fn a_disk_serves_one_request_at_a_time() {
        let hdd = Figures {
            read_latency: Span(12_700_000),
            write_latency: Span(12_700_000),
            bandwidth_bytes_per_s: 150 << 20,
            queue_depth: 1,
            ..nvme()
        };
        let mut d = QueuedDevice::new(&hdd, 1 << 30, true, 1.0);
        d.write(0, true);
        d.write(0, true);
        // Two queued page-outs (a merged write's seek, 12.7 ms / 32 each)
        // are under the backlog: reads pass them.
        d.read(0, true);
        // One head: a second read waits for the first 12.7 ms one.
        assert_eq!(d.read(0, true), 25_400_000);
    }

    fn hdd(scheduler: IoScheduler) -> Figures {
        Figures {
            read_latency: Span(12_700_000),
            write_latency: Span(12_700_000),
            bandwidth_bytes_per_s: 150 << 20,
            queue_depth: 1,
            scheduler,
        }
    }

    #[test]
    fn a_disk_writes_a_reclaim_batch_as_one_merged_request() {
        // Adjacent swap slots merge into one request per SWAP_CLUSTER_MAX =
        // 32 pages: one 12.7 ms seek per 32 pages, 396.875 us a page (the
        // 150 MiB/s transfer, 26 us a page, is the smaller bound).
        let mut d = QueuedDevice::new(&hdd(IoScheduler::MqDeadline), 1 << 30, true, 1.0);
        for _ in 0..32 {
            d.write(0, true);
        }
        // A read at 12.7 ms finds the writes done (32 × 396.875 us =
        // 12.7 ms) and answers in its latency.
        assert_eq!(d.read(12_700_000, true), 12_700_000);
    }

    #[test]
    fn mq_deadline_gives_waiting_writes_a_third_of_the_disk() {
        // writes_starved = 2 (Documentation/block/deadline-iosched.rst):
        // one write batch per two read batches while both wait.
        let mut d = QueuedDevice::new(&hdd(IoScheduler::MqDeadline), 1 << 30, true, 1.0);
        for _ in 0..1000 {
            d.write(0, true);
        }
        // 1000 × 396.875 us = 396.875 ms of page-outs queued; two reads
        // (25.4 ms) arrive. The second waits for the first at two thirds
        // of the disk: 12.7 / (2/3) = 19.05 ms, then its own 12.7 ms.
        d.read(0, true);
        let second = d.read(0, true);
        assert!((second as i64 - (19_050_000 + 12_700_000)).abs() <= 1, "{second}");
        // After 38.1 ms both reads are done and writes had a third:
        // 12.7 ms of them. With no scheduler reads would have taken it all.
        let left = d.write_throttle(38_100_000) + (WRITE_BACKLOG_NS - 32.0 * 396_875.0);
        assert!((left - (396_875_000.0 - 12_700_000.0)).abs() < 1_000.0, "{left}");
        let mut none = QueuedDevice::new(&hdd(IoScheduler::None), 1 << 30, true, 1.0);
        for _ in 0..1000 {
            none.write(0, true);
        }
        none.read(0, true);
        assert_eq!(none.read(0, true), 25_400_000, "no scheduler: reads first, the second waits 12.7 ms");
    }
}
