//! The files a sweep writes: `sweep.csv` (a row per run), `sweep.json`
//! (what the sweep was), the density-against-latency plots and
//! `report.html`; and reading a shard's files back for `merge`.

use std::path::{Path, PathBuf};

use crate::plan::sweep::{METRIC_COLUMNS, RowMetrics, SweepMeta, SweepRow, SweepTable};

/// `sweep.csv`: the header is the meta's columns, then a row per run,
/// each written through serde (run, varied values, seed, the metrics at
/// their precision, and with objectives whether they held).
pub fn csv(table: &SweepTable) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    let _ = w.write_record(&table.meta.columns);
    for r in &table.rows {
        let head = (r.run, &r.values[..], r.seed, &r.metrics);
        let _ = match &r.slo {
            Some((met, failed)) => w.serialize((head, met, failed)),
            None => w.serialize(head),
        };
    }
    w.into_inner().unwrap_or_default()
}

pub fn meta_json(meta: &SweepMeta) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(meta).expect("sweep metadata always serialises");
    v.push(b'\n');
    v
}

/// Read a sweep folder (`sweep.json` and `sweep.csv`) back.
pub fn read(dir: &Path) -> Result<SweepTable, String> {
    let meta_path = dir.join("sweep.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| format!("{}: {e}", meta_path.display()))?;
    let meta: SweepMeta = serde_json::from_str(&text)
        .map_err(|e| format!("{}:{}:{}: not a sweep's sweep.json: {e}", meta_path.display(), e.line(), e.column()))?;
    let csv_path = dir.join("sweep.csv");
    let mut r = csv::Reader::from_path(&csv_path).map_err(|e| format!("{}: {e}", csv_path.display()))?;
    let header: Vec<String> =
        r.headers().map_err(|e| format!("{}: {e}", csv_path.display()))?.iter().map(String::from).collect();
    if header != meta.columns {
        return Err(format!("{}: its columns are not the ones sweep.json lists", csv_path.display()));
    }
    let k = meta.vary.len();
    let metric_names = csv::StringRecord::from(METRIC_COLUMNS.to_vec());
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", csv_path.display()))?;
        let line = rec.position().map_or(0, |p| p.line());
        let bad = |what: &str| format!("{}:{line}: {what}", csv_path.display());
        let field = |i: usize| rec.get(i).ok_or_else(|| bad("a short row"));
        let run = field(0)?.parse().map_err(|_| bad("the run number is not a number"))?;
        let values = (1..=k).map(|i| field(i).map(String::from)).collect::<Result<Vec<_>, _>>()?;
        let seed = field(k + 1)?.parse().map_err(|_| bad("the seed is not a number"))?;
        let at = k + 2;
        let cells: csv::StringRecord = (at..at + METRIC_COLUMNS.len()).map(field).collect::<Result<_, _>>()?;
        let metrics: RowMetrics = cells.deserialize(Some(&metric_names)).map_err(|e| bad(&e.to_string()))?;
        let slo = match rec.get(at + METRIC_COLUMNS.len()) {
            Some(met) => Some((met == "true", field(at + METRIC_COLUMNS.len() + 1)?.to_string())),
            None => None,
        };
        rows.push(SweepRow { run, values, seed, metrics, slo });
    }
    Ok(SweepTable { meta, rows })
}

/// Every file of a sweep, as (name, bytes), ready for
/// [`super::run::write_atomically`].
pub fn files(table: &SweepTable) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = vec![("sweep.csv".to_string(), csv(table)), ("sweep.json".to_string(), meta_json(&table.meta))];
    let figs = figures(table)?;
    let html = html(table, &figs);
    for (stem, _, f) in figs {
        out.push((format!("{stem}.svg"), f.svg.into_bytes()));
        out.push((format!("{stem}.png"), f.png));
    }
    out.push(("report.html".to_string(), html.into_bytes()));
    Ok(out)
}

/// The default folder: `output/<scenario>/sweep/`, or
/// `output/<scenario>/sweep-shard-I-of-N/` for a shard.
pub fn default_dir(meta: &SweepMeta) -> PathBuf {
    let base = PathBuf::from("output").join(&meta.scenario);
    match meta.shard {
        Some((i, n)) => base.join(format!("sweep-shard-{i}-of-{n}")),
        None => base.join("sweep"),
    }
}

