//! When guests start, and which never start or never swap.
//!
//! Truths: QEMU's -mem-prealloc touches every page of guest RAM before the
//! guest runs, so the guest starts late by (pages × one fault): M / 4 KiB
//! faults of `Costs::fault_4k_ns` without THP, M / 2 MiB faults of
//! `fault_thp_ns` with THP, M / 2 MiB (or M / 1 GiB) faults of
//! `fault_hugetlb_2m_ns` (`fault_hugetlb_1g_ns`) on hugetlbfs. The kernel
//! reserves all of a hugetlbfs mapping's pages at mmap time
//! (HugePages_Rsvd), so QEMU fails to start a guest the pool cannot cover
//! and the pool is left for the next guest; hugetlbfs pages are never
//! swapped.

use crate::support::{run_recorded, scenario};
use overcommit::engine::{EventKind, Summary};
use overcommit::latency::Costs;
use overcommit::model::Status;

const MIB: u64 = 1 << 20;

/// A prealloc guest `g` of `memory_mib` MiB (plus `guest_keys`) on a
/// 256 MiB host described by the `host` lines, next to a small guest
/// without prealloc; returns the run's summary after checking both start
/// events.
fn one_guest(host: &str, memory_mib: u64, guest_keys: &str) -> Summary {
    let yaml = format!(
        "name: start
seed: 3
duration: 200ms
sample_every: 50ms
host:
  ram: 256M
  reserved: 0
  ksm: {{ run: false }}
{host}
guests:
  - name: g
    memory: {memory_mib}M
    balloon: false
    prealloc: true
{guest_keys}
    workload: {{ touch_rate: 1k/s, pattern: uniform, write: 0% }}
  - name: plain
    memory: 16M
    balloon: false
    workload: {{ touch_rate: 1k/s, pattern: uniform, write: 0% }}
"
    );
    let (summary, rec) = run_recorded(&scenario(&yaml));
    // The guest without prealloc starts at once.
    let plain = &summary.guests[1];
    assert_eq!((plain.boot_delay_ns, plain.started_at_ns), (0, Some(0)));
    // The prealloc guest's start event is stamped when it starts running.
    let g = &summary.guests[0];
    let started = rec
        .events
        .iter()
        .find(|e| e.kind == EventKind::GuestStarted && e.guest == "g-0")
        .expect("a guest_started event for g-0");
    assert_eq!(Some(started.t_ns), g.started_at_ns);
    assert_eq!(g.state, Status::Running);
    summary
}

#[test]
fn prealloc_4k_starts_one_fault_per_4k_page_late() {
    // 64 MiB / 4 KiB = 16 384 faults × 2.5 us = 40.96 ms.
    let costs = Costs::default();
    let m = 64 * MIB;
    let s = one_guest("  thp: never", 64, "");
    let expected = ((m / 4096) as f64 * costs.fault_4k_ns) as u64;
    assert_eq!(expected, 40_960_000);
    let g = &s.guests[0];
    eprintln!("prealloc 4K: boot delay {} ns, expected {expected}", g.boot_delay_ns);
    assert_eq!(g.boot_delay_ns, expected);
    assert_eq!(g.started_at_ns, Some(expected));
    // Every page was faulted in at start: 16 384 minor faults, all resident.
    assert!(g.minor_faults >= m / 4096, "{} minor faults", g.minor_faults);
    assert_eq!(g.resident_peak_bytes, m);
}

#[test]
fn prealloc_with_thp_starts_one_fault_per_2m_late() {
    // 64 MiB / 2 MiB = 32 THP faults × 220 us = 7.04 ms.
    let costs = Costs::default();
    let m = 64 * MIB;
    let s = one_guest("  thp: always", 64, "");
    let expected = ((m / (2 * MIB)) as f64 * costs.fault_thp_ns) as u64;
    assert_eq!(expected, 7_040_000);
    let g = &s.guests[0];
    eprintln!("prealloc THP: boot delay {} ns, expected {expected}", g.boot_delay_ns);
    assert_eq!(g.boot_delay_ns, expected);
    assert_eq!(g.started_at_ns, Some(expected));
    assert_eq!(g.thp_faults, 32);
}

