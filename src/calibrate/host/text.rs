//! The human report: one line per finding, with its value and what it
//! means for overcommit.

use super::*;

impl HostReport {
    /// The reason recorded for `source`: its own entry, else one for a
    /// file inside it, else one for a directory holding it.
    pub(super) fn why(&self, source: &str) -> String {
        let inside = |u: &&Unavailable| u.source.strip_prefix(source).is_some_and(|rest| rest.starts_with('/'));
        let holding =
            |u: &&Unavailable| source.strip_prefix(u.source.as_str()).is_some_and(|rest| rest.starts_with('/'));
        let found = self.unavailable.iter().find(|u| u.source == source);
        let found = found.or_else(|| self.unavailable.iter().find(inside));
        let found = found.or_else(|| self.unavailable.iter().find(holding));
        found.map_or_else(|| format!("{source} unreadable"), |u| format!("{}: {}", u.source, u.reason))
    }

    /// The default huge page size's pool (`vm.nr_hugepages`).
    pub(super) fn default_pool(&self) -> Option<&HugepagePoolReport> {
        let size = self.meminfo.hugepagesize_bytes?;
        self.hugepage_pools.as_ref()?.iter().find(|p| p.page_size_bytes == size)
    }

    /// Is this an AMD-V machine (and not VT-x)?
    pub(super) fn is_amd(&self) -> bool {
        self.cpu.svm == Some(true) && self.cpu.vmx != Some(true)
    }

