//! What each memory touch costs: DRAM, address translation (TLB reach, 2-D
//! EPT walks or shadow paging, TLB flushes without VPID, TPR exits without
//! FlexPriority) and page faults.
//!
//! Every default below cites where its figure comes from. A calibration file
//! (`overcommit calibrate`) replaces the fault, copy and DRAM/TLB figures
//! with this host's own.

pub mod calibration;
pub mod che;

use serde::Serialize;

/// The CPU's virtualisation assists, as KVM has them enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CpuFeatures {
    pub ept: bool,
    pub vpid: bool,
    pub flexpriority: bool,
}

use crate::model::workload::Pattern;

const GIB: f64 = (1u64 << 30) as f64;

/// The cost figures the engine uses, in nanoseconds (and the balloon's
/// pace in bytes per second).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Costs {
    /// A load that misses the caches and goes to DRAM. Intel Memory Latency
    /// Checker reports 80–100 ns idle latency on two-socket Xeon servers;
    /// 90 ns is the middle.
    pub dram_ns: f64,
    /// One page-walk memory reference. Most walk references hit the page
    /// walk caches or L2/L3 (Bhargava et al., ASPLOS 2008, "Accelerating
    /// two-dimensional page walks for virtualized systems", report nested
    /// walks of up to 24 references costing 2–4× a native walk); 8 ns per
    /// reference (about 25 cycles, an L2/L3 hit) makes a native 4-level walk
    /// 32 ns and a full 2-D walk 192 ns.
    pub walk_ref_ns: f64,
    /// Second-level TLB entries for 4 KiB and 2 MiB translations (Intel
    /// Skylake: 1536-entry shared STLB, Intel 64 and IA-32 Architectures
    /// Optimization Reference Manual, table 2-9).
    pub tlb_entries: u64,
    /// STLB entries for 1 GiB translations (Skylake: 16).
    pub tlb_entries_1g: u64,
    /// A VM exit and re-entry with a light handler: 1000–1500 cycles on
    /// recent Intel cores (Agesen et al., "Software techniques for avoiding
    /// hardware virtualization exits", USENIX ATC 2012, table 1); 0.5 us.
    pub vm_exit_ns: f64,
    /// A shadow page-table update on top of the exit that traps it: KVM's
    /// mmu sync work, about 1.5 us (Agesen et al., ATC 2012; shadow faults
    /// cost "several thousand cycles").
    pub shadow_update_ns: f64,
    /// First touch of a 4 KiB page in a guest: the EPT violation exit plus the
    /// host's anonymous fault and zeroing; about 2.5 us (a native fault is
    /// about 1 us with zeroing at ~10 GB/s; the exit and EPT entry fill add
    /// the rest). Calibration replaces the host-fault part.
    pub fault_4k_ns: f64,
    /// First touch of a 2 MiB THP: zeroing 2 MiB at ~10 GB/s is ~200 us, and
    /// the fault path adds a little; 220 us.
    pub fault_thp_ns: f64,
    /// First touch of a 2 MiB hugetlb page: like THP without compaction; 210 us.
    pub fault_hugetlb_2m_ns: f64,
    /// First touch of a 1 GiB hugetlb page: zeroing 1 GiB at ~10 GB/s; 100 ms.
    pub fault_hugetlb_1g_ns: f64,
    /// Copying one 4 KiB page (a COW break): memcpy at ~10 GB/s plus the
    /// fault; 1.5 us.
    pub copy_4k_ns: f64,
    /// CPU work of a swap-in beyond the device wait (fault entry, swap cache
    /// lookup, allocation, mapping); about 2 us.
    pub swapin_overhead_ns: f64,
    /// What reclaim spends taking one anonymous page out to swap, beyond
    /// the swap backend's own store: unmapping it (with the TLB shootdown),
    /// giving it a swap slot and the swap cache, and queueing its write.
    /// A faulting task that reclaims pays it for every page it takes, and
    /// a reclaimer's pages go out one after another at this pace. 9 us,
    /// measured on this project's development machine (2 cores, kernel
    /// 6.18, swap on a file on a virtio disk): a process's 512 MiB of
    /// distinct pages under a cgroup v1 limit lowered 64 MiB at a time,
    /// the `mm_vmscan_memcg_reclaim_begin`/`_end` tracepoints timing each
    /// reclaim: 4.5 to 14.6 us a page over twelve steps of 16 000 pages,
    /// 8.8 us the median; the same figure in this project's zswap kernel
    /// test (9.7 us a page over 15 371 reclaims). A calibration file's
    /// `reclaim_page_ns` replaces it.
    pub reclaim_page_ns: f64,
    /// ksmd's CPU for a page it looks at, as cmp_and_merge_page works
    /// (mm/ksm.c): every page not yet mapping a KSM page costs a page-table
    /// walk to it and its checksum (`ksm_checksum_page_ns`) and a search
    /// of the stable tree, `ksm_stable_level_ns` a level (a KSM page's
    /// content compared, found through its pfn); one that may merge and
    /// has no KSM page a search of the unstable tree too,
    /// `ksm_unstable_level_ns` a level (get_mergeable_page finds the other
    /// process's page through its page tables before comparing); a merge
    /// `ksm_merge_ns` (write-protecting the page and replacing its PTE,
    /// with the TLB flush); a page already mapping a KSM page only
    /// `ksm_merged_page_ns` (page_stable_node: nothing to search). A
    /// search goes log2(1 + n) levels down a balanced tree of n contents.
    ///
    /// Measured on this project's development machine (Linux 6.18,
    /// 2 cores, itself a KVM guest; schedstat over whole full scans of four
    /// processes of 128 MiB at 1 000 pages per 20 ms, smart_scan off): the
    /// first full scan of fresh pages 0.90 us a page (twice, distinct and
    /// identical pages: only checksums, the stable tree empty); a full
    /// scan once identical pages had all merged 0.35 us a page; later
    /// full scans of distinct pages 5.1-5.2 us (each page into an unstable
    /// tree of 0 to 131 071 pages: 15.56 levels on average); the full scan
    /// that merged identical pages 4.8 us (the first process's pages into
    /// the unstable tree, 13.56 levels on average; the second's searched
    /// in the stable tree, 13.56, then found in the unstable, 13.56, and
    /// merged; the third's and fourth's found in a stable tree of 32 768,
    /// 15 levels, and merged); the full scan that merged zero pages
    /// (`use_zero_pages` 0, every zero page after the first two found in a
    /// stable tree of one content and merged) 1.83 us. Solved for the
    /// three per-level and merge costs: an unstable level (5 150 − 900) /
    /// 15.56 = 273 ns; a stable level and a merge from 10.89 s + 0.75 m =
    /// 4 800 − 900 − 6.78 × 273 and s + m = 1 830 − 900: 133 ns and 797 ns.
    /// A calibration file's `ksm_checksum_page_ns`, `ksm_merged_page_ns`,
    /// `ksm_unstable_level_ns` (what `calibrate --ksm` derives from a
    /// region of distinct pages), `ksm_stable_level_ns` and `ksm_merge_ns`
    /// replace them.
    pub ksm_checksum_page_ns: f64,
    pub ksm_merged_page_ns: f64,
    pub ksm_unstable_level_ns: f64,
    pub ksm_stable_level_ns: f64,
    pub ksm_merge_ns: f64,
    /// ksmd's CPU per page smart scan skips (the page-table walk to the
    /// page and its rmap item, no checksum, no tree). Measured on this
    /// project's development machine (schedstat, four processes of
    /// 128 MiB of distinct pages, smart_scan on): a full scan that skipped
    /// all 131 072 pages took 23.1-25.1 ms of ksmd's CPU, 0.18 us a page
    /// (a full scan that looked at them all, 701-708 ms: 5.4 us a page).
    pub ksm_skipped_page_ns: f64,
    /// What ksmd's sleep takes beyond `sleep_millisecs` rounded up to
    /// whole jiffies (`msecs_to_jiffies`): the timer wheel never fires
    /// early, so it rounds the expiry up a tick, and the wake-up is
    /// scheduled after that. Measured on this project's development
    /// machine (CONFIG_HZ=250, kernel 6.18) with a 256 MiB region of
    /// distinct pages: 100 pages per 20 ms took 24.01 ms a round, 100 per
    /// 10 ms 16.03 ms (3 jiffies), 100 per 50 ms 55.96 ms (13 jiffies),
    /// 1000 per 20 ms 27.96 ms; less the jiffies and 100 × 5.7 us of
    /// scanning, 3.44 ms a wake-up. So ksmd reaches 83% of the nominal
    /// pages_to_scan × 1000 / sleep_millisecs at 100 pages per 20 ms.
    /// A calibration file's `ksm_wake_ns` replaces it.
    pub ksm_wake_ns: f64,
    /// One jiffy: 1 s / CONFIG_HZ (4 ms at Debian's HZ=250). ksmd's sleep
    /// is counted in them. A calibration file's `jiffy_ns` replaces it.
    pub jiffy_ns: f64,
    /// How fast a virtio-balloon inflates over memory the guest has used,
    /// in bytes per second: 0.92 GiB/s, measured on a 20 GiB, 12-vCPU
    /// Linux guest shrunk to 2 GiB (Schwarz et al., "HyperAlloc",
    /// EuroSys 2025, data in luhsra/hyperalloc-bench, `inflate/`). The
    /// guest driver hands the host 256 pages (1 MiB) per request
    /// (VIRTIO_BALLOON_ARRAY_PFNS_MAX) and waits for each; QEMU discards
    /// every 4 KiB page with its own madvise. A calibration file's
    /// `balloon_bytes_per_s.inflate` replaces it.
    pub balloon_inflate_bytes_per_s: f64,
    /// How fast it deflates: 2.31 GiB/s (the same measurement: deflating
    /// only tells the guest it has the pages back).
    /// `balloon_bytes_per_s.deflate` replaces it.
    pub balloon_deflate_bytes_per_s: f64,
}

