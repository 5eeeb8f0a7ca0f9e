//! The whole line, once read: where guest RAM comes from (-m, -machine
//! memory-backend= or the NUMA nodes' backends), the checks QEMU makes at
//! machine creation (sizes that must agree, backends used once and used
//! at all, slots and maxmem), the regions of [`GuestMemory`], and the
//! summary of boot RAM folded from its backends.

use super::backend::{file_pages, is_hugetlbfs_path, page_size_from_path};
use super::reader::Reader;
use super::said::{Backend, BackendKind};
use super::words::Span;
use super::{QemuError, QemuMemory};
use crate::scenario::guestmem::{GuestMemory, Pages, Region, RegionKind, Source};
use crate::units::{ByteSize, QEMU_DEFAULT_RAM};

/// QEMU rounds the guest RAM size up to this (`machine_set_mem`,
/// `QEMU_ALIGN_UP(mem->size, 8192)`).
const RAM_ALIGN: u64 = 8192;

impl Reader<'_> {
    /// Work out where guest RAM comes from and check it the way QEMU does
    /// at machine creation (`machine_set_mem`, `qemu_resolve_machine_memdev`,
    /// `machine_run_board_init`, `numa_complete_configuration`) and when it
    /// plugs the memory devices (`pc_memory_pre_plug`, `pc_dimm_pre_plug`,
    /// `memory_device_pre_plug`, `virtio_mem_device_realize`).
    pub(super) fn finish(self) -> Result<QemuMemory, QemuError> {
        // -m is merged over -machine memory.*; a zero -m size counts as
        // not given (vl.c only passes a non-zero size on).
        let size = self.m.size.filter(|(s, _)| s.bytes() != 0).or(self.machine_mem.size);
        let slots = self.m.slots.or(self.machine_mem.slots);
        let (maxmem, maxmem_bare) = match self.m.maxmem {
            Some(mx) => (Some(mx), self.m.maxmem_bare),
            None => (self.machine_mem.maxmem, self.machine_mem.maxmem_bare),
        };
        let size = match size {
            Some((s, span)) => {
                let aligned = s
                    .bytes()
                    .checked_next_multiple_of(RAM_ALIGN)
                    .ok_or_else(|| self.err(span, format!("`{}`: guest RAM too large", self.raw(span))))?;
                Some((ByteSize(aligned), span))
            }
            None => None,
        };

        self.check_numa_nodes()?;

        let numa_memdevs: Vec<&(String, Span)> = self.numa.iter().filter_map(|n| n.memdev.as_ref()).collect();
        // The backend of `-machine memory-backend=`, which holds all boot
        // RAM (split among legacy mem= nodes if there are any).
        let mut whole: Option<&Backend> = None;
        if let Some((id, id_span)) = &self.memory_backend {
            if let Some((_, numa_span)) = numa_memdevs.first() {
                return Err(self.err(
                    *numa_span,
                    "`-machine memory-backend=` and `-numa node,memdev=` cannot both give guest RAM \
                     (QEMU: mutually exclusive); keep one"
                        .to_string(),
                ));
            }
            let b = self.lookup_backend(id, *id_span, "-machine memory-backend")?;
            // Without -m the backend decides the RAM size; with -m both
            // must agree ("Machine memory size does not match the size of
            // the memory backend").
            if let Some((s, span)) = size
                && s != b.size
            {
                return Err(self.err(
                    span,
                    format!(
                        "`{}` gives {s} of RAM but memory-backend `{id}` is {}: QEMU requires them to be \
                         equal; make them match or drop -m",
                        self.raw(span),
                        b.size
                    ),
                ));
            }
            whole = Some(b);
        }
        // The NUMA nodes' backends, in command-line order, with their ids.
        let mut node_backends: Vec<(u64, &Backend)> = Vec::new();
        for node in &self.numa {
            let Some((id, span)) = &node.memdev else { continue };
            if node_backends.iter().any(|(_, b)| b.id == *id) {
                return Err(self.err(
                    *span,
                    format!("memory backend `{id}` is given to two NUMA nodes; QEMU lets a backend be used once"),
                ));
            }
            node_backends.push((node.id, self.lookup_backend(id, *span, "-numa node,memdev")?));
        }
        let legacy_nodes: Vec<(u64, ByteSize)> =
            self.numa.iter().filter_map(|n| n.mem.map(|(m, _)| (n.id, m))).collect();

        // The RAM size QEMU settles on, and where it was said.
        let (want, said) = match (whole, size) {
            (Some(b), _) => (b.size, size.map(|(_, span)| span)),
            (None, Some((s, span))) => (s, Some(span)),
            (None, None) => (QEMU_DEFAULT_RAM, None),
        };
        if let Some(first) = self.numa.first() {
            let total = node_backends
                .iter()
                .map(|(_, b)| b.size.bytes())
                .chain(legacy_nodes.iter().map(|(_, m)| m.bytes()))
                .fold(0u64, u64::saturating_add);
            if total != want.bytes() {
                let span = said.or(whole.and(self.memory_backend.as_ref().map(|(_, s)| *s))).unwrap_or(first.span);
                let why = match (said, whole) {
                    (Some(_), _) => format!("-m says {want}"),
                    (None, Some(b)) => format!("memory-backend `{}` is {want}", b.id),
                    (None, None) => {
                        format!("without -m QEMU's RAM size is its default {want}; add -m {}", ByteSize(total))
                    }
                };
                let message = if !node_backends.is_empty() {
                    format!(
                        "the NUMA nodes' memory backends add up to {} but {why} (QEMU: \"total memory for \
                         NUMA nodes should equal RAM size\")",
                        ByteSize(total)
                    )
                } else if !legacy_nodes.is_empty() {
                    format!(
                        "the NUMA nodes' mem= add up to {} but {why} (QEMU: \"total memory for NUMA nodes \
                         should equal RAM size\")",
                        ByteSize(total)
                    )
                } else {
                    let fix = if whole.is_some() {
                        "drop -machine memory-backend= and give the nodes memory backends with memdev=ID"
                    } else {
                        "give the nodes memory backends with memdev=ID"
                    };
                    return Err(self.err(
                        first.span,
                        format!(
                            "no -numa node has memdev=, so the nodes hold 0 B while guest RAM is {want}; QEMU \
                             refuses this (\"total memory for NUMA nodes should equal RAM size\"): {fix}"
                        ),
                    ));
                };
                return Err(self.err(span, message));
            }
        }
        // What the summary folds: the backend(s) behind boot RAM, if any.
        let sources: Vec<&Backend> = match whole {
            Some(b) => vec![b],
            None => node_backends.iter().map(|(_, b)| *b).collect(),
        };
        // The NUMA nodes state the RAM size even without -m.
        let ram = if sources.is_empty() && legacy_nodes.is_empty() { size.map(|(s, _)| s) } else { Some(want) };

        if let (Some((path, span)), Some(first)) = (&self.mem_path, sources.first()) {
            return Err(self.err(
                *span,
                format!(
                    "`-mem-path {path}` has no effect here: guest RAM comes from memory backend `{}`, and \
                     QEMU applies -mem-path only to RAM it creates from -m; put mem-path= on a \
                     memory-backend-file instead, or drop -mem-path",
                    first.id
                ),
            ));
        }
        // A backend serves one user: machine_consume_memdev ("can't be used
        // multiple times"), pc_dimm_pre_plug / ivshmem ("can't use already
        // busy memdev"), virtio_mem_device_realize ("specifies a busy
        // memdev").
        for (i, (id, span, driver)) in self.device_memdevs.iter().enumerate() {
            let earlier = if sources.iter().any(|b| b.id == *id) {
                Some("guest RAM".to_string())
            } else {
                self.device_memdevs
                    .get(..i)
                    .and_then(|before| before.iter().find(|(e, _, _)| e == id))
                    .map(|(_, _, d)| format!("an earlier -device {d}"))
            };
            if let Some(earlier) = earlier {
                return Err(self.err(
                    *span,
                    format!(
                        "memory backend `{id}` of -device {driver} is already used by {earlier}; QEMU lets a \
                         backend be used once (\"can't use already busy memdev\")"
                    ),
                ));
            }
        }
        for b in &self.backends {
            let used = sources.iter().any(|s| s.id == b.id) || self.device_memdevs.iter().any(|(id, _, _)| *id == b.id);
            if !used {
                return Err(self.err(
                    b.span,
                    format!(
                        "memory backend `{id}` is not used: QEMU allocates it, but the guest only sees it \
                         through -machine memory-backend={id}, -numa node,memdev={id} or a memory device; \
                         add one of those or remove the object",
                        id = b.id
                    ),
                ));
            }
        }

        let effective_ram = ram.unwrap_or(QEMU_DEFAULT_RAM);
        let slots = match slots {
            Some((n, span)) => Some((
                u32::try_from(n).map_err(|_| self.err(span, format!("`{}`: too many memory slots", self.raw(span))))?,
                span,
            )),
            None => None,
        };
        match (maxmem, slots) {
            (None, Some((_, span))) => {
                return Err(self.err(
                    span,
                    format!(
                        "`{}` needs maxmem= as well: QEMU refuses hotplug slots without a maximum size",
                        self.raw(span)
                    ),
                ));
            }
            (Some((mx, span)), _) if mx < effective_ram => {
                let hint = if maxmem_bare { " (a bare number in maxmem= is bytes, unlike -m's size)" } else { "" };
                return Err(self.err(
                    span,
                    format!(
                        "maxmem `{}` ({mx}) is below the guest RAM ({effective_ram}){hint}: QEMU requires \
                         maxmem to be at least the initial size",
                        self.raw(span)
                    ),
                ));
            }
            (Some((mx, span)), Some((n, _))) if n > 0 && mx == effective_ram => {
                return Err(self.err(
                    span,
                    format!(
                        "maxmem `{}` equals the guest RAM ({effective_ram}) but slots are given: QEMU wants \
                         room to hotplug into; raise maxmem or drop slots",
                        self.raw(span)
                    ),
                ));
            }
            _ => {}
        }

        // Boot RAM: one region per NUMA node that holds memory, in node
        // order, or one for all of it.
        let mut regions = Vec::new();
        if !node_backends.is_empty() {
            let mut nodes = node_backends.clone();
            nodes.sort_by_key(|(id, _)| *id);
            for (id, b) in nodes {
                regions.push(self.backend_region(b, RegionKind::Boot, Some(id as u32), b.size, b.size));
            }
        } else if !legacy_nodes.is_empty() {
            // Legacy nodes only split the RAM QEMU creates as a whole
            // (numa_uses_legacy_mem: no per-node backend), so each has
            // the facts of that RAM.
            let mut nodes: Vec<(u64, ByteSize)> =
                legacy_nodes.iter().copied().filter(|(_, m)| m.bytes() != 0).collect();
            nodes.sort_by_key(|(id, _)| *id);
            for (id, m) in nodes {
                regions.push(self.boot_ram_region(whole, Some(id as u32), m));
            }
        } else {
            regions.push(self.boot_ram_region(whole, None, effective_ram));
        }
        let room = maxmem.map_or(0, |(m, _)| m.bytes()).saturating_sub(effective_ram.bytes());
        let max_slots = slots.map_or(0, |(n, _)| u64::from(n));
        let mut used_room: u64 = 0;
        let mut taken_slots: Vec<u64> = Vec::new();
        for d in &self.devices {
            regions.push(self.device_region(d, room, &mut used_room, max_slots, &mut taken_slots)?);
        }

        let mut out = QemuMemory {
            memory: ram,
            slots: slots.map(|(n, _)| n),
            maxmem: maxmem.map(|(m, _)| m),
            balloon: self.balloon.is_some().then_some(true),
            ..QemuMemory::default()
        };
        out.guest = GuestMemory {
            regions,
            slots: out.slots,
            maxmem: out.maxmem,
            balloon: self.balloon,
            mem_lock: self.mem_lock,
            accel: self.accel,
        };
        if sources.is_empty() {
            // The RAM QEMU creates itself from -m: a memory-backend-file on
            // -mem-path, or anonymous memory.
            if let Some((path, _)) = &self.mem_path {
                let huge = is_hugetlbfs_path(path);
                out.hugepages = Some(huge);
                out.hugepage_size = if huge { page_size_from_path(path) } else { None };
                out.mem_path = Some(path.clone());
            }
            out.prealloc = self.mem_prealloc.then_some(true);
            out.merge = self.mem_merge;
        } else {
            self.combine(&sources, &mut out);
        }
        Ok(out)
    }

    /// Boot RAM, or a legacy node's share of it: from `-machine
    /// memory-backend=` when given, else the backend QEMU creates from -m
    /// (machine.c create_default_memdev: a memory-backend-file on
    /// -mem-path, else a memory-backend-ram, every property at its
    /// default).
    fn boot_ram_region(&self, whole: Option<&Backend>, node: Option<u32>, size: ByteSize) -> Region {
        if let Some(b) = whole {
            return self.backend_region(b, RegionKind::Boot, node, size, size);
        }
        let (source, pages) = match &self.mem_path {
            Some((path, _)) => (Source::File, file_pages(path)),
            None => (Source::Anonymous, Pages::Small),
        };
        Region {
            kind: RegionKind::Boot,
            node,
            size,
            capacity: size,
            source,
            pages,
            prealloc: self.mem_prealloc,
            share: false,
            merge: self.mem_merge.unwrap_or(true),
            discard: false,
            readonly: false,
        }
    }

    /// Fold the flags of the backend(s) behind guest RAM into one answer.
    /// With several NUMA backends: huge pages and preallocation only when
    /// every backend has them (part of the RAM otherwise behaves the other
    /// way, and the model needs a guarantee), share when any backend is
    /// shared (that part is visible to another process), and KSM merging
    /// only when no backend opts out. A huge page size only when every
    /// backend's is known and they agree: cells on 2 MiB and 1 GiB pages
    /// give `hugepages: Some(true)` and no size (the regions in
    /// [`QemuMemory::guest`] keep each one's). A flag is reported when some
    /// backend, -mem-prealloc or -machine mem-merge states it; a memfd
    /// states share by its type (QEMU creates it shared).
    fn combine(&self, sources: &[&Backend], out: &mut QemuMemory) {
        let mut huge_all = true;
        let mut sizes: Vec<Option<ByteSize>> = Vec::new();
        let (mut prealloc_all, mut prealloc_said) = (true, false);
        let (mut share_any, mut share_said) = (false, false);
        let (mut merge_all, mut merge_said) = (true, false);
        for b in sources {
            let (huge, page) = match b.kind {
                BackendKind::File => {
                    let path = b.mem_path.as_deref().unwrap_or_default();
                    let huge = is_hugetlbfs_path(path);
                    (huge, if huge { page_size_from_path(path) } else { None })
                }
                // hugetlbsize= without hugetlb=on is ignored by QEMU.
                BackendKind::Memfd => (b.hugetlb, if b.hugetlb { b.hugetlbsize } else { None }),
                BackendKind::Ram | BackendKind::Shm => (false, None),
            };
            huge_all &= huge;
            if huge {
                sizes.push(page);
            }
            // -mem-prealloc and -machine mem-merge are defaults every
            // backend inherits (vl.c sugar property; hostmem.c init).
            prealloc_all &= b.prealloc.unwrap_or(self.mem_prealloc);
            prealloc_said |= b.prealloc.is_some() || self.mem_prealloc;
            let shared_by_type = matches!(b.kind, BackendKind::Memfd | BackendKind::Shm);
            share_any |= b.share.unwrap_or(shared_by_type);
            share_said |= b.share.is_some() || shared_by_type;
            merge_all &= b.merge.or(self.mem_merge).unwrap_or(true);
            merge_said |= b.merge.is_some() || self.mem_merge.is_some();
        }
        out.hugepages = Some(huge_all);
        // A page size only when every backend's is known and they agree.
        out.hugepage_size = match sizes.first() {
            Some(&Some(p)) if huge_all && sizes.iter().all(|s| *s == Some(p)) => Some(p),
            _ => None,
        };
        out.mem_path = sources.iter().find_map(|b| b.mem_path.clone());
        out.prealloc = prealloc_said.then_some(prealloc_all);
        out.share = share_said.then_some(share_any);
        out.merge = merge_said.then_some(merge_all);
    }
}

