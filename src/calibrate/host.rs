//! Host inspection for `overcommit host`: this module owns reading the
//! machine's own description of its virtualisation and memory features, and
//! saying what each one means for memory overcommit.
//!
//! It reads the same files a KVM tuning guide checks by hand: the CPU flags
//! in `/proc/cpuinfo` (`vmx`, `svm`, `hypervisor`, and `ept`, `vpid`,
//! `flexpriority`, `npt` from the `flags` or `vmx flags` line), the kvm
//! module parameters under `/sys/module`, `/dev/kvm`, the base page size
//! (`getconf PAGESIZE`, read here from the `AT_PAGESZ` entry of
//! `/proc/self/auxv`, the value the kernel hands every process), the
//! counters of `/proc/meminfo`, the hugetlb pools under
//! `/sys/kernel/mm/hugepages` (`vm.nr_hugepages` is the default size's
//! pool), hugetlbfs mounts in `/proc/mounts`, transparent huge page modes,
//! the KSM knobs and counters under `/sys/kernel/mm/ksm`, and the swap
//! devices in `/proc/swaps`.
//!
//! Every read fails soft: a file that is missing, unreadable or not in the
//! expected form leaves its fields `None` and adds an entry, with the
//! reason, to [`HostReport::unavailable`]. Nothing here panics on file
//! content. [`inspect_at`] reads a tree rooted anywhere, so tests can build
//! a fake `/proc` and `/sys` in a temporary directory.
//!
//! The JSON form of [`HostReport`] is stable: keys are snake_case, sizes are
//! numbers of bytes (keys ending in `_bytes`; `/proc/meminfo`'s and
//! `/proc/swaps`' "kB" are KiB and are multiplied by 1024), page counts are
//! plain numbers, and `null` means "could not be read" (see `unavailable`).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::units::ByteSize;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Read the live machine (root "/").
pub fn inspect() -> HostReport {
    inspect_at(Path::new("/"))
}

/// Read a machine whose /proc, /sys and /dev are under `root` (tests use a
/// fake tree in a tempdir). Paths in the report are always the machine's
/// own (`/proc/meminfo`), never `root`-joined.
pub fn inspect_at(root: &Path) -> HostReport {
    let mut r = Reader { root, unavailable: Vec::new() };
    let cpu = read_cpu(&mut r);
    let kvm = read_kvm(&mut r);
    let page_size_bytes = read_page_size(&mut r);
    let meminfo = read_meminfo(&mut r);
    let hugepage_pools = read_hugepage_pools(&mut r);
    let hugetlbfs_mounts = read_mounts(&mut r);
    let thp = ThpReport {
        enabled: r.read_selected("/sys/kernel/mm/transparent_hugepage/enabled"),
        defrag: r.read_selected("/sys/kernel/mm/transparent_hugepage/defrag"),
    };
    let ksm = read_ksm(&mut r);
    let swaps = read_swaps(&mut r);
    HostReport {
        cpu,
        kvm,
        page_size_bytes,
        meminfo,
        hugepage_pools,
        hugetlbfs_mounts,
        thp,
        ksm,
        swaps,
        unavailable: r.unavailable,
    }
}

/// What `overcommit host` found. Every `Option` is `None` (JSON `null`)
/// when its source could not be read; [`HostReport::unavailable`] says why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostReport {
    /// `/proc/cpuinfo`.
    pub cpu: CpuReport,
    /// `/dev/kvm` and the kvm modules under `/sys/module`.
    pub kvm: KvmReport,
    /// The base page size (`getconf PAGESIZE`), from `AT_PAGESZ` in
    /// `/proc/self/auxv`.
    pub page_size_bytes: Option<u64>,
    /// `/proc/meminfo`.
    pub meminfo: MemInfo,
    /// One entry per `/sys/kernel/mm/hugepages/hugepages-<size>kB`, smallest
    /// size first; `None` when that directory cannot be read.
    pub hugepage_pools: Option<Vec<HugepagePoolReport>>,
    /// The hugetlbfs lines of `/proc/mounts` (`mount -t hugetlbfs`).
    pub hugetlbfs_mounts: Option<Vec<HugetlbfsMount>>,
    /// `/sys/kernel/mm/transparent_hugepage/`.
    pub thp: ThpReport,
    /// `/sys/kernel/mm/ksm/`.
    pub ksm: KsmReport,
    /// `/proc/swaps`, one entry per device or file.
    pub swaps: Option<Vec<SwapDevice>>,
    /// Every source that could not be read or understood, with the reason.
    pub unavailable: Vec<Unavailable>,
}

/// A source that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    /// The file or directory as the machine names it (`/proc/swaps`).
    pub source: String,
    pub reason: String,
}