#[test]
fn prealloc_hugetlb_2m_starts_one_fault_per_huge_page_late() {
    // 64 MiB / 2 MiB = 32 hugetlb faults × 210 us = 6.72 ms.
    let costs = Costs::default();
    let m = 64 * MIB;
    let s = one_guest("  thp: never\n  hugepages: { size: 2M, count: 32 }", 64, "    hugepages: true");
    let expected = ((m / (2 * MIB)) as f64 * costs.fault_hugetlb_2m_ns) as u64;
    assert_eq!(expected, 6_720_000);
    let g = &s.guests[0];
    eprintln!("prealloc hugetlb 2M: boot delay {} ns, expected {expected}", g.boot_delay_ns);
    assert_eq!(g.boot_delay_ns, expected);
    assert_eq!(g.started_at_ns, Some(expected));
    assert_eq!(g.resident_peak_bytes, m, "every huge page is mapped at start");
    assert_eq!(s.host.hugepages_pool_bytes, 64 * MIB);
}

#[test]
fn prealloc_hugetlb_1g_starts_one_fault_per_gigabyte_late() {
    // 1 GiB / 1 GiB = 1 fault × 100 ms (zeroing 1 GiB at ~10 GB/s).
    let costs = Costs::default();
    let yaml = "name: start-1g
duration: 300ms
sample_every: 100ms
host:
  ram: 2G
  reserved: 0
  thp: never
  hugepages: { size: 1G, count: 1 }
  ksm: { run: false }
guests:
  - name: g
    memory: 1G
    balloon: false
    prealloc: true
    hugepages: true
    workload: { touch_rate: 1k/s, pattern: uniform, write: 0% }
";
    let (s, _) = run_recorded(&scenario(yaml));
    let expected = costs.fault_hugetlb_1g_ns as u64;
    assert_eq!(expected, 100_000_000);
    let g = &s.guests[0];
    eprintln!("prealloc hugetlb 1G: boot delay {} ns, expected {expected}", g.boot_delay_ns);
    assert_eq!(g.boot_delay_ns, expected);
    assert_eq!(g.started_at_ns, Some(expected));
}

#[test]
fn hugepage_guest_larger_than_the_pool_fails_and_leaves_the_pool_to_the_next() {
    // Pool: 48 × 2 MiB = 96 MiB. `big` (128 MiB) needs 64 pages: it fails
    // and reserves nothing; `small` (64 MiB, 32 pages) then fits.
    let yaml = "name: pool
duration: 200ms
sample_every: 50ms
host:
  ram: 256M
  reserved: 0
  thp: never
  hugepages: { size: 2M, count: 48 }
  ksm: { run: false }
guests:
  - name: big
    memory: 128M
    hugepages: true
    balloon: false
    workload: { touch_rate: 10k/s, pattern: uniform }
  - name: small
    memory: 64M
    hugepages: true
    balloon: false
    workload: { touch_rate: 10k/s, pattern: uniform }
";
    let (s, rec) = run_recorded(&scenario(yaml));
    let (big, small) = (&s.guests[0], &s.guests[1]);
    assert_eq!(big.state, Status::FailedToStart);
    assert_eq!(big.started_at_ns, None);
    assert_eq!(big.touches, 0);
    assert_eq!(big.resident_peak_bytes, 0);
    let failed: Vec<_> = rec.events.iter().filter(|e| e.kind == EventKind::FailedToStart).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].guest, "big-0");
    assert!(failed[0].detail.contains("needs 64 huge pages"), "{}", failed[0].detail);
    assert!(failed[0].detail.contains("pool has 48 free"), "{}", failed[0].detail);
    assert_eq!(small.state, Status::Running);
    assert_eq!(small.started_at_ns, Some(0));
    assert!(small.touches > 0);
    assert_eq!(s.host.guests_failed_to_start, 1);
    assert_eq!(s.host.guests_running, 1);
    // `small` holds 32 of the pool's pages from the start to the end.
    for sample in &rec.samples {
        assert_eq!(sample.host.pool_bytes, 96 * MIB);
        assert_eq!(sample.host.pool_used_bytes, 64 * MIB, "at {} ns", sample.t_ns);
    }
}

