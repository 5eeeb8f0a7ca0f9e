//! khugepaged: the kernel thread that collapses 2 MiB ranges of 4 KiB
//! pages back into transparent huge pages (mm/khugepaged.c,
//! Documentation/admin-guide/mm/transhuge.rst, "khugepaged will be
//! automatically started when PMD-sized THP is enabled").
//!
//! It runs whenever THP is not `never`, over the memory of processes that
//! may have THPs (with `madvise`, the regions QEMU madvises: guest RAM).
//! Every `scan_sleep_millisecs` it wakes and looks at the next
//! `pages_to_scan` pages' worth of PMD ranges, mm after mm in address
//! order, from where it stopped; every range it looks at counts 512
//! pages whether it collapses it or not (`khugepaged_scan_mm_slot`), and
//! a pass over every mm is a full scan (`full_scans`).
//!
//! A range is collapsed when `hpage_collapse_scan_pmd` accepts it:
//!
//! - at most `max_ptes_none` of its page-table entries are empty or map
//!   the shared zero page (511 by default: one page in use is enough);
//! - at most `max_ptes_swap` are swap entries (64); those pages are read
//!   back in for the collapse;
//! - at most `max_ptes_shared` map pages mapped elsewhere too (256): a KSM
//!   page is one;
//! - at least one entry is writable (a KSM page and the zero page are
//!   mapped read-only, a page of the process's own writable);
//! - at least one page was referenced (young) since reclaim last cleared
//!   its bit, and at least half of them when some are swapped out.
//!
//! The collapse allocates a huge page first (if that fails khugepaged
//! sleeps `alloc_sleep_millisecs`; `thp_collapse_alloc_failed`), charges
//! it to the process's memory cgroup, copies the range into it (empty
//! entries and zero-page ones become zero-filled memory: the huge page
//! backs all 512), and frees the old pages: its own 4 KiB pages, and its
//! mappings of KSM pages, which lose a sharer each (`thp_collapse_alloc`,
//! `pages_collapsed`).
//!
//! Measured on this project's development machine (Linux 6.18, four
//! processes of 64 MiB on THP, 30% of their pages of content common to
//! all, spread over every range, KSM at 1 000 pages per 20 ms,
//! khugepaged at its 4 096 pages every second): every range khugepaged
//! looked at was collapsed (8 a wake-up), each with about 150 KSM pages
//! in it, and ksmd split it again on its next pass to merge them once
//! more: in 116 s 871 collapses and 967 splits, `pages_shared` steady.

use serde::Serialize;

/// The knobs of `/sys/kernel/mm/transparent_hugepage/khugepaged/`, with
/// the kernel's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Knobs {
    /// Pages' worth of ranges looked at per wake-up (default
    /// HPAGE_PMD_NR × 8 = 4096).
    pub pages_to_scan: u32,
    /// Sleep between wake-ups (10 000 ms).
    pub scan_sleep_millisecs: u32,
    /// Sleep after a huge page could not be allocated (60 000 ms).
    pub alloc_sleep_millisecs: u32,
    /// Empty or zero-page entries a range may have (HPAGE_PMD_NR − 1).
    pub max_ptes_none: u32,
    /// Swapped-out entries a range may have (HPAGE_PMD_NR / 8).
    pub max_ptes_swap: u32,
    /// Entries mapping pages mapped elsewhere too (HPAGE_PMD_NR / 2).
    pub max_ptes_shared: u32,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            pages_to_scan: 4096,
            scan_sleep_millisecs: 10_000,
            alloc_sleep_millisecs: 60_000,
            max_ptes_none: 511,
            max_ptes_swap: 64,
            max_ptes_shared: 256,
        }
    }
}

impl Knobs {
    /// PMD ranges looked at per wake-up (at least one).
    pub fn ranges_per_wake(&self) -> u64 {
        u64::from(self.pages_to_scan / 512).max(1)
    }
}

/// What the page-table entries of one 2 MiB range hold, in 4 KiB pages.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range {
    /// Empty, or mapping the shared zero page.
    pub none_or_zero: f64,
    /// Swap entries.
    pub swap: f64,
    /// Mapping pages mapped elsewhere too (KSM pages).
    pub shared: f64,
    /// Mapping pages of the process's own (writable).
    pub own: f64,
    /// Pages referenced since reclaim last looked.
    pub referenced: f64,
}

