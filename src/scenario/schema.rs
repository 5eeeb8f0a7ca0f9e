//! The validated scenario: what a run needs, with every unit resolved and
//! every default filled in. Nothing past `scenario::load` re-checks input.

use serde::Serialize;

pub use crate::latency::CpuFeatures;
pub use crate::model::swap::IoScheduler;
pub use crate::model::workload::Pattern;
pub use crate::policy::resolve::{Balloon, BalloonChoice, Swap, TunerChoice};

use crate::units::{ByteSize, Fraction, Rate, Span};

/// A whole scenario, ready for the engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: u64,
    /// Simulated time to play.
    pub duration: Span,
    /// Time before latency, fault ratio and slowdown are measured (a
    /// benchmark's ramp-up, as fio's `ramp_time`): guests still filling
    /// their memory touch fast, and would otherwise outweigh a steady state
    /// in which they crawl.
    pub warmup: Span,
    /// How often the engine samples host and guest state.
    pub sample_every: Span,
    pub host: Host,
    pub guests: Vec<GuestGroup>,
    /// A calibration file whose measured costs replace the defaults.
    pub calibration: Option<String>,
    /// What `overcommit sweep` varies when the command line does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepSection>,
    /// Named sets of overrides a sweep can vary together
    /// (`--vary variant=a,b`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
}

/// One entry of `variants:`: a name and the values it sets, as `--set`
/// would.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    pub name: String,
    pub set: Vec<super::Override>,
}

/// A scenario's `sweep:` section: the paths to vary, the seeds per
/// combination and the objectives to draw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepSection {
    pub vary: Vec<super::vary::Vary>,
    pub seeds: Option<u32>,
    pub slo: Vec<super::slo::Slo>,
}

impl Scenario {
    /// Guest memory the scenario configures, summed over every instance.
    pub fn configured_bytes(&self) -> u64 {
        self.guests.iter().map(|g| g.memory.bytes() * u64::from(g.count)).sum()
    }

    /// Configured guest memory over usable host RAM (the overcommit ratio as
    /// oVirt and OpenStack state it).
    pub fn overcommit_ratio(&self) -> f64 {
        let usable = self.host.usable().bytes();
        if usable == 0 {
            return f64::INFINITY;
        }
        self.configured_bytes() as f64 / usable as f64
    }

    /// Total guest instances.
    pub fn instance_count(&self) -> u64 {
        self.guests.iter().map(|g| u64::from(g.count)).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    pub ram: ByteSize,
    /// Host OS and QEMU overheads: never available to guest memory.
    pub reserved: ByteSize,
    /// The pool of the host's default huge page size (`vm.nr_hugepages`,
    /// `Hugepagesize` in /proc/meminfo).
    pub hugepages: HugepagePool,
    /// The pool of the other x86-64 huge page size, when the host reserves
    /// one too (`/sys/kernel/mm/hugepages/hugepages-*/nr_hugepages`):
    /// a guest takes from the pool of its page size only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_hugepages: Option<HugepagePool>,
    pub thp: ThpMode,
    /// khugepaged's knobs (it runs unless `thp` is `never`).
    pub khugepaged: crate::policy::khugepaged::Knobs,
    pub swap: Option<Swap>,
    /// Whose LRU lists host reclaim walks.
    #[serde(skip_serializing_if = "crate::policy::reclaim::Knobs::is_default")]
    pub reclaim: crate::policy::reclaim::Knobs,
    pub ksm: Ksm,
    pub cpu: CpuFeatures,
    pub balloon: Balloon,
}

impl Host {
    /// RAM minus `reserved`: what guests, the hugetlb pool and the page
    /// cache share.
    pub fn usable(&self) -> ByteSize {
        ByteSize(self.ram.bytes().saturating_sub(self.reserved.bytes()))
    }

    /// Usable RAM left for ordinary (non-hugetlb) memory once the pools
    /// are carved out at boot.
    pub fn usable_for_4k(&self) -> ByteSize {
        ByteSize(self.usable().bytes().saturating_sub(self.pool_bytes()))
    }

