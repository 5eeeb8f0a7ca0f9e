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

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use roxmltree::{Document, Node, ParsingOptions};
use serde::Serialize;

use crate::scenario::guestmem::{BalloonDevice, GuestMemory, Pages, Region, RegionKind, Source};
use crate::units::ByteSize;

/// libvirt keeps memory sizes in KiB.
const KIB: u64 = 1024;

/// `virMemoryMaxValue(false)` on a 64-bit host: sizes must stay below
/// `LLONG_MAX` bytes.
const MEMORY_MAX_BYTES: u64 = i64::MAX as u64;

/// `VIR_DOMAIN_MEMORY_PARAM_UNLIMITED`, in KiB: a memtune limit at or
/// above it means "no limit".
const MEMORY_PARAM_UNLIMITED_KIB: u64 = (1 << 53) - 1;

/// The x86-64 base page, in KiB. A `<page>` of this size means no huge
/// pages at all (`qemuBuildMemoryGetPagesize`).
const SYSTEM_PAGE_KIB: u64 = 4;

/// The huge page sizes an x86-64 host has: 2 MiB and 1 GiB, in KiB.
const X86_HUGE_PAGES_KIB: [u64; 2] = [2048, 1024 * 1024];

/// `qemuDomainGetMemorySizeAlignment`: boot memory and NUMA cells are
/// rounded up to 1 MiB.
const MEMORY_ALIGN_KIB: u64 = 1024;

/// `qemuDomainGetMemoryModuleSizeAlignment`: memory devices are rounded up
/// to 2 MiB on x86.
const MODULE_ALIGN_KIB: u64 = 2048;

/// `VIR_DOMAIN_CPUMASK_LEN`: nodesets name nodes below this.
const NODESET_LEN: u32 = 1024;

/// The namespace oVirt's engine writes its VM metadata in.
const OVIRT_VM_NS: &str = "http://ovirt.org/vm/1.0";

/// The namespace of libvirt's QEMU pass-through elements.
const QEMU_NS: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

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
    pub warnings: Vec<Warning>,
}

// ---------------------------------------------------------------------------
// Findings

/// Something the model cannot represent, or that the reader changed the
/// way libvirt would, with the place it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The file label.
    pub file: String,
    /// A readable path such as `domain/memtune/min_guarantee` (an
    /// attribute ends in `/@name`).
    pub element: String,
    pub line: u32,
    pub column: u32,
    /// The value at issue, as written.
    pub value: Option<String>,
    pub message: String,
}

/// Why a domain could not be read. `line` and `column` are 0 when the
/// problem has no place in a document (a file that cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportError {
    pub file: String,
    /// A readable path such as `domain/memory`; empty when the error is
    /// about the whole document or file.
    pub element: String,
    pub line: u32,
    pub column: u32,
    /// The offending value, as written.
    pub value: Option<String>,
    pub message: String,
}

fn write_finding(
    f: &mut fmt::Formatter<'_>,
    file: &str,
    element: &str,
    line: u32,
    column: u32,
    value: Option<&str>,
    message: &str,
) -> fmt::Result {
    write!(f, "{file}")?;
    if line > 0 {
        write!(f, ":{line}:{column}")?;
    }
    if !element.is_empty() {
        write!(f, ": {element}")?;
    }
    if let Some(v) = value {
        write!(f, " {v:?}")?;
    }
    write!(f, ": {message}")
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_finding(f, &self.file, &self.element, self.line, self.column, self.value.as_deref(), &self.message)
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_finding(f, &self.file, &self.element, self.line, self.column, self.value.as_deref(), &self.message)
    }
}

impl ImportError {
    pub fn file_only(file: &str, message: impl Into<String>) -> Self {
        ImportError {
            file: file.to_string(),
            element: String::new(),
            line: 0,
            column: 0,
            value: None,
            message: message.into(),
        }
    }
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

/// A roxmltree error as an [`ImportError`] with its position.
fn xml_error(text: &str, label: &str, e: &roxmltree::Error) -> ImportError {
    let (line, column, message) = match e {
        roxmltree::Error::DtdDetected => {
            // roxmltree gives 1:1 for this one; point at the declaration.
            let at = text.find("<!DOCTYPE").unwrap_or(0);
            let (line, column) = line_column(text, at);
            (
                line,
                column,
                "a document type declaration (<!DOCTYPE ...>) is not accepted: libvirt domain XML has none, \
                 and refusing it keeps entity expansion (billion laughs, entity loops) out"
                    .to_string(),
            )
        }
        other => {
            let pos = other.pos();
            (pos.row, pos.col, format!("malformed XML: {other}"))
        }
    };
    ImportError { file: label.to_string(), element: String::new(), line, column, value: None, message }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX))
}

/// `<access mode>` / `memAccess` / a memory device's `access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Default,
    Shared,
    Private,
}

/// libvirt's `virTristateBool` for `discard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tristate {
    Absent,
    Yes,
    No,
}

/// `<memoryBacking><source type>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemSource {
    Default,
    Anonymous,
    File,
    Memfd,
}

/// One `<page>` of `<hugepages>`; `size_kib` 0 is the host's default huge
/// page size (`<hugepages/>` without pages).
struct HugePage<'a, 'i> {
    size_kib: u64,
    nodeset: Option<BTreeSet<u32>>,
    node: Node<'a, 'i>,
}

/// `<memoryBacking>`.
struct Backing<'a, 'i> {
    hugepages: Vec<HugePage<'a, 'i>>,
    nosharepages: bool,
    locked: bool,
    source: MemSource,
    source_node: Option<Node<'a, 'i>>,
    access: Access,
    access_node: Option<Node<'a, 'i>>,
    immediate: bool,
    discard: Tristate,
}

/// One guest NUMA cell.
struct Cell<'a, 'i> {
    kib: u64,
    access: Access,
    discard: Tristate,
    node: Node<'a, 'i>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DevModel {
    Dimm,
    Nvdimm,
    VirtioMem,
    VirtioPmem,
    SgxEpc,
}

/// One `<memory model=...>` device.
struct MemDev<'a, 'i> {
    node: Node<'a, 'i>,
    model: DevModel,
    access: Access,
    discard: Tristate,
    size_kib: u64,
    target_node: Option<u32>,
    pagesize_kib: u64,
    pmem: bool,
    readonly: bool,
    requested_kib: u64,
}

/// What a memory backend is, once libvirt's rules have chosen it.
struct Backend {
    source: Source,
    pages: Pages,
    prealloc: bool,
    share: bool,
    discard: bool,
    /// Guest RAM on a plain file (not hugetlbfs, not an nvdimm): warned
    /// about.
    plain_file: bool,
}

/// The memory a backend is built for: a cell, the whole of boot RAM, or a
/// device (`virDomainMemoryDef` in libvirt).
struct MemSpec<'r, 'a, 'i> {
    target_node: Option<u32>,
    access: Access,
    discard: Tristate,
    pagesize_kib: u64,
    nvdimm: Option<&'r MemDev<'a, 'i>>,
}

struct Reader<'a, 'i> {
    doc: &'a Document<'i>,
    file: &'a str,
    warnings: Vec<Warning>,
    /// Byte offsets where lines start, built on the first position asked
    /// for, so a document with many findings is not rescanned for each.
    line_starts: OnceCell<Vec<usize>>,
}

/// The element children of `n` named `name` in no namespace (libvirt's own
/// elements; another namespace's `memory` is not ours).
fn children<'a, 'i: 'a>(n: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(move |c| c.is_element() && c.tag_name().namespace().is_none() && c.tag_name().name() == name)
}

fn child<'a, 'i: 'a>(n: Node<'a, 'i>, name: &'static str) -> Option<Node<'a, 'i>> {
    children(n, name).next()
}

/// XPath's string value of an element: all its text, in order.
fn string_value(n: Node) -> String {
    n.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect()
}

fn round_up(kib: u64, align: u64) -> Option<u64> {
    kib.div_ceil(align).checked_mul(align)
}

fn kib_size(kib: u64) -> ByteSize {
    ByteSize(kib.saturating_mul(KIB))
}

fn show_kib(kib: u64) -> String {
    kib_size(kib).to_string()
}

/// Why a size was refused; the caller adds the place.
enum SizeError {
    NotANumber,
    Negative,
    UnknownUnit,
    TooLarge,
}

/// `virStrToLong_ullp` in base 10: leading white space and a `+` are taken,
/// a `-` anywhere, anything after the digits, or no digits are not.
fn parse_ull(text: &str) -> Result<u64, SizeError> {
    let t = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SizeError::NotANumber);
    }
    if negative {
        return Err(SizeError::Negative);
    }
    digits.parse::<u64>().map_err(|_| SizeError::TooLarge)
}

/// `virScaleInteger`'s units: `b`/`byte`/`bytes`; `k`, `m`, `g`, `t`, `p`,
/// `e` alone or followed by `iB` for powers of 1024; followed by `B` for
/// powers of 1000; any case. `None` for an unknown unit. An empty unit is
/// the default.
fn unit_scale(unit: &str, default: u64) -> Option<u64> {
    if unit.is_empty() {
        return Some(default);
    }
    let lower = unit.to_ascii_lowercase();
    if matches!(lower.as_str(), "b" | "byte" | "bytes") {
        return Some(1);
    }
    let bytes = lower.as_bytes();
    let rest = &bytes[1..];
    let base: u64 = if rest.is_empty() || rest == b"ib" {
        1024
    } else if rest == b"b" {
        1000
    } else {
        return None;
    };
    let power = match bytes[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        b'e' => 6,
        _ => return None,
    };
    Some(base.pow(power))
}

/// `virDomainParseScaledValue` followed by `virDomainParseMemory`'s
/// rounding: the size in KiB, rounded up. `limit` is the largest byte
/// count `virScaleInteger` lets through.
fn scaled_kib(text: &str, unit: &str, limit: u64) -> Result<u64, SizeError> {
    let value = parse_ull(text)?;
    let scale = unit_scale(unit, KIB).ok_or(SizeError::UnknownUnit)?;
    if value > limit / scale {
        return Err(SizeError::TooLarge);
    }
    Ok((value * scale).div_ceil(KIB))
}

/// A size as `virDomainParseMemory` takes it, in KiB.
fn memory_kib(text: &str, unit: &str) -> Result<u64, SizeError> {
    let kib = scaled_kib(text, unit, MEMORY_MAX_BYTES)?;
    if kib >= MEMORY_MAX_BYTES.div_ceil(KIB) {
        return Err(SizeError::TooLarge);
    }
    Ok(kib)
}

/// `virBitmapParse`: `0,2-3`, `^1` removes a node already listed.
fn parse_nodeset(text: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    for part in text.split(',') {
        let part = part.trim();
        let number = |s: &str| s.trim().parse::<u32>().ok().filter(|&n| n < NODESET_LEN);
        if let Some(rest) = part.strip_prefix('^') {
            set.remove(&number(rest)?);
        } else if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return None;
            }
            set.extend(a..=b);
        } else {
            set.insert(number(part)?);
        }
    }
    Some(set)
}

