//! The planner: the most guests of a group (or the least host RAM) that
//! meets every objective, for each policy mix, found by galloping then
//! bisection over whole runs.
//!
//! A point passes when, on enough of its seeds (all by default), every
//! guest of the scenario starts and is still running at the end and every
//! objective holds for the worst guest (and the host). The search assumes
//! that passing is monotone in density; where the runs say otherwise
//! (seeds that disagree, a denser point that passes above one that fails)
//! the result says so instead of hiding it.

use crate::model::Status;
use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use super::sweep::{failed_slos, replicate_seed, run_metric};
use crate::engine::{self, RunConfig, Summary};
use crate::scenario::HugePageSize;
use crate::scenario::slo::Slo;
use crate::scenario::{self, Override, Scenario};

/// The policy mixes the planner compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Mix {
    /// No swap, no balloon, no KSM: guests must fit in RAM.
    None,
    Swap,
    SwapBalloon,
    SwapKsm,
    SwapBalloonKsm,
    /// Every guest on hugetlbfs from a pool sized for it: no swap, balloon
    /// or KSM can touch its memory.
    Hugepages,
}

impl Mix {
    pub const ALL: [Mix; 6] =
        [Mix::None, Mix::Swap, Mix::SwapBalloon, Mix::SwapKsm, Mix::SwapBalloonKsm, Mix::Hugepages];

    pub fn name(self) -> &'static str {
        match self {
            Mix::None => "none",
            Mix::Swap => "swap",
            Mix::SwapBalloon => "swap+balloon",
            Mix::SwapKsm => "swap+ksm",
            Mix::SwapBalloonKsm => "swap+balloon+ksm",
            Mix::Hugepages => "hugepages",
        }
    }

    fn swap(self) -> bool {
        !matches!(self, Mix::None | Mix::Hugepages)
    }
    fn balloon(self) -> bool {
        matches!(self, Mix::SwapBalloon | Mix::SwapBalloonKsm)
    }
    fn ksm(self) -> bool {
        matches!(self, Mix::SwapKsm | Mix::SwapBalloonKsm)
    }
}

impl std::str::FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Mix, String> {
        let t = s.trim();
        Mix::ALL.iter().copied().find(|m| m.name() == t).ok_or_else(|| {
            let names: Vec<&str> = Mix::ALL.iter().map(|m| m.name()).collect();
            format!("unknown policy mix {t:?}; known: {}", names.join(", "))
        })
    }
}

/// What the planner looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// The largest count of this guest group.
    Grow(String),
    /// The smallest host RAM, in whole GiB.
    MinimizeRam,
}

#[derive(Debug, Clone)]
pub struct PlanSpec {
    pub inputs: super::Inputs,
    pub slo: Vec<Slo>,
    /// `oom_kills==0` is always checked unless this is set.
    pub allow_oom_kills: bool,
    pub goal: Goal,
    /// Empty: every mix the scenario's host supports.
    pub mixes: Vec<Mix>,
    pub seeds: u32,
    /// The share of seeds that must pass at a point (1 = every seed).
    pub quantile: f64,
    /// The search never goes past this count (or this many GiB).
    pub limit: u64,
    /// When the planner chose the rate (no `--sample-rate`): a point that
    /// would simulate more pages than this at it plays at the largest
    /// power of two that does not ([`PLAN_PAGE_BUDGET`]), its memory bound.
    /// `None`: every point at the rate given.
    pub page_budget: Option<f64>,
}

