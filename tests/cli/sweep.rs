//! `overcommit sweep` and `overcommit merge`.
//!
//! Truth: the sweep's contract (issue: the cartesian product × K seeds, a
//! row per run, the same bytes whatever `--jobs`, shards merged equal to the
//! whole), and `run` itself: a sweep row replayed with `overcommit run
//! --seed S --set PATH=VALUE` gives the same numbers, since a row is that
//! run.

use std::path::Path;

use crate::harness::{overcommit, quickstart, scratch};

/// A short quickstart sweep: 4 counts × KSM on/off, 20 simulated seconds.
const SWEEP: &[&str] =
    &["--vary", "guests.web.count=4..16:4", "--vary", "host.ksm.run=true,false", "--set", "duration=20s", "--quiet"];

fn sweep(out: &Path, extra: &[&str]) {
    overcommit().arg("sweep").arg(quickstart()).args(SWEEP).args(extra).arg("--out").arg(out).assert().success();
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).expect("sweep.csv");
    let head = r.headers().expect("header").iter().map(String::from).collect();
    (head, r.records().map(|x| x.expect("row").iter().map(String::from).collect()).collect())
}

#[test]
fn jobs_do_not_change_a_byte_and_shards_merge_into_the_whole() {
    let dir = scratch();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    sweep(&one, &["--jobs", "1"]);
    sweep(&two, &["--jobs", "2"]);
    for f in ["sweep.csv", "sweep.json", "density-p99.svg", "density-p99.png", "report.html"] {
        assert_eq!(read(&one.join(f)), read(&two.join(f)), "{f} differs between --jobs 1 and --jobs 2");
    }
    // 4 counts × 2 KSM settings × 1 seed = 8 rows, in combination order
    // (the last --vary changes fastest).
    let (head, body) = rows(&one.join("sweep.csv"));
    assert_eq!(&head[..4], ["run", "guests.web.count", "host.ksm.run", "seed"]);
    let combos: Vec<(&str, &str)> = body.iter().map(|r| (r[1].as_str(), r[2].as_str())).collect();
    assert_eq!(
        combos,
        [
            ("4", "true"),
            ("4", "false"),
            ("8", "true"),
            ("8", "false"),
            ("12", "true"),
            ("12", "false"),
            ("16", "true"),
            ("16", "false")
        ]
    );

    let (s1, s2, merged) = (dir.path().join("s1"), dir.path().join("s2"), dir.path().join("merged"));
    sweep(&s1, &["--shard", "1/2"]);
    sweep(&s2, &["--shard", "2/2"]);
    assert_eq!(rows(&s1.join("sweep.csv")).1.len(), 4, "shard 1/2 plays every other run");
    overcommit().arg("merge").arg(&s2).arg(&s1).arg("--out").arg(&merged).arg("--quiet").assert().success();
    for f in ["sweep.csv", "sweep.json", "report.html"] {
        assert_eq!(read(&merged.join(f)), read(&one.join(f)), "merged {f} differs from the unsharded sweep");
    }

    // A shard missing, or a shard of another sweep: exit 2, nothing written.
    let bad = dir.path().join("bad");
    overcommit()
        .arg("merge")
        .arg(&s1)
        .arg("--out")
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("shards missing: 2/2"));
    let other = dir.path().join("other");
    overcommit()
        .arg("sweep")
        .arg(quickstart())
        .args(SWEEP)
        .args(["--seed", "9", "--shard", "2/2", "--out"])
        .arg(&other)
        .assert()
        .success();
    overcommit()
        .arg("merge")
        .arg(&s1)
        .arg(&other)
        .arg("--out")
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("from another sweep"));
    assert!(!bad.exists());
}

#[test]
fn a_row_is_the_run_it_names() {
    row_replays(&[]);
}

#[test]
fn an_event_mode_row_is_the_event_mode_run_it_names() {
    row_replays(&["--events"]);
}