impl Default for Costs {
    fn default() -> Self {
        Costs {
            dram_ns: 90.0,
            walk_ref_ns: 8.0,
            tlb_entries: 1536,
            tlb_entries_1g: 16,
            vm_exit_ns: 500.0,
            shadow_update_ns: 1500.0,
            fault_4k_ns: 2500.0,
            fault_thp_ns: 220_000.0,
            fault_hugetlb_2m_ns: 210_000.0,
            fault_hugetlb_1g_ns: 100_000_000.0,
            copy_4k_ns: 1500.0,
            swapin_overhead_ns: 2000.0,
            reclaim_page_ns: 9000.0,
            ksm_checksum_page_ns: 900.0,
            ksm_merged_page_ns: 350.0,
            ksm_unstable_level_ns: 273.0,
            ksm_stable_level_ns: 133.0,
            ksm_merge_ns: 797.0,
            ksm_skipped_page_ns: 180.0,
            ksm_wake_ns: 3.44e6,
            jiffy_ns: 4e6,
            balloon_inflate_bytes_per_s: 0.92 * GIB,
            balloon_deflate_bytes_per_s: 2.31 * GIB,
        }
    }
}

impl Costs {
    /// How long ksmd sleeps between batches for `sleep_millisecs`:
    /// `msecs_to_jiffies` rounds up to whole jiffies, and each wake-up
    /// comes [`Costs::ksm_wake_ns`] after that.
    pub fn ksm_sleep_ns(&self, sleep_millisecs: u32) -> f64 {
        whole_jiffies_ns(sleep_millisecs, self.jiffy_ns) + self.ksm_wake_ns
    }