impl<'a, 'i: 'a> Reader<'a, 'i> {
    // -- places ------------------------------------------------------------

    /// 1-based line and column (in characters) of a byte offset, counted
    /// as roxmltree counts them for its own errors.
    fn pos(&self, offset: usize) -> (u32, u32) {
        let text = self.doc.input_text();
        let starts = self
            .line_starts
            .get_or_init(|| std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect());
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let start = starts[line - 1];
        let column = text.get(start..offset.min(text.len())).map_or(0, |l| l.chars().count()) + 1;
        (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX))
    }

    /// Where an element starts.
    fn node_pos(&self, n: Node) -> (u32, u32) {
        self.pos(n.range().start)
    }

    /// Where an element's text starts (the element itself when empty).
    fn text_pos(&self, n: Node) -> (u32, u32) {
        match n.descendants().find(|d| d.is_text()) {
            Some(t) => self.pos(t.range().start),
            None => self.node_pos(n),
        }
    }

    /// Where an attribute's value starts (the element when it is missing).
    fn attr_pos(&self, n: Node, name: &str) -> (u32, u32) {
        match n.attribute_node(name) {
            Some(a) => self.pos(a.range_value().start),
            None => self.node_pos(n),
        }
    }

    /// `domain/devices/memory`, with `/@name` for an attribute.
    fn path(n: Node, attr: Option<&str>) -> String {
        let mut names: Vec<&str> = n.ancestors().filter(|a| a.is_element()).map(|a| a.tag_name().name()).collect();
        names.reverse();
        let mut p = names.join("/");
        if let Some(a) = attr {
            p.push_str("/@");
            p.push_str(a);
        }
        p
    }

    fn error_at(
        &self,
        element: String,
        (line, column): (u32, u32),
        value: Option<&str>,
        message: String,
    ) -> ImportError {
        ImportError { file: self.file.to_string(), element, line, column, value: value.map(str::to_string), message }
    }

    /// An error about an element (its text when `value` is given).
    fn node_error(&self, n: Node, value: Option<&str>, message: impl Into<String>) -> ImportError {
        let pos = if value.is_some() { self.text_pos(n) } else { self.node_pos(n) };
        self.error_at(Self::path(n, None), pos, value, message.into())
    }

    fn attr_error(&self, n: Node, attr: &str, message: impl Into<String>) -> ImportError {
        self.error_at(Self::path(n, Some(attr)), self.attr_pos(n, attr), n.attribute(attr), message.into())
    }

    fn warn_at(&mut self, element: String, (line, column): (u32, u32), value: Option<&str>, message: String) {
        let w =
            Warning { file: self.file.to_string(), element, line, column, value: value.map(str::to_string), message };
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    fn warn_node(&mut self, n: Node, value: Option<&str>, message: impl Into<String>) {
        let pos = self.node_pos(n);
        self.warn_at(Self::path(n, None), pos, value, message.into());
    }

    fn warn_attr(&mut self, n: Node, attr: &str, message: impl Into<String>) {
        let pos = self.attr_pos(n, attr);
        self.warn_at(Self::path(n, Some(attr)), pos, n.attribute(attr), message.into());
    }

    // -- values ------------------------------------------------------------

    fn size_error(
        &self,
        err: SizeError,
        element: String,
        value_pos: (u32, u32),
        value: &str,
        unit: Option<(String, (u32, u32), &str)>,
    ) -> ImportError {
        match err {
            SizeError::NotANumber => self.error_at(
                element,
                value_pos,
                Some(value),
                "not a size: libvirt takes a whole number of the unit (KiB unless `unit` says otherwise)".into(),
            ),
            SizeError::Negative => self.error_at(element, value_pos, Some(value), "a size cannot be negative".into()),
            SizeError::TooLarge => self.error_at(
                element,
                value_pos,
                Some(value),
                "too large: libvirt's sizes stay below 8 EiB (2^63 bytes)".into(),
            ),
            SizeError::UnknownUnit => {
                let (path, pos, text) = unit.unwrap_or((element, value_pos, ""));
                self.error_at(
                    path,
                    pos,
                    Some(text),
                    "unknown unit: libvirt takes b or bytes; k/KiB, M/MiB, G/GiB, T/TiB, P/PiB, E/EiB (powers of \
                     1024); KB, MB, GB, TB, PB, EB (powers of 1000); any case"
                        .into(),
                )
            }
        }
    }

    /// An element's size in KiB (`<memory unit='GiB'>4</memory>`); `None`
    /// when the element is empty, as libvirt treats an empty string.
    fn element_kib(&self, n: Node) -> Result<Option<u64>, ImportError> {
        let text = string_value(n);
        if text.is_empty() {
            return Ok(None);
        }
        let unit = n.attribute("unit").unwrap_or("");
        memory_kib(&text, unit).map(Some).map_err(|e| {
            let unit_place = n.attribute("unit").map(|u| (Self::path(n, Some("unit")), self.attr_pos(n, "unit"), u));
            self.size_error(e, Self::path(n, None), self.text_pos(n), &text, unit_place)
        })
    }

    /// A required size element child: `<target><size>`.
    fn required_child_kib(&self, parent: Node, name: &'static str) -> Result<u64, ImportError> {
        let Some(n) = child(parent, name) else {
            return Err(self.node_error(parent, None, format!("<{name}> is missing: libvirt requires it here")));
        };
        self.element_kib(n)?.ok_or_else(|| self.node_error(n, None, format!("<{name}> is empty: it needs a size")))
    }

    /// An attribute's size in KiB with its unit in another attribute
    /// (`<cell memory='...' unit='...'>`).
    fn attr_kib(&self, n: Node, attr: &str, unit_attr: &str) -> Result<Option<u64>, ImportError> {
        let Some(text) = n.attribute(attr).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let unit = n.attribute(unit_attr).unwrap_or("");
        memory_kib(text, unit).map(Some).map_err(|e| {
            let unit_place =
                n.attribute(unit_attr).map(|u| (Self::path(n, Some(unit_attr)), self.attr_pos(n, unit_attr), u));
            self.size_error(e, Self::path(n, Some(attr)), self.attr_pos(n, attr), text, unit_place)
        })
    }

    /// An attribute that must be one of `allowed`.
    fn attr_enum(
        &self,
        n: Node<'a, 'i>,
        attr: &str,
        allowed: &[&'static str],
    ) -> Result<Option<&'static str>, ImportError> {
        let Some(v) = n.attribute(attr) else {
            return Ok(None);
        };
        match allowed.iter().find(|a| **a == v) {
            Some(a) => Ok(Some(*a)),
            None => Err(self.attr_error(n, attr, format!("libvirt takes {}", one_of(allowed)))),
        }
    }

    fn attr_u32(&self, n: Node, attr: &str) -> Result<Option<u32>, ImportError> {
        let Some(v) = n.attribute(attr) else {
            return Ok(None);
        };
        match parse_ull(v).ok().and_then(|x| u32::try_from(x).ok()) {
            Some(x) => Ok(Some(x)),
            None => Err(self.attr_error(n, attr, "not a whole number (0 to 4294967295)")),
        }
    }

    fn access_attr(&self, n: Node<'a, 'i>, attr: &str) -> Result<Access, ImportError> {
        Ok(match self.attr_enum(n, attr, &["shared", "private"])? {
            Some("shared") => Access::Shared,
            Some(_) => Access::Private,
            None => Access::Default,
        })
    }

    fn discard_attr(&self, n: Node<'a, 'i>) -> Result<Tristate, ImportError> {
        Ok(match self.attr_enum(n, "discard", &["yes", "no"])? {
            Some("yes") => Tristate::Yes,
            Some(_) => Tristate::No,
            None => Tristate::Absent,
        })
    }

    // -- the document ------------------------------------------------------

    fn domain(mut self) -> Result<Domain, ImportError> {
        let root = self.doc.root_element();
        if root.tag_name().name() != "domain" || root.tag_name().namespace().is_some() {
            return Err(self.node_error(
                root,
                None,
                format!(
                    "the root element is <{}>, not <domain>: this is not a libvirt domain XML",
                    root.tag_name().name()
                ),
            ));
        }
        let virt_type = match root.attribute("type") {
            Some("kvm") => VirtType::Kvm,
            Some("qemu") => VirtType::Qemu,
            Some(other) => {
                return Err(self.attr_error(
                    root,
                    "type",
                    format!(
                        "a type='{other}' domain: only QEMU/KVM guests (type='kvm' or type='qemu') have the \
                         memory this tool models"
                    ),
                ));
            }
            None => {
                return Err(self.node_error(root, None, "<domain> has no `type`: libvirt requires one (kvm or qemu)"));
            }
        };
        let name = match child(root, "name").map(string_value) {
            Some(n) if !n.trim().is_empty() => n.trim().to_string(),
            _ => return Err(self.node_error(root, None, "the domain has no <name>: libvirt requires one")),
        };

        self.check_arch(root);
        let memtune = self.memtune(root)?;
        let backing = self.memory_backing(root)?;
        let cells = self.cells(root)?;
        let devices = child(root, "devices");
        let mut mems = Vec::new();
        if let Some(devs) = devices {
            for m in children(devs, "memory") {
                mems.push(self.memory_device(m, cells.len())?);
            }
        }
        let (balloon_device, balloon) = self.memballoon(devices)?;
        let image = devices.and_then(base_image);
        if let Some(devs) = devices {
            self.other_host_memory(devs);
        }
        self.numatune(root);
        self.passthrough(root);
        let ovirt_min_guaranteed = self.ovirt_guaranteed(root)?;
        self.check_hugepages(&backing, cells.len())?;

        // Sizes: what libvirt's post-parse and qemuDomainAlignMemorySizes
        // make of <memory>, the cells and the devices.
        let memory_el = child(root, "memory");
        let memory_kib = match memory_el {
            Some(m) => self.element_kib(m)?,
            None => None,
        };
        let dev_raw = self.sum(mems.iter().map(|m| m.size_kib), root)?;
        let initial_raw = if cells.is_empty() {
            let Some(total) = memory_kib.filter(|&t| t > 0) else {
                return Err(self.node_error(
                    memory_el.unwrap_or(root),
                    None,
                    "no memory size: libvirt needs <memory> or NUMA cells (<cpu><numa><cell memory=...>)",
                ));
            };
            if dev_raw > total {
                return Err(self.node_error(
                    memory_el.unwrap_or(root),
                    Some(&string_value(memory_el.unwrap_or(root))),
                    format!("the memory devices ({}) exceed <memory> ({})", show_kib(dev_raw), show_kib(total)),
                ));
            }
            total - dev_raw
        } else {
            let cells_raw = self.sum(cells.iter().map(|c| c.kib), root)?;
            if let (Some(m), Some(total)) = (memory_el, memory_kib) {
                let implied = cells_raw.saturating_add(dev_raw);
                if total != implied {
                    let value = string_value(m);
                    let pos = self.text_pos(m);
                    let parts = if dev_raw == 0 {
                        format!("the NUMA cells make {}", show_kib(cells_raw))
                    } else {
                        format!(
                            "the NUMA cells ({}) and memory devices ({}) make {}",
                            show_kib(cells_raw),
                            show_kib(dev_raw),
                            show_kib(implied)
                        )
                    };
                    self.warn_at(
                        Self::path(m, None),
                        pos,
                        Some(&value),
                        format!(
                            "<memory> says {}, but {parts}: libvirt takes the cells, and so does this reader",
                            show_kib(total)
                        ),
                    );
                }
            }
            if cells_raw == 0 {
                return Err(self.node_error(
                    cells[0].node,
                    None,
                    "the NUMA cells hold no memory at all: boot memory is the sum of the cells",
                ));
            }
            cells_raw
        };
        let total_raw = initial_raw.saturating_add(dev_raw);

        let max_el = child(root, "maxMemory");
        let (max_kib, slots) = match max_el {
            Some(m) => {
                let Some(max) = self.element_kib(m)? else {
                    return Err(self.node_error(m, None, "<maxMemory> is empty: it needs a size"));
                };
                (Some(max), self.attr_u32(m, "slots")?)
            }
            None => (None, None),
        };
        if let (Some(max), Some(m)) = (max_kib, max_el)
            && max < total_raw
        {
            return Err(self.node_error(
                m,
                Some(&string_value(m)),
                format!("<maxMemory> ({}) is below the guest's memory ({})", show_kib(max), show_kib(total_raw)),
            ));
        }

        // Alignment.
        let align = |r: &Self, kib: u64, to: u64, n: Node| {
            round_up(kib, to)
                .filter(|&k| k < MEMORY_MAX_BYTES / KIB)
                .ok_or_else(|| r.node_error(n, None, "too large once rounded up as libvirt rounds it"))
        };
        let mut cell_kib = Vec::with_capacity(cells.len());
        for c in &cells {
            cell_kib.push(align(&self, c.kib, MEMORY_ALIGN_KIB, c.node)?);
        }
        let initial = if cells.is_empty() {
            align(&self, initial_raw, MEMORY_ALIGN_KIB, memory_el.unwrap_or(root))?
        } else {
            self.sum(cell_kib.iter().copied(), root)?
        };
        let mut dev_kib = Vec::with_capacity(mems.len());
        for m in &mems {
            dev_kib.push(align(&self, m.size_kib, MODULE_ALIGN_KIB, m.node)?);
        }
        let max_aligned = match (max_kib, max_el) {
            (Some(max), Some(m)) => Some(align(&self, max, MEMORY_ALIGN_KIB, m)?),
            _ => None,
        };
        let total = initial.saturating_add(self.sum(dev_kib.iter().copied(), root)?);

        self.check_hotplug(root, &cells, &mems, &dev_kib, initial, max_aligned, slots, max_el)?;

        let current_memory = self.current_memory(root, total, balloon_device.is_some())?;

        // Regions: boot RAM by cell, then the devices in order.
        let merge = !backing.nosharepages;
        let mut regions = Vec::new();
        if cells.is_empty() {
            let spec = MemSpec {
                target_node: None,
                access: Access::Default,
                discard: Tristate::Absent,
                pagesize_kib: 0,
                nvdimm: None,
            };
            let b = self.backend(&backing, &cells, &spec);
            self.warn_backend(&b, &backing, &cells, &spec, None);
            regions.push(region(RegionKind::Boot, None, initial, initial, &b, merge, false));
        } else {
            for (id, (c, &kib)) in cells.iter().zip(&cell_kib).enumerate() {
                // A memory-less cell (CPUs only) has no backend.
                if kib == 0 {
                    continue;
                }
                let id = u32::try_from(id).unwrap_or(u32::MAX);
                let spec = MemSpec {
                    target_node: Some(id),
                    access: Access::Default,
                    discard: Tristate::Absent,
                    pagesize_kib: 0,
                    nvdimm: None,
                };
                let b = self.backend(&backing, &cells, &spec);
                self.warn_backend(&b, &backing, &cells, &spec, Some(c.node));
                regions.push(region(RegionKind::Boot, Some(id), kib, kib, &b, merge, false));
            }
        }
        for (m, &kib) in mems.iter().zip(&dev_kib) {
            let kind = match m.model {
                DevModel::Dimm => RegionKind::Dimm,
                DevModel::Nvdimm => RegionKind::Nvdimm,
                DevModel::VirtioMem => RegionKind::VirtioMem,
                DevModel::VirtioPmem | DevModel::SgxEpc => continue,
            };
            let spec = MemSpec {
                target_node: m.target_node,
                access: m.access,
                discard: m.discard,
                pagesize_kib: m.pagesize_kib,
                nvdimm: (m.model == DevModel::Nvdimm).then_some(m),
            };
            let b = self.backend(&backing, &cells, &spec);
            self.warn_backend(&b, &backing, &cells, &spec, Some(m.node));
            let (size, capacity) = match m.model {
                DevModel::VirtioMem => (m.requested_kib, kib),
                _ => (kib, kib),
            };
            regions.push(region(kind, m.target_node, size, capacity, &b, merge, m.readonly));
        }

        let memory = GuestMemory {
            regions,
            slots: max_aligned.and(slots).filter(|&s| s > 0),
            maxmem: max_aligned.map(kib_size),
            balloon: balloon_device,
            mem_lock: backing.locked,
        };
        Ok(Domain {
            file: self.file.to_string(),
            name,
            virt_type,
            memory,
            current_memory,
            memtune,
            balloon,
            image,
            ovirt_min_guaranteed,
            warnings: self.warnings,
        })
    }

    fn sum(&self, values: impl Iterator<Item = u64>, at: Node) -> Result<u64, ImportError> {
        let mut total: u64 = 0;
        for v in values {
            total = total
                .checked_add(v)
                .filter(|&t| t < MEMORY_MAX_BYTES / KIB)
                .ok_or_else(|| self.node_error(at, None, "the memory sizes add up to more than 8 EiB"))?;
        }
        Ok(total)
    }

    fn check_arch(&mut self, root: Node<'a, 'i>) {
        let Some(ty) = child(root, "os").and_then(|os| child(os, "type")) else {
            return;
        };
        if let Some(arch) = ty.attribute("arch")
            && !matches!(arch, "x86_64" | "i686")
        {
            self.warn_attr(
                ty,
                "arch",
                "not an x86 guest: read with x86-64's rules (4 KiB base pages, 2 MiB and 1 GiB huge pages, cells \
                 rounded to 1 MiB and memory devices to 2 MiB), which other architectures do not share",
            );
        }
    }

    fn memtune(&mut self, root: Node<'a, 'i>) -> Result<Memtune, ImportError> {
        let mut tune = Memtune::default();
        let Some(mt) = child(root, "memtune") else {
            return Ok(tune);
        };
        let limit = |r: &Self, name: &'static str| -> Result<Option<ByteSize>, ImportError> {
            let Some(n) = child(mt, name) else {
                return Ok(None);
            };
            let text = string_value(n);
            if text.is_empty() {
                return Ok(None);
            }
            let unit = n.attribute("unit").unwrap_or("");
            // virDomainParseMemoryLimit: at or above "unlimited" is no limit.
            let kib = scaled_kib(&text, unit, MEMORY_PARAM_UNLIMITED_KIB << 10).map_err(|e| {
                let unit_place = n.attribute("unit").map(|u| (Self::path(n, Some("unit")), r.attr_pos(n, "unit"), u));
                r.size_error(e, Self::path(n, None), r.text_pos(n), &text, unit_place)
            })?;
            Ok((kib < MEMORY_PARAM_UNLIMITED_KIB).then(|| kib_size(kib)))
        };
        tune.hard_limit = limit(self, "hard_limit")?;
        tune.soft_limit = limit(self, "soft_limit")?;
        tune.swap_hard_limit = limit(self, "swap_hard_limit")?;
        tune.min_guarantee = limit(self, "min_guarantee")?;
        if let (Some(g), Some(n)) = (tune.min_guarantee, child(mt, "min_guarantee")) {
            let value = string_value(n);
            let pos = self.text_pos(n);
            self.warn_at(
                Self::path(n, None),
                pos,
                Some(&value),
                format!(
                    "libvirt's QEMU driver refuses min_guarantee (\"not supported by QEMU\") and will not start this \
                     domain as written; its {g} is kept as a floor for the balloon"
                ),
            );
        }
        Ok(tune)
    }

    fn memory_backing(&mut self, root: Node<'a, 'i>) -> Result<Backing<'a, 'i>, ImportError> {
        let mut b = Backing {
            hugepages: Vec::new(),
            nosharepages: false,
            locked: false,
            source: MemSource::Default,
            source_node: None,
            access: Access::Default,
            access_node: None,
            immediate: false,
            discard: Tristate::Absent,
        };
        let Some(mb) = child(root, "memoryBacking") else {
            return Ok(b);
        };
        if let Some(hp) = child(mb, "hugepages") {
            let pages: Vec<_> = children(hp, "page").collect();
            if pages.is_empty() {
                b.hugepages.push(HugePage { size_kib: 0, nodeset: None, node: hp });
            }
            for p in pages {
                let Some(size) = self.attr_kib(p, "size", "unit")? else {
                    return Err(self.node_error(p, None, "<page> has no size: libvirt requires one"));
                };
                if size == 0 {
                    return Err(self.attr_error(p, "size", "a huge page size cannot be zero"));
                }
                let nodeset = match p.attribute("nodeset") {
                    Some(text) => match parse_nodeset(text) {
                        Some(set) if !set.is_empty() => Some(set),
                        Some(_) => return Err(self.attr_error(p, "nodeset", "the nodeset is empty")),
                        None => {
                            return Err(self.attr_error(
                                p,
                                "nodeset",
                                "not a nodeset: libvirt takes node numbers below 1024, ranges (2-3) and exclusions \
                                 (^1), separated by commas",
                            ));
                        }
                    },
                    None => None,
                };
                if size == SYSTEM_PAGE_KIB {
                    self.warn_attr(
                        p,
                        "size",
                        "4 KiB is the base page size: libvirt treats this page as no huge pages at all",
                    );
                } else if !X86_HUGE_PAGES_KIB.contains(&size) {
                    self.warn_attr(
                        p,
                        "size",
                        format!(
                            "an x86-64 host has huge pages of 2 MiB and 1 GiB only, not {}: QEMU would find no \
                             hugetlbfs mount for it; kept as written",
                            kib_size(size)
                        ),
                    );
                }
                b.hugepages.push(HugePage { size_kib: size, nodeset, node: p });
            }
        }
        b.nosharepages = child(mb, "nosharepages").is_some();
        b.locked = child(mb, "locked").is_some();
        if let Some(s) = child(mb, "source") {
            b.source = match self.attr_enum(s, "type", &["file", "anonymous", "memfd"])? {
                Some("file") => MemSource::File,
                Some("anonymous") => MemSource::Anonymous,
                Some(_) => MemSource::Memfd,
                None => MemSource::Default,
            };
            b.source_node = Some(s);
        }
        if let Some(a) = child(mb, "access") {
            b.access = self.access_attr(a, "mode")?;
            b.access_node = Some(a);
        }
        if let Some(a) = child(mb, "allocation") {
            b.immediate = self.attr_enum(a, "mode", &["immediate", "ondemand"])? == Some("immediate");
            self.attr_u32(a, "threads")?;
        }
        if let Some(d) = child(mb, "discard") {
            b.discard = Tristate::Yes;
            self.warn_node(d, None, DISCARD_WARNING);
        }
        Ok(b)
    }

    fn cells(&mut self, root: Node<'a, 'i>) -> Result<Vec<Cell<'a, 'i>>, ImportError> {
        let Some(numa) = child(root, "cpu").and_then(|c| child(c, "numa")) else {
            return Ok(Vec::new());
        };
        let nodes: Vec<_> = children(numa, "cell").collect();
        let mut cells: Vec<Option<Cell>> = nodes.iter().map(|_| None).collect();
        for (i, &n) in nodes.iter().enumerate() {
            let id = match self.attr_u32(n, "id")? {
                Some(id) => id as usize,
                None => i,
            };
            if id >= nodes.len() {
                return Err(self.attr_error(
                    n,
                    "id",
                    format!(
                        "cell ids must run from 0 to {} without gaps (one <cell> per guest NUMA node)",
                        nodes.len() - 1
                    ),
                ));
            }
            if cells[id].is_some() {
                return Err(self.attr_error(n, "id", "a second <cell> with this id"));
            }
            let Some(kib) = self.attr_kib(n, "memory", "unit")? else {
                return Err(self.node_error(n, None, "the cell has no `memory`: libvirt requires one"));
            };
            let access = self.access_attr(n, "memAccess")?;
            let discard = self.discard_attr(n)?;
            if discard == Tristate::Yes {
                self.warn_attr(n, "discard", DISCARD_WARNING);
            }
            cells[id] = Some(Cell { kib, access, discard, node: n });
        }
        Ok(cells.into_iter().flatten().collect())
    }

    fn memory_device(&mut self, m: Node<'a, 'i>, ncells: usize) -> Result<MemDev<'a, 'i>, ImportError> {
        let model = match self.attr_enum(m, "model", &["dimm", "nvdimm", "virtio-pmem", "virtio-mem", "sgx-epc"])? {
            Some("dimm") => DevModel::Dimm,
            Some("nvdimm") => DevModel::Nvdimm,
            Some("virtio-pmem") => DevModel::VirtioPmem,
            Some("virtio-mem") => DevModel::VirtioMem,
            Some(_) => DevModel::SgxEpc,
            None => return Err(self.node_error(m, None, "a memory device needs a `model`")),
        };
        let access = self.access_attr(m, "access")?;
        let discard = self.discard_attr(m)?;
        if discard == Tristate::Yes {
            self.warn_attr(m, "discard", DISCARD_WARNING);
        }
        let Some(target) = child(m, "target") else {
            return Err(self.node_error(m, None, "a memory device needs a <target> with its <size>"));
        };
        let size_kib = self.required_child_kib(target, "size")?;
        let target_node = match child(target, "node") {
            Some(n) => {
                let text = string_value(n);
                let id = parse_ull(&text)
                    .ok()
                    .and_then(|x| u32::try_from(x).ok())
                    .ok_or_else(|| self.node_error(n, Some(&text), "not a guest NUMA node number"))?;
                if id as usize >= ncells {
                    return Err(self.node_error(
                        n,
                        Some(&text),
                        format!("the guest has {ncells} NUMA cell(s): no node {id} to put this memory in"),
                    ));
                }
                Some(id)
            }
            None => None,
        };
        let source = child(m, "source");
        let pagesize_kib = match source.and_then(|s| child(s, "pagesize")) {
            Some(p) => self.element_kib(p)?.unwrap_or(0),
            None => 0,
        };
        if let Some(mask) = source.and_then(|s| child(s, "nodemask")) {
            let text = string_value(mask);
            self.warn_node(
                mask,
                Some(&text),
                "host NUMA binding of this device's memory: the model has one host memory pool, so where on the \
                 host it lives is not simulated",
            );
        }
        let path = source.and_then(|s| child(s, "path")).map(|p| string_value(p).trim().to_string());
        let pmem = source.and_then(|s| child(s, "pmem")).is_some();
        let readonly = child(target, "readonly").is_some();
        let mut requested_kib = size_kib;
        match model {
            DevModel::Nvdimm => {
                let Some(p) = path.as_deref().filter(|p| !p.is_empty()) else {
                    return Err(self.node_error(m, None, "an nvdimm needs <source><path>: the host file behind it"));
                };
                let what = if pmem { "real persistent memory (pmem)" } else { "a host file" };
                self.warn_node(
                    m,
                    Some("nvdimm"),
                    format!(
                        "an nvdimm is persistent memory backed by {what} ({p}), not RAM the guest allocates from: \
                         it is kept as a region but takes no anonymous host memory, and its page cache use is not \
                         simulated"
                    ),
                );
            }
            DevModel::VirtioMem => {
                let block = self.required_child_kib(target, "block")?;
                requested_kib = self.required_child_kib(target, "requested")?;
                let block_el = child(target, "block").unwrap_or(target);
                if !block.is_power_of_two() {
                    return Err(self.node_error(
                        block_el,
                        Some(&string_value(block_el)),
                        "the block size must be a power of two",
                    ));
                }
                if size_kib % block != 0 {
                    return Err(self.node_error(
                        child(target, "size").unwrap_or(target),
                        None,
                        format!("the size must be a whole number of blocks ({})", show_kib(block)),
                    ));
                }
                let req_el = child(target, "requested").unwrap_or(target);
                if requested_kib % block != 0 {
                    return Err(self.node_error(
                        req_el,
                        Some(&string_value(req_el)),
                        format!("the requested size must be a whole number of blocks ({})", show_kib(block)),
                    ));
                }
                if requested_kib > size_kib {
                    return Err(self.node_error(
                        req_el,
                        Some(&string_value(req_el)),
                        format!("more is requested than the device holds ({})", show_kib(size_kib)),
                    ));
                }
            }
            DevModel::VirtioPmem => {
                self.warn_node(
                    m,
                    Some("virtio-pmem"),
                    "virtio-pmem is persistent memory backed by a host file, not guest RAM: not modelled",
                );
            }
            DevModel::SgxEpc => {
                self.warn_node(m, Some("sgx-epc"), "SGX enclave page cache: not guest RAM, not modelled");
            }
            DevModel::Dimm => {}
        }
        if let Some(a) = child(m, "address") {
            self.warn_node(
                a,
                a.attribute("type"),
                "where the device sits in the guest (slot, base address, PCI address) does not change how much \
                 memory it takes: ignored",
            );
        }
        if let Some(a) = child(target, "address") {
            self.warn_node(a, a.attribute("base"), "the device's guest physical base address: ignored");
        }
        Ok(MemDev {
            node: m,
            model,
            access,
            discard,
            size_kib,
            target_node,
            pagesize_kib,
            pmem,
            readonly,
            requested_kib,
        })
    }

    fn memballoon(&mut self, devices: Option<Node<'a, 'i>>) -> Result<(Option<BalloonDevice>, Balloon), ImportError> {
        let Some(mb) = devices.and_then(|d| child(d, "memballoon")) else {
            // qemuDomainDefAddDefaultDevices: a QEMU guest without one gets
            // a virtio balloon.
            return Ok((Some(BalloonDevice::default()), Balloon { model: "virtio".into(), stats_period: None }));
        };
        let model =
            self.attr_enum(mb, "model", &["virtio", "virtio-transitional", "virtio-non-transitional", "none", "xen"])?;
        let Some(model) = model else {
            return Err(self.node_error(mb, None, "<memballoon> needs a `model` (virtio or none)"));
        };
        if model == "xen" {
            return Err(self.attr_error(mb, "model", "a Xen balloon cannot be given to a QEMU guest"));
        }
        let on_off = |r: &Self, attr: &str| -> Result<bool, ImportError> {
            Ok(r.attr_enum(mb, attr, &["on", "off"])? == Some("on"))
        };
        let deflate_on_oom = on_off(self, "autodeflate")?;
        let free_page_reporting = on_off(self, "freePageReporting")?;
        let stats_period = match child(mb, "stats") {
            Some(s) => self.attr_u32(s, "period")?,
            None => None,
        };
        let device = (model != "none").then_some(BalloonDevice { deflate_on_oom, free_page_reporting });
        Ok((device, Balloon { model: model.to_string(), stats_period }))
    }

    /// Devices that take host memory outside guest RAM.
    fn other_host_memory(&mut self, devices: Node<'a, 'i>) {
        for s in children(devices, "shmem") {
            let size = child(s, "size").map(|z| {
                let unit = z.attribute("unit").unwrap_or("B");
                format!("{}{unit}", string_value(z).trim())
            });
            let size = size.unwrap_or_else(|| "4M (the default)".into());
            self.warn_node(
                s,
                s.attribute("name"),
                format!("ivshmem shared memory of {size} on the host (/dev/shm): not guest RAM, not modelled"),
            );
        }
        for p in children(devices, "pstore") {
            self.warn_node(
                p,
                p.attribute("backend"),
                "a pstore is a small file-backed memory backend for crash logs: not guest RAM, not modelled",
            );
        }
    }

    fn numatune(&mut self, root: Node<'a, 'i>) {
        let Some(nt) = child(root, "numatune") else {
            return;
        };
        for n in nt.children().filter(|c| c.is_element()) {
            let describe = ["mode", "nodeset", "placement", "cellid"]
                .iter()
                .filter_map(|a| n.attribute(*a).map(|v| format!("{a}={v}")))
                .collect::<Vec<_>>()
                .join(" ");
            let value = (!describe.is_empty()).then_some(describe);
            self.warn_node(
                n,
                value.as_deref(),
                "host NUMA binding: the model has one host memory pool, so which host node the guest's memory \
                 comes from is not simulated",
            );
        }
    }

    /// `<qemu:commandline>` and `<qemu:override>`: arguments libvirt passes
    /// to QEMU unread; they may change memory behind the XML's back.
    fn passthrough(&mut self, root: Node<'a, 'i>) {
        for n in root.children().filter(|c| c.is_element() && c.tag_name().namespace() == Some(QEMU_NS)) {
            self.warn_node(
                n,
                None,
                "QEMU arguments passed through unread: if they touch memory (-m, -object memory-backend-*, \
                 -overcommit, -machine mem-merge), the plan will not know",
            );
        }
    }

    fn ovirt_guaranteed(&self, root: Node<'a, 'i>) -> Result<Option<ByteSize>, ImportError> {
        let Some(md) = child(root, "metadata") else {
            return Ok(None);
        };
        let vms = md
            .children()
            .filter(|c| c.is_element() && c.tag_name().namespace() == Some(OVIRT_VM_NS) && c.tag_name().name() == "vm");
        for vm in vms {
            // The engine writes it in the ovirt-vm namespace; older engines
            // wrote it unqualified inside <ovirt-vm:vm>.
            let found = vm.children().find(|c| {
                c.is_element()
                    && c.tag_name().name() == "minGuaranteedMemoryMb"
                    && matches!(c.tag_name().namespace(), None | Some(OVIRT_VM_NS))
            });
            if let Some(g) = found {
                let text = string_value(g);
                let mib = text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .and_then(|m| m.checked_mul(1 << 20))
                    .filter(|&b| b < MEMORY_MAX_BYTES);
                return match mib {
                    Some(bytes) => Ok(Some(ByteSize(bytes))),
                    None => {
                        Err(self.node_error(g, Some(&text), "oVirt's guaranteed memory must be a whole number of MiB"))
                    }
                };
            }
        }
        Ok(None)
    }

    /// `virDomainDefMemtuneValidate`'s huge page rules.
    fn check_hugepages(&self, b: &Backing<'a, 'i>, ncells: usize) -> Result<(), ImportError> {
        for (i, p) in b.hugepages.iter().enumerate() {
            for q in &b.hugepages[..i] {
                match (&p.nodeset, &q.nodeset) {
                    (Some(a), Some(c)) if !a.is_disjoint(c) => {
                        return Err(self.attr_error(
                            p.node,
                            "nodeset",
                            "overlaps another <page>'s nodeset: each node gets one huge page size",
                        ));
                    }
                    (None, None) => {
                        return Err(self.node_error(
                            p.node,
                            None,
                            "a second <page> without nodeset: only one page size can be the default for all nodes",
                        ));
                    }
                    _ => {}
                }
            }
            if let Some(set) = &p.nodeset
                && let Some(&missing) = set.iter().find(|&&n| n as usize >= ncells)
            {
                return Err(self.attr_error(
                    p.node,
                    "nodeset",
                    format!("names guest NUMA node {missing}, but the guest has {ncells} cell(s)"),
                ));
            }
        }
        Ok(())
    }

    /// libvirt's memory hotplug rules (`qemuDomainDefValidateMemoryHotplug`).
    #[allow(clippy::too_many_arguments)]
    fn check_hotplug(
        &mut self,
        root: Node<'a, 'i>,
        cells: &[Cell<'a, 'i>],
        mems: &[MemDev<'a, 'i>],
        dev_kib: &[u64],
        initial: u64,
        max: Option<u64>,
        slots: Option<u32>,
        max_el: Option<Node<'a, 'i>>,
    ) -> Result<(), ImportError> {
        let (Some(max), Some(max_el)) = (max, max_el) else {
            if let Some(m) = mems.first() {
                return Err(self.node_error(
                    m.node,
                    None,
                    "a memory device needs <maxMemory>: libvirt refuses memory devices without hotplug room",
                ));
            }
            return Ok(());
        };
        if cells.is_empty() {
            return Err(self.node_error(
                max_el,
                None,
                "memory hotplug needs guest NUMA cells: libvirt requires at least one <cell> with <maxMemory>",
            ));
        }
        let slotted = mems.iter().filter(|m| matches!(m.model, DevModel::Dimm | DevModel::Nvdimm)).count();
        let slots_n = slots.unwrap_or(0) as usize;
        if slotted > slots_n {
            return Err(self.node_error(
                max_el,
                None,
                format!("{slotted} DIMM/NVDIMM device(s) need memory slots, but <maxMemory slots> gives {slots_n}"),
            ));
        }
        let plugged = self.sum(dev_kib.iter().copied(), root)?;
        let room = max.saturating_sub(initial);
        if plugged > room {
            return Err(self.node_error(
                max_el,
                Some(&string_value(max_el)),
                format!(
                    "the memory devices ({}) do not fit in the hotplug room <maxMemory> leaves above boot memory ({})",
                    show_kib(plugged),
                    show_kib(room)
                ),
            ));
        }
        let value = string_value(max_el);
        let pos = self.text_pos(max_el);
        self.warn_at(
            Self::path(max_el, None),
            pos,
            Some(&value),
            format!(
                "hotplug room up to {}: only what is plugged takes host memory, so the {} not yet plugged is not \
                 modelled",
                kib_size(max),
                kib_size(room - plugged)
            ),
        );
        Ok(())
    }

    fn current_memory(
        &mut self,
        root: Node<'a, 'i>,
        total: u64,
        balloon: bool,
    ) -> Result<Option<ByteSize>, ImportError> {
        let Some(cm) = child(root, "currentMemory") else {
            return Ok(None);
        };
        let Some(kib) = self.element_kib(cm)? else {
            return Ok(None);
        };
        let value = string_value(cm);
        let pos = self.text_pos(cm);
        if kib == 0 || kib > total {
            // virDomainDefPostParseMemory: 0 or more than the guest has is
            // all of it.
            self.warn_at(
                Self::path(cm, None),
                pos,
                Some(&value),
                format!(
                    "<currentMemory> of {} is taken as all of the guest's {}, as libvirt does",
                    show_kib(kib),
                    kib_size(total)
                ),
            );
            return Ok(Some(kib_size(total)));
        }
        if kib < total && !balloon {
            self.warn_at(
                Self::path(cm, None),
                pos,
                Some(&value),
                format!(
                    "<currentMemory> is below the guest's {} but there is no balloon to hold the rest back: the \
                     guest gets all of it",
                    kib_size(total)
                ),
            );
        }
        Ok(Some(kib_size(kib)))
    }

    // -- backends ----------------------------------------------------------

    /// `qemuBuildMemoryGetPagesize` and `qemuBuildMemoryBackendProps`: the
    /// backend libvirt builds for a cell, boot RAM or a device.
    fn backend(&self, b: &Backing<'a, 'i>, cells: &[Cell<'a, 'i>], spec: &MemSpec) -> Backend {
        let mut access = spec.access;
        let mut discard = spec.discard;
        if let Some(cell) = spec.target_node.and_then(|n| cells.get(n as usize)) {
            if access == Access::Default {
                access = cell.access;
            }
            if discard == Tristate::Absent {
                discard = cell.discard;
            }
        }
        if access == Access::Default {
            access = b.access;
        }
        if discard == Tristate::Absent {
            discard = b.discard;
        }

        let (mut pagesize, mut use_huge) = (spec.pagesize_kib, spec.pagesize_kib != 0);
        if pagesize == 0 {
            let mut master = None;
            let mut chosen = None;
            for hp in &b.hugepages {
                match (&hp.nodeset, spec.target_node) {
                    (None, _) => master = Some(hp),
                    (Some(set), Some(node)) if set.contains(&node) => {
                        chosen = Some(hp);
                        break;
                    }
                    _ => {}
                }
            }
            if let Some(hp) = chosen.or(master) {
                pagesize = hp.size_kib;
                use_huge = true;
            }
        }
        if pagesize == SYSTEM_PAGE_KIB {
            pagesize = 0;
            use_huge = false;
        }
        let huge = Pages::Huge((pagesize != 0).then(|| kib_size(pagesize)));

        let mut prealloc = b.immediate;
        if let Some(dev) = spec.nvdimm {
            if !dev.pmem {
                prealloc = true;
            }
        } else if use_huge {
            prealloc = true;
        }

        let nvdimm = spec.nvdimm.is_some();
        if !nvdimm && b.source == MemSource::Memfd {
            // memory-backend-memfd: shared unless told otherwise.
            Backend {
                source: Source::Memfd,
                pages: if use_huge { huge } else { Pages::Small },
                prealloc,
                share: access != Access::Private,
                discard: false,
                plain_file: false,
            }
        } else if use_huge || nvdimm || access != Access::Default || b.source == MemSource::File {
            Backend {
                source: Source::File,
                pages: if use_huge && !nvdimm { huge } else { Pages::Small },
                prealloc,
                share: access == Access::Shared,
                discard: !nvdimm && discard == Tristate::Yes,
                plain_file: !use_huge && !nvdimm,
            }
        } else {
            Backend {
                source: Source::Anonymous,
                pages: Pages::Small,
                prealloc,
                share: false,
                discard: false,
                plain_file: false,
            }
        }
    }

    /// Warn about guest RAM on a plain file, naming what put it there.
    fn warn_backend(
        &mut self,
        backend: &Backend,
        b: &Backing<'a, 'i>,
        cells: &[Cell<'a, 'i>],
        spec: &MemSpec,
        owner: Option<Node<'a, 'i>>,
    ) {
        if !backend.plain_file {
            return;
        }
        if b.source == MemSource::File
            && let Some(s) = b.source_node
        {
            self.warn_attr(
                s,
                "type",
                "guest RAM in a file under libvirt's memory_backing_dir: the host holds it as page cache of that \
                 file, which the model does not simulate (it is modelled as ordinary guest memory)",
            );
            return;
        }
        // An explicit access mode: the device's, the cell's or the domain's.
        let cell = spec.target_node.and_then(|n| cells.get(n as usize));
        let (node, attr) = if spec.access != Access::Default {
            (owner, "access")
        } else if let Some(c) = cell.filter(|c| c.access != Access::Default) {
            (Some(c.node), "memAccess")
        } else {
            (b.access_node, "mode")
        };
        if let Some(n) = node {
            self.warn_attr(
                n,
                attr,
                "an explicit access mode without huge pages or memfd makes libvirt back this memory with a file \
                 under memory_backing_dir: the host holds it as page cache, which the model does not simulate",
            );
        }
    }
}

