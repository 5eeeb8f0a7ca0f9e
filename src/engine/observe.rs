//! What a run tells the outside world while it runs (samples and events,
//! through a [`Sink`]) and when it ends (a [`Summary`]). The engine does no
//! I/O: report writers implement [`Sink`].

use serde::Serialize;

/// Receives the run's time series and events as they happen.
pub trait Sink {
    fn sample(&mut self, sample: &Sample);
    fn event(&mut self, event: &Event);
    /// Called now and then with the simulated time reached, for progress
    /// bars.
    fn progress(&mut self, _now_ns: u64, _end_ns: u64) {}
    /// Asked after events have reached the sink: true ends the run there (a
    /// planner that has seen what it needed, such as an OOM kill). The
    /// summary says when.
    fn stop(&mut self) -> bool {
        false
    }
}

/// A sink that keeps everything in memory.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    pub samples: Vec<Sample>,
    pub events: Vec<Event>,
}

impl Sink for Recorder {
    fn sample(&mut self, sample: &Sample) {
        self.samples.push(sample.clone());
    }
    fn event(&mut self, event: &Event) {
        self.events.push(event.clone());
    }
}

/// A sink that drops everything (benchmarks, planners).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl Sink for Discard {
    fn sample(&mut self, _: &Sample) {}
    fn event(&mut self, _: &Event) {}
}

/// Host and guest state at one instant. Sizes in bytes (scaled back up in
/// sampled mode); counters are totals since the start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub t_ns: u64,
    pub host: HostSample,
    pub guests: Vec<GuestSample>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostSample {
    /// Ordinary memory (usable RAM minus the hugetlb pool).
    pub frames_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    /// Guest pages resident in ordinary memory (4 KiB and THP).
    pub guest_resident_bytes: u64,
    pub swap_used_bytes: u64,
    /// Of it, slots that resident pages kept from their swap-in
    /// (`SwapCached` in /proc/meminfo): those pages are in RAM and swap.
    pub swap_cached_bytes: u64,
    /// RAM holding zram's compressed pages.
    pub zram_bytes: u64,
    /// RAM holding KSM pages (one frame per KSM page in RAM).
    pub ksm_bytes: u64,
    /// KSM pages in swap (one slot each), and the sharers' entries of
    /// them (counted in the guests' `swapped_bytes`).
    pub ksm_swap_slots_bytes: u64,
    pub ksm_swap_entries_bytes: u64,
    /// KSM counters, scaled to 4 KiB pages.
    pub ksm_pages_shared: u64,
    pub ksm_pages_sharing: u64,
    pub ksm_zero_pages: u64,
    pub ksm_full_scans: u64,
    pub ksm_cow_breaks: u64,
    pub pool_bytes: u64,
    pub pool_used_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuestSample {
    /// Memory the guest has mapped: its own frames and pages merged by KSM.
    pub resident_bytes: u64,
    pub huge_bytes: u64,
    /// Of `resident_bytes`, pages mapped to KSM pages or the zero page.
    pub shared_bytes: u64,
    /// Memory the balloon holds.
    pub balloon_bytes: u64,
    /// Guest-side major faults so far (pages in the guest's swap).
    pub guest_swap_major_faults: u64,
    pub swapped_bytes: u64,
    pub untouched_bytes: u64,
    pub touches: u64,
    pub minor_faults: u64,
    pub major_faults: u64,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub t_ns: u64,
    pub kind: EventKind,
    pub guest: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    GuestStarted,
    FailedToStart,
    PhaseChange,
    SwapFull,
    OomKill,
    /// Many merged pages written at once: copy-on-write breaks that need
    /// new memory.
    CowStorm,
    /// A tuner (ksmtuned, MoM, the advisor) changed KSM's knobs.
    KsmChange,
    /// A balloon policy inflated or deflated a guest's balloon.
    Balloon,
    /// The balloon left a guest less memory than its working set and no
    /// swap for the rest: the guest killed a process.
    GuestOom,
    /// A guest's memory cgroup (libvirt `<memtune>`) reached
    /// `memory.max` with nothing left to reclaim: the OOM killer ended QEMU
    /// inside the cgroup.
    MemcgOom,
    /// Free page reporting gave the host pages the guest had freed.
    FreePageReport,
    RunEnd,
}

impl EventKind {
    pub fn label(self) -> &'static str {
        match self {
            EventKind::GuestStarted => "guest_started",
            EventKind::FailedToStart => "failed_to_start",
            EventKind::PhaseChange => "phase_change",
            EventKind::SwapFull => "swap_full",
            EventKind::OomKill => "oom_kill",
            EventKind::CowStorm => "cow_storm",
            EventKind::KsmChange => "ksm_change",
            EventKind::Balloon => "balloon",
            EventKind::GuestOom => "guest_oom",
            EventKind::MemcgOom => "memcg_oom",
            EventKind::FreePageReport => "free_page_report",
            EventKind::RunEnd => "run_end",
        }
    }
}

