//! The discrete-event engine: plays a scenario forward in integer
//! nanoseconds.
//!
//! Guests do not get an event per touch. Each live guest runs in time
//! slices: a slice draws a Poisson number of touches for its compute time,
//! plays them against the page state in one tight loop, and charges the
//! stalls (faults, swap waits, exits, page walks) to the guest's own clock,
//! so a stalled guest touches less (a closed loop). Events carry the state
//! changes: guest start, the next slice (or the resume after a swap wait
//! that outlasts a slice), workload phases, kswapd wake-ups, samples.
//!
//! One run is single-threaded and draws from one seeded
//! `Xoshiro256PlusPlus`, so the same scenario and seed give the same
//! result on any machine and with any number of threads.

mod ballooning;
mod memcg;
pub mod observe;
pub mod queue;
mod warm;

use std::collections::BTreeMap;
use std::sync::Arc;

use hdrhistogram::Histogram;
use rand::{RngExt, SeedableRng};
use rand_distr::{Binomial, Distribution, Poisson};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::latency::{self, Costs, Translation, TranslationInput};
use crate::model::frames::ThpAux;
use crate::model::page::{
    BALLOONED, CLASS_MASK, HUGE, MERGED, REFERENCED, RES_MASK, RESIDENT, SWAPPED, UNTOUCHED, WRITTEN, mix64,
};
use crate::model::swap::SwapDevice;
use crate::model::workload::{RegionShares, Sampler};
use crate::model::{Backing, Frames, Guest, Memory, Status, Unit, Watermarks};
use crate::policy::balloon::{self, GuestView};
use crate::policy::ksm::{self, Ksm};
use crate::policy::ksmtune::{HostView, Tuner};
use crate::policy::reclaim::Clock;
use crate::policy::{hugepages, oom};
use crate::scenario::{GuestGroup, Scenario, ThpMode};
pub use observe::*;
use queue::{EventQueue, SimTime};

/// How a run is played, beyond what the scenario says.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Share of pages simulated: 1 for page-exact, or 2^-k (k ≤ 9) for
    /// spatial sampling. `None` chooses by size.
    pub sample_rate: Option<f64>,
    /// Length of a guest's touch slice.
    pub slice_ns: u64,
    pub costs: Costs,
    /// The calibration file `costs` came from (`None`: the defaults),
    /// recorded in the summary.
    pub calibration: Option<String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig { seed: None, sample_rate: None, slice_ns: 1_000_000, costs: Costs::default(), calibration: None }
    }
}

/// Sampled mode starts above this many simulated page touches in a run
/// (a sampled run plays 10 to 20 million touches a second: under ten
/// seconds).
pub const AUTO_TOUCH_BUDGET: f64 = 1.5e8;

/// ... or above this many simulated pages (a byte of state each).
pub const AUTO_PAGE_BUDGET: f64 = (1u64 << 28) as f64;

/// The sampling rate `auto` picks: 1 (page-exact) when the run fits the
/// budgets above, else the largest power of two that does, down to 1/512
/// (so a 2 MiB region keeps a page).
pub fn auto_sample_rate(s: &Scenario) -> f64 {
    sample_rate_within(s, AUTO_TOUCH_BUDGET)
}

/// The largest power-of-two sampling rate, down to 1/512, at which a run
/// of `s` plays at most `touch_budget` simulated touches and stays within
/// [`AUTO_PAGE_BUDGET`].
pub fn sample_rate_within(s: &Scenario, touch_budget: f64) -> f64 {
    let pages: f64 = s.guests.iter().map(|g| g.memory.pages(4096) as f64 * f64::from(g.count)).sum();
    let touches: f64 = s
        .guests
        .iter()
        .map(|g| {
            let peak = g
                .workload
                .phases
                .iter()
                .filter_map(|p| p.touch_rate)
                .fold(g.workload.touch_rate.per_sec(), |a, r| a.max(r.per_sec()));
            peak * f64::from(g.count) * s.duration.as_secs_f64()
        })
        .sum();
    let mut r = 1.0;
    while (touches * r > touch_budget || pages * r > AUTO_PAGE_BUDGET) && r > 1.0 / 512.0 {
        r /= 2.0;
    }
    r
}

/// A guest's swap read when the host has no swap device to take the
/// figure from: a SATA SSD, about 100 us (the `ssd` preset's read).
const GUEST_SWAP_READ_NS: u64 = 100_000;

/// How often a moving balloon is brought up to date (the guest driver
/// itself works in 1 MiB requests, back to back).
const BALLOON_STEP_NS: u64 = 50_000_000;

/// Free page reporting waits this long after memory is freed before it
/// reports (PAGE_REPORTING_DELAY = 2 * HZ, mm/page_reporting.c).
const PAGE_REPORTING_DELAY_NS: u64 = 2_000_000_000;

/// Most empty slices a sparse guest skips in one step.
const MAX_SKIPPED_SLICES: f64 = 100.0;

/// Empty slices are skipped in runs only when a slice is empty at least
/// this often; a denser guest draws each slice.
const SKIP_ABOVE_P_EMPTY: f64 = 0.01;

/// Longest slice sampled mode stretches to. Measured: 10 ms slices cut
/// the 512 GiB benchmark from 39 s to 26 s but moved group fault ratios by
/// over 10% against page-exact runs (guests then take memory from each
/// other in 10 ms bursts), so sampled slices stay at 1 ms and sparse
/// guests skip empty slices instead.
pub const MAX_SAMPLED_SLICE_NS: u64 = 1_000_000;

/// Why a run could not be played.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("sample rate {0} must be 1 or a power of two between 1/512 and 1")]
    BadSampleRate(f64),
    #[error(transparent)]
    Past(#[from] queue::PastEvent),
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    Start(usize),
    /// The next slice of guest `.0`, valid while its generation is `.1`.
    Slice(usize, u32),
    Phase {
        group: usize,
        index: usize,
    },
    Kswapd,
    /// ksmd wakes up.
    Ksmd,
    /// ksmtuned or MoM looks at the host.
    KsmLook,
    /// The balloon policy runs.
    Balloon,
    /// Guest `.0`'s balloon moves a step toward its target (while its
    /// generation is `.1`).
    BalloonMove(usize, u32),
    /// Guest `.0` reports free pages to the host (free page reporting).
    FreeReport(usize, u32),
    Sample,
    /// The warm-up ends: measuring starts.
    Warmup,
}

/// A guest's latency histogram. Most touches record one of a few values
/// (DRAM, DRAM plus a walk), so counts are gathered per value and added in
/// one step when another value needs the slot.
struct LatencyHist {
    hist: Histogram<u64>,
    pending: [(u64, u64); 4],
}

impl Default for LatencyHist {
    fn default() -> Self {
        LatencyHist {
            hist: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds"),
            pending: [(0, 0); 4],
        }
    }
}

impl LatencyHist {
    #[inline]
    fn record_n(&mut self, value: u64, n: u64) {
        if let Some(slot) = self.pending.iter_mut().find(|(v, c)| *v == value || *c == 0) {
            *slot = (value, slot.1 + n);
            return;
        }
        // All slots hold other values: the oldest goes in now.
        let (v, c) = self.pending[0];
        let _ = self.hist.record_n(v, c);
        self.pending.rotate_left(1);
        self.pending[3] = (value, n);
    }

    fn flush(&mut self) {
        for (v, c) in std::mem::take(&mut self.pending) {
            if c > 0 {
                let _ = self.hist.record_n(v, c);
            }
        }
    }
}

/// A guest's counters at the end of the warm-up.
#[derive(Debug, Clone, Copy, Default)]
struct Baseline {
    major: u64,
    touches: f64,
    compute_ns: f64,
    stall_ns: f64,
}

/// What the engine keeps for each guest beyond its pages.
struct Runner {
    sampler: Arc<Sampler>,
    /// Share of the guest's touches that land on simulated pages.
    share: f64,
    rate: f64,
    /// Expected simulated touches in a slice, and its Poisson law (kept
    /// here: it only changes with the workload).
    lambda: f64,
    /// 1/λ (infinite when λ is 0: no touches, nothing is skipped then).
    inv_lambda: f64,
    poisson: Option<Poisson<f64>>,
    /// e^(−λ): the chance a slice holds no touch.
    p_empty: f64,
    write_threshold: u32,
    small: Translation,
    huge: Translation,
    /// Latencies of faults, each as the real faults it stands for, and of
    /// simulated hits (see [`Engine::latency_hist`]).
    hist: LatencyHist,
    hit_hist: LatencyHist,
    /// The counters when the warm-up ended (zero without one): latency,
    /// fault ratio and slowdown are measured from there.
    warm: Baseline,
    touches: u64,
    /// Real touches the simulated ones stand for: each slice's simulated
    /// touches over the share of touches its sampled pages get (SHARDS'
    /// adjustment: exact in expectation even when the sample holds more or
    /// less than R of the touches, say a Zipf head page or not).
    touches_real: f64,
    /// The next slice ends a run of skipped empty slices.
    nonempty_next: bool,
    /// Sampled mode, THP guests: for each untouched 2 MiB region, how many
    /// of the guest's (real) touches it takes until one lands on a page of
    /// the region that is not simulated; largest first (popped from the
    /// end).
    first_touches: Vec<(f64, u32)>,
    minor: u64,
    major: u64,
    /// Copy-on-write breaks of merged pages.
    cow_breaks: u64,
    /// Most simulated pages merged at once.
    shared_peak: u64,
    /// Bytes in the balloon now and at most; the working set a guest OOM
    /// left the guest; guest-side swap faults (simulated) and guest OOMs.
    balloon_bytes: u64,
    balloon_peak: u64,
    /// The balloon's target: bytes the guest is to keep (libvirt's current
    /// memory, or what a balloon policy asks); the balloon moves toward it
    /// at the driver's pace. `None`: no target yet (the guest keeps all).
    balloon_target: Option<u64>,
    /// Who set the target, for the event log; when the balloon began moving
    /// to it, from what size, and the frames it freed on the way.
    balloon_by: &'static str,
    balloon_began: (SimTime, u64, u64),
    /// A [`Ev::BalloonMove`] is scheduled.
    balloon_moving: bool,
    /// A [`Ev::FreeReport`] is scheduled.
    report_pending: bool,
    /// Free-page reporting: free pages the guest has reported so far (real
    /// bytes given back to the host).
    reported_bytes: u64,
    /// The guest's memory cgroup, when its group has memtune limits.
    memcg: Option<Memcg>,
    ws_cap: Option<u64>,
    /// The working set the guest plays now (bytes).
    ws_bytes: u64,
    guest_swap_faults: u64,
    guest_ooms: u64,
    thp_faults: u64,
    hugetlb_faults: u64,
    tlb_misses: u64,
    hits: u64,
    compute_ns: f64,
    stall_ns: f64,
    /// Where the stall went, in ns of guest time.
    stall_by: StallBreakdown,
    boot_delay: u64,
    started_at: Option<u64>,
    ended_at: Option<u64>,
}

impl Runner {
    /// Real touches a second of compute brings on pages sampling does not
    /// simulate (0 when exact).
    fn unsampled_rate(&self) -> f64 {
        (1.0 - self.share) * self.rate
    }
}

