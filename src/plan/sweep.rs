//! Sweeps: the cartesian product of varied values × K seeds, each a whole
//! run, played in parallel (one run stays single-threaded), and read back
//! as one table with a row per run. Shards take every N-th run, and their
//! tables merge into the table an unsharded sweep writes.

use crate::model::Status;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::engine::{self, Discard, RunConfig, Summary};
use crate::model::page::mix64;
use crate::scenario::slo::{Metric, Slo};
use crate::scenario::vary::Vary;
use crate::scenario::{self, Override, Scenario, ScenarioError};

/// The varied path that picks one of the scenario's `variants:`.
pub const VARIANT: &str = "variant";

/// Everything that decides a sweep's result.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    pub inputs: super::Inputs,
    pub vary: Vec<Vary>,
    pub seeds: u32,
    pub slo: Vec<Slo>,
}

/// What a sweep was: written beside its table as `sweep.json`, and checked
/// by `merge` so that only shards of one sweep are joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepMeta {
    pub scenario: String,
    pub description: String,
    pub file: String,
    /// FNV-1a of everything that decides the result (scenario text,
    /// overrides, varied values, seeds, sampling, calibration).
    pub fingerprint: String,
    pub master_seed: u64,
    pub seeds: u32,
    pub vary: Vec<VaryMeta>,
    /// Objectives as written (`p99<=50us`).
    pub slo: Vec<String>,
    pub runs_total: usize,
    /// `Some((I, N))` for shard I of N (1-based).
    pub shard: Option<(u32, u32)>,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaryMeta {
    pub path: String,
    pub values: Vec<String>,
}

/// A sweep's rows: one per run, in run order.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepTable {
    pub meta: SweepMeta,
    pub rows: Vec<SweepRow>,
}

/// One run's line of `sweep.csv`: its index, the varied values, its seed,
/// its numbers, and with objectives whether each held.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    pub run: usize,
    pub values: Vec<String>,
    pub seed: u64,
    pub metrics: RowMetrics,
    /// With `--slo`: whether every objective held, and those that did not
    /// (as written, space-separated).
    pub slo: Option<(bool, String)>,
}

/// Serialise a number with `N` decimals, as `sweep.csv` writes it.
fn fixed<const N: usize, S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:.N$}"))
}
fn fixed1<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    fixed::<1, S>(v, s)
}
fn fixed2<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    fixed::<2, S>(v, s)
}
fn fixed4<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    fixed::<4, S>(v, s)
}
fn fixed6<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    fixed::<6, S>(v, s)
}

/// `v` as `sweep.csv` holds it: rounded to `N` decimals.
fn round<const N: usize>(v: f64) -> f64 {
    format!("{v:.N$}").parse().unwrap_or(f64::NAN)
}