/// The whole run in numbers: what `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub duration_s: f64,
    /// Latency percentiles, fault ratios and slowdowns count from here
    /// (the scenario's `warmup`); counters are totals over the run.
    pub warmup_s: f64,
    /// Share of pages simulated (1 = page-exact; below 1, spatial sampling
    /// and counts scaled by its inverse).
    pub sample_rate: f64,
    /// How the touches were played: `touches` (one by one) or `events`.
    pub mode: &'static str,
    /// The calibration file whose costs the run used (`null`: the built-in
    /// defaults, each with its source in `latency`).
    pub calibration: Option<String>,
    /// What of the scenario this run did not play.
    pub notes: Vec<String>,
    /// When the sink ended the run early (a planner), the simulated time
    /// reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at_s: Option<f64>,
    pub host: HostSummary,
    pub guests: Vec<GuestSummary>,
    /// Each guest group's latency distribution (all its guests' touches),
    /// for plots; not in `summary.json`.
    #[serde(skip)]
    pub latency_cdf: Vec<GroupCdf>,
}

/// A latency distribution as (nanoseconds, share of touches at or below)
/// points, rising in both.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupCdf {
    pub group: String,
    pub points: Vec<(u64, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostSummary {
    pub ram_bytes: u64,
    pub usable_bytes: u64,
    pub configured_bytes: u64,
    pub overcommit_ratio: f64,
    pub hugepages_pool_bytes: u64,
    pub peak_used_bytes: u64,
    pub min_free_bytes: u64,
    pub swap_size_bytes: u64,
    pub swap_used_peak_bytes: u64,
    /// Guests the host's OOM killer ended.
    pub oom_kills: u64,
    /// Guests their own memory cgroup's OOM killer ended (memtune).
    pub memcg_oom_kills: u64,
    pub guests_running: u64,
    pub guests_failed_to_start: u64,
    /// KSM's counters at the end of the run (absent when KSM never ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ksm: Option<KsmSummary>,
    pub vmstat: Vmstat,
    /// zswap's pool and counters, when the host runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zswap: Option<ZswapSummary>,
    /// khugepaged's counters, when it ran (THP on, THP guests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub khugepaged: Option<KhugepagedSummary>,
}

/// khugepaged over the run, with the names of its files under
/// `/sys/kernel/mm/transparent_hugepage/khugepaged/`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KhugepagedSummary {
    /// Passes over every THP guest's memory.
    pub full_scans: u64,
    /// Ranges collapsed into huge pages (each also a `thp_collapse_alloc`).
    pub pages_collapsed: u64,
}

/// zswap over the run, with the kernel's names (`/proc/vmstat` and
/// `/sys/kernel/debug/zswap/`): `zswpout` pages stored in the pool,
/// `zswpin` loaded from it, `zswpwb` written back to the device (also in
/// `pswpout`), zero-filled pages kept as a bit (`swpout_zero`,
/// `swpin_zero`), and the pool now and at its largest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZswapSummary {
    pub zswpout: u64,
    pub zswpin: u64,
    pub zswpwb: u64,
    pub swpout_zero: u64,
    pub swpin_zero: u64,
    pub pool_limit_hit: u64,
    pub rejected_pool_full: u64,
    pub stored_pages: u64,
    pub stored_incompressible_pages: u64,
    pub pool_total_size_bytes: u64,
    pub pool_peak_bytes: u64,
}