#[cfg(test)]
mod tests {
    use super::super::MIB;
    use super::super::testing::{GIB, boot, fails, gib, mib, ok};
    use super::*;

    // machine_set_mem: QEMU_ALIGN_UP(mem->size, 8192).
    #[test]
    fn m_is_rounded_up_to_8k() {
        assert_eq!(ok("-m 1000B").memory, Some(ByteSize(8192)));
        assert_eq!(ok("-m 8193B").memory, Some(ByteSize(16384)));
    }

    // vl.c: only a non-zero size is passed on, so `-m 0` leaves QEMU's
    // default RAM size.
    #[test]
    fn m_zero_means_default() {
        assert_eq!(ok("-m 0").memory, None);
        // The merged options hold the last size, 0, so the default wins.
        assert_eq!(ok("-m 2G -m 0").memory, None);
        // A zero -m size leaves a -machine memory.size in force.
        assert_eq!(ok("-machine memory.size=2G -m 0").memory, gib(2));
    }

    // machine_set_mem: "maximum memory size must be at least the initial
    // memory size".
    #[test]
    fn maxmem_below_size_is_refused() {
        let e = fails("-m 8G,slots=2,maxmem=4G");
        assert_eq!((e.token.as_str(), e.offset), ("4G", 21));
        assert!(e.message.contains("below the guest RAM (8 GiB)"), "{}", e.message);
    }