/// A row's number in metric column `name` (NaN when it is not one).
pub fn number(row: &SweepRow, name: &str) -> f64 {
    row.metrics.value(name).unwrap_or(f64::NAN)
}

/// Rows grouped by combination of varied values (seeds averaged), in run
/// order: (values, rows).
pub fn combinations(table: &SweepTable) -> Vec<(Vec<String>, Vec<&SweepRow>)> {
    let mut out: Vec<(Vec<String>, Vec<&SweepRow>)> = Vec::new();
    for r in &table.rows {
        match out.last_mut() {
            Some((v, rows)) if *v == r.values => rows.push(r),
            _ => out.push((r.values.clone(), vec![r])),
        }
    }
    out
}

/// The mean of metric column `name` over rows.
pub fn mean(rows: &[&SweepRow], name: &str) -> f64 {
    let v: Vec<f64> = rows.iter().map(|r| number(r, name)).filter(|x| x.is_finite()).collect();
    if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
}

/// Whether a row met every objective (false without objectives).
pub fn met(row: &SweepRow) -> bool {
    row.slo.as_ref().is_some_and(|(met, _)| *met)
}

/// The table printed after a sweep: one line per combination, seeds
/// averaged.
pub fn summary(table: &SweepTable) -> String {
    use std::fmt::Write as _;
    let m = &table.meta;
    let mut head: Vec<String> = m.vary.iter().map(|v| v.path.clone()).collect();
    head.extend(["overcommit", "running", "p99 (worst)", "slowdown", "major/s", "OOM kills"].map(String::from));
    if !m.slo.is_empty() {
        head.push("SLO met".into());
    }
    let mut lines = vec![head];
    for (values, rows) in combinations(table) {
        let mut l = values.clone();
        l.push(format!("{:.2}", mean(&rows, "overcommit_ratio")));
        l.push(format!("{:.1}/{}", mean(&rows, "guests_running"), number(rows[0], "guests")));
        l.push(super::run::ns(mean(&rows, "p99_ns")));
        l.push(format!("{:.3}", mean(&rows, "slowdown")));
        l.push(format!("{:.0}", mean(&rows, "major_faults_per_s")));
        l.push(format!("{:.1}", mean(&rows, "oom_kills")));
        if !m.slo.is_empty() {
            let held = rows.iter().filter(|r| met(r)).count();
            l.push(format!("{held}/{}", rows.len()));
        }
        lines.push(l);
    }
    let widths: Vec<usize> =
        (0..lines[0].len()).map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    let shard = m.shard.map_or(String::new(), |(i, n)| format!(", shard {i}/{n}"));
    let _ = writeln!(
        out,
        "{}: {} runs ({} combinations × {} seeds{shard})",
        m.scenario,
        table.rows.len(),
        combinations(table).len(),
        m.seeds
    );
    for l in lines {
        let cells: Vec<String> = l.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
        let _ = writeln!(out, "  {}", cells.join("  "));
    }
    out
}

/// What a sweep's density axis is: the column plotted and the varied path
/// that moves it (the curves are the combinations of the other paths).
struct Density {
    /// Column name, or `None` to parse the driving path's own values.
    column: Option<&'static str>,
    title: &'static str,
    driver: Option<usize>,
}

fn density(table: &SweepTable) -> Density {
    let vary = &table.meta.vary;
    if let Some(i) = vary.iter().position(|v| v.path.ends_with(".count")) {
        return Density { column: Some("guests"), title: "guests on the host", driver: Some(i) };
    }
    let ratio_moves = {
        let mut v: Vec<f64> = table.rows.iter().map(|r| number(r, "overcommit_ratio")).collect();
        v.dedup();
        v.len() > 1
    };
    let memory_path = vary.iter().position(|v| {
        v.path.starts_with("host.ram") || v.path.starts_with("host.reserved") || v.path.ends_with(".memory")
    });
    if ratio_moves {
        return Density {
            column: Some("overcommit_ratio"),
            title: "overcommit ratio (configured / usable)",
            driver: memory_path,
        };
    }
    // A path whose every value is a number or a size can be the x axis;
    // names (variants, devices) cannot.
    let numeric = vary.first().is_some_and(|v| v.values.iter().all(|x| value_number(x).is_some()));
    Density { column: None, title: "", driver: if numeric { Some(0) } else { None } }
}

