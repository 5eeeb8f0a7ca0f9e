//! This machine as a scenario's `host:` section, each value with where it
//! came from.

use super::*;

impl HostReport {
    /// A `host:` section for a scenario YAML built from this machine, with
    /// comments saying where each value came from. It starts with `host:`;
    /// values that could not be read are left out (the loader's defaults
    /// apply) with a comment saying why.
    pub fn scenario_host_yaml(&self) -> String {
        let mut y = String::from("host:\n");
        let comment = |y: &mut String, text: &str| {
            for line in text.lines() {
                let _ = writeln!(y, "  # {line}");
            }
        };
        let m = &self.meminfo;

        // ram and reserved
        let pool_bytes = self
            .default_pool()
            .and_then(|p| p.nr_hugepages)
            .and_then(|n| m.hugepagesize_bytes.and_then(|s| s.checked_mul(n)));
        match m.mem_total_bytes {
            Some(ram) => {
                comment(&mut y, &format!("/proc/meminfo MemTotal: {}", human(ram)));
                let _ = writeln!(y, "  ram: {}", ByteSize(ram));
                let (reserved, why) = suggest_reserved(ram, pool_bytes.unwrap_or(0));
                comment(&mut y, &why);
                let _ = writeln!(y, "  reserved: {}", ByteSize(reserved));
            }
            None => {
                comment(&mut y, &format!("ram: unknown ({}); add it, e.g. `ram: 64G`", self.why("/proc/meminfo")));
            }
        }

        // hugepages
        let size = m.hugepagesize_bytes;
        let count = self.default_pool().and_then(|p| p.nr_hugepages);
        let size_name = size.and_then(|s| match s {
            s if s == 2 * MIB => Some("2M"),
            s if s == GIB => Some("1G"),
            _ => None,
        });
        match (size, size_name) {
            (Some(s), Some(name)) => {
                let (count, from) = match count {
                    Some(n) => (n, format!("/sys/kernel/mm/hugepages/hugepages-{}kB/nr_hugepages", s / KIB)),
                    None => (m.hugepages_total.unwrap_or(0), "/proc/meminfo HugePages_Total".to_string()),
                };
                comment(&mut y, &format!("vm.nr_hugepages: {from}; size from Hugepagesize"));
                // The other x86-64 size's pool, when it holds pages: a
                // guest takes from the pool of its own page size.
                let other = self.hugepage_pools.iter().flatten().find(|p| {
                    p.page_size_bytes != s
                        && (p.page_size_bytes == 2 * MIB || p.page_size_bytes == GIB)
                        && p.nr_hugepages.unwrap_or(0) > 0
                });
                match other {
                    Some(p) => {
                        let other_name = if p.page_size_bytes == GIB { "1G" } else { "2M" };
                        comment(
                            &mut y,
                            &format!(
                                "and /sys/kernel/mm/hugepages/hugepages-{}kB/nr_hugepages",
                                p.page_size_bytes / KIB
                            ),
                        );
                        let _ = writeln!(y, "  hugepages:");
                        let _ = writeln!(y, "    - {{ size: {name}, count: {count} }}");
                        let _ = writeln!(y, "    - {{ size: {other_name}, count: {} }}", p.nr_hugepages.unwrap_or(0));
                    }
                    None => {
                        let _ = writeln!(y, "  hugepages: {{ size: {name}, count: {count} }}");
                    }
                }
            }
            (Some(s), None) => comment(
                &mut y,
                &format!("hugepages: the default huge page size {} is not 2M or 1G; left out", ByteSize(s)),
            ),
            (None, _) => comment(&mut y, &format!("hugepages: unknown ({}); left out", self.why("/proc/meminfo"))),
        }

        // thp
        match self.thp.enabled.as_deref() {
            Some(mode @ ("always" | "madvise" | "never")) => {
                comment(&mut y, "/sys/kernel/mm/transparent_hugepage/enabled");
                let _ = writeln!(y, "  thp: {mode}");
            }
            Some(other) => comment(&mut y, &format!("thp: {other:?} is not always, madvise or never; left out")),
            None => comment(
                &mut y,
                &format!("thp: unknown ({}); left out", self.why("/sys/kernel/mm/transparent_hugepage/enabled")),
            ),
        }

        // swap
        match &self.swaps {
            Some(devs) if devs.iter().any(|d| d.size_bytes > 0) => {
                let total: u64 = devs.iter().map(|d| d.size_bytes).fold(0, u64::saturating_add);
                // The device the kernel fills first: highest priority.
                let first = devs.iter().filter(|d| d.size_bytes > 0).max_by_key(|d| d.priority);
                let (device, note) = match first {
                    Some(d) if d.filename.starts_with("/dev/zram") => ("zram", format!("{} is zram", d.filename)),
                    Some(d) if d.filename.starts_with("/dev/nvme") => {
                        ("nvme", format!("{} is an NVMe device (its latency is the preset's)", d.filename))
                    }
                    Some(d) => ("ssd", format!("device is a guess for {}: set nvme, ssd or hdd", d.filename)),
                    None => ("ssd", "device is a guess: set nvme, ssd or hdd".to_string()),
                };
                let names: Vec<&str> = devs.iter().map(|d| d.filename.as_str()).collect();
                comment(&mut y, &format!("/proc/swaps: {}; {note}", names.join(", ")));
                let _ = writeln!(y, "  swap: {{ size: {}, device: {device} }}", ByteSize(total));
            }
            Some(_) => comment(&mut y, "no swap on this host (/proc/swaps lists no device)"),
            None => comment(&mut y, &format!("swap: unknown ({}); left out", self.why("/proc/swaps"))),
        }

        // ksm
        let k = &self.ksm;
        match k.run {
            Some(run) => {
                let mut parts = vec![format!("run: {}", run == 1)];
                if let Some(n) = k.pages_to_scan.filter(|&n| u32::try_from(n).is_ok()) {
                    parts.push(format!("pages_to_scan: {n}"));
                }
                if let Some(ms) = k.sleep_millisecs.filter(|&n| u32::try_from(n).is_ok()) {
                    parts.push(format!("sleep_millisecs: {ms}"));
                }
                if let Some(z) = k.use_zero_pages {
                    parts.push(format!("use_zero_pages: {}", z != 0));
                }
                if let Some(mps) = k.max_page_sharing.filter(|&n| n >= 2 && u32::try_from(n).is_ok()) {
                    parts.push(format!("max_page_sharing: {mps}"));
                }
                // A kernel without the file (before 6.7) has no smart scan.
                parts.push(format!("smart_scan: {}", k.smart_scan.is_some_and(|v| v != 0)));
                let runs = match run {
                    1 => "",
                    2 => " (run=2: stopped and unmerging)",
                    _ => " (run=0: stopped)",
                };
                comment(&mut y, &format!("/sys/kernel/mm/ksm/{runs}"));
                // What KSM holds now, for the record (a run starts its
                // merging afresh).
                if let (Some(shared), Some(sharing)) = (k.pages_shared, k.pages_sharing) {
                    let zero = k.ksm_zero_pages.unwrap_or(0);
                    comment(
                        &mut y,
                        &format!(
                            "now: pages_shared {shared}, pages_sharing {sharing}, ksm_zero_pages {zero}, full_scans {} (saving {})",
                            k.full_scans.unwrap_or(0),
                            human((sharing + zero).saturating_mul(4096))
                        ),
                    );
                }
                let _ = writeln!(y, "  ksm: {{ {} }}", parts.join(", "));
            }
            None => comment(&mut y, &format!("ksm: unknown ({}); left out", self.why("/sys/kernel/mm/ksm"))),
        }

        // cpu
        let c = &self.cpu;
        let kvm = &self.kvm;
        // Enabled = the CPU has it and KVM's module has it on (or the module
        // is not loaded, when its default, on, applies).
        let effective = |hw: Option<bool>, loaded: Option<bool>, param: Option<bool>| -> Option<bool> {
            match (hw?, loaded, param) {
                (false, _, _) => Some(false),
                (true, Some(true), Some(p)) => Some(p),
                (true, _, _) => Some(true),
            }
        };
        if self.is_amd() {
            match effective(c.npt, kvm.kvm_amd.loaded, kvm.kvm_amd.npt) {
                Some(npt) => {
                    comment(
                        &mut y,
                        "AMD: ept is NPT (/proc/cpuinfo npt, kvm_amd npt); SVM tags the TLB with ASIDs (vpid)\n\
                         and virtualises the TPR through CR8 (flexpriority)",
                    );
                    let _ = writeln!(y, "  cpu: {{ ept: {npt}, vpid: true, flexpriority: true }}");
                }
                None => comment(&mut y, &format!("cpu: unknown ({}); left out", self.why("/proc/cpuinfo"))),
            }
        } else {
            let ki = &kvm.kvm_intel;
            let ept = effective(c.ept, ki.loaded, ki.ept);
            let vpid = effective(c.vpid, ki.loaded, ki.vpid);
            let flex = effective(c.flexpriority, ki.loaded, ki.flexpriority);
            match (ept, vpid, flex) {
                (Some(ept), Some(vpid), Some(flex)) => {
                    let mut text = match (c.vmx, ki.loaded) {
                        (Some(false), _) => "/proc/cpuinfo flags: no vmx/svm, so this CPU has none of these assists",
                        (_, Some(true)) => "/proc/cpuinfo flags and /sys/module/kvm_intel/parameters",
                        _ => "/proc/cpuinfo flags (kvm_intel not loaded: its defaults, all on)",
                    }
                    .to_string();
                    if c.hypervisor == Some(true) {
                        text.push_str(
                            "\nthis host is itself a VM: real fault and walk costs are higher (nested paging)",
                        );
                    }
                    comment(&mut y, &text);
                    let _ = writeln!(y, "  cpu: {{ ept: {ept}, vpid: {vpid}, flexpriority: {flex} }}");
                }
                _ => comment(&mut y, &format!("cpu: unknown ({}); left out", self.why("/proc/cpuinfo"))),
            }
        }
        y
    }
}

/// max(1 GiB, 5% of RAM) rounded up to 256 MiB, kept below RAM and leaving
/// room for the hugetlb pool; with the comment that explains it.
pub(super) fn suggest_reserved(ram: u64, pool: u64) -> (u64, String) {
    const STEP: u64 = 256 * MIB;
    let five = (ram / 20).div_ceil(STEP).saturating_mul(STEP);
    let mut reserved = five.max(GIB);
    let mut why = "max(1 GiB, 5% of RAM), rounded up to 256 MiB: keep memory for the host OS and QEMU;\n\
                   OpenStack's reserved_host_memory_mb default is 512 MB"
        .to_string();
    if reserved >= ram / 2 {
        reserved = (ram / 2 / MIB) * MIB;
        why.push_str("\nlowered to half of this small host's RAM");
    }
    if pool > 0 && reserved.saturating_add(pool) > ram {
        reserved = (ram.saturating_sub(pool) / MIB) * MIB;
        why.push_str("\nlowered so the hugetlb pool still fits in RAM");
    }
    (reserved, why)
}
