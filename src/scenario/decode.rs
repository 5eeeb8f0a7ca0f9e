//! From the YAML tree to a [`Scenario`]: every key checked against the
//! schema (with "did you mean"), every unit parsed, every default filled in,
//! and every error kept with its position and field path.

use std::collections::BTreeMap;

use super::diag::{Diagnostic, Severity, did_you_mean};
use super::node::{Key, Node, Pos, Value};
use super::qemu;
use super::schema::*;
use super::slo::Slo;
use super::vary::{self, Vary};
use crate::units::{ByteSize, Fraction, QEMU_DEFAULT_RAM, Rate, Span, UnitError};

/// Positions of decoded fields by path, for checks that look at several
/// fields at once (validate.rs).
pub type Positions = BTreeMap<String, Pos>;

pub struct Decoder<'s> {
    source: &'s str,
    pub diags: Vec<Diagnostic>,
    pub positions: Positions,
}

/// A mapping whose keys were checked; lookups record positions.
struct Fields<'a> {
    entries: &'a [(Key, Node)],
    path: String,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }
    fn child(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "duration",
    "warmup",
    "sample_every",
    "host",
    "guests",
    "calibration",
    "sweep",
    "variants",
];
const VARIANT_KEYS: &[&str] = &["name", "set"];
const SWEEP_KEYS: &[&str] = &["vary", "seeds", "slo"];
const HOST_KEYS: &[&str] = &["ram", "reserved", "hugepages", "thp", "swap", "ksm", "cpu", "balloon"];
const HUGEPAGES_KEYS: &[&str] = &["size", "count"];
const SWAP_KEYS: &[&str] =
    &["size", "device", "read_latency", "write_latency", "bandwidth", "queue_depth", "ram_per_page", "scheduler"];
const KSM_KEYS: &[&str] = &[
    "run",
    "pages_to_scan",
    "sleep_millisecs",
    "use_zero_pages",
    "max_page_sharing",
    "policy",
    "interval",
    "advisor_target_scan_time",
    "advisor_max_cpu",
];
const CPU_KEYS: &[&str] = &["ept", "vpid", "flexpriority"];
const BALLOON_KEYS: &[&str] = &[
    "policy",
    "interval",
    "pressure_threshold",
    "pressure_critical",
    "guest_free",
    "max_change",
    "min_change",
    "target_use",
    "max_step",
];
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
    "write",
    "pagetable_updates",
    "vm_exits",
    "tpr_accesses",
    "guest_page_size",
    "phases",
];
const PHASE_KEYS: &[&str] = &["at", "current_memory", "working_set", "touch_rate", "pattern", "write"];
const BACKEND_KEYS: &[&str] = &["size", "node", "hugepages", "hugepage_size", "prealloc", "share", "ksm"];
const MEMTUNE_KEYS: &[&str] = &["hard_limit", "soft_limit", "swap_hard_limit"];
const OBSERVED_KEYS: &[&str] = &["name", "resident", "swapped", "thp", "ksm_merged", "balloon"];

/// A swap device preset: 4 KiB read and write latency when idle, and
/// sustained bandwidth.
struct SwapPreset {
    name: &'static str,
    read_ns: u64,
    write_ns: u64,
    bandwidth: u64,
    queue_depth: u32,
    ram_per_page: f64,
    scheduler: IoScheduler,
}

