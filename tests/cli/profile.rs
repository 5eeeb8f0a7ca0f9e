//! `overcommit profile` against processes whose workload is known (the
//! binary's own `touch-child`): it must recover each one's working set,
//! pattern, write share and page content. No QEMU, no root: a process may
//! read its own children's /proc files.

use std::process::{Child, Command, Stdio};

use crate::harness::{overcommit, scratch};

/// A touch-child, killed when dropped.
struct Toucher(Child);

impl Drop for Toucher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Toucher {
    let bin = assert_cmd::cargo::cargo_bin("overcommit");
    let mut child = Command::new(bin)
        .arg("touch-child")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the touch child starts");
    // Wait for its ready line (the fill is done).
    let mut out = child.stdout.take().expect("piped stdout");
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while std::io::Read::read(&mut out, &mut b).is_ok_and(|n| n == 1) && b[0] != b'\n' {
        line.push(b[0]);
    }
    assert!(String::from_utf8_lossy(&line).contains("ready"), "{}", String::from_utf8_lossy(&line));
    Toucher(child)
}

#[test]
fn profile_recovers_known_working_sets_patterns_writes_and_content() {
    // Four 64 MiB processes (16,384 pages) touching 16,000 pages a second:
    // - a: hotcold(0.2, 0.9), 5% of touches write, image seed 7;
    // - b: uniform, 10% write, image seed 7, another instance;
    // - c, d: uniform, no writes, image seed 1: 30% of pages the image's
    //   (identical in c and d, keyed by page index), 15% zero, the rest
    //   their own, all unchanged for the whole run.
    let common = ["--mib", "64", "--rate", "16000", "--image", "0.3", "--zero", "0.15"];
    let a = spawn(
        &[&common[..], &["--pattern", "hotcold(0.2, 0.9)", "--write", "0.05", "--image-seed", "7", "--instance", "1"]]
            .concat(),
    );
    let b = spawn(&[&common[..], &["--write", "0.1", "--image-seed", "7", "--instance", "2"]].concat());
    let c = spawn(&[&common[..], &["--image-seed", "1", "--instance", "3"]].concat());
    let d = spawn(&[&common[..], &["--image-seed", "1", "--instance", "4"]].concat());
    let pids: Vec<String> = [&a, &b, &c, &d].iter().map(|t| t.0.id().to_string()).collect();
    let dir = scratch();
    let out = dir.path().join("profile.json");
    overcommit()
        .arg("profile")
        .args(&pids)
        .args(["--duration", "20s", "--intervals", "0.25s,0.5s,1s,2s,4s,8s,10s", "--sample", "1/8", "--out"])
        .arg(&out)
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let g = |i: usize| &r["guests"][i];
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    for i in 0..4 {
        // W: all 16,384 pages are touched (uniformly, or in the cold set
        // at 1,600 a second): within 10%.
        let w = num(&g(i)["fit"]["working_set_bytes"]) / 4096.0;
        assert!((w / 16_384.0 - 1.0).abs() <= 0.10, "guest {i}: working set {w} pages: {}", g(i));
    }
    let pa = g(0)["fit"]["pattern"].as_str().unwrap();
    let (f, p) = pa
        .strip_prefix("hotcold(")
        .and_then(|x| x.strip_suffix(')'))
        .and_then(|x| x.split_once(','))
        .map(|(f, p)| (f.trim().parse::<f64>().unwrap(), p.trim().parse::<f64>().unwrap()))
        .unwrap_or_else(|| panic!("a is hot/cold, the fit says {pa}"));
    assert!((f - 0.2).abs() <= 0.05 && (p - 0.9).abs() <= 0.05, "hotcold({f}, {p})");
    for i in [1, 2, 3] {
        assert_eq!(g(i)["fit"]["pattern"], "uniform", "guest {i}: {}", g(i)["fit"]);
    }
    // Write shares within 5 points.
    for (i, want) in [(0, 0.05), (1, 0.1), (2, 0.0)] {
        let w = num(&g(i)["fit"]["write"]);
        assert!((w - want).abs() <= 0.05, "guest {i}: write {w}, truth {want}");
    }
    // Content of the unwritten pair: zero within 2 points, shared within 3.
    for i in [2, 3] {
        let zero = num(&g(i)["content"]["zero"]["share"]);
        let shared = num(&g(i)["content"]["shared"]["share"]);
        assert!((zero - 0.15).abs() <= 0.02, "guest {i}: zero {zero}");
        assert!((shared - 0.3).abs() <= 0.03, "guest {i}: shared {shared}");
    }
    // The profiler says what it cost and what it did.
    assert!(num(&r["cost"]["cpu_s"]) >= 0.0);
    assert!(!r["side_effects"].as_array().unwrap().is_empty());
    drop((a, b, c, d));
}

