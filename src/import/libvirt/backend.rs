//! The memory backend libvirt builds for each cell, for boot RAM without
//! cells and for each memory device (`qemuBuildMemoryGetPagesize` and
//! `qemuBuildMemoryBackendProps`): anonymous RAM, a file or a memfd, its
//! page size, preallocation, sharing and discard, inherited from the
//! device, the cell or `<memoryBacking>`; the warning when guest RAM lands
//! on a plain file; and the [`Region`]s of the guest's memory that come of
//! them.

use roxmltree::Node;

use super::document::Reader;
use super::memory::{Access, Backing, Cell, DevModel, MemDev, MemSource, SYSTEM_PAGE_KIB, Sizes, Tristate};
use super::units::kib_size;
use crate::scenario::guestmem::{Pages, Region, RegionKind, Source};

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

impl<'a, 'i: 'a> Reader<'a, 'i> {
    /// The guest's regions, each on the backend libvirt builds for it: boot
    /// RAM (one region a cell when there are cells), then the memory
    /// devices that are RAM, in order.
    pub(super) fn regions(
        &mut self,
        backing: &Backing<'a, 'i>,
        cells: &[Cell<'a, 'i>],
        mems: &[MemDev<'a, 'i>],
        sizes: &Sizes,
    ) -> Vec<Region> {
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
            let b = self.backend(backing, cells, &spec);
            self.warn_backend(&b, backing, cells, &spec, None);
            regions.push(region(RegionKind::Boot, None, sizes.initial, sizes.initial, &b, merge, false));
        } else {
            for (id, (c, &kib)) in cells.iter().zip(&sizes.cell_kib).enumerate() {
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
                let b = self.backend(backing, cells, &spec);
                self.warn_backend(&b, backing, cells, &spec, Some(c.node));
                regions.push(region(RegionKind::Boot, Some(id), kib, kib, &b, merge, false));
            }
        }
        for (m, &kib) in mems.iter().zip(&sizes.dev_kib) {
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
            let b = self.backend(backing, cells, &spec);
            self.warn_backend(&b, backing, cells, &spec, Some(m.node));
            let (size, capacity) = match m.model {
                DevModel::VirtioMem => (m.requested_kib, kib),
                _ => (kib, kib),
            };
            regions.push(region(kind, m.target_node, size, capacity, &b, merge, m.readonly));
        }
        regions
    }

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

#[cfg(test)]
mod tests {
    use super::super::read_domain;
    use super::super::testing::{GIB, MIB, anonymous, huge_file, read, testdata, warning};
    use crate::scenario::guestmem::{Pages, Region, RegionKind, Source};
    use crate::units::ByteSize;

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
}
