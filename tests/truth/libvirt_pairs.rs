//! libvirt's own test suite as truth for both readers of foreign
//! descriptions. Each pair in `../shared/libvirt-testdata` (copied unchanged
//! from libvirt's `tests/qemuxmlconfdata/`, see the README there) is one
//! guest written twice: `NAME.xml`, the domain an operator writes, and
//! `NAME.args`, the QEMU command line libvirt's own code generates from it
//! (`NAME.x86_64-5.2.0.*` pairs the same XML with QEMU 5.2.0's spelling).
//! Nobody here wrote either side, so the domain XML reader
//! (`import::libvirt`) and the command-line reader (`scenario::qemu`) must
//! find the same `GuestMemory` in both, field by field, except where QEMU's
//! or libvirt's own semantics keep them apart: those cases are listed in
//! [`EXCEPTIONS`], each with its reason.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use overcommit::import::libvirt::read_domain;
use overcommit::scenario::guestmem::GuestMemory;
use overcommit::scenario::qemu;

/// A field of one case where the XML and the command line differ by design.
struct Exception {
    case: &'static str,
    /// A field as [`diff`] names it (`regions[0].pages`), or `command line`
    /// when the command-line reader refuses the line.
    field: &'static str,
    reason: &'static str,
}

/// The command line refused: the only cause is an exception with this
/// field.
const REFUSED: &str = "command line";

const EXCEPTIONS: &[Exception] = &[
    // `<hugepages/>` without a page size means the host's default hugetlbfs
    // size, which the XML does not state (GuestMemory: `Huge(None)`).
    // libvirt's test host has its default 2 MiB pool mounted at
    // /dev/hugepages2M, so the command line it generated names 2 MiB.
    Exception {
        case: "hugepages-default",
        field: "regions[0].pages",
        reason: "<hugepages/> leaves the size to the host; the test host's default is 2 MiB (/dev/hugepages2M)",
    },
    Exception {
        case: "hugepages-memaccess3",
        field: "regions[0].pages",
        reason: "<hugepages/> leaves the size to the host; the test host's default is 2 MiB (/dev/hugepages2M)",
    },
    Exception {
        case: "memfd-memory-default-hugepage",
        field: "regions[0].pages",
        reason: "<hugepages/> leaves the size to the host; libvirt wrote the test host's default as hugetlbsize=2097152",
    },
    // An incoming migration keeps the source's unaligned cell sizes (sum
    // 24682468 KiB) while -m is <memory> rounded down to 512 KiB (14682112
    // KiB): QEMU refuses the line (numa_complete_configuration, "total
    // memory for NUMA nodes should equal RAM size"). Read as an ordinary
    // start, the XML gives the cells rounded up to 1 MiB.
    Exception {
        case: "migrate-numa-unaligned",
        field: REFUSED,
        reason: "generated for an incoming migration: cells do not add up to -m, so QEMU refuses it",
    },
];

fn testdata() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/libvirt-testdata");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: libvirt's test data is absent ({})", dir.display());
        None
    }
}

/// The command line from the QEMU binary on: the files start with
/// environment assignments (`LC_ALL=C \`, `PATH=/bin \`, ...).
fn command_line(args: &str) -> &str {
    let at = args.find("qemu-system").map_or(0, |i| args[..i].rfind(char::is_whitespace).map_or(0, |w| w + 1));
    &args[at..]
}

/// One field that differs: its name, the XML's value, the command line's.
struct Difference {
    field: String,
    xml: String,
    args: String,
}

fn field<T: PartialEq + Debug>(out: &mut Vec<Difference>, name: String, xml: &T, args: &T) {
    if xml != args {
        out.push(Difference { field: name, xml: format!("{xml:?}"), args: format!("{args:?}") });
    }
}