/// Reclaim over the run, with the kernel's /proc/vmstat names: pages are 4
/// KiB pages and counts are scaled up in sampled mode (one simulated direct
/// reclaim stands for 1/R real ones). `reclaim_throttled` has no vmstat
/// counter: it is how often reclaim stopped for writeback (the
/// mm_vmscan_throttled tracepoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Vmstat {
    /// kswapd's balancing runs (a wake-up, or going on after a throttle).
    pub pageoutrun: u64,
    /// Pages moved from the active lists to the inactive ones (the
    /// reclaim's front hand), their accessed bits cleared.
    pub pgrefill: u64,
    pub pgscan_kswapd: u64,
    pub pgsteal_kswapd: u64,
    /// Allocations that reclaimed on the faulting guest's time.
    pub allocstall: u64,
    pub pgscan_direct: u64,
    pub pgsteal_direct: u64,
    /// Every anonymous page scanned and taken, by kswapd, direct reclaim
    /// and the memory cgroups' own reclaim alike: shrink_inactive_list
    /// counts PGSCAN_ANON and PGSTEAL_ANON for any reclaim, while
    /// pgscan/pgsteal_kswapd and _direct leave a cgroup's reclaim out
    /// (`if (!cgroup_reclaim(sc))`, mm/vmscan.c). All the model's pages are
    /// anonymous.
    pub pgscan_anon: u64,
    pub pgsteal_anon: u64,
    pub reclaim_throttled: u64,
    pub pswpin: u64,
    pub pswpout: u64,
    /// Swap-ins of a swapped-out KSM page that copied the page another
    /// sharer had read (`ksm_swpin_copy`; see `model::ksmpage`).
    pub ksm_swpin_copy: u64,
    pub thp_fault_alloc: u64,
    /// THP faults that found too little free memory and took a 4 KiB page.
    pub thp_fault_fallback: u64,
    /// THPs split into 4 KiB pages (by reclaim, ksmd or a balloon), and the
    /// PMD mappings split with them (every THP the model splits is mapped
    /// by a PMD, so the two move together, as they do in the kernel's
    /// split_huge_page of a mapped THP).
    pub thp_split_page: u64,
    pub thp_split_pmd: u64,
    /// Huge pages khugepaged allocated to collapse a range into, and those
    /// it could not allocate.
    pub thp_collapse_alloc: u64,
    pub thp_collapse_alloc_failed: u64,
}

/// KSM at the end of the run, with the kernel's counter names (pages are 4
/// KiB pages; scaled up in sampled mode).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KsmSummary {
    pub pages_shared: u64,
    pub pages_sharing: u64,
    pub pages_unshared: u64,
    pub pages_volatile: u64,
    pub ksm_zero_pages: u64,
    pub full_scans: u64,
    pub pages_scanned: u64,
    /// Pages smart scan passed over (`pages_skipped`).
    pub pages_skipped: u64,
    pub general_profit_bytes: i64,
    /// Memory saved: (pages_sharing + ksm_zero_pages) × 4 KiB, now and at
    /// its peak.
    pub saved_bytes: u64,
    pub saved_peak_bytes: u64,
    /// ksmd's CPU time as a share of one core over the run.
    pub ksmd_cpu_percent: f64,
    /// Copy-on-write breaks of merged pages.
    pub cow_breaks: u64,
    /// Who set the knobs, and the knobs at the end.
    /// `host.ksm.policy`: static, ksmtuned, mom or advisor.
    pub policy: &'static str,
    pub run: bool,
    pub pages_to_scan: u32,
    pub sleep_millisecs: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuestSummary {
    pub name: String,
    pub group: String,
    /// Never `Starting`: a guest still booting at the end counts as running.
    pub state: crate::model::Status,
    pub memory_bytes: u64,
    pub backing: String,
    pub resident_peak_bytes: u64,
    pub swapped_peak_bytes: u64,
    pub resident_end_bytes: u64,
    pub swapped_end_bytes: u64,
    pub touches: u64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub thp_faults: u64,
    pub hugetlb_faults: u64,
    /// Most memory mapped to KSM pages or the zero page at once.
    pub shared_peak_bytes: u64,
    /// Writes that broke a KSM mapping (each a copy into a new page).
    pub cow_breaks: u64,
    /// The most memory the balloon took at once.
    pub balloon_peak_bytes: u64,
    /// Touches that found their page in the guest's own swap (the balloon
    /// took its frame): the guest's major faults, apart from the host's.
    pub guest_swap_major_faults: u64,
    /// Times the balloon left the guest too little and it killed a process.
    pub guest_oom_events: u64,
    /// The balloon at the end, and the memory the guest was to keep then
    /// (its current memory; `null` when nothing ever set a target).
    pub balloon_end_bytes: u64,
    pub current_memory_bytes: Option<u64>,
    /// Free memory the guest reported to the host (free page reporting).
    pub free_page_reported_bytes: u64,
    /// Its memory is locked (never swapped).
    pub locked: bool,
    /// Its memory cgroup (libvirt `<memtune>`), when it has limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcg: Option<MemcgSummary>,
    /// Major faults per touch.
    pub fault_ratio: f64,
    pub tlb_miss_ratio: f64,
    pub latency_ns: Percentiles,
    /// (compute + stall) / compute.
    pub slowdown: f64,
    /// Seconds of guest time lost, by cause.
    pub stall_s: StallBreakdown,
    /// How late the guest started running (prealloc).
    pub boot_delay_ns: u64,
    pub started_at_ns: Option<u64>,
    pub ended_at_ns: Option<u64>,
}

