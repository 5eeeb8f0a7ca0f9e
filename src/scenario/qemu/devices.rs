//! Devices (`-device`): the memory devices (pc-dimm, nvdimm, virtio-mem)
//! and their regions, checked as QEMU checks them when it plugs them
//! (slots, room below maxmem, NUMA node, nvdimm label and read-only
//! backends, virtio-mem's sizes and block size), the virtio-balloon and
//! its options, and the memdev= any other device takes.

use super::properties::{Prop, Val};
use super::reader::Reader;
use super::said::{Backend, MemDevice};
use super::words::{Text, split_items};
use super::{MIB, QemuError};
use crate::scenario::guestmem::{BalloonDevice, Pages, Region, RegionKind};
use crate::units::ByteSize;

impl Reader<'_> {
    /// `-device driver[,prop=value...]` (QemuOpts or JSON). The memory
    /// devices (pc-dimm, nvdimm, virtio-mem) and a virtio-balloon are read;
    /// any other device only registers the backend it takes by `memdev=`.
    /// Later properties win, as in QemuOpts and keyval.
    pub(super) fn opt_device(&mut self, opt: &Text, arg: &Text) -> Result<(), QemuError> {
        let (driver, props) = if arg.s.trim_start().starts_with('{') {
            let map = self.json_object(opt, arg)?;
            let driver = map.get("driver").and_then(|v| v.as_str()).map(str::to_string);
            let props = map
                .iter()
                .filter(|(k, _)| k.as_str() != "driver")
                .map(|(k, v)| Prop { key: k.clone(), val: Val::Json(v.clone()), span: arg.span })
                .collect::<Vec<_>>();
            (driver, props)
        } else {
            let mut driver = None;
            let mut props = Vec::new();
            for (i, item) in split_items(arg).into_iter().enumerate() {
                match item.key {
                    None if i == 0 => driver = Some(item.value.s),
                    Some(k) if k.s == "driver" => driver = Some(item.value.s),
                    Some(k) => props.push(Prop { key: k.s, val: Val::Text(item.value), span: item.whole.span }),
                    None => {}
                }
            }
            (driver, props)
        };
        let driver = driver.unwrap_or_default();
        let ctx = format!("{} {driver}", self.raw(opt.span));
        if let Some(p) = props.iter().rev().find(|p| p.key == "memdev") {
            let id = self.prop_str(&ctx, p)?;
            self.device_memdevs.push((id, p.span, driver.clone()));
        }
        if driver.starts_with("virtio-balloon") {
            // hw/virtio/virtio-balloon.c: both are bit properties, off by
            // default.
            let mut dev = BalloonDevice::default();
            for p in &props {
                match p.key.as_str() {
                    "deflate-on-oom" => dev.deflate_on_oom = self.prop_bool(&ctx, p)?,
                    "free-page-reporting" => dev.free_page_reporting = self.prop_bool(&ctx, p)?,
                    _ => {}
                }
            }
            if self.balloon.is_some() {
                // virtio_balloon_device_realize: qemu_add_balloon_handler
                // takes one handler.
                return Err(self.err(
                    arg.span,
                    format!("{ctx}: QEMU says \"Only one balloon device is supported\"; remove all but one"),
                ));
            }
            self.balloon = Some(dev);
            return Ok(());
        }
        let kind = match driver.as_str() {
            "pc-dimm" => RegionKind::Dimm,
            "nvdimm" => RegionKind::Nvdimm,
            "virtio-mem" | "virtio-mem-pci" | "virtio-mem-ccw" => RegionKind::VirtioMem,
            _ => return Ok(()),
        };
        let mut d = MemDevice {
            kind,
            driver: driver.clone(),
            memdev: None,
            node: None,
            slot: None,
            requested_size: None,
            block_size: None,
            prealloc: false,
            unarmed: false,
            label_size: 0,
            span: arg.span,
        };
        for p in &props {
            match (p.key.as_str(), kind) {
                ("memdev", _) => d.memdev = Some((self.prop_str(&ctx, p)?, p.span)),
                ("node", _) => d.node = Some((self.prop_uint(&ctx, p)?, p.span)),
                ("slot", RegionKind::Dimm | RegionKind::Nvdimm) => d.slot = Some((self.prop_uint(&ctx, p)?, p.span)),
                ("requested-size", RegionKind::VirtioMem) => {
                    d.requested_size = Some((self.prop_size(&ctx, p)?, p.span))
                }
                ("block-size", RegionKind::VirtioMem) => d.block_size = Some((self.prop_size(&ctx, p)?, p.span)),
                ("prealloc", RegionKind::VirtioMem) => d.prealloc = self.prop_bool(&ctx, p)?,
                ("unarmed", RegionKind::Nvdimm) => d.unarmed = self.prop_bool(&ctx, p)?,
                ("label-size", RegionKind::Nvdimm) => d.label_size = self.prop_size(&ctx, p)?.bytes(),
                _ => {}
            }
        }
        self.devices.push(d);
        Ok(())
    }

    /// A memory device as a region, checked as QEMU checks it when it plugs
    /// the device. `room` is the device memory (maxmem - RAM); `used_room`
    /// and `taken_slots` carry what earlier devices took.
    pub(super) fn device_region(
        &self,
        d: &MemDevice,
        room: u64,
        used_room: &mut u64,
        max_slots: u64,
        taken_slots: &mut Vec<u64>,
    ) -> Result<Region, QemuError> {
        let ctx = format!("-device {}", d.driver);
        let Some((id, id_span)) = &d.memdev else {
            return Err(self.err(
                d.span,
                format!(
                    "{ctx} has no memdev=: QEMU says \"'memdev' property is not set\"; name the memory backend \
                     it uses, e.g. memdev=m1"
                ),
            ));
        };
        let b = self.lookup_backend(id, *id_span, &format!("{ctx},memdev"))?;
        if d.kind == RegionKind::Nvdimm {
            // pc_memory_pre_plug.
            if !self.nvdimm {
                return Err(
                    self.err(d.span, format!("{ctx}: QEMU says \"nvdimm is not enabled: add 'nvdimm=on' to '-M'\""))
                );
            }
            // nvdimm_prepare_memory_region: the label sits at the end of
            // the backend, and a read-only backend (rom=auto follows
            // readonly=) needs an unarmed NVDIMM.
            if b.size.bytes() <= d.label_size {
                return Err(self.err(
                    d.span,
                    format!(
                        "{ctx}: QEMU says \"the size of memdev {id} ({:#x}) is too small to contain nvdimm label \
                         ({:#x}) and aligned PMEM\"",
                        b.size.bytes(),
                        d.label_size
                    ),
                ));
            }
            if b.readonly && !d.unarmed {
                return Err(self.err(
                    d.span,
                    format!("{ctx}: QEMU says \"'unarmed' property must be 'on' since memdev {id} is read-only\""),
                ));
            }
        }
        // pc_dimm_get_free_slot: a DIMM takes its slot= or the first free
        // one below -m slots=.
        if matches!(d.kind, RegionKind::Dimm | RegionKind::Nvdimm) {
            if max_slots == 0 {
                return Err(self.err(
                    d.span,
                    format!(
                        "{ctx}: QEMU says \"no slots where allocated, please specify the 'slots' option\": \
                         give -m slots=N,maxmem=SIZE"
                    ),
                ));
            }
            let slot = match d.slot {
                Some((s, span)) if s >= max_slots => {
                    return Err(self.err(
                        span,
                        format!("{ctx}: QEMU says \"invalid slot# {s}, should be less than {max_slots}\""),
                    ));
                }
                Some((s, span)) if taken_slots.contains(&s) => {
                    return Err(self.err(span, format!("{ctx}: QEMU says \"slot {s} is busy\"")));
                }
                Some((s, _)) => s,
                None => (0..max_slots).find(|s| !taken_slots.contains(s)).ok_or_else(|| {
                    self.err(
                        d.span,
                        format!("{ctx}: QEMU says \"no free slots available\": -m slots={max_slots} are all taken"),
                    )
                })?,
            };
            taken_slots.push(slot);
        }
        // memory_device_pre_plug: devices live in the space between RAM
        // and maxmem. An nvdimm maps its backend less the label area.
        if room == 0 {
            return Err(self.err(
                d.span,
                format!(
                    "{ctx}: memory devices need room above the RAM, and without -m maxmem= larger than the RAM \
                     QEMU has none (\"memory devices (e.g. for memory hotplug) are not enabled, please \
                     specify the maxmem option\")"
                ),
            ));
        }
        let mapped =
            if d.kind == RegionKind::Nvdimm { b.size.bytes().saturating_sub(d.label_size) } else { b.size.bytes() };
        if used_room.checked_add(mapped).is_none_or(|total| total > room) {
            return Err(self.err(
                d.span,
                format!(
                    "{ctx}: memory backend `{id}` ({}) does not fit: QEMU says \"not enough space, currently \
                     {:#x} in use of total space for memory devices {room:#x}\"; raise maxmem",
                    b.size, *used_room
                ),
            ));
        }
        *used_room += mapped;
        // pc_dimm_realize / virtio_mem_device_realize: node must name a
        // NUMA node, or be 0 when the guest has none.
        let cells = self.numa.len() as u64;
        let node = d.node.map_or(0, |(n, _)| n);
        if let Some((n, span)) = d.node
            && ((cells > 0 && n >= cells) || (cells == 0 && n != 0))
        {
            return Err(self.err(
                span,
                format!(
                    "{ctx}: node {n} is not a NUMA node of this guest (QEMU: \"... which exceeds the number of \
                     numa nodes: {}\")",
                    cells.max(1)
                ),
            ));
        }
        // Without -numa nodes the guest has no cells to name, even where
        // QEMU makes one node implicitly for hotplug.
        let node = (cells > 0).then_some(node as u32);
        let mut region = match d.kind {
            RegionKind::VirtioMem => {
                let requested = self.virtio_mem_checks(d, b, &ctx)?;
                let mut r = self.backend_region(b, d.kind, node, requested, b.size);
                // The device preallocates what it plugs; its backend may
                // not (checked above).
                r.prealloc = d.prealloc;
                r
            }
            _ => self.backend_region(b, d.kind, node, b.size, b.size),
        };
        // hw/mem/nvdimm.c: unarmed=on tells the guest the NVDIMM is not
        // writable (libvirt writes it for <readonly/>).
        if d.kind == RegionKind::Nvdimm {
            region.readonly |= d.unarmed;
        }
        Ok(region)
    }

    /// virtio_mem_device_realize's checks on its backend and sizes; gives
    /// the size plugged at start (`requested-size`, 0 by default).
    fn virtio_mem_checks(&self, d: &MemDevice, b: &Backend, ctx: &str) -> Result<ByteSize, QemuError> {
        let memdev_span = d.memdev.as_ref().map_or(d.span, |(_, s)| *s);
        if b.prealloc.unwrap_or(self.mem_prealloc) {
            let why = if b.prealloc.is_some() { "prealloc=on" } else { "prealloc=on from -mem-prealloc" };
            return Err(self.err(
                memdev_span,
                format!(
                    "{ctx}: memory backend `{}` has {why}; QEMU says \"'memdev' property specifies a memdev \
                     with preallocation enabled ... Instead, specify 'prealloc=on' for the virtio-mem device\"",
                    b.id
                ),
            ));
        }
        if b.readonly {
            return Err(self.err(
                memdev_span,
                format!("{ctx}: QEMU says \"'memdev' property specifies an unsupported memdev\" (it is read-only)"),
            ));
        }
        if self.mem_lock {
            return Err(
                self.err(d.span, format!("{ctx}: QEMU says \"Incompatible with mlock\" (-overcommit mem-lock is on)"))
            );
        }
        let requested = d.requested_size.map_or(ByteSize(0), |(s, _)| s);
        let req_span = d.requested_size.map_or(d.span, |(_, s)| s);
        // QEMU starts such a device, but the guest can never plug more than
        // the backend holds; the plan would count memory that cannot exist.
        if requested > b.size {
            return Err(self.err(
                req_span,
                format!(
                    "{ctx}: requested-size {requested} is more than its backend `{}` ({}): the guest can plug \
                     at most the backend's size; lower requested-size or enlarge the backend",
                    b.id, b.size
                ),
            ));
        }
        // virtio_mem_default_block_size: the larger of the backend's page
        // size and the THP size (2 MiB on x86-64).
        let page = match self.backend_region(b, d.kind, None, requested, b.size).pages {
            Pages::Huge(Some(p)) => p.bytes(),
            Pages::Huge(None) => 2 * MIB,
            Pages::Small => 4096,
        };
        let (block, block_span) = match d.block_size {
            Some((s, span)) => (s.bytes(), span),
            None => (page.max(2 * MIB), d.span),
        };
        if !block.is_power_of_two() {
            return Err(self.err(block_span, format!("{ctx}: block-size must be a power of two")));
        }
        if block < page {
            return Err(self.err(
                block_span,
                format!("{ctx}: QEMU says \"'block-size' property has to be at least the page size ({page:#x})\""),
            ));
        }
        if !requested.bytes().is_multiple_of(block) {
            return Err(self.err(
                req_span,
                format!(
                    "{ctx}: QEMU says \"'requested-size' property has to be multiples of 'block-size' \
                     ({block:#x})\""
                ),
            ));
        }
        if !b.size.bytes().is_multiple_of(block) {
            return Err(self.err(
                memdev_span,
                format!(
                    "{ctx}: QEMU says \"'memdev' property memdev size has to be multiples of 'block-size' \
                     ({block:#x})\""
                ),
            ));
        }
        Ok(requested)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{GIB, boot, fails, gib, mib, ok};
    use super::*;
    use crate::scenario::guestmem::Source;

    // hw/mem/pc-dimm.c: a DIMM is its backend (size, facts) on NUMA node
    // `node` (default 0); devices follow boot RAM in command-line order,
    // in keyval or JSON form (libvirt's memory-hotplug-dimm).
    #[test]
    fn dimm_regions() {
        let q = ok("-m 1G,slots=4,maxmem=8G -object memory-backend-ram,id=r0,size=1G -numa node,nodeid=0,memdev=r0 \
                    -numa node,nodeid=1 \
                    -object memory-backend-file,id=d0,size=512M,mem-path=/dev/hugepages2M/vm,prealloc=on \
                    -device pc-dimm,id=dimm0,memdev=d0,node=1 \
                    -object '{\"qom-type\":\"memory-backend-ram\",\"id\":\"d1\",\"size\":536870912}' \
                    -device '{\"driver\":\"pc-dimm\",\"memdev\":\"d1\",\"id\":\"dimm1\",\"slot\":3}'");
        let dimm = |node, source, pages, prealloc| Region {
            kind: RegionKind::Dimm,
            source,
            pages,
            prealloc,
            ..boot(Some(node), 512 * MIB)
        };
        assert_eq!(
            q.guest.regions,
            vec![
                boot(Some(0), GIB),
                dimm(1, Source::File, Pages::Huge(mib(2)), true),
                dimm(0, Source::Anonymous, Pages::Small, false),
            ]
        );
        // The summary is boot RAM only.
        assert_eq!((q.memory, q.hugepages, q.prealloc), (gib(1), Some(false), None));
        assert_eq!(q.guest.ram_bytes(), 2 * GIB);
        // Without NUMA cells a device has no cell to name, even though QEMU
        // makes node 0 implicitly for hotplug (auto_enable_numa_with_memhp).
        let q = ok("-m 1G,slots=1,maxmem=2G -object memory-backend-ram,id=d0,size=1G -device pc-dimm,memdev=d0");
        assert_eq!(q.guest.regions[1], Region { kind: RegionKind::Dimm, ..boot(None, GIB) });
    }

    // hw/mem/nvdimm.c: unarmed=on tells the guest it cannot write (libvirt's
    // memory-hotplug-nvdimm-readonly), as does a readonly=on backend;
    // hw/i386/pc.c pc_memory_pre_plug: "nvdimm is not enabled: add
    // 'nvdimm=on' to '-M'".
    #[test]
    fn nvdimm_regions() {
        let line = |dev: &str, machine: &str| {
            format!(
                "-machine pc{machine} -m 1G,slots=2,maxmem=2G \
                 -object memory-backend-file,id=nv,size=512M,mem-path=/tmp/nvdimm,share=on -device {dev}"
            )
        };
        let nvdimm = Region { kind: RegionKind::Nvdimm, source: Source::File, share: true, ..boot(None, 512 * MIB) };
        let q = ok(&line("nvdimm,memdev=nv,id=nv0", ",nvdimm=on"));
        assert_eq!(q.guest.regions[1], nvdimm);
        assert_eq!(q.guest.ram_bytes(), GIB, "an nvdimm is not RAM");
        let q = ok(&line("nvdimm,memdev=nv,id=nv0,unarmed=on,label-size=128K", ",nvdimm=on"));
        assert_eq!(q.guest.regions[1], Region { readonly: true, ..nvdimm });
        let e = fails(&line("nvdimm,memdev=nv,id=nv0", ""));
        assert!(e.message.contains("nvdimm is not enabled"), "{}", e.message);
        assert_eq!(e.token, "nvdimm,memdev=nv,id=nv0");
        // nvdimm_prepare_memory_region: the label must leave room for
        // data, and a read-only backend needs unarmed=on.
        let e = fails(&line("nvdimm,memdev=nv,label-size=512M", ",nvdimm=on"));
        assert!(e.message.contains("too small to contain nvdimm label"), "{}", e.message);
        let ro = "-M pc,nvdimm=on -m 1G,slots=1,maxmem=2G -object memory-backend-file,id=nv,size=512M,mem-path=/n,readonly=on";
        let e = fails(&format!("{ro} -device nvdimm,memdev=nv"));
        assert!(e.message.contains("'unarmed' property must be 'on'"), "{}", e.message);
        assert!(ok(&format!("{ro} -device nvdimm,memdev=nv,unarmed=on")).guest.regions[1].readonly);
    }

    // hw/virtio/virtio-mem.c: the device plugs `requested-size` (0 by
    // default) of its backend; its own prealloc=on preallocates what it
    // plugs, and virtio_mem_device_realize refuses a backend with
    // preallocation ("Instead, specify 'prealloc=on' for the virtio-mem
    // device"), -overcommit mem-lock ("Incompatible with mlock") and sizes
    // that are not multiples of the block size (2 MiB by default on x86-64,
    // virtio_mem_default_block_size). Shape from libvirt's
    // memory-hotplug-virtio-mem.
    #[test]
    fn virtio_mem_regions() {
        let base = "-m 2G,maxmem=16G -object memory-backend-ram,id=vm0,size=1G,reserve=off";
        let q = ok(&format!(
            "{base} -device virtio-mem-pci,id=v0,memdev=vm0 \
             -object memory-backend-file,id=vm1,mem-path=/dev/hugepages2M/vm,size=2G,reserve=off \
             -device '{{\"driver\":\"virtio-mem-pci\",\"block-size\":2097152,\"requested-size\":1073741824,\"memdev\":\"vm1\",\"prealloc\":true,\"id\":\"v1\"}}'"
        ));
        assert_eq!(
            q.guest.regions[1..],
            [
                Region { kind: RegionKind::VirtioMem, size: ByteSize(0), ..boot(None, GIB) },
                Region {
                    kind: RegionKind::VirtioMem,
                    size: ByteSize(GIB),
                    source: Source::File,
                    pages: Pages::Huge(mib(2)),
                    prealloc: true,
                    ..boot(None, 2 * GIB)
                },
            ]
        );
        assert_eq!(q.guest.ram_bytes(), 3 * GIB);
        let e = fails(
            "-m 2G,maxmem=4G -object memory-backend-ram,id=vm0,size=1G,prealloc=on -device virtio-mem-pci,memdev=vm0",
        );
        assert!(e.message.contains("specify 'prealloc=on' for the virtio-mem device"), "{}", e.message);
        assert_eq!(e.token, "memdev=vm0");
        let e = fails(
            "-m 2G,maxmem=4G -mem-prealloc -object memory-backend-ram,id=vm0,size=1G -device virtio-mem-pci,memdev=vm0",
        );
        assert!(e.message.contains("prealloc=on from -mem-prealloc"), "{}", e.message);
        let e = fails(&format!("{base} -overcommit mem-lock=on -device virtio-mem-pci,memdev=vm0"));
        assert!(e.message.contains("Incompatible with mlock"), "{}", e.message);
        let e = fails(&format!("{base} -device virtio-mem-pci,memdev=vm0,requested-size=3M"));
        assert_eq!(e.token, "requested-size=3M");
        assert!(e.message.contains("has to be multiples of 'block-size' (0x200000)"), "{}", e.message);
        let e = fails("-m 2G,maxmem=4G -object memory-backend-ram,id=vm0,size=3M -device virtio-mem-pci,memdev=vm0");
        assert!(e.message.contains("memdev size has to be multiples"), "{}", e.message);
        // QEMU starts this one, but the guest can never plug 2 GiB of a
        // 1 GiB backend.
        let e = fails(&format!("{base} -device virtio-mem-pci,memdev=vm0,requested-size=2G"));
        assert!(e.message.contains("more than its backend"), "{}", e.message);
    }

    // hw/mem/pc-dimm.c pc_dimm_get_free_slot: "no slots where allocated",
    // "invalid slot# N, should be less than M", "slot N is busy", "no free
    // slots available"; hw/mem/memory-device.c: devices need maxmem above
    // the RAM, and "not enough space" past it (an nvdimm maps its backend
    // less the label). virtio-mem takes no slot.
    #[test]
    fn memory_device_slots_and_room() {
        let dimms = |m: &str, devs: &[&str]| {
            let mut line = format!("-m {m}");
            for (i, d) in devs.iter().enumerate() {
                line.push_str(&format!(" -object memory-backend-ram,id=d{i},size=1G -device pc-dimm,memdev=d{i}{d}"));
            }
            line
        };
        ok(&dimms("1G,slots=2,maxmem=3G", &["", ""]));
        let e = fails(&dimms("1G,maxmem=3G", &[""]));
        assert!(e.message.contains("no slots where allocated"), "{}", e.message);
        let e = fails(&dimms("1G,slots=2,maxmem=4G", &["", "", ""]));
        assert!(e.message.contains("no free slots available"), "{}", e.message);
        let e = fails(&dimms("1G,slots=2,maxmem=3G", &[",slot=2"]));
        assert_eq!(e.token, "slot=2");
        assert!(e.message.contains("invalid slot# 2, should be less than 2"), "{}", e.message);
        let e = fails(&dimms("1G,slots=2,maxmem=3G", &[",slot=1", ",slot=1"]));
        assert!(e.message.contains("slot 1 is busy"), "{}", e.message);
        // An explicit slot is taken first come, so the automatic one moves on.
        ok(&dimms("1G,slots=2,maxmem=3G", &[",slot=0", ""]));
        let e = fails(&dimms("1G,slots=2,maxmem=2G", &["", ""]));
        assert!(
            e.message
                .contains("not enough space, currently 0x40000000 in use of total space for memory devices 0x40000000"),
            "{}",
            e.message
        );
        let e = fails("-m 1G -object memory-backend-ram,id=v,size=1G -device virtio-mem-pci,memdev=v");
        assert!(e.message.contains("please specify the maxmem option"), "{}", e.message);
        ok("-m 1G,maxmem=2G -object memory-backend-ram,id=v,size=1G -device virtio-mem-pci,memdev=v");
        // 1 GiB of room holds a 1 GiB + 128 KiB nvdimm whose label is 128 KiB.
        ok("-M pc,nvdimm=on -m 1G,slots=1,maxmem=2G -object memory-backend-file,id=n,size=1048704K,mem-path=/tmp/n \
            -device nvdimm,memdev=n,label-size=128K");
        let e = fails("-m 1G,slots=1,maxmem=2G -device pc-dimm,id=dimm0");
        assert!(e.message.contains("'memdev' property is not set"), "{}", e.message);
        let e = fails("-m 1G,slots=1,maxmem=2G -device pc-dimm,memdev=nope");
        assert!(e.message.contains("Memory backend 'nope' not found"), "{}", e.message);
    }

    // pc_dimm_realize / virtio_mem_device_realize: node must be below the
    // number of NUMA nodes, or 0 when the guest has none ("... which exceeds
    // the number of numa nodes").
    #[test]
    fn memory_device_node_must_exist() {
        let two_cells = "-m 2G,slots=2,maxmem=4G -object memory-backend-ram,id=r0,size=1G -object memory-backend-ram,id=r1,size=1G \
                         -numa node,memdev=r0 -numa node,memdev=r1 -object memory-backend-ram,id=d,size=1G";
        assert_eq!(ok(&format!("{two_cells} -device pc-dimm,memdev=d,node=1")).guest.regions[2].node, Some(1));
        assert_eq!(ok(&format!("{two_cells} -device pc-dimm,memdev=d")).guest.regions[2].node, Some(0));
        let e = fails(&format!("{two_cells} -device pc-dimm,memdev=d,node=2"));
        assert_eq!(e.token, "node=2");
        assert!(e.message.contains("exceeds the number of numa nodes: 2"), "{}", e.message);
        let no_cells = "-m 1G,slots=2,maxmem=4G -object memory-backend-ram,id=d,size=1G";
        assert_eq!(ok(&format!("{no_cells} -device pc-dimm,memdev=d,node=0")).guest.regions[1].node, None);
        let e = fails(&format!("{no_cells} -device pc-dimm,memdev=d,node=1"));
        assert!(e.message.contains("exceeds the number of numa nodes: 1"), "{}", e.message);
    }

    // Any virtio-balloon flavour (pci, ccw, device, transitional) is a
    // balloon; other devices are not memory.
    #[test]
    fn device_balloon() {
        for dev in [
            "virtio-balloon",
            "virtio-balloon-pci",
            "virtio-balloon-ccw",
            "virtio-balloon-device",
            "virtio-balloon-pci,id=balloon0,deflate-on-oom=on",
            "driver=virtio-balloon-pci,id=b0",
            r#"'{"driver":"virtio-balloon-pci","id":"balloon0","bus":"pci.5","addr":"0x0"}'"#,
        ] {
            assert_eq!(ok(&format!("-m 1G -device {dev}")).balloon, Some(true), "{dev}");
        }
        assert_eq!(ok("-m 1G -device virtio-net-pci,netdev=n0 -device e1000").balloon, None);
    }

    // hw/virtio/virtio-balloon.c: deflate-on-oom and free-page-reporting are
    // bit properties, off by default; virtio_balloon_device_realize: "Only
    // one balloon device is supported".
    #[test]
    fn balloon_options() {
        assert_eq!(ok("-m 1G").guest.balloon, None);
        assert_eq!(ok("-m 1G -device virtio-balloon-pci").guest.balloon, Some(BalloonDevice::default()));
        let q = ok("-m 1G -device virtio-balloon-pci,id=b0,deflate-on-oom=on");
        assert_eq!(q.guest.balloon, Some(BalloonDevice { deflate_on_oom: true, free_page_reporting: false }));
        let q = ok(r#"-m 1G -device '{"driver":"virtio-balloon-pci","id":"balloon0","free-page-reporting":true}'"#);
        assert_eq!(q.guest.balloon, Some(BalloonDevice { deflate_on_oom: false, free_page_reporting: true }));
        let e = fails("-m 1G -device virtio-balloon-pci,deflate-on-oom=maybe");
        assert_eq!(e.token, "deflate-on-oom=maybe");
        let e = fails("-m 1G -device virtio-balloon-pci -device virtio-balloon-pci,id=b1");
        assert_eq!(e.token, "virtio-balloon-pci,id=b1");
        assert!(e.message.contains("Only one balloon device is supported"), "{}", e.message);
    }
}
