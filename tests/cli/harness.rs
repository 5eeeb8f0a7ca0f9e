//! What the topic modules share: the binary, a fresh directory per test, and
//! the shipped scenarios.

use std::path::{Path, PathBuf};

pub fn overcommit() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("overcommit").expect("the overcommit binary is built by cargo test")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn quickstart() -> PathBuf {
    repo().join("scenarios/quickstart.yaml")
}

/// A scratch directory that disappears with the test.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Every shipped scenario, recursively.
pub fn shipped_scenarios() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("scenarios"), &mut out);
    out
}

/// The quickstart scenario with one line replaced, written to `dir`.
pub fn quickstart_with(dir: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(quickstart()).expect("quickstart scenario");
    assert!(text.contains(from), "quickstart no longer contains {from:?}");
    let path = dir.join("edited.yaml");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write scenario");
    path
}

/// Four guests touching 1 M pages a second, their 6 GiB of working sets on
/// 4 GiB swapping to a disk (12.7 ms a read, one at a time), for
/// `duration`: a host whose swap-ins are too slow for coarse sampling.
pub fn disk_host(duration: &str) -> String {
    format!(
        "name: disk
seed: 1
duration: {duration}
host: {{ ram: 4G, reserved: 0, thp: never, swap: {{ size: 8G, device: hdd }} }}
guests:
  - name: g
    count: 4
    memory: 2G
    workload: {{ working_set: 1536M, touch_rate: 1M/s, pattern: uniform }}
"
    )
}
