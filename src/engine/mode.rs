//! How a run plays its guests' touches: one by one, or by events (the
//! faults and copy-on-write breaks, with the hits between them counted).
//! The two are the same in distribution (`tests/truth/events.rs`), so the
//! choice is one of speed, which [`Mode::Auto`] makes before the run from
//! the scenario alone, so that a scenario and seed give the same output
//! however they are run.
//!
//! An event costs several cache misses (its page drawn by weight, the
//! event set and the reclaim state updated), a touch one or two: event mode
//! wins where few touches fault. Measured on this project's benchmark
//! machine: a page-exact run is faster by events at 0.6% of touches
//! faulting (the quickstart of the time, 2.25 s against 3.39 s; today's
//! quickstart 6.19 s against 6.51 s at 0.45%) and slower at 5% and
//! more (the large host's 1/8 twin, the lessons on swap and on all
//! mechanisms: 1.1 to 4 times slower). Sampled runs are the large guests'
//! (`sampling::auto_sample_rate`), where event mode's lead is largest (the
//! 512 GiB host 2.4 times faster, with four times the touch rates 22
//! times) and its worst case mild (the quickstart at 1/8 with 24 guests,
//! 2.9% of touches faulting, 1.5 times slower): they play by events.

use crate::latency::che;
use crate::scenario::{Pattern, Scenario};

/// How touches are played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// One by one (the reference).
    #[default]
    Touches,
    /// By events.
    Events,
    /// Whichever [`events_pay`] says is faster for the scenario.
    Auto,
}

impl Mode {
    /// `Events` when `events`, else `Touches`.
    pub fn events_if(events: bool) -> Mode {
        if events { Mode::Events } else { Mode::Touches }
    }

    /// Whether a run of `s` at sampling rate `rate` plays by events.
    pub fn plays_events(self, s: &Scenario, rate: f64) -> bool {
        match self {
            Mode::Touches => false,
            Mode::Events => true,
            Mode::Auto => events_pay(s, rate),
        }
    }
}

/// Page-exact runs play by events when under this share of the touches
/// are expected to fault (see the module's figures: 0.6% is faster by
/// events, 2.6% the same either way at 1/8, 5% slower).
pub const EVENTS_BELOW: f64 = 0.01;

/// Whether event mode is expected to play `s` at `rate` faster: sampled,
/// or [`expected_fault_share`] under [`EVENTS_BELOW`].
pub fn events_pay(s: &Scenario, rate: f64) -> bool {
    rate < 1.0 || expected_fault_share(s) < EVENTS_BELOW
}

/// The share of all touches expected to fault: first touches, and the
/// misses once memory is full. First touches are the pages (on THP the
/// 2 MiB regions, one fault each) a guest's touches over the run are
/// expected to reach at least once, over all of its touches. Once memory
/// is full, at the start and after each phase (the largest), the guests'
/// pages compete for the RAM left to ordinary memory as items of one LRU
/// cache (the kernel's reclaim approximates LRU), each page touched at its
/// guest's rate times its share of the pattern, and Che's approximation
/// gives the share of touches that miss; without swap nothing is paged
/// out and none do. Hugetlb-backed guests take no ordinary memory and
/// locked or preallocated ones hold all of theirs: they leave the rest to
/// the others and are not in the cache's streams. KSM and balloons, which
/// lower the share, are left out: a guess for speed, not a result.
pub fn expected_fault_share(s: &Scenario) -> f64 {
    first_touch_share(s) + steady_miss_share(s)
}

/// A fault's work in the touch loop, in touches: a touch that hits is a
/// page-state load and store, a fault also a reclaim step, a swap slot, a
/// device queue and a histogram record. Measured on this project's machine
/// (`learn mix`, 16 guests, swap only): 12 ns a touch, about 190 ns a fault.
const FAULT_TOUCHES: f64 = 16.0;

/// A touch-by-touch run's expected cost in touches' work, to order a
/// sweep's runs longest first (it decides nothing in a run's result). The
/// guests' touches at their peak rates, each group's slowed by its faults
/// (a closed loop: at f faults a touch, each stalling d, a guest at rate r
/// makes r / (1 + r·f·d) touches a second), a fault counted as
/// [`FAULT_TOUCHES`], and the run's pages. f is [`expected_fault_share`],
/// d the swap device's read latency plus the kernel's swap-in overhead.
pub fn expected_work(s: &Scenario) -> f64 {
    let f = expected_fault_share(s);
    let d = s.host.swap.as_ref().map_or(0.0, |w| w.figures().read_latency.nanos() as f64)
        + crate::latency::Costs::default().swapin_overhead_ns;
    let touches: f64 = s
        .guests
        .iter()
        .map(|g| {
            let r = super::sampling::peak_rate(g);
            let played = r / (1.0 + r * f * d / 1e9);
            played * f64::from(g.count) * s.duration.as_secs_f64()
        })
        .sum();
    touches * (1.0 + FAULT_TOUCHES * f) + super::configured_pages(s)
}

