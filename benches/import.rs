//! Import speed over a directory of 1,000 domain XMLs, as
//! `/etc/libvirt/qemu/` on a busy host might hold them (target: 1 s or
//! less for the whole `overcommit import libvirt`): `read_paths` alone,
//! and the whole import (reading, grouping, writing the scenario and
//! loading it once more to check it), with a fixed host section. The domains are libvirt's own 48 test inputs
//! (`../shared/libvirt-testdata`, from libvirt's `tests/qemuxmlconfdata/`)
//! repeated to 1,000, written to a temporary directory once before timing,
//! so the figure is reading, parsing and checking, not writing.
//!
//! Run with `cargo bench --bench import`.

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use overcommit::import::libvirt::read_paths;

const DOMAINS: usize = 1000;

fn testdata_xmls() -> Option<Vec<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/libvirt-testdata");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: libvirt's test data ({}) is absent", dir.display());
        return None;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    paths.sort();
    Some(paths.iter().map(|p| std::fs::read_to_string(p).expect("test XML is readable")).collect())
}

fn directory_of_1000(c: &mut Criterion) {
    let Some(xmls) = testdata_xmls() else { return };
    let dir = tempfile::tempdir().expect("a temporary directory");
    for i in 0..DOMAINS {
        let text = &xmls[i % xmls.len()];
        std::fs::write(dir.path().join(format!("guest-{i:04}.xml")), text).expect("writable temporary directory");
    }
    let paths = vec![dir.path().to_path_buf()];
    let domains = read_paths(&paths).expect("libvirt's test XMLs read");
    assert_eq!(domains.len(), DOMAINS);

    let mut group = c.benchmark_group("import");
    group.throughput(Throughput::Elements(DOMAINS as u64));
    group.sample_size(20);
    group.bench_function("read_paths/1000-domain-xmls", |b| b.iter(|| read_paths(&paths).expect("reads")));
    let host = dir.path().join("host.yaml.txt");
    std::fs::write(
        &host,
        "host:\n  ram: 1T\n  hugepages:\n    - { size: 2M, count: 262144 }\n    - { size: 1G, count: 256 }\n",
    )
    .expect("writable temporary directory");
    group.bench_function("import_libvirt/1000-domain-xmls", |b| {
        b.iter(|| overcommit::import::import_libvirt(&paths, &mut std::io::empty(), Some(&host)).expect("imports"))
    });
    group.finish();
}

criterion_group!(benches, directory_of_1000);
criterion_main!(benches);
