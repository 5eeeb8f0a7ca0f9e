//! `overcommit fleet`: the hosts a fleet needs, per placement policy, and
//! what losing the most loaded does to the rest.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::common::{Failure, Jobs, SampleRate, load_costs, play_mode, runtime};
use overcommit::fleet::{evaluate::Play, file, placement, search};

/// The arguments of `fleet`.
#[derive(Args)]
pub struct FleetArgs {
    /// The fleet file (YAML): host types, guest types, objectives, placement, survive
    pub file: PathBuf,
    /// Placement policies to compare, comma-separated (default: the file's `placement:`):
    /// first-fit, best-fit, spread, sharing
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub placements: Vec<String>,
    #[command(flatten)]
    pub jobs: Jobs,
    /// Share of pages to simulate in each host's run (see `run --help`)
    #[arg(long, value_name = "RATE", default_value = "auto")]
    pub sample_rate: SampleRate,
    /// Play every host in event mode (see `run --help`)
    #[arg(long, conflicts_with = "touches")]
    pub events: bool,
    /// Play every host touch by touch
    #[arg(long)]
    pub touches: bool,
    /// A calibration file whose measured costs replace the defaults
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Where to write fleet.json, hosts.csv, each placement's memory picture and report.html
    /// (default: output/<fleet name>/fleet/)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Report<'a> {
    fleet: &'a str,
    objectives: Vec<String>,
    survive: u32,
    host_types: Vec<&'a str>,
    answers: Vec<(&'a str, &'a search::Answer)>,
}

pub fn fleet(args: FleetArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let f = file::load(&args.file).map_err(|e| Failure::bad_input(e.to_string()))?;
    let placements = if args.placements.is_empty() { vec![f.placement.clone()] } else { args.placements.clone() };
    for p in &placements {
        placement::resolve(p).map_err(|m| Failure::bad_input(format!("error: --placements: {m}")))?;
    }
    let costs = load_costs(args.calibration.as_deref())?;
    let run = overcommit::engine::RunConfig {
        sample_rate: args.sample_rate.0,
        costs,
        calibration: args.calibration.as_ref().map(|p| p.display().to_string()),
        mode: play_mode(args.events, args.touches),
        ..Default::default()
    };
    let play = Play { run, jobs: args.jobs.get() };
    let mut answers = Vec::new();
    for p in &placements {
        let mut one = f.clone();
        one.placement = p.clone();
        let a = search::search(&one, &play).map_err(|e| Failure::of(false, format!("error: {p}: {e}")))?;
        answers.push((p.as_str(), a));
    }
    let w = |e: std::io::Error| runtime(format!("error: writing the table: {e}"));
    writeln!(
        out,
        "{}: {} guests on {}, objectives {}, surviving {} lost host(s)",
        f.name,
        f.guests.iter().map(|g| g.count).sum::<u32>(),
        f.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", "),
        f.objectives.iter().map(|o| o.text.as_str()).collect::<Vec<_>>().join(", "),
        f.survive
    )
    .map_err(w)?;
    writeln!(
        out,
        "  {:<10} {:>6} {:>7} {:>6} {:>5}  after losing the most loaded",
        "placement", "hosts", "ratio", "spare", "evals"
    )
    .map_err(w)?;
    for (p, a) in &answers {
        let hosts: u32 = a.hosts.iter().sum();
        let ratio = a.searched.or(a.ratios.first().copied()).unwrap_or(0.0);
        let loss = match &a.outcome.failure {
            None => "-".to_string(),
            Some(l) if l.passes() => format!(
                "hosts {:?} lost, {} guests restarted, every host within",
                l.lost,
                l.restarted.values().sum::<u32>()
            ),
            Some(l) => format!(
                "hosts {:?} lost: {} unplaced, hosts {:?} break",
                l.lost,
                l.unplaced.values().sum::<u32>(),
                l.broken
            ),
        };
        writeln!(out, "  {p:<10} {hosts:>6} {ratio:>7.3} {:>6} {:>5}  {loss}", a.spare, a.evaluations).map_err(w)?;
        if let Some(why) = &a.none {
            writeln!(out, "  note ({p}): {why}").map_err(w)?;
        }
    }
    let report = Report {
        fleet: &f.name,
        objectives: f.objectives.iter().map(|o| o.text.clone()).collect(),
        survive: f.survive,
        host_types: f.hosts.iter().map(|h| h.name.as_str()).collect(),
        answers: answers.iter().map(|(p, a)| (*p, a)).collect(),
    };
    let json = serde_json::to_vec_pretty(&report).map_err(|e| runtime(format!("error: {e}")))?;
    let mut csv =
        String::from("placement,host,host_type,guests,configured_bytes,limit_bytes,ram_bytes,p99_ns,slowdown,failed\n");
    for (p, a) in &answers {
        for h in &a.outcome.hosts {
            let guests: Vec<String> = h.guests.iter().map(|(g, n)| format!("{n} {g}")).collect();
            csv.push_str(&format!(
                "{p},{},{},{},{},{},{},{},{},{}\n",
                h.index,
                h.host_type,
                guests.join(" + "),
                h.configured_bytes,
                h.limit_bytes,
                h.ram_bytes,
                h.p99_ns,
                h.slowdown,
                h.failed.join(" ")
            ));
        }
    }
    use overcommit::report::fleet as rf;
    let mut figures = Vec::new();
    for (p, a) in &answers {
        let chart = rf::memory_chart(&f, p, a);
        figures.push(
            overcommit::report::plot::category_chart(&chart)
                .map_err(|e| runtime(format!("error: drawing {p}'s hosts: {e}")))?,
        );
    }
    let html = rf::html(&f, &args.file.display().to_string(), &answers, &figures);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("fleet.json".into(), json),
        ("hosts.csv".into(), csv.into_bytes()),
        ("report.html".into(), html.into_bytes()),
    ];
    for ((p, _), fig) in answers.iter().zip(figures) {
        files.push((format!("memory-{p}.svg"), fig.svg.into_bytes()));
        files.push((format!("memory-{p}.png"), fig.png));
    }
    let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let dir = args.out.unwrap_or_else(|| PathBuf::from("output").join(&f.name).join("fleet"));
    overcommit::report::run::write_atomically(&dir, &files)
        .map_err(|e| runtime(format!("error: writing {}: {e}", dir.display())))?;
    writeln!(out, "wrote {}/{{fleet.json,hosts.csv,report.html,memory-*.svg,memory-*.png}}", dir.display())
        .map_err(w)?;
    Ok(())
}