/// A guest's memory cgroup (cgroup v2, as libvirt sets it from
/// `<memtune>`), in simulated pages.
#[derive(Debug, Clone, Default)]
struct Memcg {
    /// `memory.max` and `memory.high` (`u64::MAX`: none).
    max: u64,
    high: u64,
    /// QEMU's own memory, charged beside guest RAM.
    overhead: u64,
    /// Where the cgroup's reclaim goes on from in the guest's pages.
    hand: u64,
    /// The most it held (`memory.peak`).
    peak: u64,
    /// `memory.events`: times over `high`, at `max`, out of memory, and
    /// OOM kills (simulated events, scaled in the summary where they stand
    /// for several).
    events: MemcgEvents,
    /// Reclaim of the cgroup's own pages (simulated pages).
    pgscan: u64,
    pgsteal: u64,
    /// Time the guest was throttled over `memory.high` (ns of guest time).
    throttled_ns: f64,
}

/// What reclaim and THP faults did, in simulated pages and runs; the
/// summary's [`Vmstat`] scales them.
#[derive(Debug, Default)]
struct ReclaimCounters {
    pageoutrun: u64,
    pgscan_kswapd: u64,
    pgsteal_kswapd: u64,
    kswapd_throttled: u64,
    allocstall: u64,
    pgscan_direct: u64,
    pgsteal_direct: u64,
    direct_throttled: u64,
    thp_fault_fallback: u64,
}

/// A group's workload: (group, last phase applied, working-set pages).
type WorkloadKey = (usize, Option<usize>, u64);

/// One run of one scenario.
pub struct Engine<'a> {
    scenario: &'a Scenario,
    cfg: RunConfig,
    seed: u64,
    rate: f64,
    /// How many real pages a simulated page stands for (1/R).
    scale: f64,
    mem: Memory,
    clock: Clock,
    /// Reclaim and THP counters (simulated pages; scaled in the summary).
    vm: ReclaimCounters,
    runners: Vec<Runner>,
    queue: EventQueue<Ev>,
    rng: Xoshiro256PlusPlus,
    /// A guest's slice: the configured one, stretched by 1/R in sampled mode
    /// so a slice plays more simulated touches, up to
    /// [`MAX_SAMPLED_SLICE_NS`].
    slice_ns: u64,
    kswapd_pending: bool,
    /// ksmd, when the host runs KSM; which guests it may merge.
    ksm: Option<Ksm>,
    mergeable: Vec<bool>,
    /// What sets KSM's knobs; when the current full scan began and ksmd's
    /// CPU time then (for the advisor).
    tuner: Tuner,
    scan_began: (SimTime, f64),
    /// MoM's balloon state (history), when MoM balloons.
    mom: balloon::Mom,
    /// ksmd's CPU time so far (real ns) and the most memory it saved at
    /// once (simulated pages).
    ksmd_cpu_ns: f64,
    ksm_saved_peak: u64,
    /// COW breaks and pages sharing at the last sample (for storms).
    cow_at_sample: u64,
    sharing_at_sample: u64,
    swap_full_reported: bool,
    oom_kills: u64,
    pending: Vec<Event>,
    /// Samplers by workload: every guest of a group draws from the same
    /// distribution over the same (sampled) pages.
    samplers: BTreeMap<WorkloadKey, (Arc<Sampler>, f64)>,
    /// Sampled mode, THP guests: per-region touch shares, by workload.
    region_shares: BTreeMap<WorkloadKey, Arc<RegionShares>>,
    /// Address translation costs (4 KiB, huge) by workload: guests of a
    /// group share them.
    translations: BTreeMap<WorkloadKey, (Translation, Translation)>,
}

