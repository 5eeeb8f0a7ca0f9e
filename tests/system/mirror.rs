//! The model's side of a kernel comparison: a mirror scenario played by
//! this project's CLI, page-exact, and its summary and timeline read back.

use std::process::Command;

/// What the model's run left: `summary.json`, and `timeseries.csv` as its
/// header and rows of numbers.
pub struct MirrorRun {
    pub summary: serde_json::Value,
    head: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

impl MirrorRun {
    /// The index of timeline column `name`.
    pub fn col(&self, name: &str) -> usize {
        self.head.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} column"))
    }
}

/// Play scenario `yaml` (named `name` for its scratch folder) page-exact
/// with the CLI, and read back what it wrote; the folder is removed.
pub fn run(name: &str, yaml: &str) -> MirrorRun {
    let exe = env!("CARGO_BIN_EXE_overcommit");
    let dir = std::env::temp_dir().join(format!("overcommit-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).expect("the mirror scenario");
    let out = dir.join("out");
    let ok = Command::new(exe)
        .args(["run", &file.to_string_lossy(), "--sample-rate", "1", "--quiet", "--out", &out.to_string_lossy()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "the model ran");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    let csv = std::fs::read_to_string(out.join("timeseries.csv")).expect("timeseries");
    let _ = std::fs::remove_dir_all(&dir);
    let mut lines = csv.lines();
    let head = lines.next().expect("a header").split(',').map(str::to_string).collect();
    let rows = lines.map(|l| l.split(',').map(|f| f.parse().unwrap_or(0.0)).collect()).collect();
    MirrorRun { summary, head, rows }
}
