//! The `host:` section: RAM and the reserve, the hugetlb pools, THP, swap
//! (a device preset such as nvme or zram, or latencies and bandwidth of
//! its own), KSM with its tuning policy, the CPU's virtualization
//! features and the balloon policy, each with the kernel's or the
//! tool's defaults.

use super::Decoder;
use super::scalars::{bandwidth, boolean, choice, fraction, hugepage_size, int, size, span, text};
use crate::input::diag::did_you_mean;
use crate::input::node::{Node, Pos, Value};
use crate::scenario::schema::*;
use crate::units::{ByteSize, Fraction, Span};

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

impl Decoder<'_> {
    pub(super) fn host(&mut self, node: &Node, path: &str) -> Option<Host> {
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
}