    /// Every hugetlb pool: the default size's, then the other's.
    pub fn hugepage_pools(&self) -> impl Iterator<Item = &HugepagePool> {
        std::iter::once(&self.hugepages).chain(self.other_hugepages.as_ref())
    }

    /// The pool of huge pages of `size`, if the host has one.
    pub fn pool(&self, size: HugePageSize) -> Option<&HugepagePool> {
        self.hugepage_pools().find(|p| p.size == size)
    }

    /// RAM held by the hugetlb pools.
    pub fn pool_bytes(&self) -> u64 {
        self.hugepage_pools().map(|p| p.bytes()).sum()
    }
}

/// The hugetlb pool reserved at boot (`vm.nr_hugepages` for 2 MiB pages,
/// `/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages` for 1 GiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HugepagePool {
    pub size: HugePageSize,
    /// `nr_hugepages`.
    pub count: u64,
}

impl HugepagePool {
    pub fn bytes(&self) -> u64 {
        self.size.bytes() * self.count
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum HugePageSize {
    #[serde(rename = "2M")]
    Size2M,
    #[serde(rename = "1G")]
    Size1G,
}

impl HugePageSize {
    pub fn bytes(self) -> u64 {
        match self {
            HugePageSize::Size2M => 2 << 20,
            HugePageSize::Size1G => 1 << 30,
        }
    }
    pub fn from_bytes(b: u64) -> Option<Self> {
        match b {
            0x20_0000 => Some(HugePageSize::Size2M),
            0x4000_0000 => Some(HugePageSize::Size1G),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            HugePageSize::Size2M => "2M",
            HugePageSize::Size1G => "1G",
        }
    }
}

/// `/sys/kernel/mm/transparent_hugepage/enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThpMode {
    Always,
    /// QEMU marks guest RAM with MADV_HUGEPAGE, so guests get THP.
    Madvise,
    Never,
}

/// How QEMU runs a guest's CPUs (`-accel kvm|tcg`; libvirt `<domain
/// type='kvm'>` or `type='qemu'`). The model tells them apart where the
/// host's kernel does: KVM maps a page into the guest writable on a read
/// fault too and marks it dirty then (Linux 6.13 on), so a page swapped
/// in is dirty at once; under TCG the QEMU process reads and writes guest
/// RAM itself, and a swapped-in page stays clean until it is written (see
/// `model::swapcache`). TCG's own costs (its software TLB, translation)
/// are not modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    #[default]
    Kvm,
    Tcg,
}

/// KSM knobs as in `/sys/kernel/mm/ksm/`, and what drives them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ksm {
    pub run: bool,
    pub pages_to_scan: u32,
    pub sleep_millisecs: u32,
    pub use_zero_pages: bool,
    pub max_page_sharing: u32,
    /// ksmd skips pages that did not merge lately (`smart_scan`, Linux
    /// 6.7+; on by default).
    pub smart_scan: bool,
    /// What drives the knobs: `policy:` and its tuner's knobs.
    #[serde(flatten)]
    pub tuner: TunerChoice,
}