const DISCARD_WARNING: &str = "discard only reaches file-backed memory (discard-data=on: the file's pages are dropped \
     when QEMU exits instead of being written back); guest shutdown is not simulated";

fn one_of(allowed: &[&str]) -> String {
    match allowed {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(|a| format!("`{a}`")).collect();
            format!("{} or `{last}`", rest.join(", "))
        }
    }
}

fn region(
    kind: RegionKind,
    node: Option<u32>,
    size_kib: u64,
    capacity_kib: u64,
    b: &Backend,
    merge: bool,
    readonly: bool,
) -> Region {
    Region {
        kind,
        node,
        size: kib_size(size_kib),
        capacity: kib_size(capacity_kib),
        source: b.source,
        pages: b.pages,
        prealloc: b.prealloc,
        share: b.share,
        merge,
        discard: b.discard,
        readonly,
    }
}

/// The first `<disk device='disk'>`'s base image: the deepest
/// `<backingStore>` with a source, else the disk's own source.
fn base_image(devices: Node) -> Option<String> {
    let disk = children(devices, "disk").find(|d| d.attribute("device").unwrap_or("disk") == "disk")?;
    let mut image = disk_source(disk);
    let mut cur = disk;
    while let Some(bs) = child(cur, "backingStore") {
        if let Some(s) = disk_source(bs) {
            image = Some(s);
        }
        cur = bs;
    }
    image
}

