//! libvirt domain XML: what `virsh dumpxml` prints and `/etc/libvirt/qemu/`
//! holds, read into a [`crate::scenario::guestmem::GuestMemory`] and the
//! rest of what a scenario needs.
//!
//! The reader follows libvirt's own rules for turning the XML into QEMU
//! options (`src/qemu/qemu_command.c`: `qemuBuildMemoryBackendProps`,
//! `qemuBuildMemoryGetPagesize`, `qemuBuildMemCommandLine`,
//! `qemuBuildNumaCommandLine`, `qemuBuildMemoryDeviceProps`), so that a
//! domain XML and the command line libvirt generates from it give the same
//! [`GuestMemory`]:
//!
//! - sizes are read as `virDomainParseMemory` reads them: the units of
//!   `virScaleInteger`, KiB by default, rounded up to whole KiB;
//! - the NUMA cells, when there are any, are the boot memory and `<memory>`
//!   only says how much there is in all (libvirt overwrites it with the
//!   cells plus the memory devices); cells are rounded up to 1 MiB and
//!   memory devices to 2 MiB, as `qemuDomainAlignMemorySizes` does on x86;
//! - each region's backend is chosen as libvirt chooses it: a memfd for
//!   `<source type='memfd'/>`; a file for huge pages, an nvdimm, an explicit
//!   `<access>`/`memAccess` or `<source type='file'/>`; anonymous RAM
//!   otherwise. Huge pages and `<allocation mode='immediate'/>` preallocate;
//!   so does an nvdimm that is not `<pmem/>`. `discard` reaches only file
//!   backends. `<nosharepages/>` turns KSM merging off, `<locked/>` locks;
//! - a missing `<memballoon>` is the virtio balloon libvirt adds by itself.
//!
//! What the model cannot represent (host NUMA binding, file-backed memory,
//! hotplug room, `min_guarantee`, discard, device addresses, odd huge page
//! sizes, ...) becomes a [`Warning`] naming the element and its
//! line:column, never a silent drop. What libvirt itself refuses is an
//! [`ImportError`], as is malformed XML; a document type declaration is
//! refused outright, so entity expansion bombs never expand.
//!
//! This file is the reader's public face: the [`Domain`] it gives, and
//! reading files, directories and standard input. The rest is one concern
//! a file:
//!
//! - `document`: the walk over one document, the values it reads from
//!   elements and attributes, and what a domain holds beside its guest RAM
//!   (memtune, `<currentMemory>`, the balloon, the base image, oVirt's
//!   metadata, host NUMA binding, QEMU pass-through);
//! - `memory`: `<memoryBacking>`, the NUMA cells and the memory devices,
//!   and the sizes, alignment and hotplug room libvirt makes of them;
//! - `backend`: the memory backend libvirt builds for each cell, boot RAM
//!   or device, and the regions that come of them;
//! - `units`: libvirt's sizes, units and nodesets as written;
//! - `findings`: [`Warning`] and [`ImportError`], and the line:column they
//!   point at.

mod backend;
mod document;
mod findings;
mod memory;
mod places;
#[cfg(test)]
mod testing;
mod units;

use std::cell::OnceCell;
use std::io::Read;
use std::path::{Path, PathBuf};

use roxmltree::{Document, ParsingOptions};
use serde::Serialize;

use crate::scenario::guestmem::GuestMemory;
use crate::units::ByteSize;

use document::Reader;
use findings::xml_error;
pub use findings::{ImportError, Warning};

/// Label used for standard input.
pub const STDIN_LABEL: &str = "<stdin>";

// ---------------------------------------------------------------------------
// What a domain gives

/// The hypervisor a domain asks for (`<domain type=...>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VirtType {
    /// Hardware virtualisation.
    Kvm,
    /// QEMU's TCG emulator: the same memory model, slower CPUs.
    Qemu,
}

/// `<memtune>`: the cgroup memory limits libvirt sets on the guest's QEMU
/// process. `None` is no limit (also for a value at libvirt's "unlimited").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Memtune {
    pub hard_limit: Option<ByteSize>,
    pub soft_limit: Option<ByteSize>,
    pub swap_hard_limit: Option<ByteSize>,
    /// libvirt's QEMU driver refuses to start a domain with it
    /// (`qemu_validate.c`: "Parameter 'min_guarantee' not supported by
    /// QEMU"); kept so a caller can use it as a balloon floor.
    pub min_guarantee: Option<ByteSize>,
}

/// The balloon facts that are not in [`GuestMemory`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balloon {
    /// `<memballoon model=...>`: `virtio`, `virtio-transitional`,
    /// `virtio-non-transitional` or `none`; `virtio` when the element is
    /// missing, as libvirt then adds one.
    pub model: String,
    /// `<stats period=...>` in seconds: how often the guest reports its
    /// memory statistics. libvirt sets it over QMP after QEMU starts, so it
    /// is never on the command line.
    pub stats_period: Option<u32>,
}

/// One libvirt domain, as far as memory planning goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Domain {
    /// The label it was read under (a file name, or `<stdin>`).
    pub file: String,
    pub name: String,
    pub virt_type: VirtType,
    pub memory: GuestMemory,
    /// `<currentMemory>`: what the balloon leaves the guest at start;
    /// `None` when not given (the guest starts with all its memory).
    pub current_memory: Option<ByteSize>,
    pub memtune: Memtune,
    pub balloon: Balloon,
    /// The guest's base image: the first `<disk device='disk'>`'s deepest
    /// `<backingStore>` source, or its own source when it has no backing
    /// chain. Guests booted from one image share its pages' content.
    pub image: Option<String>,
    /// oVirt's guaranteed memory (`ovirt-vm:minGuaranteedMemoryMb` in
    /// `<metadata>`): the floor oVirt's balloon policy never goes below.
    pub ovirt_min_guaranteed: Option<ByteSize>,
    /// `<vcpu>`: the guest's virtual CPUs (QEMU's own memory grows with
    /// them); `None` when not given.
    pub vcpus: Option<u32>,
    pub warnings: Vec<Warning>,
}

