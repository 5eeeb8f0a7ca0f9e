//! `overcommit run`: what it writes and how it exits.
//!
//! Truth: the run command's file contract (summary.json keys, one
//! time-series row per sample, an events table), the kernel's OOM rule (no
//! swap and guests touching more than RAM: the OOM killer must act), and
//! the CLI's exit codes (2 for bad input, with nothing written).

use std::path::Path;

use serde_json::Value;

use crate::harness::{overcommit, quickstart, scratch};

/// Parse a CSV file into its header and rows.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().expect("a header row").iter().map(String::from).collect();
    let rows = r.records().map(|rec| rec.expect("a CSV row").iter().map(String::from).collect()).collect();
    (header, rows)
}

fn read_summary(dir: &Path) -> Value {
    let bytes = std::fs::read(dir.join("summary.json")).expect("summary.json is written");
    serde_json::from_slice(&bytes).expect("summary.json is JSON")
}

fn has_keys(v: &Value, keys: &[&str], what: &str) {
    for k in keys {
        assert!(v.get(k).is_some(), "{what} has no `{k}`: {v}");
    }
}

#[test]
fn quickstart_run_writes_the_three_files() {
    // Five seconds of the quickstart (the whole 3 minutes take ~15 s even in
    // release): sample_every is 1s, so 5 / 1 + 1 = 6 samples, t = 0..5 s.
    let dir = scratch();
    let out = dir.path().join("qs");
    overcommit()
        .args(["run"])
        .arg(quickstart())
        .arg("--out")
        .arg(&out)
        .args(["-q", "--set", "duration=5s"])
        .assert()
        .success()
        .stdout("");

    let s = read_summary(&out);
    has_keys(&s, &["scenario", "seed", "duration_s", "host", "guests"], "summary");
    assert_eq!(s["scenario"], "quickstart");
    assert_eq!(s["seed"], 42);
    assert_eq!(s["duration_s"], 5.0);
    let host = &s["host"];
    has_keys(
        host,
        &[
            "ram_bytes",
            "usable_bytes",
            "configured_bytes",
            "overcommit_ratio",
            "peak_used_bytes",
            "min_free_bytes",
            "swap_used_peak_bytes",
            "oom_kills",
        ],
        "host",
    );
    // 64 GiB of RAM, 62 GiB usable after the 2 GiB reserve, 12 × 8 GiB
    // configured: 96 / 62 = 1.548387.
    assert_eq!(host["ram_bytes"], 64u64 << 30);
    assert_eq!(host["usable_bytes"], 62u64 << 30);
    assert_eq!(host["configured_bytes"], 96u64 << 30);
    assert!((host["overcommit_ratio"].as_f64().unwrap() - 96.0 / 62.0).abs() < 1e-6);
    let guests = s["guests"].as_array().expect("guests is a list");
    assert_eq!(guests.len(), 12);
    for (i, g) in guests.iter().enumerate() {
        has_keys(
            g,
            &[
                "name",
                "group",
                "state",
                "memory_bytes",
                "resident_peak_bytes",
                "swapped_peak_bytes",
                "touches",
                "minor_faults",
                "major_faults",
                "fault_ratio",
                "latency_ns",
                "slowdown",
            ],
            "guest",
        );
        has_keys(&g["latency_ns"], &["mean", "p50", "p95", "p99", "p999"], "latency_ns");
        assert_eq!(g["name"], format!("web-{i}"));
        assert_eq!(g["group"], "web");
        assert_eq!(g["state"], "running");
        assert_eq!(g["memory_bytes"], 8u64 << 30);
        assert!(g["touches"].as_u64().unwrap() > 0);
        assert!(g["slowdown"].as_f64().unwrap() >= 1.0);
    }

    let (header, rows) = read_csv(&out.join("timeseries.csv"));
    assert_eq!(header[0], "t_s");
    assert!(header.iter().any(|h| h == "web-11.resident_bytes"), "{header:?}");
    assert_eq!(rows.len(), 6, "one row per sample: 5 s / 1 s + 1");
    let times: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(times, ["0", "1", "2", "3", "4", "5"]);
    assert!(rows.iter().all(|r| r.len() == header.len()));

    let (header, rows) = read_csv(&out.join("events.csv"));
    assert_eq!(header, ["t_s", "kind", "guest", "detail"]);
    assert_eq!(rows.iter().filter(|r| r[1] == "guest_started").count(), 12);
    assert_eq!(rows.last().map(|r| r[1].as_str()), Some("run_end"));
}