    // maxmem reaches the machine's max-size unchanged and qemu_strtosz reads
    // a bare number as bytes, so maxmem=16384 is 16 KiB, not 16 GiB.
    #[test]
    fn maxmem_bare_number_is_bytes() {
        let e = fails("-m 4G,slots=2,maxmem=16384");
        assert_eq!(e.token, "16384");
        assert!(e.message.contains("bare number in maxmem= is bytes"), "{}", e.message);
    }

    // machine_set_mem: "slots specified but no max-size"; "memory slots were
    // specified but maximum memory size is equal to the initial memory
    // size"; maxmem alone is allowed (virtio-mem needs no slots).
    #[test]
    fn slots_and_maxmem_rules() {
        let e = fails("-m 4G,slots=2");
        assert_eq!(e.token, "2");
        let e = fails("-m 4G,slots=2,maxmem=4G");
        assert!(e.message.contains("equals the guest RAM"), "{}", e.message);
        assert_eq!(ok("-m 4G,maxmem=8G").maxmem, gib(8));
        assert_eq!(ok("-m 4G,slots=0,maxmem=4G").slots, Some(0));
        // qemu_strtou64 with base 0: hex and octal counts.
        assert_eq!(ok("-m 1G,slots=0x10,maxmem=2G").slots, Some(16));
        assert_eq!(ok("-m 1G,slots=010,maxmem=2G").slots, Some(8));
        fails("-m 1G,slots=two,maxmem=2G");
        // Without -m size, maxmem is checked against QEMU's default 128 MiB.
        assert_eq!(ok("-m slots=1,maxmem=1G").memory, None);
        fails("-m slots=1,maxmem=64M");
    }

