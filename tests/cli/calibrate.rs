//! `overcommit calibrate`: what it writes, and how it refuses bad input.

use predicates::prelude::*;
use predicates::str::contains;

use crate::harness::{overcommit, quickstart, scratch};

#[test]
fn bad_sizes_are_refused_with_exit_2() {
    overcommit().args(["calibrate", "--size", "abc"]).assert().code(2).stderr(contains("--size \"abc\""));
    overcommit().args(["calibrate", "--size", "1M"]).assert().code(2).stderr(contains("at least 4M"));
    // Far above half of any machine's MemAvailable.
    overcommit().args(["calibrate", "--size", "100T"]).assert().code(2).stderr(contains("half of MemAvailable"));
    overcommit().args(["calibrate", "--size", "8M", "--repeats", "0"]).assert().code(2).stderr(contains("--repeats 0"));
}

#[cfg(target_os = "linux")]
#[test]
fn quick_calibration_has_the_keys_consumers_rely_on_and_a_run_uses_it() {
    // The keys the issue names for machine consumers, each a figure or
    // `unavailable` with a reason; then `run --calibration` takes the file
    // and summary.json names it.
    let dir = scratch();
    let json = dir.path().join("cal.json");
    overcommit()
        .args(["calibrate", "--quick", "--json", "--repeats", "1", "--out"])
        .arg(&json)
        .assert()
        .success()
        .stdout(contains("fault 4 KiB").and(contains("memory latency")));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for key in ["page_4k", "thp_2m", "hugetlb_2m", "hugetlb_1g"] {
        let f = &v["fault_ns"][key];
        let ok = f["median"].as_f64().is_some_and(|m| m > 0.0 && f["min"].is_f64() && f["max"].is_f64())
            || f["unavailable"].as_str().is_some_and(|r| !r.is_empty());
        assert!(ok, "fault_ns.{key}: {f}");
    }
    assert!(v["fault_ns"]["page_4k"]["median"].as_f64().unwrap() > 0.0);
    assert!(v["zeroing_gbps"]["median"].as_f64().unwrap() > 0.0);
    // Each with its spread over the repeats.
    for f in [&v["zeroing_gbps"], &v["dram_latency_ns"]["page_4k"], &v["dram_latency_ns"]["thp_2m"], &v["copy_4k_ns"]] {
        let (lo, mid, hi) = (f["min"].as_f64().unwrap(), f["median"].as_f64().unwrap(), f["max"].as_f64().unwrap());
        assert!(0.0 < lo && lo <= mid && mid <= hi, "{f}");
    }
    for key in ["kernel", "cpu_model", "thp_mode", "virtual_machine", "hugepages_2m_total", "hugepages_1g_total"] {
        assert!(!v["conditions"][key].is_null(), "conditions.{key}");
    }
    let out = dir.path().join("run");
    overcommit()
        .args(["run", "--quiet", "--set", "duration=5s", "--out"])
        .arg(&out)
        .arg("--calibration")
        .arg(&json)
        .arg(quickstart())
        .assert()
        .success();
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["calibration"].as_str(), Some(json.to_str().unwrap()));
}