/// A guest's memory cgroup over the run, with cgroup v2's names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemcgSummary {
    /// `memory.max`, `memory.high`, `memory.swap.max` (libvirt's
    /// hard_limit, soft_limit, swap_hard_limit); `null`: no limit.
    pub max_bytes: Option<u64>,
    pub high_bytes: Option<u64>,
    pub swap_max_bytes: Option<u64>,
    /// QEMU's own memory the cgroup is charged beside guest RAM.
    pub overhead_bytes: u64,
    /// `memory.peak`.
    pub peak_bytes: u64,
    /// `memory.events`.
    pub events: MemcgEvents,
    /// Pages the cgroup's own reclaim scanned on its inactive list, took,
    /// and moved from its active list (`memory.stat`'s pgscan, pgsteal and
    /// pgrefill).
    pub pgscan: u64,
    pub pgsteal: u64,
    pub pgrefill: u64,
}

/// `memory.events`: `high` counts charges that found the cgroup over
/// memory.high, `max` those that reached memory.max, `oom` the times it
/// ran out with nothing to reclaim, `oom_kill` the processes killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct MemcgEvents {
    pub high: u64,
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Percentiles {
    pub mean: f64,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub p999: u64,
}

/// Where a guest's stall time went, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct StallBreakdown {
    /// First touches: 4 KiB, THP and hugetlb page faults.
    pub first_touch_faults_s: f64,
    /// Swap-ins, including the wait for the device.
    pub major_faults_s: f64,
    /// Swap-ins from the guest's own swap (ballooned working set).
    pub guest_swap_s: f64,
    /// Copy-on-write breaks of KSM-merged pages.
    pub cow_breaks_s: f64,
    /// Direct reclaim done on the guest's time.
    pub direct_reclaim_s: f64,
    /// TLB-miss page walks (2-D under EPT).
    pub page_walks_s: f64,
    /// VM exits: shadow page-table traps, TPR exits, TLB refills after
    /// flushes without VPID.
    pub vm_exits_s: f64,
    /// The guest's memory cgroup: reclaiming its own pages at memory.max
    /// or memory.high, and the throttling over memory.high.
    pub memcg_s: f64,
}

impl StallBreakdown {
    /// Rounded to the microsecond, so the JSON stays readable.
    pub fn rounded(&self) -> StallBreakdown {
        let r = |v: f64| (v * 1e6).round() / 1e6;
        StallBreakdown {
            first_touch_faults_s: r(self.first_touch_faults_s),
            major_faults_s: r(self.major_faults_s),
            guest_swap_s: r(self.guest_swap_s),
            cow_breaks_s: r(self.cow_breaks_s),
            direct_reclaim_s: r(self.direct_reclaim_s),
            page_walks_s: r(self.page_walks_s),
            vm_exits_s: r(self.vm_exits_s),
            memcg_s: r(self.memcg_s),
        }
    }
}
