//! What the reader's unit tests share: a domain around a body, read or
//! refused, a warning looked up by element, the regions libvirt's plainest
//! backends give, and libvirt's own test inputs where they are.

use std::path::{Path, PathBuf};

use super::{Domain, ImportError, Warning, read_domain};
use crate::scenario::guestmem::{Pages, Region, RegionKind, Source};
use crate::units::ByteSize;

pub(super) const MIB: u64 = 1 << 20;
pub(super) const GIB: u64 = 1 << 30;

/// libvirt's own test inputs (`tests/qemuxmlconfdata/` of libvirt),
/// beside the project; `None` where they are not.
pub(super) fn testdata() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/libvirt-testdata");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

/// A domain around `body` (which goes inside `<domain>`).
pub(super) fn xml(body: &str) -> String {
    format!("<domain type='kvm'>\n  <name>g</name>\n{body}\n</domain>\n")
}

pub(super) fn read(body: &str) -> Domain {
    read_domain(&xml(body), "t.xml").unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn fails(body: &str) -> ImportError {
    match read_domain(&xml(body), "t.xml") {
        Ok(d) => panic!("expected an error, read {:?}", d.memory),
        Err(e) => e,
    }
}

pub(super) fn warning<'d>(d: &'d Domain, element: &str) -> &'d Warning {
    d.warnings
        .iter()
        .find(|w| w.element == element)
        .unwrap_or_else(|| panic!("no warning on {element}: {:#?}", d.warnings))
}

pub(super) fn anonymous(kind: RegionKind, node: Option<u32>, bytes: u64) -> Region {
    Region::anonymous(kind, node, ByteSize(bytes))
}

pub(super) fn huge_file(node: Option<u32>, bytes: u64, page: Option<u64>) -> Region {
    Region {
        source: Source::File,
        pages: Pages::Huge(page.map(ByteSize)),
        prealloc: true,
        ..anonymous(RegionKind::Boot, node, bytes)
    }
}
