//! Reading the machine: each file a tuning guide checks, failing soft.

use super::*;

/// Reads files under a root and remembers what could not be read.
pub(super) struct Reader<'a> {
    pub(super) root: &'a Path,
    pub(super) unavailable: Vec<Unavailable>,
}

pub(super) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "not found".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

impl Reader<'_> {
    pub(super) fn path(&self, source: &str) -> PathBuf {
        self.root.join(source.trim_start_matches('/'))
    }

    pub(super) fn note(&mut self, source: &str, reason: impl Into<String>) {
        self.unavailable.push(Unavailable { source: source.to_string(), reason: reason.into() });
    }

    /// The file's text (invalid UTF-8 replaced), or `None` after noting why.
    pub(super) fn read(&mut self, source: &str) -> Option<String> {
        match std::fs::read(self.path(source)) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) => {
                self.note(source, io_reason(&e));
                None
            }
        }
    }

    pub(super) fn read_bytes(&mut self, source: &str) -> Option<Vec<u8>> {
        match std::fs::read(self.path(source)) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.note(source, io_reason(&e));
                None
            }
        }
    }

    /// Whether `source` is a directory; `Some(false)` when it is absent,
    /// `None` (noted) on any other failure.
    pub(super) fn dir_exists(&mut self, source: &str) -> Option<bool> {
        match std::fs::metadata(self.path(source)) {
            Ok(m) => Some(m.is_dir()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
            Err(e) => {
                self.note(source, io_reason(&e));
                None
            }
        }
    }

    /// Sorted names in a directory, or `None` after noting why.
    pub(super) fn list(&mut self, source: &str) -> Option<Vec<String>> {
        match std::fs::read_dir(self.path(source)) {
            Ok(rd) => {
                let mut names: Vec<String> =
                    rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                names.sort();
                Some(names)
            }
            Err(e) => {
                self.note(source, io_reason(&e));
                None
            }
        }
    }

    /// A file holding one unsigned number.
    pub(super) fn read_u64(&mut self, source: &str) -> Option<u64> {
        let text = self.read(source)?;
        let t = text.trim();
        match t.parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.note(source, format!("expected a number, found {:?}", clip(t)));
                None
            }
        }
    }

    /// A file holding one signed number.
    pub(super) fn read_i64(&mut self, source: &str) -> Option<i64> {
        let text = self.read(source)?;
        let t = text.trim();
        match t.parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.note(source, format!("expected a number, found {:?}", clip(t)));
                None
            }
        }
    }

    /// A module parameter: `Y`/`N` or `1`/`0`.
    pub(super) fn read_flag(&mut self, source: &str) -> Option<bool> {
        let text = self.read(source)?;
        let t = text.trim();
        match parse_yn(t) {
            Some(v) => Some(v),
            None => {
                self.note(source, format!("expected Y, N, 1 or 0, found {:?}", clip(t)));
                None
            }
        }
    }

    /// The `[selected]` word of a sysfs choice file.
    pub(super) fn read_selected(&mut self, source: &str) -> Option<String> {
        let text = self.read(source)?;
        match selected(&text) {
            Some(v) => Some(v.to_string()),
            None => {
                self.note(source, format!("no [selected] value in {:?}", clip(text.trim())));
                None
            }
        }
    }
}

/// The first 60 characters of file content, for messages.
pub(super) fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

pub(super) fn parse_yn(t: &str) -> Option<bool> {
    match t {
        "Y" | "y" | "1" => Some(true),
        "N" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// `always [madvise] never` → `madvise`.
pub(super) fn selected(text: &str) -> Option<&str> {
    text.split_whitespace().find_map(|w| w.strip_prefix('[')?.strip_suffix(']')).filter(|w| !w.is_empty())
}

/// Undo the octal escapes (`\040` for a space) that /proc/mounts and
/// /proc/swaps use in paths.
pub(super) fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = u32::from(b[i + 1] - b'0') * 64 + u32::from(b[i + 2] - b'0') * 8 + u32::from(b[i + 3] - b'0');
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn read_cpu(r: &mut Reader) -> CpuReport {
    const SRC: &str = "/proc/cpuinfo";
    let mut cpu = CpuReport {
        vendor: None,
        model_name: None,
        count: None,
        vmx: None,
        svm: None,
        hypervisor: None,
        ept: None,
        vpid: None,
        flexpriority: None,
        npt: None,
        pdpe1gb: None,
    };
    let Some(text) = r.read(SRC) else { return cpu };
    let mut count = 0u64;
    let mut flags: Option<HashSet<String>> = None;
    let mut vmx_flags: Option<HashSet<String>> = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => count += 1,
            "vendor_id" if cpu.vendor.is_none() => cpu.vendor = Some(value.to_string()),
            "model name" if cpu.model_name.is_none() => cpu.model_name = Some(value.to_string()),
            "flags" if flags.is_none() => flags = Some(value.split_whitespace().map(str::to_string).collect()),
            "vmx flags" if vmx_flags.is_none() => {
                vmx_flags = Some(value.split_whitespace().map(str::to_string).collect());
            }
            _ => {}
        }
    }
    if cpu.vendor.is_none() {
        r.note(SRC, "no vendor_id line");
    }
    if cpu.model_name.is_none() {
        r.note(SRC, "no model name line");
    }
    if count > 0 {
        cpu.count = Some(count);
    } else {
        r.note(SRC, "no processor lines");
    }
    match flags {
        Some(flags) => {
            let has = |name: &str| flags.contains(name) || vmx_flags.as_ref().is_some_and(|v| v.contains(name));
            cpu.vmx = Some(has("vmx"));
            cpu.svm = Some(has("svm"));
            cpu.hypervisor = Some(has("hypervisor"));
            cpu.ept = Some(has("ept"));
            cpu.vpid = Some(has("vpid"));
            cpu.flexpriority = Some(has("flexpriority"));
            cpu.npt = Some(has("npt"));
            cpu.pdpe1gb = Some(has("pdpe1gb"));
        }
        None => r.note(SRC, "no flags line"),
    }
    cpu
}

