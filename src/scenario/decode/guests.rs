//! The `guests:` list: each guest group with its names and count, its
//! memory as given directly or read from a `qemu:` line (the two must
//! agree), its memory backends, memtune limits, balloon settings, the
//! observed state of its instances, and its workload with its phases.

use std::collections::BTreeMap;

use super::scalars::{
    boolean, fraction, hugepage_size, int, pattern, rate, size, size_or_share, span, text, text_list,
};
use super::{Decoder, Fields};
use crate::input::diag::{Diagnostic, Severity};
use crate::input::node::{Node, Pos, Value};
use crate::input::values::choice;
use crate::scenario::qemu;
use crate::scenario::schema::*;
use crate::units::{ByteSize, Fraction, QEMU_DEFAULT_RAM, Rate};

const GUEST_KEYS: &[&str] = &[
    "name",
    "count",
    "names",
    "qemu",
    "memory",
    "backends",
    "current_memory",
    "maxmem",
    "slots",
    "locked",
    "accel",
    "free_page_reporting",
    "memtune",
    "vcpus",
    "observed",
    "hugepages",
    "hugepage_size",
    "prealloc",
    "balloon",
    "balloon_stats",
    "balloon_min",
    "shares",
    "deflate_on_oom",
    "guest_swap",
    "ksm",
    "share",
    "image",
    "workload",
];
const WORKLOAD_KEYS: &[&str] = &[
    "working_set",
    "touch_rate",
    "pattern",
    "shared",
    "zero",
    "duplicate",
    "in_working_set",
    "write",
    "pagetable_updates",
    "vm_exits",
    "tpr_accesses",
    "guest_page_size",
    "phases",
];
const PHASE_KEYS: &[&str] = &["at", "current_memory", "working_set", "touch_rate", "pattern", "write"];
const BACKEND_KEYS: &[&str] = &["size", "node", "hugepages", "hugepage_size", "prealloc", "share", "ksm"];
const IN_WORKING_SET_KEYS: &[&str] = &["shared", "zero", "duplicate"];
const MEMTUNE_KEYS: &[&str] = &["hard_limit", "soft_limit", "swap_hard_limit"];
const OBSERVED_KEYS: &[&str] = &["name", "resident", "swapped", "thp", "ksm_merged", "balloon"];