    /// ksmd's CPU for `looked` pages not mapping a KSM page and `kept`
    /// that did, whose searches went `stable_levels` and `unstable_levels`
    /// down the trees in all, `merges` of which merged (see
    /// [`Costs::ksm_checksum_page_ns`]).
    pub fn ksm_pages_ns(&self, looked: f64, kept: f64, stable_levels: f64, unstable_levels: f64, merges: f64) -> f64 {
        looked * self.ksm_checksum_page_ns
            + kept * self.ksm_merged_page_ns
            + stable_levels * self.ksm_stable_level_ns
            + unstable_levels * self.ksm_unstable_level_ns
            + merges * self.ksm_merge_ns
    }

    /// The levels a page goes down, on average, in a full scan that puts
    /// `n` distinct pages one after another into an emptied unstable tree
    /// (the i-th searches a tree of i): log2(n!) / n.
    pub fn ksm_mean_insert_levels(n: u64) -> f64 {
        if n == 0 {
            return 0.0;
        }
        // Stirling: ln n! = n ln n − n + ln(2πn)/2, good to 1/(12n).
        let n = n as f64;
        let ln_fact = n * n.ln() - n + (2.0 * std::f64::consts::PI * n).ln() / 2.0 + 1.0 / (12.0 * n);
        ln_fact / std::f64::consts::LN_2 / n
    }
}

/// `msecs_to_jiffies`: `ms` rounded up to whole jiffies of `jiffy_ns`, in ns.
pub fn whole_jiffies_ns(ms: u32, jiffy_ns: f64) -> f64 {
    (f64::from(ms) * 1e6 / jiffy_ns).ceil() * jiffy_ns
}