// Sources, all for a 4 KiB random access at queue depth 1:
// - nvme: NAND NVMe SSDs read 4 KiB in about 80 us and absorb writes in
//   their DRAM cache in about 20 us (Samsung 980 PRO and Intel P4510 data
//   sheets); about 500k random-read IOPS, i.e. 2 GiB/s, reached with 64
//   requests in flight.
// - ssd: SATA SSDs about 100 us read / 50 us write (Samsung 870 EVO data
//   sheet: 98k IOPS at QD32); the SATA 6 Gb/s link caps transfers near
//   550 MB/s; NCQ queues 32 commands.
// - hdd: 7200 rpm: 8.5 ms average seek + 4.17 ms half rotation = 12.7 ms
//   per random 4 KiB, one request at a time (about 79 IOPS); 150 MiB/s
//   sequential.
// - zram: lzo-rle decompresses a 4 KiB page in about 3 us and compresses
//   in about 10 us on one core; the work runs on the faulting CPU (queue
//   depth 2 on a 2-core host), and compressed pages stay in RAM at a
//   typical 2.5-3x ratio (Documentation/admin-guide/blockdev/zram.rst
//   reports orig_data_size/compr_data_size; 0.35 RAM per page).
// Schedulers: the kernel gives multi-queue NVMe devices `none` and
// single-queue SATA devices `mq-deadline` (block/elevator.c,
// elevator_get_default); zram has no queue.
const SWAP_PRESETS: &[SwapPreset] = &[
    SwapPreset {
        name: "nvme",
        read_ns: 80_000,
        write_ns: 20_000,
        bandwidth: 2 << 30,
        queue_depth: 64,
        ram_per_page: 0.0,
        scheduler: IoScheduler::None,
    },
    SwapPreset {
        name: "ssd",
        read_ns: 100_000,
        write_ns: 50_000,
        bandwidth: 500 << 20,
        queue_depth: 32,
        ram_per_page: 0.0,
        scheduler: IoScheduler::MqDeadline,
    },
    SwapPreset {
        name: "hdd",
        read_ns: 12_700_000,
        write_ns: 12_700_000,
        bandwidth: 150 << 20,
        queue_depth: 1,
        ram_per_page: 0.0,
        scheduler: IoScheduler::MqDeadline,
    },
    SwapPreset {
        name: "zram",
        read_ns: 3_000,
        write_ns: 10_000,
        bandwidth: 1 << 30,
        queue_depth: 2,
        ram_per_page: 0.35,
        scheduler: IoScheduler::None,
    },
];

impl<'s> Decoder<'s> {
    pub fn new(source: &'s str) -> Self {
        Decoder { source, diags: Vec::new(), positions: Positions::new() }
    }