/// A varied value as a number: plain, or a size (`32G`) in GiB.
fn value_number(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .or_else(|| crate::units::ByteSize::parse(text).ok().map(|b| b.bytes() as f64 / (1u64 << 30) as f64))
}

/// Curves of the density plots: label and the rows of each x, seeds
/// averaged later.
/// One curve of a density plot: its label and, per x, the rows there.
type Curve<'t> = (String, Vec<(f64, Vec<&'t SweepRow>)>);

fn curves<'t>(table: &'t SweepTable, d: &Density) -> Vec<Curve<'t>> {
    let vary = &table.meta.vary;
    let mut out: Vec<Curve> = Vec::new();
    for (values, rows) in combinations(table) {
        let label: Vec<String> = vary
            .iter()
            .zip(&values)
            .enumerate()
            .filter(|(i, _)| Some(*i) != d.driver)
            .map(|(_, (v, x))| format!("{}={x}", v.path))
            .collect();
        let label = if label.is_empty() { "all runs".to_string() } else { label.join(", ") };
        let x = match (d.column, d.driver) {
            (Some(c), _) => mean(&rows, c),
            (None, Some(i)) => value_number(&values[i]).unwrap_or(f64::NAN),
            (None, None) => f64::NAN,
        };
        if !x.is_finite() {
            continue;
        }
        match out.iter_mut().find(|(l, _)| *l == label) {
            Some((_, pts)) => pts.push((x, rows)),
            None => out.push((label, vec![(x, rows)])),
        }
    }
    for (_, pts) in &mut out {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// The density plots: (file stem, caption, figure).
pub fn figures(table: &SweepTable) -> Result<Vec<(String, String, super::plot::Figure)>, String> {
    use super::plot::{Axis, LineChart, Scale, Series, line_chart};
    let d = density(table);
    let x_title = match (d.column, d.driver) {
        (Some(_), _) => d.title.to_string(),
        (None, Some(i)) => table.meta.vary[i].path.clone(),
        (None, None) => "run".to_string(),
    };
    let cs = curves(table, &d);
    if cs.iter().all(|(_, pts)| pts.is_empty()) {
        return by_combination(table);
    }
    let slos: Vec<crate::scenario::slo::Slo> = table.meta.slo.iter().filter_map(|s| s.parse().ok()).collect();
    let series = |col: &str, scale: f64| -> Vec<Series> {
        cs.iter()
            .map(|(label, pts)| Series {
                label: label.clone(),
                points: pts.iter().map(|(x, rows)| (*x, mean(rows, col) / scale)).collect(),
            })
            .collect()
    };
    use crate::scenario::slo::Metric;
    let hlines = |m: Metric, scale: f64| -> Vec<(f64, String)> {
        slos.iter().filter(|s| s.metric == m).map(|s| (s.bound / scale, format!("SLO {}", s.text))).collect()
    };
    let p99 = series("p99_ns", 1e3);
    let slow = series("slowdown", 1.0);
    let spread = |s: &[Series]| {
        let v: Vec<f64> = s.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| *v > 0.0).collect();
        let (lo, hi) = v.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        hi / lo
    };
    let slow_scale = if spread(&slow) > 10.0 { Scale::Log } else { Scale::Linear };
    let charts = [
        (
            "density-p99",
            format!("p99 memory latency of the worst guest against density ({} seed(s) averaged)", table.meta.seeds),
            LineChart {
                title: format!("{}: p99 latency against density", table.meta.scenario),
                x: Axis { title: x_title.clone(), scale: Scale::Linear },
                y: Axis { title: "p99 latency, worst guest (µs)".into(), scale: Scale::Log },
                series: p99,
                hlines: hlines(Metric::P99, 1e3),
                markers: true,
                marks: vec![],
            },
        ),
        (
            "density-slowdown",
            "Slowdown of the worst guest ((compute + stall) / compute) against density".to_string(),
            LineChart {
                title: format!("{}: slowdown against density", table.meta.scenario),
                x: Axis { title: x_title, scale: Scale::Linear },
                y: Axis { title: "slowdown, worst guest (×)".into(), scale: slow_scale },
                series: slow,
                hlines: hlines(Metric::Slowdown, 1.0),
                markers: true,
                marks: vec![],
            },
        ),
    ];
    charts
        .into_iter()
        .map(|(stem, caption, c)| line_chart(&c).map(|f| (stem.to_string(), caption, f)).map_err(|e| e.to_string()))
        .collect()
}

