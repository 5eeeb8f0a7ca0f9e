//! `overcommit fleet`: a fleet's hosts, from the command line.
//!
//! Truth: the closed forms are in the truth tests (hosts needed against
//! the single-host plan, surviving a loss); here the command's contract:
//! the answer it writes holds (every host within its limit and its
//! objectives, every guest placed, the loss survived), the result does not
//! depend on `--jobs`, shards merge into the unsharded run byte for byte,
//! and bad input exits with 2 naming the line.

use serde_json::Value;

use crate::harness::{overcommit, scratch};

const FLEET: &str = "\
name: tiny
duration: 3s
hosts:
  - name: h
    host: { ram: 4G, reserved: 0, swap: { size: 4G, device: ssd } }
guests:
  - { name: web, count: 20, memory: 512M, image: base, workload: { working_set: 300M, touch_rate: 20k/s } }
objectives: [\"p99<=50us\"]
survive: 1
";

#[test]
fn the_answer_holds_and_does_not_depend_on_jobs() {
    let dir = scratch();
    let file = dir.path().join("tiny.yaml");
    std::fs::write(&file, FLEET).unwrap();
    let mut outs = Vec::new();
    for jobs in ["1", "2"] {
        let out = dir.path().join(format!("out{jobs}"));
        overcommit()
            .args(["fleet"])
            .arg(&file)
            .args(["--placements", "first-fit,spread", "--jobs", jobs, "--out"])
            .arg(&out)
            .assert()
            .success();
        outs.push(std::fs::read(out.join("fleet.json")).unwrap());
        for file in ["hosts.csv", "report.html", "memory-first-fit.svg", "memory-spread.png"] {
            assert!(out.join(file).is_file(), "{file} written");
        }
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        assert!(html.contains("Placement: spread") && html.contains("<svg"), "the report has each placement");
    }
    assert_eq!(outs[0], outs[1], "fleet.json differs between --jobs 1 and 2");
    let v: Value = serde_json::from_slice(&outs[0]).unwrap();
    for entry in v["answers"].as_array().unwrap() {
        let (name, a) = (&entry["placement"], &entry["answer"]);
        assert!(a["none"].is_null(), "{name}: {}", a["none"]);
        let o = &a["outcome"];
        assert!(o["unplaced"].as_object().unwrap().is_empty(), "{name}");
        for h in o["hosts"].as_array().unwrap() {
            assert!(h["failed"].as_array().unwrap().is_empty(), "{name}: {h}");
            assert!(h["configured_bytes"].as_u64() <= h["limit_bytes"].as_u64(), "{name}: {h}");
        }
        let f = &o["failure"];
        assert!(
            f["unplaced"].as_object().unwrap().is_empty() && f["broken"].as_array().unwrap().is_empty(),
            "{name}: {f}"
        );
    }
}

#[test]
fn bad_input_exits_2_with_the_line() {
    let dir = scratch();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, FLEET.replace("survive: 1", "survive: 1\nplacement: randomly")).unwrap();
    let out = overcommit().arg("fleet").arg(&file).arg("--out").arg(dir.path().join("o")).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("bad.yaml:10:12: placement: unknown placement `randomly`"), "{err}");
    assert!(!dir.path().join("o").exists(), "nothing is written for bad input");
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, FLEET).unwrap();
    let out = overcommit().arg("fleet").arg(&good).args(["--placements", "nova"]).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("--placements: unknown placement `nova`"), "{err}");
}

#[test]
fn shards_merge_into_the_unsharded_run_byte_for_byte() {
    // Two placements × two policy mixes: four questions, split three ways
    // (every third question to a shard), merged in any folder order.
    let dir = scratch();
    let file = dir.path().join("tiny.yaml");
    std::fs::write(&file, FLEET.replace("duration: 3s", "duration: 2s")).unwrap();
    let ask = ["--placements", "first-fit,spread", "--policies", "swap,swap+ksm"];
    overcommit().arg("fleet").arg(&file).args(ask).arg("--out").arg(dir.path().join("whole")).assert().success();
    for i in 1..=3 {
        overcommit()
            .arg("fleet")
            .arg(&file)
            .args(ask)
            .args(["--shard", &format!("{i}/3"), "--out"])
            .arg(dir.path().join(format!("s{i}")))
            .assert()
            .success();
    }
    let shard1: Value = serde_json::from_slice(&std::fs::read(dir.path().join("s1/fleet.json")).unwrap()).unwrap();
    let asked: Vec<(&str, &str)> = shard1["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["placement"].as_str().unwrap(), e["policies"].as_str().unwrap()))
        .collect();
    // Questions 0 and 3 of first-fit×swap, first-fit×swap+ksm, spread×swap, spread×swap+ksm.
    assert_eq!(asked, [("first-fit", "swap"), ("spread", "swap+ksm")]);
    overcommit()
        .arg("merge")
        .args(["s3", "s1", "s2"].map(|s| dir.path().join(s)))
        .arg("--out")
        .arg(dir.path().join("merged"))
        .assert()
        .success();
    let list = |d: &str| {
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(list("whole"), list("merged"));
    assert!(list("whole").contains(&"memory-spread-swap+ksm.svg".to_string()), "{:?}", list("whole"));
    for name in list("whole") {
        assert!(
            std::fs::read(dir.path().join("whole").join(&name)).unwrap()
                == std::fs::read(dir.path().join("merged").join(&name)).unwrap(),
            "{name} differs between the unsharded run and the merged shards"
        );
    }
    // A shard missing, or one of another run, is refused.
    let out = overcommit().arg("merge").args(["s1", "s2"].map(|s| dir.path().join(s))).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("shards missing: 3/3"), "{err}");
    overcommit()
        .arg("fleet")
        .arg(&file)
        .args(["--placements", "first-fit,spread", "--policies", "swap,none", "--shard", "3/3", "--out"])
        .arg(dir.path().join("other3"))
        .assert()
        .success();
    let out = overcommit().arg("merge").args(["s1", "s2", "other3"].map(|s| dir.path().join(s))).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("is from another fleet run"), "{err}");
}

#[test]
fn policies_and_shards_out_of_reach_are_refused() {
    let dir = scratch();
    let file = dir.path().join("tiny.yaml");
    std::fs::write(&file, FLEET.replace(", swap: { size: 4G, device: ssd }", "")).unwrap();
    let refused = |args: &[&str], says: &str| {
        let out = overcommit().arg("fleet").arg(&file).args(args).assert().code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(says), "{args:?}: {err}");
    };
    refused(&["--policies", "swap+zram"], "--policies: unknown policy mix \"swap+zram\"");
    refused(&["--policies", "none,swap"], "--policies swap: host type h: the host has no swap device (host.swap)");
    refused(
        &["--shard", "2/2"],
        "the fleet asks 1 question(s) (1 placement(s) × 1 policy mix(es)), so it splits into at most 1",
    );
}
