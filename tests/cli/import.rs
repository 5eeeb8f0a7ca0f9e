//! `overcommit import libvirt`: libvirt's own test domains in, a scenario
//! `check` accepts and `run` plays out; bad XML exits 2 with
//! file:line:column and the value, and writes nothing.

use std::path::PathBuf;

use predicates::prelude::*;

use crate::harness::{overcommit, repo, scratch};

/// libvirt's test pairs (reference data beside the project), or `None`
/// with a message when they are not there.
fn testdata() -> Option<PathBuf> {
    let dir = repo().join("../shared/libvirt-testdata");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

/// A host section for imports, so the tests do not depend on this
/// machine's RAM or pools.
fn host_file(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("host.yaml");
    std::fs::write(
        &path,
        "host:\n  ram: 512G\n  reserved: 8G\n  hugepages:\n    - { size: 2M, count: 40960 }\n    - { size: 1G, count: 32 }\n  swap: { size: 64G, device: nvme }\n",
    )
    .unwrap();
    path
}

#[test]
fn every_libvirt_test_domain_imports_to_a_scenario_that_checks_and_runs() {
    let Some(data) = testdata() else { return };
    let dir = scratch();
    let out = dir.path().join("imported.yaml");
    overcommit()
        .args(["import", "libvirt"])
        .arg(&data)
        .arg("--host")
        .arg(host_file(dir.path()))
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        // The folder holds 48 domain XML files (INDEX.tsv: one per pair).
        .stderr(predicate::str::contains("imported 48 guests"))
        // Warnings name the file, line and column of the element.
        .stderr(predicate::str::is_match(r"warning: \S+numatune-distances\.xml:\d+:\d+: domain/").unwrap());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("names: [\"SomeDummyHugepagesGuest\"]"), "domain names are kept");
    assert!(text.contains("backends:"), "mixed cells become backends");
    overcommit().arg("check").arg(&out).assert().success();
    overcommit()
        .arg("run")
        .arg(&out)
        .args(["--set", "duration=2s", "--quiet", "--out"])
        .arg(dir.path().join("run"))
        .assert()
        .success();
    assert!(dir.path().join("run/summary.json").is_file());
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let Some(data) = testdata() else { return };
    let dir = scratch();
    let xml = std::fs::read(data.join("x86_64-q35-headless.xml")).unwrap();
    overcommit()
        .args(["import", "libvirt", "-", "--host"])
        .arg(host_file(dir.path()))
        .write_stdin(xml)
        .assert()
        .success()
        // <memory unit='KiB'>4194304</memory>: 4 GiB.
        .stdout(predicate::str::contains("memory: 4 GiB"))
        .stdout(predicate::str::contains("names: [\"guest\"]"));
}

/// Import `xml` as one file: it must be refused with exit 2, a message
/// holding every `needles`, no panic, and no --out file.
fn refused(xml: &str, needles: &[&str]) {
    let dir = scratch();
    let file = dir.path().join("vm.xml");
    std::fs::write(&file, xml).unwrap();
    let out = dir.path().join("out.yaml");
    let mut a = overcommit()
        .args(["import", "libvirt"])
        .arg(&file)
        .arg("--host")
        .arg(host_file(dir.path()))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("panicked").not());
    for n in needles {
        a = a.stderr(predicate::str::contains(*n));
    }
    assert!(!out.exists(), "nothing is written on bad input");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left behind");
}

#[test]
fn malformed_xml_names_file_line_and_column() {
    // The unclosed `</memory` is found where the next tag starts: 4:1.
    refused("<domain type='kvm'>\n  <name>vm</name>\n  <memory>1024</memory\n</domain>\n", &["vm.xml:4:1"]);
}

#[test]
fn a_root_that_is_not_a_domain_is_refused() {
    refused("<network><name>default</name></network>\n", &["vm.xml:1:1", "domain"]);
}

#[test]
fn unknown_units_negative_and_overflowing_sizes_are_refused_with_the_value() {
    let doc = |memory: &str| {
        format!("<domain type='kvm'>\n  <name>vm</name>\n  {memory}\n  <os><type>hvm</type></os>\n</domain>\n")
    };
    refused(&doc("<memory unit='furlongs'>4</memory>"), &["vm.xml:3:", "furlongs"]);
    refused(&doc("<memory unit='GiB'>-4</memory>"), &["vm.xml:3:", "-4"]);
    refused(&doc("<memory unit='EiB'>99999999999</memory>"), &["vm.xml:3:", "99999999999"]);
}

#[test]
fn an_entity_expansion_bomb_is_refused_at_once() {
    // The "billion laughs": ten levels of ten references each.
    let mut xml = String::from("<?xml version='1.0'?>\n<!DOCTYPE domain [\n  <!ENTITY lol0 'lol'>\n");
    for i in 1..10 {
        let refs: String = (0..10).map(|_| format!("&lol{};", i - 1)).collect();
        xml.push_str(&format!("  <!ENTITY lol{i} '{refs}'>\n"));
    }
    xml.push_str("]>\n<domain type='kvm'><name>&lol9;</name><memory>1024</memory></domain>\n");
    let started = std::time::Instant::now();
    refused(&xml, &["vm.xml:2:1"]);
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn a_directory_without_domains_is_refused() {
    let dir = scratch();
    let empty = dir.path().join("qemu");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("README"), "not a domain").unwrap();
    overcommit()
        .args(["import", "libvirt"])
        .arg(&empty)
        .arg("--host")
        .arg(host_file(dir.path()))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no domain here"));
}

#[test]
fn a_bad_host_file_is_refused_with_its_position() {
    let Some(data) = testdata() else { return };
    let dir = scratch();
    let host = dir.path().join("host.yaml");
    std::fs::write(&host, "host:\n  ram: lots\n").unwrap();
    overcommit()
        .args(["import", "libvirt"])
        .arg(data.join("x86_64-pc-minimal.xml"))
        .arg("--host")
        .arg(&host)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("host.yaml:2:8"))
        .stderr(predicate::str::contains("lots"));
}