    // QEMU allocates an unused backend, but the guest never sees it; the
    // plan would quietly leave that memory out.
    #[test]
    fn unused_backend_is_refused() {
        let e = fails("-m 1G -object memory-backend-ram,id=spare,size=1G");
        assert_eq!(e.offset, 14);
        assert!(e.message.contains("memory backend `spare` is not used"), "{}", e.message);
        // A memory device using it counts.
        let q =
            ok("-m 1G,slots=2,maxmem=4G -object memory-backend-ram,id=d0,size=1G -device pc-dimm,id=dimm0,memdev=d0");
        assert_eq!(q.memory, gib(1));
    }

    // vl.c qemu_resolve_machine_memdev: without -m the backend's size is
    // the RAM size; machine.c: "Machine memory size does not match the size
    // of the memory backend".
    #[test]
    fn machine_memory_backend() {
        let q = ok("-machine q35,accel=kvm,memory-backend=m0 -object memory-backend-ram,id=m0,size=8G");
        assert_eq!((q.memory, q.hugepages), (gib(8), Some(false)));
        assert_eq!(ok("-M pc,memory-backend=m0 -object memory-backend-ram,id=m0,size=2G -m 2048").memory, gib(2));
        let e = fails("-m 4G -machine memory-backend=m0 -object memory-backend-ram,id=m0,size=8G");
        assert_eq!((e.token.as_str(), e.offset), ("4G", 3));
        assert!(e.message.contains("QEMU requires them to be equal"), "{}", e.message);
        let e = fails("-machine memory-backend=nope -m 1G");
        assert_eq!((e.token.as_str(), e.offset), ("nope", 24));
        assert!(e.message.contains("Memory backend 'nope' not found"), "{}", e.message);
        fails("-machine memory-backend=");
    }