/// `/proc/cpuinfo`. Flags are from the first processor; each is `None`
/// when the file or its `flags` line is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuReport {
    /// `vendor_id` (`GenuineIntel`, `AuthenticAMD`).
    pub vendor: Option<String>,
    /// `model name`.
    pub model_name: Option<String>,
    /// Number of `processor` entries (logical CPUs).
    pub count: Option<u64>,
    /// Intel VT-x (`vmx` flag).
    pub vmx: Option<bool>,
    /// AMD-V (`svm` flag).
    pub svm: Option<bool>,
    /// `hypervisor` flag: this machine is itself a virtual machine.
    pub hypervisor: Option<bool>,
    /// The following four are in hardware when named in `flags` or (kernel
    /// 5.8 and later) in `vmx flags`.
    pub ept: Option<bool>,
    pub vpid: Option<bool>,
    pub flexpriority: Option<bool>,
    /// AMD nested paging.
    pub npt: Option<bool>,
    /// 1 GiB pages (`pdpe1gb` flag).
    pub pdpe1gb: Option<bool>,
}

/// `/dev/kvm` and the kvm modules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvmReport {
    /// `/dev/kvm` exists (`None` when `/dev` itself is missing).
    pub dev_kvm: Option<bool>,
    /// Entries of `/sys/module` whose name starts with `kvm`, sorted.
    pub modules: Option<Vec<String>>,
    /// `/sys/module/kvm_intel/parameters/{ept,vpid,flexpriority}`.
    pub kvm_intel: KvmIntel,
    /// `/sys/module/kvm_amd/parameters/npt`.
    pub kvm_amd: KvmAmd,
}

/// kvm_intel's parameters (`Y`/`N` or `1`/`0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvmIntel {
    /// `/sys/module/kvm_intel` exists (loaded, or built in). `None` when
    /// `/sys/module` cannot be read.
    pub loaded: Option<bool>,
    pub ept: Option<bool>,
    pub vpid: Option<bool>,
    pub flexpriority: Option<bool>,
}

/// kvm_amd's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvmAmd {
    pub loaded: Option<bool>,
    pub npt: Option<bool>,
}

/// `/proc/meminfo`, in bytes except the `hugepages_*` page counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct MemInfo {
    pub mem_total_bytes: Option<u64>,
    pub mem_free_bytes: Option<u64>,
    pub mem_available_bytes: Option<u64>,
    pub swap_total_bytes: Option<u64>,
    pub swap_free_bytes: Option<u64>,
    /// `HugePages_Total`: pages in the default size's pool.
    pub hugepages_total: Option<u64>,
    pub hugepages_free: Option<u64>,
    /// `HugePages_Rsvd`: promised to mappings, not yet faulted in.
    pub hugepages_rsvd: Option<u64>,
    /// `HugePages_Surp`: beyond `nr_hugepages`, from `nr_overcommit_hugepages`.
    pub hugepages_surp: Option<u64>,
    /// `Hugepagesize`: the default huge page size.
    pub hugepagesize_bytes: Option<u64>,
    /// `AnonHugePages`: anonymous memory on transparent huge pages now.
    pub anon_huge_pages_bytes: Option<u64>,
    /// `Hugetlb`: memory in all hugetlb pools, every size.
    pub hugetlb_bytes: Option<u64>,
}

/// One hugetlb pool, `/sys/kernel/mm/hugepages/hugepages-<size>kB/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HugepagePoolReport {
    pub page_size_bytes: u64,
    /// `nr_hugepages` (for the default size, `vm.nr_hugepages`).
    pub nr_hugepages: Option<u64>,
    pub free_hugepages: Option<u64>,
    /// `nr_overcommit_hugepages`: surplus pages the kernel may add on demand.
    pub nr_overcommit_hugepages: Option<u64>,
}

/// A hugetlbfs mount from `/proc/mounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HugetlbfsMount {
    pub mount_point: String,
    /// The `pagesize=` option; `None` means the default huge page size.
    pub page_size_bytes: Option<u64>,
    /// The whole option string, as mounted.
    pub options: String,
}

/// Transparent huge pages: the selected (bracketed) value of each file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThpReport {
    /// `always`, `madvise` or `never`.
    pub enabled: Option<String>,
    /// `always`, `defer`, `defer+madvise`, `madvise` or `never`.
    pub defrag: Option<String>,
}

