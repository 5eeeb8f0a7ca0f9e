//! Reading a calibration file: this host's measured costs replace the
//! defaults in [`Costs`].
//!
//! The file is what `overcommit calibrate` writes (YAML, or the same content
//! as JSON). Keys read, each a median in nanoseconds unless said otherwise:
//!
//! | key | replaces |
//! |---|---|
//! | `fault_ns.page_4k.median` | `fault_4k_ns` (plus one VM exit: a guest's first touch is an EPT violation) |
//! | `fault_ns.thp_2m.median` | `fault_thp_ns` (plus one VM exit) |
//! | `fault_ns.hugetlb_2m.median` | `fault_hugetlb_2m_ns` (plus one VM exit) |
//! | `fault_ns.hugetlb_1g.median` | `fault_hugetlb_1g_ns` (plus one VM exit) |
//! | `copy_4k_ns` (a number, or a map with `median`) | `copy_4k_ns` (plus one VM exit) |
//! | `dram_latency_ns.thp_2m` | `dram_ns`: a pointer chase within THP reach is DRAM alone |
//! | `dram_latency_ns.page_4k` | `walk_ref_ns` = (page_4k − thp_2m) / 4: the 4 KiB chase misses the TLB on nearly every load and walks 4 levels |
//! | `ksm_unstable_level_ns`, `ksm_stable_level_ns`, `ksm_merge_ns` (numbers, or maps with `median`) | the same: ksmd's CPU per level of the unstable and of the stable tree a search goes down, and per merge (host work, no exit; `calibrate --ksm` derives the first from its region of distinct pages) |
//! | `ksm_checksum_page_ns`, `ksm_merged_page_ns`, `ksm_skipped_page_ns` (numbers, or maps with `median`) | `ksm_checksum_page_ns`, `ksm_merged_page_ns`, `ksm_skipped_page_ns`: per page ksmd only checksums (first sight, or changed), per page already mapping a KSM page, and per page smart scan skips (`calibrate --ksm` measures the first and the last) |
//! | `ksm_wake_ns`, `jiffy_ns` (numbers) | `ksm_wake_ns`, `jiffy_ns`: what ksmd's sleep takes beyond its whole jiffies, and one jiffy |
//! | `reclaim_page_ns` (a number, or a map with `median`) | `reclaim_page_ns`: what reclaim spends taking one page out to swap (not measured by `calibrate`: the kernel's `mm_vmscan_memcg_reclaim_begin`/`_end` tracepoints time it) |
//! | `balloon_bytes_per_s.inflate`, `.deflate` (bytes per second) | `balloon_inflate_bytes_per_s`, `balloon_deflate_bytes_per_s`: the virtio-balloon's pace |
//!
//! A figure given as `unavailable` (with a reason) keeps the default.

use std::path::Path;

use super::Costs;
use crate::input::node::{Node, Value, first_line, parse_options};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    #[error("{file}: cannot read the calibration file: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}: not a calibration file: {reason}")]
    Parse { file: String, reason: String },
    #[error("{file}:{line}:{column}: {key}: {reason}")]
    Value { file: String, line: u64, column: u64, key: String, reason: String },
}

/// Costs from `path`, starting from `base` and replacing what it measured.
pub fn load(path: &Path, base: Costs) -> Result<Costs, CalibrationError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CalibrationError::Read { file: file.clone(), reason: e.to_string() })?;
    from_str(&text, &file, base)
}

pub fn from_str(text: &str, file: &str, base: Costs) -> Result<Costs, CalibrationError> {
    let root: Node = serde_saphyr::from_str_with_options(text, parse_options())
        .map_err(|e| CalibrationError::Parse { file: file.to_string(), reason: first_line(&e.to_string()) })?;
    if !matches!(root.value, Value::Map(_)) {
        return Err(CalibrationError::Parse { file: file.to_string(), reason: "expected a mapping of figures".into() });
    }
    if let Some(old) = root.get("ksm_scan_page_ns") {
        // The flat per-page figure this key gave is now the checksum plus
        // the levels of the trees a page's searches go down.
        return Err(CalibrationError::Value {
            file: file.to_string(),
            line: old.pos.line,
            column: old.pos.column,
            key: "ksm_scan_page_ns".into(),
            reason: "no longer read: ksmd's CPU per page is now ksm_checksum_page_ns plus ksm_unstable_level_ns \
                     and ksm_stable_level_ns per level of the trees searched (run `overcommit calibrate --ksm` \
                     again, which derives ksm_unstable_level_ns, or remove the key)"
                .into(),
        });
    }
    let mut c = base;
    let exit = c.vm_exit_ns;
    if let Some(v) = figure(&root, &["fault_ns", "page_4k"], file)? {
        c.fault_4k_ns = v + exit;
    }
    if let Some(v) = figure(&root, &["fault_ns", "thp_2m"], file)? {
        c.fault_thp_ns = v + exit;
    }
    if let Some(v) = figure(&root, &["fault_ns", "hugetlb_2m"], file)? {
        c.fault_hugetlb_2m_ns = v + exit;
    }
    if let Some(v) = figure(&root, &["fault_ns", "hugetlb_1g"], file)? {
        c.fault_hugetlb_1g_ns = v + exit;
    }
    if let Some(v) = figure(&root, &["copy_4k_ns"], file)? {
        c.copy_4k_ns = v + exit;
    }
    if let Some(v) = figure(&root, &["ksm_unstable_level_ns"], file)? {
        c.ksm_unstable_level_ns = v;
    }
    if let Some(v) = figure(&root, &["ksm_stable_level_ns"], file)? {
        c.ksm_stable_level_ns = v;
    }
    if let Some(v) = figure(&root, &["ksm_merge_ns"], file)? {
        c.ksm_merge_ns = v;
    }
    if let Some(v) = figure(&root, &["ksm_checksum_page_ns"], file)? {
        c.ksm_checksum_page_ns = v;
    }
    if let Some(v) = figure(&root, &["ksm_merged_page_ns"], file)? {
        c.ksm_merged_page_ns = v;
    }
    if let Some(v) = figure(&root, &["ksm_skipped_page_ns"], file)? {
        c.ksm_skipped_page_ns = v;
    }
    if let Some(v) = figure(&root, &["ksm_wake_ns"], file)? {
        c.ksm_wake_ns = v;
    }
    if let Some(v) = figure(&root, &["jiffy_ns"], file)? {
        c.jiffy_ns = v;
    }
    if let Some(v) = figure(&root, &["reclaim_page_ns"], file)? {
        c.reclaim_page_ns = v;
    }
    if let Some(v) = figure(&root, &["balloon_bytes_per_s", "inflate"], file)? {
        c.balloon_inflate_bytes_per_s = v;
    }
    if let Some(v) = figure(&root, &["balloon_bytes_per_s", "deflate"], file)? {
        c.balloon_deflate_bytes_per_s = v;
    }
    let d4k = figure(&root, &["dram_latency_ns", "page_4k"], file)?;
    let dthp = figure(&root, &["dram_latency_ns", "thp_2m"], file)?;
    if let Some(d) = dthp {
        c.dram_ns = d;
    }
    if let (Some(a), Some(b)) = (d4k, dthp) {
        c.walk_ref_ns = ((a - b) / 4.0).max(0.5);
    }
    Ok(c)
}