// ---------------------------------------------------------------------------
// Reading files, directories and standard input

/// Read domains from files, directories (every `*.xml` directly inside,
/// by name, as `/etc/libvirt/qemu/` holds them) and `-` (standard input).
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<Domain>, ImportError> {
    read_paths_from(paths, &mut std::io::stdin().lock())
}

/// [`read_paths`] with `stdin` standing for `-`.
pub fn read_paths_from(paths: &[PathBuf], stdin: &mut dyn Read) -> Result<Vec<Domain>, ImportError> {
    let mut domains = Vec::new();
    let mut stdin_used = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin_used {
                return Err(ImportError::file_only(STDIN_LABEL, "`-` is given twice: standard input is read once"));
            }
            stdin_used = true;
            let mut bytes = Vec::new();
            stdin
                .read_to_end(&mut bytes)
                .map_err(|e| ImportError::file_only(STDIN_LABEL, format!("cannot read standard input: {e}")))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ImportError::file_only(STDIN_LABEL, "standard input is not UTF-8 text"))?;
            domains.push(read_domain(&text, STDIN_LABEL)?);
            continue;
        }
        let label = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| ImportError::file_only(&label, format!("cannot read: {e}")))?;
        if meta.is_dir() {
            let files = xml_files_in(path, &label)?;
            if files.is_empty() {
                return Err(ImportError::file_only(
                    &label,
                    "no domain here: a directory is read for the *.xml files directly inside it, and it has none",
                ));
            }
            for file in files {
                domains.push(read_file(&file)?);
            }
        } else {
            domains.push(read_file(path)?);
        }
    }
    Ok(domains)
}

/// The `*.xml` files directly inside `dir`, sorted by name.
fn xml_files_in(dir: &Path, label: &str) -> Result<Vec<PathBuf>, ImportError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ImportError::file_only(label, format!("cannot list: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ImportError::file_only(label, format!("cannot list: {e}")))?;
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "xml") {
            continue;
        }
        // Follow symbolic links, as libvirt's own directory scan does.
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

fn read_file(path: &Path) -> Result<Domain, ImportError> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ImportError::file_only(&label, format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| ImportError::file_only(&label, "not UTF-8 text"))?;
    read_domain(&text, &label)
}

// ---------------------------------------------------------------------------
// One document

/// Read one domain XML. `label` names it in warnings and errors.
pub fn read_domain(text: &str, label: &str) -> Result<Domain, ImportError> {
    let options = ParsingOptions { allow_dtd: false, ..ParsingOptions::default() };
    let doc = Document::parse_with_options(text, options).map_err(|e| xml_error(text, label, &e))?;
    let reader = Reader { doc: &doc, file: label, warnings: Vec::new(), line_starts: OnceCell::new() };
    reader.domain()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::testing::{GIB, testdata, xml};
    use super::*;

    #[test]
    fn every_libvirt_test_xml_reads() {
        let Some(dir) = testdata() else { return };
        let domains = read_paths(&[dir]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(domains.len(), 48);
        for d in &domains {
            assert!(!d.memory.regions.is_empty(), "{}", d.file);
        }
    }

    // -- files, directories, standard input ---------------------------------

    #[test]
    fn directories_read_xml_files_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, guest: &str| {
            std::fs::write(
                dir.path().join(name),
                xml("<memory unit='GiB'>1</memory>").replace("<name>g</name>", &format!("<name>{guest}</name>")),
            )
            .unwrap();
        };
        write("b.xml", "second");
        write("a.xml", "first");
        std::fs::write(dir.path().join("notes.txt"), "not a domain").unwrap();
        std::fs::create_dir(dir.path().join("autostart")).unwrap();
        let domains = read_paths(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<_> = domains.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["first", "second"]);
        assert!(domains[0].file.ends_with("a.xml"));

        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("README"), "nothing here").unwrap();
        let e = read_paths(&[empty.path().to_path_buf()]).unwrap_err();
        assert_eq!(e.file, empty.path().display().to_string());
        assert!(e.message.contains("no domain"), "{e}");

        let e = read_paths(&[dir.path().join("missing.xml")]).unwrap_err();
        assert!(e.message.contains("cannot read"), "{e}");
    }

    #[test]
    fn dash_reads_standard_input() {
        let text = xml("<memory unit='GiB'>2</memory>");
        let domains = read_paths_from(&[PathBuf::from("-")], &mut Cursor::new(text.clone())).unwrap();
        assert_eq!(domains.len(), 1);
        assert_eq!(domains[0].file, STDIN_LABEL);
        assert_eq!(domains[0].memory.boot_bytes(), 2 * GIB);
        let e = read_paths_from(&[PathBuf::from("-"), PathBuf::from("-")], &mut Cursor::new(text)).unwrap_err();
        assert!(e.message.contains("twice"), "{e}");
        let e = read_paths_from(&[PathBuf::from("-")], &mut Cursor::new(vec![0xff, 0xfe])).unwrap_err();
        assert!(e.message.contains("UTF-8"), "{e}");
    }
}
