//! zram as swap: a block device in RAM that compresses each page on its
//! own (Documentation/admin-guide/blockdev/zram.rst). A page-out costs a
//! compression on the reclaiming CPU and a swap-in a decompression on the
//! faulting one; nothing is merged, and the compressed pages stay in host
//! RAM, `ram_per_page` of a frame each.

use serde::Serialize;

use crate::model::swap::{Figures, IoScheduler, QueuedDevice, SwapBackend};
use crate::units::Span;

/// zram's knobs: its figures (each adjustable) and the RAM a stored page
/// keeps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Knobs {
    /// Some figure differs from the preset's.
    pub adjusted: bool,
    #[serde(flatten)]
    pub figures: Figures,
    /// Host RAM each stored page keeps: 1 / the compression ratio.
    pub ram_per_page: f64,
}

impl Knobs {
    pub fn label(&self) -> &'static str {
        if self.adjusted { "zram (adjusted)" } else { "zram" }
    }
}

// lzo-rle decompresses a 4 KiB page in about 3 us and compresses in about
// 10 us on one core; the work runs on the faulting CPU (queue depth 2 on a
// 2-core host), and compressed pages stay in RAM at a typical 2.5-3x ratio
// (zram.rst reports orig_data_size/compr_data_size; 0.35 RAM per page).
// zram has no I/O queue, so no scheduler.
pub const PRESET: Figures = Figures {
    read_latency: Span(3_000),
    write_latency: Span(10_000),
    bandwidth_bytes_per_s: 1 << 30,
    queue_depth: 2,
    scheduler: IoScheduler::None,
};
pub const RAM_PER_PAGE: f64 = 0.35;

#[derive(Debug, Clone)]
pub struct Zram {
    q: QueuedDevice,
    ram_per_page: f64,
}

impl Zram {
    pub fn new(knobs: &Knobs, size_bytes: u64, sample_rate: f64) -> Zram {
        // Each page is compressed on its own: no merged writes.
        Zram { q: QueuedDevice::new(&knobs.figures, size_bytes, false, sample_rate), ram_per_page: knobs.ram_per_page }
    }
}

impl SwapBackend for Zram {
    crate::model::swap::queued_device_slots!(q, keeps_slots: false);
    /// The stored pages' compressed bytes, in frames, rounded up.
    fn ram_frames(&self) -> u64 {
        (self.q.used as f64 * self.ram_per_page).ceil() as u64
    }
    fn keeps_pages_in_ram(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::swap::SwapPage;

    const PAGE: SwapPage = SwapPage { guest: 0, page: 0, zero: false };

    fn zram() -> Zram {
        Zram::new(&Knobs { adjusted: false, figures: PRESET, ram_per_page: RAM_PER_PAGE }, 1 << 30, 1.0)
    }

    #[test]
    fn stored_pages_keep_their_compressed_size_in_ram() {
        // 1000 pages at 0.35 of a frame each: 350 frames.
        let mut z = zram();
        for _ in 0..1000 {
            z.write(0, PAGE, false);
        }
        assert_eq!(z.ram_frames(), 350);
        // One more: 350.35, rounded up.
        z.write(0, PAGE, false);
        assert_eq!(z.ram_frames(), 351);
    }

    #[test]
    fn every_page_out_is_its_own_compression() {
        // No merging: each page-out holds the device for max(4 KiB at
        // 1 GiB/s = 3.81 us, 10 us / 2 queues) = 5 us, so 12 000 of them
        // queue 60 ms, past the 50 ms writeback limit: reclaim waits. A
        // block device merging batches of 32 would queue 45.8 ms (the
        // bandwidth bound) and go on.
        let mut z = zram();
        for _ in 0..12_000 {
            z.write(0, PAGE, false);
        }
        assert!(z.write_throttle(0) > 9.9e6, "{}", z.write_throttle(0));
        // A swap-in passes the queued page-outs: 3 us.
        assert_eq!(z.read(0, PAGE, true).wait, 3_000);
    }
}
