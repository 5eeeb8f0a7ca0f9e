//! KSM against the kernel's documented semantics (mm/ksm.c and
//! Documentation/admin-guide/mm/ksm.rst, collected in
//! docs/sources/ksm-balloon-policies.md, section 3):
//! - pages of N guests booted from one image that hold the image's content
//!   merge into one KSM page each: `pages_sharing` = (N − 1) × those pages;
//! - zero pages merge with the kernel's zero page under `use_zero_pages`
//!   (`ksm_zero_pages`), else among themselves, at most `max_page_sharing`
//!   mappings per KSM page;
//! - a page must be unchanged since ksmd last saw it, so nothing merges in
//!   the first full scan, and everything has merged by the end of the
//!   second;
//! - hugetlb memory and `ksm: false` guests are never merged;
//! - a THP split maps its zero-filled pages to the zero page (Linux 6.12+),
//!   so zero-filled THPs lose memory to splits and merge nothing;
//! - a write to a merged page breaks it (copy-on-write) into a new page.
//!
//! These hold with smart scan off (`smart_scan: false`, as before Linux
//! 6.7); smart scan's own rule (a page that does not merge is skipped for
//! more and more scans) has its tests at the end.

use overcommit::engine::{EventKind, Summary};
use overcommit::model::page::{Content, Shares, content_of, is_common};

use crate::support::{run_recorded, scenario};

const PAGES: u64 = 16_384; // one 64 MiB guest

/// N guests of 64 MiB from one image, all memory touched at start
/// (prealloc, reads only), then a slow read-only workload.
fn one_image(n: u32, shared: u32, zero: u32, ksm: &str, extra_workload: &str) -> String {
    // Smart scan off unless the test asks (see the module's notes).
    let smart = if ksm.contains("smart_scan") { "" } else { "smart_scan: false, " };
    format!(
        "
name: ksm
seed: 5
duration: 30s
sample_every: 100ms
host:
  ram: 2G
  reserved: 0
  thp: never
  ksm: {{ run: true, {smart}{ksm} }}
guests:
  - name: vm
    count: {n}
    memory: 64M
    prealloc: true
    workload:
      working_set: 64M
      touch_rate: 1k/s
      write: 0%
      shared: {shared}%
      zero: {zero}%
{extra_workload}
"
    )
}

/// Pages of one guest whose content class (fixed by address, the same in
/// every guest of an image) is `class`.
fn count(class: Content, shared: f64, zero: f64) -> u64 {
    let s = Shares { shared, zero, duplicate: 0.0, ..Shares::default() };
    (0..PAGES).filter(|&p| content_of(p, s) == class).count() as u64
}

fn ksm(s: &Summary) -> &overcommit::engine::KsmSummary {
    s.host.ksm.as_ref().expect("KSM ran")
}

#[test]
fn one_image_saves_n_minus_one_copies_of_its_shared_pages() {
    // 4 guests, 40% image pages, no zero pages: every image page exists 4
    // times and keeps 1 copy: pages_sharing = 3 × (image pages of one guest),
    // pages_shared = those pages. Counted exactly from the address classes.
    let s = scenario(&one_image(4, 40, 0, "pages_to_scan: 1000, sleep_millisecs: 5", ""));
    let (summary, _) = run_recorded(&s);
    let k = ksm(&summary);
    let image = count(Content::Shared, 0.4, 0.0);
    assert_eq!(k.pages_shared, image, "one KSM page per image page");
    assert_eq!(k.pages_sharing, 3 * image, "(N - 1) x image pages saved");
    assert_eq!(k.saved_bytes, 3 * image * 4096);
    assert_eq!(k.cow_breaks, 0);
    // Unique pages were checked and stay unshared.
    assert_eq!(k.pages_unshared, 4 * (PAGES - image));
    // The host holds the image pages once plus every unique page.
    let used_end = 4 * PAGES * 4096 - k.saved_bytes;
    let last_used: u64 = summary.guests.iter().map(|g| g.resident_end_bytes).sum::<u64>() - k.saved_bytes;
    assert_eq!(last_used, used_end);
}

