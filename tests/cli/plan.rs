//! `overcommit plan`: capacity under objectives.
//!
//! Truth: (1) the planner's own contract, checked by separate `run`s: the
//! answer meets every objective and one guest more breaks one; (2) a closed
//! form: with no swap, balloon or sharing, guests must fit in RAM, so the
//! most guests of a group is floor((usable RAM − the other guests'
//! footprint) / one guest's footprint), a footprint being all of a
//! preallocated guest's memory (`-mem-prealloc`) or the working set it
//! touches; (3) KSM only ever frees memory, so adding it to a mix of guests
//! with a large shared fraction never plans fewer guests.

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;

use crate::harness::{overcommit, scratch};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write scenario");
    p
}

fn plan(file: &Path, out: &Path, args: &[&str]) -> Value {
    overcommit().arg("plan").arg(file).args(args).args(["--quiet", "--out"]).arg(out).assert().success();
    serde_json::from_slice(&std::fs::read(out.join("plan.json")).expect("plan.json")).expect("plan.json is JSON")
}

fn mix<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["mixes"].as_array().expect("mixes").iter().find(|m| m["mix"] == name).unwrap_or_else(|| panic!("no {name}"))
}

/// Guests that fit in RAM and then do not: 1 GiB guests on 8 GiB, working
/// set 900 MiB, swap on NVMe.
const SMALL: &str = "
name: small
seed: 5
duration: 20s
host:
  ram: 8G
  reserved: 1G
  thp: never
  swap: { size: 8G, device: nvme }
  ksm: { run: false }
guests:
  - name: app
    count: 4
    memory: 1G
    workload: { working_set: 900M, touch_rate: 40k/s, pattern: zipf(0.9), write: 20% }
";

#[test]
fn the_answer_meets_every_objective_and_one_more_guest_breaks_one() {
    let dir = scratch();
    let file = write(dir.path(), "small.yaml", SMALL);
    let p = plan(&file, &dir.path().join("plan"), &["--slo", "p99<=20us", "--grow", "app", "--policies", "swap"]);
    let m = mix(&p, "swap");
    let n = m["max_count"].as_u64().expect("an answer");
    assert!(n >= 1, "{m}");
    // Replay the answer and the answer + 1 with `run`, as the plan says.
    let overrides: Vec<String> =
        m["overrides"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_string()).collect();
    let check = |count: u64| -> (u64, u64, u64) {
        let out = dir.path().join(format!("run-{count}"));
        let mut cmd = overcommit();
        cmd.arg("run").arg(&file).arg("--quiet").arg("--out").arg(&out);
        for o in &overrides {
            let o = if o.starts_with("guests.app.count=") { format!("guests.app.count={count}") } else { o.clone() };
            cmd.arg("--set").arg(o);
        }
        cmd.assert().success();
        let s: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        let worst = s["guests"].as_array().unwrap().iter().map(|g| g["latency_ns"]["p99"].as_u64().unwrap()).max();
        let running = s["guests"].as_array().unwrap().iter().filter(|g| g["state"] == "running").count() as u64;
        (worst.unwrap(), s["host"]["oom_kills"].as_u64().unwrap(), running)
    };
    let (p99, kills, running) = check(n);
    assert!(p99 <= 20_000 && kills == 0 && running == n, "at the answer {n}: p99 {p99} ns, {kills} kills");
    let (p99, kills, running) = check(n + 1);
    assert!(p99 > 20_000 || kills > 0 || running < n + 1, "{} guests still meet p99<=20us: {p99} ns", n + 1);
    // What binds one past the answer is named.
    assert!(!m["binding"].as_array().unwrap().is_empty(), "{m}");
}