#[test]
fn profile_tells_content_in_the_working_set_from_content_outside() {
    // Two 64 MiB processes (16,384 pages) of one image: the first 30% of
    // pages the image's, the next 15% zero, and they touch only the last
    // 70% (pages 4,915 on), writing 4% of 16,000 touches a second: the
    // image lies wholly outside the working set, the zero pages wholly
    // inside. Each working-set page is written at 16,000 × 0.04 / 11,469
    // = 0.056 a second, so over the ~20 s between the two reads of the
    // sample about two thirds of the zero pages change, and what is left
    // of them is still all in the working set: in_working_set 0 for the
    // shared content and 1 for the zero pages (src/profile/content.rs,
    // `in_working_set`), within the sampling noise of a 1/8 sample.
    let common = [
        "--mib",
        "64",
        "--rate",
        "16000",
        "--image",
        "0.3",
        "--zero",
        "0.15",
        "--working-set",
        "0.7",
        "--write",
        "0.04",
        "--image-seed",
        "5",
    ];
    let a = spawn(&[&common[..], &["--instance", "1"]].concat());
    let b = spawn(&[&common[..], &["--instance", "2"]].concat());
    let pids: Vec<String> = [&a, &b].iter().map(|t| t.0.id().to_string()).collect();
    let dir = scratch();
    let out = dir.path().join("profile.json");
    overcommit()
        .arg("profile")
        .args(&pids)
        .args(["--duration", "20s", "--intervals", "0.5s,1s,2s,5s,10s", "--sample", "1/8", "--out"])
        .arg(&out)
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    for i in 0..2 {
        let fit = &r["guests"][i]["fit"];
        let placed = &fit["in_working_set"];
        let share = |k: usize| placed[k]["share"].as_f64().unwrap_or_else(|| panic!("guest {i}: {fit}"));
        assert!(share(0) <= 0.05, "guest {i}: shared in the working set {}: {fit}", share(0));
        assert!(share(1) >= 0.9, "guest {i}: zero in the working set {}: {fit}", share(1));
    }
    drop((a, b));
}

#[test]
fn writes_come_from_pagemap_scan_where_the_memory_is_registered_for_async_write_protection() {
    // Two 64 MiB processes that register their memory with userfaultfd
    // for asynchronous write protection, as a VMM may: the profile then
    // counts written pages with PAGEMAP_SCAN over all of it (not a
    // sample of content) and must recover the write shares, 0.05 and
    // 0.2 of 16,000 touches a second, within 5 points.
    let probe = memmap2::MmapMut::map_anon(4096).expect("a page");
    if let Err(e) = overcommit::profile::pagemap_scan::register_wp_async(probe.as_ptr() as u64, 4096) {
        eprintln!("skipped: userfaultfd with asynchronous write protection is not available here ({e})");
        return;
    }
    let common = ["--mib", "64", "--rate", "16000", "--uffd-wp"];
    let a = spawn(&[&common[..], &["--write", "0.05", "--instance", "1"]].concat());
    let b = spawn(&[&common[..], &["--write", "0.2", "--instance", "2"]].concat());
    let dir = scratch();
    let out = dir.path().join("profile.json");
    overcommit()
        .arg("profile")
        .args([a.0.id().to_string(), b.0.id().to_string()])
        .args(["--duration", "8s", "--intervals", "0.25s,0.5s,1s,2s,4s", "--sample", "1/8", "--pagemap-scan", "--out"])
        .arg(&out)
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(r["writes"], "pagemap_scan", "{}", r["writes_see"]);
    for (i, want) in [(0, 0.05), (1, 0.2)] {
        let w = r["guests"][i]["fit"]["write"].as_f64().expect("a write share");
        eprintln!("guest {i}: write share {w:.3} by PAGEMAP_SCAN (truth {want})");
        assert!((w - want).abs() <= 0.05, "guest {i}: write {w}, truth {want}");
    }
    drop((a, b));
}