pub(super) fn read_kvm(r: &mut Reader) -> KvmReport {
    let dev_kvm = match r.dir_exists("/dev") {
        Some(true) => Some(std::fs::symlink_metadata(r.path("/dev/kvm")).is_ok()),
        Some(false) => {
            r.note("/dev", "not found");
            None
        }
        None => None,
    };
    let modules = r.list("/sys/module").map(|names| names.into_iter().filter(|n| n.starts_with("kvm")).collect());
    let sys_module_readable = modules.is_some();
    let module_loaded = |r: &mut Reader, name: &str| -> Option<bool> {
        if sys_module_readable { r.dir_exists(&format!("/sys/module/{name}")) } else { None }
    };
    let intel_loaded = module_loaded(r, "kvm_intel");
    let amd_loaded = module_loaded(r, "kvm_amd");
    let param = |r: &mut Reader, loaded: Option<bool>, module: &str, name: &str| {
        if loaded == Some(true) { r.read_flag(&format!("/sys/module/{module}/parameters/{name}")) } else { None }
    };
    let kvm_intel = KvmIntel {
        loaded: intel_loaded,
        ept: param(r, intel_loaded, "kvm_intel", "ept"),
        vpid: param(r, intel_loaded, "kvm_intel", "vpid"),
        flexpriority: param(r, intel_loaded, "kvm_intel", "flexpriority"),
    };
    let kvm_amd = KvmAmd { loaded: amd_loaded, npt: param(r, amd_loaded, "kvm_amd", "npt") };
    KvmReport { dev_kvm, modules, kvm_intel, kvm_amd }
}

/// `AT_PAGESZ` from `/proc/self/auxv`: pairs of native-endian words, the
/// key first, ending with `AT_NULL`.
pub(super) fn read_page_size(r: &mut Reader) -> Option<u64> {
    const SRC: &str = "/proc/self/auxv";
    const AT_NULL: u64 = 0;
    const AT_PAGESZ: u64 = 6;
    let bytes = r.read_bytes(SRC)?;
    let word = std::mem::size_of::<usize>();
    let value = |chunk: &[u8]| -> Option<u64> {
        let arr: [u8; std::mem::size_of::<usize>()] = chunk.try_into().ok()?;
        u64::try_from(usize::from_ne_bytes(arr)).ok()
    };
    for pair in bytes.chunks_exact(2 * word) {
        let (Some(key), Some(val)) = (value(&pair[..word]), value(&pair[word..])) else { break };
        if key == AT_NULL {
            break;
        }
        if key == AT_PAGESZ {
            if val.is_power_of_two() && val >= 512 {
                return Some(val);
            }
            r.note(SRC, format!("AT_PAGESZ is {val}, not a page size"));
            return None;
        }
    }
    r.note(SRC, "no AT_PAGESZ entry");
    None
}

pub(super) fn read_meminfo(r: &mut Reader) -> MemInfo {
    const SRC: &str = "/proc/meminfo";
    let Some(text) = r.read(SRC) else { return MemInfo::default() };
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            fields.entry(k.trim()).or_insert(v.trim());
        }
    }
    let mut get = |key: &str, kib: bool| -> Option<u64> {
        let Some(raw) = fields.get(key) else {
            r.note(SRC, format!("no {key} line"));
            return None;
        };
        let mut words = raw.split_whitespace();
        let number = words.next().and_then(|n| n.parse::<u64>().ok());
        let unit = words.next();
        let value = match (number, unit, kib) {
            (Some(n), Some("kB"), true) => n.checked_mul(KIB),
            (Some(n), None, false) => Some(n),
            _ => None,
        };
        if value.is_none() {
            let want = if kib { "a number of kB" } else { "a number" };
            r.note(SRC, format!("{key} is {:?}, expected {want}", clip(raw)));
        }
        value
    };
    MemInfo {
        mem_total_bytes: get("MemTotal", true),
        mem_free_bytes: get("MemFree", true),
        mem_available_bytes: get("MemAvailable", true),
        swap_total_bytes: get("SwapTotal", true),
        swap_free_bytes: get("SwapFree", true),
        hugepages_total: get("HugePages_Total", false),
        hugepages_free: get("HugePages_Free", false),
        hugepages_rsvd: get("HugePages_Rsvd", false),
        hugepages_surp: get("HugePages_Surp", false),
        hugepagesize_bytes: get("Hugepagesize", true),
        anon_huge_pages_bytes: get("AnonHugePages", true),
        hugetlb_bytes: get("Hugetlb", true),
    }
}

