//! Host memory: ordinary frames, the hugetlb pool, swap, and the guests.

use super::frames::Frames;
use super::guest::Guest;
use super::ksmpage::KsmPages;
use super::swap::SwapBackend;

/// The free-memory watermarks kswapd works between, in simulated frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub min: u64,
    pub low: u64,
    pub high: u64,
}

impl Watermarks {
    /// The kernel's defaults for a machine with `ram_bytes` of RAM
    /// (mm/page_alloc.c): min_free_kbytes = √(16 × RAM in KiB), clamped to
    /// 128 KiB..256 MiB; low = min + max(min/4, RAM × watermark_scale_factor
    /// / 10000) and high = min + twice that gap, with the default
    /// watermark_scale_factor of 10. Scaled by the sampling rate.
    pub fn kernel_default(ram_bytes: u64, sample_rate: f64) -> Watermarks {
        let ram_kib = ram_bytes as f64 / 1024.0;
        let min_kib = (16.0 * ram_kib).sqrt().clamp(128.0, 262_144.0);
        let gap_kib = (min_kib / 4.0).max(ram_kib * 10.0 / 10_000.0);
        let frames = |kib: f64| (kib / 4.0 * sample_rate).ceil() as u64;
        Watermarks { min: frames(min_kib), low: frames(min_kib + gap_kib), high: frames(min_kib + 2.0 * gap_kib) }
    }
}

/// A hugetlb pool: `total` pages of `page_bytes`, `free` not reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub page_bytes: u64,
    pub total: u64,
    pub free: u64,
}

/// Everything the policies act on.
#[derive(Debug)]
pub struct Memory {
    /// Ordinary memory: usable RAM minus the hugetlb pool.
    pub frames: Frames,
    pub watermarks: Watermarks,
    /// The hugetlb pools, one per page size.
    pub pools: Vec<Pool>,
    pub swap: Box<dyn SwapBackend>,
    /// Frames held by compressed pages in zram.
    pub zram_frames: u64,
    pub guests: Vec<Guest>,
    /// Peak frames in use and the lowest free count seen.
    pub peak_used: u64,
    pub min_free: u64,
    /// Transparent huge pages split into 4 KiB pages so far, by reclaim,
    /// ksmd or a balloon (`thp_split_page`; each was PMD-mapped, so each
    /// is a `thp_split_pmd` too).
    pub thp_splits: u64,
    /// KSM's pages, each a frame on the LRU with its sharers listed.
    pub ksm: KsmPages,
}

impl Memory {
    /// `frames` of ordinary memory holding `guests`' pages, below
    /// `watermarks`, beside the hugetlb `pools`, swapping to `swap`;
    /// nothing in zram, split or merged yet.
    pub fn new(
        frames: Frames,
        watermarks: Watermarks,
        pools: Vec<Pool>,
        swap: Box<dyn SwapBackend>,
        guests: Vec<Guest>,
    ) -> Memory {
        let min_free = frames.free();
        Memory {
            frames,
            watermarks,
            pools,
            swap,
            zram_frames: 0,
            guests,
            peak_used: 0,
            min_free,
            thp_splits: 0,
            ksm: KsmPages::default(),
        }
    }

    /// Bring the frames held by zram in line with what it stores.
    pub fn sync_zram(&mut self) {
        let want = self.swap.ram_frames();
        if want != self.zram_frames {
            let delta = want as i64 - self.zram_frames as i64;
            // zram can only grow into free memory; the rest waits for the
            // next page-out to free a frame (the kernel would fail the
            // write and keep the page).
            let delta = delta.min(self.frames.free() as i64);
            self.frames.adjust_unslotted(delta);
            self.zram_frames = (self.zram_frames as i64 + delta) as u64;
        }
    }

    /// Record a new high of used frames / low of free frames.
    #[inline]
    pub fn note_usage(&mut self) {
        let used = self.frames.used();
        if used > self.peak_used {
            self.peak_used = used;
        }
        let free = self.frames.free();
        if free < self.min_free {
            self.min_free = free;
        }
    }

    /// Ordinary frames a guest holds: its 4 KiB pages and the pages of its
    /// THPs (each simulated page is one frame). Hugetlb pages are pool
    /// memory, not frames.
    pub fn guest_frames(&self, g: usize) -> u64 {
        let guest = &self.guests[g];
        guest.resident + guest.huge - guest.pool_mapped
    }

    /// Bytes of the hugetlb pools, and of them reserved by guests.
    pub fn pool_bytes(&self) -> (u64, u64) {
        self.pools.iter().fold((0, 0), |(t, u), p| (t + p.total * p.page_bytes, u + (p.total - p.free) * p.page_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_follow_the_kernel_formula() {
        // 8 GiB: min = sqrt(16 × 8388608) = 11585 KiB; gap = max(2896,
        // 8389) = 8389 KiB; low = 19974 KiB, high = 28363 KiB.
        let w = Watermarks::kernel_default(8 << 30, 1.0);
        assert_eq!(w.min, (11_585.24_f64 / 4.0).ceil() as u64);
        assert_eq!(w.low, ((11_585.24 + 8_388.608) / 4.0_f64).ceil() as u64);
        assert_eq!(w.high, ((11_585.24 + 2.0 * 8_388.608) / 4.0_f64).ceil() as u64);
    }
}