#[test]
fn hugepage_guest_is_never_swapped_next_to_a_swapping_guest() {
    // 256 MiB of RAM, 64 MiB of it in the pool: 192 MiB of ordinary
    // memory for a 4 KiB guest touching 384 MiB, so the host swaps hard.
    // The hugepage guest's pages are pool pages, outside reclaim's reach.
    let yaml = "name: no-swap-for-hugetlb
seed: 5
duration: 1s
sample_every: 100ms
host:
  ram: 256M
  reserved: 0
  thp: never
  hugepages: { size: 2M, count: 32 }
  ksm: { run: false }
  swap: { size: 512M, read_latency: 1us, write_latency: 1us, bandwidth: 64G/s, queue_depth: 64 }
guests:
  - name: huge
    memory: 64M
    hugepages: true
    balloon: false
    workload: { working_set: 100%, touch_rate: 200k/s, pattern: uniform }
  - name: swapper
    memory: 384M
    balloon: false
    workload: { working_set: 100%, touch_rate: 1M/s, pattern: uniform }
";
    let (s, rec) = run_recorded(&scenario(yaml));
    let (huge, swapper) = (&s.guests[0], &s.guests[1]);
    eprintln!(
        "hugetlb guest swapped peak {} B, major {}; 4K guest swapped peak {} B, major {}",
        huge.swapped_peak_bytes, huge.major_faults, swapper.swapped_peak_bytes, swapper.major_faults
    );
    assert!(swapper.swapped_peak_bytes > 64 * MIB, "the 4K guest must swap: {}", swapper.swapped_peak_bytes);
    assert!(swapper.major_faults > 0);
    assert_eq!(s.host.oom_kills, 0);
    assert_eq!(huge.state, Status::Running);
    assert_eq!(huge.swapped_peak_bytes, 0);
    assert_eq!(huge.swapped_end_bytes, 0);
    assert_eq!(huge.major_faults, 0);
    assert_eq!(huge.fault_ratio, 0.0);
    // Once mapped, a huge page stays: resident never shrinks, and within
    // the first 100 ms every one of the 32 huge pages has been touched.
    let mut last = 0;
    for sample in &rec.samples {
        let g = &sample.guests[0];
        assert_eq!(g.swapped_bytes, 0, "at {} ns", sample.t_ns);
        assert!(g.resident_bytes >= last, "hugetlb resident shrank at {} ns", sample.t_ns);
        last = g.resident_bytes;
    }
    assert_eq!(last, 64 * MIB);
}

#[test]
fn prealloc_that_must_swap_starts_late_by_the_disk_time() {
    // A 72 MiB prealloc guest on a 64 MiB host (16 384 frames) with disk
    // swap: QEMU's prealloc cannot finish before at least 18 432 − 16 384 =
    // 2048 pages have been written out. Page-outs go to adjacent swap slots
    // and a reclaim batch of SWAP_CLUSTER_MAX = 32 pages reaches the disk
    // as one merged request (mm/swapfile.c hands out slots in order): one
    // seek of 12.7 ms (the hdd preset: 8.5 ms seek + 4.17 ms half
    // rotation) per 32 pages, 396.875 us a page, more than the 150 MiB/s
    // transfer's 26 us. Writing them takes 2048 × 396.875 us = 812.8 ms;
    // reclaim may leave up to 50 ms of page-outs queued when prealloc ends
    // (the writeback throttle's backlog), hence the lower bound. The upper
    // bound adds the page faults (18 432 × 2.5 us = 46 ms) and 10% for
    // scanning and direct reclaim's batches.
    let yaml = "name: prealloc-swap
duration: 100ms
sample_every: 50ms
host:
  ram: 64M
  reserved: 0
  thp: never
  ksm: { run: false }
  swap: { size: 64M, device: hdd }
guests:
  - name: g
    memory: 72M
    balloon: false
    prealloc: true
    workload: { touch_rate: 1k/s, pattern: uniform, write: 0% }
";
    let (s, _) = run_recorded(&scenario(yaml));
    let must_write = 72 * 256 - 64 * 256;
    let per_page = 12.7e6 / 32.0;
    let lower = must_write as f64 * per_page - 50e6;
    let upper = 1.1 * (must_write as f64 * per_page + 18_432.0 * 2_500.0);
    let g = &s.guests[0];
    eprintln!(
        "prealloc with hdd swap: boot delay {:.3} s, expected {:.3}..{:.3} s ({} pages written)",
        g.boot_delay_ns as f64 / 1e9,
        lower / 1e9,
        upper / 1e9,
        s.host.vmstat.pswpout
    );
    assert!(s.host.vmstat.pswpout >= must_write);
    assert!(
        (lower..=upper).contains(&(g.boot_delay_ns as f64)),
        "boot delay {} ns, expected {lower}..{upper} ns",
        g.boot_delay_ns
    );
}
