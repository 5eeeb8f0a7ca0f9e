//! Conservation laws over random small scenarios, checked at every sample.
//!
//! Truth: bookkeeping identities of the model itself, stated from what
//! GuestSample and HostSample mean (src/engine/observe.rs), not from the
//! engine's code:
//! - every page of a live guest is in exactly one place: resident (4 KiB,
//!   THP or hugetlb pages, which `resident_bytes` includes), swapped or
//!   untouched, so the three add up to its memory; a dead guest (OOM-killed
//!   or never started) holds nothing;
//! - every ordinary frame is used or free: used + free = frames, and with
//!   KSM and the balloon off, used frames are guest pages plus zram's;
//! - every swap slot belongs to one guest page: the guests' swapped bytes
//!   and the slots resident pages kept in the swap cache add up to the
//!   swap in use, which never exceeds the device;
//! - hugetlb guests live in the pool and never swap;
//! - counters (touches, minor and major faults) are totals since the
//!   start, so they never go down, and a major fault is a touch;
//! - the reclaim counters (`host.vmstat`) keep /proc/vmstat's meanings.

use overcommit::model::Status;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use overcommit::engine::{self, EventKind, Summary};
use proptest::prelude::*;

use crate::support::{Item, Log, exact, scenario};

const MIB: u64 = 1 << 20;

#[derive(Debug, Clone)]
struct GroupSpec {
    count: u32,
    memory_mib: u64,
    pattern: PatternSpec,
    working_set_pct: u32,
    touch_rate_k: u32,
    write_pct: u32,
    prealloc: bool,
    hugepages: bool,
}

#[derive(Debug, Clone)]
enum PatternSpec {
    Uniform,
    Zipf(f64),
    HotCold(f64, f64),
}

#[derive(Debug, Clone)]
struct Spec {
    seed: u64,
    duration_ms: u64,
    sample_ms: u64,
    ram_mib: u64,
    reserved_mib: u64,
    thp_always: bool,
    /// KSM on (fast: 1000 pages a millisecond), with `use_zero_pages` or not.
    ksm: Option<bool>,
    pool_pages: u64,
    /// Swap size in MiB and device preset, or no swap at all.
    swap: Option<(u64, &'static str)>,
    groups: Vec<GroupSpec>,
}

impl Spec {
    /// Hugetlb pages of 2 MiB the pool holds: at least one when a group
    /// wants huge pages (else the scenario is invalid), never more than
    /// usable RAM holds.
    fn pool(&self) -> u64 {
        let usable_pages = (self.ram_mib - self.reserved_mib) / 2;
        let want = if self.groups.iter().any(|g| g.hugepages) { self.pool_pages.max(1) } else { self.pool_pages };
        want.min(usable_pages / 2)
    }

    fn memory_mib(g: &GroupSpec) -> u64 {
        // Hugepage guests take whole 2 MiB pages.
        if g.hugepages { g.memory_mib.next_multiple_of(2) } else { g.memory_mib }
    }

