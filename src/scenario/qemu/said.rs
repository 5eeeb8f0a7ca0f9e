//! What the options have said, as the reader keeps it: the memory
//! settings of `-m`, memory backends, memory devices and NUMA nodes. Each
//! option's file parses into these; the reader holds them.

use super::words::Span;
use crate::scenario::guestmem::RegionKind;
use crate::units::ByteSize;

/// The settings of `-m` (or `-machine memory.*`), each with where it was
/// written.
#[derive(Debug, Clone, Default)]
pub(super) struct MemOpts {
    pub(super) size: Option<(ByteSize, Span)>,
    pub(super) slots: Option<(u64, Span)>,
    pub(super) maxmem: Option<(ByteSize, Span)>,
    /// Whether a bare number was given for maxmem (bytes, unlike -m's size),
    /// worth a hint when it turns out too small.
    pub(super) maxmem_bare: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BackendKind {
    Ram,
    File,
    Memfd,
    Shm,
}

/// A `-object memory-backend-*`.
#[derive(Debug, Clone)]
pub(super) struct Backend {
    pub(super) id: String,
    pub(super) kind: BackendKind,
    pub(super) size: ByteSize,
    pub(super) share: Option<bool>,
    pub(super) merge: Option<bool>,
    pub(super) prealloc: Option<bool>,
    pub(super) mem_path: Option<String>,
    pub(super) hugetlb: bool,
    pub(super) hugetlbsize: Option<ByteSize>,
    /// `discard-data=` (memory-backend-file).
    pub(super) discard_data: bool,
    /// `readonly=` (memory-backend-file).
    pub(super) readonly: bool,
    /// The whole `-object` argument.
    pub(super) span: Span,
}

/// A `-device pc-dimm` / `nvdimm` / `virtio-mem-pci`: memory the guest gets
/// from a backend through a device.
#[derive(Debug, Clone)]
pub(super) struct MemDevice {
    pub(super) kind: RegionKind,
    pub(super) driver: String,
    pub(super) memdev: Option<(String, Span)>,
    pub(super) node: Option<(u64, Span)>,
    /// `slot=` of a pc-dimm or nvdimm.
    pub(super) slot: Option<(u64, Span)>,
    /// virtio-mem `requested-size=` (default 0).
    pub(super) requested_size: Option<(ByteSize, Span)>,
    /// virtio-mem `block-size=`.
    pub(super) block_size: Option<(ByteSize, Span)>,
    /// virtio-mem `prealloc=`: plugged blocks are preallocated.
    pub(super) prealloc: bool,
    /// nvdimm `unarmed=on`: the guest sees it read-only.
    pub(super) unarmed: bool,
    /// nvdimm `label-size=`: carved from the end of the backend.
    pub(super) label_size: u64,
    /// The whole `-device` argument.
    pub(super) span: Span,
}

#[derive(Debug, Clone)]
pub(super) struct NumaNode {
    pub(super) id: u64,
    pub(super) memdev: Option<(String, Span)>,
    /// Legacy `mem=` (MiB when bare), with the whole `mem=...` item.
    pub(super) mem: Option<(ByteSize, Span)>,
    pub(super) span: Span,
}