/// When the varied values are not a density (variants, devices, policies):
/// latency percentiles and slowdown per combination, as category charts
/// with the same file names.
fn by_combination(table: &SweepTable) -> Result<Vec<(String, String, super::plot::Figure)>, String> {
    use super::plot::{Axis, CategoryChart, Scale, category_chart};
    let combos = combinations(table);
    let categories: Vec<String> = combos.iter().map(|(v, _)| v.join(", ")).collect();
    let col = |c: &str, scale: f64| combos.iter().map(|(_, rows)| mean(rows, c) / scale).collect::<Vec<f64>>();
    let latency = CategoryChart {
        title: format!("{}: latency of a touch, worst guest", table.meta.scenario),
        categories: categories.clone(),
        y: Axis { title: "latency (µs)".into(), scale: Scale::Log },
        series: vec![
            ("p50".into(), col("p50_ns", 1e3)),
            ("p99".into(), col("p99_ns", 1e3)),
            ("p99.9".into(), col("p999_ns", 1e3)),
        ],
    };
    let slowdown = CategoryChart {
        title: format!("{}: slowdown, worst guest", table.meta.scenario),
        categories,
        y: Axis { title: "slowdown (×)".into(), scale: Scale::Linear },
        series: vec![("slowdown".into(), col("slowdown", 1.0))],
    };
    Ok(vec![
        (
            "density-p99".to_string(),
            "p50, p99 and p99.9 of the worst guest's touches for each combination".to_string(),
            category_chart(&latency).map_err(|e| e.to_string())?,
        ),
        (
            "density-slowdown".to_string(),
            "Slowdown of the worst guest ((compute + stall) / compute) for each combination".to_string(),
            category_chart(&slowdown).map_err(|e| e.to_string())?,
        ),
    ])
}

/// What the curves show, in words and the sweep's own numbers.
fn explain(table: &SweepTable) -> Vec<String> {
    let d = density(table);
    let cs = curves(table, &d);
    let mut out = Vec::new();
    for (label, pts) in &cs {
        let (Some(first), Some(last)) = (pts.first(), pts.last()) else { continue };
        let p = |rows: &[&SweepRow], c: &str| mean(rows, c);
        let mut s = format!(
            "{label}: from {} to {} on the density axis, the worst guest's p99 goes from {} to {} and its slowdown \
             from {:.3} to {:.3}.",
            trim_num(first.0),
            trim_num(last.0),
            super::run::ns(p(&first.1, "p99_ns")),
            super::run::ns(p(&last.1, "p99_ns")),
            p(&first.1, "slowdown"),
            p(&last.1, "slowdown"),
        );
        let base = p(&first.1, "p99_ns");
        if let Some((x, rows)) = pts.iter().find(|(_, rows)| p(rows, "p99_ns") > 2.0 * base) {
            let major = p(rows, "major_faults_per_s");
            let cause = if major > 0.0 {
                format!("the worst guest takes {major:.0} major faults a second there: its pages come back from swap")
            } else if p(rows, "oom_kills") > 0.0 {
                "the OOM killer acts there".to_string()
            } else {
                "without major faults: page walks and first-touch faults".to_string()
            };
            s.push_str(&format!(" p99 first doubles at {} ({cause}).", trim_num(*x)));
        }
        if !table.meta.slo.is_empty() {
            let ok: Vec<f64> = pts.iter().filter(|(_, rows)| rows.iter().all(|r| met(r))).map(|p| p.0).collect();
            match ok.last() {
                Some(x) => s.push_str(&format!(" The objectives hold up to {} on every seed.", trim_num(*x))),
                None => s.push_str(" No point meets every objective."),
            }
        }
        if p(&last.1, "oom_kills") > 0.0 {
            s.push_str(&format!(" At the densest point the OOM killer kills {:.1} guests.", p(&last.1, "oom_kills")));
        }
        out.push(s);
    }
    // Curves that coincide say that what tells them apart did nothing here.
    let shapes: Vec<Vec<String>> = cs
        .iter()
        .map(|(_, pts)| {
            pts.iter()
                .map(|(x, rows)| {
                    let m = |c: &str| mean(rows, c);
                    format!("{x}|{}|{}|{}", m("p99_ns"), m("slowdown"), m("major_faults"))
                })
                .collect()
        })
        .collect();
    let mut said = vec![false; cs.len()];
    for i in 0..cs.len() {
        if said[i] {
            continue;
        }
        let same: Vec<usize> = (i + 1..cs.len()).filter(|&j| shapes[j] == shapes[i]).collect();
        for &j in &same {
            said[j] = true;
        }
        if !same.is_empty() {
            let names: Vec<&str> = same.iter().map(|&j| cs[j].0.as_str()).collect();
            out.push(format!(
                "{} and {} give the same numbers at every point: that difference changed nothing in these runs.",
                cs[i].0,
                names.join(" and ")
            ));
        }
    }
    let ksm_varied = table.meta.vary.iter().any(|v| v.path.starts_with("host.ksm"));
    if ksm_varied && table.rows.iter().all(|r| number(r, "ksm_saved_bytes") == 0.0) {
        out.push(
            "KSM saved nothing in any run: a page merges only once ksmd has seen it unchanged on two passes, so \
             nothing merges before its second full scan, and with these knobs (pages_to_scan per sleep_millisecs) \
             a full scan of the guests' memory takes longer than the run. A longer duration, more pages_to_scan \
             or host.ksm.policy=advisor lets it save."
                .to_string(),
        );
    }
    out
}