/// The number at `path`: a plain number, or a map's `median`; `None` when
/// absent or marked unavailable.
fn figure(root: &Node, path: &[&str], file: &str) -> Result<Option<f64>, CalibrationError> {
    let mut node = root;
    for key in path {
        match node.get(key) {
            Some(n) => node = n,
            None => return Ok(None),
        }
    }
    let target = match &node.value {
        Value::Map(_) if node.get("unavailable").is_some() => return Ok(None),
        Value::Map(_) => match node.get("median") {
            Some(m) => m,
            None => return Ok(None),
        },
        Value::Str(s) if s.starts_with("unavailable") => return Ok(None),
        _ => node,
    };
    let bad = |reason: String| CalibrationError::Value {
        file: file.to_string(),
        line: target.pos.line,
        column: target.pos.column,
        key: path.join("."),
        reason,
    };
    let v = match &target.value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => return Err(bad(format!("expected a number, found {}", target.show()))),
    };
    if !(v.is_finite() && v > 0.0) {
        return Err(bad(format!("{v} is not a positive figure")));
    }
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_figures_replace_defaults() {
        let text = "
fault_ns:
  page_4k: { median: 700, min: 650, max: 900 }
  thp_2m: { median: 60000, min: 55000, max: 70000 }
  hugetlb_2m: { unavailable: no pages in the pool }
  hugetlb_1g: unavailable
dram_latency_ns: { page_4k: 130, thp_2m: 90 }
copy_4k_ns: 400
ksm_unstable_level_ns: { median: 250 }
ksm_merge_ns: 700
";
        let d = Costs::default();
        let c = from_str(text, "cal.yaml", d).unwrap();
        // Host figures plus one VM exit (the default 500 ns).
        assert_eq!(c.fault_4k_ns, 1200.0);
        assert_eq!(c.fault_thp_ns, 60500.0);
        assert_eq!(c.copy_4k_ns, 900.0);
        // ksmd's per-level and merge times are host CPU work: taken as
        // measured.
        assert_eq!((c.ksm_unstable_level_ns, c.ksm_merge_ns), (250.0, 700.0));
        assert_eq!(c.ksm_stable_level_ns, d.ksm_stable_level_ns);
        // Unavailable figures keep the defaults.
        assert_eq!(c.fault_hugetlb_2m_ns, d.fault_hugetlb_2m_ns);
        assert_eq!(c.fault_hugetlb_1g_ns, d.fault_hugetlb_1g_ns);
        // DRAM from the THP chase; (130 − 90) / 4 levels = 10 ns a reference.
        assert_eq!(c.dram_ns, 90.0);
        assert_eq!(c.walk_ref_ns, 10.0);
    }

    #[test]
    fn the_old_flat_ksm_figure_is_refused_with_its_position() {
        let err = from_str("copy_4k_ns: 400\nksm_scan_page_ns: 5700\n", "cal.yaml", Costs::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("cal.yaml:2:19: ksm_scan_page_ns: no longer read"), "{msg}");
    }

    #[test]
    fn bad_values_name_the_key_and_position() {
        let err = from_str("fault_ns:\n  page_4k: { median: fast }\n", "cal.yaml", Costs::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            // `fast` starts at column 22 of line 2 (two spaces, `page_4k: { median: `).
            "cal.yaml:2:22: fault_ns.page_4k: expected a number, found \"fast\""
        );
    }

    #[test]
    fn the_shipped_default_calibration_is_the_built_in_costs() {
        // calibrations/default.yaml restates the defaults (each with its
        // source there): loading it must change nothing.
        let text = include_str!("../../calibrations/default.yaml");
        assert_eq!(from_str(text, "default.yaml", Costs::default()).unwrap(), Costs::default());
    }
}