    // -mem-path only backs the RAM QEMU creates from -m
    // (machine_run_board_init: create_default_memdev); with an explicit
    // backend it is ignored, which would mislead a plan.
    #[test]
    fn mem_path_with_explicit_backend_is_refused() {
        let e = fails("-mem-path /dev/hugepages -object memory-backend-ram,id=m,size=1G -machine memory-backend=m");
        assert_eq!((e.token.as_str(), e.offset), ("/dev/hugepages", 10));
        assert!(e.message.contains("has no effect here"), "{}", e.message);
    }

    // vl.c qemu_process_sugar_options: -mem-prealloc registers prealloc=on
    // as a default for every memory backend; an explicit prealloc= wins.
    #[test]
    fn mem_prealloc_is_a_backend_default() {
        let q = ok("-mem-prealloc -object memory-backend-ram,id=m,size=1G -machine memory-backend=m");
        assert_eq!(q.prealloc, Some(true));
        let q = ok("-mem-prealloc -object memory-backend-ram,id=m,size=1G,prealloc=off -machine memory-backend=m");
        assert_eq!(q.prealloc, Some(false));
        assert_eq!(ok("-object memory-backend-ram,id=m,size=1G -machine memory-backend=m").prealloc, None);
    }

    // numa.c: node memory comes from its memdev; numa_complete_configuration
    // requires the total to equal the RAM size.
    #[test]
    fn numa_memdevs_sum_to_ram() {
        let q = ok("-m 4G -object memory-backend-ram,id=m0,size=2G -object memory-backend-ram,id=m1,size=2G \
                    -numa node,nodeid=0,cpus=0-1,memdev=m0 -numa node,nodeid=1,cpus=2-3,memdev=m1 \
                    -numa dist,src=0,dst=1,val=20");
        assert_eq!((q.memory, q.hugepages), (gib(4), Some(false)));
        let e = fails(
            "-m 6G -object memory-backend-ram,id=m0,size=2G -object memory-backend-ram,id=m1,size=2G \
                       -numa node,memdev=m0 -numa node,memdev=m1",
        );
        assert_eq!((e.token.as_str(), e.offset), ("6G", 3));
        assert!(e.message.contains("total memory for NUMA nodes should equal RAM size"), "{}", e.message);
    }