    /// Human report: one line per finding, each with its value and what it
    /// means for overcommit.
    pub fn render_text(&self) -> String {
        let mut lines: Vec<(String, String, String)> = Vec::new();
        let mut add = |label: &str, value: String, meaning: String| lines.push((label.to_string(), value, meaning));
        let cpuinfo = || self.why("/proc/cpuinfo");

        // CPU
        let c = &self.cpu;
        match (&c.vendor, &c.model_name, c.count) {
            (None, None, None) => add("cpu", "unavailable".into(), cpuinfo()),
            (v, m, n) => {
                let mut parts = Vec::new();
                parts.push(v.clone().unwrap_or_else(|| "vendor unknown".into()));
                if let Some(m) = m {
                    parts.push(m.clone());
                }
                parts.push(n.map_or_else(|| "CPU count unknown".into(), |n| format!("{n} CPUs")));
                add("cpu", parts.join(", "), String::new());
            }
        }
        match (c.vmx, c.svm) {
            (Some(true), _) => add("virtualisation", "vmx (Intel VT-x)".into(), "KVM can run guests".into()),
            (_, Some(true)) => add("virtualisation", "svm (AMD-V)".into(), "KVM can run guests".into()),
            (Some(false), Some(false)) => add(
                "virtualisation",
                "none".into(),
                "not a KVM-capable CPU (no vmx/svm): the kernel module cannot run guests".into(),
            ),
            _ => add("virtualisation", "unknown".into(), cpuinfo()),
        }
        match c.hypervisor {
            Some(true) => add(
                "hypervisor flag",
                "present".into(),
                "this is itself a virtual machine (hypervisor flag): nested paging inflates fault and walk costs"
                    .into(),
            ),
            Some(false) => add("hypervisor flag", "absent".into(), "bare metal: no nested-paging cost".into()),
            None => add("hypervisor flag", "unknown".into(), cpuinfo()),
        }

        // EPT, VPID, FlexPriority (Intel) and NPT (AMD).
        let ki = &self.kvm.kvm_intel;
        let shadow = "guests would use shadow page tables (a VM exit on each guest page-table write)";
        let walked = "guest page tables are walked in hardware; no shadow paging";
        let intel = [
            Assist {
                module: "kvm_intel",
                param: "ept",
                hw: c.ept,
                loaded: ki.loaded,
                enabled: ki.ept,
                on: walked,
                off: &format!("no EPT: {shadow}"),
            },
            Assist {
                module: "kvm_intel",
                param: "vpid",
                hw: c.vpid,
                loaded: ki.loaded,
                enabled: ki.vpid,
                on: "VM exits and entries keep the guest's TLB entries",
                off: "VPID off: every VM exit/entry flushes the TLB",
            },
            Assist {
                module: "kvm_intel",
                param: "flexpriority",
                hw: c.flexpriority,
                loaded: ki.loaded,
                enabled: ki.flexpriority,
                on: "guest TPR accesses do not exit",
                off: "flexpriority off: each guest TPR access exits",
            },
        ];
        let amd_notes = [
            "AMD has NPT instead (below)",
            "AMD SVM tags the TLB with ASIDs, VPID's counterpart",
            "AMD SVM virtualises the TPR through CR8 (V_TPR)",
        ];
        for ((label, assist), amd) in ["EPT", "VPID", "FlexPriority"].into_iter().zip(&intel).zip(amd_notes) {
            if self.is_amd() {
                add(label, "n/a (AMD CPU)".into(), amd.into());
            } else {
                let (value, meaning) = assist.finding(cpuinfo);
                add(label, value, meaning);
            }
        }
        let ka = &self.kvm.kvm_amd;
        if self.is_amd() {
            let npt = Assist {
                module: "kvm_amd",
                param: "npt",
                hw: c.npt,
                loaded: ka.loaded,
                enabled: ka.npt,
                on: walked,
                off: &format!("no NPT: {shadow}"),
            };
            let (value, meaning) = npt.finding(cpuinfo);
            add("NPT", value, meaning);
        } else {
            match c.npt {
                Some(_) => {
                    add("NPT", "n/a (not AMD SVM)".into(), "AMD's nested paging; EPT above is the Intel one".into())
                }
                None => add("NPT", "unknown".into(), cpuinfo()),
            }
        }
        for (name, loaded) in [("kvm_intel", ki.loaded), ("kvm_amd", ka.loaded)] {
            match loaded {
                Some(true) => add(name, "loaded".into(), String::new()),
                Some(false) => add(name, "module not loaded".into(), String::new()),
                None => add(name, "unknown".into(), self.why("/sys/module")),
            }
        }
        match &self.kvm.modules {
            Some(m) if m.is_empty() => add("kvm modules", "none".into(), "no KVM in this kernel now".into()),
            Some(m) => add("kvm modules", m.join(", "), String::new()),
            None => add("kvm modules", "unknown".into(), self.why("/sys/module")),
        }
        let no_hw = c.vmx == Some(false) && c.svm == Some(false);
        match self.kvm.dev_kvm {
            Some(true) if no_hw => add(
                "/dev/kvm",
                "present".into(),
                "although the CPU shows no vmx/svm: a KVM without hardware virtualisation, or a hidden flag".into(),
            ),
            Some(true) => add("/dev/kvm", "present".into(), "QEMU can use KVM (-accel kvm)".into()),
            Some(false) => add("/dev/kvm", "absent".into(), "QEMU would fall back to TCG emulation, far slower".into()),
            None => add("/dev/kvm", "unknown".into(), self.why("/dev")),
        }

        // Memory
        let m = &self.meminfo;
        match self.page_size_bytes {
            Some(p) => add(
                "page size",
                ByteSize(p).to_string(),
                format!("{} pages per GiB of guest RAM to fault, scan (KSM) and swap", GIB / p),
            ),
            None => add("page size", "unavailable".into(), self.why("/proc/self/auxv")),
        }
        let mi = || self.why("/proc/meminfo");
        match m.mem_total_bytes {
            Some(t) => add(
                "RAM",
                format!("{} (MemTotal)", human(t)),
                "guests, the hugetlb pool, the host and the page cache share it".into(),
            ),
            None => add("RAM", "unavailable".into(), mi()),
        }
        if let Some(a) = m.mem_available_bytes {
            add(
                "available",
                format!("{} (MemAvailable)", human(a)),
                "what can still be allocated without swapping".into(),
            );
        }
        if let Some(a) = m.mem_free_bytes {
            add("free", format!("{} (MemFree)", human(a)), "unused now; MemAvailable adds reclaimable cache".into());
        }

        // Huge pages
        match m.hugepages_total {
            Some(0) => add(
                "hugetlb pool",
                "0 pages".into(),
                "no hugetlb pool (HugePages_Total 0): -mem-path guests cannot start; set vm.nr_hugepages".into(),
            ),
            Some(n) => {
                let size = m.hugepagesize_bytes.map_or_else(|| "?".to_string(), |s| ByteSize(s).to_string());
                let bytes = m.hugepagesize_bytes.and_then(|s| s.checked_mul(n));
                add(
                    "hugetlb pool",
                    format!(
                        "{n} × {size}{} (HugePages_Total), {} free",
                        bytes.map_or_else(String::new, |b| format!(" = {}", human(b))),
                        m.hugepages_free.map_or_else(|| "?".into(), |f| f.to_string())
                    ),
                    "taken from RAM whole: never swapped, never merged by KSM; a balloon returns pages to the pool, not to RAM".into(),
                );
            }
            None => add("hugetlb pool", "unavailable".into(), mi()),
        }
        if let (Some(rsvd), Some(surp)) = (m.hugepages_rsvd, m.hugepages_surp) {
            add(
                "hugetlb rsvd/surp",
                format!("{rsvd} reserved, {surp} surplus"),
                "reserved: promised to mappings, not yet faulted; surplus: beyond the pool (nr_overcommit_hugepages)"
                    .into(),
            );
        }
        match &self.hugepage_pools {
            Some(pools) if pools.is_empty() => {
                add("hugepage sizes", "none".into(), "this kernel offers no hugetlb page sizes".into())
            }
            Some(pools) => {
                for p in pools {
                    let label = format!("pool {}", ByteSize(p.page_size_bytes));
                    let nr = p.nr_hugepages.map_or_else(|| "?".into(), |n| n.to_string());
                    let free = p.free_hugepages.map_or_else(|| "?".into(), |n| n.to_string());
                    let is_default = m.hugepagesize_bytes == Some(p.page_size_bytes);
                    let meaning = match (p.nr_hugepages, is_default) {
                        (Some(0), true) => "empty: set vm.nr_hugepages (or hugepages= at boot)".to_string(),
                        (Some(0), false) => {
                            format!("empty: set it at boot (hugepagesz={} hugepages=N)", size_arg(p.page_size_bytes))
                        }
                        (Some(n), _) => {
                            let b = p.page_size_bytes.checked_mul(n).map_or_else(|| "?".into(), human);
                            format!("{b} reserved for hugetlb-backed guests")
                        }
                        (None, _) => String::new(),
                    };
                    let default = if is_default { " (default size)" } else { "" };
                    add(&label, format!("nr_hugepages {nr}, free {free}{default}"), meaning);
                }
            }
            None => add("hugepage sizes", "unavailable".into(), self.why("/sys/kernel/mm/hugepages")),
        }
        if c.pdpe1gb == Some(false) {
            add("1 GiB pages", "no pdpe1gb".into(), "the CPU cannot map 1 GiB pages: 2 MiB is the largest".into());
        }
        match &self.hugetlbfs_mounts {
            Some(ms) if ms.is_empty() => add(
                "hugetlbfs",
                "not mounted".into(),
                "-mem-path needs a hugetlbfs mount (memory-backend-memfd with hugetlb=on does not)".into(),
            ),
            Some(ms) => {
                for mnt in ms {
                    let size = mnt.page_size_bytes.map_or_else(|| "default size".into(), |b| ByteSize(b).to_string());
                    add("hugetlbfs", format!("{} ({size})", mnt.mount_point), "-mem-path can point here".into());
                }
            }
            None => add("hugetlbfs", "unavailable".into(), self.why("/proc/mounts")),
        }

        // THP
        let thp_src = "/sys/kernel/mm/transparent_hugepage/enabled";
        match self.thp.enabled.as_deref() {
            Some("always") => add(
                "THP",
                "always".into(),
                "guest RAM gets 2 MiB pages where memory allows; KSM and swap split them first".into(),
            ),
            Some("madvise") => add(
                "THP",
                "madvise".into(),
                "THP madvise: QEMU marks guest RAM MADV_HUGEPAGE, so guests still get THP".into(),
            ),
            Some("never") => add(
                "THP",
                "never".into(),
                "guest RAM stays on 4 KiB pages: more TLB misses, nothing to split for KSM or swap".into(),
            ),
            Some(other) => add("THP", other.into(), String::new()),
            None => add("THP", "unavailable".into(), self.why(thp_src)),
        }
        match self.thp.defrag.as_deref() {
            Some(d) => {
                let meaning = match d {
                    "always" => "a fault with no free 2 MiB block compacts memory first (stalls under pressure)",
                    "defer" => "compaction runs in the background; faults take 4 KiB pages meanwhile",
                    "defer+madvise" => {
                        "MADV_HUGEPAGE regions (QEMU guest RAM) compact on fault, others in the background"
                    }
                    "madvise" => "MADV_HUGEPAGE regions (QEMU guest RAM) compact on fault (stalls under pressure)",
                    "never" => "no compaction for THP: faults fall back to 4 KiB pages",
                    _ => "",
                };
                add("THP defrag", d.into(), meaning.into());
            }
            None => add("THP defrag", "unavailable".into(), self.why("/sys/kernel/mm/transparent_hugepage/defrag")),
        }
        if let Some(a) = m.anon_huge_pages_bytes {
            add("AnonHugePages", human(a), "anonymous memory on transparent huge pages now".into());
        }

        // KSM
        let k = &self.ksm;
        let ksm_src = "/sys/kernel/mm/ksm";
        match k.run {
            Some(0) => add("KSM", "run=0".into(), "KSM run=0: no page sharing".into()),
            Some(1) => {
                let rate = match (k.pages_to_scan, k.sleep_millisecs) {
                    (Some(n), Some(ms)) => {
                        let per_s = n as f64 * 1000.0 / (ms.max(1) as f64);
                        let bytes = self
                            .page_size_bytes
                            .map_or(String::new(), |p| format!(" ({:.1}/s)", ByteSize((per_s * p as f64) as u64)));
                        format!(": {n} pages every {ms} ms = {per_s:.0} pages/s{bytes} scanned")
                    }
                    _ => String::new(),
                };
                add("KSM", "run=1".into(), format!("merging identical pages{rate}"));
            }
            Some(2) => add("KSM", "run=2".into(), "stopped, and unmerging every shared page".into()),
            Some(v) => add("KSM", format!("run={v}"), String::new()),
            None => add("KSM", "unavailable".into(), self.why(ksm_src)),
        }
        if let (Some(shared), Some(sharing)) = (k.pages_shared, k.pages_sharing) {
            let saved = self
                .page_size_bytes
                .and_then(|p| p.checked_mul(sharing))
                .map_or(String::new(), |b| format!(" = {} saved", human(b)));
            add(
                "KSM sharing",
                format!("pages_shared {shared}, pages_sharing {sharing}{saved}"),
                "pages_sharing counts the duplicate pages KSM freed".into(),
            );
        }
        if let Some(g) = k.general_profit_bytes {
            let v = if g < 0 { format!("-{}", human(g.unsigned_abs())) } else { human(g.unsigned_abs()) };
            add("KSM profit", v, "bytes saved minus KSM's own metadata (general_profit)".into());
        }
        match k.use_zero_pages {
            Some(0) => add("KSM zero pages", "use_zero_pages=0".into(), "empty pages merge into one KSM page".into()),
            Some(_) => add(
                "KSM zero pages",
                "use_zero_pages=1".into(),
                "empty pages map the kernel's zero page (no KSM page, no chain)".into(),
            ),
            None => {}
        }
        if let Some(mps) = k.max_page_sharing {
            add("KSM max sharing", format!("max_page_sharing={mps}"), "sharers per KSM page before a new copy".into());
        }
        if let Some(man) = k.merge_across_nodes {
            let meaning = if man == 0 {
                "pages merge only within a NUMA node"
            } else {
                "pages from different NUMA nodes merge (some guests then read remote memory)"
            };
            add("KSM NUMA", format!("merge_across_nodes={man}"), meaning.into());
        }
        match k.smart_scan {
            Some(s) => add(
                "KSM smart scan",
                format!("smart_scan={s}"),
                if s == 0 {
                    "every page is looked at every full scan".into()
                } else {
                    "pages that do not merge are skipped for up to 8 scans".into()
                },
            ),
            None if k.run.is_some() => add(
                "KSM smart scan",
                "none".into(),
                "this kernel has no smart_scan (before 6.7): every page every full scan".into(),
            ),
            None => {}
        }
        if let Some(a) = &k.advisor_mode {
            add("KSM advisor", a.clone(), "scan-time adapts pages_to_scan; none keeps it fixed".into());
        }

        // Swap
        match (&self.swaps, m.swap_total_bytes) {
            (Some(s), _) if s.is_empty() => {
                add("swap", "none".into(), "no swap: overcommit beyond RAM ends in the OOM killer".into())
            }
            (Some(s), total) => {
                let total = total.unwrap_or_else(|| s.iter().map(|d| d.size_bytes).sum());
                add(
                    "swap",
                    format!(
                        "{} on {} device(s){}",
                        human(total),
                        s.len(),
                        m.swap_free_bytes.map_or_else(String::new, |f| format!(", {} free", human(f)))
                    ),
                    "guest pages beyond RAM go here; each swap-in is a major fault".into(),
                );
                for d in s {
                    let meaning = if d.filename.starts_with("/dev/zram") {
                        "zram: swapped pages stay in RAM, compressed; fast, but not free"
                    } else if d.kind == "file" {
                        "a swap file: as fast as the disk under it"
                    } else {
                        "a disk: swap-in waits for the device"
                    };
                    add(
                        "swap device",
                        format!(
                            "{} ({}, {}, used {}, priority {})",
                            d.filename,
                            d.kind,
                            human(d.size_bytes),
                            human(d.used_bytes),
                            d.priority
                        ),
                        meaning.into(),
                    );
                }
            }
            (None, Some(0)) => {
                add("swap", "none".into(), "no swap: overcommit beyond RAM ends in the OOM killer".into())
            }
            (None, Some(t)) => add("swap", format!("{} (SwapTotal)", human(t)), self.why("/proc/swaps")),
            (None, None) => add("swap", "unavailable".into(), self.why("/proc/swaps")),
        }

        let width = lines.iter().map(|(l, _, _)| l.chars().count()).max().unwrap_or(0);
        let mut out = String::from("overcommit host: this machine, and what it means for memory overcommit\n\n");
        for (label, value, meaning) in &lines {
            let pad = width - label.chars().count();
            let _ = write!(out, "{label}{:pad$}  {value}", "");
            if !meaning.is_empty() {
                let _ = write!(out, " — {meaning}");
            }
            out.push('\n');
        }
        if !self.unavailable.is_empty() {
            out.push_str("\nnot read:\n");
            for u in &self.unavailable {
                let _ = writeln!(out, "  {}: {}", u.source, u.reason);
            }
        }
        out
    }
}