/// A swap-in's expected time on the host's swap device, in ns (0 without
/// swap): its read latency, plus the queue ahead of it where the guests'
/// expected faults keep the device busy. The faults are Che's share of the
/// guests' touches once memory is full ([`expected_fault_share`]'s), each
/// with a page-out, each taking the device for QueuedDevice's occupancy
/// (4 KiB at its bandwidth, or its latency over its queue depth; a block
/// device merges 32 page-outs into one write). Below saturation the queue
/// is the M/D/1 mean ρ·s / (2(1 − ρ)); at or past it every other guest's
/// read is ahead (a vCPU waits for one swap-in at a time).
pub fn expected_swapin_ns(s: &Scenario) -> f64 {
    use crate::policy::resolve::Backend;
    let Some(swap) = s.host.swap.as_ref() else { return 0.0 };
    let f = swap.figures();
    let (read, write) = (f.read_latency.nanos() as f64, f.write_latency.nanos() as f64);
    let per_page = 4096.0 * 1e9 / f.bandwidth_bytes_per_s.max(1) as f64;
    let depth = f64::from(f.queue_depth.max(1));
    let merge = if matches!(swap.backend, Backend::Device(_)) { 32.0 } else { 1.0 };
    let (read_occupancy, write_occupancy) = (per_page.max(read / depth), per_page.max(write / (depth * merge)));
    let rate: f64 = s.guests.iter().map(|g| super::sampling::peak_rate(g) * f64::from(g.count)).sum();
    let others = (s.guests.iter().map(|g| f64::from(g.count)).sum::<f64>() - 1.0).max(0.0);
    let rho = steady_miss_share(s) * rate * (read_occupancy + write_occupancy) / 1e9;
    let full = others * read_occupancy;
    let queue = if rho >= 1.0 { full } else { (rho * read_occupancy / (2.0 * (1.0 - rho))).min(full) };
    read + queue
}

/// The misses once memory is full (see [`expected_fault_share`]).
fn steady_miss_share(s: &Scenario) -> f64 {
    if s.host.swap.is_none() {
        return 0.0;
    }
    // Phases the run reaches.
    let mut times: Vec<u64> = vec![0];
    for g in &s.guests {
        times.extend(g.workload.phases.iter().map(|p| p.at.nanos()).filter(|&t| t < s.duration.nanos()));
    }
    times.sort_unstable();
    times.dedup();
    times.into_iter().map(|t| share_at(s, t)).fold(0.0, f64::max)
}

/// The share of all of a run's touches that are first touches of a page
/// (or of a THP region): per guest, the units of its largest working set
/// that its touches reach at least once, Σ (1 − e^(−pᵢ·N)) for N touches
/// at its largest rate (a bound: phases spend some of the run smaller).
fn first_touch_share(s: &Scenario) -> f64 {
    let duration = s.duration.as_secs_f64();
    let (mut first, mut touches) = (0.0, 0.0);
    for g in s.guests.iter().filter(|g| !g.hugepages && !g.prealloc) {
        let w = &g.workload;
        let reached = || w.phases.iter().filter(|p| p.at.nanos() < s.duration.nanos());
        let rate = reached().filter_map(|p| p.touch_rate).fold(w.touch_rate.per_sec(), |a, r| a.max(r.per_sec()));
        let ws = reached().filter_map(|p| p.working_set).fold(w.working_set, |a, b| a.max(b));
        let n = rate * duration;
        let unit = if s.host.thp == crate::scenario::ThpMode::Never { 1 } else { 512 };
        let units = ws.pages(4096).min(g.memory.pages(4096)).div_ceil(unit);
        if units == 0 || n <= 0.0 {
            continue;
        }
        let classes = che::unit_classes(&w.pattern, units, unit);
        let total: f64 = classes.iter().map(|c| c.0 * c.1).sum();
        let reached: f64 = classes.iter().map(|&(k, p)| k * -(-(p / total) * n).exp_m1()).sum();
        first += reached * f64::from(g.count);
        touches += n * f64::from(g.count);
    }
    if touches > 0.0 { first / touches } else { 0.0 }
}