/// One seed's run at one point.
#[derive(Debug, Clone, Serialize)]
pub struct SeedRun {
    pub seed: u64,
    /// Objectives missed (`failed_to_start`, `not_running` and the
    /// objectives' texts).
    pub failed: Vec<String>,
    pub p99_ns: f64,
    pub slowdown: f64,
    pub overcommit_ratio: f64,
    pub ksm_saved_bytes: u64,
    pub swap_used_peak_bytes: u64,
    pub ksmd_cpu_percent: f64,
    /// Each objective's metric, worst guest (or the host), in order.
    pub metrics: Vec<f64>,
    /// KSM's knobs at the end of the run: (pages_to_scan, sleep_millisecs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ksm_knobs: Option<(u32, u32)>,
    /// Simulated seconds at which the run stopped, its failure settled (an
    /// OOM kill, a failed start, or a latency objective missed whatever
    /// followed): the figures above are up to there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at_s: Option<f64>,
}

/// Every seed's run at one point of one mix.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The group's count, or the host's RAM in GiB.
    pub x: u64,
    pub pass: bool,
    pub runs: Vec<SeedRun>,
    /// The sampling rate its runs played at (1: page-exact).
    pub sample_rate: f64,
    /// How long a simulated swap-in is expected to stall its guest at
    /// that rate ([`engine::expected_swapin_ns`] over the rate).
    #[serde(skip)]
    pub swapin_stall_ns: f64,
    /// Why the point could not be played, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Point {
    fn passed_share(&self) -> f64 {
        self.runs.iter().filter(|r| r.failed.is_empty()).count() as f64 / self.runs.len().max(1) as f64
    }
    fn worst(&self, f: impl Fn(&SeedRun) -> f64) -> f64 {
        self.runs.iter().map(f).fold(0.0, f64::max)
    }
    fn mean(&self, f: impl Fn(&SeedRun) -> f64) -> f64 {
        self.runs.iter().map(f).sum::<f64>() / self.runs.len().max(1) as f64
    }
}