/// The metric columns, defined once: the struct (fields in column order,
/// each written with its precision through serde), their names, and a
/// lookup by name for plots and lessons that pick a column.
macro_rules! metrics {
    ($($(#[$doc:meta])* $name:ident: $ty:ty $(=> $ser:literal)?),* $(,)?) => {
        /// A run's numbers, at the precision `sweep.csv` writes them (so a
        /// table read back from its file equals the one written).
        #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
        pub struct RowMetrics {
            $($(#[$doc])* $(#[serde(serialize_with = $ser)])? pub $name: $ty,)*
        }

        /// The metric columns of `sweep.csv`, after `run`, the varied paths
        /// and `seed`.
        pub const METRIC_COLUMNS: &[&str] = &[$(stringify!($name)),*];

        impl RowMetrics {
            /// The value of column `name`, if it is one.
            pub fn value(&self, name: &str) -> Option<f64> {
                match name {
                    $(stringify!($name) => Some(self.$name as f64),)*
                    _ => None,
                }
            }
        }
    };
}

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// Position in the whole sweep: combination × seeds + replicate.
    pub index: usize,
    /// The varied values, one per varied path.
    pub values: Vec<String>,
    pub replicate: u32,
    pub seed: u64,
    pub scenario: Scenario,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{context}:\n{error}")]
    Scenario { context: String, error: ScenarioError },
    #[error("error: {0}")]
    Usage(String),
    #[error("error: run {index} ({context}): {error}")]
    Run { index: usize, context: String, error: engine::RunError },
}

impl SweepError {
    /// Whether the input is at fault (exit code 2) rather than the program.
    pub fn is_bad_input(&self) -> bool {
        match self {
            SweepError::Scenario { .. } | SweepError::Usage(_) => true,
            SweepError::Run { error, .. } => error.is_bad_input(),
        }
    }
}

/// The seed of replicate `k`: the master seed itself for the first (so a
/// row can be replayed with `overcommit run --seed`), then SplitMix64
/// steps from it. Every combination uses the same K seeds (common random
/// numbers), so differences between combinations are the model's, not the
/// generator's; a run's seed depends on neither `--jobs` nor `--shard`.
pub fn replicate_seed(master: u64, k: u32) -> u64 {
    if k == 0 { master } else { mix64(master.wrapping_add(u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15))) }
}

/// Every run of the sweep, each scenario loaded and checked. Any
/// combination that does not load stops the sweep before a run is played.
pub fn plan(spec: &SweepSpec) -> Result<(SweepMeta, Vec<PlannedRun>), SweepError> {
    if spec.seeds == 0 {
        return Err(SweepError::Usage("--seeds must be 1 or more".into()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for v in &spec.vary {
        if !seen.insert(v.path.as_str()) {
            return Err(SweepError::Usage(format!("{} is varied twice", v.path)));
        }
    }
    let combos: usize = spec.vary.iter().map(|v| v.values.len()).product();
    let total = combos.checked_mul(spec.seeds as usize).filter(|&n| n <= 1_000_000).ok_or_else(|| {
        SweepError::Usage(format!(
            "the sweep has more than a million runs ({combos} combinations × {} seeds)",
            spec.seeds
        ))
    })?;
    let base = scenario::load_str(&spec.inputs.text, &spec.inputs.label, &spec.inputs.default_name, &spec.inputs.base)
        .map_err(|error| SweepError::Scenario { context: format!("error: {}", spec.inputs.label), error })?
        .scenario;
    let master = spec.inputs.master_seed.unwrap_or(base.seed);
    // `variant` names a set of overrides from the scenario's `variants:`.
    for v in spec.vary.iter().filter(|v| v.path == VARIANT) {
        for name in &v.values {
            if !base.variants.iter().any(|x| x.name == *name) {
                let known: Vec<&str> = base.variants.iter().map(|x| x.name.as_str()).collect();
                return Err(SweepError::Usage(format!(
                    "variant {name:?} is not in the scenario's `variants:` ({})",
                    if known.is_empty() { "it has none".to_string() } else { known.join(", ") }
                )));
            }
        }
    }
    let mut runs = Vec::with_capacity(total);
    for c in 0..combos {
        let values = combination(&spec.vary, c);
        let mut overrides = spec.inputs.base.clone();
        for (v, value) in spec.vary.iter().zip(&values) {
            match base.variants.iter().find(|x| v.path == VARIANT && x.name == *value) {
                Some(variant) => overrides.extend(variant.set.iter().cloned()),
                None => overrides.push(Override { path: v.path.clone(), value: value.clone() }),
            }
        }
        let scenario = scenario::load_str(&spec.inputs.text, &spec.inputs.label, &spec.inputs.default_name, &overrides)
            .map_err(|error| SweepError::Scenario {
                context: format!("error: the sweep's combination {}", describe(&spec.vary, &values)),
                error,
            })?
            .scenario;
        for k in 0..spec.seeds {
            runs.push(PlannedRun {
                index: c * spec.seeds as usize + k as usize,
                values: values.clone(),
                replicate: k,
                seed: replicate_seed(master, k),
                scenario: scenario.clone(),
            });
        }
    }
    let meta = SweepMeta {
        scenario: base.name.clone(),
        description: base.description.trim().to_string(),
        file: spec.inputs.label.clone(),
        fingerprint: fingerprint(spec, master),
        master_seed: master,
        seeds: spec.seeds,
        vary: spec.vary.iter().map(|v| VaryMeta { path: v.path.clone(), values: v.values.clone() }).collect(),
        slo: spec.slo.iter().map(|s| s.text.clone()).collect(),
        runs_total: total,
        shard: None,
        columns: columns(spec),
    };
    Ok((meta, runs))
}

/// The values of combination `c`: the last varied path changes fastest.
fn combination(vary: &[Vary], mut c: usize) -> Vec<String> {
    let mut out = vec![String::new(); vary.len()];
    for (i, v) in vary.iter().enumerate().rev() {
        out[i] = v.values[c % v.values.len()].clone();
        c /= v.values.len();
    }
    out
}

fn describe(vary: &[Vary], values: &[String]) -> String {
    vary.iter().zip(values).map(|(v, x)| format!("{}={x}", v.path)).collect::<Vec<_>>().join(", ")
}

/// FNV-1a over the inputs that decide the result ([`super::Fnv`]).
fn fingerprint(spec: &SweepSpec, master: u64) -> String {
    let mut h = super::Fnv::new();
    let mut put = |bytes: &[u8]| h.put(bytes);
    put(spec.inputs.text.as_bytes());
    for o in &spec.inputs.base {
        put(o.path.as_bytes());
        put(o.value.as_bytes());
    }
    for v in &spec.vary {
        put(v.path.as_bytes());
        for x in &v.values {
            put(x.as_bytes());
        }
    }
    put(&u64::from(spec.seeds).to_le_bytes());
    put(&master.to_le_bytes());
    put(format!("{:?}", spec.inputs.sample_rate).as_bytes());
    put(format!("{:?}", spec.inputs.mode).as_bytes());
    put(spec.inputs.calibration.as_deref().unwrap_or("").as_bytes());
    put(format!("{:?}", spec.inputs.costs).as_bytes());
    for s in &spec.slo {
        put(s.text.as_bytes());
    }
    h.hex()
}

metrics! {
    overcommit_ratio: f64 => "fixed4",
    guests: u64,
    guests_running: u64,
    guests_failed_to_start: u64,
    oom_kills: u64,
    /// Over all touches of running guests.
    mean_ns: f64 => "fixed1",
    /// Latencies and slowdown are the worst running guest's (a sweep asks
    /// whether every guest is served).
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    slowdown: f64 => "fixed4",
    slowdown_mean: f64 => "fixed4",
    minor_faults: u64,
    major_faults: u64,
    fault_ratio: f64 => "fixed6",
    major_faults_per_s: f64 => "fixed1",
    peak_used_bytes: u64,
    swap_used_peak_bytes: u64,
    ksm_saved_bytes: u64,
    ksmd_cpu_percent: f64 => "fixed2",
    balloon_peak_bytes: u64,
    tlb_miss_ratio: f64 => "fixed6",
    boot_delay_s: f64 => "fixed6",
    guest_swap_faults: u64,
    cow_breaks: u64,
    /// Huge pages the guests' faults took (`thp_fault_alloc`), huge
    /// pages split since (`thp_split_page`: by reclaim, ksmd, balloons)
    /// and ranges khugepaged collapsed back (`thp_collapse_alloc`).
    thp_faults: u64,
    thp_splits: u64,
    thp_collapses: u64,
}

fn columns(spec: &SweepSpec) -> Vec<String> {
    let mut c = vec!["run".to_string()];
    c.extend(spec.vary.iter().map(|v| v.path.clone()));
    c.push("seed".into());
    c.extend(METRIC_COLUMNS.iter().map(|s| s.to_string()));
    if !spec.slo.is_empty() {
        c.push("slo_met".into());
        c.push("slo_failed".into());
    }
    c
}

/// A guest's value of a per-guest metric, in the metric's base unit.
pub fn guest_metric(g: &crate::engine::GuestSummary, m: Metric, duration_s: f64) -> f64 {
    match m {
        Metric::Mean => g.latency_ns.mean,
        Metric::P50 => g.latency_ns.p50 as f64,
        Metric::P95 => g.latency_ns.p95 as f64,
        Metric::P99 => g.latency_ns.p99 as f64,
        Metric::P999 => g.latency_ns.p999 as f64,
        Metric::Slowdown => g.slowdown,
        Metric::MajorFaultsPerS => g.major_faults as f64 / running_s(g, duration_s),
        Metric::FaultRatio => g.fault_ratio,
        Metric::OomKills | Metric::KsmdCpu => 0.0,
    }
}

/// Seconds a guest ran: from its start to its end or the run's end.
fn running_s(g: &crate::engine::GuestSummary, duration_s: f64) -> f64 {
    let start = g.started_at_ns.map_or(duration_s, |t| t as f64 / 1e9);
    let end = g.ended_at_ns.map_or(duration_s, |t| t as f64 / 1e9);
    (end - start).max(1e-9)
}

/// A metric for the run: the host's, or the worst running guest's (the
/// highest value for `<`/`<=` objectives, the lowest for `>`/`>=`).
pub fn run_metric(s: &Summary, slo: &Slo) -> Option<f64> {
    match slo.metric {
        Metric::OomKills => Some((s.host.oom_kills + s.host.memcg_oom_kills) as f64),
        Metric::KsmdCpu => Some(s.host.ksm.as_ref().map_or(0.0, |k| k.ksmd_cpu_percent / 100.0)),
        m => {
            let values =
                s.guests.iter().filter(|g| g.state == Status::Running).map(|g| guest_metric(g, m, s.duration_s));
            match slo.op {
                crate::scenario::slo::Op::Ge | crate::scenario::slo::Op::Gt => values.reduce(f64::min),
                _ => values.reduce(f64::max),
            }
        }
    }
}

/// The objectives a run misses. A run where no guest is running misses
/// every per-guest objective.
pub fn failed_slos<'a>(s: &Summary, slos: &'a [Slo]) -> Vec<&'a Slo> {
    slos.iter().filter(|slo| !run_metric(s, slo).is_some_and(|v| slo.holds(v))).collect()
}

/// A run's row: its index, the varied values, its seed and its metrics.
fn row(run: &PlannedRun, s: &Summary, slos: &[Slo]) -> SweepRow {
    let running: Vec<_> = s.guests.iter().filter(|g| g.state == Status::Running).collect();
    let worst = |f: &dyn Fn(&crate::engine::GuestSummary) -> f64| running.iter().map(|g| f(g)).fold(0.0, f64::max);
    let touches: u64 = running.iter().map(|g| g.touches).sum();
    let mean_ns = if touches > 0 {
        running.iter().map(|g| g.latency_ns.mean * g.touches as f64).sum::<f64>() / touches as f64
    } else {
        0.0
    };
    let minor: u64 = s.guests.iter().map(|g| g.minor_faults).sum();
    let major: u64 = s.guests.iter().map(|g| g.major_faults).sum();
    let all_touches: u64 = s.guests.iter().map(|g| g.touches).sum();
    let slowdown_mean =
        if running.is_empty() { 0.0 } else { running.iter().map(|g| g.slowdown).sum::<f64>() / running.len() as f64 };
    let ksm = s.host.ksm.as_ref();
    let metrics = RowMetrics {
        overcommit_ratio: round::<4>(s.host.overcommit_ratio),
        guests: s.guests.len() as u64,
        guests_running: s.host.guests_running,
        guests_failed_to_start: s.host.guests_failed_to_start,
        oom_kills: s.host.oom_kills + s.host.memcg_oom_kills,
        mean_ns: round::<1>(mean_ns),
        p50_ns: worst(&|g| g.latency_ns.p50 as f64) as u64,
        p99_ns: worst(&|g| g.latency_ns.p99 as f64) as u64,
        p999_ns: worst(&|g| g.latency_ns.p999 as f64) as u64,
        slowdown: round::<4>(worst(&|g| g.slowdown)),
        slowdown_mean: round::<4>(slowdown_mean),
        minor_faults: minor,
        major_faults: major,
        fault_ratio: round::<6>(if all_touches > 0 { major as f64 / all_touches as f64 } else { 0.0 }),
        major_faults_per_s: round::<1>(worst(&|g| guest_metric(g, Metric::MajorFaultsPerS, s.duration_s))),
        peak_used_bytes: s.host.peak_used_bytes,
        swap_used_peak_bytes: s.host.swap_used_peak_bytes,
        ksm_saved_bytes: ksm.map_or(0, |k| k.saved_bytes),
        ksmd_cpu_percent: round::<2>(ksm.map_or(0.0, |k| k.ksmd_cpu_percent)),
        balloon_peak_bytes: s.guests.iter().map(|g| g.balloon_peak_bytes).sum(),
        tlb_miss_ratio: round::<6>(worst(&|g| g.tlb_miss_ratio)),
        boot_delay_s: round::<6>(s.guests.iter().map(|g| g.boot_delay_ns as f64 / 1e9).fold(0.0, f64::max)),
        guest_swap_faults: s.guests.iter().map(|g| g.guest_swap_major_faults).sum(),
        cow_breaks: s.guests.iter().map(|g| g.cow_breaks).sum(),
        thp_faults: s.host.vmstat.thp_fault_alloc,
        thp_splits: s.host.vmstat.thp_split_page,
        thp_collapses: s.host.vmstat.thp_collapse_alloc,
    };
    let slo = (!slos.is_empty()).then(|| {
        let failed = failed_slos(s, slos);
        (failed.is_empty(), failed.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(" "))
    });
    SweepRow { run: run.index, values: run.values.clone(), seed: run.seed, metrics, slo }
}

/// Which runs shard `i` of `n` plays (1-based): every n-th run, so each
/// shard gets a share of every part of the sweep.
pub fn in_shard(index: usize, shard: Option<(u32, u32)>) -> bool {
    shard.is_none_or(|(i, n)| index % n as usize == (i - 1) as usize)
}

/// Play the sweep's runs (those of `meta.shard`) on `jobs` threads.
/// `on_done` is called after each run, from any thread.
pub fn execute(
    spec: &SweepSpec,
    meta: SweepMeta,
    runs: Vec<PlannedRun>,
    jobs: usize,
    on_done: &(dyn Fn(usize) + Sync),
) -> Result<SweepTable, SweepError> {
    let mine: Vec<PlannedRun> = runs.into_iter().filter(|r| in_shard(r.index, meta.shard)).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| SweepError::Usage(format!("cannot start {jobs} worker threads: {e}")))?;
    let done = AtomicUsize::new(0);
    let play = |run: &PlannedRun| -> Result<SweepRow, SweepError> {
        let cfg = RunConfig {
            seed: Some(run.seed),
            sample_rate: spec.inputs.sample_rate,
            mode: spec.inputs.mode,
            costs: spec.inputs.costs,
            calibration: spec.inputs.calibration.clone(),
            ..Default::default()
        };
        let summary = engine::run(&run.scenario, cfg, &mut Discard).map_err(|error| SweepError::Run {
            index: run.index,
            context: describe(&spec.vary, &run.values),
            error,
        })?;
        on_done(done.fetch_add(1, Ordering::Relaxed) + 1);
        Ok(row(run, &summary, &spec.slo))
    };
    // The workers take runs from one queue, the longest expected first
    // (Graham's LPT rule): the last run to finish is then a short one,
    // where splitting the list in halves can leave one worker alone with
    // the largest runs at the end. The table keeps the sweep's order. A
    // run's expected work: its touches, slowed and made dearer by their
    // faults, and its pages (`engine::expected_work`).
    let work: Vec<f64> = mine.iter().map(|r| engine::expected_work(&r.scenario)).collect();
    let mut order: Vec<usize> = (0..mine.len()).collect();
    order.sort_by(|&a, &b| work[b].total_cmp(&work[a]));
    let next = AtomicUsize::new(0);
    type Row = Result<SweepRow, SweepError>;
    let slots: Vec<std::sync::Mutex<Option<Row>>> = mine.iter().map(|_| std::sync::Mutex::new(None)).collect();
    pool.broadcast(|_| {
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let result = play(&mine[i]);
            *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        }
    });
    let results = slots.into_iter().map(|m| {
        m.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every run is taken from the queue and played")
    });
    let rows = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(SweepTable { meta, rows })
}

/// Join shard tables into the table of the whole sweep. Every shard of one
/// sweep (same fingerprint and shard count) must be there exactly once.
pub fn merge(mut parts: Vec<SweepTable>) -> Result<SweepTable, String> {
    let first = parts.first().ok_or("nothing to merge")?.meta.clone();
    let n = match first.shard {
        Some((_, n)) => n,
        None => return Err(format!("{} is a whole sweep, not a shard", first.file)),
    };
    let mut have = vec![false; n as usize];
    for p in &parts {
        let Some((i, pn)) = p.meta.shard else {
            return Err("one of the folders holds a whole sweep, not a shard".into());
        };
        if p.meta.fingerprint != first.fingerprint || pn != n {
            return Err(format!(
                "shard {i}/{pn} is from another sweep (fingerprint {} against {}): shards must share scenario, \
                 --set, --vary, --seeds, --seed, --sample-rate and calibration",
                p.meta.fingerprint, first.fingerprint
            ));
        }
        if std::mem::replace(&mut have[(i - 1) as usize], true) {
            return Err(format!("shard {i}/{n} is given twice"));
        }
    }
    let missing: Vec<String> =
        have.iter().enumerate().filter(|(_, h)| !**h).map(|(i, _)| format!("{}/{n}", i + 1)).collect();
    if !missing.is_empty() {
        return Err(format!("shards missing: {}", missing.join(", ")));
    }
    let mut rows: Vec<(usize, SweepRow)> = Vec::with_capacity(first.runs_total);
    for p in parts.drain(..) {
        rows.extend(p.rows.into_iter().map(|r| (r.run, r)));
    }
    rows.sort_by_key(|(i, _)| *i);
    if rows.len() != first.runs_total || rows.iter().enumerate().any(|(k, (i, _))| k != *i) {
        return Err(format!(
            "the shards hold {} rows, not the sweep's {} runs once each",
            rows.len(),
            first.runs_total
        ));
    }
    Ok(SweepTable { meta: SweepMeta { shard: None, ..first }, rows: rows.into_iter().map(|(_, r)| r).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_error_says_whose_fault_it_is() {
        // The README's exit codes: 2 for bad input, 1 for a runtime
        // failure. A sample rate the engine refuses is the input's fault;
        // an event scheduled in the past is the program's.
        let run = |error| SweepError::Run { index: 3, context: "x=1".into(), error };
        assert!(run(engine::RunError::BadSampleRate(0.3)).is_bad_input());
        let past = engine::RunError::Past(crate::engine::queue::PastEvent { at: 1, now: 2 });
        assert!(!past.is_bad_input() && !run(past).is_bad_input());
        assert!(SweepError::Usage("nothing to vary".into()).is_bad_input());
    }

    fn vary(path: &str, values: &[&str]) -> Vary {
        Vary { path: path.into(), values: values.iter().map(|s| s.to_string()).collect() }
    }

    // The order is the one `itertools::iproduct!` and nested loops give:
    // the last path changes fastest.
    #[test]
    fn combinations_are_the_cartesian_product_in_row_major_order() {
        let v = [vary("a", &["1", "2"]), vary("b", &["x", "y", "z"])];
        let all: Vec<Vec<String>> = (0..6).map(|c| combination(&v, c)).collect();
        let want = [["1", "x"], ["1", "y"], ["1", "z"], ["2", "x"], ["2", "y"], ["2", "z"]];
        assert_eq!(all, want.map(|r| r.map(String::from).to_vec()).to_vec());
    }

    #[test]
    fn shards_partition_the_runs() {
        for n in 1..6u32 {
            for index in 0..50 {
                let owners = (1..=n).filter(|&i| in_shard(index, Some((i, n)))).count();
                assert_eq!(owners, 1, "run {index} with {n} shards");
            }
        }
    }

    #[test]
    fn the_first_replicate_uses_the_master_seed() {
        assert_eq!(replicate_seed(42, 0), 42);
        let seeds: std::collections::BTreeSet<u64> = (0..100).map(|k| replicate_seed(42, k)).collect();
        assert_eq!(seeds.len(), 100);
    }
}
