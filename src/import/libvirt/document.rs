//! The walk over one domain document: the reader's state, the values it
//! reads from elements and attributes (sizes, enums, numbers), the order in
//! which a domain's parts are read, and the parts outside its guest RAM:
//! name and hypervisor, the architecture, `<memtune>`, `<currentMemory>`,
//! `<memballoon>`, the base image of the first disk, oVirt's guaranteed
//! memory, other devices holding host memory, host NUMA binding and QEMU
//! pass-through arguments.

use std::cell::OnceCell;

use roxmltree::{Document, Node};

use super::findings::{ImportError, Warning};
use super::units::{MEMORY_MAX_BYTES, MEMORY_PARAM_UNLIMITED_KIB};
use super::units::{SizeError, kib_size, memory_kib, parse_ull, scaled_kib, show_kib};
use super::{Balloon, Domain, Memtune, VirtType};
use crate::scenario::guestmem::{BalloonDevice, GuestMemory};
use crate::units::ByteSize;

/// The namespace oVirt's engine writes its VM metadata in.
const OVIRT_VM_NS: &str = "http://ovirt.org/vm/1.0";

/// The namespace of libvirt's QEMU pass-through elements.
const QEMU_NS: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

/// One document being read: its tree, the label it is read under, and the
/// warnings so far.
pub(super) struct Reader<'a, 'i> {
    pub(super) doc: &'a Document<'i>,
    pub(super) file: &'a str,
    pub(super) warnings: Vec<Warning>,
    /// Byte offsets where lines start, built on the first position asked
    /// for, so a document with many findings is not rescanned for each.
    pub(super) line_starts: OnceCell<Vec<usize>>,
}

/// The element children of `n` named `name` in no namespace (libvirt's own
/// elements; another namespace's `memory` is not ours).
pub(super) fn children<'a, 'i: 'a>(n: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(move |c| c.is_element() && c.tag_name().namespace().is_none() && c.tag_name().name() == name)
}

pub(super) fn child<'a, 'i: 'a>(n: Node<'a, 'i>, name: &'static str) -> Option<Node<'a, 'i>> {
    children(n, name).next()
}

/// XPath's string value of an element: all its text, in order.
pub(super) fn string_value(n: Node) -> String {
    n.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect()
}

impl<'a, 'i: 'a> Reader<'a, 'i> {
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
    pub(super) fn element_kib(&self, n: Node) -> Result<Option<u64>, ImportError> {
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
    pub(super) fn required_child_kib(&self, parent: Node, name: &'static str) -> Result<u64, ImportError> {
        let Some(n) = child(parent, name) else {
            return Err(self.node_error(parent, None, format!("<{name}> is missing: libvirt requires it here")));
        };
        self.element_kib(n)?.ok_or_else(|| self.node_error(n, None, format!("<{name}> is empty: it needs a size")))
    }

    /// An attribute's size in KiB with its unit in another attribute
    /// (`<cell memory='...' unit='...'>`).
    pub(super) fn attr_kib(&self, n: Node, attr: &str, unit_attr: &str) -> Result<Option<u64>, ImportError> {
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
    pub(super) fn attr_enum(
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

    pub(super) fn attr_u32(&self, n: Node, attr: &str) -> Result<Option<u32>, ImportError> {
        let Some(v) = n.attribute(attr) else {
            return Ok(None);
        };
        match parse_ull(v).ok().and_then(|x| u32::try_from(x).ok()) {
            Some(x) => Ok(Some(x)),
            None => Err(self.attr_error(n, attr, "not a whole number (0 to 4294967295)")),
        }
    }

    // -- the document ------------------------------------------------------

    /// The domain, its parts read in a fixed order (which is the order of
    /// its warnings).
    pub(super) fn domain(mut self) -> Result<Domain, ImportError> {
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
        let vcpus = self.vcpus(root)?;
        self.check_hugepages(&backing, cells.len())?;

        // The sizes and hotplug room, what the balloon leaves the guest at
        // start, then the regions on their backends.
        let sizes = self.sizes(root, &cells, &mems)?;
        let current_memory = self.current_memory(root, sizes.total, balloon_device.is_some())?;
        let regions = self.regions(&backing, &cells, &mems, &sizes);

        let memory = GuestMemory {
            regions,
            slots: sizes.max.and(sizes.slots).filter(|&s| s > 0),
            maxmem: sizes.max.map(kib_size),
            balloon: balloon_device,
            mem_lock: backing.locked,
            // type='qemu' is QEMU's TCG emulator.
            accel: Some(match virt_type {
                VirtType::Kvm => crate::scenario::schema::Accel::Kvm,
                VirtType::Qemu => crate::scenario::schema::Accel::Tcg,
            }),
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
            vcpus,
            warnings: self.warnings,
        })
    }

    /// `<vcpu>N</vcpu>`: a whole number of at least 1.
    fn vcpus(&self, root: Node<'a, 'i>) -> Result<Option<u32>, ImportError> {
        let Some(n) = child(root, "vcpu") else { return Ok(None) };
        let text = string_value(n);
        match text.trim().parse::<u32>() {
            Ok(v) if v > 0 => Ok(Some(v)),
            _ => Err(self.node_error(n, Some(&text), "not a number of virtual CPUs (a whole number, 1 or more)")),
        }
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
}

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
    use super::super::testing::{GIB, fails, read, warning};
    use super::super::{Balloon, VirtType, read_domain};
    use super::*;

    #[test]
    fn vcpus_are_read_and_a_bad_count_is_refused() {
        // formatdomain: <vcpu placement='static'>2</vcpu>, the number of
        // virtual CPUs allocated to the guest.
        let d = super::super::testing::read("  <memory>1048576</memory>\n  <vcpu placement='static'>2</vcpu>");
        assert_eq!(d.vcpus, Some(2));
        let e = super::super::testing::fails("  <memory>1048576</memory>\n  <vcpu>two</vcpu>");
        assert_eq!((e.element.as_str(), e.value.as_deref()), ("domain/vcpu", Some("two")));
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
    }

    #[test]
    fn passthrough_arguments_warn() {
        let text = "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>g</name>\
                    <memory>1048576</memory><qemu:commandline><qemu:arg value='-m'/><qemu:arg value='8G'/>\
                    </qemu:commandline></domain>";
        let d = read_domain(text, "p.xml").unwrap();
        warning(&d, "domain/commandline");
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
}