/// Every field of `GuestMemory` that differs, named as in [`EXCEPTIONS`].
fn diff(xml: &GuestMemory, args: &GuestMemory) -> Vec<Difference> {
    let mut out = Vec::new();
    field(&mut out, "regions.len()".into(), &xml.regions.len(), &args.regions.len());
    for (i, (x, a)) in xml.regions.iter().zip(&args.regions).enumerate() {
        field(&mut out, format!("regions[{i}].kind"), &x.kind, &a.kind);
        field(&mut out, format!("regions[{i}].node"), &x.node, &a.node);
        field(&mut out, format!("regions[{i}].size"), &x.size, &a.size);
        field(&mut out, format!("regions[{i}].capacity"), &x.capacity, &a.capacity);
        field(&mut out, format!("regions[{i}].source"), &x.source, &a.source);
        field(&mut out, format!("regions[{i}].pages"), &x.pages, &a.pages);
        field(&mut out, format!("regions[{i}].prealloc"), &x.prealloc, &a.prealloc);
        field(&mut out, format!("regions[{i}].share"), &x.share, &a.share);
        field(&mut out, format!("regions[{i}].merge"), &x.merge, &a.merge);
        field(&mut out, format!("regions[{i}].discard"), &x.discard, &a.discard);
        field(&mut out, format!("regions[{i}].readonly"), &x.readonly, &a.readonly);
    }
    field(&mut out, "slots".into(), &xml.slots, &args.slots);
    field(&mut out, "maxmem".into(), &xml.maxmem, &args.maxmem);
    field(&mut out, "balloon".into(), &xml.balloon, &args.balloon);
    field(&mut out, "mem_lock".into(), &xml.mem_lock, &args.mem_lock);
    out
}

fn excepted(case: &str, field: &str) -> bool {
    EXCEPTIONS.iter().any(|e| e.case == case && e.field == field)
}

#[test]
fn every_pair_gives_the_same_guest_memory() {
    let Some(dir) = testdata() else { return };
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .expect("the test data folder lists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 48, "libvirt's test data should hold 48 pairs");

    let mut failures = Vec::new();
    let mut seen = Vec::new();
    for case in &cases {
        let xml_text = std::fs::read_to_string(dir.join(format!("{case}.xml"))).expect("the XML reads");
        let args_text = std::fs::read_to_string(dir.join(format!("{case}.args")))
            .unwrap_or_else(|e| panic!("{case}.args, the pair of {case}.xml: {e}"));
        let xml = match read_domain(&xml_text, &format!("{case}.xml")) {
            Ok(d) => d.memory,
            Err(e) => {
                failures.push(format!("{case}: the XML reader refuses it: {e}"));
                continue;
            }
        };
        let args = match qemu::parse(command_line(&args_text)) {
            Ok(q) => q.guest,
            Err(e) if excepted(case, REFUSED) => {
                seen.push((case.clone(), REFUSED.to_string()));
                eprintln!("{case}: command line refused, as listed: {e}");
                continue;
            }
            Err(e) => {
                failures.push(format!("{case}: the command-line reader refuses it: {e} (at `{}`)", e.token));
                continue;
            }
        };
        if excepted(case, REFUSED) {
            failures.push(format!("{case}: listed as refused, but the command line reads"));
        }
        let mut lines = Vec::new();
        for d in diff(&xml, &args) {
            if excepted(case, &d.field) {
                seen.push((case.clone(), d.field));
            } else {
                lines.push(format!("  {}\n      XML:  {}\n      args: {}", d.field, d.xml, d.args));
            }
        }
        if !lines.is_empty() {
            failures.push(format!("{case}:\n{}", lines.join("\n")));
        }
    }
    // An exception that no longer applies is a stale excuse: drop it.
    for e in EXCEPTIONS {
        if !seen.iter().any(|(c, f)| c == e.case && f == e.field) {
            failures.push(format!("{}: the exception for {} ({}) no longer applies", e.case, e.field, e.reason));
        }
    }
    assert!(failures.is_empty(), "{} case(s) disagree:\n{}", failures.len(), failures.join("\n"));
}

/// The stripping above leaves the binary first, as the reader expects.
#[test]
fn command_line_starts_at_the_binary() {
    let text = "LC_ALL=C \\\nPATH=/bin \\\n/usr/bin/qemu-system-x86_64 \\\n-m size=4194304k\n";
    assert!(command_line(text).starts_with("/usr/bin/qemu-system-x86_64"));
}