/// Why a range was left as it is, or that it is collapsed (the kernel's
/// `scan_result` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Collapse,
    ExceedNonePte,
    ExceedSwapPte,
    ExceedSharedPte,
    PageRo,
    LackReferencedPage,
}

/// `hpage_collapse_scan_pmd`'s decision for a range, checks in its order.
pub fn verdict(r: &Range, k: &Knobs) -> Verdict {
    if r.swap > f64::from(k.max_ptes_swap) {
        Verdict::ExceedSwapPte
    } else if r.none_or_zero > f64::from(k.max_ptes_none) {
        Verdict::ExceedNonePte
    } else if r.shared > f64::from(k.max_ptes_shared) {
        Verdict::ExceedSharedPte
    } else if r.own <= 0.0 {
        Verdict::PageRo
    } else if r.referenced <= 0.0 || (r.swap > 0.0 && r.referenced < 256.0) {
        Verdict::LackReferencedPage
    } else {
        Verdict::Collapse
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(none: f64, swap: f64, shared: f64, referenced: f64) -> Range {
        Range { none_or_zero: none, swap, shared, own: 512.0 - none - swap - shared, referenced }
    }

    #[test]
    fn the_kernels_defaults() {
        // Documentation/admin-guide/mm/transhuge.rst and khugepaged_init():
        // pages_to_scan HPAGE_PMD_NR * 8, 10 s and 60 s sleeps,
        // max_ptes_none HPAGE_PMD_NR - 1, max_ptes_swap HPAGE_PMD_NR / 8,
        // max_ptes_shared HPAGE_PMD_NR / 2.
        let k = Knobs::default();
        assert_eq!((k.pages_to_scan, k.scan_sleep_millisecs, k.alloc_sleep_millisecs), (4096, 10_000, 60_000));
        assert_eq!((k.max_ptes_none, k.max_ptes_swap, k.max_ptes_shared), (511, 64, 256));
        assert_eq!(k.ranges_per_wake(), 8);
    }

    #[test]
    fn each_limit_is_inclusive_as_the_kernels_counters_are() {
        // hpage_collapse_scan_pmd fails once a count goes past its limit
        // (`++none_or_zero ... <= khugepaged_max_ptes_none`, likewise for
        // swap and shared): the limit itself passes.
        let k = Knobs::default();
        assert_eq!(verdict(&range(511.0, 0.0, 0.0, 1.0), &k), Verdict::Collapse);
        assert_eq!(verdict(&range(512.0, 0.0, 0.0, 0.0), &k), Verdict::ExceedNonePte);
        assert_eq!(verdict(&range(0.0, 0.0, 256.0, 1.0), &k), Verdict::Collapse);
        assert_eq!(verdict(&range(0.0, 0.0, 257.0, 1.0), &k), Verdict::ExceedSharedPte);
        assert_eq!(verdict(&range(0.0, 64.0, 0.0, 448.0), &k), Verdict::Collapse);
        assert_eq!(verdict(&range(0.0, 65.0, 0.0, 447.0), &k), Verdict::ExceedSwapPte);
    }

    #[test]
    fn read_only_and_cold_ranges_stay() {
        let k = Knobs::default();
        // Only KSM pages and zero-page entries: nothing writable (SCAN_PAGE_RO).
        assert_eq!(verdict(&range(300.0, 0.0, 212.0, 5.0), &k), Verdict::PageRo);
        // Nothing referenced since reclaim last looked.
        assert_eq!(verdict(&range(0.0, 0.0, 0.0, 0.0), &k), Verdict::LackReferencedPage);
        // Swapped pages need half the range referenced (HPAGE_PMD_NR / 2).
        assert_eq!(verdict(&range(0.0, 10.0, 0.0, 255.0), &k), Verdict::LackReferencedPage);
        assert_eq!(verdict(&range(0.0, 10.0, 0.0, 256.0), &k), Verdict::Collapse);
    }
}
