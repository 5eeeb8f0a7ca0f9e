//! The files a sweep writes: `sweep.csv` (a row per run), `sweep.json`
//! (what the sweep was), the density-against-latency plots and
//! `report.html`; and reading a shard's files back for `merge`.

use std::path::{Path, PathBuf};

use crate::plan::sweep::{SweepMeta, SweepTable};

/// `sweep.csv`: the header is the meta's columns, then a row per run.
pub fn csv(table: &SweepTable) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(&table.meta.columns);
    for r in &table.rows {
        let _ = w.write_record(r);
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
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", csv_path.display()))?;
        rows.push(rec.iter().map(String::from).collect());
    }
    Ok(SweepTable { meta, rows })
}

/// Every file of a sweep, as (name, bytes), ready for
/// [`super::run::write_atomically`].
pub fn files(table: &SweepTable) -> Result<Vec<(String, Vec<u8>)>, String> {
    Ok(vec![("sweep.csv".to_string(), csv(table)), ("sweep.json".to_string(), meta_json(&table.meta))])
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

/// The column index of `name`.
pub fn column(table: &SweepTable, name: &str) -> Option<usize> {
    table.meta.columns.iter().position(|c| c == name)
}

/// A row's number in column `name` (NaN when absent or not a number).
pub fn number(table: &SweepTable, row: &[String], name: &str) -> f64 {
    column(table, name).and_then(|i| row.get(i)).and_then(|c| c.parse::<f64>().ok()).unwrap_or(f64::NAN)
}

/// Rows grouped by combination of varied values (seeds averaged), in run
/// order: (values, rows).
pub fn combinations(table: &SweepTable) -> Vec<(Vec<String>, Vec<&Vec<String>>)> {
    let k = table.meta.vary.len();
    let mut out: Vec<(Vec<String>, Vec<&Vec<String>>)> = Vec::new();
    for r in &table.rows {
        let values: Vec<String> = r.iter().skip(1).take(k).cloned().collect();
        match out.last_mut() {
            Some((v, rows)) if *v == values => rows.push(r),
            _ => out.push((values, vec![r])),
        }
    }
    out
}

/// The mean of column `name` over rows.
pub fn mean(table: &SweepTable, rows: &[&Vec<String>], name: &str) -> f64 {
    let v: Vec<f64> = rows.iter().map(|r| number(table, r, name)).filter(|x| x.is_finite()).collect();
    if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
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
        l.push(format!("{:.2}", mean(table, &rows, "overcommit_ratio")));
        l.push(format!("{:.1}/{}", mean(table, &rows, "guests_running"), number(table, rows[0], "guests")));
        l.push(super::run::ns(mean(table, &rows, "p99_ns")));
        l.push(format!("{:.3}", mean(table, &rows, "slowdown")));
        l.push(format!("{:.0}", mean(table, &rows, "major_faults_per_s")));
        l.push(format!("{:.1}", mean(table, &rows, "oom_kills")));
        if !m.slo.is_empty() {
            let i = column(table, "slo_met");
            let met = rows.iter().filter(|r| i.and_then(|i| r.get(i)).is_some_and(|c| c == "true")).count();
            l.push(format!("{met}/{}", rows.len()));
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
