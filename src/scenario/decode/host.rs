//! The `host:` section: RAM and the reserve, the hugetlb pools, THP, swap
//! (a device preset such as nvme or zram, or latencies and bandwidth of
//! its own), KSM with its tuning policy, the CPU's virtualization
//! features and the balloon policy, each with the kernel's or the
//! tool's defaults.

use super::Decoder;
use super::scalars::{boolean, choice, hugepage_size, int, size};
use crate::input::node::{Node, Pos, Value};
use crate::policy::resolve;
use crate::scenario::schema::*;
use crate::units::ByteSize;

const HOST_KEYS: &[&str] =
    &["ram", "reserved", "hugepages", "thp", "khugepaged", "swap", "reclaim", "ksm", "cpu", "balloon"];
/// `/sys/kernel/mm/transparent_hugepage/khugepaged/`'s knobs.
const KHUGEPAGED_KEYS: &[&str] = &[
    "pages_to_scan",
    "scan_sleep_millisecs",
    "alloc_sleep_millisecs",
    "max_ptes_none",
    "max_ptes_swap",
    "max_ptes_shared",
];
const HUGEPAGES_KEYS: &[&str] = &["size", "count"];
/// ksmd's own keys under `host.ksm:`; the tuner's come from the resolver.
const KSMD_KEYS: &[&str] =
    &["run", "pages_to_scan", "sleep_millisecs", "use_zero_pages", "max_page_sharing", "smart_scan"];
const CPU_KEYS: &[&str] = &["ept", "vpid", "flexpriority"];

