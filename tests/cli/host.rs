//! `overcommit host`: the report must agree with the machine it runs on.
//!
//! The truth source of every comparison is the kernel's own files, read here
//! directly and parsed independently of the library: `/proc/meminfo` for
//! sizes and hugetlb counters, `/proc/cpuinfo` for CPU flags and the CPU
//! count. Only values that do not move while a test runs are compared
//! (MemTotal, HugePages_Total, Hugepagesize, SwapTotal; never MemFree). Where
//! a file cannot be read (not Linux, or a container without /proc), the report
//! must say `null` for the same fields.

use overcommit::units::ByteSize;
use serde_json::Value;

use crate::harness::{overcommit, scratch};

/// Run `overcommit ARGS`, expect exit 0, and return stdout.
fn stdout_of(args: &[&str]) -> String {
    let out = overcommit().args(args).assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("stdout is UTF-8")
}

/// `/proc/meminfo` as key → first number (kB values stay in kB).
fn meminfo() -> Option<Vec<(String, u64)>> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    Some(
        text.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_string(), v.split_whitespace().next()?.parse().ok()?))
            })
            .collect(),
    )
}

fn meminfo_value(m: &Option<Vec<(String, u64)>>, key: &str, scale: u64) -> Value {
    match m.as_ref().and_then(|m| m.iter().find(|(k, _)| k == key)) {
        Some((_, v)) => Value::from(v * scale),
        None => Value::Null,
    }
}

/// The words of the first `flags` and `vmx flags` lines of `/proc/cpuinfo`,
/// and the number of `processor` lines.
struct CpuTruth {
    flags: Vec<String>,
    vmx_flags: Vec<String>,
    has_flags_line: bool,
    processors: u64,
}

fn cpuinfo() -> Option<CpuTruth> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mut t = CpuTruth { flags: vec![], vmx_flags: vec![], has_flags_line: false, processors: 0 };
    let mut seen_vmx = false;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let words = || v.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        match k.trim() {
            "processor" => t.processors += 1,
            "flags" if !t.has_flags_line => {
                t.flags = words();
                t.has_flags_line = true;
            }
            "vmx flags" if !seen_vmx => {
                t.vmx_flags = words();
                seen_vmx = true;
            }
            _ => {}
        }
    }
    Some(t)
}

fn host_json() -> Value {
    serde_json::from_str(&stdout_of(&["host", "--json"])).expect("`host --json` prints JSON")
}

#[test]
fn json_meminfo_matches_proc_meminfo() {
    // Truth: /proc/meminfo, whose "kB" is KiB; the report gives bytes and
    // keeps HugePages_Total as a page count.
    let report = host_json();
    let truth = meminfo();
    let m = &report["meminfo"];
    assert_eq!(m["mem_total_bytes"], meminfo_value(&truth, "MemTotal", 1024));
    assert_eq!(m["swap_total_bytes"], meminfo_value(&truth, "SwapTotal", 1024));
    assert_eq!(m["hugepages_total"], meminfo_value(&truth, "HugePages_Total", 1));
    assert_eq!(m["hugepagesize_bytes"], meminfo_value(&truth, "Hugepagesize", 1024));
    if truth.is_some() {
        assert!(m["mem_total_bytes"].as_u64().is_some_and(|b| b > 0), "MemTotal is read: {m}");
    }
}

#[test]
fn json_cpu_flags_match_proc_cpuinfo() {
    // Truth: /proc/cpuinfo. vmx/svm come from the `flags` line; ept, vpid
    // and flexpriority are in hardware when named in `flags` (older
    // kernels) or in `vmx flags` (5.8 and later). The CPU count is the
    // number of `processor` lines.
    let report = host_json();
    let cpu = &report["cpu"];
    let Some(t) = cpuinfo() else {
        for key in ["count", "vmx", "svm", "ept", "vpid", "flexpriority"] {
            assert_eq!(cpu[key], Value::Null, "{key} without /proc/cpuinfo");
        }
        return;
    };
    assert_eq!(cpu["count"], if t.processors > 0 { Value::from(t.processors) } else { Value::Null });
    for flag in ["vmx", "svm", "ept", "vpid", "flexpriority"] {
        let expected = if t.has_flags_line {
            Value::from(t.flags.iter().chain(&t.vmx_flags).any(|f| f == flag))
        } else {
            Value::Null
        };
        assert_eq!(cpu[flag], expected, "cpu.{flag}");
    }
}

#[test]
fn json_has_the_documented_sections() {
    // Truth: the documented schema (src/calibrate/host.rs). `jq .meminfo`
    // in `host --help` relies on these top-level keys.
    let report = host_json();
    for key in [
        "cpu",
        "kvm",
        "page_size_bytes",
        "meminfo",
        "hugepage_pools",
        "hugetlbfs_mounts",
        "thp",
        "ksm",
        "swaps",
        "unavailable",
    ] {
        assert!(report.get(key).is_some(), "missing top-level key {key}: {report}");
    }
    // Truth: the base page size is a power of two where it is known.
    if let Some(p) = report["page_size_bytes"].as_u64() {
        assert!(p.is_power_of_two() && p >= 4096, "page size {p}");
    }
}

#[test]
fn text_report_mentions_ept() {
    // Truth: the report's contract: one line per finding, EPT among them on
    // every machine (Intel, AMD or neither).
    let text = stdout_of(&["host"]);
    assert!(text.lines().any(|l| l.starts_with("EPT")), "no EPT line in:\n{text}");
    assert!(text.lines().any(|l| l.starts_with("swap")), "no swap line in:\n{text}");
}

#[test]
fn scenario_section_starts_with_host_and_its_ram_is_memtotal() {
    // Truth: /proc/meminfo MemTotal for `ram:`; the scenario loader
    // (`overcommit check`) for whether the section is a valid host.
    let yaml = stdout_of(&["host", "--scenario"]);
    assert!(yaml.starts_with("host:"), "does not start with host:\n{yaml}");
    let Some(total) = meminfo_value(&meminfo(), "MemTotal", 1024).as_u64() else {
        return; // no /proc/meminfo: `ram:` is left out, with a comment
    };
    let ram_line = yaml
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("ram:"))
        .unwrap_or_else(|| panic!("no ram: line in\n{yaml}"));
    let value = ram_line.split('#').next().unwrap_or("").trim();
    let ram = ByteSize::parse(value).unwrap_or_else(|e| panic!("ram: {value:?} does not parse: {e}"));
    assert_eq!(ram.bytes(), total);

    // The section, with one small guest, is a scenario `check` accepts.
    let dir = scratch();
    let file = dir.path().join("from-host.yaml");
    let scenario = format!(
        "name: from-host\nduration: 10s\n{yaml}guests:\n  - {{ name: g, count: 1, memory: 256M, workload: {{ working_set: 128M }} }}\n"
    );
    std::fs::write(&file, &scenario).expect("write the scenario");
    overcommit().arg("check").arg(&file).assert().success();
}

#[test]
fn json_and_scenario_conflict() {
    // Truth: the CLI contract: --json and --scenario are two outputs, not
    // one; asking for both is a usage error (exit 2).
    overcommit().args(["host", "--json", "--scenario"]).assert().code(2);
}