    // Without -m the RAM size is QEMU's default (128 MiB on x86), which the
    // NUMA total must match too.
    #[test]
    fn numa_without_m_uses_the_default_ram_size() {
        let e = fails("-object memory-backend-ram,id=m0,size=4G -numa node,memdev=m0");
        assert!(e.message.contains("default 128 MiB; add -m 4 GiB"), "{}", e.message);
        assert_eq!(e.token, "node,memdev=m0");
        assert_eq!(ok("-object memory-backend-ram,id=m0,size=128M -numa node,memdev=m0").memory, mib(128));
    }

    // Several backends: huge pages / prealloc only if all have them, shared
    // if any is, KSM off if any opts out.
    #[test]
    fn numa_backend_flags_combine() {
        let two = |a: &str, b: &str| {
            ok(&format!(
                "-m 2G -object memory-backend-{a},size=1G -object memory-backend-{b},size=1G \
                 -numa node,memdev=m0 -numa node,memdev=m1"
            ))
        };
        let q =
            two("file,id=m0,mem-path=/dev/hugepages1G,prealloc=on", "file,id=m1,mem-path=/dev/hugepages1G,prealloc=on");
        assert_eq!((q.hugepages, q.hugepage_size, q.prealloc), (Some(true), gib(1), Some(true)));
        let q = two("file,id=m0,mem-path=/dev/hugepages,prealloc=on", "ram,id=m1,share=on,merge=off");
        assert_eq!((q.hugepages, q.hugepage_size), (Some(false), None));
        assert_eq!((q.prealloc, q.share, q.merge), (Some(false), Some(true), Some(false)));
        assert_eq!(q.mem_path.as_deref(), Some("/dev/hugepages"));
        let q = two("ram,id=m0", "ram,id=m1");
        assert_eq!((q.prealloc, q.share, q.merge), (None, None, None));
        // Huge pages of two sizes: all huge, no one size (the regions keep
        // each; see numa_cells_with_different_page_sizes).
        let q = ok("-m 2G -object memory-backend-file,id=m0,size=1G,mem-path=/dev/hugepages1G \
                    -object memory-backend-file,id=m1,size=1G,mem-path=/dev/hugepages2M \
                    -numa node,memdev=m0 -numa node,memdev=m1");
        assert_eq!((q.hugepages, q.hugepage_size), (Some(true), None));
    }

