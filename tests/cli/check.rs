//! `overcommit check`: a valid scenario prints its summary and exits 0; each
//! kind of mistake exits 2 with file:line:column, the field path and the bad
//! value, and never a Rust panic.

use predicates::prelude::*;

use crate::harness::{overcommit, quickstart, quickstart_with, scratch};

/// 1-based line and column where `needle` starts in `path`.
fn position_of(path: &std::path::Path, needle: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    for (i, line) in text.lines().enumerate() {
        if let Some(c) = line.find(needle) {
            return (i + 1, line[..c].chars().count() + 1);
        }
    }
    panic!("{needle:?} not in {}", path.display());
}

/// Run `check` on a scenario that must be refused: exit code 2 and no Rust
/// panic; the caller adds what the message must say.
fn rejected(f: &std::path::Path) -> assert_cmd::assert::Assert {
    overcommit().arg("check").arg(f).assert().code(2).stderr(predicate::str::contains("panicked").not())
}

#[test]
fn quickstart_is_valid_and_summarised() {
    // 12 guests × 8 GiB = 96 GiB configured on 64 − 2 = 62 GiB usable:
    // overcommit ratio 96 / 62 = 1.548…, printed to two decimals.
    overcommit()
        .args(["check"])
        .arg(quickstart())
        .assert()
        .success()
        .stdout(predicate::str::contains("overcommit ratio 1.55"))
        .stdout(predicate::str::contains("12 guests configure 96 GiB on 62 GiB usable"));
}

#[test]
fn set_overrides_a_group_by_name() {
    // 16 × 8 GiB = 128 GiB on 62 GiB: 2.0645… → 2.06.
    overcommit()
        .args(["check", "--set", "guests.web.count=16"])
        .arg(quickstart())
        .assert()
        .success()
        .stdout(predicate::str::contains("overcommit ratio 2.06"));
}

#[test]
fn set_with_an_unknown_group_is_an_error() {
    overcommit()
        .args(["check", "--set", "guests.db.count=3"])
        .arg(quickstart())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no item named \"db\""))
        .stderr(predicate::str::contains("web"));
}

#[test]
fn typo_key_names_position_path_and_suggestion() {
    let dir = scratch();
    let f = quickstart_with(dir.path(), "  swap: {", "  swpa: {");
    let (line, col) = position_of(&f, "swpa");
    rejected(&f)
        .stderr(predicate::str::contains(format!("edited.yaml:{line}:{col}: host.swpa: unknown key `swpa`")))
        .stderr(predicate::str::contains("did you mean `swap`?"));
}

#[test]
fn bad_size_names_position_path_and_value() {
    let dir = scratch();
    let f = quickstart_with(dir.path(), "  ram: 64G", "  ram: 4Q");
    let (line, col) = position_of(&f, "4Q");
    rejected(&f).stderr(predicate::str::contains(format!(
        "edited.yaml:{line}:{col}: host.ram: \"4Q\" has an unknown unit \"Q\""
    )));
}

#[test]
fn a_warmup_as_long_as_the_run_is_refused() {
    // Nothing would be measured: latency counts only after the warm-up.
    let dir = scratch();
    let f = quickstart_with(dir.path(), "duration: 3m ", "duration: 3m\nwarmup: 3m ");
    let (line, col) = position_of(&f, "warmup: 3m");
    rejected(&f).stderr(predicate::str::contains(format!(
        "edited.yaml:{line}:{}: warmup: 3 min is not shorter than the run's duration 3 min",
        col + 8
    )));
}

#[test]
fn duplicate_key_names_both_places() {
    let dir = scratch();
    let f = quickstart_with(dir.path(), "  reserved: 2G", "  ram: 32G\n  reserved: 2G");
    let (first, _) = position_of(&f, "ram: 64G");
    let (line, col) = position_of(&f, "ram: 32G");
    rejected(&f).stderr(predicate::str::contains(format!(
        "edited.yaml:{line}:{col}: host.ram: duplicate key `ram` (first given at line {first}, column 3)"
    )));
}

#[test]
fn wrong_type_names_position_path_and_value() {
    let dir = scratch();
    let f = quickstart_with(dir.path(), "count: 12", "count: twelve");
    let (line, col) = position_of(&f, "count: twelve");
    let col = col + "count: ".len();
    rejected(&f)
        .stderr(predicate::str::contains(format!(
            "edited.yaml:{line}:{col}: guests.web.count: expected a whole number"
        )))
        .stderr(predicate::str::contains("\"twelve\""));
}

