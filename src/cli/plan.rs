//! `overcommit plan`: the most guests (or the least RAM) that meets every
//! objective, per policy mix.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use overcommit::scenario::Override;

use super::common::{Failure, Jobs, SampleRate, many_inputs, runtime};

/// The arguments of `plan`.
#[derive(Args)]
pub struct PlanArgs {
    /// The scenario file (YAML)
    pub file: PathBuf,
    /// An objective every guest must meet (repeatable): p99<=50us, slowdown<=1.05, ...
    #[arg(long = "slo", value_name = "EXPR", required = true)]
    pub slo: Vec<overcommit::scenario::slo::Slo>,
    /// The guest group whose count to maximise
    #[arg(long, value_name = "GROUP", conflicts_with = "minimize", required_unless_present = "minimize")]
    pub grow: Option<String>,
    /// What to minimise: host.ram
    #[arg(long, value_name = "host.ram")]
    pub minimize: Option<String>,
    /// Policy mixes to compare, comma-separated (default: all the host supports)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub policies: Vec<overcommit::plan::capacity::Mix>,
    /// Seeds per point
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub seeds: u32,
    /// The share of seeds that must meet the objectives at a point (default: all)
    #[arg(long, value_name = "Q", default_value_t = 1.0)]
    pub quantile: f64,
    /// Do not require oom_kills==0 (killed guests then drop out of the objectives)
    #[arg(long)]
    pub allow_oom_kills: bool,
    /// The first seed (default: the scenario's seed)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a value in every run
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<Override>,
    #[command(flatten)]
    pub jobs: Jobs,
    /// The most guests (or GiB of RAM) the search tries
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub limit: u64,
    /// Share of pages to simulate in each run (see `run --help`)
    #[arg(long, value_name = "RATE", default_value = "auto")]
    pub sample_rate: SampleRate,
    /// Play every run in event mode (see `run --help`; default: touch by touch, the plan's
    /// points being where guests start to fault)
    #[arg(long)]
    pub events: bool,
    /// A calibration file whose measured costs replace the defaults
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Where to write plan.json, the frontier plot and report.html (default: output/<scenario name>/plan/)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress bar and no table
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn plan(args: PlanArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let PlanArgs {
        file,
        slo,
        grow,
        minimize,
        policies,
        seeds,
        quantile,
        allow_oom_kills,
        seed,
        set,
        jobs,
        limit,
        sample_rate,
        events,
        calibration,
        out: out_dir,
        quiet,
    } = args;
    use overcommit::plan::capacity as cap;
    let mode = overcommit::engine::Mode::events_if(events);
    let (inputs, loaded) = many_inputs(&file, set, seed, calibration, sample_rate, mode)?;
    let goal = match (grow, minimize.as_deref()) {
        (Some(g), _) => cap::Goal::Grow(g),
        (None, Some("host.ram")) => cap::Goal::MinimizeRam,
        (None, Some(other)) => {
            return Err(Failure::bad_input(format!("error: --minimize {other:?}: only host.ram can be minimised")));
        }
        (None, None) => return Err(Failure::bad_input("error: give --grow GROUP or --minimize host.ram".into())),
    };
    // A rate the planner chooses bounds each point's memory; one the user
    // gives holds for every point.
    let page_budget = inputs.sample_rate.is_none().then_some(cap::PLAN_PAGE_BUDGET);
    let mut spec = cap::PlanSpec {
        inputs,
        slo,
        allow_oom_kills,
        goal,
        mixes: policies,
        seeds,
        quantile,
        limit: limit.max(1),
        page_budget,
    };
    let rate = cap::planning_rate(&spec).map_err(|e| Failure::of(e.is_bad_input(), e.to_string()))?;
    if let Some(note) = overcommit::engine::stall_warning(&loaded.scenario, rate) {
        let _ = writeln!(std::io::stderr(), "note: {note}");
    }
    spec.inputs.sample_rate = Some(rate);
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new_spinner() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} planning: {pos} runs played, {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let started = std::time::Instant::now();
    let (base, results) =
        cap::plan(&spec, jobs.get(), &|| bar.inc(1)).map_err(|e| Failure::of(e.is_bad_input(), e.to_string()))?;
    bar.finish_and_clear();
    use overcommit::report::plan as rp;
    let frontier = rp::frontier(&spec, &results).map_err(|e| runtime(format!("error: drawing the frontier: {e}")))?;
    let html = rp::html(&spec, &base, &results, &frontier);
    let dir = out_dir.unwrap_or_else(|| PathBuf::from("output").join(&base.name).join("plan"));
    let files = [
        ("plan.json", rp::json(&spec, &base, &results)),
        ("frontier.svg", frontier.svg.into_bytes()),
        ("frontier.png", frontier.png),
        ("report.html", html.into_bytes()),
    ];
    overcommit::report::run::write_atomically(&dir, &files)
        .map_err(|e| runtime(format!("error: writing {}: {e}", dir.display())))?;
    if !quiet {
        write!(out, "{}", rp::table(&spec, &base, &results))?;
        writeln!(out)?;
        for line in rp::recommendation(&spec, &base, &results) {
            writeln!(out, "{line}")?;
        }
        let runs: usize = results.iter().map(|r| r.runs).sum();
        writeln!(
            out,
            "\n{runs} runs in {:.1} s; wrote {}/{{plan.json,frontier.svg,frontier.png,report.html}}",
            started.elapsed().as_secs_f64(),
            dir.display()
        )?;
    }
    Ok(())
}