#[test]
fn zero_pages_merge_with_the_zero_page_or_among_themselves() {
    // 3 guests, 20% image pages, 30% zero pages.
    let (shared, zero) = (0.2, 0.3);
    let image = count(Content::Shared, shared, zero);
    let zeros = count(Content::Zero, shared, zero);
    // use_zero_pages: every zero page of every guest maps the kernel's zero
    // page and saves its frame (counted in ksm_zero_pages, ksm.rst).
    let s = scenario(&one_image(3, 20, 30, "pages_to_scan: 1000, sleep_millisecs: 5, use_zero_pages: true", ""));
    let (summary, _) = run_recorded(&s);
    let k = ksm(&summary);
    assert_eq!(k.ksm_zero_pages, 3 * zeros);
    assert_eq!(k.pages_sharing, 2 * image);
    assert_eq!(k.saved_bytes, (3 * zeros + 2 * image) * 4096);
    // Without it, zero pages are one content shared by all: each KSM page
    // takes at most max_page_sharing (here 256) mappings, so Z zero pages
    // need ceil(Z / 256) KSM pages and save the rest.
    let s = scenario(&one_image(3, 20, 30, "pages_to_scan: 1000, sleep_millisecs: 5, max_page_sharing: 256", ""));
    let (summary, _) = run_recorded(&s);
    let k = ksm(&summary);
    let z = 3 * zeros;
    let zero_ksm_pages = z.div_ceil(256);
    assert_eq!(k.ksm_zero_pages, 0);
    assert_eq!(k.pages_shared, image + zero_ksm_pages);
    assert_eq!(k.pages_sharing, 2 * image + z - zero_ksm_pages);
}

#[test]
fn nothing_merges_in_the_first_full_scan_and_all_by_the_end_of_the_second() {
    // 2 guests x 16 384 pages = 32 768 mergeable pages; ksmd scans 100 pages
    // then sleeps 20 ms. ksm.rst's rate is pages_to_scan x 1000 /
    // sleep_millisecs = 5 000 pages/s; the kernel sleeps whole jiffies
    // (5 at HZ=250) and wakes a little after them (3.44 ms, the default
    // measured on the development machine), and the model adds ksmd's own
    // CPU time: in the first full scan it only checksums (100 pages x the
    // default 0.9 us = 0.09 ms a batch, 100 pages per 23.53 ms, a scan in
    // 7.71 s), in the second it also searches the trees (Costs'
    // checksum, levels and merges: guest 0's pages join an unstable tree
    // of 0 to 16 383, guest 1's search a stable tree of 0 to 8 191 and an
    // unstable one of about 16 384, and half of them merge: 5.5 us a
    // page, 100 pages per 23.98 ms, a scan in 7.86 s). ksmd goes guest by guest
    // in address order: in the second scan guest 0's pages enter the
    // unstable tree, and merging happens while it scans guest 1, from 1.5
    // to 2 scans (11.6 s to 15.6 s).
    let s = scenario(&one_image(2, 50, 0, "pages_to_scan: 100, sleep_millisecs: 20", ""));
    let (summary, rec) = run_recorded(&s);
    let final_sharing = ksm(&summary).pages_sharing;
    assert_eq!(final_sharing, count(Content::Shared, 0.5, 0.0));
    let costs = overcommit::latency::Costs::default();
    let batch_s = |page_ns: f64| (costs.ksm_sleep_ns(20) + 100.0 * page_ns) / 1e9;
    let first_s = 32_768.0 / 100.0 * batch_s(costs.ksm_checksum_page_ns);
    let levels = overcommit::latency::Costs::ksm_mean_insert_levels;
    let page_ns = costs.ksm_checksum_page_ns
        + 0.5 * costs.ksm_unstable_level_ns * levels(16_384)
        + 0.5 * (costs.ksm_stable_level_ns * levels(8_192) + costs.ksm_unstable_level_ns * 16_385f64.log2())
        + 0.25 * costs.ksm_merge_ns;
    let scan_s = 32_768.0 / 100.0 * batch_s(page_ns);
    for sample in &rec.samples {
        let t = sample.t_ns as f64 / 1e9;
        let h = &sample.host;
        if h.ksm_full_scans == 0 {
            assert_eq!(h.ksm_pages_sharing, 0, "merged during the first full scan at {t} s");
        }
        if t < first_s - 0.2 {
            assert_eq!(h.ksm_pages_sharing, 0, "merged at {t} s, before one full scan ({first_s:.2} s)");
        }
        if t > first_s + scan_s + 0.2 {
            assert_eq!(
                h.ksm_pages_sharing,
                final_sharing,
                "not all merged at {t} s (two scans: {:.2} s)",
                first_s + scan_s
            );
        }
    }
    // Nothing before the second scan reaches guest 1; half when it is
    // halfway through guest 1.
    let at = |scans: f64| {
        let t = first_s + (scans - 1.0) * scan_s;
        let x = rec.samples.iter().find(|x| x.t_ns as f64 / 1e9 >= t).expect("a sample");
        x.host.ksm_pages_sharing as f64 / final_sharing as f64
    };
    assert!(at(1.45) == 0.0, "{:.2} merged before the second scan reached guest 1", at(1.45));
    assert!((0.4..0.6).contains(&at(1.75)), "{:.2} merged halfway through guest 1 in the second scan", at(1.75));
}