impl<'a> Engine<'a> {
    pub fn new(scenario: &'a Scenario, cfg: RunConfig) -> Result<Engine<'a>, RunError> {
        let rate = cfg.sample_rate.unwrap_or_else(|| auto_sample_rate(scenario));
        let valid = (0..=9).any(|k| rate == 1.0 / f64::from(1u32 << k));
        if !valid {
            return Err(RunError::BadSampleRate(rate));
        }
        let seed = cfg.seed.unwrap_or(scenario.seed);
        let cfg_slice = cfg.slice_ns.max(1);
        let h = &scenario.host;
        let frames_total = (h.usable_for_4k().bytes() as f64 / 4096.0 * rate).floor() as u64;
        let mut guests = Vec::new();
        let mut runners = Vec::new();
        for (gi, group) in scenario.guests.iter().enumerate() {
            // Guests of a group share one sample of pages (so they share
            // samplers and cache lines). With KSM, guests of one image sample
            // the same addresses, so their shared pages still meet; without,
            // groups are sampled independently, so their sampling errors do
            // not line up.
            let salt = if h.ksm.run { image_salt(&group.image) } else { gi as u64 };
            let group_sample =
                if rate < 1.0 { sampled_pages(group.memory.pages(4096), rate, salt) } else { Vec::new() };
            let thp = h.thp != ThpMode::Never;
            let layout: Vec<(u64, Backing, bool)> = group
                .backends
                .iter()
                .map(|b| {
                    let backing = match b.hugetlb {
                        Some(size) => Backing::Hugetlb { page_bytes: size.bytes() },
                        None => Backing::Small { thp },
                    };
                    (b.size.pages(4096), backing, b.mergeable())
                })
                .collect();
            let memcg = group.memtune.is_set().then(|| {
                let pages = |b: Option<crate::units::ByteSize>| {
                    b.map_or(u64::MAX, |b| (b.bytes() as f64 / 4096.0 * rate).floor() as u64)
                };
                Memcg {
                    max: pages(group.memtune.hard_limit),
                    high: pages(group.memtune.soft_limit),
                    overhead: (qemu_overhead_bytes(group) as f64 / 4096.0 * rate).round() as u64,
                    ..Memcg::default()
                }
            });
            for k in 0..group.count {
                let name = group.instance_name(k);
                let real = group_sample.clone();
                let w = &group.workload;
                let mut guest = Guest::with_segments(name, gi, &layout, real, w.shares());
                guest.unevictable = group.locked;
                if let Some(limit) = group.memtune.swap_hard_limit {
                    guest.swap_max = (limit.bytes() as f64 / 4096.0 * rate).floor() as u64;
                }
                guests.push(guest);
                runners.push(Runner {
                    sampler: Arc::new(Sampler::Idle),
                    share: 0.0,
                    rate: 0.0,
                    lambda: 0.0,
                    inv_lambda: 0.0,
                    poisson: None,
                    p_empty: 1.0,
                    write_threshold: 0,
                    small: Translation {
                        miss_ratio: 0.0,
                        walk_ns: 0.0,
                        exit_stall_per_s: 0.0,
                        flush_misses_per_s: 0.0,
                    },
                    huge: Translation { miss_ratio: 0.0, walk_ns: 0.0, exit_stall_per_s: 0.0, flush_misses_per_s: 0.0 },
                    hist: LatencyHist::default(),
                    hit_hist: LatencyHist::default(),
                    warm: Baseline::default(),
                    touches: 0,
                    touches_real: 0.0,
                    nonempty_next: false,
                    first_touches: Vec::new(),
                    minor: 0,
                    major: 0,
                    cow_breaks: 0,
                    shared_peak: 0,
                    balloon_bytes: 0,
                    balloon_peak: 0,
                    balloon_target: None,
                    balloon_by: "",
                    balloon_began: (0, 0, 0),
                    balloon_moving: false,
                    report_pending: false,
                    reported_bytes: 0,
                    memcg: memcg.clone(),
                    ws_cap: None,
                    ws_bytes: 0,
                    guest_swap_faults: 0,
                    guest_ooms: 0,
                    thp_faults: 0,
                    hugetlb_faults: 0,
                    tlb_misses: 0,
                    hits: 0,
                    compute_ns: 0.0,
                    stall_ns: 0.0,
                    stall_by: StallBreakdown::default(),
                    boot_delay: 0,
                    started_at: None,
                    ended_at: None,
                });
            }
        }
        let frames = Frames::new(frames_total);
        let mem = Memory {
            watermarks: Watermarks::kernel_default(h.ram.bytes(), rate),
            min_free: frames.free(),
            frames,
            pools: h
                .hugepage_pools()
                .map(|p| crate::model::host::Pool { page_bytes: p.size.bytes(), total: p.count, free: p.count })
                .collect(),
            swap: SwapDevice::new(h.swap.as_ref(), rate),
            zram_frames: 0,
            guests,
            peak_used: 0,
        };
        let mut engine = Engine {
            scenario,
            cfg,
            seed,
            rate,
            scale: 1.0 / rate,

            mem,
            clock: Clock::default(),
            vm: ReclaimCounters::default(),
            runners,
            queue: EventQueue::default(),
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            slice_ns: ((cfg_slice as f64 / rate) as u64).min(MAX_SAMPLED_SLICE_NS.max(cfg_slice)),
            kswapd_pending: false,
            ksm: None,
            mergeable: Vec::new(),
            tuner: Tuner::Static,
            scan_began: (0, 0.0),
            mom: balloon::Mom::new(balloon::MomParams::from(&h.balloon)),
            ksmd_cpu_ns: 0.0,
            ksm_saved_peak: 0,
            cow_at_sample: 0,
            sharing_at_sample: 0,
            swap_full_reported: false,
            oom_kills: 0,
            pending: Vec::new(),
            samplers: BTreeMap::new(),
            region_shares: BTreeMap::new(),
            translations: BTreeMap::new(),
        };
        for g in 0..engine.mem.guests.len() {
            engine.apply_workload(g, None);
            engine.queue.schedule(0, Ev::Start(g))?;
        }
        for (gi, group) in scenario.guests.iter().enumerate() {
            for (index, ph) in group.workload.phases.iter().enumerate() {
                if ph.at <= scenario.duration {
                    engine.queue.schedule(ph.at.nanos(), Ev::Phase { group: gi, index })?;
                }
            }
        }
        if h.ksm.run {
            let mut images: Vec<&str> = Vec::new();
            let mut image_of = Vec::new();
            for g in &engine.mem.guests {
                let group = &scenario.guests[g.group];
                let id = images.iter().position(|i| *i == group.image).unwrap_or_else(|| {
                    images.push(&group.image);
                    images.len() - 1
                });
                image_of.push(id as u32);
                // ksm_compatible() refuses hugetlb and shared mappings; libvirt's
                // <nosharepages/> leaves the memory unmergeable. Backends
                // that may not merge are skipped page by page.
                engine.mergeable.push(g.segments.iter().any(|seg| seg.mergeable));
            }
            for (g, &m) in engine.mergeable.iter().enumerate() {
                if m {
                    let pages = engine.mem.guests[g].sim_pages();
                    engine.mem.frames.track(g as u32, pages);
                }
            }
            let mut knobs = ksm::Knobs {
                run: true,
                pages_to_scan: h.ksm.pages_to_scan,
                sleep_millisecs: h.ksm.sleep_millisecs,
                use_zero_pages: h.ksm.use_zero_pages,
                max_page_sharing: h.ksm.max_page_sharing,
            };
            engine.tuner = Tuner::new(h.ksm.policy, h.ksm.advisor_target_scan_time, h.ksm.advisor_max_cpu, &mut knobs);
            let shares = engine.mem.guests.iter().map(|g| scenario.guests[g.group].workload.shares()).collect();
            engine.ksm = Some(Ksm::new(knobs, image_of, shares));
            engine.queue.schedule(0, Ev::Ksmd)?;
            if matches!(engine.tuner, Tuner::Ksmtuned { .. } | Tuner::Mom { .. }) {
                // Both sleep an interval, then look (ksmtuned's loop; MoM's
                // policy engine).
                engine.queue.schedule(h.ksm.interval.nanos().max(1), Ev::KsmLook)?;
            }
        }
        // Guests whose pages something other than the global CLOCK frees
        // one by one (balloons, free page reporting, their cgroup's
        // reclaim) keep a page-to-slot map.
        for g in 0..engine.mem.guests.len() {
            let group = &scenario.guests[engine.mem.guests[g].group];
            let ballooned = group.balloon
                && (h.balloon.policy != crate::scenario::BalloonPolicy::None
                    || group.current_memory.is_some()
                    || group.workload.phases.iter().any(|p| p.current_memory.is_some())
                    || group.observed.iter().any(|o| o.balloon.bytes() > 0));
            if ballooned || group.free_page_reporting || group.memtune.is_set() {
                let pages = engine.mem.guests[g].sim_pages();
                engine.mem.frames.track(g as u32, pages);
            }
        }
        if h.balloon.policy != crate::scenario::BalloonPolicy::None {
            engine.queue.schedule(h.balloon.interval.nanos().max(1), Ev::Balloon)?;
        }
        if engine.mem.guests.iter().any(|g| g.thp_sampled) {
            engine.mem.frames.keep_thp_aux();
        }
        engine.queue.schedule(0, Ev::Sample)?;
        if scenario.warmup.nanos() > 0 {
            engine.queue.schedule(scenario.warmup.nanos(), Ev::Warmup)?;
        }
        Ok(engine)
    }

    pub fn sample_rate(&self) -> f64 {
        self.rate
    }

    /// Play the scenario to its end, reporting to `sink`.
    pub fn run(mut self, sink: &mut dyn Sink) -> Result<Summary, RunError> {
        let mut end = self.scenario.duration.nanos();
        let mut stopped = None;
        let mut last_sample = None;
        let mut next_progress = 0u64;
        while let Some(t) = self.queue.peek_time() {
            if t > end {
                break;
            }
            let Some((now, ev)) = self.queue.pop() else { break };
            match ev {
                Ev::Start(g) => self.start(g, now)?,
                Ev::Slice(g, gn) => {
                    if self.mem.guests[g].generation == gn && self.mem.guests[g].is_alive() {
                        self.slice(g, now)?;
                    }
                }
                Ev::Phase { group, index } => self.phase(group, index, now),
                Ev::Kswapd => {
                    let target = self.mem.watermarks.high;
                    let out = self.clock.reclaim(&mut self.mem, target, now);
                    self.vm.pageoutrun += 1;
                    self.vm.pgscan_kswapd += out.scanned_pages;
                    self.vm.pgsteal_kswapd += out.evicted;
                    self.vm.kswapd_throttled += u64::from(out.throttled_ns > 0.0);
                    self.mem.note_usage();
                    if out.throttled_ns > 0.0 && self.mem.frames.free() < target {
                        // Throttled on writeback: kswapd sleeps until the
                        // device has drained, then goes on.
                        self.queue.schedule(now + out.throttled_ns.ceil() as u64, Ev::Kswapd)?;
                    } else {
                        self.kswapd_pending = false;
                    }
                }
                Ev::Ksmd => self.ksmd(now)?,
                Ev::BalloonMove(g, gn) => {
                    if self.mem.guests[g].generation == gn {
                        self.balloon_move(g, now);
                    }
                }
                Ev::FreeReport(g, gn) => {
                    if self.mem.guests[g].generation == gn {
                        self.free_report(g, now);
                    }
                }
                Ev::Balloon => {
                    self.balloon_tick(now);
                    self.queue.schedule(now + self.scenario.host.balloon.interval.nanos().max(1), Ev::Balloon)?;
                }
                Ev::KsmLook => {
                    self.ksm_look(now);
                    self.queue.schedule(now + self.scenario.host.ksm.interval.nanos().max(1), Ev::KsmLook)?;
                }
                Ev::Warmup => {
                    for r in &mut self.runners {
                        r.hist = LatencyHist::default();
                        r.hit_hist = LatencyHist::default();
                        r.warm = Baseline {
                            major: r.major,
                            touches: r.touches_real,
                            compute_ns: r.compute_ns,
                            stall_ns: r.stall_ns,
                        };
                    }
                }
                Ev::Sample => {
                    self.check_cow_storm(now);
                    sink.sample(&self.sample(now));
                    last_sample = Some(now);
                    let next = now + self.scenario.sample_every.nanos();
                    if next <= end {
                        self.queue.schedule(next, Ev::Sample)?;
                    }
                }
            }
            self.check_swap_full(now);
            let told = !self.pending.is_empty();
            for e in self.pending.drain(..) {
                sink.event(&e);
            }
            if now >= next_progress {
                sink.progress(now, end);
                next_progress = now + end / 100 + 1;
            }
            // A sink stops the run on what it was told, so it is asked only
            // after events, not after every slice.
            if told && sink.stop() {
                stopped = Some(now);
                end = now;
                break;
            }
        }
        if last_sample != Some(end) {
            sink.sample(&self.sample(end));
        }
        sink.event(&Event { t_ns: end, kind: EventKind::RunEnd, guest: String::new(), detail: String::new() });
        sink.progress(end, end);
        for r in &mut self.runners {
            r.hist.flush();
            r.hit_hist.flush();
        }
        let mut summary = self.summary();
        summary.stopped_at_s = stopped.map(|t| t as f64 / 1e9);
        Ok(summary)
    }

    fn start(&mut self, g: usize, now: SimTime) -> Result<(), RunError> {
        let gi = self.mem.guests[g].group;
        let group = &self.scenario.guests[gi];
        let costs = self.cfg.costs;
        // Hugetlb backends reserve their whole size in huge pages when
        // QEMU maps them, each from the pool of its page size.
        let needs: Vec<(u64, u64)> = group
            .backends
            .iter()
            .filter_map(|b| b.hugetlb.map(|size| (size.bytes(), b.size.bytes().div_ceil(size.bytes()))))
            .collect();
        if !needs.is_empty()
            && let Err(short) = hugepages::reserve(&mut self.mem, g, &needs)
        {
            self.mem.guests[g].status = Status::FailedToStart;
            let detail = format!(
                "needs {} huge pages of {} MiB but the pool has {} free: QEMU cannot map its memory",
                short.needed,
                short.page_bytes >> 20,
                short.free
            );
            self.push_event(now, EventKind::FailedToStart, g, detail);
            return Ok(());
        }
        // -mem-prealloc / prealloc=on: QEMU touches every page of the
        // backend before the guest runs; with THP the kernel faults 2 MiB
        // at a time, hugetlbfs a whole huge page.
        let mut t = 0f64;
        for (si, b) in group.backends.iter().enumerate() {
            if !b.prealloc {
                continue;
            }
            let seg = self.mem.guests[g].segments[si].clone();
            match seg.backing {
                Backing::Hugetlb { page_bytes } => {
                    let first = self.mem.guests[g].region_of(seg.sim.start);
                    let last =
                        if seg.sim.is_empty() { first } else { self.mem.guests[g].region_of(seg.sim.end - 1) + 1 };
                    for r in first..last {
                        self.fault_hugetlb_region(g, r);
                    }
                    let per = if page_bytes >= 1 << 30 { costs.fault_hugetlb_1g_ns } else { costs.fault_hugetlb_2m_ns };
                    t += (last - first) as f64 * per;
                }
                Backing::Small { .. } => {
                    for p in seg.sim.clone() {
                        if self.mem.guests[g].pages[p as usize] & RES_MASK != UNTOUCHED {
                            continue;
                        }
                        match self.fault(g, p, now + t as u64, false) {
                            Some((cost, kind, reclaim)) => t += (cost + reclaim) * self.kind_scale(kind),
                            None => return Ok(()),
                        }
                    }
                }
            }
        }
        let boot = t as u64;
        if boot > 0 {
            self.mem.guests[g].pages.iter_mut().for_each(|s| *s &= !REFERENCED);
        }
        let k = self.mem.guests[..g].iter().filter(|x| x.group == gi).count();
        let warm = self.scenario.guests[gi].observed.get(k).cloned();
        if let Some(o) = &warm
            && !self.warm_start(g, o, now)
        {
            return Ok(());
        }
        let r = &mut self.runners[g];
        r.boot_delay = boot;
        let at = now + boot;
        r.started_at = Some(at);
        let detail = if boot > 0 {
            format!("prealloc took {:.3} s before the guest ran", boot as f64 / 1e9)
        } else if let Some(o) = &warm {
            format!(
                "warm start as observed: {:.1} resident ({:.1} in THPs), {:.1} swapped, balloon {:.1}",
                o.resident, o.thp, o.swapped, o.balloon
            )
        } else {
            String::new()
        };
        self.push_event(at, EventKind::GuestStarted, g, detail);
        // The balloon driver inflates to the boot target (libvirt's
        // <currentMemory>) once the guest runs.
        let group = &self.scenario.guests[gi];
        if let Some(cur) = group.current_memory
            && cur < group.memory
        {
            self.set_balloon_target(g, cur.bytes(), at, "current_memory");
        }
        // Free memory the guest never used but the host holds (prealloc, a
        // warm start) is reported too.
        self.schedule_report(g, at);
        let gn = self.mem.guests[g].generation;
        self.queue.schedule(at, Ev::Slice(g, gn))?;
        Ok(())
    }

    fn phase(&mut self, group: usize, index: usize, now: SimTime) {
        let ph = &self.scenario.guests[group].workload.phases[index];
        for g in 0..self.mem.guests.len() {
            if self.mem.guests[g].group == group && self.mem.guests[g].is_alive() {
                let old_ws = self.ws_sim_pages(g);
                self.apply_workload(g, Some(index));
                let new_ws = self.ws_sim_pages(g);
                if new_ws < old_ws {
                    // The guest freed what its working set left: those
                    // pages head its free lists (LIFO), and with free page
                    // reporting go back to the host.
                    self.mem.guests[g].freed.push((new_ws, old_ws));
                    self.schedule_report(g, now);
                } else if new_ws > old_ws {
                    // It takes the pages back for its working set.
                    let freed = &mut self.mem.guests[g].freed;
                    for f in freed.iter_mut() {
                        f.0 = f.0.max(new_ws.min(f.1));
                    }
                    freed.retain(|f| f.0 < f.1);
                    self.balloon_out_of_working_set(g);
                }
                if let Some(cur) = ph.current_memory {
                    self.set_balloon_target(g, cur.bytes(), now, "virsh setmem");
                }
                let mut parts = Vec::new();
                if let Some(c) = ph.current_memory {
                    parts.push(format!("current memory {c:.1}"));
                }
                if let Some(ws) = ph.working_set {
                    parts.push(format!("working set {ws:.1}"));
                }
                if let Some(r) = ph.touch_rate {
                    parts.push(format!("touch rate {r}"));
                }
                if let Some(p) = ph.pattern {
                    parts.push(format!("pattern {p}"));
                }
                if let Some(w) = ph.write {
                    parts.push(format!("writes {w}"));
                }
                self.push_event(now, EventKind::PhaseChange, g, parts.join(", "));
            }
        }
    }

    /// Set guest `g`'s workload to its group's base, with phases up to and
    /// including `upto` applied.
    fn apply_workload(&mut self, g: usize, upto: Option<usize>) {
        let group = &self.scenario.guests[self.mem.guests[g].group];
        let w = &group.workload;
        let (mut ws, mut rate, mut pattern, mut write) = (w.working_set, w.touch_rate, w.pattern, w.write);
        if let Some(upto) = upto {
            for ph in &w.phases[..=upto] {
                ws = ph.working_set.unwrap_or(ws);
                rate = ph.touch_rate.unwrap_or(rate);
                pattern = ph.pattern.unwrap_or(pattern);
                write = ph.write.unwrap_or(write);
            }
        }
        if let Some(cap) = self.runners[g].ws_cap {
            // A guest OOM killed part of the workload: what is left fits.
            ws = crate::units::ByteSize(ws.bytes().min(cap));
        }
        self.runners[g].ws_bytes = ws.bytes().min(group.memory.bytes());
        let guest = &self.mem.guests[g];
        let ws_pages = ws.pages(4096).min(group.memory.pages(4096));
        let (sampler, share) = self
            .samplers
            .entry((guest.group, upto, ws_pages))
            .or_insert_with(|| {
                let (s, share) = if guest.real.is_empty() {
                    (Sampler::exact(&pattern, ws_pages), 1.0)
                } else {
                    let k = guest.real.partition_point(|&p| p < ws_pages);
                    Sampler::sampled(&pattern, &guest.real[..k], ws_pages)
                };
                (Arc::new(s), share)
            })
            .clone();
        let shares = if guest.thp_sampled {
            let regions = guest.region_touched.len();
            let region_pages = guest.region_pages;
            let key = (guest.group, upto, ws_pages);
            let v = self
                .region_shares
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(crate::model::workload::region_shares(
                        &pattern,
                        &guest.real,
                        ws_pages,
                        regions,
                        region_pages,
                    ))
                })
                .clone();
            Some(v)
        } else {
            None
        };
        let host_huge = match guest.main_backing() {
            Backing::Small { .. } => 2 << 20,
            Backing::Hugetlb { page_bytes } => page_bytes,
        };
        let cpu = &self.scenario.host.cpu;
        let input = |host_page: u64| TranslationInput {
            cpu,
            pattern: &pattern,
            working_set_bytes: ws.bytes(),
            guest_page: w.guest_page_size,
            host_page,
            touch_rate: rate.per_sec(),
            pagetable_updates: w.pagetable_updates.per_sec(),
            vm_exits: w.vm_exits.per_sec(),
            tpr_accesses: w.tpr_accesses.per_sec(),
        };
        let key = (self.mem.guests[g].group, upto, ws_pages);
        let costs = &self.cfg.costs;
        let (small, huge) = *self.translations.entry(key).or_insert_with(|| {
            (latency::translation(costs, &input(4096)), latency::translation(costs, &input(host_huge)))
        });
        if let Some(v) = shares {
            // A region's first real touch may land on a page that is not
            // simulated: each touch does so with the region's unsampled
            // share, so the number of touches until it happens is
            // exponential with mean 1/share. Counting in the guest's own
            // touches (not time) follows its real pace, stalls included.
            let guest = &self.mem.guests[g];
            let done = self.runners[g].touches_real;
            let mut ft: Vec<(f64, u32)> = v
                .unsampled
                .iter()
                .enumerate()
                .filter(|&(r, &share)| share > 0.0 && guest.region_touched[r] == 0)
                .map(|(r, &share)| {
                    let h = mix64(((g as u64) << 32) ^ r as u64 ^ done.to_bits());
                    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                    (done - u.ln() / f64::from(share), r as u32)
                })
                .collect();
            ft.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
            self.runners[g].first_touches = ft;
            self.mem.guests[g].region_shares = v;
        }
        let r = &mut self.runners[g];
        r.sampler = sampler;
        r.share = share;
        r.rate = rate.per_sec();
        r.lambda = r.rate * share * self.slice_ns as f64 / 1e9;
        r.poisson = if r.lambda > 0.0 { Poisson::new(r.lambda).ok() } else { None };
        r.p_empty = (-r.lambda).exp();
        r.inv_lambda = 1.0 / r.lambda;
        r.write_threshold = (write.get() * 4_294_967_295.0).round() as u32;
        r.small = small;
        r.huge = huge;
    }

    /// One slice of guest `g`'s touches, starting at `now`.
    fn slice(&mut self, g: usize, now: SimTime) -> Result<(), RunError> {
        if self.mem.guests[g].status == Status::Starting {
            self.mem.guests[g].status = Status::Running;
        }
        let slice = self.slice_ns as f64;
        let scale = self.scale;
        let costs_dram = self.cfg.costs.dram_ns;
        let n = self.draw_touches(g);
        // Given n touches in the slice, a Poisson stream's touches fall as
        // n uniform points: the k-th comes at k·slice/(n + 1) on average.
        // (k − 1)·slice/n would credit a slice cut short after its i-th
        // touch with i·slice/n of compute, (n + 1)/n too much; sampled mode
        // counts the unsimulated pages' touches from that compute, and
        // with a few simulated touches a slice it read fault ratios 5% low.
        let spacing = slice / (n + 1) as f64;
        let write_threshold = self.runners[g].write_threshold;
        let mut hits = [0u64; 2];
        let mut stall = 0f64;
        let mut killed = false;
        let mut i = 0u64;
        // Sampled THP guests also touch pages that are not simulated, and
        // the first such touch of an untouched region is a fault
        // ([`Runner::first_touches`], in real touches). They are played in
        // time with the simulated touches: just before simulated touch
        // i + 1, at c = (i + 1)·spacing, the guest has made base + i +
        // c·unsampled_per_ns = start + i·per_touch real touches. A fault's
        // stall ends the slice early, as a simulated fault's does.
        let (base, unsampled_per_ns) = (self.runners[g].touches_real, self.runners[g].unsampled_rate() / 1e9);
        let start = base + unsampled_per_ns * spacing;
        let per_touch = 1.0 + unsampled_per_ns * spacing;
        let mut first_due = self.first_touch_due(g, start, per_touch);
        // Compute time at which a first touch's stall ended the slice.
        let mut cut_at = None;
        // Touches are drawn 16 at a time and their page states loaded
        // together, so the CPU overlaps the cache misses (memory-level
        // parallelism); each touch is then played in order.
        const CHUNK: usize = 16;
        let mut buf = [(0u64, 0u32); CHUNK];
        'slice: while i < n {
            let k = CHUNK.min((n - i) as usize);
            {
                let sampler = &*self.runners[g].sampler;
                for b in buf[..k].iter_mut() {
                    *b = sampler.draw(&mut self.rng);
                }
                let pages = &self.mem.guests[g].pages;
                let mut acc = 0u8;
                for b in &buf[..k] {
                    acc |= pages[b.0 as usize];
                }
                std::hint::black_box(acc);
            }
            for &(p, bits) in &buf[..k] {
                if i >= first_due {
                    // Due before the next simulated touch, at (i + 1)·spacing.
                    let c = (i + 1) as f64 * spacing;
                    if self.first_touches_upto(g, base + i as f64 + unsampled_per_ns * c, now, c, &mut stall) {
                        cut_at = Some(c);
                        break 'slice;
                    }
                    first_due = self.first_touch_due(g, start, per_touch);
                }
                let write = bits < write_threshold;
                let pages = &mut self.mem.guests[g].pages;
                let st = pages[p as usize];
                i += 1;
                if st & 1 == 1 && !(write && st & MERGED != 0) {
                    // RESIDENT (1) or HUGE (3): a hit, unless it writes a
                    // page KSM merged (a copy-on-write break). Pages the
                    // balloon holds are never mapped. A write makes the content the guest's own; ksmd
                    // drops its class when it next sees WRITTEN.
                    pages[p as usize] = st | REFERENCED | if write { WRITTEN } else { 0 };
                    hits[((st >> 1) & 1) as usize] += 1;
                    continue;
                }
                let t = now + (i as f64 * spacing + stall) as u64;
                let Some((cost, kind, reclaim)) = self.fault(g, p, t, write) else {
                    killed = true;
                    break 'slice;
                };
                let lat = cost + reclaim + costs_dram;
                let ks = self.kind_scale(kind);
                stall += cost * ks + reclaim * scale;
                // A fault enters the histogram as the real faults it stands
                // for (1/R for a 4 KiB page, one for a huge region).
                let r = &mut self.runners[g];
                r.hist.record_n(lat.max(1.0) as u64, ks.round() as u64);
                r.stall_by.direct_reclaim_s += reclaim * scale / 1e9;
                match kind {
                    FaultKind::Major => r.stall_by.major_faults_s += cost * ks / 1e9,
                    FaultKind::Cow => r.stall_by.cow_breaks_s += cost * ks / 1e9,
                    FaultKind::GuestSwap => r.stall_by.guest_swap_s += cost * ks / 1e9,
                    _ => r.stall_by.first_touch_faults_s += cost * ks / 1e9,
                }
                // Stalls moved this guest's clock past the slice: stop here
                // and go on from where its clock is, so guests stay within
                // about a slice of each other in time.
                if i as f64 * spacing + stall >= slice {
                    break 'slice;
                }
            }
        }
        // First touches after the last simulated one, up to the slice's end.
        if cut_at.is_none() && i == n && !killed && unsampled_per_ns > 0.0 {
            let last = n as f64 * spacing;
            while let Some(&(f, _)) = self.runners[g].first_touches.last() {
                let c = ((f - base - n as f64) / unsampled_per_ns).max(last);
                if c >= slice {
                    break;
                }
                if self.first_touches_upto(g, f, now, c, &mut stall) {
                    cut_at = Some(c);
                    break;
                }
            }
        }
        // Compute done: the touches played (all of the slice when none were
        // drawn or all were played), or up to the first touch that ended it.
        let done = match cut_at {
            Some(c) => c,
            None if i == n => slice,
            None => i as f64 * spacing,
        };
        // Hits: DRAM latency, plus a page walk on a TLB miss. Misses among
        // the hits are drawn in one batch per backing.
        let r = &mut self.runners[g];
        let mut misses_total = 0u64;
        for (k, tr) in [(0usize, r.small), (1usize, r.huge)] {
            let h = hits[k];
            if h == 0 {
                continue;
            }
            let flush = tr.flush_misses_per_s * done / 1e9 * (h as f64 / i.max(1) as f64) * r.share;
            let p = tr.miss_ratio.clamp(0.0, 1.0);
            // A few hits: one Bernoulli draw each is cheaper than setting
            // up a binomial sampler.
            let drawn = if h <= 8 {
                (0..h).filter(|_| self.rng.random::<f64>() < p).count() as u64
            } else {
                Binomial::new(h, p).map_or(0, |b| b.sample(&mut self.rng))
            };
            let misses = (drawn + (flush + 0.5) as u64).min(h);
            misses_total += misses;
            r.hit_hist.record_n((costs_dram.max(1.0)) as u64, h - misses);
            if misses > 0 {
                r.hit_hist.record_n((costs_dram + tr.walk_ns).max(1.0) as u64, misses);
            }
            stall += misses as f64 * tr.walk_ns * scale;
            r.stall_by.page_walks_s += misses as f64 * tr.walk_ns * scale / 1e9;
        }
        let hits_total = hits[0] + hits[1];
        r.hits += hits_total;
        r.tlb_misses += misses_total;
        r.touches += i;
        if r.share > 0.0 {
            // Each simulated touch is one real touch (on a sampled page);
            // the touches on pages that are not sampled are a Poisson stream
            // of (1 − share)·rate, counted at its mean: with thousands in a
            // slice its spread is negligible, where scaling the simulated
            // count by 1/share would add the simulated stream's own noise
            // (sampled guests then drift apart in pace, and so in which of
            // their regions still find memory free for a THP).
            r.touches_real += i as f64 + r.unsampled_rate() * done / 1e9;
            self.mem.guests[g].touches = r.touches_real;
        }
        // Exits (shadow page-table traps, TPR exits) cost vCPU time whether or
        // not the guest touches memory.
        let exit_stall = if hits_total > 0 {
            let small_share = hits[0] as f64 / hits_total as f64;
            r.small.exit_stall_per_s * small_share + r.huge.exit_stall_per_s * (1.0 - small_share)
        } else {
            r.small.exit_stall_per_s
        } * done
            / 1e9;
        stall += exit_stall;
        r.stall_by.vm_exits_s += exit_stall / 1e9;
        r.compute_ns += done;
        r.stall_ns += stall;
        if killed {
            return Ok(());
        }
        let next = self.skip_empty_slices(g, now + ((done + stall) + 0.5).max(1.0) as u64);
        let gn = self.mem.guests[g].generation;
        self.queue.schedule(next, Ev::Slice(g, gn))?;
        Ok(())
    }

    /// How many touches guest `g`'s slice holds: a Poisson draw, or a
    /// zero-truncated one when the slice ends a run of skipped empty ones.
    fn draw_touches(&mut self, g: usize) -> u64 {
        let r = &mut self.runners[g];
        let lambda = r.lambda;
        let Some(poisson) = r.poisson else { return 0 };
        if !std::mem::take(&mut r.nonempty_next) {
            return poisson.sample(&mut self.rng) as u64;
        }
        if lambda > 10.0 {
            // P(0) < 5e-5: rejection hardly ever draws twice.
            loop {
                let n = poisson.sample(&mut self.rng) as u64;
                if n > 0 {
                    return n;
                }
            }
        }
        // Inversion: P(k | k >= 1) = e^(-λ) λ^k / k! / (1 - e^(-λ)).
        let p0 = r.p_empty;
        let u = self.rng.random::<f64>() * (1.0 - p0);
        let (mut k, mut term) = (1u64, p0 * lambda);
        let mut cum = term;
        while u >= cum && k < 1_000 {
            k += 1;
            term *= lambda / k as f64;
            cum += term;
        }
        k
    }

    /// Guest `g`'s next slice would start at `at`. A sparse guest (sampled
    /// mode) has many empty slices: skip the run of them in one step. The
    /// stream is Poisson, so the number of empty slices before the next
    /// touch is geometric with P(empty) = e^(−λ); the slice after them holds
    /// a touch. At most [`MAX_SKIPPED_SLICES`] go at once, so phase changes
    /// are seen soon. Returns when the next slice to play starts.
    fn skip_empty_slices(&mut self, g: usize, at: SimTime) -> SimTime {
        let slice = self.slice_ns as f64;
        let r = &mut self.runners[g];
        if r.poisson.is_none() || r.p_empty < SKIP_ABOVE_P_EMPTY {
            return at;
        }
        // The empty slices before the next touch: floor(E/λ) for E ~ Exp(1)
        // is geometric with P(empty) = e^(−λ) (E = −ln U, drawn by the
        // ziggurat, which rarely needs a logarithm). Truncation is floor
        // here: the quotient is not negative.
        let e: f64 = rand_distr::Exp1.sample(&mut self.rng);
        // Not past the next first touch on an unsimulated page (sampled THP
        // guests): its fault must stall the guest in its own slice.
        let unsampled_per_slice = r.unsampled_rate() * slice / 1e9;
        let until_first = match r.first_touches.last() {
            Some(&(f, _)) if unsampled_per_slice > 0.0 => ((f - r.touches_real) / unsampled_per_slice).max(0.0),
            _ => f64::INFINITY,
        };
        let limit = MAX_SKIPPED_SLICES.min(until_first.floor());
        let k = (e * r.inv_lambda).min(limit) as u64 as f64;
        // The slice after the drawn run of empty ones holds a touch; one
        // after a run cut short is drawn afresh (the stream is memoryless).
        r.nonempty_next = k < limit;
        if k == 0.0 {
            return at;
        }
        let span = k * slice;
        // No simulated touch in these slices; the unsampled pages' touches
        // go on (see `slice`).
        if r.share > 0.0 {
            r.touches_real += r.unsampled_rate() * span / 1e9;
            self.mem.guests[g].touches = r.touches_real;
        }
        let exit_stall = r.small.exit_stall_per_s * span / 1e9;
        r.compute_ns += span;
        r.stall_ns += exit_stall;
        r.stall_by.vm_exits_s += exit_stall / 1e9;
        at + (span + exit_stall + 0.5) as u64
    }

    /// How many real faults one simulated fault of this kind stands for: 1/R
    /// for a 4 KiB page; one for a huge region, since sampling keeps 512·R ≥ 1
    /// pages of every 2 MiB block (see [`sampled_pages`]), so every region
    /// of 2 MiB or 1 GiB is simulated.
    fn kind_scale(&self, kind: FaultKind) -> f64 {
        match kind {
            FaultKind::Minor | FaultKind::Major | FaultKind::Cow | FaultKind::GuestSwap => self.scale,
            FaultKind::Thp | FaultKind::Hugetlb => 1.0,
        }
    }

    /// Guest `g` touches page `p` at `t` and it is not mapped: allocate or
    /// swap it in. Returns the fault's cost in ns (one real fault), or
    /// `None` when the OOM killer killed `g` itself.
    fn fault(&mut self, g: usize, p: u64, t: SimTime, write: bool) -> Option<(f64, FaultKind, f64)> {
        let costs = self.cfg.costs;
        let st = self.mem.guests[g].pages[p as usize];
        let ballooned = st & CLASS_MASK == BALLOONED;
        let mark = REFERENCED | if write { WRITTEN } else { 0 };
        // A write leaves content the guest's own (see the touch loop).
        let st = if write { st & !CLASS_MASK } else { st };
        let result = match (st & RES_MASK, self.mem.guests[g].backing_at(p)) {
            _ if ballooned => {
                // The balloon took this page's frame: the guest keeps the page
                // in its own swap (a virtual disk on the host's storage) and
                // swaps it in, pushing out another; the host sees nothing.
                self.runners[g].guest_swap_faults += 1;
                let read = self.scenario.host.swap.as_ref().map_or(GUEST_SWAP_READ_NS, |sw| sw.read_latency.nanos());
                return Some((read as f64, FaultKind::GuestSwap, 0.0));
            }
            (RESIDENT, _) if st & MERGED != 0 => {
                // Copy-on-write break: a new page for this guest, a copy of
                // the KSM page (do_wp_page), which loses one sharer.
                let stall = self.make_room(g, t)?;
                if let Some(k) = self.ksm.as_mut() {
                    k.unmerge(&mut self.mem, g, p);
                    k.counters.cow_breaks += 1;
                }
                let guest = &mut self.mem.guests[g];
                guest.pages[p as usize] = (st & !(MERGED | CLASS_MASK)) | mark;
                guest.resident += 1;
                self.mem.frames.insert(Unit { guest: g as u32, page: p, thp: false }, 1);
                self.runners[g].cow_breaks += 1;
                (costs.copy_4k_ns, FaultKind::Cow, stall)
            }
            (UNTOUCHED, Backing::Hugetlb { .. })
                if self.mem.guests[g].region_touched[self.mem.guests[g].region_of(p)] > 0 =>
            {
                // The huge page is mapped already (this piece came back
                // from the balloon): no fault on the host, the guest maps
                // its own page again.
                let guest = &mut self.mem.guests[g];
                let r = guest.region_of(p);
                guest.pages[p as usize] = (st & !RES_MASK) | HUGE | mark;
                guest.huge += 1;
                guest.pool_mapped += 1;
                guest.region_touched[r] += 1;
                (0.0, FaultKind::Hugetlb, 0.0)
            }
            (UNTOUCHED, Backing::Hugetlb { page_bytes }) => {
                let r = self.mem.guests[g].region_of(p);
                self.fault_hugetlb_region(g, r);
                self.mem.guests[g].pages[p as usize] |= mark;
                self.runners[g].hugetlb_faults += 1;
                let cost = if page_bytes >= 1 << 30 { costs.fault_hugetlb_1g_ns } else { costs.fault_hugetlb_2m_ns };
                (cost, FaultKind::Hugetlb, 0.0)
            }
            (UNTOUCHED, Backing::Small { thp }) => {
                // A THP needs its whole 2 MiB region untouched and inside
                // guest RAM, and free memory for it above the min watermark
                // (otherwise the kernel falls back to a 4 KiB page).
                let region = if thp { Some(self.mem.guests[g].region_of(p)) } else { None };
                if let Some(region) = region
                    && self.try_thp(g, region)
                {
                    self.mem.guests[g].pages[p as usize] |= mark;
                    (costs.fault_thp_ns, FaultKind::Thp, 0.0)
                } else {
                    let stall = self.make_room(g, t)?;
                    let guest = &mut self.mem.guests[g];
                    guest.pages[p as usize] = (st & !RES_MASK) | RESIDENT | mark;
                    if let Some(region) = region {
                        guest.region_touched[region] += 1;
                    }
                    guest.resident += 1;
                    self.mem.frames.insert(Unit { guest: g as u32, page: p, thp: false }, 1);
                    self.runners[g].minor += 1;
                    (costs.fault_4k_ns, FaultKind::Minor, stall)
                }
            }
            (SWAPPED, _) => {
                let stall = self.make_room(g, t)?;
                let wait = self.mem.swap.read(t + stall as u64);
                if self.mem.swap.ram_per_page > 0.0 {
                    self.mem.sync_zram();
                }
                let guest = &mut self.mem.guests[g];
                guest.pages[p as usize] = (st & !RES_MASK) | RESIDENT | mark;
                guest.swapped -= 1;
                guest.resident += 1;
                self.mem.frames.insert(Unit { guest: g as u32, page: p, thp: false }, 1);
                self.runners[g].major += 1;
                (wait as f64 + costs.swapin_overhead_ns, FaultKind::Major, stall)
            }
            _ => unreachable!("a fault is only taken on an unmapped page"),
        };
        // Peak of what the guest maps: its frames and its merged pages.
        let held = self.mem.guest_frames(g) + self.mem.guests[g].merged;
        let guest = &mut self.mem.guests[g];
        if held > guest.peak_frames {
            guest.peak_frames = held;
        }
        self.after_allocation(t);
        Some(result)
    }

    /// Make region `region` of guest `g` a transparent huge page at `t`, if
    /// the kernel would: the whole 2 MiB region untouched and inside guest
    /// RAM, and the huge page leaves free memory at or above the min
    /// watermark; otherwise the fault falls back to a 4 KiB page
    /// (`thp_fault_fallback`).
    ///
    /// The min watermark, not the low one: a THP fault that fails the fast
    /// path's low-watermark check goes on to the slow path, whose first
    /// try is at ALLOC_WMARK_MIN (`__alloc_pages_slowpath` in
    /// mm/page_alloc.c). The THP allocation does not wake kswapd
    /// (GFP_TRANSHUGE has no __GFP_KSWAPD_RECLAIM), but below the low
    /// watermark the next 4 KiB allocation does, here the fallback page
    /// itself (`after_allocation`). Checking against low instead leaves a
    /// band between low and low + one THP where every THP fault falls back
    /// while kswapd sleeps, and how long a guest stays in that band is set
    /// by the size of single allocations, which sampling changes: it read
    /// sampled runs' fault ratios up to 21% low. The model does not
    /// fragment memory, so it does not model compaction or the direct
    /// reclaim a madvised THP fault may do (defrag=madvise).
    fn try_thp(&mut self, g: usize, region: usize) -> bool {
        let guest = &self.mem.guests[g];
        let range = guest.region_range(region);
        let size = range.end - range.start;
        let inside = guest.region_real_pages(region) == 512;
        if !(inside && size > 0 && guest.region_touched[region] == 0) {
            return false;
        }
        // The memory cgroup must take a whole THP's charge; when it cannot,
        // the fault falls back to a 4 KiB page (thp_fault_fallback_charge).
        // Over memory.high the kernel charges the THP and then reclaims
        // and throttles; the model takes the 4 KiB path there, where the
        // cgroup's reclaim and throttling are played.
        if let Some(cg) = &self.runners[g].memcg
            && self.mem.guest_frames(g) + cg.overhead + size > cg.max.min(cg.high)
        {
            self.vm.thp_fault_fallback += 1;
            return false;
        }
        if self.mem.frames.free() < size + self.mem.watermarks.min {
            self.vm.thp_fault_fallback += 1;
            return false;
        }
        let guest = &mut self.mem.guests[g];
        for q in range.clone() {
            guest.pages[q as usize] = (guest.pages[q as usize] & !RES_MASK) | HUGE;
        }
        guest.region_touched[region] = size as u32;
        guest.huge += size;
        guest.thps += 1;
        // Prealloc's touches (the guest still starting) leave no accessed
        // bit behind, as its 4 KiB pages' bits are cleared after it.
        let aux = ThpAux { last_visit: self.runners[g].touches_real, fresh: guest.status != Status::Starting };
        let slot = self.mem.frames.insert(Unit { guest: g as u32, page: range.start, thp: true }, size);
        if let Some(a) = self.mem.frames.thp_aux_mut(slot as usize) {
            *a = aux;
        }
        self.runners[g].thp_faults += 1;
        true
    }

    /// The simulated touch count of guest `g`'s slice by which its next
    /// first touch on an unsimulated page is due (`u64::MAX`: none), when
    /// `start` real touches are made before the first simulated touch and
    /// each simulated touch brings `per_touch` more.
    fn first_touch_due(&self, g: usize, start: f64, per_touch: f64) -> u64 {
        match self.runners[g].first_touches.last() {
            None => u64::MAX,
            Some(&(f, _)) if f <= start => 0,
            Some(&(f, _)) => ((f - start) / per_touch).ceil().min(u64::MAX as f64) as u64,
        }
    }

    /// Sampled THP guests: play the first touches that landed on unsimulated
    /// pages of still-untouched regions, up to real touch `upto`, at compute
    /// time `c` of the slice that began at `now`. Each makes its region a
    /// THP when memory allows (a THP fault, added to `stall`) or leaves it
    /// to 4 KiB pages. The unsimulated pages' memory is not simulated
    /// itself: sampled counts stand for it. Returns true when the stall
    /// reached the end of the slice (the rest waits for the next one).
    fn first_touches_upto(&mut self, g: usize, upto: f64, now: SimTime, c: f64, stall: &mut f64) -> bool {
        let slice = self.slice_ns as f64;
        while let Some(&(at, r)) = self.runners[g].first_touches.last() {
            if at > upto {
                break;
            }
            self.runners[g].first_touches.pop();
            let r = r as usize;
            if self.mem.guests[g].region_touched[r] != 0 {
                continue;
            }
            if self.try_thp(g, r) {
                // The touch that faulted the THP in set its accessed bit
                // (`ThpAux::fresh`, set by try_thp).
                let cost = self.cfg.costs.fault_thp_ns;
                *stall += cost;
                let r = &mut self.runners[g];
                r.stall_by.first_touch_faults_s += cost / 1e9;
                r.hist.record_n((cost + self.cfg.costs.dram_ns).max(1.0) as u64, 1);
                self.after_allocation(now + (c + *stall) as u64);
                if c + *stall >= slice {
                    return true;
                }
            } else {
                // The region's first page went to a 4 KiB page: no THP here.
                self.mem.guests[g].region_touched[r] = 1;
            }
        }
        false
    }

    /// Bookkeeping after memory was allocated at `t`: peak use, and the
    /// kswapd wake-up when free memory fell below the low watermark (kswapd
    /// is woken by the allocation and runs right after it).
    fn after_allocation(&mut self, t: SimTime) {
        self.mem.note_usage();
        if self.mem.frames.free() < self.mem.watermarks.low && !self.kswapd_pending {
            self.kswapd_pending = true;
            let _ = self.queue.schedule(t.max(self.queue.now()), Ev::Kswapd);
        }
    }

    /// Mark every page of hugetlb region `r` of guest `g` as mapped, but
    /// those the balloon holds.
    fn fault_hugetlb_region(&mut self, g: usize, r: usize) {
        let guest = &mut self.mem.guests[g];
        let range = guest.region_range(r);
        let mut mapped = 0;
        for q in range.clone() {
            let st = guest.pages[q as usize];
            if st & RES_MASK == UNTOUCHED && st & CLASS_MASK != BALLOONED {
                guest.pages[q as usize] = (st & !RES_MASK) | HUGE;
                mapped += 1;
            }
        }
        guest.huge += mapped;
        guest.pool_mapped += mapped;
        guest.region_touched[r] += mapped as u32;
    }

    /// Make one frame free for guest `g`: direct reclaim, then the OOM
    /// killer. Returns the stall direct reclaim cost, or `None` if `g`
    /// itself was killed.
    fn make_room(&mut self, g: usize, t: SimTime) -> Option<f64> {
        let mut stall = 0.0;
        if self.runners[g].memcg.is_some() {
            stall += self.memcg_charge(g, t)?;
        }
        while self.mem.frames.free() == 0 {
            // Direct reclaim frees a batch (SWAP_CLUSTER_MAX = 32 pages in
            // mm/vmscan.c) on the faulting task's time; scanning a page
            // costs about 0.2 us of CPU (an estimate: a few cache misses
            // and LRU bookkeeping per page). When too many page-outs are
            // queued, the task waits for the device (reclaim_throttle).
            let out = self.clock.reclaim(&mut self.mem, crate::model::swap::SWAP_CLUSTER_MAX, t + stall as u64);
            self.vm.allocstall += 1;
            self.vm.pgscan_direct += out.scanned_pages;
            self.vm.pgsteal_direct += out.evicted;
            // Counted apart from kswapd's: a simulated direct reclaim
            // stands for 1/R real ones, a kswapd run for one.
            self.vm.direct_throttled += u64::from(out.throttled_ns > 0.0);
            stall += out.scanned as f64 * 200.0;
            if self.mem.frames.free() > 0 {
                break;
            }
            if out.throttled_ns > 0.0 {
                stall += out.throttled_ns;
                continue;
            }
            let victim = oom::select_victim(&self.mem)?;
            self.kill(victim, t);
            if victim == g {
                return None;
            }
        }
        Some(stall)
    }

    fn kill(&mut self, g: usize, t: SimTime) {
        let held = self.mem.guest_frames(g);
        let guest = &self.mem.guests[g];
        let detail = format!(
            "out of memory: killed the largest guest ({:.1} resident, {:.1} swapped)",
            crate::units::ByteSize((held as f64 * 4096.0 * self.scale) as u64),
            crate::units::ByteSize((guest.swapped as f64 * 4096.0 * self.scale) as u64)
        );
        self.kill_as(g, t, EventKind::OomKill, detail);
    }

    fn kill_as(&mut self, g: usize, t: SimTime, kind: EventKind, detail: String) {
        let held = self.mem.guest_frames(g);
        let guest_swapped = self.mem.guests[g].swapped;
        if let Some(k) = self.ksm.as_mut() {
            // Its merged mappings go: KSM pages left with no sharer are freed.
            for p in 0..self.mem.guests[g].sim_pages() {
                if self.mem.guests[g].pages[p as usize] & MERGED != 0 {
                    k.unmerge(&mut self.mem, g, p);
                }
            }
            k.forget_guest(g);
        }
        self.mem.frames.remove_guest(g as u32, held);
        self.mem.swap.discard(guest_swapped);
        self.mem.sync_zram();
        hugepages::release(&mut self.mem, g);
        let guest = &mut self.mem.guests[g];
        guest.status = Status::OomKilled;
        guest.generation += 1;
        guest.resident = 0;
        guest.swapped = 0;
        guest.huge = 0;
        guest.pool_mapped = 0;
        guest.thps = 0;
        for s in guest.pages.iter_mut() {
            *s &= !(RES_MASK | REFERENCED);
        }
        self.runners[g].ended_at = Some(t);
        if kind == EventKind::OomKill {
            self.oom_kills += 1;
        }
        self.push_event(t, kind, g, detail);
    }

    /// ksmd's wake-up: scan, charge its CPU time, sleep `sleep_millisecs`.
    /// ksmd sleeps after its batch (ksm_scan_thread), so a wake-up period is
    /// the batch's CPU time plus the sleep.
    fn ksmd(&mut self, now: SimTime) -> Result<(), RunError> {
        let Some(k) = self.ksm.as_mut() else { return Ok(()) };
        if !k.knobs.run {
            // Stopped (run = 0): merged pages stay, nothing is scanned.
            let sleep = u64::from(k.knobs.sleep_millisecs).max(1) * 1_000_000;
            self.queue.schedule(now + sleep, Ev::Ksmd)?;
            return Ok(());
        }
        let pages = f64::from(k.knobs.pages_to_scan) * self.rate;
        let wake = k.wake(&mut self.mem, &self.mergeable, pages);
        let cpu = wake.scanned as f64 * self.scale * self.cfg.costs.ksm_scan_page_ns;
        self.ksmd_cpu_ns += cpu;
        let saved = k.counters.pages_sharing + k.counters.zero_pages;
        self.ksm_saved_peak = self.ksm_saved_peak.max(saved);
        let sleep = u64::from(k.knobs.sleep_millisecs) * 1_000_000;
        if wake.merged > 0 {
            for (g, r) in self.runners.iter_mut().enumerate() {
                r.shared_peak = r.shared_peak.max(self.mem.guests[g].merged);
            }
            self.mem.note_usage();
        }
        let next = now + cpu.round() as u64 + sleep.max(1);
        if wake.full_scan_done {
            let (began, cpu_then) = self.scan_began;
            let scan_ms = (next - began) / 1_000_000;
            let cpu_ms = ((self.ksmd_cpu_ns - cpu_then) / 1e6) as u64;
            self.scan_began = (next, self.ksmd_cpu_ns);
            if let Some(k) = self.ksm.as_mut()
                && let Some(why) = self.tuner.after_full_scan(&mut k.knobs, scan_ms, cpu_ms)
            {
                self.pending.push(Event { t_ns: now, kind: EventKind::KsmChange, guest: String::new(), detail: why });
            }
        }
        self.queue.schedule(next, Ev::Ksmd)?;
        Ok(())
    }

    /// The phase guest `g`'s group is in at `now`.
    fn last_phase(&self, g: usize, now: SimTime) -> Option<usize> {
        let w = &self.scenario.guests[self.mem.guests[g].group].workload;
        w.phases.iter().rposition(|ph| ph.at.nanos() <= now)
    }

    /// ksmtuned or MoM looks at the host and sets KSM's knobs.
    fn ksm_look(&mut self, now: SimTime) {
        let s = self.scenario;
        let alive = |g: &&crate::model::Guest| g.is_alive();
        let rss: u64 = self.mem.guests.iter().filter(alive).map(|g| g.resident + g.huge + g.merged).sum();
        let vsz: u64 = self.mem.guests.iter().filter(alive).map(|g| s.guests[g.group].memory.bytes()).sum();
        let view = HostView {
            total_bytes: s.host.ram.bytes(),
            free_bytes: self.bytes(self.mem.frames.free()),
            qemu_rss_bytes: self.bytes(rss),
            qemu_vsz_bytes: vsz,
        };
        if let Some(k) = self.ksm.as_mut()
            && let Some(why) = self.tuner.look(&mut k.knobs, view)
        {
            let kn = k.knobs;
            let detail = format!(
                "{why}: run {}, pages_to_scan {}, sleep_millisecs {}",
                u8::from(kn.run),
                kn.pages_to_scan,
                kn.sleep_millisecs
            );
            self.pending.push(Event { t_ns: now, kind: EventKind::KsmChange, guest: String::new(), detail });
        }
    }

    /// A copy-on-write storm: since the last sample, writes broke more than
    /// a tenth of the merged mappings there were, each needing a new page.
    fn check_cow_storm(&mut self, now: SimTime) {
        let Some(k) = self.ksm.as_ref() else { return };
        let cow = k.counters.cow_breaks;
        let sharing = k.counters.pages_sharing + k.counters.zero_pages;
        let broke = cow - self.cow_at_sample;
        let before = self.sharing_at_sample;
        self.cow_at_sample = cow;
        self.sharing_at_sample = sharing;
        if before > 0 && broke * 10 > before {
            let detail = format!(
                "{} copy-on-write breaks since the last sample ({:.1} of new memory): {:.0}% of the merged pages were written",
                (broke as f64 * self.scale).round(),
                crate::units::ByteSize(self.bytes(broke)),
                100.0 * broke as f64 / before as f64
            );
            self.pending.push(Event { t_ns: now, kind: EventKind::CowStorm, guest: String::new(), detail });
        }
    }

    fn check_swap_full(&mut self, now: SimTime) {
        if !self.swap_full_reported && self.mem.swap.capacity > 0 && self.mem.swap.is_full() {
            self.swap_full_reported = true;
            self.pending.push(Event {
                t_ns: now,
                kind: EventKind::SwapFull,
                guest: String::new(),
                detail: "every swap slot is used: reclaim can no longer free guest memory".into(),
            });
        }
    }

    fn push_event(&mut self, t: SimTime, kind: EventKind, g: usize, detail: String) {
        self.pending.push(Event { t_ns: t, kind, guest: self.mem.guests[g].name.clone(), detail });
    }

    /// A count of simulated things as the real count it stands for.
    fn scaled(&self, sim: u64) -> u64 {
        (sim as f64 * self.scale).round() as u64
    }

    fn bytes(&self, sim_pages: u64) -> u64 {
        (sim_pages as f64 * 4096.0 * self.scale).round() as u64
    }

    fn sample(&self, now: SimTime) -> Sample {
        let m = &self.mem;
        let guests: Vec<GuestSample> = m
            .guests
            .iter()
            .zip(&self.runners)
            .map(|(g, r)| GuestSample {
                resident_bytes: self.bytes(g.resident + g.huge + g.merged),
                huge_bytes: self.bytes(g.huge),
                shared_bytes: self.bytes(g.merged),
                balloon_bytes: r.balloon_bytes,
                guest_swap_major_faults: self.scaled(r.guest_swap_faults),
                swapped_bytes: self.bytes(g.swapped),
                untouched_bytes: if g.is_alive() { self.bytes(g.untouched()) } else { 0 },
                touches: r.touches_real.round() as u64,
                minor_faults: self.scaled(r.minor) + r.thp_faults + r.hugetlb_faults,
                major_faults: self.scaled(r.major),
            })
            .collect();
        let guest_resident: u64 = (0..m.guests.len()).map(|g| m.guest_frames(g)).sum();
        let (pool_bytes, pool_used_bytes) = m.pool_bytes();
        let kc = self.ksm.as_ref().map(|k| k.counters).unwrap_or_default();
        Sample {
            t_ns: now,
            host: HostSample {
                frames_bytes: self.bytes(m.frames.total()),
                used_bytes: self.bytes(m.frames.used()),
                free_bytes: self.bytes(m.frames.free()),
                guest_resident_bytes: self.bytes(guest_resident),
                swap_used_bytes: self.bytes(m.swap.used),
                zram_bytes: self.bytes(m.zram_frames),
                ksm_bytes: self.bytes(kc.pages_shared),
                ksm_pages_shared: self.scaled(kc.pages_shared),
                ksm_pages_sharing: self.scaled(kc.pages_sharing),
                ksm_zero_pages: self.scaled(kc.zero_pages),
                ksm_full_scans: kc.full_scans,
                ksm_cow_breaks: self.scaled(kc.cow_breaks),
                pool_bytes,
                pool_used_bytes,
            },
            guests,
        }
    }

    /// A guest's latency over its real touches. Faults are recorded as the
    /// real faults they stand for, the SHARDS estimate (1/R for each
    /// simulated 4 KiB fault); hits are the rest of the real touches, in
    /// the proportions of the simulated hits. Weighting simulated touches
    /// alike instead would misstate the faults' share wherever the sampled
    /// pages' share of the touches is not R (a Zipf guest whose hottest
    /// page is sampled or not), and p99 sits on that share.
    fn latency_hist(&self, r: &Runner) -> Histogram<u64> {
        let mut out = r.hist.hist.clone();
        let sim_hits = r.hit_hist.hist.len();
        if self.scale == 1.0 || sim_hits == 0 {
            let _ = out.add(&r.hit_hist.hist);
            return out;
        }
        let real_hits = (r.touches_real - r.warm.touches - out.len() as f64).max(0.0);
        let weight = real_hits / sim_hits as f64;
        for v in r.hit_hist.hist.iter_recorded() {
            let n = (v.count_at_value() as f64 * weight).round() as u64;
            if n > 0 {
                let _ = out.record_n(v.value_iterated_to(), n);
            }
        }
        out
    }

    fn summary(&self) -> Summary {
        let s = self.scenario;
        let h = &s.host;
        let hists: Vec<Histogram<u64>> = self.runners.iter().map(|r| self.latency_hist(r)).collect();
        let guests = self
            .mem
            .guests
            .iter()
            .zip(&self.runners)
            .zip(&hists)
            .map(|((g, r), hist)| {
                let group = &s.guests[g.group];
                let pct = |q: f64| if hist.is_empty() { 0 } else { hist.value_at_quantile(q) };
                let touches = r.touches_real.round() as u64;
                let major = self.scaled(r.major);
                GuestSummary {
                    name: g.name.clone(),
                    group: group.name.clone(),
                    state: match g.status {
                        Status::Starting => "running".to_string(),
                        other => other.label().to_string(),
                    },
                    memory_bytes: group.memory.bytes(),
                    backing: group.backing_label(&s.host),
                    resident_peak_bytes: self.bytes(g.peak_frames.max(g.huge)),
                    swapped_peak_bytes: self.bytes(g.peak_swapped),
                    resident_end_bytes: self.bytes(g.resident + g.huge + g.merged),
                    swapped_end_bytes: self.bytes(g.swapped),
                    touches,
                    minor_faults: self.scaled(r.minor) + r.thp_faults + r.hugetlb_faults,
                    major_faults: major,
                    thp_faults: r.thp_faults,
                    hugetlb_faults: r.hugetlb_faults,
                    shared_peak_bytes: self.bytes(r.shared_peak),
                    cow_breaks: self.scaled(r.cow_breaks),
                    balloon_peak_bytes: r.balloon_peak,
                    guest_swap_major_faults: self.scaled(r.guest_swap_faults),
                    guest_oom_events: r.guest_ooms,
                    balloon_end_bytes: r.balloon_bytes,
                    current_memory_bytes: r.balloon_target,
                    free_page_reported_bytes: r.reported_bytes,
                    locked: group.locked,
                    memcg: r.memcg.as_ref().map(|cg| MemcgSummary {
                        max_bytes: group.memtune.hard_limit.map(|b| b.bytes()),
                        high_bytes: group.memtune.soft_limit.map(|b| b.bytes()),
                        swap_max_bytes: group.memtune.swap_hard_limit.map(|b| b.bytes()),
                        overhead_bytes: qemu_overhead_bytes(group),
                        peak_bytes: self.bytes(cg.peak),
                        events: MemcgEvents {
                            high: self.scaled(cg.events.high),
                            max: self.scaled(cg.events.max),
                            oom: cg.events.oom,
                            oom_kill: cg.events.oom_kill,
                        },
                        pgscan: self.scaled(cg.pgscan),
                        pgsteal: self.scaled(cg.pgsteal),
                    }),
                    fault_ratio: {
                        let touched = r.touches_real - r.warm.touches;
                        if touched > 0.0 { (r.major - r.warm.major) as f64 * self.scale / touched } else { 0.0 }
                    },
                    tlb_miss_ratio: if r.hits > 0 { r.tlb_misses as f64 / r.hits as f64 } else { 0.0 },
                    latency_ns: Percentiles {
                        mean: if hist.is_empty() { 0.0 } else { (hist.mean() * 10.0).round() / 10.0 },
                        p50: pct(0.50),
                        p95: pct(0.95),
                        p99: pct(0.99),
                        p999: pct(0.999),
                    },
                    slowdown: {
                        let compute = r.compute_ns - r.warm.compute_ns;
                        let stall = r.stall_ns - r.warm.stall_ns;
                        if compute > 0.0 { (compute + stall) / compute } else { 1.0 }
                    },
                    stall_s: r.stall_by.rounded(),
                    boot_delay_ns: r.boot_delay,
                    started_at_ns: r.started_at,
                    ended_at_ns: r.ended_at,
                }
            })
            .collect::<Vec<_>>();
        let latency_cdf = s
            .guests
            .iter()
            .enumerate()
            .map(|(gi, group)| {
                let mut merged = LatencyHist::default().hist;
                for (g, hist) in self.mem.guests.iter().zip(&hists) {
                    if g.group == gi {
                        let _ = merged.add(hist);
                    }
                }
                GroupCdf { group: group.name.clone(), points: cdf_points(&merged) }
            })
            .collect();
        let running = self.mem.guests.iter().filter(|g| g.is_alive()).count() as u64;
        let failed = self.mem.guests.iter().filter(|g| g.status == Status::FailedToStart).count() as u64;
        Summary {
            scenario: s.name.clone(),
            seed: self.seed,
            duration_s: s.duration.as_secs_f64(),
            warmup_s: s.warmup.as_secs_f64(),
            sample_rate: self.rate,
            calibration: self.cfg.calibration.clone(),
            notes: unmodelled(s),
            stopped_at_s: None,
            host: HostSummary {
                ram_bytes: h.ram.bytes(),
                usable_bytes: h.usable().bytes(),
                configured_bytes: s.configured_bytes(),
                overcommit_ratio: (s.overcommit_ratio() * 1e6).round() / 1e6,
                hugepages_pool_bytes: h.pool_bytes(),
                peak_used_bytes: self.bytes(self.mem.peak_used),
                min_free_bytes: self.bytes(self.mem.min_free),
                swap_size_bytes: h.swap.as_ref().map_or(0, |sw| sw.size.bytes()),
                swap_used_peak_bytes: self.bytes(self.mem.swap.peak_used),
                oom_kills: self.oom_kills,
                memcg_oom_kills: self
                    .runners
                    .iter()
                    .filter_map(|r| r.memcg.as_ref())
                    .map(|cg| cg.events.oom_kill)
                    .sum(),
                guests_running: running,
                guests_failed_to_start: failed,
                vmstat: Vmstat {
                    pageoutrun: self.vm.pageoutrun,
                    pgscan_kswapd: self.scaled(self.vm.pgscan_kswapd),
                    pgsteal_kswapd: self.scaled(self.vm.pgsteal_kswapd),
                    allocstall: self.scaled(self.vm.allocstall),
                    pgscan_direct: self.scaled(self.vm.pgscan_direct),
                    pgsteal_direct: self.scaled(self.vm.pgsteal_direct),
                    reclaim_throttled: self.vm.kswapd_throttled + self.scaled(self.vm.direct_throttled),
                    pswpin: self.scaled(self.mem.swap.reads),
                    pswpout: self.scaled(self.mem.swap.writes),
                    thp_fault_alloc: self.runners.iter().map(|r| r.thp_faults).sum(),
                    thp_fault_fallback: self.vm.thp_fault_fallback,
                    // Every THP region is simulated (see `kind_scale`): one
                    // split is one real split.
                    thp_split_page: self.clock.thp_splits,
                },
                ksm: self.ksm.as_ref().map(|k| {
                    let c = &k.counters;
                    let duration = s.duration.nanos().max(1) as f64;
                    KsmSummary {
                        pages_shared: self.scaled(c.pages_shared),
                        pages_sharing: self.scaled(c.pages_sharing),
                        pages_unshared: self.scaled(c.pages_unshared),
                        pages_volatile: self.scaled(c.pages_volatile),
                        ksm_zero_pages: self.scaled(c.zero_pages),
                        full_scans: c.full_scans,
                        pages_scanned: self.scaled(c.pages_scanned),
                        general_profit_bytes: (k.general_profit_bytes() * self.scale).round() as i64,
                        saved_bytes: self.bytes(c.pages_sharing + c.zero_pages),
                        saved_peak_bytes: self.bytes(self.ksm_saved_peak),
                        ksmd_cpu_percent: (self.ksmd_cpu_ns / duration * 1e6).round() / 1e4,
                        cow_breaks: self.scaled(c.cow_breaks),
                        policy: h.ksm.policy,
                        run: k.knobs.run,
                        pages_to_scan: k.knobs.pages_to_scan,
                        sleep_millisecs: k.knobs.sleep_millisecs,
                    }
                }),
            },
            guests,
            latency_cdf,
        }
    }
}

