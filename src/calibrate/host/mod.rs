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

mod read;
mod scenario;
mod text;

use read::*;
#[cfg(test)]
use scenario::*;
use text::*;

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
    /// Smart scan (Linux 6.7+; `None` on older kernels, which have none).
    pub smart_scan: Option<u64>,
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
            ("smart_scan", "1"),
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
                smart_scan: Some(1),
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
        // The fixture's kernel scans smartly (6.7+), so does the scenario.
        assert!(h.ksm.smart_scan);
        assert_eq!((h.cpu.ept, h.cpu.vpid, h.cpu.flexpriority), (true, true, true));
    }

    #[test]
    fn a_kernel_without_smart_scan_gives_a_scenario_without_it() {
        // Before Linux 6.7 /sys/kernel/mm/ksm/smart_scan does not exist, and
        // ksmd looks at every page every full scan.
        let dir = intel_host();
        std::fs::remove_file(dir.path().join("sys/kernel/mm/ksm/smart_scan")).expect("rm");
        let yaml = inspect_at(dir.path()).scenario_host_yaml();
        assert!(yaml.contains("smart_scan: false"), "{yaml}");
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