impl Decoder<'_> {
    pub(crate) fn guests(&mut self, node: &Node, default_huge: HugePageSize) -> Option<Vec<GuestGroup>> {
        let items = match &node.value {
            Value::Seq(items) => items,
            Value::Null => return Some(Vec::new()),
            _ => {
                self.error(
                    node.pos,
                    "guests",
                    format!("`guests:` must be a list (`- name: web ...`), found {}", node.kind()),
                );
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        let mut seen: BTreeMap<String, Pos> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            let name_node = item.get("name");
            let name = name_node.and_then(Node::scalar_text).unwrap_or_else(|| format!("guest{i}"));
            let valid_name = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && name.parse::<usize>().is_err();
            let path = if valid_name { format!("guests.{name}") } else { format!("guests.{i}") };
            if let Some(n) = name_node
                && !valid_name
            {
                self.error(
                    n.pos,
                    &format!("{path}.name"),
                    format!(
                        "guest name {} must be a word of letters, digits, '-' or '_' (not just digits): it names instances like web-0 and paths like guests.web.count",
                        n.show()
                    ),
                );
            }
            if let Some(first) = seen.get(&name) {
                let pos = name_node.map_or(item.pos, |n| n.pos);
                let msg = format!(
                    "guest name {name:?} is used twice (first at line {}, column {})",
                    first.line, first.column
                );
                self.error(pos, &format!("{path}.name"), msg);
            } else {
                seen.insert(name.clone(), name_node.map_or(item.pos, |n| n.pos));
            }
            match self.guest(item, &path, name, default_huge) {
                Some(g) => out.push(g),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn guest(&mut self, node: &Node, path: &str, name: String, default_huge: HugePageSize) -> Option<GuestGroup> {
        let f = self.map(node, path, GUEST_KEYS)?;
        self.positions.insert(path.to_string(), node.pos);
        let names = self.field(&f, "names", |n| text_list(n, "instance names")).unwrap_or_default();
        let count = self.field(&f, "count", |n| int::<u32>(n, "a number of guests"));
        // Instances beyond the names listed (a plan growing the group) are
        // named group-K; fewer instances than names is a mistake.
        if let (Some(c), false) = (count, names.is_empty())
            && (c as usize) < names.len()
        {
            let pos = f.get("count").map_or(node.pos, |n| n.pos);
            self.error(
                pos,
                &f.child("count"),
                format!("count is {c} but `names:` lists {} instances: drop the names of those gone", names.len()),
            );
        }
        let count = count.unwrap_or(if names.is_empty() { 1 } else { names.len() as u32 });
        let qemu_text = self.field(&f, "qemu", text);
        let q = match (&qemu_text, f.get("qemu")) {
            (Some(cmd), Some(qnode)) => match qemu::parse(cmd) {
                Ok(q) => q,
                Err(e) => {
                    let pos = self.offset_in_scalar(qnode.pos, e.offset);
                    self.error(pos, &f.child("qemu"), format!("{} (in {cmd:?})", e.message));
                    return None;
                }
            },
            _ => qemu::QemuMemory::default(),
        };
        let qpos = f.get("qemu").map_or(node.pos, |n| n.pos);
        // The regions a qemu: line gives, when they differ in backing: then
        // the guest's backends come from them.
        let ram_regions: Vec<&crate::scenario::guestmem::Region> =
            q.guest.regions.iter().filter(|r| r.is_ram()).collect();
        for r in q.guest.regions.iter().filter(|r| !r.is_ram()) {
            self.diags.push(Diagnostic::new(
                Severity::Warning,
                qpos,
                &f.child("qemu"),
                format!(
                    "an nvdimm of {} is a device backed by a host file, not RAM the guest allocates from: it is not modelled",
                    r.size
                ),
            ));
        }
        let mixed = ram_regions.windows(2).any(|w| {
            (w[0].pages, w[0].prealloc, w[0].share, w[0].merge) != (w[1].pages, w[1].prealloc, w[1].share, w[1].merge)
        });
        // Guest RAM the line states: -m plus plugged memory devices.
        let q_memory = q.memory.map(|_| ByteSize(ram_regions.iter().map(|r| r.size.bytes()).sum()));
        let q_balloon = q.guest.balloon;
        let memory = self.field(&f, "memory", size);
        let hugepages = self.field(&f, "hugepages", boolean);
        let prealloc = self.field(&f, "prealloc", boolean);
        let balloon = self.field(&f, "balloon", boolean);
        let ksm = self.field(&f, "ksm", boolean);
        let share = self.field(&f, "share", boolean);
        let locked = self.field(&f, "locked", boolean);
        let accel = self.field(&f, "accel", |n| choice(n, &[("kvm", Accel::Kvm), ("tcg", Accel::Tcg)]));
        let free_page_reporting = self.field(&f, "free_page_reporting", boolean);
        let balloon_stats = self.field(&f, "balloon_stats", boolean).unwrap_or(true);
        let balloon_min = self.field(&f, "balloon_min", size).unwrap_or(ByteSize(0));
        // PVE::AutoBalloon: `$d->{shares} || 1000`.
        let shares = self.field(&f, "shares", |n| int::<u32>(n, "a weight")).unwrap_or(1000);
        let deflate_on_oom = self.field(&f, "deflate_on_oom", boolean);
        let guest_swap = self.field(&f, "guest_swap", size).unwrap_or(ByteSize(0));
        let memory = self.agree(&f, "memory", memory, q_memory, "-m / size= and memory devices", |m| m.to_string());
        let hugepages =
            self.agree(&f, "hugepages", hugepages, q.hugepages, "-mem-path on hugetlbfs / hugetlb=on", bool_text);
        let prealloc = self.agree(&f, "prealloc", prealloc, q.prealloc, "-mem-prealloc / prealloc=", bool_text);
        let balloon = self.agree(&f, "balloon", balloon, q.balloon, "-device virtio-balloon", bool_text);
        let ksm = self.agree(&f, "ksm", ksm, q.merge, "merge= / mem-merge=", bool_text);
        let share = self.agree(&f, "share", share, q.share, "share=", bool_text);
        // What a line turns on; left off, QEMU's default (off) is not a
        // statement to contradict.
        let locked =
            self.agree(&f, "locked", locked, q.guest.mem_lock.then_some(true), "-overcommit mem-lock=", bool_text);
        // QEMU: DEFINE_PROP_BIT("deflate-on-oom", ..., false), and the same
        // for free-page-reporting.
        let deflate_on_oom = self.agree(
            &f,
            "deflate_on_oom",
            deflate_on_oom,
            q_balloon.and_then(|b| b.deflate_on_oom.then_some(true)),
            "deflate-on-oom=",
            bool_text,
        );
        let free_page_reporting = self.agree(
            &f,
            "free_page_reporting",
            free_page_reporting,
            q_balloon.and_then(|b| b.free_page_reporting.then_some(true)),
            "free-page-reporting=",
            bool_text,
        );
        let image = self.field(&f, "image", text).unwrap_or_else(|| name.clone());
        let memory = memory.unwrap_or(QEMU_DEFAULT_RAM);
        let hp_size = self.field(&f, "hugepage_size", hugepage_size);
        let q_hp_size = match q.hugepage_size {
            Some(b) => match HugePageSize::from_bytes(b.bytes()) {
                Some(s) => Some(s),
                None => {
                    self.error(qpos, &f.child("qemu"), format!("huge page size {b} is not one x86-64 has (2M or 1G)"));
                    return None;
                }
            },
            None => None,
        };
        let hugepage_size =
            self.agree(&f, "hugepage_size", hp_size, q_hp_size, "the hugetlbfs mount / hugetlbsize=", |s| {
                s.label().to_string()
            });
        let hugepages = hugepages.unwrap_or(false) || hugepage_size.is_some();
        let prealloc = prealloc.unwrap_or(false);
        // QEMU's machine property mem-merge defaults to on: guest RAM is
        // MADV_MERGEABLE unless turned off.
        let ksm = ksm.unwrap_or(true);
        let share = share.unwrap_or(false);
        let whole = MemBackend {
            size: memory,
            node: None,
            hugetlb: hugepages.then_some(hugepage_size.unwrap_or(default_huge)),
            prealloc,
            share,
            ksm,
        };
        let backends = if let Some(bnode) = f.get("backends") {
            let list = self.backends(bnode, &f.child("backends"), whole, default_huge)?;
            let total: u64 = list.iter().map(|b| b.size.bytes()).sum();
            if let Some(mnode) = f.get("memory")
                && total != memory.bytes()
            {
                let msg = format!("memory {memory} is not the sum of the backends' sizes ({})", ByteSize(total));
                self.error(mnode.pos, &f.child("memory"), msg);
            }
            list
        } else if mixed {
            for key in ["hugepages", "hugepage_size", "prealloc", "share", "ksm"] {
                if let Some(n) = f.get(key) {
                    let msg = format!(
                        "`{key}:` would apply to all guest RAM, but the qemu: line backs its memory backends \
                         differently; set it per backend on the line"
                    );
                    self.error(n.pos, &f.child(key), msg);
                }
            }
            let mut list = Vec::new();
            for r in &ram_regions {
                let hugetlb = match r.pages {
                    crate::scenario::guestmem::Pages::Small => None,
                    crate::scenario::guestmem::Pages::Huge(None) => Some(default_huge),
                    crate::scenario::guestmem::Pages::Huge(Some(b)) => match HugePageSize::from_bytes(b.bytes()) {
                        Some(s) => Some(s),
                        None => {
                            let msg = format!("huge page size {b} is not one x86-64 has (2M or 1G)");
                            self.error(qpos, &f.child("qemu"), msg);
                            return None;
                        }
                    },
                };
                list.push(MemBackend {
                    size: r.size,
                    node: r.node,
                    hugetlb,
                    prealloc: r.prealloc,
                    share: r.share,
                    ksm: r.merge,
                });
            }
            list
        } else {
            vec![whole]
        };
        let memory = ByteSize(backends.iter().map(|b| b.size.bytes()).sum());
        let all_huge = backends.iter().all(|b| b.hugetlb.is_some());
        let one_size =
            backends.first().and_then(|b| b.hugetlb).filter(|s| backends.iter().all(|b| b.hugetlb == Some(*s)));
        let current_memory = self.field(&f, "current_memory", size);
        let maxmem = self.field(&f, "maxmem", size);
        let maxmem = self.agree(&f, "maxmem", maxmem, q.guest.maxmem, "-m maxmem=", |m| m.to_string());
        let slots = self.field(&f, "slots", |n| int::<u32>(n, "a number of hotplug slots"));
        let slots = self.agree(&f, "slots", slots, q.guest.slots, "-m slots=", |m| m.to_string());
        let vcpus = self
            .field(&f, "vcpus", |n| {
                int::<u32>(n, "a number of virtual CPUs")
                    .and_then(|v| if v == 0 { Err("a guest needs at least 1 virtual CPU".to_string()) } else { Ok(v) })
            })
            .unwrap_or(1);
        let memtune = match f.get("memtune") {
            Some(n) => self.memtune(n, &f.child("memtune"))?,
            None => Memtune::default(),
        };
        let observed = match f.get("observed") {
            Some(n) => self.observed(n, &f.child("observed"))?,
            None => Vec::new(),
        };
        let workload = match f.get("workload") {
            Some(w) => self.workload(w, &f.child("workload"), memory),
            None => self.workload(&Node::new(Value::Null, node.pos), &f.child("workload"), memory),
        }?;
        Some(GuestGroup {
            name,
            count,
            names,
            memory,
            hugepages: all_huge,
            hugepage_size: one_size,
            prealloc: backends.iter().all(|b| b.prealloc),
            backends,
            current_memory,
            maxmem,
            slots,
            locked: locked.unwrap_or(false),
            accel: self.agree(&f, "accel", accel, q.guest.accel, "-accel / accel=", accel_text).unwrap_or_default(),
            free_page_reporting: free_page_reporting.unwrap_or(false),
            memtune,
            vcpus,
            observed,
            // libvirt adds a virtio memballoon to every KVM guest unless
            // told `<memballoon model='none'/>`.
            balloon: balloon.unwrap_or(true),
            balloon_stats,
            balloon_min,
            shares,
            deflate_on_oom: deflate_on_oom.unwrap_or(false),
            guest_swap,
            ksm,
            share,
            image,
            qemu: qemu_text,
            workload,
        })
    }

    /// `backends: [{ size: 1G, hugepage_size: 1G }, ...]`; what an entry
    /// does not say comes from the group (`whole`).
    fn backends(
        &mut self,
        node: &Node,
        path: &str,
        whole: MemBackend,
        default_huge: HugePageSize,
    ) -> Option<Vec<MemBackend>> {
        let items = match &node.value {
            Value::Seq(items) if !items.is_empty() => items,
            _ => {
                let msg = format!(
                    "`backends:` must be a non-empty list (`- {{ size: 1G, hugepage_size: 1G }}`), found {}",
                    node.kind()
                );
                self.error(node.pos, path, msg);
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let bpath = format!("{path}.{i}");
            let Some(f) = self.map(item, &bpath, BACKEND_KEYS) else {
                ok = false;
                continue;
            };
            let Some(size_v) = self.field(&f, "size", size) else {
                if f.get("size").is_none() {
                    self.error(item.pos, &f.child("size"), "a backend needs `size:` (e.g. `size: 2G`)");
                }
                ok = false;
                continue;
            };
            let hp_size = self.field(&f, "hugepage_size", hugepage_size);
            let huge = self.field(&f, "hugepages", boolean);
            let hugetlb = match (huge, hp_size) {
                (Some(false), Some(s)) => {
                    let msg = format!("hugepages: false contradicts hugepage_size: {}", s.label());
                    self.error(item.pos, &f.child("hugepages"), msg);
                    ok = false;
                    None
                }
                (_, Some(s)) => Some(s),
                (Some(true), None) => Some(whole.hugetlb.unwrap_or(default_huge)),
                (Some(false), None) => None,
                (None, None) => whole.hugetlb,
            };
            out.push(MemBackend {
                size: size_v,
                node: self.field(&f, "node", |n| int::<u32>(n, "a NUMA node id")),
                hugetlb,
                prealloc: self.field(&f, "prealloc", boolean).unwrap_or(whole.prealloc),
                share: self.field(&f, "share", boolean).unwrap_or(whole.share),
                ksm: self.field(&f, "ksm", boolean).unwrap_or(whole.ksm),
            });
        }
        ok.then_some(out)
    }

    fn memtune(&mut self, node: &Node, path: &str) -> Option<Memtune> {
        let f = self.map(node, path, MEMTUNE_KEYS)?;
        Some(Memtune {
            hard_limit: self.field(&f, "hard_limit", size),
            soft_limit: self.field(&f, "soft_limit", size),
            swap_hard_limit: self.field(&f, "swap_hard_limit", size),
        })
    }

    /// `observed: [{ name:, resident:, swapped:, thp:, ksm_merged:, balloon: }, ...]`.
    fn observed(&mut self, node: &Node, path: &str) -> Option<Vec<Observed>> {
        let Value::Seq(items) = &node.value else {
            let msg = format!("`observed:` must be a list, one entry per instance, found {}", node.kind());
            self.error(node.pos, path, msg);
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let opath = format!("{path}.{i}");
            let f = self.map(item, &opath, OBSERVED_KEYS)?;
            let get = |d: &mut Self, key: &str| d.field(&f, key, size).unwrap_or(ByteSize(0));
            out.push(Observed {
                name: self.field(&f, "name", text).unwrap_or_default(),
                resident: get(self, "resident"),
                swapped: get(self, "swapped"),
                thp: get(self, "thp"),
                ksm_merged: get(self, "ksm_merged"),
                balloon: get(self, "balloon"),
            });
        }
        Some(out)
    }

    /// A field given both directly and through `qemu:` must agree.
    fn agree<T: PartialEq + Copy>(
        &mut self,
        f: &Fields,
        key: &str,
        direct: Option<T>,
        from_qemu: Option<T>,
        qemu_form: &str,
        show: impl Fn(T) -> String,
    ) -> Option<T> {
        match (direct, from_qemu) {
            (Some(a), Some(b)) if a != b => {
                let pos = f.get(key).map_or(Pos::default(), |n| n.pos);
                let msg = format!(
                    "`{key}: {}` contradicts the qemu: line ({qemu_form} gives {}); set it in one place",
                    show(a),
                    show(b)
                );
                self.error(pos, &f.child(key), msg);
                Some(a)
            }
            (a, b) => a.or(b),
        }
    }

    /// Column of byte `offset` inside a scalar that starts at `pos` (one
    /// more when the scalar is quoted).
    fn offset_in_scalar(&self, pos: Pos, offset: usize) -> Pos {
        let line = self.source.lines().nth(pos.line.saturating_sub(1) as usize).unwrap_or("");
        let start: String = line.chars().skip(pos.column.saturating_sub(1) as usize).collect();
        let quoted = start.starts_with('"') || start.starts_with('\'');
        let chars = start
            .get(usize::from(quoted)..)
            .map_or(0, |s| s.get(..offset.min(s.len())).map_or(0, |p| p.chars().count()));
        Pos { line: pos.line, column: pos.column + u64::from(quoted) + chars as u64 }
    }

    fn workload(&mut self, node: &Node, path: &str, memory: ByteSize) -> Option<Workload> {
        let f = self.map(node, path, WORKLOAD_KEYS)?;
        let working_set =
            self.field(&f, "working_set", |n| size_or_share(n, memory)).unwrap_or(ByteSize(memory.bytes() / 2));
        let phases = match f.get("phases") {
            Some(p) => self.phases(p, &f.child("phases"), memory)?,
            None => Vec::new(),
        };
        // CPU-side defaults for a lightly loaded server guest; the
        // latency module documents what each costs.
        Some(Workload {
            working_set,
            touch_rate: self.field(&f, "touch_rate", rate).unwrap_or(Rate(100_000.0)),
            pattern: self.field(&f, "pattern", pattern).unwrap_or(Pattern::Uniform),
            shared: self.field(&f, "shared", fraction).unwrap_or(Fraction(0.0)),
            zero: self.field(&f, "zero", fraction).unwrap_or(Fraction(0.0)),
            duplicate: self.field(&f, "duplicate", fraction).unwrap_or(Fraction(0.0)),
            in_working_set: match f.get("in_working_set") {
                Some(n) => {
                    let g = self.map(n, &f.child("in_working_set"), IN_WORKING_SET_KEYS)?;
                    Some(InWorkingSet {
                        shared: self.field(&g, "shared", fraction),
                        zero: self.field(&g, "zero", fraction),
                        duplicate: self.field(&g, "duplicate", fraction),
                    })
                }
                None => None,
            },
            write: self.field(&f, "write", fraction).unwrap_or(Fraction(0.05)),
            pagetable_updates: self.field(&f, "pagetable_updates", rate).unwrap_or(Rate(1_000.0)),
            vm_exits: self.field(&f, "vm_exits", rate).unwrap_or(Rate(1_000.0)),
            tpr_accesses: self.field(&f, "tpr_accesses", rate).unwrap_or(Rate(1_000.0)),
            guest_page_size: self
                .field(&f, "guest_page_size", |n| {
                    let b = size(n)?;
                    match b.bytes() {
                        4096 | 0x20_0000 | 0x4000_0000 => Ok(b.bytes()),
                        _ => Err(format!("{b} is not an x86-64 page size: 4K, 2M or 1G")),
                    }
                })
                .unwrap_or(4096),
            phases,
        })
    }

    fn phases(&mut self, node: &Node, path: &str, memory: ByteSize) -> Option<Vec<Phase>> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node.pos,
                path,
                format!("`phases:` must be a list (`- {{ at: 5m, working_set: 3G }}`), found {}", node.kind()),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let ppath = format!("{path}.{i}");
            let Some(f) = self.map(item, &ppath, PHASE_KEYS) else {
                ok = false;
                continue;
            };
            let at = self.field(&f, "at", span);
            if at.is_none() && f.get("at").is_none() {
                self.error(item.pos, &f.child("at"), "a phase needs `at:` (when it starts, e.g. `at: 5m`)");
            }
            let phase = Phase {
                at: at.unwrap_or_default(),
                current_memory: self.field(&f, "current_memory", size),
                working_set: self.field(&f, "working_set", |n| size_or_share(n, memory)),
                touch_rate: self.field(&f, "touch_rate", rate),
                pattern: self.field(&f, "pattern", pattern),
                write: self.field(&f, "write", fraction),
            };
            ok &= at.is_some();
            out.push(phase);
        }
        ok.then_some(out)
    }
}

fn accel_text(a: Accel) -> String {
    match a {
        Accel::Kvm => "kvm".into(),
        Accel::Tcg => "tcg".into(),
    }
}

fn bool_text(b: bool) -> String {
    b.to_string()
}