#[test]
fn yes_is_not_a_boolean() {
    // YAML 1.2's core schema has only true/false; `yes` is a string.
    let dir = scratch();
    let f = quickstart_with(dir.path(), "ksm: { run: true", "ksm: { run: yes");
    rejected(&f).stderr(predicate::str::contains("host.ksm.run: expected true or false, found a string (\"yes\")"));
}

#[test]
fn working_set_larger_than_memory_is_an_error() {
    let dir = scratch();
    let f = quickstart_with(dir.path(), "working_set: 3G", "working_set: 9G");
    overcommit().arg("check").arg(&f).assert().code(2).stderr(predicate::str::contains(
        "guests.web.workload.working_set: working set 9 GiB is larger than the guest's memory 8 GiB",
    ));
}

#[test]
fn hugepage_guest_without_a_pool_is_an_error() {
    // QEMU with -mem-path on hugetlbfs fails to start when the pool is empty.
    let dir = scratch();
    let f = quickstart_with(dir.path(), "    balloon: true", "    hugepages: true\n    balloon: true");
    overcommit().arg("check").arg(&f).assert().code(2).stderr(predicate::str::contains(
        "guests.web.hugepages: hugepage-backed guest, but the host has no hugetlb pool",
    ));
}

#[test]
fn more_memory_than_ram_plus_swap_is_only_a_warning() {
    // 24 × 8 GiB = 192 GiB > 62 GiB RAM + 40 GiB swap: overcommit is the
    // point of the tool, so this warns and still exits 0.
    overcommit()
        .args(["check", "--set", "guests.web.count=24"])
        .arg(quickstart())
        .assert()
        .success()
        .stderr(predicate::str::contains("warning:"))
        .stderr(predicate::str::contains("OOM killer"));
}

#[test]
fn syntax_error_has_a_position() {
    let dir = scratch();
    let f = dir.path().join("broken.yaml");
    std::fs::write(&f, "host:\n  ram: [64G\n").unwrap();
    rejected(&f).stderr(predicate::str::contains("broken.yaml:2:")).stderr(predicate::str::contains("not valid YAML"));
}

#[test]
fn missing_file_is_bad_input() {
    overcommit()
        .args(["check", "/nonexistent/scenario.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/scenario.yaml"))
        .stderr(predicate::str::contains("cannot read the scenario"));
}

#[test]
fn json_output_is_the_resolved_scenario() {
    let out = overcommit().args(["check", "--json"]).arg(quickstart()).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 64G = 64 × 2^30 bytes (QEMU's binary G).
    assert_eq!(v["host"]["ram"], 68_719_476_736u64);
    // Kernel KSM default max_page_sharing is 256 (Documentation/admin-guide/mm/ksm.rst).
    assert_eq!(v["host"]["ksm"]["max_page_sharing"], 256);
    assert_eq!(v["guests"][0]["memory"], 8u64 << 30);
}

#[test]
fn sharing_expected_from_unmergeable_memory_is_a_warning() {
    // KSM never merges memory that is not MADV_MERGEABLE (libvirt's
    // <nosharepages/>, `ksm: false`) or that is a shared backend (share=on):
    // the quickstart's guests expect shared pages, so each setting warns.
    for (set, says) in [
        ("guests.web.ksm=false", "not mergeable (ksm: false"),
        ("guests.web.share=true", "KSM never scans shared memory backends"),
    ] {
        overcommit()
            .args(["check", "--set", set])
            .arg(quickstart())
            .assert()
            .success()
            .stderr(predicate::str::contains("warning:"))
            .stderr(predicate::str::contains(says));
    }
}

#[test]
fn a_bad_share_in_the_working_set_names_its_class() {
    // `in_working_set` takes a share per content class, as `shared` does.
    let dir = scratch();
    let f = quickstart_with(
        dir.path(),
        "      write: 5%",
        "      in_working_set: { shared: 0.2, zero: 130% }\n      write: 5%",
    );
    let (line, col) = position_of(&f, "130%");
    rejected(&f).stderr(predicate::str::contains(format!(
        "edited.yaml:{line}:{col}: guests.web.workload.in_working_set.zero: \"130%\" is out of range"
    )));
    let g = quickstart_with(dir.path(), "      write: 5%", "      in_working_set: { shraed: 0.2 }\n      write: 5%");
    rejected(&g).stderr(predicate::str::contains("unknown key `shraed`"));
}