/// One `guests:` entry: `count` identical instances named `name-0..`
/// (or by `names`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuestGroup {
    pub name: String,
    pub count: u32,
    /// The instances' own names (libvirt domain names, from `import`), one
    /// per instance; empty: `name-0`, `name-1`, ...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Guest RAM: `-m` plus plugged DIMMs and virtio-mem (libvirt
    /// `<memory>`), the sum of `backends`.
    pub memory: ByteSize,
    /// What backs each part of guest RAM (one entry per QEMU memory
    /// backend: the whole of `-m`, a NUMA cell, a DIMM). Always at least
    /// one; the group-level `hugepages`, `prealloc`, `share` and `ksm`
    /// say what all of them share.
    pub backends: Vec<MemBackend>,
    /// The balloon's target at boot (libvirt `<currentMemory>`): the
    /// balloon holds `memory − current_memory` from the start. `None`:
    /// all of `memory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_memory: Option<ByteSize>,
    /// Memory hotplug room (`-m maxmem=,slots=`, libvirt `<maxMemory>`):
    /// nothing the host spends until memory is plugged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxmem: Option<ByteSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<u32>,
    /// Guest memory is mlock()ed (libvirt `<locked/>`, `-overcommit
    /// mem-lock=on`): never swapped.
    pub locked: bool,
    /// How QEMU runs the guest (`-accel`, libvirt's `<domain type=>`).
    pub accel: Accel,
    /// The balloon device reports the guest's free pages
    /// (`free-page-reporting=on`, libvirt `freePageReporting='on'`): the
    /// host gets memory the guest frees back.
    pub free_page_reporting: bool,
    /// The guest's memory cgroup (libvirt `<memtune>`).
    pub memtune: Memtune,
    /// Virtual CPUs (libvirt `<vcpu>`): QEMU's own memory, which its
    /// cgroup is charged with, grows with them.
    pub vcpus: u32,
    /// What was seen of each instance on a running host (`import live`):
    /// instances start from it (warm start). Empty: from an empty host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub observed: Vec<Observed>,
    /// Backed by hugetlbfs (`-mem-path` on a hugetlbfs mount, or
    /// `memory-backend-file` with `hugetlb=on`): taken from the pool.
    pub hugepages: bool,
    /// The huge page size the guest asks for (`hugetlbsize=`, or the
    /// mount's page size); `None` takes the host pool's size.
    pub hugepage_size: Option<HugePageSize>,
    /// All memory is taken at start (`-mem-prealloc`, `prealloc=on`).
    pub prealloc: bool,
    /// Has a virtio-balloon device the host may inflate.
    pub balloon: bool,
    /// The guest reports balloon statistics (free memory); MoM leaves
    /// guests without them alone.
    pub balloon_stats: bool,
    /// The least memory a balloon may leave the guest (oVirt's guaranteed
    /// memory, libvirt's min_guarantee, Proxmox's `balloon`).
    pub balloon_min: ByteSize,
    /// Proxmox's weight when it splits a balloon change between guests.
    pub shares: u32,
    /// `deflate-on-oom=on`: the guest deflates 256 pages instead of killing
    /// a process when it runs out.
    pub deflate_on_oom: bool,
    /// Swap inside the guest, where its pages go when the balloon takes
    /// working-set memory.
    pub guest_swap: ByteSize,
    /// Memory is MADV_MERGEABLE (`merge=on`, libvirt without
    /// `<nosharepages/>`).
    pub ksm: bool,
    /// Shared memory backend (`share=on`): KSM never scans it.
    pub share: bool,
    /// Guests with the same image hold identical pages.
    pub image: String,
    /// The `qemu:` string the group was given, kept for reports.
    pub qemu: Option<String>,
    pub workload: Workload,
}

/// One QEMU memory backend's share of a guest's RAM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemBackend {
    pub size: ByteSize,
    /// The guest NUMA cell, when the guest has cells.
    pub node: Option<u32>,
    /// hugetlbfs pages of this size (from the host's pool of that size);
    /// `None`: ordinary memory.
    pub hugetlb: Option<HugePageSize>,
    pub prealloc: bool,
    /// `share=on`: never merged by KSM.
    pub share: bool,
    /// MADV_MERGEABLE.
    pub ksm: bool,
}

impl MemBackend {
    /// KSM may merge it: mergeable, private and not hugetlbfs
    /// (`ksm_compatible()` refuses VM_SHARED and VM_HUGETLB).
    pub fn mergeable(&self) -> bool {
        self.ksm && !self.share && self.hugetlb.is_none()
    }
}

/// A guest's memory cgroup limits as libvirt sets them on cgroup v2
/// (vircgroupv2.c): `hard_limit` is `memory.max`, `soft_limit` is
/// `memory.high`, `swap_hard_limit` is written unchanged to
/// `memory.swap.max` (so on cgroup v2 it bounds swap alone, although
/// libvirt documents it as memory plus swap).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Memtune {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hard_limit: Option<ByteSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_limit: Option<ByteSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_hard_limit: Option<ByteSize>,
}

impl Memtune {
    pub fn is_set(&self) -> bool {
        self.hard_limit.is_some() || self.soft_limit.is_some() || self.swap_hard_limit.is_some()
    }
}