    fn error(&mut self, pos: Pos, path: &str, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(Severity::Error, pos, path, msg));
    }

    /// Open a mapping: report a non-mapping, unknown keys (with a
    /// suggestion) and duplicate keys.
    fn map<'a>(&mut self, node: &'a Node, path: &str, known: &[&str]) -> Option<Fields<'a>> {
        let entries = match &node.value {
            Value::Map(entries) => entries.as_slice(),
            // An empty section (`ksm:`) means "all defaults".
            Value::Null => &[],
            _ => {
                let what = if path.is_empty() { "the scenario" } else { "this section" };
                self.error(
                    node.pos,
                    path,
                    format!("{what} must be a mapping of keys, found {} ({})", node.kind(), node.show()),
                );
                return None;
            }
        };
        for (i, (k, _)) in entries.iter().enumerate() {
            let kpath = join(path, &k.name);
            if let Some((first, _)) = entries[..i].iter().find(|(f, _)| f.name == k.name) {
                let msg = format!(
                    "duplicate key `{}` (first given at line {}, column {})",
                    k.name, first.pos.line, first.pos.column
                );
                self.error(k.pos, &kpath, msg);
            } else if !known.contains(&k.name.as_str()) {
                let hint = match did_you_mean(&k.name, known) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => format!("; known keys here: {}", known.join(", ")),
                };
                self.error(k.pos, &kpath, format!("unknown key `{}`{hint}", k.name));
            }
        }
        Some(Fields { entries, path: path.to_string() })
    }

    /// Read one field with `parse`; a missing field gives `None` without an
    /// error, a bad one records the error and gives `None`.
    fn field<T>(&mut self, f: &Fields, key: &str, parse: impl FnOnce(&Node) -> Result<T, String>) -> Option<T> {
        let node = f.get(key)?;
        let path = f.child(key);
        self.positions.insert(path.clone(), node.pos);
        if matches!(node.value, Value::Null) {
            // `key:` with nothing after it: treat as absent (the default).
            return None;
        }
        match parse(node) {
            Ok(v) => Some(v),
            Err(msg) => {
                self.error(node.pos, &path, msg);
                None
            }
        }
    }

    pub fn scenario(&mut self, root: &Node, default_name: &str) -> Option<Scenario> {
        let f = self.map(root, "", TOP_KEYS)?;
        let name = self.field(&f, "name", text).unwrap_or_else(|| default_name.to_string());
        let description = self.field(&f, "description", text).unwrap_or_default();
        let seed = self.field(&f, "seed", |n| int::<u64>(n, "a seed (0 or more)")).unwrap_or(1);
        let duration = self.field(&f, "duration", span).unwrap_or(Span::from_secs(60));
        let sample_every = self.field(&f, "sample_every", span).unwrap_or(Span::from_secs(1));
        let warmup = self.field(&f, "warmup", span).unwrap_or(Span(0));
        if warmup >= duration
            && let Some(n) = f.get("warmup")
        {
            self.error(
                n.pos,
                "warmup",
                format!("{} is not shorter than the run's duration {}: nothing would be measured", warmup, duration),
            );
        }
        let calibration = self.field(&f, "calibration", text);
        for section in ["host", "guests"] {
            if let Some(n) = f.get(section) {
                self.positions.insert(section.to_string(), n.pos);
            }
        }
        let host = match f.get("host") {
            Some(h) => self.host(h, "host"),
            None => {
                self.error(root.pos, "host", "missing `host:` section (at least `host: { ram: 64G }`)");
                None
            }
        };
        // Guests without a stated huge page size take the host's default.
        let default_huge = host.as_ref().map_or(HugePageSize::Size2M, |h| h.hugepages.size);
        let guests = match f.get("guests") {
            Some(g) => self.guests(g, default_huge),
            None => Some(Vec::new()),
        };
        let sweep = match f.get("sweep") {
            Some(n) => Some(self.sweep(n)?),
            None => None,
        };
        let variants = match f.get("variants") {
            Some(n) => self.variants(n)?,
            None => Vec::new(),
        };
        let (host, guests) = (host?, guests?);
        Some(Scenario {
            name,
            description,
            seed,
            duration,
            warmup,
            sample_every,
            host,
            guests,
            calibration,
            sweep,
            variants,
        })
    }

    /// `variants: [{ name: N, set: { PATH: VALUE, ... } }, ...]`.
    fn variants(&mut self, node: &Node) -> Option<Vec<Variant>> {
        let Value::Seq(items) = &node.value else {
            self.error(node.pos, "variants", format!("expected a list of {{ name:, set: }}, found {}", node.kind()));
            return None;
        };
        let mut out: Vec<Variant> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("variants.{i}");
            let Some(f) = self.map(item, &path, VARIANT_KEYS) else {
                ok = false;
                continue;
            };
            let Some(name) = self.field(&f, "name", text) else {
                self.error(item.pos, &path, "a variant needs a `name:`");
                ok = false;
                continue;
            };
            if out.iter().any(|v| v.name == name) {
                self.error(item.pos, &f.child("name"), format!("variant {name:?} is given twice"));
                ok = false;
            }
            let mut set = Vec::new();
            match f.get("set").map(|n| &n.value) {
                Some(Value::Map(entries)) => {
                    for (k, v) in entries {
                        match vary_value(v) {
                            Ok(value) => set.push(crate::scenario::Override { path: k.name.clone(), value }),
                            Err(e) => {
                                self.error(v.pos, &format!("{path}.set.{}", k.name), e);
                                ok = false;
                            }
                        }
                    }
                }
                Some(_) => {
                    self.error(item.pos, &f.child("set"), "expected a mapping of PATH: VALUE");
                    ok = false;
                }
                None => {}
            }
            out.push(Variant { name, set });
        }
        ok.then_some(out)
    }

    /// `sweep: { vary: { PATH: SPEC or [values] }, seeds: K, slo: [..] }`.
    fn sweep(&mut self, node: &Node) -> Option<SweepSection> {
        let f = self.map(node, "sweep", SWEEP_KEYS)?;
        let seeds = self.field(&f, "seeds", |n| {
            int::<u32>(n, "a count of seeds (1 or more)")
                .and_then(|k| if k == 0 { Err("a sweep needs at least 1 seed".to_string()) } else { Ok(k) })
        });
        let mut ok = true;
        let mut vary = Vec::new();
        if let Some(v) = f.get("vary") {
            match &v.value {
                Value::Map(entries) => {
                    for (key, spec) in entries {
                        let path = join("sweep.vary", &key.name);
                        let values = match &spec.value {
                            Value::Seq(items) => items
                                .iter()
                                .map(|n| vary_value(n).map_err(|e| (n.pos, e)))
                                .collect::<Result<Vec<_>, _>>(),
                            _ => vary_value(spec).and_then(|t| vary::parse_spec(&t)).map_err(|e| (spec.pos, e)),
                        };
                        match values {
                            Ok(values) if !values.is_empty() => vary.push(Vary { path: key.name.clone(), values }),
                            Ok(_) => {
                                self.error(spec.pos, &path, "no values to vary");
                                ok = false;
                            }
                            Err((pos, e)) => {
                                self.error(pos, &path, e);
                                ok = false;
                            }
                        }
                    }
                }
                _ => {
                    let msg = format!(
                        "expected a mapping of PATH: SPEC (e.g. guests.web.count: 2..16:2), found {}",
                        v.kind()
                    );
                    self.error(v.pos, "sweep.vary", msg);
                    ok = false;
                }
            }
        }
        let mut slo = Vec::new();
        if let Some(n) = f.get("slo") {
            let items: Vec<&Node> = match &n.value {
                Value::Seq(items) => items.iter().collect(),
                _ => vec![n],
            };
            for item in items {
                match scalar(item, "an objective such as p99<=50us").and_then(|t| t.parse::<Slo>()) {
                    Ok(s) => slo.push(s),
                    Err(e) => {
                        self.error(item.pos, "sweep.slo", e);
                        ok = false;
                    }
                }
            }
        }
        ok.then_some(SweepSection { vary, seeds, slo })
    }

    fn host(&mut self, node: &Node, path: &str) -> Option<Host> {
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
        let swap = match f.get("swap") {
            Some(n) if !matches!(n.value, Value::Null) => self.swap(n, &f.child("swap")).map(Some),
            _ => Some(None),
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
            Some(n) => self.balloon(n, &f.child("balloon")),
            None => self.balloon(&Node::new(Value::Null, Pos::default()), "host.balloon"),
        };
        let (hugepages, other_hugepages) = pools?;
        Some(Host {
            ram: ram?,
            reserved,
            hugepages,
            other_hugepages,
            thp,
            swap: swap?,
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

    fn swap(&mut self, node: &Node, path: &str) -> Option<Swap> {
        let f = self.map(node, path, SWAP_KEYS)?;
        let size_v = self.field(&f, "size", size);
        if size_v.is_none() && f.get("size").is_none() {
            self.error(
                node.pos,
                &f.child("size"),
                "missing `size:` for swap (e.g. `swap: { size: 16G, device: nvme }`)",
            );
        }
        let names: Vec<&str> = SWAP_PRESETS.iter().map(|p| p.name).collect();
        let preset = self.field(&f, "device", |n| {
            let s = text(n)?;
            SWAP_PRESETS.iter().find(|p| p.name == s.to_ascii_lowercase()).ok_or_else(|| {
                let hint = did_you_mean(&s, &names).map(|m| format!(" (did you mean `{m}`?)")).unwrap_or_default();
                format!(
                    "unknown swap device {s:?}{hint}: expected one of {}, or give read_latency, write_latency and bandwidth",
                    names.join(", ")
                )
            })
        });
        let read = self.field(&f, "read_latency", span);
        let write = self.field(&f, "write_latency", span);
        let bandwidth = self.field(&f, "bandwidth", bandwidth);
        let queue_depth = self.field(&f, "queue_depth", |n| {
            let v = int::<u32>(n, "requests in flight")?;
            if v == 0 { Err("queue_depth must be at least 1".to_string()) } else { Ok(v) }
        });
        let ram_per_page = self.field(&f, "ram_per_page", fraction);
        let scheduler = self.field(&f, "scheduler", |n| {
            choice(n, &[("none", IoScheduler::None), ("mq-deadline", IoScheduler::MqDeadline)])
        });
        let device_given = f.get("device").is_some();
        let preset = match preset {
            Some(p) => p,
            None if device_given => return None,
            None if read.is_some() && write.is_some() && bandwidth.is_some() => &SwapPreset {
                name: "custom",
                read_ns: 0,
                write_ns: 0,
                bandwidth: 0,
                queue_depth: 1,
                ram_per_page: 0.0,
                scheduler: IoScheduler::None,
            },
            None => {
                self.error(
                    node.pos,
                    &f.child("device"),
                    "swap needs `device:` (nvme, ssd, hdd or zram) or all of read_latency, write_latency and bandwidth",
                );
                return None;
            }
        };
        let adjusted = read.is_some()
            || write.is_some()
            || bandwidth.is_some()
            || queue_depth.is_some()
            || ram_per_page.is_some()
            || scheduler.is_some();
        let name = if adjusted {
            if preset.name == "custom" { "custom".to_string() } else { format!("{} (adjusted)", preset.name) }
        } else {
            preset.name.to_string()
        };
        Some(Swap {
            size: size_v?,
            device: name,
            read_latency: read.unwrap_or(Span(preset.read_ns)),
            write_latency: write.unwrap_or(Span(preset.write_ns)),
            bandwidth_bytes_per_s: bandwidth.unwrap_or(preset.bandwidth),
            queue_depth: queue_depth.unwrap_or(preset.queue_depth),
            ram_per_page: ram_per_page.map_or(preset.ram_per_page, |f| f.get()),
            scheduler: scheduler.unwrap_or(preset.scheduler),
        })
    }

    fn ksm(&mut self, node: &Node, path: &str) -> Option<Ksm> {
        let f = self.map(node, path, KSM_KEYS)?;
        let policy = self
            .field(&f, "policy", |n| {
                choice(
                    n,
                    &[
                        ("static", KsmPolicy::Static),
                        ("ksmtuned", KsmPolicy::Ksmtuned),
                        ("mom", KsmPolicy::Mom),
                        ("advisor", KsmPolicy::Advisor),
                    ],
                )
            })
            .unwrap_or(KsmPolicy::Static);
        // Defaults are the kernel's (Documentation/admin-guide/mm/ksm.rst):
        // run 0, pages_to_scan 100, sleep_millisecs 20, use_zero_pages 0,
        // max_page_sharing 256.
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
            policy,
            // ksmtuned sleeps KSM_MONITOR_INTERVAL = 60 s between looks;
            // vdsm runs MoM's policies every 15 s (mom.conf policy-engine-interval).
            interval: self.field(&f, "interval", span).unwrap_or(match policy {
                KsmPolicy::Mom => Span::from_secs(15),
                _ => Span::from_secs(60),
            }),
            // mm/ksm.c: ksm_advisor_target_scan_time = 200, ksm_advisor_max_cpu = 70.
            advisor_target_scan_time: self
                .field(&f, "advisor_target_scan_time", |n| {
                    let v = int::<u32>(n, "seconds")?;
                    if v < 1 {
                        Err("advisor_target_scan_time must be at least 1 s (the kernel's rule)".into())
                    } else {
                        Ok(v)
                    }
                })
                .unwrap_or(200),
            advisor_max_cpu: self
                .field(&f, "advisor_max_cpu", |n| {
                    let v = int::<u32>(n, "percent of one core")?;
                    if !(1..=100).contains(&v) {
                        Err(format!("advisor_max_cpu is {v}: it must be 1 to 100"))
                    } else {
                        Ok(v)
                    }
                })
                .unwrap_or(70),
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

    fn balloon(&mut self, node: &Node, path: &str) -> Option<Balloon> {
        let f = self.map(node, path, BALLOON_KEYS)?;
        let policy = self
            .field(&f, "policy", |n| {
                choice(
                    n,
                    &[("none", BalloonPolicy::None), ("mom", BalloonPolicy::Mom), ("proxmox", BalloonPolicy::Proxmox)],
                )
            })
            .unwrap_or(BalloonPolicy::None);
        let d = Balloon::default();
        let share = |this: &mut Self, key: &str, default: Fraction| this.field(&f, key, fraction).unwrap_or(default);
        Some(Balloon {
            policy,
            interval: self.field(&f, "interval", span).unwrap_or(d.interval),
            pressure_threshold: share(self, "pressure_threshold", d.pressure_threshold),
            pressure_critical: share(self, "pressure_critical", d.pressure_critical),
            guest_free: share(self, "guest_free", d.guest_free),
            max_change: share(self, "max_change", d.max_change),
            min_change: share(self, "min_change", d.min_change),
            target_use: share(self, "target_use", d.target_use),
            max_step: self.field(&f, "max_step", size).unwrap_or(d.max_step),
        })
    }

    fn guests(&mut self, node: &Node, default_huge: HugePageSize) -> Option<Vec<GuestGroup>> {
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
        let from_qemu = |b: bool| if qemu_text.is_some() { Some(b) } else { None };
        let locked = self.agree(&f, "locked", locked, from_qemu(q.guest.mem_lock), "-overcommit mem-lock=", bool_text);
        // QEMU: DEFINE_PROP_BIT("deflate-on-oom", ..., false), and the same
        // for free-page-reporting.
        let deflate_on_oom = self.agree(
            &f,
            "deflate_on_oom",
            deflate_on_oom,
            q_balloon.map(|b| b.deflate_on_oom),
            "deflate-on-oom=",
            bool_text,
        );
        let free_page_reporting = self.agree(
            &f,
            "free_page_reporting",
            free_page_reporting,
            q_balloon.map(|b| b.free_page_reporting),
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

/// A scalar to vary, as the text `--set` would take.
fn vary_value(n: &Node) -> Result<String, String> {
    match &n.value {
        Value::Bool(b) => Ok(b.to_string()),
        _ => scalar(n, "a value, a list (a,b,c) or a range (4..64:4)"),
    }
}

fn bool_text(b: bool) -> String {
    b.to_string()
}

fn unit_msg(e: UnitError) -> String {
    e.to_string()
}

fn scalar(n: &Node, expected: &str) -> Result<String, String> {
    n.scalar_text().ok_or_else(|| format!("expected {expected}, found {}", n.kind()))
}

fn text(n: &Node) -> Result<String, String> {
    match &n.value {
        Value::Str(s) => Ok(s.clone()),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => Ok(n.scalar_text().unwrap_or_else(|| n.show())),
        _ => Err(format!("expected text, found {}", n.kind())),
    }
}

/// A list of words (`[a, b]`).
fn text_list(n: &Node, what: &str) -> Result<Vec<String>, String> {
    match &n.value {
        Value::Seq(items) => items.iter().map(text).collect(),
        _ => Err(format!("expected a list of {what} (`[a, b]`), found {}", n.kind())),
    }
}

fn size(n: &Node) -> Result<ByteSize, String> {
    ByteSize::parse(&scalar(n, "a size such as 4G")?).map_err(unit_msg)
}

fn span(n: &Node) -> Result<Span, String> {
    Span::parse(&scalar(n, "a time such as 30s")?).map_err(unit_msg)
}

fn rate(n: &Node) -> Result<Rate, String> {
    Rate::parse(&scalar(n, "a rate such as 200k/s")?).map_err(unit_msg)
}

fn fraction(n: &Node) -> Result<Fraction, String> {
    Fraction::parse(&scalar(n, "a fraction such as 0.3 or 30%")?).map_err(unit_msg)
}

/// `bandwidth: 2G/s` (bytes per second; a bare number is MiB/s).
fn bandwidth(n: &Node) -> Result<u64, String> {
    let t = scalar(n, "a bandwidth such as 500M/s")?;
    let body = t.trim().strip_suffix("/s").ok_or_else(|| format!("{t:?} needs a per-second unit, e.g. 500M/s"))?;
    let b = ByteSize::parse(body).map_err(unit_msg)?;
    if b.bytes() == 0 {
        return Err(format!("{t:?}: bandwidth must be above zero"));
    }
    Ok(b.bytes())
}

/// A working set as a size (`1500M`) or a share of guest memory (`40%`).
fn size_or_share(n: &Node, memory: ByteSize) -> Result<ByteSize, String> {
    let t = scalar(n, "a size such as 1500M or a share of memory such as 40%")?;
    if t.trim().ends_with('%') {
        let f = Fraction::parse(&t).map_err(unit_msg)?;
        return Ok(ByteSize((memory.bytes() as f64 * f.get()).round() as u64));
    }
    ByteSize::parse(&t).map_err(unit_msg)
}

fn boolean(n: &Node) -> Result<bool, String> {
    match &n.value {
        Value::Bool(b) => Ok(*b),
        _ => Err(format!("expected true or false, found {} ({})", n.kind(), n.show())),
    }
}

fn int<T: TryFrom<i128>>(n: &Node, what: &str) -> Result<T, String> {
    match &n.value {
        Value::Int(i) if *i < 0 => Err(format!("{i} is negative: expected {what}")),
        Value::Int(i) => T::try_from(*i).map_err(|_| format!("{i} is too large for {what}")),
        Value::Float(f) => Err(format!("{f} is not a whole number: expected {what}")),
        _ => Err(format!("expected a whole number ({what}), found {} ({})", n.kind(), n.show())),
    }
}

fn choice<T: Copy>(n: &Node, options: &[(&str, T)]) -> Result<T, String> {
    let s = scalar(n, "a word")?;
    let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
    options.iter().find(|(k, _)| k.eq_ignore_ascii_case(s.trim())).map(|(_, v)| *v).ok_or_else(|| {
        let hint = did_you_mean(&s, &names).map(|m| format!(" (did you mean `{m}`?)")).unwrap_or_default();
        format!("{s:?} is not one of {}{hint}", names.join(", "))
    })
}

fn hugepage_size(n: &Node) -> Result<HugePageSize, String> {
    let b = size(n)?;
    HugePageSize::from_bytes(b.bytes()).ok_or_else(|| format!("{b} is not a huge page size: x86-64 has 2M and 1G"))
}

/// `uniform`, `zipf(S)` or `hotcold(HOT_FRACTION, HOT_PROBABILITY)`.
pub fn pattern(n: &Node) -> Result<Pattern, String> {
    let t = scalar(n, "a pattern: uniform, zipf(S) or hotcold(F, P)")?;
    parse_pattern(&t)
}

pub fn parse_pattern(t: &str) -> Result<Pattern, String> {
    let s = t.trim();
    let lower = s.to_ascii_lowercase();
    let (head, args) = match lower.split_once('(') {
        Some((h, rest)) => {
            let Some(inner) = rest.strip_suffix(')') else {
                return Err(format!(
                    "{s:?} is missing its closing parenthesis (inside a `{{ ... }}` mapping a comma ends the value: \
write it in quotes, e.g. pattern: \"hotcold(0.2, 0.9)\")"
                ));
            };
            (h.trim().to_string(), inner.split(',').map(|a| a.trim().to_string()).collect::<Vec<_>>())
        }
        None => (lower.clone(), Vec::new()),
    };
    let nums = |what: &str, want: usize| -> Result<Vec<f64>, String> {
        if args.len() != want {
            return Err(format!("{s:?}: {what}"));
        }
        args.iter()
            .map(|a| {
                if let Some(p) = a.strip_suffix('%') {
                    p.trim().parse::<f64>().map(|v| v / 100.0)
                } else {
                    a.parse::<f64>()
                }
                .map_err(|_| format!("{s:?}: {a:?} is not a number"))
            })
            .collect()
    };
    match head.as_str() {
        "uniform" if args.is_empty() => Ok(Pattern::Uniform),
        "zipf" => {
            let v = nums("zipf takes one exponent, e.g. zipf(0.9)", 1)?;
            if !(v[0] > 0.0 && v[0] <= 10.0) {
                return Err(format!("{s:?}: the Zipf exponent must be above 0 and at most 10"));
            }
            Ok(Pattern::Zipf { s: v[0] })
        }
        "hotcold" => {
            let v = nums(
                "hotcold takes the hot share of pages and the share of touches that go to it, e.g. hotcold(0.2, 0.8)",
                2,
            )?;
            if !(v[0] > 0.0 && v[0] < 1.0 && (0.0..=1.0).contains(&v[1])) {
                return Err(format!(
                    "{s:?}: the hot fraction must be between 0 and 1 (exclusive), the probability between 0 and 1"
                ));
            }
            Ok(Pattern::HotCold { hot_fraction: v[0], hot_probability: v[1] })
        }
        _ => {
            let hint = did_you_mean(&head, &["uniform", "zipf", "hotcold"])
                .map(|m| format!(" (did you mean `{m}`?)"))
                .unwrap_or_default();
            Err(format!("unknown pattern {s:?}{hint}: expected uniform, zipf(S) or hotcold(F, P)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse() {
        assert_eq!(parse_pattern("uniform").unwrap(), Pattern::Uniform);
        assert_eq!(parse_pattern("zipf(0.9)").unwrap(), Pattern::Zipf { s: 0.9 });
        assert_eq!(
            parse_pattern("hotcold(20%, 0.8)").unwrap(),
            Pattern::HotCold { hot_fraction: 0.2, hot_probability: 0.8 }
        );
        assert!(parse_pattern("zipf").is_err());
        assert!(parse_pattern("zipf(0)").is_err());
        assert!(parse_pattern("zipf(0.9").is_err());
        assert!(parse_pattern("hotcold(1.5, 0.5)").is_err());
        assert!(parse_pattern("unifrom").unwrap_err().contains("did you mean `uniform`"));
    }
}