/// `/sys/kernel/mm/ksm/`: knobs, then counters (in pages unless `_bytes`).
/// Files a kernel does not have (older ones lack `general_profit`,
/// `ksm_zero_pages` and `advisor_mode`) are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KsmReport {
    /// 0 stopped, 1 running, 2 stopped and unmerging everything.
    pub run: Option<u64>,
    pub pages_to_scan: Option<u64>,
    pub sleep_millisecs: Option<u64>,
    pub use_zero_pages: Option<u64>,
    pub max_page_sharing: Option<u64>,
    pub merge_across_nodes: Option<u64>,
    /// KSM pages in use (each holds one copy).
    pub pages_shared: Option<u64>,
    /// Mappings of those pages: the pages saved.
    pub pages_sharing: Option<u64>,
    pub pages_unshared: Option<u64>,
    pub pages_volatile: Option<u64>,
    pub full_scans: Option<u64>,
    /// Empty pages merged with the zero page (`use_zero_pages`).
    pub ksm_zero_pages: Option<u64>,
    /// Bytes saved minus KSM's own metadata; may be negative.
    pub general_profit_bytes: Option<i64>,
    /// The selected scan advisor (`none` or `scan-time`).
    pub advisor_mode: Option<String>,
}

/// One line of `/proc/swaps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwapDevice {
    pub filename: String,
    /// `partition` or `file`.
    #[serde(rename = "type")]
    pub kind: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub priority: i64,
}

// ---------------------------------------------------------------------------
// Reading

/// Reads files under a root and remembers what could not be read.
struct Reader<'a> {
    root: &'a Path,
    unavailable: Vec<Unavailable>,
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "not found".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

