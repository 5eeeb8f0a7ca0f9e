//! NUMA nodes (`-numa node`): reading each node with its memdev= or legacy
//! mem=, and the checks QEMU makes of them once the whole line is known
//! (node ids without gaps, legacy mem= only on machine types 5.0 and
//! older).

use super::reader::Reader;
use super::said::NumaNode;
use super::words::{Span, Text, parse_uint, split_items, value_span};
use super::{MIB, QemuError};
use crate::units::ByteSize;

/// QEMU's `MAX_NODES`: NUMA node ids are below this.
const MAX_NUMA_NODES: u64 = 128;

impl Reader<'_> {
    /// `-numa node[,memdev=id][,cpus=...][,nodeid=n][,initiator=n]`; the
    /// other -numa types (dist, cpu, hmat-lb, hmat-cache) do not move
    /// memory and are skipped.
    pub(super) fn opt_numa(&mut self, opt: &Text, arg: &Text) -> Result<(), QemuError> {
        let ctx = format!("`{} {}`", self.raw(opt.span), self.raw(arg.span));
        let items = split_items(arg);
        let type_item = items.iter().enumerate().find(|(i, it)| match &it.key {
            Some(k) => k.s == "type",
            None => *i == 0,
        });
        let Some((_, type_item)) = type_item else {
            return Err(self
                .err(arg.span, format!("{ctx} does not start with a type (node, dist, cpu, hmat-lb or hmat-cache)")));
        };
        match type_item.value.s.as_str() {
            "node" => {}
            "dist" | "cpu" | "hmat-lb" | "hmat-cache" => return Ok(()),
            _ => {
                return Err(self.err(
                    type_item.value.span,
                    format!(
                        "`{}` in {ctx} is not a -numa type: use node, dist, cpu, hmat-lb or hmat-cache",
                        self.raw(type_item.value.span)
                    ),
                ));
            }
        }
        let mut id = None;
        let mut memdev = None;
        let mut mem = None;
        for (i, item) in items.iter().enumerate() {
            let Some(key) = &item.key else {
                if i == 0 {
                    continue;
                }
                return Err(self.bare_item(item, &ctx, "nodeid, cpus, mem, memdev, initiator"));
            };
            let vspan = value_span(item);
            match key.s.as_str() {
                "type" | "cpus" | "initiator" => {}
                "nodeid" => {
                    let n = parse_uint(&item.value.s).filter(|&n| n < MAX_NUMA_NODES).ok_or_else(|| {
                        self.err(vspan, format!("`{}` in {ctx}: nodeid is a number from 0 to 127", self.raw(vspan)))
                    })?;
                    id = Some(n);
                }
                "memdev" => {
                    if item.value.s.is_empty() {
                        return Err(self.err(vspan, format!("{ctx}: memdev= needs the id of a memory backend")));
                    }
                    memdev = Some((item.value.s.clone(), vspan));
                }
                "mem" => {
                    // numa.c parse_numa: "Fix up legacy suffix-less format"
                    // with qemu_strtosz_MiB, so a bare number is MiB as for
                    // -m. Whether the machine type still takes mem= is
                    // checked once the whole line is read.
                    let size = ByteSize::parse_with_default_unit(&item.value.s, MIB)
                        .map_err(|e| self.err(vspan, format!("bad size `{}` in {ctx}: {e}", self.raw(vspan))))?;
                    mem = Some((size, item.whole.span));
                }
                other => {
                    return Err(self.err(
                        item.whole.span,
                        format!(
                            "unknown key `{other}` in {ctx}: -numa node takes nodeid, cpus, mem, memdev and initiator"
                        ),
                    ));
                }
            }
        }
        // numa.c parse_numa_node: without nodeid= a node takes the next
        // number; each id may appear once.
        let id = id.unwrap_or(self.numa.len() as u64);
        if self.numa.iter().any(|n| n.id == id) {
            return Err(self.err(arg.span, format!("{ctx}: NUMA node {id} is defined twice")));
        }
        // parse_numa_node: once one node has used mem= (or memdev=), no node
        // may use the other, this one included.
        let had_mem = self.numa.iter().any(|n| n.mem.is_some()) || mem.is_some();
        let had_memdev = self.numa.iter().any(|n| n.memdev.is_some()) || memdev.is_some();
        let mixed = match (&mem, &memdev) {
            (Some((_, span)), _) if had_memdev => Some(*span),
            (_, Some((_, span))) if had_mem => Some(*span),
            _ => None,
        };
        if let Some(span) = mixed {
            return Err(self.err(
                span,
                format!(
                    "`{}` in {ctx}: QEMU says \"numa configuration should use either mem= or memdev=, mixing \
                     both is not allowed\"; give every node a memdev=",
                    self.raw(span)
                ),
            ));
        }
        self.numa.push(NumaNode { id, memdev, mem, span: arg.span });
        Ok(())
    }

    /// The checks on the NUMA nodes that need the whole line read: legacy
    /// mem= only where the machine type takes it, and node ids without gaps.
    pub(super) fn check_numa_nodes(&self) -> Result<(), QemuError> {
        // numa.c parse_numa_node: legacy mem= only on the machine types
        // that still have numa_mem_supported.
        if let Some((_, mem_span)) = self.numa.iter().find_map(|n| n.mem)
            && !numa_mem_supported(self.machine_type.as_ref().map(|(t, _)| t.as_str()))
        {
            return Err(self.numa_mem_refused(mem_span));
        }
        // numa_complete_configuration: "No support for sparse NUMA node IDs
        // yet", the largest missing id reported first.
        if let Some(last) = self.numa.iter().max_by_key(|n| n.id)
            && let Some(missing) = (0..last.id).rev().find(|i| !self.numa.iter().any(|n| n.id == *i))
        {
            return Err(self.err(
                last.span,
                format!(
                    "`{}`: NUMA node ids run from 0 without gaps, and node {missing} is missing \
                     (QEMU: \"numa: Node ID missing: {missing}\")",
                    self.raw(last.span)
                ),
            ));
        }
        Ok(())
    }

    /// numa.c parse_numa_node's refusal of mem= on newer machine types.
    fn numa_mem_refused(&self, span: Span) -> QemuError {
        let which = match self.machine_type.as_ref().map(|(t, _)| t.as_str()) {
            None => "no -machine type is given, and QEMU's default is the newest pc-i440fx".to_string(),
            Some("pc") => "`pc` is the newest pc-i440fx machine type".to_string(),
            Some("q35") => "`q35` is the newest pc-q35 machine type".to_string(),
            Some(t) => format!("machine type `{t}`"),
        };
        self.err(
            span,
            format!(
                "`{}`: QEMU says \"Parameter -numa node,mem is not supported by this machine type\" ({which}; \
                 only pc-i440fx-5.0, pc-q35-5.0 and older take it): use -numa node,memdev instead, e.g. \
                 -object memory-backend-ram,id=m0,size=... and memdev=m0",
                self.raw(span)
            ),
        )
    }
}

