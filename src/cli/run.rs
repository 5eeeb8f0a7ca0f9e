//! `overcommit run`: play one scenario and write its results.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use overcommit::scenario::{self, Override};

use super::common::{Failure, SampleRate, calibration_path, load_costs, play_mode, runtime};

/// The arguments of `run`.
#[derive(Args)]
pub struct RunArgs {
    /// The scenario file (YAML)
    pub file: PathBuf,
    /// Where to write the results (default: output/<scenario name>/)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Override the scenario's seed
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a value: a dotted path and a YAML value
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<Override>,
    /// A calibration file whose measured costs replace the defaults
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Share of pages to simulate: 1 (page-exact), a power of two such as
    /// 1/64, or auto (page-exact unless the guests are large)
    #[arg(long, value_name = "RATE", default_value = "auto")]
    pub sample_rate: SampleRate,
    /// Play only the touches that change state (faults, copy-on-write breaks), the hits
    /// between them as counts: faster where few touches fault (see the README's event mode).
    /// Default: by events when sampled or when under 1% of touches are expected to fault
    #[arg(long, conflicts_with = "touches")]
    pub events: bool,
    /// Play every touch one by one (the reference)
    #[arg(long)]
    pub touches: bool,
    /// No progress bar and no table
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: RunArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let RunArgs { file, out: out_dir, seed, set, calibration, sample_rate, events, touches, quiet } = args;
    let loaded = scenario::load_with(&file, &set).map_err(|e| Failure::bad_input(e.to_string()))?;
    for w in &loaded.warnings {
        let _ = writeln!(std::io::stderr(), "{w}");
    }
    let s = &loaded.scenario;
    let cal_path = calibration_path(calibration, s, &file);
    let costs = load_costs(cal_path.as_deref())?;
    for note in overcommit::engine::unmodelled(s) {
        let _ = writeln!(std::io::stderr(), "note: {note}");
    }
    // The automatic rate says when the swap device made it finer; a rate
    // asked for is obeyed, and told when it is coarser than that bound
    // (as `plan` tells of its points).
    let rate_note = match sample_rate.0 {
        None => overcommit::engine::stall_bound_note(s),
        Some(rate) => overcommit::engine::stall_warning(s, rate),
    };
    if let Some(note) = rate_note {
        let _ = writeln!(std::io::stderr(), "note: {note}");
    }
    let cfg = overcommit::engine::RunConfig {
        seed,
        sample_rate: sample_rate.0,
        mode: play_mode(events, touches),
        costs,
        calibration: cal_path.as_ref().map(|p| p.display().to_string()),
        ..Default::default()
    };
    let dir = out_dir.unwrap_or_else(|| PathBuf::from("output").join(&s.name));
    let mut record = overcommit::engine::Recorder::default();
    let started = std::time::Instant::now();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut on_progress = |now: u64, end: u64| {
        if quiet || end == 0 {
            return;
        }
        if bar.is_none() && started.elapsed().as_secs_f64() > 1.0 {
            let b = indicatif::ProgressBar::new(1000);
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} simulating [{bar:40}] {percent}% (eta {eta})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar = Some(b);
        }
        if let Some(b) = &bar {
            b.set_position(now * 1000 / end);
        }
    };
    let summary = {
        let mut sink = overcommit::report::run::WithProgress { inner: &mut record, on_progress: &mut on_progress };
        overcommit::engine::run(s, cfg, &mut sink).map_err(|e| Failure::of(e.is_bad_input(), format!("error: {e}")))?
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    use overcommit::report::run as rr;
    let figs = overcommit::report::run_page::figures(&record, &summary)
        .map_err(|e| runtime(format!("error: drawing the plots: {e}")))?;
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.headline()).collect();
    let html = overcommit::report::run_page::html(&record, &summary, &s.description, &figs, &warnings);
    let mut files = vec![
        ("summary.json".to_string(), rr::summary_json(&summary)),
        ("timeseries.csv".to_string(), rr::timeseries_csv(&record, &summary)),
        ("events.csv".to_string(), rr::events_csv(&record)),
    ];
    for (stem, _, f) in figs {
        files.push((format!("{stem}.svg"), f.svg.into_bytes()));
        files.push((format!("{stem}.png"), f.png));
    }
    files.push(("report.html".to_string(), html.into_bytes()));
    let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    rr::write_atomically(&dir, &files).map_err(|e| runtime(format!("error: writing {}: {e}", dir.display())))?;
    if !quiet {
        write!(out, "{}", rr::table(&summary))?;
        writeln!(
            out,
            "\nwrote {}/{{summary.json,timeseries.csv,events.csv}}, plots (SVG and PNG) and report.html",
            dir.display()
        )?;
    }
    Ok(())
}