impl Decoder<'_> {
    pub(crate) fn host(&mut self, node: &Node, path: &str) -> Option<Host> {
        let f = self.map(node, path, HOST_KEYS)?;
        let ram = self.field(&f, "ram", size);
        if ram.is_none() && f.get("ram").is_none() {
            self.error(node.pos, &f.child("ram"), "missing `ram:` (the host's physical memory, e.g. `ram: 64G`)");
        }
        // "Keep 1 GB for the host" is the common operator rule of thumb
        // (oVirt and OpenStack guides); a scenario states its own.
        let reserved = self.field(&f, "reserved", size).unwrap_or(ByteSize::gib(1));
        let pools = match f.get("hugepages") {
            Some(n) => self.hugepage_pools(n, &f.child("hugepages")),
            None => Some((HugepagePool { size: HugePageSize::Size2M, count: 0 }, None)),
        };
        let thp = self
            .field(&f, "thp", |n| {
                choice(n, &[("always", ThpMode::Always), ("madvise", ThpMode::Madvise), ("never", ThpMode::Never)])
            })
            .unwrap_or(ThpMode::Madvise);
        let khugepaged = match f.get("khugepaged") {
            Some(n) => self.khugepaged(n, &f.child("khugepaged")),
            None => Some(crate::policy::khugepaged::Knobs::default()),
        };
        let swap = match f.get("swap") {
            Some(n) if !matches!(n.value, Value::Null) => resolve::decode_swap(self, n, &f.child("swap")).map(Some),
            _ => Some(None),
        };
        let reclaim = match f.get("reclaim") {
            Some(n) => crate::policy::reclaim::Knobs::decode(self, n, &f.child("reclaim")),
            None => Some(crate::policy::reclaim::Knobs::default()),
        };
        let ksm = match f.get("ksm") {
            Some(n) => self.ksm(n, &f.child("ksm")),
            None => self.ksm(&Node::new(Value::Null, Pos::default()), &f.child("ksm")),
        };
        let cpu = match f.get("cpu") {
            Some(n) => self.cpu(n, &f.child("cpu")),
            None => Some(CpuFeatures { ept: true, vpid: true, flexpriority: true }),
        };
        let balloon = match f.get("balloon") {
            Some(n) => resolve::decode_balloon(self, n, &f.child("balloon")),
            None => resolve::decode_balloon(self, &Node::new(Value::Null, Pos::default()), "host.balloon"),
        };
        let (hugepages, other_hugepages) = pools?;
        Some(Host {
            ram: ram?,
            reserved,
            hugepages,
            other_hugepages,
            thp,
            khugepaged: khugepaged?,
            swap: swap?,
            reclaim: reclaim?,
            ksm: ksm?,
            cpu: cpu?,
            balloon: balloon?,
        })
    }

    /// `hugepages: { size: 2M, count: N }`, or a list of such pools, one
    /// per page size (the first is the host's default size).
    fn hugepage_pools(&mut self, node: &Node, path: &str) -> Option<(HugepagePool, Option<HugepagePool>)> {
        let Value::Seq(items) = &node.value else {
            return self.hugepages(node, path).map(|p| (p, None));
        };
        let mut pools: Vec<HugepagePool> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = self.hugepages(item, &format!("{path}.{i}"))?;
            if pools.iter().any(|q| q.size == p.size) {
                self.error(
                    item.pos,
                    &format!("{path}.{i}.size"),
                    format!("a second pool of {} pages: the kernel has one pool per page size", p.size.label()),
                );
                return None;
            }
            pools.push(p);
        }
        match pools.len() {
            1 | 2 => Some((pools[0], pools.get(1).copied())),
            n => {
                self.error(
                    node.pos,
                    path,
                    format!("{n} hugetlb pools: x86-64 has two huge page sizes (2M and 1G), one pool each"),
                );
                None
            }
        }
    }

    fn hugepages(&mut self, node: &Node, path: &str) -> Option<HugepagePool> {
        let f = self.map(node, path, HUGEPAGES_KEYS)?;
        let size = self.field(&f, "size", hugepage_size).unwrap_or(HugePageSize::Size2M);
        let count = self.field(&f, "count", |n| int::<u64>(n, "a page count (vm.nr_hugepages)")).unwrap_or(0);
        Some(HugepagePool { size, count })
    }

    fn ksm(&mut self, node: &Node, path: &str) -> Option<Ksm> {
        let mut keys = KSMD_KEYS.to_vec();
        keys.extend(resolve::tuner_keys());
        let f = self.map(node, path, &keys)?;
        let tuner = resolve::decode_tuner(self, &f);
        // Defaults are the kernel's (Documentation/admin-guide/mm/ksm.rst):
        // run 0, pages_to_scan 100, sleep_millisecs 20, use_zero_pages 0,
        // max_page_sharing 256, smart_scan 1 (mm/ksm.c:
        // `static bool ksm_smart_scan = true`, since 6.7).
        Some(Ksm {
            run: self.field(&f, "run", boolean).unwrap_or(false),
            pages_to_scan: self.field(&f, "pages_to_scan", |n| int::<u32>(n, "pages per wake-up")).unwrap_or(100),
            sleep_millisecs: self.field(&f, "sleep_millisecs", |n| int::<u32>(n, "milliseconds")).unwrap_or(20),
            use_zero_pages: self.field(&f, "use_zero_pages", boolean).unwrap_or(false),
            max_page_sharing: self
                .field(&f, "max_page_sharing", |n| {
                    let v = int::<u32>(n, "sharers per KSM page")?;
                    // The kernel refuses values below 2 (ksm.c, max_page_sharing_store).
                    if v < 2 { Err(format!("max_page_sharing is {v}: the kernel requires at least 2")) } else { Ok(v) }
                })
                .unwrap_or(256),
            smart_scan: self.field(&f, "smart_scan", boolean).unwrap_or(true),
            tuner,
        })
    }

    /// `khugepaged: { pages_to_scan: 4096, scan_sleep_millisecs: 10000, ... }`,
    /// each knob the kernel's default when left out; the kernel's own
    /// limits on them (`khugepaged_*_store` in mm/khugepaged.c: a PTE
    /// count at most HPAGE_PMD_NR − 1, a page count at least 1).
    fn khugepaged(&mut self, node: &Node, path: &str) -> Option<crate::policy::khugepaged::Knobs> {
        let f = self.map(node, path, KHUGEPAGED_KEYS)?;
        let d = crate::policy::khugepaged::Knobs::default();
        let ptes = |n: &Node| {
            let v = int::<u32>(n, "page-table entries of a 2 MiB range")?;
            if v > 511 {
                Err(format!("{v} entries: a 2 MiB range has 512, and the kernel takes at most 511"))
            } else {
                Ok(v)
            }
        };
        Some(crate::policy::khugepaged::Knobs {
            pages_to_scan: self
                .field(&f, "pages_to_scan", |n| {
                    let v = int::<u32>(n, "pages per wake-up")?;
                    if v == 0 { Err("pages_to_scan is 0: the kernel requires at least 1".into()) } else { Ok(v) }
                })
                .unwrap_or(d.pages_to_scan),
            scan_sleep_millisecs: self
                .field(&f, "scan_sleep_millisecs", |n| int::<u32>(n, "milliseconds"))
                .unwrap_or(d.scan_sleep_millisecs),
            alloc_sleep_millisecs: self
                .field(&f, "alloc_sleep_millisecs", |n| int::<u32>(n, "milliseconds"))
                .unwrap_or(d.alloc_sleep_millisecs),
            max_ptes_none: self.field(&f, "max_ptes_none", ptes).unwrap_or(d.max_ptes_none),
            max_ptes_swap: self.field(&f, "max_ptes_swap", ptes).unwrap_or(d.max_ptes_swap),
            max_ptes_shared: self.field(&f, "max_ptes_shared", ptes).unwrap_or(d.max_ptes_shared),
        })
    }

    fn cpu(&mut self, node: &Node, path: &str) -> Option<CpuFeatures> {
        let f = self.map(node, path, CPU_KEYS)?;
        Some(CpuFeatures {
            ept: self.field(&f, "ept", boolean).unwrap_or(true),
            vpid: self.field(&f, "vpid", boolean).unwrap_or(true),
            flexpriority: self.field(&f, "flexpriority", boolean).unwrap_or(true),
        })
    }
}