fn trim_num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 { format!("{x:.0}") } else { format!("{x:.2}") }
}

/// `report.html` for a sweep.
pub fn html(table: &SweepTable, figs: &[(String, String, super::plot::Figure)]) -> String {
    use super::html::{Block, Page, Section, render};
    let m = &table.meta;
    let combos = combinations(table);
    let worst = |c: &str| table.rows.iter().map(|r| number(r, c)).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let mut key_numbers = vec![
        ("runs".to_string(), table.rows.len().to_string()),
        ("combinations × seeds".to_string(), format!("{} × {}", combos.len(), m.seeds)),
        ("highest p99 (worst guest)".to_string(), super::run::ns(worst("p99_ns"))),
        ("highest slowdown".to_string(), format!("{:.3}", worst("slowdown"))),
        ("OOM kills (most in a run)".to_string(), format!("{}", worst("oom_kills"))),
    ];
    if !m.slo.is_empty() {
        let held = table.rows.iter().filter(|r| met(r)).count();
        key_numbers.push(("runs meeting every objective".to_string(), format!("{held} of {}", table.rows.len())));
    }
    let mut blocks: Vec<Block> = explain(table).into_iter().map(Block::Paragraph).collect();
    for (stem, caption, f) in figs {
        blocks.push(Block::Figure { id: stem.clone(), caption: caption.clone(), svg: f.svg.clone() });
    }
    let mut head: Vec<String> = m.vary.iter().map(|v| v.path.clone()).collect();
    head.extend(
        [
            "overcommit",
            "running",
            "p50",
            "p99",
            "p99.9",
            "slowdown",
            "major faults/s",
            "swap peak",
            "KSM saved",
            "OOM kills",
        ]
        .map(String::from),
    );
    let rows = combos
        .iter()
        .map(|(values, rows)| {
            let mut l = values.clone();
            let bytes = |c: &str| super::bytes_text(mean(rows, c).max(0.0) as u64);
            l.extend([
                format!("{:.2}", mean(rows, "overcommit_ratio")),
                format!("{:.1}", mean(rows, "guests_running")),
                super::run::ns(mean(rows, "p50_ns")),
                super::run::ns(mean(rows, "p99_ns")),
                super::run::ns(mean(rows, "p999_ns")),
                format!("{:.3}", mean(rows, "slowdown")),
                format!("{:.0}", mean(rows, "major_faults_per_s")),
                bytes("swap_used_peak_bytes"),
                bytes("ksm_saved_bytes"),
                format!("{:.1}", mean(rows, "oom_kills")),
            ]);
            l
        })
        .collect();
    let varied: Vec<String> = m.vary.iter().map(|v| format!("{} over {}", v.path, v.values.join(", "))).collect();
    let page = Page {
        title: format!("overcommit sweep: {}", m.scenario),
        description: m.description.clone(),
        key_numbers,
        sections: vec![
            Section { heading: "Density against latency".into(), blocks },
            Section {
                heading: "Every combination".into(),
                blocks: vec![
                    Block::Paragraph(format!(
                        "Varied: {}. Values are means over {} seed(s); latencies and slowdown are the worst running \
                         guest's. Every row of sweep.csv can be replayed with `overcommit run {} --seed SEED --set PATH=VALUE`.",
                        varied.join("; "),
                        m.seeds,
                        m.file
                    )),
                    Block::Table { head, rows },
                ],
            },
        ],
        footer: format!(
            "overcommit {} · scenario {} · master seed {} · sweep {} · files: sweep.csv, sweep.json, density-p99.svg/.png, density-slowdown.svg/.png",
            env!("CARGO_PKG_VERSION"),
            m.file,
            m.master_seed,
            m.fingerprint
        ),
    };
    render(&page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::sweep::VaryMeta;

    fn metrics(run: usize) -> RowMetrics {
        RowMetrics {
            overcommit_ratio: 1.4194,
            guests: 11,
            guests_running: 11,
            guests_failed_to_start: 0,
            oom_kills: run as u64,
            mean_ns: 907.5,
            p50_ns: 242,
            p99_ns: 2_600,
            p999_ns: 220_159,
            slowdown: 1.0433,
            slowdown_mean: 1.0,
            minor_faults: 3072,
            major_faults: 17,
            fault_ratio: 0.000123,
            major_faults_per_s: 0.0,
            peak_used_bytes: 6_442_450_944,
            swap_used_peak_bytes: 0,
            ksm_saved_bytes: 0,
            ksmd_cpu_percent: 2.78,
            balloon_peak_bytes: 0,
            tlb_miss_ratio: 0.738463,
            boot_delay_s: 0.0,
            guest_swap_faults: 0,
            cow_breaks: 5,
            thp_faults: 0,
            thp_splits: 0,
            thp_collapses: 0,
        }
    }

    #[test]
    fn a_table_read_back_from_its_files_is_the_table_written() {
        // merge relies on it: each shard's sweep.csv, read back, holds the
        // rows the shard played, number for number (the metrics are kept
        // at the precision the file writes), with its objectives' cells.
        let mut columns = vec!["run".to_string(), "guests.web.count".into(), "seed".into()];
        columns.extend(METRIC_COLUMNS.iter().map(|c| c.to_string()));
        columns.extend(["slo_met".to_string(), "slo_failed".into()]);
        let meta = SweepMeta {
            scenario: "t".into(),
            description: String::new(),
            file: "t.yaml".into(),
            fingerprint: "0".into(),
            master_seed: 42,
            seeds: 1,
            vary: vec![VaryMeta { path: "guests.web.count".into(), values: vec!["2".into(), "4".into()] }],
            slo: vec!["p99<=50us".into()],
            runs_total: 2,
            shard: None,
            columns,
        };
        let rows = vec![
            SweepRow {
                run: 0,
                values: vec!["2".into()],
                seed: 42,
                metrics: metrics(0),
                slo: Some((true, String::new())),
            },
            SweepRow {
                run: 1,
                values: vec!["4".into()],
                seed: 7,
                metrics: metrics(1),
                slo: Some((false, "p99<=50us".into())),
            },
        ];
        let table = SweepTable { meta, rows };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sweep.csv"), csv(&table)).unwrap();
        std::fs::write(dir.path().join("sweep.json"), meta_json(&table.meta)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), table);
        let text = String::from_utf8(csv(&table)).unwrap();
        assert!(text.lines().nth(2).unwrap().ends_with(",5,0,0,0,false,p99<=50us"), "{text}");
    }
}