/// One CPU assist: in hardware (cpuinfo) and enabled in the kvm module,
/// with what it means when on and when off.
pub(super) struct Assist<'a> {
    module: &'a str,
    param: &'a str,
    hw: Option<bool>,
    loaded: Option<bool>,
    enabled: Option<bool>,
    on: &'a str,
    off: &'a str,
}

impl Assist<'_> {
    /// The report's value and meaning for this assist.
    fn finding(&self, cpuinfo: impl Fn() -> String) -> (String, String) {
        let Assist { module, param, on, off, .. } = *self;
        match (self.hw, self.loaded, self.enabled) {
            (None, _, _) => ("unknown".into(), cpuinfo()),
            (Some(false), _, _) => ("not in hardware".into(), off.into()),
            (Some(true), Some(true), Some(true)) => (format!("in hardware, {module} {param}=Y"), on.into()),
            (Some(true), Some(true), Some(false)) => (format!("in hardware, but {module} {param}=N"), off.into()),
            (Some(true), Some(true), None) => {
                (format!("in hardware; {module} {param} unreadable"), format!("with it on: {on}"))
            }
            (Some(true), Some(false), _) => (
                format!("in hardware; {module}: module not loaded"),
                format!("KVM turns it on by default when {module} loads: {on}"),
            ),
            (Some(true), None, _) => (format!("in hardware; {module} state unknown"), format!("when on: {on}")),
        }
    }
}

/// A size to two decimals for people (`23.54 GiB`).
pub(super) fn human(bytes: u64) -> String {
    if bytes == 0 { "0 B".to_string() } else { format!("{:.2}", ByteSize(bytes)) }
}

/// A kernel command-line size (`2M`, `1G`).
pub(super) fn size_arg(bytes: u64) -> String {
    if bytes.is_multiple_of(GIB) {
        format!("{}G", bytes / GIB)
    } else if bytes.is_multiple_of(MIB) {
        format!("{}M", bytes / MIB)
    } else {
        format!("{}K", bytes / KIB)
    }
}