#[test]
fn the_run_says_how_it_played_and_the_flags_choose() {
    // The quickstart's first 80 s, before its working sets grow, is
    // expected to fault on under 1% of its touches (first touches of its
    // THP regions): by default it plays by events. The whole run is
    // expected at 2.6% (Che's approximation once 72 GiB of working sets
    // outgrow 62 GiB, KSM and balloons left out), and so are 24 guests in
    // 20 s (their 72 GiB of working sets overflow from the start): touch by
    // touch. --touches plays every touch; --events with it is an error.
    let dir = scratch();
    for (name, flags, mode) in [
        ("auto", &["--set", "duration=80s"][..], "events"),
        ("auto-whole", &[][..], "touches"),
        ("auto-24", &["--set", "duration=20s", "--set", "guests.web.count=24"][..], "touches"),
        ("touches", &["--touches", "--set", "duration=5s"][..], "touches"),
    ] {
        let out = dir.path().join(name);
        overcommit().arg("run").arg(quickstart()).arg("--out").arg(&out).arg("-q").args(flags).assert().success();
        assert_eq!(read_summary(&out)["mode"], mode, "{name}");
    }
    let out = dir.path().join("both");
    overcommit()
        .arg("run")
        .arg(quickstart())
        .arg("--out")
        .arg(&out)
        .args(["-q", "--events", "--touches"])
        .assert()
        .code(2);
    assert!(!out.exists());
}

#[test]
fn a_run_too_coarse_for_its_swap_device_plays_finer_and_says_why() {
    // Four guests touching 1 M pages a second: 240 M touches in 60 s, over
    // the automatic budget of 150 M, which alone would sample at 1/2. Their
    // 6 GiB of working sets on 4 GiB fault at a third of their touches
    // (Che's approximation, exact for uniform guests of one rate), which a
    // disk (12.7 ms a read, one at a time) cannot serve: each swap-in waits
    // for the other three guests' reads, 4 x 12.7 = 50.8 ms, and at 1/2 a
    // simulated one would stall its guest 102 ms, past the 64 ms bound
    // (`engine::MAX_SAMPLED_STALL_NS`). So it plays page-exact, and says so;
    // `--sample-rate 1/2` is obeyed, with the note `plan` gives of such a
    // rate.
    let dir = scratch();
    let file = dir.path().join("disk.yaml");
    std::fs::write(&file, crate::harness::disk_host("60s")).expect("the scenario");
    let out = dir.path().join("auto");
    // Page-exact, the note has nothing to add about checking it.
    let told = overcommit().arg("run").arg(&file).arg("--out").arg(&out).arg("-q").assert().success().stderr(
        predicates::str::contains(
            "note: page-exact rather than at 1/2: a swap-in is expected to take 50.80 ms on this swap device, so at \
             1/2 a simulated one would stall its guest 102 ms",
        ),
    );
    assert!(!String::from_utf8_lossy(&told.get_output().stderr).contains("checks it"));
    assert_eq!(read_summary(&out)["sample_rate"], 1.0);
    let out = dir.path().join("half");
    let told = overcommit()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["-q", "--sample-rate", "1/2"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&told.get_output().stderr);
    assert!(!stderr.contains("rather than"), "{stderr}");
    assert!(
        stderr.contains(
            "note: sampled at 1/2: a swap-in is expected to take 50.80 ms on this swap device, so at 1/2 a simulated \
             one would stall its guest 102 ms"
        ),
        "{stderr}"
    );
    assert_eq!(read_summary(&out)["sample_rate"], 0.5);
}

#[test]
fn guests_touching_more_than_ram_without_swap_are_oom_killed() {
    // 128 MiB of RAM, no swap, two guests each touching all of their
    // 96 MiB: 192 MiB cannot fit, reclaim has nowhere to put pages, so the
    // OOM killer must kill one.
    let dir = scratch();
    let file = dir.path().join("oom.yaml");
    std::fs::write(
        &file,
        "name: oom
duration: 1s
sample_every: 100ms
host: { ram: 128M, reserved: 0, thp: never, ksm: { run: false } }
guests:
  - name: big
    count: 2
    memory: 96M
    balloon: false
    workload: { working_set: 100%, touch_rate: 500k/s, pattern: uniform }
",
    )
    .unwrap();
    let out = dir.path().join("out");
    overcommit().arg("run").arg(&file).arg("--out").arg(&out).arg("-q").assert().success();
    let s = read_summary(&out);
    let kills = s["host"]["oom_kills"].as_u64().unwrap();
    assert!(kills >= 1, "no OOM kill: {}", s["host"]);
    let killed: Vec<&Value> = s["guests"].as_array().unwrap().iter().filter(|g| g["state"] == "oom_killed").collect();
    assert_eq!(killed.len() as u64, kills);
    let (_, rows) = read_csv(&out.join("events.csv"));
    let oom_rows: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "oom_kill").collect();
    assert_eq!(oom_rows.len() as u64, kills, "{rows:?}");
    assert!(killed.iter().any(|g| g["name"] == oom_rows[0][2].as_str()), "the oom_kill row names a killed guest");
}

#[test]
fn a_bad_scenario_exits_2_and_writes_nothing() {
    let dir = scratch();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "host:\n  ram: 4Q\n").unwrap();
    // An --out that does not exist yet is not created...
    let missing = dir.path().join("never");
    overcommit()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&missing)
        .arg("-q")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("bad.yaml:2:8: host.ram"));
    assert!(!missing.exists(), "run created {} for a bad scenario", missing.display());
    // ... and one that exists stays empty.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    overcommit().arg("run").arg(&file).arg("--out").arg(&empty).arg("-q").assert().code(2);
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "run wrote into --out for a bad scenario");
}