#[test]
fn without_swap_or_sharing_guests_must_fit_in_ram() {
    let dir = scratch();
    // usable = 10.5 GiB − 1 GiB reserved = 9.5 GiB; two 1 GiB `base`
    // guests. Half a guest of slack keeps the kernel's watermarks (tens of
    // MiB here) off the boundary.
    for (name, app, per_guest_mib, expected) in [
        // -mem-prealloc: the footprint is all 1024 MiB:
        // floor((9.5 − 2) / 1) = 7.
        ("prealloc", "memory: 1G, prealloc: true, workload: { working_set: 100M }", 1024u64, 7u64),
        // Touching 640 MiB of 1 GiB: floor((9.5 − 2) GiB / 640 MiB) = 12.
        ("touched", "memory: 1G, workload: { working_set: 640M, pattern: uniform, touch_rate: 200k/s }", 640, 12),
    ] {
        let text = format!(
            "
name: fit
seed: 2
duration: 10s
host: {{ ram: 10.5G, reserved: 1G, thp: never }}
guests:
  - {{ name: base, count: 2, memory: 1G, prealloc: true, workload: {{ working_set: 100M }} }}
  - {{ name: app, count: 1, {app} }}
"
        );
        let file = write(dir.path(), &format!("{name}.yaml"), &text);
        let usable_mib = 9 * 1024 + 512;
        assert_eq!((usable_mib - 2 * 1024) / per_guest_mib, expected, "the closed form itself");
        // Touch by touch and in event mode alike.
        for (mode, extra) in [("", None), ("-events", Some("--events"))] {
            let args = ["--slo", "p99<=1s", "--grow", "app", "--policies", "none"];
            let p = plan(&file, &dir.path().join(format!("{name}{mode}")), &[&args[..], extra.as_slice()].concat());
            assert_eq!(p["events"], extra.is_some(), "plan.json says how its runs played");
            assert_eq!(mix(&p, "none")["max_count"].as_u64(), Some(expected), "{name}{mode}: {}", mix(&p, "none"));
        }
    }
}

/// A host of guests from one image with `shared` of their pages identical;
/// KSM scans fast enough to merge within seconds.
fn shared_scenario(ram_gib: f64, memory_mib: u64, shared: u32) -> String {
    format!(
        "
name: shared
seed: 11
duration: 30s
host:
  ram: {ram_gib}G
  reserved: 512M
  thp: never
  swap: {{ size: 8G, device: ssd }}
  ksm: {{ run: true, pages_to_scan: 5000, sleep_millisecs: 10 }}
guests:
  - name: app
    count: 2
    memory: {memory_mib}M
    image: one
    workload: {{ working_set: 100%, touch_rate: 20k/s, pattern: uniform, shared: {shared}%, zero: 5%, write: 0% }}
"
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, ..ProptestConfig::default() })]
    #[test]
    fn ksm_never_plans_fewer_guests(ram in 3u32..6, memory in 3u64..7, shared in 50u32..85) {
        let dir = scratch();
        let file = write(dir.path(), "s.yaml", &shared_scenario(f64::from(ram), memory * 128, shared));
        let p = plan(&file, &dir.path().join("p"), &["--slo", "p99<=30us", "--grow", "app", "--policies", "swap,swap+ksm"]);
        let without = mix(&p, "swap")["max_count"].as_u64().unwrap_or(0);
        let with = mix(&p, "swap+ksm")["max_count"].as_u64().unwrap_or(0);
        prop_assert!(with >= without, "swap+ksm plans {} guests, swap {}: {}", with, without, p);
    }
}

#[test]
fn bad_plans_exit_2_and_write_nothing() {
    let dir = scratch();
    let file = write(dir.path(), "small.yaml", SMALL);
    let out = dir.path().join("out");
    for (args, needle) in [
        (vec!["--slo", "p99<=20us", "--grow", "db"], "no guest group"),
        (vec!["--slo", "p98<=20us", "--grow", "app"], "unknown metric"),
        (vec!["--slo", "p99<=20us", "--grow", "app", "--policies", "swap+zram"], "unknown policy mix"),
        (vec!["--slo", "p99<=20us", "--minimize", "host.cpus"], "only host.ram"),
    ] {
        overcommit()
            .arg("plan")
            .arg(&file)
            .args(&args)
            .arg("--out")
            .arg(&out)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(needle));
    }
    // A host without guests (what `import live` writes where none runs).
    let empty = write(dir.path(), "empty.yaml", "host: { ram: 8G }\nguests: []\n");
    overcommit()
        .arg("plan")
        .arg(&empty)
        .args(["--slo", "p99<=50us", "--minimize", "host.ram", "--out"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("empty.yaml: the scenario has no guests"));
    assert!(!out.exists());
}

#[test]
fn the_least_ram_holds_preallocated_guests_and_the_reserve() {
    // Closed form: five 512 MiB -mem-prealloc guests take 2.5 GiB, the host
    // keeps 1 GiB: RAM in whole GiB must be ceil(2.5 + 1) = 4 GiB (3 GiB
    // leaves 2 GiB usable for 2.5 GiB of guests: an OOM kill).
    let dir = scratch();
    let file = write(
        dir.path(),
        "fit.yaml",
        "
name: fit
seed: 3
duration: 10s
host: { ram: 16G, reserved: 1G, thp: never }
guests:
  - { name: app, count: 5, memory: 512M, prealloc: true, workload: { working_set: 100M } }
",
    );
    let p = plan(&file, &dir.path().join("p"), &["--slo", "p99<=1s", "--minimize", "host.ram", "--policies", "none"]);
    assert_eq!(mix(&p, "none")["min_ram_bytes"].as_u64(), Some(4 << 30), "{}", mix(&p, "none"));
}