/// A histogram's distribution as (value, share at or below) points: every
/// recorded value, thinned to one point per 2% of value or 0.2% of share
/// (a few hundred points at most), the last value always kept.
fn cdf_points(h: &Histogram<u64>) -> Vec<(u64, f64)> {
    let total = h.len();
    if total == 0 {
        return Vec::new();
    }
    let mut out: Vec<(u64, f64)> = Vec::new();
    let mut below = 0u64;
    let mut recorded = h.iter_recorded().peekable();
    while let Some(v) = recorded.next() {
        below += v.count_at_value();
        let (value, share) = (h.highest_equivalent(v.value_iterated_to()), below as f64 / total as f64);
        let keep = match out.last() {
            None => true,
            Some(&(lv, ls)) => value as f64 >= lv as f64 * 1.02 || share >= ls + 0.002 || recorded.peek().is_none(),
        };
        if keep {
            out.push((value, share));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultKind {
    /// A write to a merged page (copy-on-write break).
    Cow,
    /// A page the guest keeps in its own swap (the balloon has its frame).
    GuestSwap,
    Minor,
    Thp,
    Hugetlb,
    Major,
}

/// QEMU's own memory beside guest RAM, which its memory cgroup is charged
/// too: oVirt's estimate (VmOverheadCalculatorImpl: 64 MiB, plus RAM/512
/// for page tables and the like, plus 8 MiB a vCPU).
pub fn qemu_overhead_bytes(g: &GuestGroup) -> u64 {
    (64 << 20) + g.memory.bytes() / 512 + (8 << 20) * u64::from(g.vcpus)
}

/// A sampling salt per image (FNV-1a of its name): groups of one image
/// sample the same addresses.
fn image_salt(image: &str) -> u64 {
    image.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
}

/// Real page indices kept by spatial sampling at `rate`, by hash as in
/// SHARDS (Waldspurger et al., FAST 2015), stratified by 2 MiB block: each
/// full block of [`STRATUM_PAGES`] pages keeps exactly its `rate` share of
/// pages, the ones with the smallest hashes (a partial last block keeps
/// those whose hash falls below rate × 2^64). Every page is still kept
/// with probability `rate`, so counts scaled by 1/R stay unbiased; what
/// stratifying removes is the spread of a block's count. A THP is a
/// block, and whether one fits is a threshold test on free memory (kernel
/// watermarks a few THPs apart): with Binomial(512, R) simulated pages a
/// THP's size in frames varies by ±1/√(512·R), which decides whether the
/// last THP of a kswapd round fits, and so how long THP faults then fall
/// back to 4 KiB pages. With exactly 512·R pages (an integer for the
/// rates allowed) a THP is always 512 real pages, as when exact, and every
/// region is simulated.
fn sampled_pages(real_pages: u64, rate: f64, salt: u64) -> Vec<u64> {
    let threshold = (rate * 18_446_744_073_709_551_616.0) as u64;
    let salt = mix64(salt ^ 0x005A_4DD5);
    let keep = (STRATUM_PAGES as f64 * rate).round() as usize;
    let mut out = Vec::with_capacity((real_pages as f64 * rate) as usize + 1);
    let mut block: Vec<(u64, u64)> = Vec::with_capacity(STRATUM_PAGES as usize);
    for start in (0..real_pages).step_by(STRATUM_PAGES as usize) {
        let end = (start + STRATUM_PAGES).min(real_pages);
        if end - start < STRATUM_PAGES {
            out.extend((start..end).filter(|&p| mix64(p ^ salt) < threshold));
            break;
        }
        block.clear();
        block.extend((start..end).map(|p| (mix64(p ^ salt), p)));
        if keep < block.len() {
            block.select_nth_unstable(keep);
        }
        let first = out.len();
        out.extend(block[..keep].iter().map(|&(_, p)| p));
        out[first..].sort_unstable();
    }
    out
}

/// Pages per sampling stratum: a 2 MiB region (a THP), and a whole number
/// of them in a 1 GiB huge page.
const STRATUM_PAGES: u64 = 512;

/// What of a scenario this engine plays more simply than the kernel, in
/// words for the user.
pub fn unmodelled(s: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    if s.host.ksm.run {
        out.push("KSM pages stay in RAM: the model does not swap them out (the kernel can)".into());
    }
    out
}

/// Play `scenario` with `cfg`, reporting to `sink`.
pub fn run(scenario: &Scenario, cfg: RunConfig, sink: &mut dyn Sink) -> Result<Summary, RunError> {
    Engine::new(scenario, cfg)?.run(sink)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_512r_pages_of_every_full_region() {
        // 8 MiB and 3 pages: four full 2 MiB regions and a partial one.
        let real = 4 * STRATUM_PAGES + 3;
        for k in 0..=9 {
            let rate = 1.0 / f64::from(1u32 << k);
            let v = sampled_pages(real, rate, 5);
            assert!(v.windows(2).all(|w| w[0] < w[1]), "ascending, no repeats");
            for r in 0..4 {
                let n = v.iter().filter(|&&p| p / STRATUM_PAGES == r).count();
                assert_eq!(n as f64, STRATUM_PAGES as f64 * rate, "rate {rate} region {r}");
            }
        }
    }

    #[test]
    fn region_by_division_agrees_with_the_real_page() {
        // Guest::region_of divides the simulated index when regions hold
        // equal counts; the definition is the real page's 2 MiB block.
        for (real, rate) in [(4 * STRATUM_PAGES + 3, 1.0 / 512.0), (4 * STRATUM_PAGES + 300, 1.0 / 8.0), (2048, 1.0)] {
            let v = if rate < 1.0 { sampled_pages(real, rate, 9) } else { Vec::new() };
            let g = Guest::new("g".into(), 0, Backing::Small { thp: true }, real, v, 0.0, 0.0);
            for sim in 0..g.sim_pages() {
                assert_eq!(g.region_of(sim) as u64, g.real_page(sim) / 512, "{real} pages at {rate}, page {sim}");
            }
            for r in 0..g.region_touched.len() {
                let want = g.region_start[r]..g.region_start[r + 1];
                assert_eq!(g.region_range(r), want, "{real} pages at {rate}, region {r}");
            }
        }
    }

    #[test]
    fn every_page_is_kept_with_probability_r() {
        // Inclusion is by hash rank within a region, so over salts each page
        // is kept with probability R: counts scaled by 1/R stay unbiased.
        let rate = 1.0 / 8.0;
        let salts = 4000u64;
        let mut kept = vec![0u32; STRATUM_PAGES as usize];
        for salt in 0..salts {
            for p in sampled_pages(STRATUM_PAGES, rate, salt) {
                kept[p as usize] += 1;
            }
        }
        // Each page expects 500 of 4000 (sd about 21): 5 sd is ±105.
        assert!(kept.iter().all(|&c| (395..=605).contains(&c)), "{kept:?}");
    }
}