/// [`expected_fault_share`] with the workloads as they are at `t` ns.
fn share_at(s: &Scenario, t: u64) -> f64 {
    let mut cache = s.host.usable_for_4k().pages(4096) as f64;
    let mut classes: che::Classes = Vec::new();
    for g in &s.guests {
        let count = f64::from(g.count);
        if g.hugepages {
            continue;
        }
        if g.locked || g.prealloc {
            cache -= g.memory.pages(4096) as f64 * count;
            continue;
        }
        let w = &g.workload;
        let (mut ws, mut rate, mut pattern): (_, _, Pattern) = (w.working_set, w.touch_rate, w.pattern);
        for p in w.phases.iter().filter(|p| p.at.nanos() <= t) {
            ws = p.working_set.unwrap_or(ws);
            rate = p.touch_rate.unwrap_or(rate);
            pattern = p.pattern.unwrap_or(pattern);
        }
        let pages = ws.pages(4096).min(g.memory.pages(4096));
        if pages < 2 || rate.per_sec() <= 0.0 {
            continue;
        }
        let mine = che::unit_classes(&pattern, pages, 1);
        let total: f64 = mine.iter().map(|c| c.0 * c.1).sum();
        if total <= 0.0 {
            continue;
        }
        classes.extend(mine.into_iter().map(|(n, w)| (n * count, rate.per_sec() * w / total)));
    }
    if cache <= 0.0 {
        return if classes.is_empty() { 0.0 } else { 1.0 };
    }
    che::miss_ratio_classes(&classes, cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(yaml: &str) -> Scenario {
        crate::scenario::load_str(yaml, "test.yaml", "test", &[]).expect("loads").scenario
    }

    const HOST: &str = "
name: m
duration: 10s
host: { ram: 4G, reserved: 0, thp: never, swap: { size: 8G, device: ssd } }
";

    #[test]
    fn uniform_guests_over_ram_fault_one_minus_ram_over_working_sets() {
        // Che with equal rates is exact: N(1 − e^(−λT)) = C gives a hit
        // ratio C/N. Two guests touching 3 GiB each uniformly at the same
        // rate share 4 GiB: 1 − 4/6 of touches fault.
        let s = scenario(&format!(
            "{HOST}guests:\n  - {{ name: u, count: 2, memory: 4G, workload: {{ working_set: 3G, touch_rate: 10k/s, pattern: uniform }} }}\n"
        ));
        let f = steady_miss_share(&s);
        assert!((f - (1.0 - 4.0 / 6.0)).abs() < 1e-6, "{f}");
        assert!(!events_pay(&s, 1.0), "a third of touches faulting plays touch by touch");
        assert!(events_pay(&s, 1.0 / 8.0), "sampled runs play by events");
        // Working sets that fit: no fault once they are in.
        let fit = scenario(&format!(
            "{HOST}guests:\n  - {{ name: u, count: 2, memory: 4G, workload: {{ working_set: 1G, touch_rate: 10k/s, pattern: uniform }} }}\n"
        ));
        assert_eq!(steady_miss_share(&fit), 0.0);
    }

    #[test]
    fn first_touches_are_the_pages_reached_at_least_once() {
        // 1,000 pages (4000K) touched uniformly 10,000 times: each is
        // reached with chance 1 − e^(−10), so the first touches are
        // 1,000·(1 − e^(−10)) of the 10,000 touches. On THP the two 2 MiB
        // regions under them fault once each: 2 of 10,000. Working sets
        // that fit: nothing more.
        let yaml = |thp: &str| {
            format!(
                "name: m\nduration: 10s\nhost: {{ ram: 1G, reserved: 0, thp: {thp}, swap: {{ size: 1G, device: ssd }} }}\nguests:\n  - {{ name: u, memory: 4000K, workload: {{ working_set: 4000K, touch_rate: 1k/s, pattern: uniform }} }}\n"
            )
        };
        let f = expected_fault_share(&scenario(&yaml("never")));
        assert!((f - 1000.0 * -(-10.0f64).exp_m1() / 10_000.0).abs() < 1e-9, "{f}");
        let f = expected_fault_share(&scenario(&yaml("madvise")));
        assert!((f - 2.0 / 10_000.0).abs() < 1e-9, "{f}");
        assert!(events_pay(&scenario(&yaml("madvise")), 1.0));
        assert!(!events_pay(&scenario(&yaml("never")), 1.0), "a tenth of touches are first touches");
    }

    #[test]
    fn a_phase_that_overflows_ram_counts_and_swap_is_needed_to_fault() {
        // 2 × 1 GiB fits; the phase's 2 × 3 GiB does not (as above), when
        // the run reaches it.
        let yaml = |swap: &str, duration: &str| {
            format!(
                "name: m\nduration: {duration}\nhost: {{ ram: 4G, reserved: 0, thp: never{swap} }}\nguests:\n  - {{ name: u, count: 2, memory: 4G, workload: {{ working_set: 1G, touch_rate: 10k/s, pattern: uniform, phases: [{{ at: 5s, working_set: 3G }}] }} }}\n"
            )
        };
        let swap = ", swap: { size: 8G, device: ssd }";
        let f = steady_miss_share(&scenario(&yaml(swap, "10s")));
        assert!((f - 1.0 / 3.0).abs() < 1e-6, "{f}");
        assert_eq!(steady_miss_share(&scenario(&yaml(swap, "5s"))), 0.0, "a run that ends as the phase begins");
        assert_eq!(steady_miss_share(&scenario(&yaml("", "10s"))), 0.0, "without swap nothing is paged out");
    }

    #[test]
    fn locked_guests_hold_their_memory_and_the_others_share_the_rest() {
        // A locked 2 GiB guest leaves 2 GiB to a uniform guest touching
        // 3 GiB: 1 − 2/3 of its touches fault, and only its touches count.
        let s = scenario(&format!(
            "{HOST}guests:\n  - {{ name: l, memory: 2G, locked: true, workload: {{ working_set: 1G, touch_rate: 10k/s }} }}\n  - {{ name: u, memory: 4G, workload: {{ working_set: 3G, touch_rate: 10k/s, pattern: uniform }} }}\n"
        ));
        let f = steady_miss_share(&s);
        assert!((f - 1.0 / 3.0).abs() < 1e-6, "{f}");
    }

    #[test]
    fn the_shipped_scenarios_play_as_measured_fastest() {
        // The module's measurements: the quickstart's first 80 s (before
        // its working sets grow; 2.31 s by events against 2.49 s touch by
        // touch) is faster by events, the swap lesson and the mix lesson's
        // densest point touch by touch (5% and 4.5% measured). The whole
        // quickstart is expected at 2.6%, KSM and the balloons left out,
        // and plays touch by touch (6.51 s) where events take 6.19 s: 0.45%
        // of its touches fault.
        let load = |path: &str, set: &[&str]| {
            let text = std::fs::read_to_string(path).expect("a shipped scenario");
            let set: Vec<crate::scenario::Override> = set.iter().map(|o| o.parse().expect("PATH=VALUE")).collect();
            crate::scenario::load_str(&text, path, "s", &set).expect("loads").scenario
        };
        let root = env!("CARGO_MANIFEST_DIR");
        let quickstart = load(&format!("{root}/scenarios/quickstart.yaml"), &["duration=80s"]);
        assert!(events_pay(&quickstart, 1.0), "quickstart: {}", expected_fault_share(&quickstart));
        for (lesson, set) in [("swap", &[][..]), ("mix", &["guests.app.count=16"][..])] {
            let s = load(&format!("{root}/scenarios/learn/{lesson}.yaml"), set);
            assert!(!events_pay(&s, 1.0), "{lesson}: {}", expected_fault_share(&s));
        }
    }

    #[test]
    fn the_swap_lessons_runs_are_expected_in_the_order_they_take() {
        // Measured on this project's machine, each run alone through the
        // CLI (`run scenarios/learn/swap.yaml --set host.swap.device=D
        // --touches`): hdd 0.52 s, ssd 1.44 s, nvme 1.57 s, zram 3.00 s.
        // Every run has the same touches at full speed and the same
        // expected faults: only the device's read latency orders them,
        // slowing the guests' closed loops. With the runs taken longest
        // first, the lesson on two workers took 3.9-4.4 s against 4.9-6.5 s
        // in the sweep's order.
        let text = std::fs::read_to_string(format!("{}/scenarios/learn/swap.yaml", env!("CARGO_MANIFEST_DIR")))
            .expect("the lesson");
        let work: Vec<f64> = ["hdd", "ssd", "nvme", "zram"]
            .iter()
            .map(|d| {
                let set = [format!("host.swap.device={d}").parse().expect("PATH=VALUE")];
                expected_work(&crate::scenario::load_str(&text, "swap.yaml", "s", &set).expect("loads").scenario)
            })
            .collect();
        assert!(work.windows(2).all(|w| w[0] < w[1]), "{work:?}");
    }
}
