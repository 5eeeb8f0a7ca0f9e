//! `overcommit calibrate`: measure this machine and write a calibration
//! file that `run --calibration` reads (see `latency::calibration`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::measure::{self, Backing, FaultKind, Spread};

/// What to measure, and how much.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bytes per fault-timing mapping (and the pointer chase's buffer).
    pub size: u64,
    /// Counted repeats (one more warms up).
    pub repeats: usize,
    /// Time ksmd's CPU per scanned page (changes KSM knobs, put back after).
    pub ksm: bool,
    /// With root, grow the hugetlb pools for the hugetlb tests and put
    /// their sizes back after.
    pub reserve_hugepages: bool,
    /// Time swap-ins on the active swap device, in a child under a memory
    /// cgroup limit (root).
    pub swap: bool,
}

impl Options {
    /// `--quick`: a smaller size and fewer repeats.
    pub fn quick() -> Options {
        Options { size: 256 << 20, repeats: 3, ksm: false, reserve_hugepages: false, swap: false }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options { size: 1 << 30, repeats: 7, ksm: false, reserve_hugepages: false, swap: false }
    }
}

/// A figure, or why there is none.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Figure {
    Fault { median: f64, min: f64, max: f64, unit: &'static str },
    Thp { median: f64, min: f64, max: f64, unit: &'static str, huge_share: f64 },
    Unavailable { unavailable: String },
}

/// The measurements and the conditions they were taken in.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub conditions: Conditions,
    pub fault_ns: BTreeMap<&'static str, Figure>,
    pub zeroing_gbps: Spread,
    pub dram_latency_ns: BTreeMap<&'static str, Spread>,
    pub copy_4k_ns: Spread,
    /// ksmd's CPU per page over full scans of a region of distinct pages
    /// (`--ksm`), as measured: a record, not read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ksm_distinct_page_ns: Option<Figure>,
    /// What that gives per level of the unstable tree a page goes down
    /// (each distinct page joins a tree that grows over the scan), the
    /// figure a run reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ksm_unstable_level_ns: Option<Figure>,
    /// ksmd's CPU per page it only checksums (its first sight of the
    /// page, `--ksm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ksm_checksum_page_ns: Option<f64>,
    /// ksmd's CPU per page smart scan skips (`--ksm`, kernels with smart
    /// scan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ksm_skipped_page_ns: Option<f64>,
    /// ksmd's sleep beyond its whole jiffies, and the jiffy (`--ksm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ksm_wake_ns: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jiffy_ns: Option<f64>,
    /// Swap-in nanoseconds per major fault on the active swap device
    /// (`--swap`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_in_ns: Option<Figure>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Conditions {
    pub kernel: String,
    pub cpu_model: String,
    pub thp_mode: String,
    /// The `hypervisor` CPU flag: this machine is itself a guest.
    pub virtual_machine: bool,
    pub hugepages_2m_total: u64,
    pub hugepages_2m_free: u64,
    pub hugepages_1g_total: u64,
    pub hugepages_1g_free: u64,
    pub size_bytes: u64,
    pub repeats: usize,
    /// Pages `--reserve-hugepages` added to each pool for the test (the
    /// pools' sizes were put back after).
    pub hugepages_2m_reserved: u64,
    pub hugepages_1g_reserved: u64,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn pool(kb: u64, what: &str) -> u64 {
    read(&format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB/{what}")).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The conditions, from what `overcommit host` reads of this machine.
fn conditions(o: &Options) -> Conditions {
    let h = super::host::inspect();
    let pool = |bytes: u64| {
        h.hugepage_pools
            .iter()
            .flatten()
            .find(|p| p.page_size_bytes == bytes)
            .map_or((0, 0), |p| (p.nr_hugepages.unwrap_or(0), p.free_hugepages.unwrap_or(0)))
    };
    let ((t2, f2), (t1, f1)) = (pool(2 << 20), pool(1 << 30));
    Conditions {
        kernel: read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
        cpu_model: h.cpu.model_name.unwrap_or_else(|| "unknown".into()),
        thp_mode: h.thp.enabled.unwrap_or_else(|| "unknown".into()),
        virtual_machine: h.cpu.hypervisor == Some(true),
        hugepages_2m_total: t2,
        hugepages_2m_free: f2,
        hugepages_1g_total: t1,
        hugepages_1g_free: f1,
        size_bytes: o.size,
        repeats: o.repeats,
        hugepages_2m_reserved: 0,
        hugepages_1g_reserved: 0,
    }
}

/// Time `kind` faults `repeats` times after a warm-up.
fn faults(kind: FaultKind, bytes: usize, repeats: usize) -> Result<(Spread, f64), String> {
    let mut v = Vec::new();
    let mut share = Vec::new();
    for i in 0..=repeats {
        let s = measure::fault_once(kind, bytes).map_err(|e| e.to_string())?;
        if i > 0 {
            v.push(s.ns_per_fault);
            share.push(s.huge_share);
        }
    }
    let share = share.iter().sum::<f64>() / share.len() as f64;
    Ok((Spread::of(v), share))
}

/// MemAvailable in bytes.
pub fn mem_available() -> Option<u64> {
    super::host::inspect().meminfo.mem_available_bytes
}

/// A test size is allowed up to half of MemAvailable.
pub fn size_allowed(size: u64) -> Result<(), String> {
    match mem_available() {
        Some(avail) if size > avail / 2 => Err(format!(
            "--size {:.1} is more than half of MemAvailable ({:.1}): choose a smaller size",
            crate::units::ByteSize(size),
            crate::units::ByteSize(avail)
        )),
        _ => Ok(()),
    }
}

/// Measure. Refuses a size above half of MemAvailable.
pub fn calibrate(o: &Options) -> Result<Calibration, String> {
    size_allowed(o.size)?;
    let mut cond = conditions(o);
    let size = o.size as usize;
    let mut warnings = Vec::new();
    if cond.virtual_machine {
        warnings.push(
            "this machine is itself a virtual machine: nested paging makes faults and page walks dearer than on a bare host"
                .to_string(),
        );
    }
    let mut fault_ns = BTreeMap::new();
    let (f4k, _) = faults(FaultKind::Page4k, size, o.repeats)?;
    fault_ns.insert("page_4k", Figure::Fault { median: f4k.median, min: f4k.min, max: f4k.max, unit: "ns per fault" });
    let thp = if cond.thp_mode == "never" {
        Figure::Unavailable { unavailable: "THP is `never` on this host".into() }
    } else {
        match faults(FaultKind::Thp, size, o.repeats) {
            Ok((s, share)) => {
                if share < 0.9 {
                    warnings.push(format!(
                        "only {:.0}% of the THP test mapping was backed by huge pages (AnonHugePages): the THP figure mixes in 4 KiB faults",
                        share * 100.0
                    ));
                }
                Figure::Thp { median: s.median, min: s.min, max: s.max, unit: "ns per fault", huge_share: share }
            }
            Err(e) => Figure::Unavailable { unavailable: e },
        }
    };
    fault_ns.insert("thp_2m", thp);
    // The hugetlb tests, with the pools grown for them when asked; the
    // pools' sizes go back when `settings` is dropped, at the end of this
    // block or on any error or panic inside it (and on SIGINT/SIGTERM
    // through `restore_on_signals`).
    // Loads per timed chase: far more than the TLB and caches hold.
    let loads = 1_000_000;
    let mut hugetlb_chase = None;
    {
        let mut settings = super::restore::Settings::new();
        let mut cond_free = [(2048u64, cond.hugepages_2m_free), (1_048_576, cond.hugepages_1g_free)];
        if o.reserve_hugepages {
            if !rustix::process::geteuid().is_root() {
                warnings.push(
                    "--reserve-hugepages needs root: hugetlb timed only where the pools already had free pages".into(),
                );
            } else {
                for (i, (kb, free)) in cond_free.iter_mut().enumerate() {
                    let kb = *kb;
                    let page = kb * 1024;
                    let want = (o.size / page).max(1);
                    let dir = std::path::PathBuf::from(format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB"));
                    if *free >= want || !dir.exists() {
                        continue;
                    }
                    let avail = mem_available().unwrap_or(0);
                    if (want - *free) * page > avail / 2 {
                        warnings.push(format!(
                            "not reserving {} huge pages of {}: more than half of MemAvailable",
                            want - *free,
                            crate::units::ByteSize(page)
                        ));
                        continue;
                    }
                    let total = pool(kb, "nr_hugepages");
                    settings.set(&dir.join("nr_hugepages"), &(total + want - *free).to_string())?;
                    // The kernel gives what it can find contiguous.
                    let got = pool(kb, "nr_hugepages").saturating_sub(total);
                    if i == 0 {
                        cond.hugepages_2m_reserved = got;
                    } else {
                        cond.hugepages_1g_reserved = got;
                    }
                    *free = pool(kb, "free_hugepages");
                }
            }
        }
        for ((key, kind), (kb, free)) in
            [("hugetlb_2m", FaultKind::Hugetlb2m), ("hugetlb_1g", FaultKind::Hugetlb1g)].into_iter().zip(cond_free)
        {
            let page = kb * 1024;
            // As many pages as the pool has free, up to the size (at least one).
            let n = (o.size / page).max(1).min(free);
            let fig = if n == 0 {
                let how = if o.reserve_hugepages { "" } else { " (--reserve-hugepages grows it, as root)" };
                Figure::Unavailable {
                    unavailable: format!("no free pages in the {} pool{how}", crate::units::ByteSize(page)),
                }
            } else {
                match faults(kind, (n * page) as usize, o.repeats) {
                    Ok((s, _)) => Figure::Fault { median: s.median, min: s.min, max: s.max, unit: "ns per fault" },
                    Err(e) => Figure::Unavailable { unavailable: e },
                }
            };
            fault_ns.insert(key, fig);
        }
        // The chase on hugetlb pages too, when the pool holds the buffer.
        if pool(2048, "free_hugepages") * (2 << 20) >= o.size {
            hugetlb_chase = measure::pointer_chase(size, Backing::Hugetlb2m, loads, 7, o.repeats).ok();
        }
    }
    let zeroing = measure::zeroing_gbps(size.min(256 << 20), o.repeats).map_err(|e| e.to_string())?;
    let mut dram = BTreeMap::new();
    let r = o.repeats;
    dram.insert("page_4k", measure::pointer_chase(size, Backing::Page4k, loads, 7, r).map_err(|e| e.to_string())?);
    dram.insert("thp_2m", measure::pointer_chase(size, Backing::Thp, loads, 7, r).map_err(|e| e.to_string())?);
    if let Some(ns) = hugetlb_chase {
        dram.insert("hugetlb_2m", ns);
    }
    let copy = measure::copy_4k_ns(size.min(256 << 20), 100_000, 11, o.repeats).map_err(|e| e.to_string())?;
    let (mut ksm_wake_ns, mut jiffy_ns, mut ksm_checksum_page_ns, mut ksm_skipped_page_ns) = (None, None, None, None);
    let mut ksm_unstable_level_ns = None;
    let ksm = if o.ksm {
        Some(match super::ksm::measure(o.size.min(256 << 20), o.repeats.max(3), Duration::from_secs(1)) {
            Ok(k) => {
                ksm_wake_ns = Some(k.wake_ns.round());
                ksm_checksum_page_ns = k.checksum_ns.is_finite().then(|| k.checksum_ns.round());
                ksm_skipped_page_ns = k.skipped_ns.filter(|v| v.is_finite()).map(f64::round);
                jiffy_ns = Some(k.jiffy_ns.round());
                // Each page checksummed, then put in an unstable tree of
                // the pages before it in the scan.
                let base = ksm_checksum_page_ns.unwrap_or(crate::latency::Costs::default().ksm_checksum_page_ns);
                let levels = crate::latency::Costs::ksm_mean_insert_levels(k.region_bytes / 4096);
                let per_level = |ns: f64| ((ns - base) / levels).max(1.0).round();
                ksm_unstable_level_ns = Some(Figure::Fault {
                    median: per_level(k.median),
                    min: per_level(k.min),
                    max: per_level(k.max),
                    unit: "ns of ksmd CPU per level of the unstable tree",
                });
                Figure::Fault {
                    median: k.median,
                    min: k.min,
                    max: k.max,
                    unit: "ns of ksmd CPU per distinct page scanned",
                }
            }
            Err(e) => Figure::Unavailable { unavailable: e },
        })
    } else {
        None
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"));
    let swap =
        o.swap.then(|| match exe.and_then(|exe| super::swap::measure(&exe, o.size.min(256 << 20), o.repeats.min(3))) {
            Ok(s) => Figure::Fault { median: s.median, min: s.min, max: s.max, unit: "ns per swap-in (major fault)" },
            Err(e) => Figure::Unavailable { unavailable: e },
        });
    Ok(Calibration {
        swap_in_ns: swap,
        conditions: cond,
        fault_ns,
        zeroing_gbps: zeroing,
        dram_latency_ns: dram,
        copy_4k_ns: copy,
        ksm_distinct_page_ns: ksm,
        ksm_unstable_level_ns,
        ksm_checksum_page_ns,
        ksm_skipped_page_ns,
        ksm_wake_ns,
        jiffy_ns,
        warnings,
    })
}

impl Calibration {
    pub fn to_yaml(&self) -> String {
        let body = serde_saphyr::to_string(self).expect("a calibration serialises");
        format!("# overcommit calibration: costs measured on this host (run --calibration FILE)\n{body}")
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a calibration serialises") + "\n"
    }

    /// The human table: each figure with what it means.
    pub fn render_text(&self) -> String {
        let c = &self.conditions;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "host      {} on kernel {}, THP {}{}",
            c.cpu_model,
            c.kernel,
            c.thp_mode,
            if c.virtual_machine { ", itself a virtual machine" } else { "" }
        );
        let _ = writeln!(
            o,
            "measured  {} mappings, median of {} repeats after a warm-up\n",
            crate::units::ByteSize(c.size_bytes),
            c.repeats
        );
        let line = |o: &mut String, what: &str, fig: &Figure, per: usize, meaning: &str| {
            let value = match fig {
                Figure::Fault { median, min, max, .. } | Figure::Thp { median, min, max, .. } => {
                    let per4k = median / (per / 4096) as f64;
                    format!("{median:>12.0} ns ({min:.0}..{max:.0}), {per4k:.0} ns per 4 KiB")
                }
                Figure::Unavailable { unavailable } => format!("unavailable: {unavailable}"),
            };
            let _ = writeln!(o, "{what:<22} {value}\n{:<22} {meaning}", "");
        };
        line(
            &mut o,
            "fault 4 KiB",
            &self.fault_ns["page_4k"],
            4096,
            "first touch of an anonymous 4 KiB page: allocate, zero, map",
        );
        line(
            &mut o,
            "fault THP 2 MiB",
            &self.fault_ns["thp_2m"],
            2 << 20,
            "first touch of a 2 MiB-aligned MADV_HUGEPAGE region: 512 pages in one fault",
        );
        line(
            &mut o,
            "fault hugetlb 2 MiB",
            &self.fault_ns["hugetlb_2m"],
            2 << 20,
            "first touch of a page from the 2 MiB hugetlb pool",
        );
        line(
            &mut o,
            "fault hugetlb 1 GiB",
            &self.fault_ns["hugetlb_1g"],
            1 << 30,
            "first touch of a page from the 1 GiB hugetlb pool",
        );
        let z = &self.zeroing_gbps;
        let _ = writeln!(
            o,
            "{:<22} {:>12.1} GB/s ({:.1}..{:.1}), {:.0} ns per 4 KiB\n{:<22} memset over memory already faulted: the floor under any fault's zeroing",
            "zeroing",
            z.median,
            z.min,
            z.max,
            4096.0 / z.median,
            ""
        );
        let (d4, dh) = (self.dram_latency_ns["page_4k"].median, self.dram_latency_ns["thp_2m"].median);
        let hugetlb = self
            .dram_latency_ns
            .get("hugetlb_2m")
            .map_or(String::new(), |h| format!(", {:.1} ns with hugetlb 2 MiB", h.median));
        let _ = writeln!(
            o,
            "{:<22} {:>12.1} ns with 4 KiB pages, {:.1} ns with THP{hugetlb}\n{:<22} a dependent random chase far beyond 4 KiB TLB reach: the difference ({:.1} ns) is the page walk",
            "memory latency",
            d4,
            dh,
            "",
            d4 - dh
        );
        let c = &self.copy_4k_ns;
        let _ = writeln!(
            o,
            "{:<22} {:>12.0} ns ({:.0}..{:.0})\n{:<22} one 4 KiB page copied (a copy-on-write break's copy)",
            "copy 4 KiB", c.median, c.min, c.max, ""
        );
        for (what, fig, meaning) in [
            ("ksmd per page", &self.ksm_distinct_page_ns, "ksmd's CPU time per distinct page it scans"),
            (
                "ksmd per tree level",
                &self.ksm_unstable_level_ns,
                "the same, less the checksum, per level of the unstable tree the page went down",
            ),
            ("swap-in", &self.swap_in_ns, "a major fault on the active swap device, under a memory cgroup limit"),
        ] {
            match fig {
                Some(Figure::Fault { median, .. } | Figure::Thp { median, .. }) => {
                    let _ = writeln!(o, "{what:<22} {median:>12.0} ns\n{:<22} {meaning}", "");
                }
                Some(Figure::Unavailable { unavailable }) => {
                    let _ = writeln!(o, "{what:<22} unavailable: {unavailable}");
                }
                None => {}
            }
        }
        if let Some(ns) = self.ksm_checksum_page_ns {
            let _ = writeln!(
                o,
                "{:<22} {ns:>12.0} ns\n{:<22} ksmd's CPU time per page it only checksums (first sight)",
                "ksmd checksum", ""
            );
        }
        if let Some(ns) = self.ksm_skipped_page_ns {
            let _ =
                writeln!(o, "{:<22} {ns:>12.0} ns\n{:<22} ksmd's CPU time per page smart scan skips", "ksmd skip", "");
        }
        if let (Some(wake), Some(jiffy)) = (self.ksm_wake_ns, self.jiffy_ns) {
            let _ = writeln!(
                o,
                "{:<22} {wake:>12.0} ns\n{:<22} ksmd's sleep beyond its whole jiffies ({:.0} ms a jiffy)",
                "ksmd wake-up",
                "",
                jiffy / 1e6
            );
        }
        for w in &self.warnings {
            let _ = writeln!(o, "warning: {w}");
        }
        o
    }
}