impl Reader<'_> {
    fn path(&self, source: &str) -> PathBuf {
        self.root.join(source.trim_start_matches('/'))
    }

    fn note(&mut self, source: &str, reason: impl Into<String>) {
        self.unavailable.push(Unavailable { source: source.to_string(), reason: reason.into() });
    }

    /// The file's text (invalid UTF-8 replaced), or `None` after noting why.
    fn read(&mut self, source: &str) -> Option<String> {
        match std::fs::read(self.path(source)) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) => {
                self.note(source, io_reason(&e));
                None
            }
        }
    }

    fn read_bytes(&mut self, source: &str) -> Option<Vec<u8>> {
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
    fn dir_exists(&mut self, source: &str) -> Option<bool> {
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
    fn list(&mut self, source: &str) -> Option<Vec<String>> {
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
    fn read_u64(&mut self, source: &str) -> Option<u64> {
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
    fn read_i64(&mut self, source: &str) -> Option<i64> {
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
    fn read_flag(&mut self, source: &str) -> Option<bool> {
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
    fn read_selected(&mut self, source: &str) -> Option<String> {
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
fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

fn parse_yn(t: &str) -> Option<bool> {
    match t {
        "Y" | "y" | "1" => Some(true),
        "N" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// `always [madvise] never` → `madvise`.
fn selected(text: &str) -> Option<&str> {
    text.split_whitespace().find_map(|w| w.strip_prefix('[')?.strip_suffix(']')).filter(|w| !w.is_empty())
}

/// Undo the octal escapes (`\040` for a space) that /proc/mounts and
/// /proc/swaps use in paths.
fn unescape_octal(s: &str) -> String {
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

fn read_cpu(r: &mut Reader) -> CpuReport {
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

fn read_kvm(r: &mut Reader) -> KvmReport {
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
fn read_page_size(r: &mut Reader) -> Option<u64> {
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

fn read_meminfo(r: &mut Reader) -> MemInfo {
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

fn read_hugepage_pools(r: &mut Reader) -> Option<Vec<HugepagePoolReport>> {
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

fn read_mounts(r: &mut Reader) -> Option<Vec<HugetlbfsMount>> {
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

fn read_ksm(r: &mut Reader) -> KsmReport {
    const DIR: &str = "/sys/kernel/mm/ksm";
    let mut ksm = KsmReport {
        run: None,
        pages_to_scan: None,
        sleep_millisecs: None,
        use_zero_pages: None,
        max_page_sharing: None,
        merge_across_nodes: None,
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

fn read_swaps(r: &mut Reader) -> Option<Vec<SwapDevice>> {
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
fn swap_line(f: &[&str]) -> Option<SwapDevice> {
    let [name, kind, size, used, prio] = f else { return None };
    Some(SwapDevice {
        filename: unescape_octal(name),
        kind: (*kind).to_string(),
        size_bytes: size.parse::<u64>().ok()?.checked_mul(KIB)?,
        used_bytes: used.parse::<u64>().ok()?.checked_mul(KIB)?,
        priority: prio.parse().ok()?,
    })
}

// ---------------------------------------------------------------------------
// The human report

impl HostReport {
    /// The reason recorded for `source`: its own entry, else one for a
    /// file inside it, else one for a directory holding it.
    fn why(&self, source: &str) -> String {
        let inside = |u: &&Unavailable| u.source.strip_prefix(source).is_some_and(|rest| rest.starts_with('/'));
        let holding =
            |u: &&Unavailable| source.strip_prefix(u.source.as_str()).is_some_and(|rest| rest.starts_with('/'));
        let found = self.unavailable.iter().find(|u| u.source == source);
        let found = found.or_else(|| self.unavailable.iter().find(inside));
        let found = found.or_else(|| self.unavailable.iter().find(holding));
        found.map_or_else(|| format!("{source} unreadable"), |u| format!("{}: {}", u.source, u.reason))
    }

    /// The default huge page size's pool (`vm.nr_hugepages`).
    fn default_pool(&self) -> Option<&HugepagePoolReport> {
        let size = self.meminfo.hugepagesize_bytes?;
        self.hugepage_pools.as_ref()?.iter().find(|p| p.page_size_bytes == size)
    }

    /// Is this an AMD-V machine (and not VT-x)?
    fn is_amd(&self) -> bool {
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
fn suggest_reserved(ram: u64, pool: u64) -> (u64, String) {
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

/// One CPU assist: in hardware (cpuinfo) and enabled in the kvm module,
/// with what it means when on and when off.
struct Assist<'a> {
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
fn human(bytes: u64) -> String {
    if bytes == 0 { "0 B".to_string() } else { format!("{:.2}", ByteSize(bytes)) }
}

/// A kernel command-line size (`2M`, `1G`).
fn size_arg(bytes: u64) -> String {
    if bytes.is_multiple_of(GIB) {
        format!("{}G", bytes / GIB)
    } else if bytes.is_multiple_of(MIB) {
        format!("{}M", bytes / MIB)
    } else {
        format!("{}K", bytes / KIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, path: &str, content: &[u8]) {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }

    fn auxv(page: u64) -> Vec<u8> {
        let mut v = Vec::new();
        for (k, val) in [(33u64, 0x7fff_0000u64), (16, 0xbfeb_fbff), (6, page), (17, 100), (0, 0)] {
            v.extend_from_slice(&(k as usize).to_ne_bytes());
            v.extend_from_slice(&(val as usize).to_ne_bytes());
        }
        v
    }

    const CPUINFO_INTEL: &str = "\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model name\t: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pdpe1gb rdtscp lm vmx est tm2
vmx flags\t: vnmi preemption_timer posted_intr invvpid ept_x_only ept_ad ept_1gb flexpriority apicv tsc_offset vtpr mtf vapic ept vpid unrestricted_guest
bugs\t\t: spectre_v1

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pdpe1gb rdtscp lm vmx est tm2
vmx flags\t: vnmi preemption_timer posted_intr invvpid ept_x_only ept_ad ept_1gb flexpriority apicv tsc_offset vtpr mtf vapic ept vpid unrestricted_guest

processor\t: 2
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
flags\t\t: fpu vmx

processor\t: 3
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
flags\t\t: fpu vmx
";

    const MEMINFO: &str = "\
MemTotal:       65755772 kB
MemFree:        40123456 kB
MemAvailable:   58000000 kB
Buffers:          123456 kB
SwapTotal:       8388604 kB
SwapFree:        8388000 kB
AnonHugePages:   4194304 kB
HugePages_Total:     512
HugePages_Free:      500
HugePages_Rsvd:        3
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:         1048576 kB
DirectMap4k:      123456 kB
";

    /// An Intel VT-x host with EPT/VPID/FlexPriority on, a 2 MiB pool of
    /// 512 pages, THP `always [madvise] never`, KSM running and one zram
    /// swap device.
    fn intel_host() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, "/proc/cpuinfo", CPUINFO_INTEL.as_bytes());
        put(root, "/proc/meminfo", MEMINFO.as_bytes());
        put(root, "/proc/self/auxv", &auxv(4096));
        put(
            root,
            "/proc/mounts",
            b"sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n\
              hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n\
              none /mnt/huge\\0401g hugetlbfs rw,relatime,pagesize=1024M 0 0\n\
              tmpfs /run tmpfs rw 0 0\n",
        );
        put(
            root,
            "/proc/swaps",
            b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/zram0                              partition\t8388604\t\t604\t\t100\n",
        );
        put(root, "/dev/kvm", b"");
        put(root, "/sys/module/kvm/parameters/halt_poll_ns", b"200000\n");
        put(root, "/sys/module/kvm_intel/parameters/ept", b"Y\n");
        put(root, "/sys/module/kvm_intel/parameters/vpid", b"Y\n");
        put(root, "/sys/module/kvm_intel/parameters/flexpriority", b"1\n");
        put(root, "/sys/module/ext4/parameters/x", b"0\n");
        let hp = "/sys/kernel/mm/hugepages";
        put(root, &format!("{hp}/hugepages-2048kB/nr_hugepages"), b"512\n");
        put(root, &format!("{hp}/hugepages-2048kB/free_hugepages"), b"500\n");
        put(root, &format!("{hp}/hugepages-2048kB/nr_overcommit_hugepages"), b"0\n");
        put(root, &format!("{hp}/hugepages-1048576kB/nr_hugepages"), b"0\n");
        put(root, &format!("{hp}/hugepages-1048576kB/free_hugepages"), b"0\n");
        put(root, &format!("{hp}/hugepages-1048576kB/nr_overcommit_hugepages"), b"0\n");
        put(root, "/sys/kernel/mm/transparent_hugepage/enabled", b"always [madvise] never\n");
        put(root, "/sys/kernel/mm/transparent_hugepage/defrag", b"always defer defer+madvise [madvise] never\n");
        let ksm = "/sys/kernel/mm/ksm";
        for (name, v) in [
            ("run", "1"),
            ("pages_to_scan", "100"),
            ("sleep_millisecs", "20"),
            ("use_zero_pages", "0"),
            ("max_page_sharing", "256"),
            ("merge_across_nodes", "1"),
            ("pages_shared", "1500"),
            ("pages_sharing", "9000"),
            ("pages_unshared", "20000"),
            ("pages_volatile", "300"),
            ("full_scans", "42"),
            ("ksm_zero_pages", "0"),
            ("general_profit", "-8192"),
            ("advisor_mode", "[none] scan-time"),
        ] {
            put(root, &format!("{ksm}/{name}"), format!("{v}\n").as_bytes());
        }
        dir
    }

    #[test]
    fn reads_every_field_of_an_intel_host() {
        let dir = intel_host();
        let r = inspect_at(dir.path());
        assert_eq!(
            r.cpu,
            CpuReport {
                vendor: Some("GenuineIntel".into()),
                model_name: Some("Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz".into()),
                count: Some(4),
                vmx: Some(true),
                svm: Some(false),
                hypervisor: Some(false),
                ept: Some(true),
                vpid: Some(true),
                flexpriority: Some(true),
                npt: Some(false),
                pdpe1gb: Some(true),
            }
        );
        assert_eq!(
            r.kvm,
            KvmReport {
                dev_kvm: Some(true),
                modules: Some(vec!["kvm".into(), "kvm_intel".into()]),
                kvm_intel: KvmIntel { loaded: Some(true), ept: Some(true), vpid: Some(true), flexpriority: Some(true) },
                kvm_amd: KvmAmd { loaded: Some(false), npt: None },
            }
        );
        assert_eq!(r.page_size_bytes, Some(4096));
        assert_eq!(
            r.meminfo,
            MemInfo {
                mem_total_bytes: Some(65_755_772 * 1024),
                mem_free_bytes: Some(40_123_456 * 1024),
                mem_available_bytes: Some(58_000_000 * 1024),
                swap_total_bytes: Some(8_388_604 * 1024),
                swap_free_bytes: Some(8_388_000 * 1024),
                hugepages_total: Some(512),
                hugepages_free: Some(500),
                hugepages_rsvd: Some(3),
                hugepages_surp: Some(0),
                hugepagesize_bytes: Some(2 << 20),
                anon_huge_pages_bytes: Some(4 << 30),
                hugetlb_bytes: Some(1 << 30),
            }
        );
        assert_eq!(
            r.hugepage_pools,
            Some(vec![
                HugepagePoolReport {
                    page_size_bytes: 2 << 20,
                    nr_hugepages: Some(512),
                    free_hugepages: Some(500),
                    nr_overcommit_hugepages: Some(0)
                },
                HugepagePoolReport {
                    page_size_bytes: 1 << 30,
                    nr_hugepages: Some(0),
                    free_hugepages: Some(0),
                    nr_overcommit_hugepages: Some(0)
                },
            ])
        );
        assert_eq!(
            r.hugetlbfs_mounts,
            Some(vec![
                HugetlbfsMount {
                    mount_point: "/dev/hugepages".into(),
                    page_size_bytes: Some(2 << 20),
                    options: "rw,relatime,pagesize=2M".into()
                },
                HugetlbfsMount {
                    mount_point: "/mnt/huge 1g".into(),
                    page_size_bytes: Some(1 << 30),
                    options: "rw,relatime,pagesize=1024M".into()
                },
            ])
        );
        assert_eq!(r.thp, ThpReport { enabled: Some("madvise".into()), defrag: Some("madvise".into()) });
        assert_eq!(
            r.ksm,
            KsmReport {
                run: Some(1),
                pages_to_scan: Some(100),
                sleep_millisecs: Some(20),
                use_zero_pages: Some(0),
                max_page_sharing: Some(256),
                merge_across_nodes: Some(1),
                pages_shared: Some(1500),
                pages_sharing: Some(9000),
                pages_unshared: Some(20000),
                pages_volatile: Some(300),
                full_scans: Some(42),
                ksm_zero_pages: Some(0),
                general_profit_bytes: Some(-8192),
                advisor_mode: Some("none".into()),
            }
        );
        assert_eq!(
            r.swaps,
            Some(vec![SwapDevice {
                filename: "/dev/zram0".into(),
                kind: "partition".into(),
                size_bytes: 8_388_604 * 1024,
                used_bytes: 604 * 1024,
                priority: 100,
            }])
        );
        assert_eq!(r.unavailable, vec![], "a complete tree leaves nothing unread");
    }

    #[test]
    fn intel_host_text_says_what_each_finding_means() {
        let dir = intel_host();
        let text = inspect_at(dir.path()).render_text();
        for needle in [
            "GenuineIntel, Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz, 4 CPUs",
            "vmx (Intel VT-x)",
            "in hardware, kvm_intel ept=Y",
            "in hardware, kvm_intel vpid=Y",
            "in hardware, kvm_intel flexpriority=Y",
            "kvm_amd",
            "module not loaded",
            "bare metal",
            "4 KiB — 262144 pages per GiB",
            "512 × 2 MiB = 1.00 GiB (HugePages_Total), 500 free",
            "/dev/hugepages (2 MiB)",
            "/mnt/huge 1g (1 GiB)",
            "THP madvise: QEMU marks guest RAM MADV_HUGEPAGE, so guests still get THP",
            "100 pages every 20 ms = 5000 pages/s",
            "pages_sharing 9000",
            "/dev/zram0 (partition",
            "zram: swapped pages stay in RAM",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        assert!(!text.contains("not read:"), "nothing was unreadable:\n{text}");
    }

    #[test]
    fn module_not_loaded_when_kvm_intel_is_absent() {
        let dir = intel_host();
        std::fs::remove_dir_all(dir.path().join("sys/module/kvm_intel")).expect("rm");
        let r = inspect_at(dir.path());
        assert_eq!(r.kvm.kvm_intel, KvmIntel { loaded: Some(false), ept: None, vpid: None, flexpriority: None });
        let text = r.render_text();
        assert!(text.contains("kvm_intel: module not loaded"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("kvm_intel ") && l.contains("module not loaded")), "{text}");
        // With the module absent its defaults (all on) go into the scenario.
        assert!(r.scenario_host_yaml().contains("cpu: { ept: true, vpid: true, flexpriority: true }"));
    }

    #[test]
    fn kvm_parameters_off_are_reported_off() {
        let dir = intel_host();
        put(dir.path(), "/sys/module/kvm_intel/parameters/ept", b"N\n");
        put(dir.path(), "/sys/module/kvm_intel/parameters/vpid", b"0\n");
        put(dir.path(), "/sys/module/kvm_intel/parameters/flexpriority", b"N\n");
        let r = inspect_at(dir.path());
        let text = r.render_text();
        assert!(
            text.contains("in hardware, but kvm_intel ept=N — no EPT: guests would use shadow page tables"),
            "{text}"
        );
        assert!(text.contains("VPID off: every VM exit/entry flushes the TLB"), "{text}");
        assert!(text.contains("flexpriority off: each guest TPR access exits"), "{text}");
        assert!(r.scenario_host_yaml().contains("cpu: { ept: false, vpid: false, flexpriority: false }"));
    }

    #[test]
    fn older_kernels_list_ept_in_flags() {
        let dir = intel_host();
        put(
            dir.path(),
            "/proc/cpuinfo",
            b"processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon\nflags\t\t: fpu vmx tpr_shadow vnmi flexpriority ept vpid hypervisor\n",
        );
        let r = inspect_at(dir.path());
        assert_eq!((r.cpu.ept, r.cpu.vpid, r.cpu.flexpriority), (Some(true), Some(true), Some(true)));
        assert_eq!((r.cpu.hypervisor, r.cpu.pdpe1gb, r.cpu.count), (Some(true), Some(false), Some(1)));
        let text = r.render_text();
        assert!(text.contains("this is itself a virtual machine (hypervisor flag)"), "{text}");
    }

    #[test]
    fn a_cpu_without_vmx_or_svm_cannot_run_guests() {
        let dir = intel_host();
        put(
            dir.path(),
            "/proc/cpuinfo",
            b"processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 hypervisor\n",
        );
        std::fs::remove_dir_all(dir.path().join("sys/module/kvm_intel")).expect("rm");
        let r = inspect_at(dir.path());
        let text = r.render_text();
        assert!(text.contains("not a KVM-capable CPU (no vmx/svm)"), "{text}");
        assert!(text.contains("no EPT: guests would use shadow page tables"), "{text}");
        assert!(r.scenario_host_yaml().contains("cpu: { ept: false, vpid: false, flexpriority: false }"));
    }

    #[test]
    fn amd_hosts_report_npt() {
        let dir = intel_host();
        put(
            dir.path(),
            "/proc/cpuinfo",
            b"processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu svm npt pdpe1gb\n",
        );
        std::fs::remove_dir_all(dir.path().join("sys/module/kvm_intel")).expect("rm");
        put(dir.path(), "/sys/module/kvm_amd/parameters/npt", b"1\n");
        let r = inspect_at(dir.path());
        assert_eq!(r.kvm.kvm_amd, KvmAmd { loaded: Some(true), npt: Some(true) });
        let text = r.render_text();
        assert!(text.contains("in hardware, kvm_amd npt=Y"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("EPT ") && l.contains("AMD")), "{text}");
        assert!(r.scenario_host_yaml().contains("cpu: { ept: true, vpid: true, flexpriority: true }"));
        put(dir.path(), "/sys/module/kvm_amd/parameters/npt", b"0\n");
        assert!(inspect_at(dir.path()).scenario_host_yaml().contains("cpu: { ept: false,"));
    }

    #[test]
    fn an_empty_root_leaves_every_field_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = inspect_at(dir.path());
        let c = &r.cpu;
        assert!(c.vendor.is_none() && c.model_name.is_none() && c.count.is_none());
        for flag in [c.vmx, c.svm, c.hypervisor, c.ept, c.vpid, c.flexpriority, c.npt, c.pdpe1gb] {
            assert_eq!(flag, None);
        }
        assert_eq!(r.kvm.dev_kvm, None);
        assert_eq!(r.kvm.modules, None);
        assert_eq!(r.kvm.kvm_intel, KvmIntel { loaded: None, ept: None, vpid: None, flexpriority: None });
        assert_eq!(r.kvm.kvm_amd, KvmAmd { loaded: None, npt: None });
        assert_eq!(r.page_size_bytes, None);
        assert_eq!(r.meminfo, MemInfo::default());
        assert_eq!(r.hugepage_pools, None);
        assert_eq!(r.hugetlbfs_mounts, None);
        assert_eq!(r.thp, ThpReport { enabled: None, defrag: None });
        let k = &r.ksm;
        for v in [
            k.run,
            k.pages_to_scan,
            k.sleep_millisecs,
            k.use_zero_pages,
            k.max_page_sharing,
            k.merge_across_nodes,
            k.pages_shared,
            k.pages_sharing,
            k.pages_unshared,
            k.pages_volatile,
            k.full_scans,
            k.ksm_zero_pages,
        ] {
            assert_eq!(v, None);
        }
        assert_eq!((k.general_profit_bytes, &k.advisor_mode), (None, &None));
        assert_eq!(r.swaps, None);
        let sources: Vec<&str> = r.unavailable.iter().map(|u| u.source.as_str()).collect();
        for s in [
            "/proc/cpuinfo",
            "/dev",
            "/sys/module",
            "/proc/self/auxv",
            "/proc/meminfo",
            "/sys/kernel/mm/hugepages",
            "/proc/mounts",
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "/sys/kernel/mm/transparent_hugepage/defrag",
            "/sys/kernel/mm/ksm",
            "/proc/swaps",
        ] {
            assert!(sources.contains(&s), "{s} not listed as unavailable: {sources:?}");
        }
        assert!(r.unavailable.iter().all(|u| u.reason.contains("not found")), "{:?}", r.unavailable);
        let text = r.render_text();
        assert!(text.contains("unavailable (") || text.contains("unavailable —"), "{text}");
        assert!(text.contains("/proc/meminfo: not found"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("EPT")), "{text}");
        let yaml = r.scenario_host_yaml();
        assert!(yaml.starts_with("host:\n"), "{yaml}");
        assert!(!yaml.lines().any(|l| l.trim_start().starts_with("ram:")), "{yaml}");
        // The JSON form has every key, with nulls.
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["meminfo"]["mem_total_bytes"], serde_json::Value::Null);
        assert_eq!(json["swaps"], serde_json::Value::Null);
    }

    #[test]
    fn garbage_in_every_file_never_panics() {
        let garbage: [&[u8]; 6] = [
            b"",
            b"\xff\xfe\x00garbage\n",
            b"::::\n:\n[\n]\n[]\n",
            b"99999999999999999999999999 kB\n",
            b"MemTotal: -5 kB\nHugePages_Total: x\nflags\nprocessor\n",
            b"Filename Type Size Used Priority\n/dev/sda1 partition 1 2\n\\\\\\0 a b c d\n",
        ];
        for g in garbage {
            let dir = intel_host();
            let root = dir.path();
            for f in [
                "/proc/cpuinfo",
                "/proc/meminfo",
                "/proc/mounts",
                "/proc/swaps",
                "/proc/self/auxv",
                "/sys/module/kvm_intel/parameters/ept",
                "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
                "/sys/kernel/mm/transparent_hugepage/enabled",
                "/sys/kernel/mm/ksm/run",
                "/sys/kernel/mm/ksm/pages_to_scan",
                "/sys/kernel/mm/ksm/general_profit",
                "/sys/kernel/mm/ksm/advisor_mode",
            ] {
                put(root, f, g);
            }
            let r = inspect_at(root);
            let _ = r.render_text();
            let _ = r.scenario_host_yaml();
            let _ = serde_json::to_string(&r).expect("json");
            assert!(!r.unavailable.is_empty());
        }
    }

    #[test]
    fn scenario_section_loads_and_matches_the_host() {
        let dir = intel_host();
        let r = inspect_at(dir.path());
        let yaml = r.scenario_host_yaml();
        assert!(yaml.starts_with("host:\n"), "{yaml}");
        for needle in [
            "reserved_host_memory_mb default is 512 MB",
            "/proc/meminfo MemTotal",
            "hugepages-2048kB/nr_hugepages",
            "/proc/swaps: /dev/zram0; /dev/zram0 is zram",
        ] {
            assert!(yaml.contains(needle), "{needle:?} missing from:\n{yaml}");
        }
        let text =
            format!("{yaml}guests:\n  - {{ name: a, count: 1, memory: 1G, workload: {{ working_set: 512M }} }}\n");
        let loaded = crate::scenario::load_str(&text, "host.yaml", "host", &[])
            .unwrap_or_else(|e| panic!("the section does not load: {e}\n{text}"));
        let h = &loaded.scenario.host;
        assert_eq!(h.ram.bytes(), 65_755_772 * 1024);
        // 5% of 62.7 GiB is 3.14 GiB, rounded up to 256 MiB: 3.25 GiB.
        assert_eq!(h.reserved.bytes(), 3 * GIB + 256 * MIB);
        assert_eq!((h.hugepages.size.bytes(), h.hugepages.count), (2 << 20, 512));
        assert_eq!(h.thp, crate::scenario::ThpMode::Madvise);
        let swap = h.swap.as_ref().expect("swap");
        assert_eq!((swap.size.bytes(), swap.label()), (8_388_604 * 1024, "zram".to_string()));
        assert_eq!(
            (h.ksm.run, h.ksm.pages_to_scan, h.ksm.sleep_millisecs, h.ksm.use_zero_pages, h.ksm.max_page_sharing),
            (true, 100, 20, false, 256)
        );
        assert_eq!((h.cpu.ept, h.cpu.vpid, h.cpu.flexpriority), (true, true, true));
    }

    #[test]
    fn no_swap_is_a_comment_and_not_a_key() {
        let dir = intel_host();
        put(dir.path(), "/proc/swaps", b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
        let r = inspect_at(dir.path());
        assert_eq!(r.swaps, Some(vec![]));
        let yaml = r.scenario_host_yaml();
        assert!(yaml.contains("# no swap on this host"), "{yaml}");
        assert!(!yaml.contains("swap:"), "{yaml}");
        assert!(r.render_text().contains("no swap: overcommit beyond RAM ends in the OOM killer"));
    }

    #[test]
    fn reserved_is_at_least_1g_and_leaves_room() {
        assert_eq!(suggest_reserved(8 * GIB, 0).0, GIB);
        assert_eq!(suggest_reserved(64 * GIB, 0).0, 3 * GIB + 256 * MIB);
        assert_eq!(suggest_reserved(1536 * MIB, 0).0, 768 * MIB);
        assert_eq!(suggest_reserved(16 * GIB, 15 * GIB + 512 * MIB).0, 512 * MIB);
    }

    #[test]
    fn small_parsers() {
        assert_eq!(selected("always [madvise] never"), Some("madvise"));
        assert_eq!(selected("[always] madvise never\n"), Some("always"));
        assert_eq!(selected("always madvise never"), None);
        assert_eq!(selected("[]"), None);
        assert_eq!(unescape_octal("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_octal("tail\\04"), "tail\\04");
        assert_eq!(unescape_octal("\\"), "\\");
        assert_eq!(unescape_octal("\\777x"), "\\777x");
        assert_eq!(size_arg(GIB), "1G");
        assert_eq!(size_arg(2 * MIB), "2M");
    }
}