/// One mix's answer.
#[derive(Debug, Clone, Serialize)]
pub struct MixResult {
    pub mix: &'static str,
    /// Why the mix was not planned (the host cannot run it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<String>,
    /// `--grow`: the most guests of the group that pass (`None`: not even
    /// zero passes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
    /// `--minimize host.ram`: the least RAM that passes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ram_bytes: Option<u64>,
    /// True when the search hit `limit` still passing.
    pub at_limit: bool,
    pub overcommit_ratio: f64,
    pub p99_ns: f64,
    pub slowdown: f64,
    pub ksm_saved_bytes: u64,
    pub swap_used_peak_bytes: u64,
    pub ksmd_cpu_percent: f64,
    /// KSM's knobs at the answer (first seed), when KSM ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ksm_knobs: Option<(u32, u32)>,
    /// What fails one step past the answer, most often first.
    pub binding: Vec<String>,
    pub runs: usize,
    /// Where the boundary is not clear: seeds that disagree, or points that
    /// break monotonicity.
    pub uncertain: Vec<String>,
    /// Points that could not be built (a hugepage pool larger than RAM),
    /// and points played coarser than the plan's rate to keep their
    /// memory within [`PlanSpec::page_budget`].
    pub notes: Vec<String>,
    /// The rate the answer's runs played at (what `run` checks it at).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    /// Every point played, by x.
    pub points: Vec<Point>,
    /// The overrides that make this mix at the answer (for `run`).
    pub overrides: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Scenario(#[from] scenario::ScenarioError),
    #[error("error: {0}")]
    Usage(String),
    #[error("error: {mix} at {x}: {error}")]
    Run { mix: &'static str, x: u64, error: engine::RunError },
}

impl PlanError {
    /// Whether the input is at fault (exit code 2) rather than the program.
    pub fn is_bad_input(&self) -> bool {
        match self {
            PlanError::Scenario(_) | PlanError::Usage(_) => true,
            PlanError::Run { error, .. } => error.is_bad_input(),
        }
    }
}

/// Whether the scenario's host can run `mix`, and why not.
pub fn supports(base: &Scenario, mix: Mix) -> Result<(), String> {
    if mix.swap() && base.host.swap.is_none() {
        return Err("the host has no swap device (host.swap)".into());
    }
    if mix == Mix::Hugepages
        && let Some(g) = base.guests.iter().find(|g| g.qemu.is_some() && !g.hugepages)
    {
        return Err(format!("guest group {} is given by a QEMU command line that is not on hugetlbfs", g.name));
    }
    Ok(())
}

/// The overrides that make `mix` with the goal's variable at `x`.
pub fn overrides(base: &Scenario, goal: &Goal, mix: Mix, x: u64) -> Vec<Override> {
    let mut o = vec![match goal {
        Goal::Grow(group) => Override { path: format!("guests.{group}.count"), value: x.to_string() },
        Goal::MinimizeRam => Override { path: "host.ram".into(), value: format!("{x}G") },
    }];
    o.extend(mix_overrides(base, mix, |g| match goal {
        Goal::Grow(name) if *name == g.name => x,
        _ => u64::from(g.count),
    }));
    o
}

/// The overrides that turn `base`'s host to `mix` (a fleet's host as well
/// as a plan's point), its guest groups counting `count(group)` guests
/// each (which sizes the hugetlb pools of the hugepages mix).
pub fn mix_overrides(base: &Scenario, mix: Mix, count: impl Fn(&scenario::GuestGroup) -> u64) -> Vec<Override> {
    let set = |path: &str, value: String| Override { path: path.to_string(), value };
    let mut o = Vec::new();
    if !mix.swap() {
        o.push(set("host.swap", "null".into()));
    }
    o.push(set("host.ksm.run", mix.ksm().to_string()));
    if mix.ksm() && base.host.ksm.tuner.is_static() && !base.host.ksm.run {
        // The scenario never ran KSM: the kernel's own scan-time advisor
        // sets the scan rate (6.7 and later), rather than knobs that would
        // not merge anything within the run.
        o.push(set("host.ksm.policy", "advisor".into()));
    }
    // A mix with balloons keeps the scenario's controller, MoM if it has none.
    let balloon = match (mix.balloon(), base.host.balloon.policy.name()) {
        (false, _) => "none",
        (true, "none") => "mom",
        (true, name) => name,
    };
    o.push(set("host.balloon.policy", balloon.into()));
    if mix == Mix::Hugepages {
        // Every backend on huge pages: those that name a size keep it, the
        // rest take the host's default; each size's pool holds what its
        // backends take, in whole pages.
        let default = base.host.hugepages.size;
        let other = match default {
            HugePageSize::Size2M => HugePageSize::Size1G,
            HugePageSize::Size1G => HugePageSize::Size2M,
        };
        let (mut pages, mut other_pages) = (0u64, 0u64);
        for g in &base.guests {
            let count = count(g);
            for b in &g.backends {
                let size = b.hugetlb.unwrap_or(default);
                let n = b.size.bytes().div_ceil(size.bytes()) * count;
                if size == default {
                    pages += n;
                } else {
                    other_pages += n;
                }
            }
            if !g.hugepages {
                o.push(set(&format!("guests.{}.hugepages", g.name), "true".into()));
            }
        }
        if other_pages == 0 && base.host.other_hugepages.is_none() {
            o.push(set("host.hugepages.count", pages.to_string()));
        } else {
            o.push(set(
                "host.hugepages",
                format!(
                    "[{{size: {}, count: {pages}}}, {{size: {}, count: {other_pages}}}]",
                    default.label(),
                    other.label()
                ),
            ));
        }
    }
    o
}

/// The runs of one point (all seeds, in parallel).
fn evaluate(spec: &PlanSpec, base: &Scenario, mix: Mix, x: u64) -> Result<Point, PlanError> {
    let mut ov = spec.inputs.base.clone();
    ov.extend(overrides(base, &spec.goal, mix, x));
    let scenario = match scenario::load_str(&spec.inputs.text, &spec.inputs.label, &spec.inputs.default_name, &ov) {
        Ok(l) => l.scenario,
        // The base scenario loaded, so what fails here is the point itself
        // (a hugepage pool larger than RAM, say): it cannot be built, so
        // it does not pass.
        Err(e) => {
            let why = e.diagnostics.first().map_or_else(|| "invalid".to_string(), |d| d.message.clone());
            let runs = (0..spec.seeds)
                .map(|k| SeedRun {
                    seed: replicate_seed(spec.inputs.master_seed.unwrap_or(base.seed), k),
                    failed: vec!["unconfigurable".to_string()],
                    p99_ns: f64::NAN,
                    slowdown: f64::NAN,
                    overcommit_ratio: f64::NAN,
                    ksm_saved_bytes: 0,
                    swap_used_peak_bytes: 0,
                    ksmd_cpu_percent: 0.0,
                    metrics: vec![f64::NAN; spec.slo.len()],
                    ksm_knobs: None,
                    stopped_at_s: None,
                })
                .collect();
            return Ok(Point {
                x,
                pass: false,
                runs,
                sample_rate: spec.inputs.sample_rate.unwrap_or(1.0),
                swapin_stall_ns: 0.0,
                note: Some(format!("at {x}: the scenario cannot be built: {why}")),
            });
        }
    };
    let master = spec.inputs.master_seed.unwrap_or(base.seed);
    let rate = match (spec.inputs.sample_rate, spec.page_budget) {
        (Some(r), Some(budget)) => Some(engine::rate_within_pages(&scenario, r, budget)),
        (r, _) => r,
    };
    let runs = (0..spec.seeds)
        .into_par_iter()
        .map(|k| {
            let seed = replicate_seed(master, k);
            let cfg = RunConfig {
                seed: Some(seed),
                sample_rate: rate,
                mode: spec.inputs.mode,
                costs: spec.inputs.costs,
                calibration: spec.inputs.calibration.clone(),
                stop_when_missed: settled_bounds(spec),
                ..Default::default()
            };
            let mut sink = StopOnFailure { allow_oom_kills: spec.allow_oom_kills, failed: false };
            let s =
                engine::run(&scenario, cfg, &mut sink).map_err(|error| PlanError::Run { mix: mix.name(), x, error })?;
            Ok((seed_run(spec, &s, seed), s.sample_rate))
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    let sample_rate = runs.first().map_or(1.0, |r| r.1);
    let runs = runs.into_iter().map(|r| r.0).collect();
    let swapin_stall_ns = engine::expected_swapin_ns(&scenario) / sample_rate;
    let mut p = Point { x, pass: false, runs, sample_rate, swapin_stall_ns, note: None };
    p.pass = p.passed_share() >= spec.quantile - 1e-9;
    Ok(p)
}

/// The objectives a run of the plan may stop on once missed for good:
/// all of them, when every one is a latency quantile's upper bound and an
/// OOM kill fails the run (with kills allowed, a guest killed later would
/// leave the objective's reach, so a miss is not settled early). A run
/// that has missed one of several objectives plays on, so that every
/// objective it misses is reported as with a whole run.
fn settled_bounds(spec: &PlanSpec) -> Vec<engine::LatencyBound> {
    settled_bounds_of(&spec.slo, spec.allow_oom_kills)
}

/// The latency bounds a run of objectives `slo` may stop at once missed
/// for good (none when OOM kills are allowed: a killed guest leaves the
/// objectives, so a miss can still be undone).
pub fn settled_bounds_of(slo: &[Slo], allow_oom_kills: bool) -> Vec<engine::LatencyBound> {
    use crate::scenario::slo::{Metric, Op};
    if allow_oom_kills {
        return Vec::new();
    }
    let bounds: Vec<Option<engine::LatencyBound>> = slo
        .iter()
        .map(|o| {
            let quantile = match o.metric {
                Metric::P50 => 0.5,
                Metric::P95 => 0.95,
                Metric::P99 => 0.99,
                Metric::P999 => 0.999,
                _ => return None,
            };
            // Missing `<= b` is a quantile above b; missing `< b`, one at b
            // or above (latencies are whole nanoseconds).
            let above_ns = match o.op {
                Op::Le if o.bound >= 0.0 => o.bound.floor() as u64,
                Op::Lt if o.bound >= 1.0 => o.bound.ceil() as u64 - 1,
                _ => return None,
            };
            Some(engine::LatencyBound { quantile, above_ns })
        })
        .collect();
    bounds.into_iter().collect::<Option<Vec<_>>>().unwrap_or_default()
}

/// Ends a run at the first OOM kill or failed start: the point has failed
/// whatever follows, so the rest of the run is not played.
pub struct StopOnFailure {
    allow_oom_kills: bool,
    failed: bool,
}

impl StopOnFailure {
    pub fn new(allow_oom_kills: bool) -> StopOnFailure {
        StopOnFailure { allow_oom_kills, failed: false }
    }
}

impl engine::Sink for StopOnFailure {
    fn sample(&mut self, _: &engine::Sample) {}
    fn event(&mut self, e: &engine::Event) {
        match e.kind {
            engine::EventKind::FailedToStart => self.failed = true,
            engine::EventKind::OomKill | engine::EventKind::MemcgOom if !self.allow_oom_kills => self.failed = true,
            _ => {}
        }
    }
    fn stop(&mut self) -> bool {
        self.failed
    }
}

fn seed_run(spec: &PlanSpec, s: &Summary, seed: u64) -> SeedRun {
    let mut failed = Vec::new();
    if s.host.guests_failed_to_start > 0 {
        failed.push("failed_to_start".to_string());
    }
    let killed = s.guests.iter().filter(|g| g.state == Status::OomKilled).count();
    if killed > 0 && spec.allow_oom_kills {
        // Killed guests are not running, but with OOM kills allowed the
        // objective is over the rest.
    } else if s.host.oom_kills > 0 || killed > 0 {
        failed.push("oom_kills==0".to_string());
    }
    failed.extend(failed_slos(s, &spec.slo).iter().map(|f| f.text.clone()));
    let running = s.guests.iter().filter(|g| g.state == Status::Running);
    let worst = |f: fn(&crate::engine::GuestSummary) -> f64| running.clone().map(f).fold(0.0, f64::max);
    let ksm = s.host.ksm.as_ref();
    SeedRun {
        seed,
        failed,
        p99_ns: worst(|g| g.latency_ns.p99 as f64),
        slowdown: worst(|g| g.slowdown),
        overcommit_ratio: s.host.overcommit_ratio,
        ksm_saved_bytes: ksm.map_or(0, |k| k.saved_bytes),
        swap_used_peak_bytes: s.host.swap_used_peak_bytes,
        ksmd_cpu_percent: ksm.map_or(0.0, |k| k.ksmd_cpu_percent),
        metrics: spec.slo.iter().map(|slo| run_metric(s, slo).unwrap_or(f64::NAN)).collect(),
        ksm_knobs: ksm.filter(|k| k.run).map(|k| (k.pages_to_scan, k.sleep_millisecs)),
        stopped_at_s: s.stopped_at_s,
    }
}

/// Gallop from the scenario's own value, then bisect: for `--grow` the
/// last passing count below the first failing one; for `--minimize` the
/// first passing RAM above the last failing one.
fn search(spec: &PlanSpec, base: &Scenario, mix: Mix, on_run: &(dyn Fn() + Sync)) -> Result<MixResult, PlanError> {
    let mut seen: BTreeMap<u64, Point> = BTreeMap::new();
    let at = |x: u64, seen: &mut BTreeMap<u64, Point>| -> Result<bool, PlanError> {
        if let Some(p) = seen.get(&x) {
            return Ok(p.pass);
        }
        let p = evaluate(spec, base, mix, x)?;
        for _ in 0..spec.seeds {
            on_run();
        }
        let pass = p.pass;
        seen.insert(x, p);
        Ok(pass)
    };
    let grow = matches!(spec.goal, Goal::Grow(_));
    // `good` passes, `bad` fails; grow: good < bad; minimize: bad < good.
    let start = match &spec.goal {
        Goal::Grow(g) => u64::from(base.guests.iter().find(|x| x.name == *g).map_or(1, |x| x.count.max(1))),
        Goal::MinimizeRam => base.host.ram.bytes().div_ceil(1 << 30).max(1),
    };
    let floor = if grow { 0 } else { base.host.reserved.bytes().div_ceil(1 << 30) + 1 };
    let start = start.clamp(floor.max(1), spec.limit);
    let (mut good, mut bad): (Option<u64>, Option<u64>) = (None, None);
    if at(start, &mut seen)? {
        good = Some(start);
        // Toward more density: grow up, or shrink the RAM.
        let mut x = start;
        loop {
            let next = if grow { (x * 2).min(spec.limit) } else { (x / 2).max(floor) };
            if next == x {
                break;
            }
            if at(next, &mut seen)? {
                good = Some(next);
                x = next;
            } else {
                bad = Some(next);
                break;
            }
        }
    } else {
        bad = Some(start);
        let mut x = start;
        loop {
            let next = if grow { x / 2 } else { (x * 2).min(spec.limit) };
            if next == x || (grow && x == 0) {
                break;
            }
            if at(next, &mut seen)? {
                good = Some(next);
                break;
            }
            bad = Some(next);
            x = next;
            if grow && next == 0 {
                break;
            }
        }
    }
    if let (Some(mut g), Some(mut b)) = (good, bad) {
        while g.abs_diff(b) > 1 {
            let mid = g.min(b) + g.abs_diff(b) / 2;
            if at(mid, &mut seen)? {
                g = mid;
            } else {
                b = mid;
            }
        }
        good = Some(g);
    }
    let at_limit = good == Some(if grow { spec.limit } else { floor });
    // One step past the answer, for what binds (played if not yet).
    let past = match good {
        Some(g) if grow && g < spec.limit => Some(g + 1),
        Some(g) if !grow && g > floor => Some(g - 1),
        _ => None,
    };
    if let Some(p) = past {
        at(p, &mut seen)?;
    }
    let mut binding: BTreeMap<String, usize> = BTreeMap::new();
    if let Some(p) = past.and_then(|p| seen.get(&p)) {
        for r in &p.runs {
            for f in &r.failed {
                *binding.entry(f.clone()).or_default() += 1;
            }
        }
    }
    let mut binding: Vec<(String, usize)> = binding.into_iter().collect();
    binding.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut uncertain = Vec::new();
    for p in seen.values() {
        let share = p.passed_share();
        if share > 0.0 && share < 1.0 {
            uncertain.push(format!(
                "at {} seeds disagree: {} of {} pass",
                p.x,
                p.runs.iter().filter(|r| r.failed.is_empty()).count(),
                p.runs.len()
            ));
        }
    }
    if let Some(g) = good {
        for p in seen.values() {
            let denser = if grow { p.x > g } else { p.x < g };
            if denser && p.pass {
                uncertain.push(format!("not monotone: {} passes beyond the answer {g}", p.x));
            }
            if !denser && p.x != g && !p.pass {
                uncertain.push(format!("not monotone: {} fails short of the answer {g}", p.x));
            }
        }
    }
    let mut notes: Vec<String> = seen.values().filter_map(|p| p.note.clone()).collect();
    notes.extend(coarser_points(spec, &seen));
    let runs = seen.values().filter(|p| p.note.is_none()).count() * spec.seeds as usize;
    let chosen = good.and_then(|g| seen.get(&g));
    let ov: Vec<String> = good.map_or(Vec::new(), |g| {
        overrides(base, &spec.goal, mix, g).iter().map(|o| format!("{}={}", o.path, o.value)).collect()
    });
    Ok(MixResult {
        mix: mix.name(),
        unsupported: None,
        max_count: if grow { good } else { None },
        min_ram_bytes: if grow { None } else { good.map(|g| g << 30) },
        at_limit,
        sample_rate: chosen.filter(|p| p.note.is_none()).map(|p| p.sample_rate),
        overcommit_ratio: chosen.map_or(0.0, |p| p.mean(|r| r.overcommit_ratio)),
        p99_ns: chosen.map_or(0.0, |p| p.worst(|r| r.p99_ns)),
        slowdown: chosen.map_or(0.0, |p| p.worst(|r| r.slowdown)),
        ksm_saved_bytes: chosen.map_or(0, |p| p.mean(|r| r.ksm_saved_bytes as f64) as u64),
        swap_used_peak_bytes: chosen.map_or(0, |p| p.worst(|r| r.swap_used_peak_bytes as f64) as u64),
        ksmd_cpu_percent: chosen.map_or(0.0, |p| p.worst(|r| r.ksmd_cpu_percent)),
        ksm_knobs: chosen.and_then(|p| p.runs.first()).and_then(|r| r.ksm_knobs),
        binding: binding.into_iter().map(|b| b.0).collect(),
        runs,
        uncertain,
        notes,
        points: seen.into_values().collect(),
        overrides: ov,
    })
}

/// A note for the points of a search played coarser than the plan's rate
/// (their pages past [`PlanSpec::page_budget`] at it), when there are any.
fn coarser_points(spec: &PlanSpec, seen: &BTreeMap<u64, Point>) -> Option<String> {
    let (Some(rate), Some(budget)) = (spec.inputs.sample_rate, spec.page_budget) else { return None };
    let coarse: Vec<&Point> = seen.values().filter(|p| p.note.is_none() && p.sample_rate < rate).collect();
    let first = coarse.first()?;
    let words = |r: f64| if r >= 1.0 { "page-exact".to_string() } else { format!("1/{}", (1.0 / r).round()) };
    // Each rate with the points it played (in order of x, so a rate's
    // points are a run of them).
    let mut runs: Vec<(f64, u64, u64)> = Vec::new();
    for p in &coarse {
        match runs.last_mut() {
            Some((r, _, last)) if *r == p.sample_rate => *last = p.x,
            _ => runs.push((p.sample_rate, p.x, p.x)),
        }
    }
    let rates: Vec<String> = runs
        .iter()
        .map(|&(r, a, b)| if a == b { format!("{} at {a}", words(r)) } else { format!("{} from {a} to {b}", words(r)) })
        .collect();
    // Coarser rates stall a guest longer on each simulated swap-in, and
    // past the bound its results move (`engine::MAX_SAMPLED_STALL_NS`).
    let stall = coarse.iter().map(|p| p.swapin_stall_ns).fold(0.0, f64::max);
    let past = if stall > engine::MAX_SAMPLED_STALL_NS {
        format!(
            "; there a simulated swap-in stalls its guest up to {}, past the {:.0} ms beyond which coarser rates \
             move the guests' competition for memory, so answers among these points are less sure",
            if stall >= 1e9 { format!("{:.0} s", stall / 1e9) } else { format!("{:.0} ms", stall / 1e6) },
            engine::MAX_SAMPLED_STALL_NS / 1e6
        )
    } else {
        String::new()
    };
    Some(format!(
        "from {} on, points played coarser than the plan's {} to keep a run within {} million simulated pages \
         (its memory): {}{past}; --sample-rate plays every point at one rate, whatever its memory",
        first.x,
        words(rate),
        (budget / 1e6).round(),
        rates.join(", ")
    ))
}

/// Simulated pages one run of a plan may hold when the planner chose its
/// rate: a point past it at the plan's rate plays coarser. A run's memory
/// grows with its pages (measured here: 7 bytes a simulated page touch by
/// touch and 20 by events for 64 guests of 2 GiB page-exact; 12 and 35
/// for 595 of them at 1/2 and 1/16, 1.9 GB and 0.68 GB, the guests' own
/// state counting more as pages get fewer), and a plan plays `--jobs`
/// runs at once: 2^25 pages keep each run near a gigabyte or under.
pub const PLAN_PAGE_BUDGET: f64 = (1u64 << 25) as f64;

/// Simulated touches one run of a plan may play before the planner
/// samples, counted on the scenario as given (every point of a plan plays
/// at one rate, so its results compare). A plan plays some thirty runs;
/// this keeps each near a second here. Sampled and page-exact plans of the
/// quickstart scenario give the same answer for every mix (README).
pub const PLAN_TOUCH_BUDGET: f64 = 2e7;

/// The sampling rate a plan plays at: `--sample-rate` when given, else the
/// largest power of two within [`PLAN_TOUCH_BUDGET`] for the base scenario.
pub fn planning_rate(spec: &PlanSpec) -> Result<f64, PlanError> {
    if let Some(r) = spec.inputs.sample_rate {
        return Ok(r);
    }
    let base = scenario::load_str(&spec.inputs.text, &spec.inputs.label, &spec.inputs.default_name, &spec.inputs.base)?
        .scenario;
    Ok(engine::sample_rate_within(&base, PLAN_TOUCH_BUDGET))
}

/// The whole plan: each mix searched in parallel, results in mix order.
pub fn plan(spec: &PlanSpec, jobs: usize, on_run: &(dyn Fn() + Sync)) -> Result<(Scenario, Vec<MixResult>), PlanError> {
    if spec.seeds == 0 {
        return Err(PlanError::Usage("--seeds must be 1 or more".into()));
    }
    if !(spec.quantile > 0.0 && spec.quantile <= 1.0) {
        return Err(PlanError::Usage("--quantile must be above 0 and at most 1".into()));
    }
    let base = scenario::load_str(&spec.inputs.text, &spec.inputs.label, &spec.inputs.default_name, &spec.inputs.base)?
        .scenario;
    if base.guests.is_empty() {
        return Err(PlanError::Usage(format!(
            "{}: the scenario has no guests, so there is nothing to plan (add groups under guests:, or import them \
             from a host that runs guests)",
            spec.inputs.label
        )));
    }
    if let Goal::Grow(g) = &spec.goal
        && !base.guests.iter().any(|x| x.name == *g)
    {
        let names: Vec<&str> = base.guests.iter().map(|x| x.name.as_str()).collect();
        return Err(PlanError::Usage(format!(
            "--grow {g}: no guest group of that name (groups: {})",
            names.join(", ")
        )));
    }
    let mixes: Vec<Mix> = if spec.mixes.is_empty() {
        Mix::ALL.iter().copied().filter(|m| supports(&base, *m).is_ok()).collect()
    } else {
        spec.mixes.clone()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| PlanError::Usage(format!("cannot start {jobs} worker threads: {e}")))?;
    let results = pool.install(|| {
        mixes
            .par_iter()
            .map(|&mix| match supports(&base, mix) {
                Err(why) => Ok(MixResult {
                    mix: mix.name(),
                    unsupported: Some(why),
                    max_count: None,
                    min_ram_bytes: None,
                    at_limit: false,
                    overcommit_ratio: 0.0,
                    p99_ns: 0.0,
                    slowdown: 0.0,
                    ksm_saved_bytes: 0,
                    swap_used_peak_bytes: 0,
                    ksmd_cpu_percent: 0.0,
                    ksm_knobs: None,
                    binding: vec![],
                    runs: 0,
                    uncertain: vec![],
                    notes: vec![],
                    sample_rate: None,
                    points: vec![],
                    overrides: vec![],
                }),
                Ok(()) => search(spec, &base, mix, on_run),
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    Ok((base, results))
}
