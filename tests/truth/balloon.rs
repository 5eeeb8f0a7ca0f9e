//! Ballooning against its sources: MoM's balloon rules (vdsm's
//! 02-balloon.policy, docs/sources/ksm-balloon-policies.md section 1.2) and
//! QEMU's virtio-balloon on hugetlbfs (section 4: a huge page is freed only
//! when all of its 4 KiB pieces are ballooned, which one 256-page request
//! never covers).

use overcommit::engine::EventKind;

use crate::support::{run_recorded, scenario};

const MIB: u64 = 1 << 20;

/// Four 1 GiB guests on a 4 GiB host touch 900 MiB each, then from 30 s
/// only 300 MiB: 600 MiB of each stays resident but idle, and the host has
/// about 12% free, under MoM's 20% pressure threshold.
const IDLE_AFTER_BURST: &str = "
name: mom-balloon
seed: 3
duration: 400s
sample_every: 10s
host:
  ram: 4G
  reserved: 0
  thp: never
  balloon: { policy: mom, interval: 10s }
guests:
  - name: vm
    count: 4
    memory: 1G
    workload:
      working_set: 900M
      touch_rate: 200k/s
      pattern: uniform
      phases:
        - { at: 30s, working_set: 300M }
";

#[test]
fn mom_shrinks_by_at_most_five_percent_a_tick_keeps_the_working_set_and_gives_back() {
    let s = scenario(IDLE_AFTER_BURST);
    let (summary, rec) = run_recorded(&s);
    let memory = 1024 * MIB;
    let mut grew_after_shrinking = false;
    let mut shrank = false;
    for w in rec.samples.windows(2) {
        for (a, b) in w[0].guests.iter().zip(&w[1].guests) {
            let cur = memory - a.balloon_bytes;
            let change = a.balloon_bytes.abs_diff(b.balloon_bytes);
            // max_balloon_change_percent = 0.05 of the current size per
            // policy run (one run per 10 s sample), plus the 4 KiB rounding.
            assert!(
                change <= cur / 20 + 4096,
                "balloon moved {change} B at {} s from {cur} B",
                w[1].t_ns / 1_000_000_000
            );
            // Never below what the guest uses (its 300 MiB working set
            // after 30 s, 900 MiB before).
            let ws = if w[1].t_ns <= 30_000_000_000 { 900 * MIB } else { 300 * MIB };
            assert!(memory - b.balloon_bytes >= ws, "the guest keeps {} B < its working set", memory - b.balloon_bytes);
            shrank |= b.balloon_bytes > a.balloon_bytes;
            grew_after_shrinking |= shrank && b.balloon_bytes < a.balloon_bytes;
        }
    }
    assert!(shrank, "the balloons inflated under pressure");
    assert!(grew_after_shrinking, "the balloons deflated when the pressure was gone");
    // The balloons took idle pages: host free memory rose over 20% of RAM
    // and no guest had to swap its working set.
    let last = rec.samples.last().expect("samples");
    assert!(last.host.free_bytes > 4096 * MIB / 5, "free at the end: {} MiB", last.host.free_bytes / MIB);
    for g in &summary.guests {
        assert_eq!(g.guest_swap_major_faults, 0, "{} swapped inside", g.name);
        assert_eq!(g.guest_oom_events, 0);
        assert!(g.balloon_peak_bytes > 0);
    }
    assert!(rec.events.iter().any(|e| e.kind == EventKind::Balloon));
}

#[test]
fn a_balloon_on_hugetlbfs_memory_gives_the_host_nothing() {
    // Three 1 GiB hugetlb guests preallocated from a 3.5 GiB pool on a
    // 4 GiB host: ordinary memory is 0.5 GiB free of 4 GiB (12.5%), so MoM
    // shrinks their balloons; QEMU never frees a 2 MiB page through them.
    let yaml =
        IDLE_AFTER_BURST.replace("  thp: never\n", "  thp: never\n  hugepages: { size: 2M, count: 1792 }\n").replace(
            "    count: 4\n    memory: 1G\n",
            "    count: 3\n    memory: 1G\n    hugepages: true\n    prealloc: true\n",
        );
    let s = scenario(&yaml);
    let (summary, rec) = run_recorded(&s);
    let first = &rec.samples[1];
    for x in &rec.samples[1..] {
        assert_eq!(x.host.pool_used_bytes, first.host.pool_used_bytes, "the pool gave memory back at {} ns", x.t_ns);
        assert_eq!(x.host.free_bytes, first.host.free_bytes);
    }
    assert!(summary.guests.iter().all(|g| g.balloon_peak_bytes > 0), "MoM did inflate the balloons");
    assert!(rec.events.iter().any(|e| e.kind == EventKind::Balloon && e.detail.contains("the host gains nothing")));
}

/// Two 1 GiB guests using 980 MiB each on a 2 GiB host: about 4% free,
/// under MoM's 5% critical line, where its guest margin turns negative
/// (guest_free_percent = -0.05 + host free share, "Force guest to swap"):
/// MoM takes working-set memory.
const SQUEEZE: &str = "
name: squeeze
seed: 3
duration: 120s
sample_every: 10s
host:
  ram: 2G
  reserved: 0
  thp: never
  balloon: { policy: mom, interval: 10s }
guests:
  - name: vm
    count: 2
    memory: 1G
    workload: { working_set: 980M, touch_rate: 100k/s, pattern: uniform }
";

#[test]
fn a_squeezed_guest_swaps_inside_kills_a_process_or_deflates_on_oom() {
    let run = |set: &str| {
        let yaml = SQUEEZE.replace("    memory: 1G\n", &format!("    memory: 1G\n{set}"));
        run_recorded(&scenario(&yaml))
    };
    // No guest swap: the guest's OOM killer ends a process.
    let (s, _) = run("");
    assert!(s.guests.iter().all(|g| g.balloon_peak_bytes > 0 && g.guest_oom_events > 0), "{:?}", s.guests);
    // With swap inside, the coldest working-set pages go there and come
    // back as guest-side major faults; the host swaps nothing.
    let (s, _) = run("    guest_swap: 512M\n");
    for g in &s.guests {
        assert!(g.guest_swap_major_faults > 0 && g.guest_oom_events == 0, "{g:?}");
        assert_eq!(g.major_faults, 0);
    }
    // deflate_on_oom: the guest's OOM notifier deflates 256 pages at a time
    // (VIRTIO_BALLOON_OOM_NR_PAGES) instead.
    let (s, rec) = run("    deflate_on_oom: true\n");
    assert!(s.guests.iter().all(|g| g.guest_oom_events == 0 && g.guest_swap_major_faults == 0));
    assert!(rec.events.iter().any(|e| e.kind == EventKind::Balloon && e.detail.contains("deflate_on_oom")));
    // No balloon statistics: MoM skips the guest ("MOM will ignore VMs with
    // missing balloon information").
    let (s, _) = run("    balloon_stats: false\n");
    assert!(s.guests.iter().all(|g| g.balloon_peak_bytes == 0));
}