pub(super) fn read_hugepage_pools(r: &mut Reader) -> Option<Vec<HugepagePoolReport>> {
    const DIR: &str = "/sys/kernel/mm/hugepages";
    let names = r.list(DIR)?;
    let mut pools = Vec::new();
    for name in names {
        let Some(kib) = name.strip_prefix("hugepages-").and_then(|s| s.strip_suffix("kB")) else { continue };
        let Some(page_size_bytes) = kib.parse::<u64>().ok().and_then(|k| k.checked_mul(KIB)) else {
            r.note(&format!("{DIR}/{name}"), "not a hugepages-<size>kB name");
            continue;
        };
        let dir = format!("{DIR}/{name}");
        pools.push(HugepagePoolReport {
            page_size_bytes,
            nr_hugepages: r.read_u64(&format!("{dir}/nr_hugepages")),
            free_hugepages: r.read_u64(&format!("{dir}/free_hugepages")),
            nr_overcommit_hugepages: r.read_u64(&format!("{dir}/nr_overcommit_hugepages")),
        });
    }
    pools.sort_by_key(|p| p.page_size_bytes);
    Some(pools)
}

pub(super) fn read_mounts(r: &mut Reader) -> Option<Vec<HugetlbfsMount>> {
    let text = r.read("/proc/mounts")?;
    let mut mounts = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(mount_point), Some(&"hugetlbfs"), Some(options)) = (f.get(1), f.get(2), f.get(3)) else {
            continue;
        };
        let page_size_bytes = options
            .split(',')
            .find_map(|o| o.strip_prefix("pagesize="))
            .and_then(|v| ByteSize::parse_with_default_unit(v, 1).ok())
            .map(ByteSize::bytes);
        mounts.push(HugetlbfsMount {
            mount_point: unescape_octal(mount_point),
            page_size_bytes,
            options: (*options).to_string(),
        });
    }
    Some(mounts)
}

pub(super) fn read_ksm(r: &mut Reader) -> KsmReport {
    const DIR: &str = "/sys/kernel/mm/ksm";
    let mut ksm = KsmReport {
        run: None,
        pages_to_scan: None,
        sleep_millisecs: None,
        use_zero_pages: None,
        max_page_sharing: None,
        merge_across_nodes: None,
        smart_scan: None,
        pages_shared: None,
        pages_sharing: None,
        pages_unshared: None,
        pages_volatile: None,
        full_scans: None,
        ksm_zero_pages: None,
        general_profit_bytes: None,
        advisor_mode: None,
    };
    match r.dir_exists(DIR) {
        Some(true) => {}
        Some(false) => {
            r.note(DIR, "not found (no KSM in this kernel)");
            return ksm;
        }
        None => return ksm,
    }
    let mut num = |name: &str| r.read_u64(&format!("{DIR}/{name}"));
    ksm.run = num("run");
    ksm.pages_to_scan = num("pages_to_scan");
    ksm.sleep_millisecs = num("sleep_millisecs");
    ksm.use_zero_pages = num("use_zero_pages");
    ksm.max_page_sharing = num("max_page_sharing");
    ksm.merge_across_nodes = num("merge_across_nodes");
    ksm.smart_scan = num("smart_scan");
    ksm.pages_shared = num("pages_shared");
    ksm.pages_sharing = num("pages_sharing");
    ksm.pages_unshared = num("pages_unshared");
    ksm.pages_volatile = num("pages_volatile");
    ksm.full_scans = num("full_scans");
    ksm.ksm_zero_pages = num("ksm_zero_pages");
    ksm.general_profit_bytes = r.read_i64(&format!("{DIR}/general_profit"));
    ksm.advisor_mode = r.read_selected(&format!("{DIR}/advisor_mode"));
    ksm
}

pub(super) fn read_swaps(r: &mut Reader) -> Option<Vec<SwapDevice>> {
    const SRC: &str = "/proc/swaps";
    let text = r.read(SRC)?;
    let mut devices = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || f[0] == "Filename" {
            continue;
        }
        match swap_line(&f) {
            Some(d) => devices.push(d),
            None => r.note(SRC, format!("cannot read the line {:?}", clip(line))),
        }
    }
    Some(devices)
}

/// `filename type size used priority`, sizes in KiB.
pub(super) fn swap_line(f: &[&str]) -> Option<SwapDevice> {
    let [name, kind, size, used, prio] = f else { return None };
    Some(SwapDevice {
        filename: unescape_octal(name),
        kind: (*kind).to_string(),
        size_bytes: size.parse::<u64>().ok()?.checked_mul(KIB)?,
        used_bytes: used.parse::<u64>().ok()?.checked_mul(KIB)?,
        priority: prio.parse().ok()?,
    })
}
