//! The guest's memory as the domain lays it out: `<memoryBacking>` (huge
//! pages, sharing, locking, source, access, allocation, discard), the NUMA
//! cells and the memory devices (dimm, nvdimm, virtio-mem and the ones that
//! are not RAM), checked as libvirt checks them, and the sizes libvirt makes
//! of them: `<memory>` against the cells, the alignment of
//! `qemuDomainAlignMemorySizes` on x86, `<maxMemory>` and its hotplug room.

use std::collections::BTreeSet;

use roxmltree::Node;

use super::document::{Reader, child, children, string_value};
use super::findings::ImportError;
use super::units::{KIB, MEMORY_MAX_BYTES, kib_size, parse_nodeset, parse_ull, round_up, show_kib};

/// The x86-64 base page, in KiB. A `<page>` of this size means no huge
/// pages at all (`qemuBuildMemoryGetPagesize`).
pub(super) const SYSTEM_PAGE_KIB: u64 = 4;

/// The huge page sizes an x86-64 host has: 2 MiB and 1 GiB, in KiB.
const X86_HUGE_PAGES_KIB: [u64; 2] = [2048, 1024 * 1024];

/// `qemuDomainGetMemorySizeAlignment`: boot memory and NUMA cells are
/// rounded up to 1 MiB.
const MEMORY_ALIGN_KIB: u64 = 1024;

/// `qemuDomainGetMemoryModuleSizeAlignment`: memory devices are rounded up
/// to 2 MiB on x86.
const MODULE_ALIGN_KIB: u64 = 2048;

/// `<access mode>` / `memAccess` / a memory device's `access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Default,
    Shared,
    Private,
}

/// libvirt's `virTristateBool` for `discard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tristate {
    Absent,
    Yes,
    No,
}

/// `<memoryBacking><source type>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MemSource {
    Default,
    Anonymous,
    File,
    Memfd,
}

/// One `<page>` of `<hugepages>`; `size_kib` 0 is the host's default huge
/// page size (`<hugepages/>` without pages).
pub(super) struct HugePage<'a, 'i> {
    pub(super) size_kib: u64,
    pub(super) nodeset: Option<BTreeSet<u32>>,
    pub(super) node: Node<'a, 'i>,
}

/// `<memoryBacking>`.
pub(super) struct Backing<'a, 'i> {
    pub(super) hugepages: Vec<HugePage<'a, 'i>>,
    pub(super) nosharepages: bool,
    pub(super) locked: bool,
    pub(super) source: MemSource,
    pub(super) source_node: Option<Node<'a, 'i>>,
    pub(super) access: Access,
    pub(super) access_node: Option<Node<'a, 'i>>,
    pub(super) immediate: bool,
    pub(super) discard: Tristate,
}

/// One guest NUMA cell.
pub(super) struct Cell<'a, 'i> {
    pub(super) kib: u64,
    pub(super) access: Access,
    pub(super) discard: Tristate,
    pub(super) node: Node<'a, 'i>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DevModel {
    Dimm,
    Nvdimm,
    VirtioMem,
    VirtioPmem,
    SgxEpc,
}

/// One `<memory model=...>` device.
pub(super) struct MemDev<'a, 'i> {
    pub(super) node: Node<'a, 'i>,
    pub(super) model: DevModel,
    pub(super) access: Access,
    pub(super) discard: Tristate,
    pub(super) size_kib: u64,
    pub(super) target_node: Option<u32>,
    pub(super) pagesize_kib: u64,
    pub(super) pmem: bool,
    pub(super) readonly: bool,
    pub(super) requested_kib: u64,
}

/// The sizes libvirt makes of `<memory>`, `<maxMemory>`, the NUMA cells
/// and the memory devices, in KiB, aligned as it aligns them.
pub(super) struct Sizes {
    /// Boot memory: the cells together, or `<memory>` less the devices.
    pub(super) initial: u64,
    /// Each cell, in order of its id.
    pub(super) cell_kib: Vec<u64>,
    /// Each memory device, in document order.
    pub(super) dev_kib: Vec<u64>,
    /// `<maxMemory>`, when given.
    pub(super) max: Option<u64>,
    /// `<maxMemory slots>`, when given.
    pub(super) slots: Option<u32>,
    /// Boot memory and the devices together.
    pub(super) total: u64,
}

const DISCARD_WARNING: &str = "discard only reaches file-backed memory (discard-data=on: the file's pages are dropped \
     when QEMU exits instead of being written back); guest shutdown is not simulated";

impl<'a, 'i: 'a> Reader<'a, 'i> {
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

    pub(super) fn memory_backing(&mut self, root: Node<'a, 'i>) -> Result<Backing<'a, 'i>, ImportError> {
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

    pub(super) fn cells(&mut self, root: Node<'a, 'i>) -> Result<Vec<Cell<'a, 'i>>, ImportError> {
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

    pub(super) fn memory_device(&mut self, m: Node<'a, 'i>, ncells: usize) -> Result<MemDev<'a, 'i>, ImportError> {
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

    /// What libvirt's post-parse and `qemuDomainAlignMemorySizes` make of
    /// `<memory>`, `<maxMemory>`, the cells and the devices, checked against
    /// libvirt's hotplug rules.
    pub(super) fn sizes(
        &mut self,
        root: Node<'a, 'i>,
        cells: &[Cell<'a, 'i>],
        mems: &[MemDev<'a, 'i>],
    ) -> Result<Sizes, ImportError> {
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
        for c in cells {
            cell_kib.push(align(self, c.kib, MEMORY_ALIGN_KIB, c.node)?);
        }
        let initial = if cells.is_empty() {
            align(self, initial_raw, MEMORY_ALIGN_KIB, memory_el.unwrap_or(root))?
        } else {
            self.sum(cell_kib.iter().copied(), root)?
        };
        let mut dev_kib = Vec::with_capacity(mems.len());
        for m in mems {
            dev_kib.push(align(self, m.size_kib, MODULE_ALIGN_KIB, m.node)?);
        }
        let max_aligned = match (max_kib, max_el) {
            (Some(max), Some(m)) => Some(align(self, max, MEMORY_ALIGN_KIB, m)?),
            _ => None,
        };
        let total = initial.saturating_add(self.sum(dev_kib.iter().copied(), root)?);

        self.check_hotplug(root, cells, mems, &dev_kib, initial, max_aligned, slots, max_el)?;
        Ok(Sizes { initial, cell_kib, dev_kib, max: max_aligned, slots, total })
    }

    /// `virDomainDefMemtuneValidate`'s huge page rules.
    pub(super) fn check_hugepages(&self, b: &Backing<'a, 'i>, ncells: usize) -> Result<(), ImportError> {
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{GIB, anonymous, fails, read, warning};
    use crate::scenario::guestmem::{Pages, RegionKind, Source};
    use crate::units::ByteSize;

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
}
