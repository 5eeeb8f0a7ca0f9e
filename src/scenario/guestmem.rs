//! A guest's memory as QEMU holds it: one [`Region`] per memory backend
//! (the whole of `-m` RAM, or one per NUMA cell, and one per memory
//! device), the balloon device, hotplug room and memory locking.
//!
//! Both readers of foreign descriptions produce this: the QEMU command-line
//! reader ([`super::qemu`]) and the libvirt domain XML reader (in the
//! import module, which builds on this one), so a domain XML and the
//! command line libvirt generates from it can be compared fact by fact.
//! Paths, ids and host NUMA policy are kept out of the comparison: they say
//! where memory comes from on one machine, not how much or what kind.

use serde::Serialize;

use crate::units::ByteSize;

/// Where a region's memory comes from on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Anonymous memory: `-m` RAM QEMU allocates itself, or
    /// `memory-backend-ram` (libvirt `<source type='anonymous'/>`).
    Anonymous,
    /// A file: `memory-backend-file` / `-mem-path`, on hugetlbfs (huge
    /// pages) or another file system (libvirt `<source type='file'/>`, and
    /// what libvirt uses for `<hugepages>`).
    File,
    /// `memory-backend-memfd` (libvirt `<source type='memfd'/>`).
    Memfd,
}

/// The page size behind a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pages {
    /// Ordinary 4 KiB pages (with transparent huge pages where the host
    /// gives them).
    Small,
    /// hugetlbfs pages; `None` when the page size is the host's default
    /// hugetlbfs size, which neither description states (libvirt's
    /// `<hugepages/>` without a size; `-mem-path /dev/hugepages`).
    Huge(Option<ByteSize>),
}

/// What a region is to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegionKind {
    /// Boot RAM: all of `-m` when the guest has no NUMA cells, else one
    /// cell's memory.
    Boot,
    /// A `pc-dimm` (libvirt `<memory model='dimm'>`).
    Dimm,
    /// An `nvdimm` (libvirt `<memory model='nvdimm'>`): persistent memory
    /// the guest sees as a device, not as RAM it allocates from.
    Nvdimm,
    /// A `virtio-mem` device; `size` is what is plugged now
    /// (`requested-size`), `capacity` its backend.
    VirtioMem,
}

/// One memory backend's worth of guest memory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Region {
    pub kind: RegionKind,
    /// The guest NUMA cell it belongs to (`-numa node,nodeid=`, libvirt
    /// `<cell id=>` or a device's `<target><node>`), when the guest has
    /// cells.
    pub node: Option<u32>,
    /// Memory the guest has from it: a cell's or a DIMM's size, what a
    /// virtio-mem device has plugged.
    pub size: ByteSize,
    /// The backend's size: equal to `size` except for virtio-mem, whose
    /// backend is its maximum.
    pub capacity: ByteSize,
    pub source: Source,
    pub pages: Pages,
    /// All of it is allocated when QEMU starts (`prealloc=on`,
    /// `-mem-prealloc`; libvirt `<allocation mode='immediate'/>`, and
    /// hugepages).
    pub prealloc: bool,
    /// A shared mapping (`share=on`; libvirt `memAccess='shared'` /
    /// `<access mode='shared'/>`): KSM never merges it.
    pub share: bool,
    /// `MADV_MERGEABLE` (`merge=`, `-machine mem-merge=`; libvirt
    /// `<nosharepages/>` turns it off).
    pub merge: bool,
    /// `discard-data=on` (libvirt `discard='yes'` / `<discard/>`): the
    /// contents are dropped when QEMU exits rather than written back.
    pub discard: bool,
    /// Read-only (an nvdimm with `<readonly/>`, `readonly=on`).
    pub readonly: bool,
}

impl Region {
    /// `size` bytes of QEMU's default memory: anonymous, on small pages,
    /// allocated on touch, private, open to KSM.
    pub fn anonymous(kind: RegionKind, node: Option<u32>, size: ByteSize) -> Region {
        Region {
            kind,
            node,
            size,
            capacity: size,
            source: Source::Anonymous,
            pages: Pages::Small,
            prealloc: false,
            share: false,
            merge: true,
            discard: false,
            readonly: false,
        }
    }

    /// Whether this region is RAM the guest allocates from: boot memory,
    /// DIMMs and virtio-mem, but not an nvdimm.
    pub fn is_ram(&self) -> bool {
        !matches!(self.kind, RegionKind::Nvdimm)
    }
}

/// The virtio-balloon device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct BalloonDevice {
    /// `deflate-on-oom=on` (libvirt `autodeflate='on'`).
    pub deflate_on_oom: bool,
    /// `free-page-reporting=on` (libvirt `freePageReporting='on'`).
    pub free_page_reporting: bool,
}

/// A guest's memory configuration, comparable across descriptions.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct GuestMemory {
    /// Boot RAM regions first (by cell), then memory devices in the order
    /// they are given.
    pub regions: Vec<Region>,
    /// Hotplug slots (`-m slots=`, libvirt `<maxMemory slots=>`).
    pub slots: Option<u32>,
    /// The most memory hotplug may reach (`-m maxmem=`, libvirt
    /// `<maxMemory>`).
    pub maxmem: Option<ByteSize>,
    /// `None`: no balloon device.
    pub balloon: Option<BalloonDevice>,
    /// All guest memory is mlock()ed (`-overcommit mem-lock=on`, libvirt
    /// `<locked/>`): never swapped.
    pub mem_lock: bool,
    /// The accelerator, when said (`-accel`, `-machine accel=`,
    /// `-enable-kvm`; libvirt's `<domain type=>`).
    pub accel: Option<super::schema::Accel>,
}

impl GuestMemory {
    /// Boot RAM (`-m`): the boot regions.
    pub fn boot_bytes(&self) -> u64 {
        self.regions.iter().filter(|r| r.kind == RegionKind::Boot).map(|r| r.size.bytes()).sum()
    }

    /// RAM the guest has now: boot RAM plus plugged DIMMs and virtio-mem.
    pub fn ram_bytes(&self) -> u64 {
        self.regions.iter().filter(|r| r.is_ram()).map(|r| r.size.bytes()).sum()
    }
}