/// `<source file|dev|volume|name>`; a volume is named with its pool.
fn disk_source(n: Node) -> Option<String> {
    let s = child(n, "source")?;
    if let Some(v) = s.attribute("file").or(s.attribute("dev")) {
        return Some(v.to_string());
    }
    if let Some(v) = s.attribute("volume") {
        return Some(match s.attribute("pool") {
            Some(pool) => format!("{pool}/{v}"),
            None => v.to_string(),
        });
    }
    s.attribute("name").map(str::to_string)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::time::{Duration, Instant};

    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// libvirt's own test inputs (`tests/qemuxmlconfdata/` of libvirt),
    /// beside the project; `None` where they are not.
    fn testdata() -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/libvirt-testdata");
        if dir.is_dir() {
            Some(dir)
        } else {
            eprintln!("skipped: {} is absent", dir.display());
            None
        }
    }

    /// A domain around `body` (which goes inside `<domain>`).
    fn xml(body: &str) -> String {
        format!("<domain type='kvm'>\n  <name>g</name>\n{body}\n</domain>\n")
    }

    fn read(body: &str) -> Domain {
        read_domain(&xml(body), "t.xml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn fails(body: &str) -> ImportError {
        match read_domain(&xml(body), "t.xml") {
            Ok(d) => panic!("expected an error, read {:?}", d.memory),
            Err(e) => e,
        }
    }

    fn warning<'d>(d: &'d Domain, element: &str) -> &'d Warning {
        d.warnings
            .iter()
            .find(|w| w.element == element)
            .unwrap_or_else(|| panic!("no warning on {element}: {:#?}", d.warnings))
    }

    fn anonymous(kind: RegionKind, node: Option<u32>, bytes: u64) -> Region {
        Region {
            kind,
            node,
            size: ByteSize(bytes),
            capacity: ByteSize(bytes),
            source: Source::Anonymous,
            pages: Pages::Small,
            prealloc: false,
            share: false,
            merge: true,
            discard: false,
            readonly: false,
        }
    }

    fn huge_file(node: Option<u32>, bytes: u64, page: Option<u64>) -> Region {
        Region {
            source: Source::File,
            pages: Pages::Huge(page.map(ByteSize)),
            prealloc: true,
            ..anonymous(RegionKind::Boot, node, bytes)
        }
    }

    // -- units ---------------------------------------------------------------

    /// formatdomain.rst, "Memory Allocation", and virScaleInteger: every
    /// unit libvirt names, in the cases it takes.
    #[test]
    fn units_as_libvirt_scales_them() {
        let cases: &[(&str, u64)] = &[
            ("", 1024),
            ("b", 1),
            ("B", 1),
            ("bytes", 1),
            ("byte", 1),
            ("KB", 1000),
            ("kB", 1000),
            ("k", 1024),
            ("K", 1024),
            ("KiB", 1024),
            ("kib", 1024),
            ("MB", 1_000_000),
            ("M", MIB),
            ("MiB", MIB),
            ("GB", 1_000_000_000),
            ("G", GIB),
            ("GiB", GIB),
            ("TB", 1_000_000_000_000),
            ("T", 1 << 40),
            ("TiB", 1 << 40),
            ("PB", 1_000_000_000_000_000),
            ("P", 1 << 50),
            ("PiB", 1 << 50),
            ("EB", 1_000_000_000_000_000_000),
            ("E", 1 << 60),
            ("EiB", 1 << 60),
        ];
        for &(unit, scale) in cases {
            assert_eq!(unit_scale(unit, KIB), Some(scale), "unit {unit:?}");
        }
        for bad in ["Ki", "KiBs", "x", "kbit", "iB", "MBB", "µ", "Q", "bits"] {
            assert_eq!(unit_scale(bad, KIB), None, "unit {bad:?}");
        }
    }

    /// Sizes are KiB inside libvirt: a byte count rounds up to whole KiB.
    #[test]
    fn sizes_round_up_to_kib() {
        assert!(matches!(memory_kib("1", "b"), Ok(1)));
        assert!(matches!(memory_kib("1025", "bytes"), Ok(2)));
        // 1 MB = 1,000,000 bytes = 976.5625 KiB -> 977 KiB.
        assert!(matches!(memory_kib("1", "MB"), Ok(977)));
        assert!(matches!(memory_kib(" 42", ""), Ok(42)));
        assert!(matches!(memory_kib("+42", "KiB"), Ok(42)));
        // 7 EiB fits below 2^63 bytes; 8 EiB does not.
        assert!(matches!(memory_kib("7", "EiB"), Ok(k) if k == 7 << 50));
        assert!(matches!(memory_kib("8", "EiB"), Err(SizeError::TooLarge)));
        assert!(matches!(memory_kib("99999999999999999999", ""), Err(SizeError::TooLarge)));
        assert!(matches!(memory_kib("-1", ""), Err(SizeError::Negative)));
        assert!(matches!(memory_kib("4G", ""), Err(SizeError::NotANumber)));
        assert!(matches!(memory_kib("1.5", "GiB"), Err(SizeError::NotANumber)));
        assert!(matches!(memory_kib("0x10", ""), Err(SizeError::NotANumber)));
        // virStrToLong_ullp: trailing characters, even spaces, are refused.
        assert!(matches!(memory_kib("1024 ", ""), Err(SizeError::NotANumber)));
        assert!(matches!(memory_kib("1", "parsecs"), Err(SizeError::UnknownUnit)));
    }

    #[test]
    fn memory_in_every_unit_form() {
        let d = read("<memory unit='GiB'>4</memory>");
        assert_eq!(d.memory.boot_bytes(), 4 * GIB);
        let d = read("<memory unit='G'>4</memory>");
        assert_eq!(d.memory.boot_bytes(), 4 * GIB);
        let d = read("<memory>4194304</memory>");
        assert_eq!(d.memory.boot_bytes(), 4 * GIB);
        let d = read("<memory unit='bytes'>4294967296</memory>");
        assert_eq!(d.memory.boot_bytes(), 4 * GIB);
        // 4 GB = 4e9 bytes = 3906250 KiB, rounded up to 3815 MiB as
        // qemuDomainAlignMemorySizes does.
        let d = read("<memory unit='GB'>4</memory>");
        assert_eq!(d.memory.boot_bytes(), 3815 * MIB);
        // memtune limits are not aligned: 1 MB is 977 KiB.
        let d = read("<memory unit='GiB'>1</memory><memtune><hard_limit unit='MB'>1</hard_limit></memtune>");
        assert_eq!(d.memtune.hard_limit, Some(ByteSize(977 * 1024)));
    }

    #[test]
    fn bad_sizes_name_the_place_and_value() {
        let e = fails("  <memory unit='KiB'>-4</memory>");
        assert_eq!((e.element.as_str(), e.line, e.column), ("domain/memory", 3, 22));
        assert_eq!(e.value.as_deref(), Some("-4"));
        assert!(e.message.contains("negative"), "{e}");

        let e = fails("  <memory unit='KiB'>four</memory>");
        assert_eq!(e.value.as_deref(), Some("four"));
        assert!(e.message.contains("not a size"), "{e}");

        // An unknown unit points at the unit attribute.
        let e = fails("  <memory unit='Kib2'>4</memory>");
        assert_eq!((e.element.as_str(), e.line, e.column), ("domain/memory/@unit", 3, 17));
        assert_eq!(e.value.as_deref(), Some("Kib2"));
        assert!(e.message.contains("unknown unit"), "{e}");

        let e = fails("  <memory unit='EiB'>9</memory>");
        assert!(e.message.contains("too large"), "{e}");

        let e = fails("<memory>1048576</memory><cpu><numa><cell id='0' cpus='0' memory='1' unit='GiBs'/></numa></cpu>");
        assert_eq!(e.element, "domain/cpu/numa/cell/@unit");
        assert_eq!(e.value.as_deref(), Some("GiBs"));

        let e = fails("<memory>1048576</memory><memtune><hard_limit>lots</hard_limit></memtune>");
        assert_eq!(e.element, "domain/memtune/hard_limit");
        assert_eq!(e.file, "t.xml");
        // The rendering carries all of it.
        let shown = e.to_string();
        assert!(shown.starts_with("t.xml:3:"), "{shown}");
        assert!(shown.contains("domain/memtune/hard_limit \"lots\""), "{shown}");
    }

    /// The reader's own line index counts as roxmltree does, multi-byte
    /// characters included.
    #[test]
    fn positions_match_roxmltrees() {
        let text = "<domain type='kvm'>\n  <name>gäst-\u{1F600}</name>\n\t<memory unit='KiB'>1</memory>\n</domain>";
        let doc = Document::parse(text).unwrap();
        let reader = Reader { doc: &doc, file: "p.xml", warnings: Vec::new(), line_starts: OnceCell::new() };
        for offset in 0..=text.len() {
            if !text.is_char_boundary(offset) {
                continue;
            }
            let p = doc.text_pos_at(offset);
            assert_eq!(reader.pos(offset), (p.row, p.col), "offset {offset}");
            assert_eq!(line_column(text, offset), (p.row, p.col), "offset {offset}");
        }
    }

    // -- bad documents ------------------------------------------------------

    #[test]
    fn malformed_xml_gives_roxmltree_position() {
        let e = read_domain("<domain type='kvm'>\n  <name>g</name>\n  <memory>1</memory\n</domain>", "bad.xml")
            .unwrap_err();
        assert_eq!(e.file, "bad.xml");
        assert_eq!(e.line, 4);
        assert!(e.message.starts_with("malformed XML"), "{e}");
        let e = read_domain("", "empty.xml").unwrap_err();
        assert!(e.message.starts_with("malformed XML"), "{e}");
    }

    #[test]
    fn root_must_be_a_qemu_domain() {
        let e = read_domain("<network><name>n</name></network>", "n.xml").unwrap_err();
        assert!(e.message.contains("<network>"), "{e}");
        let e = read_domain("<domain type='xen'><name>g</name><memory>1024</memory></domain>", "x.xml").unwrap_err();
        assert_eq!(e.element, "domain/@type");
        assert_eq!(e.value.as_deref(), Some("xen"));
        assert!(e.message.contains("type='xen'"), "{e}");
        let e = read_domain("<domain><name>g</name><memory>1024</memory></domain>", "x.xml").unwrap_err();
        assert!(e.message.contains("no `type`"), "{e}");
        let e = read_domain("<domain type='qemu'><memory>1024</memory></domain>", "x.xml").unwrap_err();
        assert!(e.message.contains("<name>"), "{e}");
        let d = read_domain("<domain type='qemu'><name>g</name><memory>1024</memory></domain>", "x.xml").unwrap();
        assert_eq!(d.virt_type, VirtType::Qemu);
    }

    /// roxmltree with a DTD allowed already stops both with
    /// `EntityReferenceLoop`; the reader does not allow a DTD at all, so
    /// neither gets that far. Either way: an error, at once.
    #[test]
    fn entity_bombs_fail_fast_and_cleanly() {
        let mut laughs = String::from("<?xml version='1.0'?>\n<!DOCTYPE domain [\n <!ENTITY l0 'lol'>\n");
        for i in 1..10 {
            let prev = format!("&l{};", i - 1);
            laughs.push_str(&format!(" <!ENTITY l{i} '{}'>\n", prev.repeat(10)));
        }
        laughs.push_str("]>\n<domain type='kvm'><name>&l9;</name><memory>1024</memory></domain>\n");
        let looped = "<!DOCTYPE domain [ <!ENTITY a '&b;'> <!ENTITY b '&a;'> ]>\n\
                      <domain type='kvm'><name>&a;</name><memory>1024</memory></domain>";
        for (text, what) in [(laughs.as_str(), "billion laughs"), (looped, "entity loop")] {
            let start = Instant::now();
            let e = read_domain(text, "bomb.xml").unwrap_err();
            assert!(start.elapsed() < Duration::from_secs(1), "{what} took {:?}", start.elapsed());
            assert!(e.message.contains("document type declaration"), "{what}: {e}");
            assert!(e.line >= 1, "{what}: {e}");
        }
        // The line of the declaration, not 1:1 regardless.
        let e = read_domain("<?xml version='1.0'?>\n<!DOCTYPE domain>\n<domain/>", "d.xml").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
    }

    #[test]
    fn refusals_libvirt_makes() {
        // No size at all.
        let e = fails("");
        assert!(e.message.contains("no memory size"), "{e}");
        // An enum value libvirt does not know, with the ones it does.
        let e = fails("<memory>1048576</memory><memoryBacking><access mode='sharde'/></memoryBacking>");
        assert_eq!(e.element, "domain/memoryBacking/access/@mode");
        assert!(e.message.contains("`shared` or `private`"), "{e}");
        // Cell ids must be 0..n-1.
        let e =
            fails("<cpu><numa><cell id='0' cpus='0' memory='1024'/><cell id='2' cpus='1' memory='1024'/></numa></cpu>");
        assert_eq!(e.value.as_deref(), Some("2"));
        // A page nodeset naming a cell that is not there.
        let e = fails(
            "<memoryBacking><hugepages><page size='2' unit='M' nodeset='0-1'/></hugepages></memoryBacking>\
             <cpu><numa><cell id='0' cpus='0' memory='1048576'/></numa></cpu>",
        );
        assert!(e.message.contains("node 1"), "{e}");
        // Two default page sizes.
        let e = fails(
            "<memory>1048576</memory><memoryBacking><hugepages><page size='2' unit='M'/><page size='1' \
             unit='G'/></hugepages></memoryBacking>",
        );
        assert!(e.message.contains("second <page>"), "{e}");
        // A memory device without hotplug room.
        let e = fails(
            "<cpu><numa><cell id='0' cpus='0' memory='1048576'/></numa></cpu><devices><memory \
             model='dimm'><target><size unit='MiB'>512</size><node>0</node></target></memory></devices>",
        );
        assert!(e.message.contains("<maxMemory>"), "{e}");
        // maxMemory below memory.
        let e = fails(
            "<maxMemory slots='2' unit='GiB'>1</maxMemory><memory unit='GiB'>2</memory>\
             <cpu><numa><cell id='0' cpus='0' memory='2' unit='GiB'/></numa></cpu>",
        );
        assert!(e.message.contains("below"), "{e}");
        // virtio-mem asking for more than it holds.
        let e = fails(
            "<maxMemory unit='GiB'>8</maxMemory><cpu><numa><cell id='0' cpus='0' memory='1' unit='GiB'/></numa></cpu>\
             <devices><memory model='virtio-mem'><target><size unit='GiB'>1</size><node>0</node>\
             <block unit='MiB'>2</block><requested unit='GiB'>2</requested></target></memory></devices>",
        );
        assert_eq!(e.element, "domain/devices/memory/target/requested");
        // A device on a node the guest has not.
        let e = fails(
            "<maxMemory slots='2' unit='GiB'>8</maxMemory><cpu><numa><cell id='0' cpus='0' memory='1' \
             unit='GiB'/></numa></cpu><devices><memory model='dimm'><target><size unit='GiB'>1</size>\
             <node>3</node></target></memory></devices>",
        );
        assert!(e.message.contains("no node 3"), "{e}");
        // The balloon of another hypervisor.
        let e = fails("<memory>1048576</memory><devices><memballoon model='xen'/></devices>");
        assert_eq!(e.element, "domain/devices/memballoon/@model");
    }

    /// A domain touching most of what the reader looks at, for the
    /// no-panic properties below.
    const RICH: &str = "<domain type='kvm'><name>g</name><maxMemory slots='4' unit='GiB'>16</maxMemory>\
        <memory unit='GiB'>4</memory><currentMemory unit='GiB'>3</currentMemory>\
        <memtune><hard_limit unit='GiB'>8</hard_limit><min_guarantee unit='GiB'>1</min_guarantee></memtune>\
        <memoryBacking><hugepages><page size='2048' unit='KiB' nodeset='0'/><page size='1' unit='G' nodeset='1'/>\
        </hugepages><access mode='shared'/><allocation mode='immediate' threads='2'/><discard/></memoryBacking>\
        <numatune><memory mode='strict' nodeset='0-1'/></numatune>\
        <cpu><numa><cell id='0' cpus='0' memory='2' unit='GiB' memAccess='private'/>\
        <cell id='1' cpus='1' memory='2' unit='GiB' discard='yes'/></numa></cpu>\
        <devices><disk type='file' device='disk'><source file='/a.qcow2'/><backingStore type='file'>\
        <source file='/b.qcow2'/></backingStore></disk>\
        <memballoon model='virtio' autodeflate='on'><stats period='5'/></memballoon>\
        <memory model='dimm'><source><pagesize unit='KiB'>2048</pagesize></source><target><size unit='GiB'>1</size>\
        <node>0</node></target><address type='dimm' slot='0'/></memory>\
        <memory model='virtio-mem'><target><size unit='GiB'>2</size><node>1</node><block unit='MiB'>2</block>\
        <requested unit='GiB'>1</requested></target></memory></devices></domain>";

    #[test]
    fn rich_domain_reads() {
        let d = read_domain(RICH, "rich.xml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.memory.regions.len(), 4);
        assert_eq!(d.memory.ram_bytes(), 4 * GIB + GIB + GIB);
    }

    /// Nesting deeper than any domain has is read without recursion.
    #[test]
    fn deep_nesting_is_no_stack_overflow() {
        let depth = 50_000;
        let text = format!(
            "<domain type='kvm'><name>g</name><memory>1048576</memory><metadata>{}{}</metadata></domain>",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        );
        assert!(read_domain(&text, "deep.xml").is_ok());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 300, failure_persistence: None, ..proptest::prelude::ProptestConfig::default()
        })]

        /// Any attribute value swapped for any text, and the result cut
        /// anywhere: an error or a domain, never a panic.
        #[test]
        fn mutated_domains_never_panic(which in 0usize..64, value in "\\PC{0,12}|-?[0-9]{0,22}") {
            let mut spans = Vec::new();
            let mut quote = None;
            for (i, c) in RICH.char_indices() {
                match (quote, c) {
                    (None, '\'') => quote = Some(i + 1),
                    (Some(start), '\'') => {
                        spans.push((start, i));
                        quote = None;
                    }
                    _ => {}
                }
            }
            let escaped = value.replace('&', "&amp;").replace('<', "&lt;").replace('\'', "&apos;");
            let (a, b) = spans[which % spans.len()];
            let text = format!("{}{}{}", &RICH[..a], escaped, &RICH[b..]);
            let _ = read_domain(&text, "m.xml");
            // And the same text cut anywhere.
            let cut = (which * 37) % text.len();
            if text.is_char_boundary(cut) {
                let _ = read_domain(&text[..cut], "m.xml");
            }
        }

        #[test]
        fn any_size_text_never_panics(text in "\\PC{0,24}", unit in "\\PC{0,6}") {
            let _ = memory_kib(&text, &unit);
            let _ = parse_nodeset(&text);
        }
    }

    // -- warnings -------------------------------------------------------------

    #[test]
    fn warnings_name_element_and_position() {
        let d = read(
            "  <memory unit='GiB'>4</memory>\n\
             \x20 <memtune>\n\
             \x20   <min_guarantee unit='GiB'>1</min_guarantee>\n\
             \x20 </memtune>\n\
             \x20 <numatune>\n\
             \x20   <memory mode='strict' nodeset='0'/>\n\
             \x20 </numatune>",
        );
        assert_eq!(d.memtune.min_guarantee, Some(ByteSize::gib(1)));
        let w = warning(&d, "domain/memtune/min_guarantee");
        assert_eq!((w.line, w.column, w.value.as_deref()), (5, 31, Some("1")));
        assert!(w.message.contains("refuses min_guarantee"), "{w}");
        let w = warning(&d, "domain/numatune/memory");
        assert_eq!((w.line, w.column), (8, 5));
        assert_eq!(w.value.as_deref(), Some("mode=strict nodeset=0"));
        assert!(w.to_string().starts_with("t.xml:8:5: domain/numatune/memory"), "{w}");
        // The min_guarantee is not in memory; the guest is still 4 GiB.
        assert_eq!(d.memory.ram_bytes(), 4 * GIB);
    }

    #[test]
    fn file_backed_memory_is_a_file_region_with_a_warning() {
        let d = read("<memory unit='GiB'>2</memory><memoryBacking><source type='file'/></memoryBacking>");
        let r = &d.memory.regions[0];
        assert_eq!((r.source, r.pages, r.share), (Source::File, Pages::Small, false));
        assert!(warning(&d, "domain/memoryBacking/source/@type").message.contains("page cache"));

        // An access mode alone makes libvirt use a file too
        // (memorybacking-unset in libvirt's tests).
        let d = read("<memory unit='GiB'>2</memory><memoryBacking><access mode='shared'/></memoryBacking>");
        let r = &d.memory.regions[0];
        assert_eq!((r.source, r.share), (Source::File, true));
        warning(&d, "domain/memoryBacking/access/@mode");
    }

    #[test]
    fn hugepage_sizes_the_host_has_not() {
        let d = read(
            "<memory unit='GiB'>1</memory><memoryBacking><hugepages><page size='16' unit='M'/></hugepages></memoryBacking>",
        );
        assert_eq!(d.memory.regions[0].pages, Pages::Huge(Some(ByteSize::mib(16))));
        let w = warning(&d, "domain/memoryBacking/hugepages/page/@size");
        assert!(w.message.contains("2 MiB and 1 GiB"), "{w}");
        // 4 KiB pages are no huge pages at all.
        let d =
            read("<memory unit='GiB'>1</memory><memoryBacking><hugepages><page size='4'/></hugepages></memoryBacking>");
        assert_eq!(d.memory.regions[0], anonymous(RegionKind::Boot, None, GIB));
        warning(&d, "domain/memoryBacking/hugepages/page/@size");
    }

    #[test]
    fn hotplug_room_discard_and_addresses_warn() {
        let d = read(
            "<maxMemory slots='4' unit='GiB'>16</maxMemory><memory unit='GiB'>3</memory>\
             <memoryBacking><discard/></memoryBacking>\
             <cpu><numa><cell id='0' cpus='0' memory='2' unit='GiB'/></numa></cpu>\
             <devices><memory model='dimm' access='private' discard='yes'><target><size unit='GiB'>1</size><node>0</node></target>\
             <address type='dimm' slot='0'/></memory></devices>",
        );
        assert_eq!((d.memory.slots, d.memory.maxmem), (Some(4), Some(ByteSize::gib(16))));
        let w = warning(&d, "domain/maxMemory");
        assert!(w.message.contains("13 GiB not yet plugged"), "{w}");
        warning(&d, "domain/memoryBacking/discard");
        warning(&d, "domain/devices/memory/@discard");
        warning(&d, "domain/devices/memory/address");
        // discard reaches the file-backed DIMM, not the anonymous cell.
        assert!(!d.memory.regions[0].discard);
        assert!(d.memory.regions[1].discard);
        assert_eq!(d.memory.regions[1].source, Source::File);
    }

    #[test]
    fn nvdimm_is_kept_and_warned_about() {
        let d = read(
            "<maxMemory slots='4' unit='GiB'>16</maxMemory>\
             <cpu><numa><cell id='0' cpus='0' memory='2' unit='GiB'/></numa></cpu>\
             <devices><memory model='nvdimm'><source><path>/var/lib/pmem0</path></source>\
             <target><size unit='MiB'>511</size><node>0</node><readonly/></target></memory></devices>",
        );
        let r = &d.memory.regions[1];
        // 511 MiB rounds up to 512 MiB (2 MiB alignment of memory modules).
        assert_eq!(
            (r.kind, r.size, r.source, r.prealloc, r.readonly),
            (RegionKind::Nvdimm, ByteSize::mib(512), Source::File, true, true)
        );
        assert_eq!(d.memory.ram_bytes(), 2 * GIB);
        assert!(warning(&d, "domain/devices/memory").message.contains("/var/lib/pmem0"));
    }

    #[test]
    fn memory_disagreeing_with_cells_warns_and_cells_win() {
        let d = read(
            "  <memory unit='GiB'>8</memory>\n\
             \x20 <cpu><numa><cell id='0' cpus='0' memory='2' unit='GiB'/><cell id='1' cpus='1' memory='1' unit='GiB'/></numa></cpu>",
        );
        assert_eq!(d.memory.boot_bytes(), 3 * GIB);
        let w = warning(&d, "domain/memory");
        assert_eq!((w.line, w.column), (3, 22));
    }

    #[test]
    fn passthrough_arguments_warn() {
        let text = "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>g</name>\
                    <memory>1048576</memory><qemu:commandline><qemu:arg value='-m'/><qemu:arg value='8G'/>\
                    </qemu:commandline></domain>";
        let d = read_domain(text, "p.xml").unwrap();
        warning(&d, "domain/commandline");
    }

    // -- what the regions are --------------------------------------------------

    #[test]
    fn hugepages_numa_nodeset_from_libvirts_test() {
        let Some(dir) = testdata() else { return };
        let text = std::fs::read_to_string(dir.join("hugepages-numa-nodeset.xml")).unwrap();
        let d = read_domain(&text, "hugepages-numa-nodeset.xml").unwrap();
        // <page size='2048' nodeset='1'/>, <page size='1048576' nodeset='0,2-3'/>,
        // four 1 GiB cells: the command line has ram-node1 on
        // /dev/hugepages2M and the others on /dev/hugepages1G, all prealloc.
        let two_m = Some(2 * MIB);
        let one_g = Some(GIB);
        assert_eq!(
            d.memory.regions,
            vec![
                huge_file(Some(0), GIB, one_g),
                huge_file(Some(1), GIB, two_m),
                huge_file(Some(2), GIB, one_g),
                huge_file(Some(3), GIB, one_g)
            ]
        );
        assert_eq!(d.memory.balloon, None);
        assert!(d.warnings.is_empty(), "{:#?}", d.warnings);
        assert_eq!(d.name, "QEMUGuest1");
    }

    #[test]
    fn every_libvirt_test_xml_reads() {
        let Some(dir) = testdata() else { return };
        let domains = read_paths(&[dir]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(domains.len(), 48);
        for d in &domains {
            assert!(!d.memory.regions.is_empty(), "{}", d.file);
        }
    }

    #[test]
    fn backing_without_numa() {
        let d = read(
            "<memory unit='GiB'>2</memory><memoryBacking><hugepages><page size='1' unit='G'/></hugepages>\
             <nosharepages/><locked/></memoryBacking>",
        );
        assert_eq!(d.memory.regions, vec![Region { merge: false, ..huge_file(None, 2 * GIB, Some(GIB)) }]);
        assert!(d.memory.mem_lock);
        // <hugepages/> alone: the host's default size, which the XML does
        // not state.
        let d = read("<memory unit='GiB'>2</memory><memoryBacking><hugepages/></memoryBacking>");
        assert_eq!(d.memory.regions, vec![huge_file(None, 2 * GIB, None)]);
        // allocation immediate preallocates anonymous memory.
        let d = read("<memory unit='GiB'>2</memory><memoryBacking><allocation mode='immediate'/></memoryBacking>");
        assert_eq!(d.memory.regions, vec![Region { prealloc: true, ..anonymous(RegionKind::Boot, None, 2 * GIB) }]);
        // Not MiB-aligned: rounded up as libvirt does.
        let d = read("<memory>219100</memory>");
        assert_eq!(d.memory.boot_bytes(), 214 * MIB);
    }

    #[test]
    fn memfd_is_shared_unless_private() {
        let d = read("<memory unit='GiB'>2</memory><memoryBacking><source type='memfd'/></memoryBacking>");
        let r = &d.memory.regions[0];
        assert_eq!((r.source, r.pages, r.share, r.prealloc), (Source::Memfd, Pages::Small, true, false));
        let d = read(
            "<memory unit='GiB'>2</memory><memoryBacking><hugepages><page size='2048'/></hugepages>\
             <source type='memfd'/><access mode='private'/></memoryBacking>",
        );
        let r = &d.memory.regions[0];
        assert_eq!(
            (r.source, r.pages, r.share, r.prealloc),
            (Source::Memfd, Pages::Huge(Some(ByteSize::mib(2))), false, true)
        );
        assert!(d.warnings.is_empty(), "{:#?}", d.warnings);
    }

    #[test]
    fn virtio_mem_plugs_what_is_requested() {
        let d = read(
            "<maxMemory unit='GiB'>16</maxMemory><cpu><numa><cell id='0' cpus='0' memory='2' unit='GiB'/></numa></cpu>\
             <devices><memory model='virtio-mem'><target><size unit='GiB'>4</size><node>0</node>\
             <block unit='MiB'>2</block><requested unit='GiB'>1</requested></target></memory></devices>",
        );
        let r = &d.memory.regions[1];
        assert_eq!((r.kind, r.size, r.capacity), (RegionKind::VirtioMem, ByteSize::gib(1), ByteSize::gib(4)));
        assert_eq!(d.memory.ram_bytes(), 3 * GIB);
        assert_eq!(d.memory.slots, None);
    }

    #[test]
    fn balloon_and_current_memory() {
        let d = read("<memory unit='GiB'>4</memory><currentMemory unit='GiB'>3</currentMemory>");
        assert_eq!(d.memory.balloon, Some(BalloonDevice::default()));
        assert_eq!(d.balloon, Balloon { model: "virtio".into(), stats_period: None });
        assert_eq!(d.current_memory, Some(ByteSize::gib(3)));
        let d = read(
            "<memory unit='GiB'>4</memory><devices><memballoon model='virtio' autodeflate='on' \
             freePageReporting='on'><stats period='10'/></memballoon></devices>",
        );
        assert_eq!(d.memory.balloon, Some(BalloonDevice { deflate_on_oom: true, free_page_reporting: true }));
        assert_eq!(d.balloon.stats_period, Some(10));
        assert_eq!(d.current_memory, None);
        let d = read(
            "<memory unit='GiB'>4</memory><currentMemory unit='GiB'>3</currentMemory><devices><memballoon model='none'/></devices>",
        );
        assert_eq!(d.memory.balloon, None);
        assert_eq!(d.balloon.model, "none");
        warning(&d, "domain/currentMemory");
        // More than the guest has is all of it.
        let d = read("<memory unit='GiB'>4</memory><currentMemory unit='GiB'>5</currentMemory>");
        assert_eq!(d.current_memory, Some(ByteSize::gib(4)));
        warning(&d, "domain/currentMemory");
    }

    // -- image and metadata ----------------------------------------------------

    #[test]
    fn image_is_the_deepest_backing_store() {
        let d = read(
            "<memory>1048576</memory><devices>\
             <disk type='file' device='cdrom'><source file='/iso/install.iso'/></disk>\
             <disk type='file'><source file='/var/lib/libvirt/images/top.qcow2'/>\
               <backingStore type='file'><format type='qcow2'/><source file='/images/mid.qcow2'/>\
                 <backingStore type='file'><format type='raw'/><source file='/images/base.raw'/><backingStore/></backingStore>\
               </backingStore></disk>\
             <disk type='file' device='disk'><source file='/second.qcow2'/></disk></devices>",
        );
        assert_eq!(d.image.as_deref(), Some("/images/base.raw"));
        let d = read(
            "<memory>1048576</memory><devices><disk type='block' device='disk'><source dev='/dev/vg/root'/><backingStore/></disk></devices>",
        );
        assert_eq!(d.image.as_deref(), Some("/dev/vg/root"));
        let d = read(
            "<memory>1048576</memory><devices><disk type='volume' device='disk'><source pool='default' volume='web.qcow2'/></disk></devices>",
        );
        assert_eq!(d.image.as_deref(), Some("default/web.qcow2"));
        let d = read(
            "<memory>1048576</memory><devices><disk type='network' device='disk'><source protocol='rbd' name='rbd/base'/></disk></devices>",
        );
        assert_eq!(d.image.as_deref(), Some("rbd/base"));
        let d = read("<memory>1048576</memory>");
        assert_eq!(d.image, None);
    }

    #[test]
    fn ovirt_guaranteed_memory_in_its_namespace() {
        let wrap = |inner: &str| {
            format!(
                "<domain type='kvm' xmlns:ovirt-vm='http://ovirt.org/vm/1.0' xmlns:other='urn:other'><name>g</name>\
                 <memory>4194304</memory><metadata>{inner}</metadata></domain>"
            )
        };
        let d = read_domain(&wrap("<ovirt-vm:vm><ovirt-vm:minGuaranteedMemoryMb type='int'>1024</ovirt-vm:minGuaranteedMemoryMb></ovirt-vm:vm>"), "o.xml").unwrap();
        assert_eq!(d.ovirt_min_guaranteed, Some(ByteSize::gib(1)));
        // Older engines wrote it unqualified inside <ovirt-vm:vm>.
        let d = read_domain(
            &wrap("<ovirt-vm:vm><minGuaranteedMemoryMb type='int'>2048</minGuaranteedMemoryMb></ovirt-vm:vm>"),
            "o.xml",
        )
        .unwrap();
        assert_eq!(d.ovirt_min_guaranteed, Some(ByteSize::gib(2)));
        // Another namespace's element of that name is not oVirt's.
        let d = read_domain(
            &wrap("<other:vm><other:minGuaranteedMemoryMb>2048</other:minGuaranteedMemoryMb></other:vm>"),
            "o.xml",
        )
        .unwrap();
        assert_eq!(d.ovirt_min_guaranteed, None);
        let e = read_domain(
            &wrap("<ovirt-vm:vm><ovirt-vm:minGuaranteedMemoryMb>lots</ovirt-vm:minGuaranteedMemoryMb></ovirt-vm:vm>"),
            "o.xml",
        )
        .unwrap_err();
        assert_eq!(e.value.as_deref(), Some("lots"));
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
