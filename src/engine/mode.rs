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

/// The misses once memory is full (see [`expected_fault_share`]).
pub(super) fn steady_miss_share(s: &Scenario) -> f64 {
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
}