#[test]
fn hugetlb_and_nosharepages_guests_never_merge() {
    // ksm_compatible() refuses VM_HUGETLB; libvirt's <nosharepages/> never
    // marks the memory mergeable. Same image, 50% shared: nothing merges.
    for guest in ["hugepages: true", "ksm: false"] {
        let yaml = one_image(2, 50, 0, "pages_to_scan: 1000, sleep_millisecs: 5", "")
            .replace("    prealloc: true\n", &format!("    prealloc: true\n    {guest}\n"))
            .replace("  ram: 2G\n", "  ram: 2G\n  hugepages: { size: 2M, count: 128 }\n");
        let s = scenario(&yaml);
        let (summary, _) = run_recorded(&s);
        let k = ksm(&summary);
        assert_eq!((k.pages_shared, k.pages_sharing, k.saved_bytes), (0, 0, 0), "{guest}");
    }
}

#[test]
fn a_copy_on_write_storm_costs_one_new_page_per_merged_mapping() {
    // 4 guests, 50% image pages: after merging, the 4 x I image mappings
    // share I KSM pages. At 20 s every guest starts writing all it touches
    // (uniform, 200k touches/s over 16 384 pages: each page is written ~120
    // times a second, so by 30 s all are written). Each merged mapping breaks
    // once (a written page is the guest's own and never merges again):
    // cow_breaks = 4 x I, the KSM pages are all freed, and host memory grows
    // back by the 3 x I pages KSM had saved.
    let phase = "      phases:\n        - { at: 20s, write: 100%, touch_rate: 200k/s }";
    let s = scenario(&one_image(4, 50, 0, "pages_to_scan: 1000, sleep_millisecs: 5", phase));
    let (summary, rec) = run_recorded(&s);
    let image = count(Content::Shared, 0.5, 0.0);
    let k = ksm(&summary);
    assert_eq!(k.cow_breaks, 4 * image);
    assert_eq!((k.pages_shared, k.pages_sharing), (0, 0));
    assert_eq!(k.saved_peak_bytes, 3 * image * 4096);
    let before = rec.samples.iter().find(|x| x.t_ns == 19_900_000_000).expect("a sample before the storm");
    let after = rec.samples.last().expect("a last sample");
    assert_eq!(after.host.used_bytes - before.host.used_bytes, 3 * image * 4096);
    let per_guest: u64 = summary.guests.iter().map(|g| g.cow_breaks).sum();
    assert_eq!(per_guest, 4 * image);
    assert!(
        rec.events.iter().any(|e| e.kind == EventKind::CowStorm && e.t_ns > 20_000_000_000),
        "the storm is reported"
    );
}

#[test]
fn duplicate_pages_merge_into_one_ksm_page_per_max_page_sharing_mappings() {
    // Three guests whose duplicate share (one pattern repeated within and
    // across the image's guests) is 10%: every such page of every guest
    // holds the same content, so KSM merges them all, at most
    // max_page_sharing (256) mappings per KSM page (ksm.rst): D pages make
    // ceil(D / 256) KSM pages and D − ceil(D / 256) sharing.
    let text = one_image(3, 0, 0, "pages_to_scan: 5000, sleep_millisecs: 10", "      duplicate: 10%");
    let (summary, _) = run_recorded(&scenario(&text));
    let dup = Shares { shared: 0.0, zero: 0.0, duplicate: 0.1, ..Shares::default() };
    let d = 3 * (0..PAGES).filter(|&p| is_common(p, dup)).count() as u64;
    let k = ksm(&summary);
    assert_eq!(k.pages_shared, d.div_ceil(256), "{k:?}");
    assert_eq!(k.pages_sharing, d - d.div_ceil(256), "{k:?}");
}