    // machine.c create_default_memdev: without an explicit backend QEMU
    // makes a memory-backend-file on -mem-path, else a memory-backend-ram,
    // with every property at its default except those -mem-prealloc and
    // -machine mem-merge= give every backend (vl.c sugar property,
    // hostmem.c host_memory_backend_init); slots and maxmem come from -m.
    #[test]
    fn guest_whole_ram_from_m() {
        let q = ok("-m 4G");
        assert_eq!(q.guest, GuestMemory { regions: vec![boot(None, 4 * GIB)], ..GuestMemory::default() });
        let q = ok("-m 4G,slots=2,maxmem=8G -mem-path /dev/hugepages1G -mem-prealloc -machine mem-merge=off");
        assert_eq!(
            q.guest,
            GuestMemory {
                regions: vec![Region {
                    source: Source::File,
                    pages: Pages::Huge(gib(1)),
                    prealloc: true,
                    merge: false,
                    ..boot(None, 4 * GIB)
                }],
                slots: Some(2),
                maxmem: gib(8),
                ..GuestMemory::default()
            }
        );
        // A file that is not on hugetlbfs, and the host's default huge page
        // size when the mount name carries none.
        assert_eq!(ok("-m 1G -mem-path /var/lib/vm/ram").guest.regions[0].pages, Pages::Small);
        assert_eq!(ok("-m 1G -mem-path /dev/hugepages").guest.regions[0].pages, Pages::Huge(None));
    }