/// One instance as `import live` saw it on a running host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observed {
    /// The instance (libvirt domain or QEMU `-name`).
    pub name: String,
    /// QEMU's resident anonymous memory (`RssAnon` in /proc/PID/status),
    /// guest RAM in the main.
    pub resident: ByteSize,
    /// Swapped out (`VmSwap`).
    pub swapped: ByteSize,
    /// Of `resident`, in transparent huge pages (`AnonHugePages`).
    pub thp: ByteSize,
    /// Pages KSM merged (`ksm_merging_pages` × 4 KiB).
    pub ksm_merged: ByteSize,
    /// The balloon's size (`memory − actual` from `virsh dommemstat`).
    pub balloon: ByteSize,
}

impl GuestGroup {
    /// How the group's memory is backed, in the words an operator uses:
    /// `hugetlbfs 2M`, `4K+THP` or `4K`.
    /// With several backends, each kind once: `hugetlbfs 1G + 4K+THP`.
    pub fn backing_label(&self, host: &Host) -> String {
        let small = if host.thp == ThpMode::Never { "4K" } else { "4K+THP" };
        let mut parts: Vec<String> = Vec::new();
        for b in &self.backends {
            let label = match b.hugetlb {
                Some(size) => format!("hugetlbfs {}", size.label()),
                None => small.to_string(),
            };
            if !parts.contains(&label) {
                parts.push(label);
            }
        }
        parts.join(" + ")
    }

    /// Bytes of hugetlbfs memory of `size` one instance takes from the
    /// pool, in whole huge pages per backend.
    pub fn pool_bytes(&self, size: HugePageSize) -> u64 {
        self.backends
            .iter()
            .filter(|b| b.hugetlb == Some(size))
            .map(|b| b.size.bytes().div_ceil(size.bytes()) * size.bytes())
            .sum()
    }

    /// Bytes of ordinary (not hugetlbfs) memory one instance has.
    pub fn ordinary_bytes(&self) -> u64 {
        self.backends.iter().filter(|b| b.hugetlb.is_none()).map(|b| b.size.bytes()).sum()
    }

    /// The name of instance `k`.
    pub fn instance_name(&self, k: u32) -> String {
        match self.names.get(k as usize) {
            Some(n) => n.clone(),
            None => format!("{}-{k}", self.name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    pub working_set: ByteSize,
    pub touch_rate: Rate,
    pub pattern: Pattern,
    pub shared: Fraction,
    pub zero: Fraction,
    /// Pages holding one pattern common to the image's guests and
    /// repeated within each (what `profile` sees as duplicates): KSM
    /// merges them all, up to `max_page_sharing` mappings a KSM page.
    pub duplicate: Fraction,
    /// Which part of each content class lies in the working set, where a
    /// warm start has used pages outside it (what `profile` measures from
    /// how each class decays as the guest writes); unset: spread evenly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_working_set: Option<InWorkingSet>,
    pub write: Fraction,
    pub pagetable_updates: Rate,
    pub vm_exits: Rate,
    pub tpr_accesses: Rate,
    /// The page size the guest's own page tables use for this memory (4 KiB
    /// unless the guest kernel backs it with THP or hugetlbfs). A TLB entry
    /// maps the smaller of the guest and host page sizes.
    pub guest_page_size: u64,
    pub phases: Vec<Phase>,
}

impl Workload {
    /// The content shares, as the model's pages take them, spread evenly
    /// (a guest that boots; see [`crate::model::page::Shares`]).
    pub fn shares(&self) -> crate::model::page::Shares {
        crate::model::page::Shares {
            shared: self.shared.get(),
            zero: self.zero.get(),
            duplicate: self.duplicate.get(),
            ..Default::default()
        }
    }
}

/// The share of each content class in the working set (`None`: the
/// working set's share of the pages in use, an even spread).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InWorkingSet {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<Fraction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zero: Option<Fraction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Fraction>,
}

/// A change to the workload at a point in simulated time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub at: Span,
    /// The balloon's new target (`virsh setmem`): the guest keeps this
    /// much.
    pub current_memory: Option<ByteSize>,
    pub working_set: Option<ByteSize>,
    pub touch_rate: Option<Rate>,
    pub pattern: Option<Pattern>,
    pub write: Option<Fraction>,
}