/// Page-table levels x86-64 walks to reach a page of this size with 4-level
/// paging: 4 for 4 KiB, 3 for 2 MiB, 2 for 1 GiB.
pub fn levels(page_bytes: u64) -> u32 {
    match page_bytes {
        b if b >= 1 << 30 => 2,
        b if b >= 2 << 20 => 3,
        _ => 4,
    }
}

/// Memory references in a TLB-miss walk. With EPT each of the guest's `g`
/// levels, and the final guest-physical address, is itself translated by a
/// host walk of `h` levels: (g + 1)(h + 1) − 1 references, 24 for 4 KiB on
/// both sides (Bhargava et al., ASPLOS 2008, figure 2). Shadow paging walks
/// the shadow table natively: `g` references (with the smaller page size).
pub fn walk_refs(ept: bool, guest_page: u64, host_page: u64) -> u32 {
    let g = levels(guest_page);
    let h = levels(host_page);
    if ept { (g + 1) * (h + 1) - 1 } else { g.max(h) }
}

/// What translation costs one guest in one phase: the chance a touch misses
/// the TLB, what a miss costs, and the per-second VM exit load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Translation {
    pub miss_ratio: f64,
    pub walk_ns: f64,
    /// Stall per second of guest time from exits (shadow page-table traps,
    /// TPR exits, and TLB refills after flushes without VPID).
    pub exit_stall_per_s: f64,
    /// Extra TLB misses per second caused by flushes (no VPID).
    pub flush_misses_per_s: f64,
}

/// Inputs of [`translation`] for one guest.
pub struct TranslationInput<'a> {
    pub cpu: &'a CpuFeatures,
    pub pattern: &'a Pattern,
    pub working_set_bytes: u64,
    pub guest_page: u64,
    pub host_page: u64,
    pub touch_rate: f64,
    pub pagetable_updates: f64,
    pub vm_exits: f64,
    pub tpr_accesses: f64,
}

pub fn translation(c: &Costs, t: &TranslationInput) -> Translation {
    // A TLB entry maps the smaller of the two page sizes (a guest 4 KiB
    // page on a host 2 MiB page is cached as 4 KiB).
    let tlb_page = t.guest_page.min(t.host_page).max(4096);
    let entries = if tlb_page >= 1 << 30 { c.tlb_entries_1g } else { c.tlb_entries };
    let units = t.working_set_bytes.div_ceil(tlb_page).max(1);
    // The TLB is an LRU-like cache of translations: Che's approximation
    // over the working set's per-page popularity gives its miss ratio.
    let miss_ratio = che::miss_ratio(t.pattern, units, entries, tlb_page / 4096);
    let walk_ns = f64::from(walk_refs(t.cpu.ept, t.guest_page, t.host_page)) * c.walk_ref_ns;

    let mut exit_rate = t.vm_exits;
    let mut stall = 0.0;
    if !t.cpu.ept {
        // Shadow paging: each guest page-table write traps to KVM.
        exit_rate += t.pagetable_updates;
        stall += t.pagetable_updates * c.shadow_update_ns;
    }
    if !t.cpu.flexpriority {
        // Without TPR shadowing every guest TPR access is a VM exit.
        exit_rate += t.tpr_accesses;
    }
    stall += exit_rate * c.vm_exit_ns;
    let flush_misses_per_s = if t.cpu.vpid {
        0.0
    } else {
        // Without VPID each exit/entry flushes the guest's TLB entries; the
        // translations it held must be walked again. Between two exits the
        // guest touches `touch_rate / exit_rate` pages; at most the entries
        // that were in use can need refilling.
        let between = if exit_rate > 0.0 { t.touch_rate / exit_rate } else { f64::INFINITY };
        let in_use = (entries.min(units) as f64) * (1.0 - miss_ratio);
        exit_rate * in_use.min(between * (1.0 - miss_ratio))
    };
    stall += flush_misses_per_s * walk_ns;
    Translation { miss_ratio, walk_ns, exit_stall_per_s: stall, flush_misses_per_s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_dimensional_walk_lengths() {
        // Bhargava et al. 2008: 4-level guest and host tables need 24
        // references; (g+1)(h+1)-1 for other page sizes.
        assert_eq!(walk_refs(true, 4096, 4096), 24);
        assert_eq!(walk_refs(true, 4096, 2 << 20), 19);
        assert_eq!(walk_refs(true, 2 << 20, 2 << 20), 15);
        assert_eq!(walk_refs(true, 1 << 30, 1 << 30), 8);
        // A native (shadow) walk of 4-level tables: 4 references.
        assert_eq!(walk_refs(false, 4096, 4096), 4);
    }
}
