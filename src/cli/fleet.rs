//! `overcommit fleet`: the hosts a fleet needs, per placement policy, and
//! what losing the most loaded does to the rest.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::common::{Failure, Jobs, SampleRate, Shard, load_costs, play_mode, runtime};
use overcommit::fleet::answers::{self, FleetAnswers};
use overcommit::fleet::{evaluate::Play, file, placement};

/// The arguments of `fleet`.
#[derive(Args)]
pub struct FleetArgs {
    /// The fleet file (YAML): host types, guest types, objectives, placement, survive
    pub file: PathBuf,
    /// Placement policies to compare, comma-separated (default: the file's `placement:`):
    /// first-fit, best-fit, spread, sharing
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub placements: Vec<String>,
    /// Policy mixes to compare, comma-separated, each applied to every host type as `plan` applies
    /// it: none, swap, swap+balloon, swap+ksm, swap+balloon+ksm, hugepages; as-written (the
    /// default) keeps each host type's own
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub policies: Vec<String>,
    /// Answer only shard I of N (1-based): every N-th placement × policy question; join the
    /// shards' folders with `merge`
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
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
    /// Where to write fleet.json, hosts.csv, each answer's memory picture and report.html
    /// (default: output/<fleet name>/fleet/, or fleet-shard-I-of-N/)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn fleet(args: FleetArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let f = file::load(&args.file).map_err(|e| Failure::bad_input(e.to_string()))?;
    let placements = if args.placements.is_empty() { vec![f.placement.clone()] } else { args.placements.clone() };
    for p in &placements {
        placement::resolve(p).map_err(|m| Failure::bad_input(format!("error: --placements: {m}")))?;
    }
    let mut mixes = Vec::new();
    for name in &args.policies {
        let mix = answers::parse_mix(name).map_err(|m| Failure::bad_input(format!("error: --policies: {m}")))?;
        if let Some(m) = mix {
            answers::supports(&f, m)
                .map_err(|why| Failure::bad_input(format!("error: --policies {}: {why}", m.name())))?;
        }
        mixes.push(mix);
    }
    if mixes.is_empty() {
        mixes.push(None);
    }
    let questions = answers::questions(&placements, &mixes);
    if let Some(s) = &args.shard
        && s.count as usize > questions.len()
    {
        return Err(Failure::bad_input(format!(
            "error: --shard {}/{}: the fleet asks {} question(s) ({} placement(s) × {} policy mix(es)), so it splits \
             into at most {} shard(s)",
            s.index,
            s.count,
            questions.len(),
            placements.len(),
            mixes.len(),
            questions.len()
        )));
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
    let shard = args.shard.map(|s| (s.index, s.count));
    let entries =
        answers::answer(&f, &questions, shard, &play).map_err(|e| Failure::of(false, format!("error: {e}")))?;
    let doc = FleetAnswers {
        fleet: f.name.clone(),
        file: args.file.display().to_string(),
        fingerprint: answers::fingerprint(&[&format!("{f:?}")], &questions, &play),
        shard,
        objectives: f.objectives.iter().map(|o| o.text.clone()).collect(),
        survive: f.survive,
        host_types: f.hosts.iter().map(|h| h.name.clone()).collect(),
        guest_types: f.guests.iter().map(|g| (g.name.clone(), g.count)).collect(),
        placements,
        policies: mixes.iter().map(|m| answers::mix_name(*m).to_string()).collect(),
        answers: entries,
    };
    let dir = args.out.unwrap_or_else(|| {
        let leaf = match shard {
            Some((i, n)) => format!("fleet-shard-{i}-of-{n}"),
            None => "fleet".into(),
        };
        PathBuf::from("output").join(&f.name).join(leaf)
    });
    write_fleet(&dir, &doc, out)
}

/// `merge` of a sharded fleet's folders: their answers joined, and every
/// file the whole run writes written from them.
pub fn merge(dirs: &[PathBuf], out_dir: Option<PathBuf>, quiet: bool, out: &mut dyn Write) -> Result<(), Failure> {
    let mut parts = Vec::new();
    for d in dirs {
        let path = d.join("fleet.json");
        let bytes = std::fs::read(&path).map_err(|e| Failure::bad_input(format!("error: {}: {e}", path.display())))?;
        let doc: FleetAnswers = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::bad_input(format!(
                "error: {}:{}:{}: not a fleet answer: {e}",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        parts.push(doc);
    }
    let doc = answers::merge(parts).map_err(|e| Failure::bad_input(format!("error: {e}")))?;
    let dir = out_dir.unwrap_or_else(|| PathBuf::from("output").join(&doc.fleet).join("fleet"));
    let mut sink = std::io::sink();
    write_fleet(&dir, &doc, if quiet { &mut sink } else { out })?;
    if !quiet {
        writeln!(out, "merged {} shards ({} answers)", dirs.len(), doc.answers.len())
            .map_err(|e| runtime(format!("error: {e}")))?;
    }
    Ok(())
}

/// The table on `out`, and fleet.json, hosts.csv, the pictures and
/// report.html in `dir` (all or none).
fn write_fleet(dir: &Path, doc: &FleetAnswers, out: &mut dyn Write) -> Result<(), Failure> {
    let w = |e: std::io::Error| runtime(format!("error: writing the table: {e}"));
    writeln!(
        out,
        "{}: {} guests on {}, objectives {}, surviving {} lost host(s){}",
        doc.fleet,
        doc.guest_types.iter().map(|g| g.1).sum::<u32>(),
        doc.host_types.join(", "),
        doc.objectives.join(", "),
        doc.survive,
        doc.shard.map_or_else(String::new, |(i, n)| format!(" (shard {i}/{n})"))
    )
    .map_err(w)?;
    writeln!(
        out,
        "  {:<28} {:>6} {:>7} {:>6} {:>7} {:>5}  after losing the most loaded",
        "placement, policies", "hosts", "ratio", "spare", "guests", "evals"
    )
    .map_err(w)?;
    for e in &doc.answers {
        let a = &e.answer;
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
                "hosts {:?} lost: {} unplaced, hosts {:?} break{}",
                l.lost,
                l.unplaced.values().sum::<u32>(),
                l.broken,
                if l.breaks.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", overcommit::report::fleet::breaks_text(l).join("; "))
                }
            ),
        };
        writeln!(
            out,
            "  {:<28} {hosts:>6} {ratio:>7.3} {:>6} {:>7} {:>5}  {loss}",
            e.label(),
            a.spare,
            a.outcome.admitted(),
            a.evaluations
        )
        .map_err(w)?;
        for why in a.none.iter().chain(&a.note) {
            writeln!(out, "    note: {why}").map_err(w)?;
        }
        for s in &e.settings {
            let ksm = s.ksm.as_ref().map_or_else(
                || "off".to_string(),
                |k| match k.ended_at {
                    Some((p, ms)) if k.policy != "static" => {
                        format!(
                            "{} (from {} pages / {} ms, ended at {p} / {ms} ms)",
                            k.policy, k.pages_to_scan, k.sleep_millisecs
                        )
                    }
                    _ => format!("{} ({} pages / {} ms)", k.policy, k.pages_to_scan, k.sleep_millisecs),
                },
            );
            let pool = if s.nr_hugepages > 0 { format!(", nr_hugepages {}", s.nr_hugepages) } else { String::new() };
            writeln!(
                out,
                "    {}: ram_allocation_ratio {:.3}, reserved_host_memory_mb {}, {} spare, KSM {ksm}, balloon {}{pool}",
                s.host_type, s.ram_allocation_ratio, s.reserved_host_memory_mb, s.spare_hosts, s.balloon
            )
            .map_err(w)?;
        }
    }
    let json = serde_json::to_vec_pretty(doc).map_err(|e| runtime(format!("error: {e}")))?;
    let mut csv = String::from(
        "placement,policies,host,host_type,guests,configured_bytes,limit_bytes,ram_bytes,p99_ns,slowdown,failed\n",
    );
    for e in &doc.answers {
        for h in &e.answer.outcome.hosts {
            let guests: Vec<String> = h.guests.iter().map(|(g, n)| format!("{n} {g}")).collect();
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                e.placement,
                e.policies,
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
    for e in &doc.answers {
        let chart = rf::memory_chart(&doc.fleet, e);
        figures.push(
            overcommit::report::plot::category_chart(&chart)
                .map_err(|err| runtime(format!("error: drawing {}'s hosts: {err}", e.label())))?,
        );
    }
    let html = rf::html(doc, &figures);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("fleet.json".into(), json),
        ("hosts.csv".into(), csv.into_bytes()),
        ("report.html".into(), html.into_bytes()),
    ];
    for (e, fig) in doc.answers.iter().zip(figures) {
        files.push((format!("memory-{}.svg", e.slug()), fig.svg.into_bytes()));
        files.push((format!("memory-{}.png", e.slug()), fig.png));
    }
    let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    overcommit::report::run::write_atomically(dir, &files)
        .map_err(|e| runtime(format!("error: writing {}: {e}", dir.display())))?;
    writeln!(out, "wrote {}/{{fleet.json,hosts.csv,report.html,memory-*.svg,memory-*.png}}", dir.display())
        .map_err(w)?;
    Ok(())
}
