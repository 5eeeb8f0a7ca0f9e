//! `overcommit sweep` and `overcommit merge`: many runs over varied values
//! and seeds, and the joining of a sharded sweep's folders.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use overcommit::scenario::Override;

use super::common::{Failure, Jobs, SampleRate, Shard, many_inputs, play_mode, write_sweep};

/// The arguments of `sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// The scenario file (YAML)
    pub file: PathBuf,
    /// A path to vary and its values: PATH=a,b,c or PATH=START..END:STEP
    #[arg(long = "vary", value_name = "PATH=SPEC")]
    pub vary: Vec<overcommit::scenario::vary::Vary>,
    /// Override a value in every run: a dotted path and a YAML value
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<Override>,
    /// Seeds per combination (default: the scenario's sweep.seeds, or 1)
    #[arg(long, value_name = "K")]
    pub seeds: Option<u32>,
    /// The first seed (default: the scenario's seed)
    #[arg(long)]
    pub seed: Option<u64>,
    /// An objective to check each run against and draw on the plots
    /// (p99<=50us, slowdown<=1.05, oom_kills==0, ...)
    #[arg(long = "slo", value_name = "EXPR")]
    pub slo: Vec<overcommit::scenario::slo::Slo>,
    #[command(flatten)]
    pub jobs: Jobs,
    /// Play only shard I of N (1-based): every N-th run; join shards with `merge`
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Where to write the results (default: output/<scenario name>/sweep/)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A calibration file whose measured costs replace the defaults
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Share of pages to simulate in each run (see `run --help`)
    #[arg(long, value_name = "RATE", default_value = "auto")]
    pub sample_rate: SampleRate,
    /// Play every run in event mode (see `run --help`; default: as `run` chooses for each)
    #[arg(long, conflicts_with = "touches")]
    pub events: bool,
    /// Play every run touch by touch
    #[arg(long)]
    pub touches: bool,
    /// No progress bar and no summary
    #[arg(long, short)]
    pub quiet: bool,
}

/// The arguments of `merge`.
#[derive(Args)]
pub struct MergeArgs {
    /// The shards' output folders (of one sweep, or of one fleet)
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged sweep (default: output/<scenario name>/sweep/)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No summary
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn sweep(args: SweepArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let SweepArgs {
        file,
        vary,
        set,
        seeds,
        seed,
        slo,
        jobs,
        shard,
        out: out_dir,
        calibration,
        sample_rate,
        events,
        touches,
        quiet,
    } = args;
    use overcommit::plan::sweep as sw;
    let (inputs, loaded) = many_inputs(&file, set, seed, calibration, sample_rate, play_mode(events, touches))?;
    let section = loaded.scenario.sweep.clone();
    let vary = if vary.is_empty() { section.as_ref().map(|s| s.vary.clone()).unwrap_or_default() } else { vary };
    if vary.is_empty() {
        return Err(Failure::bad_input(
            "error: nothing to vary: give --vary PATH=SPEC or a `sweep: { vary: ... }` section".into(),
        ));
    }
    let shard = shard.map(|s| (s.index, s.count));
    let spec = sw::SweepSpec {
        inputs,
        vary,
        seeds: seeds.or_else(|| section.as_ref().and_then(|s| s.seeds)).unwrap_or(1),
        slo: if slo.is_empty() { section.map(|s| s.slo).unwrap_or_default() } else { slo },
    };
    let (mut meta, runs) = sw::plan(&spec).map_err(|e| Failure::of(e.is_bad_input(), e.to_string()))?;
    meta.shard = shard;
    let mine = runs.iter().filter(|r| sw::in_shard(r.index, shard)).count();
    let jobs = jobs.get();
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(mine as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} runs {pos}/{len} [{bar:40}] {elapsed} (eta {eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let table = sw::execute(&spec, meta, runs, jobs, &|_| bar.inc(1))
        .map_err(|e| Failure::of(e.is_bad_input(), e.to_string()))?;
    bar.finish_and_clear();
    let dir = out_dir.unwrap_or_else(|| overcommit::report::sweep::default_dir(&table.meta));
    write_sweep(&dir, &table)?;
    if !quiet {
        write!(out, "{}", overcommit::report::sweep::summary(&table))?;
        writeln!(
            out,
            "\n{mine} runs on {jobs} threads in {:.1} s; wrote {}/",
            started.elapsed().as_secs_f64(),
            dir.display()
        )?;
    }
    Ok(())
}

pub fn merge(args: MergeArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let MergeArgs { dirs, out: out_dir, quiet } = args;
    if dirs.first().is_some_and(|d| d.join("fleet.json").is_file()) {
        return super::fleet::merge(&dirs, out_dir, quiet, out);
    }
    let parts = dirs
        .iter()
        .map(|d| overcommit::report::sweep::read(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::bad_input(format!("error: {e}")))?;
    let table = overcommit::plan::sweep::merge(parts).map_err(|e| Failure::bad_input(format!("error: {e}")))?;
    let dir = out_dir.unwrap_or_else(|| overcommit::report::sweep::default_dir(&table.meta));
    write_sweep(&dir, &table)?;
    if !quiet {
        write!(out, "{}", overcommit::report::sweep::summary(&table))?;
        writeln!(out, "\nmerged {} shards ({} runs); wrote {}/", dirs.len(), table.rows.len(), dir.display())?;
    }
    Ok(())
}
