//! What the subcommands share: the error type with its exit code, the
//! arguments several take (resolved here once), and atomic writes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::Args;
use overcommit::scenario::{self, Override, Scenario};

/// Exit codes: 0 success, 1 runtime failure, 2 bad input or usage.
pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

/// An error with the exit code it deserves.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn bad_input(message: String) -> Self {
        Failure { code: EXIT_BAD_INPUT, message }
    }

    /// A failure whose exit code its error decides: 2 when the input is
    /// at fault, 1 when the program is.
    pub fn of(bad_input: bool, message: String) -> Self {
        Failure { code: if bad_input { EXIT_BAD_INPUT } else { EXIT_RUNTIME }, message }
    }
}

/// A failure that is not the input's fault (exit code 1).
pub fn runtime(message: String) -> Failure {
    Failure { code: EXIT_RUNTIME, message }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        runtime(format!("error: {e}"))
    }
}

/// `--jobs N`: runs at once, the number of CPUs unless given.
#[derive(Args, Clone, Copy, Debug)]
pub struct Jobs {
    /// Runs at once (default: the number of CPUs); the result does not depend on it
    #[arg(long = "jobs", value_name = "N")]
    jobs: Option<usize>,
}

impl Jobs {
    pub fn get(self) -> usize {
        self.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// `--sample-rate`: `auto` (None: the engine chooses), `1`, `1/64` or
/// `0.015625`: 1 or a power of two down to 1/512.
#[derive(Clone, Copy, Debug)]
pub struct SampleRate(pub Option<f64>);

impl FromStr for SampleRate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || "expected auto, 1, or a power of two such as 1/64 (down to 1/512)".to_string();
        let t = text.trim();
        if t == "auto" {
            return Ok(SampleRate(None));
        }
        let v = match t.split_once('/') {
            Some((a, b)) => a.trim().parse::<f64>().map_err(|_| bad())? / b.trim().parse::<f64>().map_err(|_| bad())?,
            None => t.parse::<f64>().map_err(|_| bad())?,
        };
        if (0..=9).any(|k| v == 1.0 / f64::from(1u32 << k)) { Ok(SampleRate(Some(v))) } else { Err(bad()) }
    }
}

/// `--shard I/N`, 1-based.
#[derive(Clone, Copy, Debug)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || "expected I/N with 1 <= I <= N (e.g. 1/4)".to_string();
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (i, n): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if i == 0 || n == 0 || i > n {
            return Err(bad());
        }
        Ok(Shard { index: i, count: n })
    }
}

/// The calibration a run uses: `--calibration`, else the scenario's
/// `calibration:`, which is relative to the scenario file.
pub fn calibration_path(flag: Option<PathBuf>, s: &Scenario, file: &Path) -> Option<PathBuf> {
    flag.or_else(|| s.calibration.as_ref().map(|c| file.parent().unwrap_or(Path::new(".")).join(c)))
}

pub fn load_costs(path: Option<&Path>) -> Result<overcommit::latency::Costs, Failure> {
    match path {
        Some(p) => overcommit::latency::calibration::load(p, Default::default())
            .map_err(|e| Failure::bad_input(format!("error: {e}"))),
        None => Ok(Default::default()),
    }
}

/// `--events`, `--touches`, or neither: the engine's choice.
pub fn play_mode(events: bool, touches: bool) -> overcommit::engine::Mode {
    use overcommit::engine::Mode;
    if events {
        Mode::Events
    } else if touches {
        Mode::Touches
    } else {
        Mode::Auto
    }
}

/// What every run of a sweep or plan shares, read from the command line:
/// the scenario (loaded once to check it, its warnings printed), `--set`,
/// `--seed`, the calibration and `--sample-rate`.
pub fn many_inputs(
    file: &Path,
    set: Vec<Override>,
    seed: Option<u64>,
    calibration: Option<PathBuf>,
    sample_rate: SampleRate,
    mode: overcommit::engine::Mode,
) -> Result<(overcommit::plan::Inputs, scenario::Loaded), Failure> {
    let text =
        std::fs::read_to_string(file).map_err(|e| Failure::bad_input(format!("error: {}: {e}", file.display())))?;
    let label = file.display().to_string();
    let stem = file.file_stem().map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    let loaded = scenario::load_str(&text, &label, &stem, &set).map_err(|e| Failure::bad_input(e.to_string()))?;
    for w in &loaded.warnings {
        let _ = writeln!(std::io::stderr(), "{w}");
    }
    let cal_path = calibration_path(calibration, &loaded.scenario, file);
    let inputs = overcommit::plan::Inputs {
        text,
        label,
        default_name: stem,
        base: set,
        master_seed: seed,
        sample_rate: sample_rate.0,
        mode,
        costs: load_costs(cal_path.as_deref())?,
        calibration: cal_path.as_ref().map(|p| p.display().to_string()),
    };
    Ok((inputs, loaded))
}

/// A sweep's files (table, plots, report), written whole into `dir`.
pub fn write_sweep(dir: &Path, table: &overcommit::plan::sweep::SweepTable) -> Result<(), Failure> {
    let files =
        overcommit::report::sweep::files(table).map_err(|e| runtime(format!("error: drawing the plots: {e}")))?;
    let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    overcommit::report::run::write_atomically(dir, &files)
        .map(|_| ())
        .map_err(|e| runtime(format!("error: writing {}: {e}", dir.display())))
}

/// Write `bytes` to `path` under a temporary name in its folder, then
/// rename: a reader never sees half a file.
pub fn write_file_atomically(path: &Path, bytes: Vec<u8>) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    overcommit::report::run::write_atomically(&dir, &[(name.as_str(), bytes)])
        .map_err(|e| runtime(format!("error: writing {}: {e}", path.display())))?;
    Ok(())
}