#[test]
fn a_warm_start_keeps_what_lies_outside_the_working_set_and_loses_what_its_writes_reach() {
    // Two guests of one image started warm: 80 MiB (20,480 pages) in use
    // each, the first 40 MiB (10,240 pages) their working set; half the
    // pages in use hold the image's content, 30% of it in the working set
    // (`in_working_set`). Each guest touches its working set uniformly at
    // 10,240 touches a second, half of them writes: every page there is
    // written at 0.5 a second, so a page is unwritten by both guests after
    // t seconds with chance exp(−2 × 0.5 t) (Poisson writes, independent
    // guests). KSM (fast: a full scan every few tens of ms) merges a pair
    // while neither wrote it, and a write breaks it (ksm.rst: a written
    // page is the guest's own). After 2 s: the image pages outside the
    // working set all merged, those inside it at exp(−2) ≈ 13.5%, give or
    // take the binomial spread (4 standard deviations allowed).
    let s = scenario(
        "
name: warm-ksm
seed: 11
duration: 2s
sample_every: 100ms
host:
  ram: 2G
  reserved: 0
  thp: never
  ksm: { run: true, pages_to_scan: 10000, sleep_millisecs: 10, smart_scan: false }
guests:
  - name: vm
    count: 2
    memory: 128M
    observed:
      - { name: vm-0, resident: 80M, swapped: 0, thp: 0, ksm_merged: 0, balloon: 0 }
      - { name: vm-1, resident: 80M, swapped: 0, thp: 0, ksm_merged: 0, balloon: 0 }
    workload:
      working_set: 40M
      touch_rate: 10240/s
      write: 50%
      shared: 50%
      in_working_set: { shared: 30% }
",
    );
    let (summary, _) = run_recorded(&s);
    let shares =
        Shares { shared: 0.5, warm: 10_240, used: 20_480, in_warm: Some([0.3, 0.5, 0.5]), ..Shares::default() };
    let of = |pages: std::ops::Range<u64>| pages.filter(|&p| content_of(p, shares) == Content::Shared).count() as f64;
    let (inside, outside) = (of(0..10_240), of(10_240..20_480));
    // 30% of 10,240 image pages in the working set, the rest outside.
    assert!((inside - 3_072.0).abs() < 4.0 * (10_240.0f64 * 0.3 * 0.7).sqrt(), "{inside}");
    assert!((outside - 7_168.0).abs() < 4.0 * (10_240.0f64 * 0.7 * 0.3).sqrt(), "{outside}");
    let kept = (-2.0f64).exp();
    let want = outside + inside * kept;
    let spread = 4.0 * (inside * kept * (1.0 - kept)).sqrt();
    let got = ksm(&summary).pages_sharing as f64;
    assert!((got - want).abs() <= spread, "pages_sharing {got}, expected {want:.0} ± {spread:.0}");
}