    // numa.c: each node with memdev= holds its backend
    // (numa_init_memdev_container); nodes are regions in nodeid order, not
    // command-line order, and a memory-less node holds none.
    #[test]
    fn guest_numa_regions_in_nodeid_order() {
        let q = ok("-m 3G -object memory-backend-memfd,id=b,size=1G -object memory-backend-ram,id=a,size=2G \
                    -numa node,nodeid=1,memdev=b -numa node,nodeid=0,memdev=a -numa node,nodeid=2");
        assert_eq!(
            q.guest.regions,
            vec![boot(Some(0), 2 * GIB), Region { source: Source::Memfd, share: true, ..boot(Some(1), GIB) }]
        );
    }

    // libvirt's hugepages-numa-nodeset and hugepages-numa-nodeset-part:
    // cells on 1 GiB and 2 MiB pages, or plain RAM next to hugetlbfs, each
    // backend with its own page size (hostmem-file.c). The summary folds
    // them: all huge with no one size, or not all huge.
    #[test]
    fn numa_cells_with_different_page_sizes() {
        let q = ok("-m 3G \
             -object '{\"qom-type\":\"memory-backend-file\",\"id\":\"ram-node0\",\"mem-path\":\"/dev/hugepages1G/libvirt/qemu/1-vm\",\"prealloc\":true,\"size\":1073741824}' \
             -numa node,nodeid=0,cpus=0,memdev=ram-node0 \
             -object '{\"qom-type\":\"memory-backend-file\",\"id\":\"ram-node1\",\"mem-path\":\"/dev/hugepages2M/libvirt/qemu/1-vm\",\"prealloc\":true,\"size\":2147483648}' \
             -numa node,nodeid=1,cpus=1,memdev=ram-node1");
        assert_eq!((q.hugepages, q.hugepage_size, q.prealloc), (Some(true), None, Some(true)));
        let huge = |node, bytes, page| Region {
            source: Source::File,
            pages: Pages::Huge(page),
            prealloc: true,
            ..boot(Some(node), bytes)
        };
        assert_eq!(q.guest.regions, vec![huge(0, GIB, gib(1)), huge(1, 2 * GIB, mib(2))]);

        let q = ok("-m 1G -object memory-backend-ram,id=ram-node0,size=256M -numa node,nodeid=0,memdev=ram-node0 \
                    -object memory-backend-file,id=ram-node1,mem-path=/dev/hugepages1G/vm,prealloc=on,size=768M \
                    -numa node,nodeid=1,memdev=ram-node1");
        assert_eq!((q.hugepages, q.hugepage_size, q.prealloc), (Some(false), None, Some(false)));
        assert_eq!(q.guest.regions, vec![boot(Some(0), 256 * MIB), huge(1, 768 * MIB, gib(1))]);
    }

    // A backend serves one user: machine_consume_memdev, pc_dimm_pre_plug
    // ("can't use already busy memdev"), virtio-mem ("specifies a busy
    // memdev").
    #[test]
    fn memory_device_backend_used_once() {
        let e = fails(
            "-m 1G,slots=2,maxmem=4G -object memory-backend-ram,id=r,size=1G -machine memory-backend=r \
                       -device pc-dimm,memdev=r",
        );
        assert_eq!(e.token, "memdev=r");
        assert!(e.message.contains("already used by guest RAM"), "{}", e.message);
        let e = fails(
            "-m 1G,slots=2,maxmem=4G -object memory-backend-ram,id=d,size=1G \
                       -device pc-dimm,memdev=d -device virtio-mem-pci,memdev=d",
        );
        assert!(e.message.contains("already used by an earlier -device pc-dimm"), "{}", e.message);
    }
}