#[test]
fn a_plan_too_coarse_for_its_swap_device_says_so_and_keeps_its_rate() {
    // Four guests touching 1 M pages a second for 20 s: 80 M touches, over
    // a plan run's budget of 20 M, so the plan samples at 1/4. Their 6 GiB
    // of working sets on 4 GiB fault at a third of their touches (Che,
    // exact for uniform guests of one rate), which a disk (12.7 ms a read,
    // one at a time) cannot serve: a swap-in waits for the other three
    // guests' reads, 4 x 12.7 = 50.8 ms, and at 1/4 a simulated one stalls
    // its guest 203 ms, past the 64 ms bound. A plan keeps its rate (its
    // guests grow, and its memory with them) and says so; page-exact, not.
    let dir = scratch();
    let file = write(dir.path(), "disk.yaml", &crate::harness::disk_host("20s"));
    let args = ["--slo", "p99<=1s", "--grow", "g", "--limit", "8", "--quiet", "--out"];
    let told = overcommit().arg("plan").arg(&file).args(args).arg(dir.path().join("auto")).assert().success();
    let err = String::from_utf8_lossy(&told.get_output().stderr).to_string();
    assert!(
        err.contains("note: sampled at 1/4: a swap-in is expected to take 50.80 ms on this swap device, so at 1/4 a simulated one would stall its guest 203 ms"),
        "{err}"
    );
    let exact = overcommit()
        .arg("plan")
        .arg(&file)
        .args(args)
        .arg(dir.path().join("exact"))
        .args(["--sample-rate", "1"])
        .assert()
        .success();
    assert!(!String::from_utf8_lossy(&exact.get_output().stderr).contains("note:"));
}

#[test]
fn a_point_too_large_for_a_runs_memory_plays_coarser_unless_the_rate_was_given() {
    // One guest of 64 GiB is 16 777 216 pages, and its 1 k touches a
    // second for 2 s are far within a plan run's touch budget: the plan is
    // page-exact. Growing to the limit of 4, the plan plays 1, 2 and 4
    // guests; 2 hold 2^25 pages (the page budget, PLAN_PAGE_BUDGET, exactly)
    // and 4 hold twice that, so 4 plays at 1/2, the largest power of two
    // within it. The answer's check runs at its rate. With --sample-rate 1
    // every point plays page-exact (their working sets, 1 GiB each, are
    // all a run keeps in memory here).
    let dir = scratch();
    let file = write(
        dir.path(),
        "big.yaml",
        "
name: big
seed: 1
duration: 2s
host: { ram: 512G, reserved: 1G, thp: never, swap: { size: 8G, device: nvme } }
guests:
  - name: g
    count: 1
    memory: 64G
    workload: { working_set: 1G, touch_rate: 1k/s, pattern: uniform }
",
    );
    let args = ["--slo", "p99<=1s", "--grow", "g", "--policies", "swap", "--limit", "4"];
    let out = dir.path().join("auto");
    let told = overcommit().arg("plan").arg(&file).args(args).arg("--out").arg(&out).assert().success();
    let text = String::from_utf8_lossy(&told.get_output().stdout).to_string();
    let p: Value = serde_json::from_slice(&std::fs::read(out.join("plan.json")).expect("plan.json")).expect("JSON");
    let swap = mix(&p, "swap");
    let rates: Vec<(u64, f64)> = swap["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|q| (q["x"].as_u64().expect("x"), q["sample_rate"].as_f64().expect("rate")))
        .collect();
    assert_eq!(rates, [(1, 1.0), (2, 1.0), (4, 0.5)], "{swap}");
    assert_eq!(swap["max_count"].as_u64(), Some(4), "{swap}");
    assert_eq!(swap["sample_rate"].as_f64(), Some(0.5), "{swap}");
    assert!(
        text.contains(
            "from 4 on, points played coarser than the plan's page-exact to keep a run within 34 million simulated \
             pages (its memory): 1/2 at 4;"
        ),
        "{text}"
    );
    assert!(text.contains("Check it: overcommit run") && text.contains("--sample-rate 1/2 --touches"), "{text}");
    let p = plan(&file, &dir.path().join("exact"), &[&args[..], &["--sample-rate", "1"]].concat());
    let swap = mix(&p, "swap");
    assert!(swap["points"].as_array().expect("points").iter().all(|q| q["sample_rate"] == 1.0), "{swap}");
    assert_eq!(swap["notes"].as_array().map(Vec::len), Some(0), "{swap}");
}