#[test]
fn zero_filled_huge_pages_split_one_a_full_scan_and_merge_nothing() {
    // Since Linux 6.12 a split anonymous THP maps its zero-filled subpages
    // to the shared zero page (mm/huge_memory.c, __split_huge_page:
    // remap_page with RMP_USE_SHARED_ZEROPAGE). ksmd's merge of a zero page
    // inside a THP splits the THP first (try_to_merge_one_page), so the
    // page it was merging is gone and the merge fails; its partner in the
    // unstable tree went with it, and every later zero page of that scan
    // meets the stale item and gives up (unstable_tree_search_insert
    // returns NULL when get_mergeable_page finds no anonymous page). Truth:
    // measured on Linux 6.18 (the opt-in system test `ksm_on_thp`): one
    // THP split a full scan after the first, 2 MiB of resident memory freed
    // a split, pages_sharing and ksm_zero_pages at 0. With use_zero_pages
    // the merge with the zero page splits the THP alike, but no unstable
    // item is left stale: measured here on four 128 MiB processes, all 256
    // THPs split in the second full scan (the pages a split maps to the
    // zero page are skipped without counting against pages_to_scan), 512
    // MiB freed, ksm_zero_pages 0.
    for use_zero_pages in [false, true] {
        let s = scenario(&format!(
            "
name: ksm-zero-thp
seed: 5
duration: 20s
sample_every: 100ms
host:
  ram: 2G
  reserved: 0
  thp: madvise
  ksm: {{ run: true, pages_to_scan: 1000, sleep_millisecs: 20, use_zero_pages: {use_zero_pages}, smart_scan: false }}
guests:
  - name: vm
    count: 4
    memory: 32M
    image: one
    prealloc: true
    workload: {{ working_set: 100%, touch_rate: 1/s, write: 0%, shared: 0%, zero: 100% }}
"
        ));
        let (summary, rec) = run_recorded(&s);
        let k = ksm(&summary);
        assert_eq!((k.pages_sharing, k.ksm_zero_pages, k.pages_shared), (0, 0, 0), "use_zero_pages {use_zero_pages}");
        let splits = summary.host.vmstat.thp_split_page;
        if use_zero_pages {
            assert_eq!(splits, 4 * 16, "every THP split");
        } else {
            assert!(
                splits + 1 >= k.full_scans - 1 && splits <= k.full_scans,
                "{splits} splits in {} full scans",
                k.full_scans
            );
        }
        let resident = |i: usize| rec.samples[i].host.guest_resident_bytes;
        let freed = resident(0) - resident(rec.samples.len() - 1);
        assert_eq!(freed, splits * (2 << 20), "2 MiB freed a split");
    }
}

/// The scans at which smart scan looks at a page that never merges, up to
/// `visits` visits: its first three, then once after each run of skips
/// (1, 1, 2, 4, 8, 8, ... scans: `skip_age` in mm/ksm.c, Linux 6.7+).
fn looked(visits: u64) -> u64 {
    let (mut age, mut rem, mut n) = (0u64, 0u64, 0u64);
    for _ in 0..visits {
        if age < 3 {
            n += 1;
        } else if rem == 0 {
            rem = match age {
                0..=3 => 1,
                4..=5 => 2,
                6..=8 => 4,
                _ => 8,
            };
            n += 1;
        } else {
            rem -= 1;
        }
        age += 1;
    }
    n
}

#[test]
fn smart_scan_looks_at_pages_that_never_merge_ever_more_rarely() {
    // should_skip_rmap_item (mm/ksm.c, Linux 6.7+): a page that is not a
    // KSM page is looked at in its first three full scans, then skipped
    // for 1, 1, 2, 4, 8, 8, ... scans between looks, and a skipped page
    // takes no part of pages_to_scan. With 2 guests of 16 384 distinct
    // pages every page is visited once a full scan, so after F full scans
    // ksmd has looked at 2 × 16 384 × looked(F) pages and skipped the
    // rest of the visits (the scan under way adds at most one visit each).
    let s = scenario(&one_image(2, 0, 0, "pages_to_scan: 1000, sleep_millisecs: 5, smart_scan: true", ""));
    let (summary, _) = run_recorded(&s);
    let k = ksm(&summary);
    let (n, f) = (2 * PAGES, k.full_scans);
    assert!(f >= 20, "{f} full scans");
    let (scanned, skipped) = (k.pages_scanned, k.pages_skipped);
    assert!((n * looked(f)..=n * looked(f + 1)).contains(&scanned), "{scanned} scanned after {f} full scans");
    assert!(
        (n * (f - looked(f))..=n * (f + 1 - looked(f + 1))).contains(&skipped),
        "{skipped} skipped after {f} full scans"
    );
    // Nothing merges, smart or not.
    assert_eq!(k.pages_sharing, 0);
}

#[test]
fn smart_scan_merges_an_images_pages_as_a_full_look_does() {
    // A page that can merge does so in its second or third look (checksum,
    // then the unstable tree), before smart scan skips anything: the image
    // pages of 4 guests end merged exactly as without it, (N − 1) x the
    // image pages, and the unique pages are skipped from their fourth scan.
    let s = scenario(&one_image(4, 40, 0, "pages_to_scan: 1000, sleep_millisecs: 5, smart_scan: true", ""));
    let (summary, _) = run_recorded(&s);
    let k = ksm(&summary);
    let image = count(Content::Shared, 0.4, 0.0);
    assert_eq!(k.pages_shared, image);
    assert_eq!(k.pages_sharing, 3 * image);
    assert!(k.pages_skipped > 0);
}