/// A sweep's row replayed with `run`, both given `mode` (nothing, or
/// `--events`): the same numbers.
fn row_replays(mode: &[&str]) {
    let dir = scratch();
    let out = dir.path().join("sw");
    overcommit()
        .arg("sweep")
        .arg(quickstart())
        .args(["--vary", "guests.web.count=6,14", "--seeds", "2", "--set", "duration=20s", "--quiet", "--out"])
        .arg(&out)
        .args(mode)
        .assert()
        .success();
    let (head, body) = rows(&out.join("sweep.csv"));
    assert_eq!(body.len(), 4, "2 values × 2 seeds");
    // Every combination uses the same two seeds, the first being the
    // scenario's own (quickstart: seed 42).
    assert_eq!((body[0][2].as_str(), body[2][2].as_str()), ("42", "42"));
    assert_eq!(body[1][2], body[3][2]);
    assert_ne!(body[0][2], body[1][2]);
    let col = |name: &str| head.iter().position(|h| h == name).expect(name);
    let row = &body[3];
    let run_dir = dir.path().join("run");
    overcommit()
        .arg("run")
        .arg(quickstart())
        .args(["--set", "duration=20s", "--set", "guests.web.count=14", "--seed", &row[2], "--quiet", "--out"])
        .arg(&run_dir)
        .args(mode)
        .assert()
        .success();
    let s: serde_json::Value = serde_json::from_slice(&read(&run_dir.join("summary.json"))).expect("summary.json");
    let worst_p99 =
        s["guests"].as_array().expect("guests").iter().map(|g| g["latency_ns"]["p99"].as_u64().unwrap()).max();
    let major: u64 = s["guests"].as_array().unwrap().iter().map(|g| g["major_faults"].as_u64().unwrap()).sum();
    assert_eq!(row[col("p99_ns")], worst_p99.unwrap().to_string());
    assert_eq!(row[col("major_faults")], major.to_string());
    assert_eq!(row[col("oom_kills")], s["host"]["oom_kills"].to_string());
}

#[test]
fn a_sweep_section_in_the_scenario_is_used_and_checked() {
    let dir = scratch();
    let text = std::fs::read_to_string(quickstart()).expect("quickstart");
    let with = |section: &str| {
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, format!("{text}\nsweep:\n{section}")).expect("write");
        p
    };
    let out = dir.path().join("out");
    let file =
        with("  vary:\n    guests.web.count: 2..6:2\n    host.swap.device: [nvme, hdd]\n  slo: [\"p99<=50us\"]\n");
    overcommit()
        .arg("sweep")
        .arg(&file)
        .args(["--set", "duration=5s", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let (head, body) = rows(&out.join("sweep.csv"));
    assert_eq!(body.len(), 6);
    assert!(head.contains(&"slo_met".to_string()), "{head:?}");

    // A bad range in the section: file, line, column, path and value.
    let file = with("  vary:\n    guests.web.count: 6..2\n");
    let bad = dir.path().join("bad");
    overcommit()
        .arg("sweep")
        .arg(&file)
        .args(["--quiet", "--out"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("sweep.vary.guests.web.count"))
        .stderr(predicates::str::contains("END is below START"))
        .stderr(predicates::str::contains("s.yaml:"));
    assert!(!bad.exists());
}

#[test]
fn bad_values_stop_the_sweep_before_any_run() {
    let dir = scratch();
    let out = dir.path().join("out");
    overcommit()
        .arg("sweep")
        .arg(quickstart())
        .args(["--vary", "guests.web.count=2,many", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("guests.web.count=many"))
        .stderr(predicates::str::contains("\"many\""));
    overcommit()
        .arg("sweep")
        .arg(quickstart())
        .args(["--vary", "guests.web.count=2", "--shard", "3/2", "--out"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--shard"));
    overcommit()
        .arg("sweep")
        .arg(quickstart())
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("nothing to vary"));
    assert!(!out.exists());
}