    fn yaml(&self) -> String {
        let mut y = String::new();
        let _ = writeln!(y, "name: conservation\nseed: {}", self.seed);
        let _ = writeln!(y, "duration: {}ms\nsample_every: {}ms", self.duration_ms, self.sample_ms);
        let _ = writeln!(y, "host:\n  ram: {}M\n  reserved: {}M", self.ram_mib, self.reserved_mib);
        let _ = writeln!(y, "  thp: {}", if self.thp_always { "always" } else { "never" });
        let _ = writeln!(y, "  hugepages: {{ size: 2M, count: {} }}", self.pool());
        match self.ksm {
            Some(zero) => {
                let _ = writeln!(
                    y,
                    "  ksm: {{ run: true, pages_to_scan: 1000, sleep_millisecs: 1, use_zero_pages: {zero} }}"
                );
            }
            None => {
                let _ = writeln!(y, "  ksm: {{ run: false }}");
            }
        }
        let _ = writeln!(y, "  balloon: {{ policy: none }}");
        if let Some((size, device)) = self.swap {
            let _ = writeln!(y, "  swap: {{ size: {size}M, device: {device} }}");
        }
        y.push_str("guests:\n");
        for (i, g) in self.groups.iter().enumerate() {
            let pattern = match g.pattern {
                PatternSpec::Uniform => "uniform".to_string(),
                PatternSpec::Zipf(s) => format!("zipf({s:.2})"),
                PatternSpec::HotCold(f, p) => format!("hotcold({f:.2}, {p:.2})"),
            };
            let _ = writeln!(y, "  - name: g{i}\n    count: {}\n    memory: {}M", g.count, Self::memory_mib(g));
            let _ = writeln!(y, "    balloon: false\n    prealloc: {}\n    hugepages: {}", g.prealloc, g.hugepages);
            let _ = writeln!(y, "    workload:\n      working_set: {}%", g.working_set_pct);
            let _ = writeln!(y, "      touch_rate: {}k/s\n      pattern: \"{pattern}\"", g.touch_rate_k);
            let _ = writeln!(y, "      write: {}%", g.write_pct);
            let _ = writeln!(y, "      shared: 40%\n      zero: 10%");
        }
        y
    }
}

fn pattern() -> impl Strategy<Value = PatternSpec> {
    prop_oneof![
        Just(PatternSpec::Uniform),
        (0.5f64..1.3).prop_map(PatternSpec::Zipf),
        (0.05f64..0.5, 0.5f64..0.99).prop_map(|(f, p)| PatternSpec::HotCold(f, p)),
    ]
}

fn group() -> impl Strategy<Value = GroupSpec> {
    (1u32..=3, 16u64..=128, pattern(), 10u32..=100, 20u32..=300, 0u32..=50, any::<bool>(), 0u8..4).prop_map(
        |(count, memory_mib, pattern, working_set_pct, touch_rate_k, write_pct, prealloc, kind)| GroupSpec {
            count,
            memory_mib,
            pattern,
            working_set_pct,
            touch_rate_k,
            write_pct,
            prealloc,
            // One group in four is hugepage-backed.
            hugepages: kind == 0,
        },
    )
}

fn spec() -> impl Strategy<Value = Spec> {
    let swap = prop_oneof![
        Just(None),
        (0u64..=512, prop_oneof![Just("nvme"), Just("ssd"), Just("hdd"), Just("zram")]).prop_map(Some),
    ];
    (
        any::<u64>(),
        prop_oneof![Just(1000u64), Just(2000u64)],
        prop_oneof![Just(100u64), Just(250u64)],
        64u64..=384,
        0u64..=32,
        any::<bool>(),
        prop_oneof![Just(None), any::<bool>().prop_map(Some)],
        0u64..=64,
        swap,
        proptest::collection::vec(group(), 1..=4),
    )
        .prop_map(
            |(seed, duration_ms, sample_ms, ram_mib, reserved_mib, thp_always, ksm, pool_pages, swap, groups)| Spec {
                seed,
                duration_ms,
                sample_ms,
                ram_mib,
                reserved_mib,
                thp_always,
                ksm,
                pool_pages,
                swap,
                groups,
            },
        )
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// What each instance is, by index: its memory and whether it is
/// hugepage-backed.
struct Instance {
    name: String,
    memory: u64,
    hugepages: bool,
}

fn instances(spec: &Spec) -> Vec<Instance> {
    let mut out = Vec::new();
    for (i, g) in spec.groups.iter().enumerate() {
        for k in 0..g.count {
            out.push(Instance { name: format!("g{i}-{k}"), memory: Spec::memory_mib(g) * MIB, hugepages: g.hugepages });
        }
    }
    out
}

/// Check every law at every sample, and the summary against the last one.
fn check(spec: &Spec, log: &Log, summary: &Summary) -> Result<(), String> {
    let inst = instances(spec);
    let by_name: BTreeMap<&str, usize> = inst.iter().enumerate().map(|(i, g)| (g.name.as_str(), i)).collect();
    let frames_bytes = (spec.ram_mib - spec.reserved_mib - 2 * spec.pool()) * MIB;
    let pool_bytes = spec.pool() * 2 * MIB;
    // The device holds whole 4 KiB slots.
    let swap_bytes = spec.swap.map_or(0, |(size, _)| size * MIB / 4096 * 4096);
    let mut dead = vec![false; inst.len()];
    let mut prev: Option<&overcommit::engine::Sample> = None;
    let mut samples = 0u64;
    for item in &log.items {
        let s = match item {
            Item::Event(e) => {
                if matches!(e.kind, EventKind::OomKill | EventKind::FailedToStart) {
                    let g = *by_name.get(e.guest.as_str()).ok_or_else(|| format!("event for unknown guest {e:?}"))?;
                    ensure!(!dead[g], "{} died twice: {e:?}", e.guest);
                    dead[g] = true;
                }
                continue;
            }
            Item::Sample(s) => s,
        };
        samples += 1;
        let t = s.t_ns;
        let h = &s.host;
        ensure!(s.guests.len() == inst.len(), "at {t}: {} guest samples for {} guests", s.guests.len(), inst.len());
        ensure!(h.frames_bytes == frames_bytes, "at {t}: frames {} != {frames_bytes}", h.frames_bytes);
        ensure!(
            h.used_bytes.checked_add(h.free_bytes) == Some(h.frames_bytes),
            "at {t}: used {} + free {} != frames {}",
            h.used_bytes,
            h.free_bytes,
            h.frames_bytes
        );
        ensure!(
            h.guest_resident_bytes + h.zram_bytes + h.ksm_bytes == h.used_bytes,
            "at {t}: guest resident {} + zram {} + KSM pages {} != used {} (balloons are off)",
            h.guest_resident_bytes,
            h.zram_bytes,
            h.ksm_bytes,
            h.used_bytes
        );
        if spec.ksm.is_none() {
            ensure!(h.ksm_bytes == 0, "at {t}: KSM is off but holds {} bytes", h.ksm_bytes);
        }
        // A KSM page is freed with its last mapping: never more KSM pages
        // than mappings to them.
        let shared_total: u64 = s.guests.iter().map(|g| g.shared_bytes).sum();
        ensure!(
            h.ksm_bytes <= shared_total,
            "at {t}: {} bytes of KSM pages for {shared_total} bytes mapped to them",
            h.ksm_bytes
        );
        ensure!(h.swap_used_bytes <= swap_bytes, "at {t}: swap used {} > device {swap_bytes}", h.swap_used_bytes);
        ensure!(h.pool_bytes == pool_bytes, "at {t}: pool {} != {pool_bytes}", h.pool_bytes);
        ensure!(h.pool_used_bytes <= h.pool_bytes, "at {t}: pool used {} > pool {}", h.pool_used_bytes, h.pool_bytes);
        let (mut swapped, mut small_resident, mut huge_resident) = (0u64, 0u64, 0u64);
        for (i, (g, spec_g)) in s.guests.iter().zip(&inst).enumerate() {
            let name = &spec_g.name;
            let sum = g.resident_bytes.checked_add(g.swapped_bytes).and_then(|v| v.checked_add(g.untouched_bytes));
            if dead[i] {
                ensure!(
                    sum == Some(0),
                    "at {t}: dead {name} still holds resident {} swapped {} untouched {}",
                    g.resident_bytes,
                    g.swapped_bytes,
                    g.untouched_bytes
                );
            } else {
                ensure!(
                    sum == Some(spec_g.memory),
                    "at {t}: {name}: resident {} + swapped {} + untouched {} != memory {}",
                    g.resident_bytes,
                    g.swapped_bytes,
                    g.untouched_bytes,
                    spec_g.memory
                );
            }
            ensure!(
                g.huge_bytes <= g.resident_bytes,
                "at {t}: {name}: huge {} > resident {}",
                g.huge_bytes,
                g.resident_bytes
            );
            if spec_g.hugepages {
                ensure!(g.swapped_bytes == 0, "at {t}: hugetlb guest {name} has {} swapped", g.swapped_bytes);
                ensure!(g.huge_bytes == g.resident_bytes, "at {t}: hugetlb guest {name} has 4 KiB pages resident");
                ensure!(g.major_faults == 0, "at {t}: hugetlb guest {name} took major faults");
                huge_resident += g.resident_bytes;
            } else {
                if !spec.thp_always {
                    ensure!(g.huge_bytes == 0, "at {t}: {name} has THP with thp: never");
                }
                // The guest's own frames: merged pages map KSM's.
                ensure!(g.shared_bytes <= g.resident_bytes, "at {t}: {name}: shared > resident");
                small_resident += g.resident_bytes - g.shared_bytes;
            }
            swapped += g.swapped_bytes;
            ensure!(
                g.major_faults <= g.touches,
                "at {t}: {name}: {} major faults > {} touches",
                g.major_faults,
                g.touches
            );
            if let Some(p) = prev {
                let q = &p.guests[i];
                ensure!(g.touches >= q.touches, "at {t}: {name}: touches went down {} -> {}", q.touches, g.touches);
                ensure!(
                    g.minor_faults >= q.minor_faults,
                    "at {t}: {name}: minor faults went down {} -> {}",
                    q.minor_faults,
                    g.minor_faults
                );
                ensure!(
                    g.major_faults >= q.major_faults,
                    "at {t}: {name}: major faults went down {} -> {}",
                    q.major_faults,
                    g.major_faults
                );
            }
        }
        // Resident pages that kept their slot since their swap-in (the
        // swap cache, `SwapCached`) hold the rest. A KSM page in swap
        // takes one slot for all the entries its sharers hold (each in
        // its guest's swapped pages, as VmSwap counts them).
        ensure!(
            h.ksm_swap_entries_bytes >= h.ksm_swap_slots_bytes,
            "at {t}: {} bytes of KSM entries for {} bytes of their slots",
            h.ksm_swap_entries_bytes,
            h.ksm_swap_slots_bytes
        );
        ensure!(
            swapped - h.ksm_swap_entries_bytes + h.ksm_swap_slots_bytes + h.swap_cached_bytes == h.swap_used_bytes,
            "at {t}: guests' swapped {swapped} - KSM entries {} + KSM slots {} + swap cached {} != swap used {}",
            h.ksm_swap_entries_bytes,
            h.ksm_swap_slots_bytes,
            h.swap_cached_bytes,
            h.swap_used_bytes
        );
        ensure!(
            small_resident == h.guest_resident_bytes,
            "at {t}: 4 KiB guests' resident {small_resident} != host guest resident {}",
            h.guest_resident_bytes
        );
        ensure!(
            huge_resident <= h.pool_used_bytes,
            "at {t}: hugetlb guests' resident {huge_resident} > pool used {}",
            h.pool_used_bytes
        );
        if let Some(p) = prev {
            ensure!(t > p.t_ns, "samples out of order: {} then {t}", p.t_ns);
        }
        prev = Some(s);
    }
    let want = spec.duration_ms / spec.sample_ms + 1;
    ensure!(samples == want, "{samples} samples, expected duration / sample_every + 1 = {want}");
    let last = prev.ok_or("no samples")?;
    ensure!(last.t_ns == spec.duration_ms * 1_000_000, "last sample at {} ns", last.t_ns);

    // The summary agrees with the last sample and the events.
    let host = &summary.host;
    ensure!(host.peak_used_bytes <= frames_bytes, "peak used {} > frames {frames_bytes}", host.peak_used_bytes);
    ensure!(host.min_free_bytes <= frames_bytes, "min free {} > frames", host.min_free_bytes);
    ensure!(host.swap_used_peak_bytes <= swap_bytes, "swap peak {} > device {swap_bytes}", host.swap_used_peak_bytes);
    let oom = summary.guests.iter().filter(|g| g.state == Status::OomKilled).count() as u64;
    let failed = summary.guests.iter().filter(|g| g.state == Status::FailedToStart).count() as u64;
    let running = summary.guests.iter().filter(|g| g.state == Status::Running).count() as u64;
    ensure!(oom == host.oom_kills, "{oom} guests oom_killed but oom_kills = {}", host.oom_kills);
    ensure!(failed == host.guests_failed_to_start, "failed {failed} != {}", host.guests_failed_to_start);
    ensure!(running == host.guests_running, "running {running} != {}", host.guests_running);
    ensure!(oom + failed + running == inst.len() as u64, "a guest in an unknown state: {:?}", summary.guests);
    // /proc/vmstat's meanings (Documentation/admin-guide/mm and
    // mm/vmscan.c): guest memory is anonymous, so every page reclaim
    // steals is written to swap (pswpout); every swap-in (pswpin) is a
    // guest's major fault; a THP is allocated by a guest's THP fault and
    // split at most once; reclaim steals only pages it scanned.
    let v = &host.vmstat;
    ensure!(
        v.pgsteal_kswapd + v.pgsteal_direct == v.pswpout,
        "pgsteal {} + {} != pswpout {}",
        v.pgsteal_kswapd,
        v.pgsteal_direct,
        v.pswpout
    );
    let majors: u64 = summary.guests.iter().map(|g| g.major_faults).sum();
    ensure!(v.pswpin == majors, "pswpin {} != the guests' major faults {majors}", v.pswpin);
    let thps: u64 = summary.guests.iter().map(|g| g.thp_faults).sum();
    ensure!(v.thp_fault_alloc == thps, "thp_fault_alloc {} != the guests' THP faults {thps}", v.thp_fault_alloc);
    ensure!(v.thp_split_page <= v.thp_fault_alloc, "{} THP splits of {} THPs", v.thp_split_page, v.thp_fault_alloc);
    ensure!(v.pgsteal_kswapd <= v.pgscan_kswapd, "kswapd stole {} of {} scanned", v.pgsteal_kswapd, v.pgscan_kswapd);
    ensure!(
        v.pgsteal_direct <= v.pgscan_direct,
        "direct reclaim stole {} of {} scanned",
        v.pgsteal_direct,
        v.pgscan_direct
    );
    ensure!(v.pgscan_direct == 0 || v.allocstall > 0, "direct scans {} without an allocstall", v.pgscan_direct);
    ensure!(v.pgscan_kswapd == 0 || v.pageoutrun > 0, "kswapd scans {} without a run", v.pgscan_kswapd);
    for (i, (g, spec_g)) in summary.guests.iter().zip(&inst).enumerate() {
        let name = &spec_g.name;
        ensure!(
            g.name == *name && g.memory_bytes == spec_g.memory,
            "summary guest {i} is {} of {}",
            g.name,
            g.memory_bytes
        );
        ensure!(dead[i] == (g.state != Status::Running), "{name} is {} but its events say dead = {}", g.state, dead[i]);
        ensure!((0.0..=1.0).contains(&g.fault_ratio), "{name}: fault ratio {}", g.fault_ratio);
        ensure!(g.resident_peak_bytes <= g.memory_bytes, "{name}: resident peak {} > memory", g.resident_peak_bytes);
        ensure!(g.swapped_peak_bytes <= g.memory_bytes, "{name}: swapped peak {} > memory", g.swapped_peak_bytes);
        let l = &last.guests[i];
        ensure!(g.touches == l.touches, "{name}: summary touches {} != last sample {}", g.touches, l.touches);
        ensure!(g.major_faults == l.major_faults, "{name}: summary major faults differ from the last sample");
        ensure!(g.minor_faults == l.minor_faults, "{name}: summary minor faults differ from the last sample");
        ensure!(g.resident_end_bytes == l.resident_bytes, "{name}: resident at end differs from the last sample");
        ensure!(g.swapped_end_bytes == l.swapped_bytes, "{name}: swapped at end differs from the last sample");
        ensure!(g.swapped_end_bytes <= g.swapped_peak_bytes, "{name}: swapped at end above its peak");
        if !dead[i] {
            ensure!(g.resident_end_bytes <= g.resident_peak_bytes, "{name}: resident at end above its peak");
        }
    }
    Ok(())
}

/// Run `spec` and check it; the error carries the scenario text.
fn run_and_check(spec: &Spec) -> Result<(), TestCaseError> {
    let yaml = spec.yaml();
    let s = scenario(&yaml);
    let mut log = Log::default();
    let summary = engine::run(&s, exact(), &mut log).expect("the run plays");
    check(spec, &log, &summary).map_err(|msg| TestCaseError::fail(format!("{msg}\n--- scenario ---\n{yaml}")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn pages_frames_and_slots_are_conserved_at_every_sample(spec in spec()) {
        run_and_check(&spec)?;
    }
}