/// Whether a machine type still takes legacy `-numa node,mem=`
/// (`numa_mem_supported`): hw/i386/pc_piix.c and pc_q35.c set it in
/// pc_i440fx_5_0_machine_options / pc_q35_5_0_machine_options, which every
/// older version inherits. 5.1 and later refuse it, and so do the `pc` and
/// `q35` aliases and the default machine (all the newest). Machine types of
/// other families are not modelled and count as refusing.
fn numa_mem_supported(machine: Option<&str>) -> bool {
    let Some(version) = machine.and_then(|t| t.strip_prefix("pc-i440fx-").or_else(|| t.strip_prefix("pc-q35-"))) else {
        return false;
    };
    let Some((major, minor)) = version.split_once('.') else { return false };
    match (major.parse::<u32>(), minor.parse::<u32>()) {
        (Ok(major), Ok(minor)) => (major, minor) <= (5, 0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{GIB, boot, fails, gib, mib, ok};
    use super::*;
    use crate::scenario::guestmem::{Pages, Region, Source};

    // numa.c: "'-machine memory-backend' and '-numa memdev' properties are
    // mutually exclusive"; machine_consume_memdev: a backend is used once;
    // parse_numa_node refuses -numa node,mem= on the default machine type
    // (the newest, numa_mem_supported unset).
    #[test]
    fn numa_refusals() {
        let e = fails(
            "-object memory-backend-ram,id=m0,size=1G -object memory-backend-ram,id=m1,size=1G \
                       -machine memory-backend=m0 -numa node,memdev=m1",
        );
        assert!(e.message.contains("cannot both give guest RAM"), "{}", e.message);
        let e = fails("-m 2G -object memory-backend-ram,id=m0,size=1G -numa node,memdev=m0 -numa node,memdev=m0");
        assert!(e.message.contains("given to two NUMA nodes"), "{}", e.message);
        let e = fails("-m 2G -numa node,mem=1G -numa node,mem=1G");
        assert_eq!(e.token, "mem=1G");
        assert!(e.message.contains("not supported by this machine type"), "{}", e.message);
        let e = fails("-m 2G -numa node -numa node");
        assert!(e.message.contains("no -numa node has memdev="), "{}", e.message);
        let e = fails("-numa node,nodeid=0,memdev=m0 -numa node,nodeid=0");
        assert!(e.message.contains("defined twice"), "{}", e.message);
        let e = fails("-numa blob");
        assert_eq!(e.token, "blob");
        let e = fails("-numa node,colour=red");
        assert_eq!(e.token, "colour=red");
        fails("-numa node,nodeid=200,memdev=m0");
        fails("-numa node,memdev=nothere -m 128M");
    }

    // numa.c: a node without memdev is a memory-less node once others
    // carry the RAM; cpu/dist/hmat entries do not move memory.
    #[test]
    fn numa_memoryless_nodes_and_other_types() {
        let q = ok("-m 1G -object memory-backend-ram,id=m0,size=1G -numa node,nodeid=0,memdev=m0 \
                    -numa node,nodeid=1 -numa cpu,node-id=1,socket-id=1 -numa hmat-lb,initiator=0,target=0");
        assert_eq!(q.memory, gib(1));
    }

    // numa_complete_configuration: "No support for sparse NUMA node IDs
    // yet" ("numa: Node ID missing: N", the largest missing id first).
    #[test]
    fn numa_node_ids_without_gaps() {
        let e =
            fails("-m 1G -object memory-backend-ram,id=m0,size=1G -numa node,nodeid=0,memdev=m0 -numa node,nodeid=3");
        assert_eq!(e.token, "node,nodeid=3");
        assert!(e.message.contains("Node ID missing: 2"), "{}", e.message);
    }

    // numa.c parse_numa_node takes mem= where the machine type has
    // numa_mem_supported (hw/i386/pc_piix.c pc_i440fx_5_0_machine_options,
    // pc_q35.c pc_q35_5_0_machine_options, inherited by older versions);
    // parse_numa reads a bare number as MiB (qemu_strtosz_MiB). The line is
    // libvirt's cpu-numa-memory-oldstyle: 2 x 107 MiB = 219136 KiB.
    #[test]
    fn legacy_numa_mem_on_old_machine_types() {
        let q = ok("-machine pc-i440fx-5.0,usb=off,acpi=off -m size=219136k \
                    -numa node,nodeid=0,cpus=0-7,mem=107 -numa node,nodeid=1,cpus=8-15,mem=107");
        assert_eq!(q.memory, mib(214));
        assert_eq!(q.guest.regions, vec![boot(Some(0), 107 * MIB), boot(Some(1), 107 * MIB)]);
        // Legacy nodes share the RAM QEMU creates from -m (numa.c
        // numa_uses_legacy_mem), so -mem-path and -mem-prealloc back them
        // all; a node without mem= holds none.
        let q = ok("-M pc-q35-4.2 -m 3G -mem-path /dev/hugepages2M -mem-prealloc \
                    -numa node,mem=1G -numa node,mem=2048 -numa node");
        let huge = |node, bytes| Region {
            source: Source::File,
            pages: Pages::Huge(mib(2)),
            prealloc: true,
            ..boot(Some(node), bytes)
        };
        assert_eq!(q.guest.regions, vec![huge(0, GIB), huge(1, 2 * GIB)]);
        assert_eq!((q.hugepages, q.prealloc), (Some(true), Some(true)));
        for machine in ["pc-i440fx-2.12", "pc-q35-5.0", "type=pc-i440fx-4.0,accel=kvm"] {
            ok(&format!("-machine {machine} -m 2G -numa node,mem=1G -numa node,mem=1G"));
        }
    }

    // parse_numa_node: "Parameter -numa node,mem is not supported by this
    // machine type" on 5.1 and later, the pc / q35 aliases and the default
    // machine (the newest); numa_complete_configuration: "total memory for
    // NUMA nodes should equal RAM size"; "numa configuration should use
    // either mem= or memdev=, mixing both is not allowed".
    #[test]
    fn legacy_numa_mem_refused_where_qemu_refuses() {
        for (machine, why) in [
            ("-machine pc-i440fx-5.1", "machine type `pc-i440fx-5.1`"),
            ("-machine pc-q35-8.2", "machine type `pc-q35-8.2`"),
            ("-machine pc", "`pc` is the newest pc-i440fx"),
            ("-M q35", "`q35` is the newest pc-q35"),
            ("", "no -machine type is given"),
        ] {
            let e = fails(&format!("{machine} -m 2G -numa node,mem=1G -numa node,mem=1G"));
            assert_eq!(e.token, "mem=1G");
            assert!(
                e.message.contains("Parameter -numa node,mem is not supported by this machine type"),
                "{}",
                e.message
            );
            assert!(e.message.contains(why), "{machine}: {}", e.message);
        }
        let e = fails("-machine pc-i440fx-5.0 -m 2G -numa node,mem=1G -numa node,mem=512");
        assert_eq!(e.token, "2G");
        assert!(e.message.contains("mem= add up to 1.5 GiB but -m says 2 GiB"), "{}", e.message);
        assert!(e.message.contains("total memory for NUMA nodes should equal RAM size"), "{}", e.message);
        let e = fails(
            "-machine pc-i440fx-5.0 -m 2G -object memory-backend-ram,id=m0,size=1G \
                       -numa node,memdev=m0 -numa node,mem=1G",
        );
        assert_eq!(e.token, "mem=1G");
        assert!(e.message.contains("mixing both is not allowed"), "{}", e.message);
        fails("-machine pc-i440fx-5.0 -numa node,mem=lots");
    }
}
