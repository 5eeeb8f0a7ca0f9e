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
mod faults;
mod khugepaged;
mod ksmd;
mod memcg;
pub mod mode;
pub mod observe;
pub mod queue;
mod run_loop;
mod sampling;
mod settled;
mod skips;
mod state;
mod summary;
mod touches;
mod warm;
mod workload;

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::latency::{Costs, Translation};
use crate::model::workload::{RegionShares, Sampler};
use crate::model::{Backing, Frames, Guest, Memory, Watermarks};
use crate::policy::balloon::BalloonController;
use crate::policy::ksm::{self, Ksm};
use crate::policy::ksmtune::KsmTuner;
use crate::policy::reclaim::Clock;
use crate::scenario::{GuestGroup, Scenario, ThpMode};
pub use mode::Mode;
pub use observe::*;
use queue::{EventQueue, SimTime};
pub use sampling::{
    AUTO_PAGE_BUDGET, AUTO_TOUCH_BUDGET, MAX_SAMPLED_SLICE_NS, MAX_SAMPLED_STALL_NS, auto_sample_rate,
    configured_pages, expected_swapin_ns, expected_work, peak_touches, rate_within_pages, sample_rate_within,
    stall_bound_note, stall_warning,
};
use sampling::{image_salt, sampled_pages};
pub use settled::LatencyBound;
use state::{Baseline, Ev, LatencyHist, Memcg, ReclaimCounters, Runner};

// Names ballooning.rs, memcg.rs and warm.rs take through `use super::*`.
use crate::model::Unit;
use crate::model::page::{BALLOONED, CLASS_MASK, HUGE, MERGED, REFERENCED, RES_MASK, RESIDENT, SWAPPED, UNTOUCHED};
use crate::policy::balloon::{GuestView, HostView};

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
    /// Play touches one by one, or by events (faults: every mechanism of
    /// the engine tells the event sets what it changes, at any sampling
    /// rate), or whichever is faster for the scenario (see [`mode`]).
    pub mode: Mode,
    /// End the run as soon as each of these is missed for good by some
    /// guest (a plan's latency objectives; see [`LatencyBound`]). Empty:
    /// play to the end.
    pub stop_when_missed: Vec<LatencyBound>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: None,
            sample_rate: None,
            slice_ns: 1_000_000,
            costs: Costs::default(),
            calibration: None,
            mode: Mode::Touches,
            stop_when_missed: Vec::new(),
        }
    }
}

/// How often a moving balloon is brought up to date (the guest driver
/// itself works in 1 MiB requests, back to back).
const BALLOON_STEP_NS: u64 = 50_000_000;

/// Free page reporting waits this long after memory is freed before it
/// reports (PAGE_REPORTING_DELAY = 2 * HZ, mm/page_reporting.c).
const PAGE_REPORTING_DELAY_NS: u64 = 2_000_000_000;

/// Why a run could not be played.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("sample rate {0} must be 1 or a power of two between 1/512 and 1")]
    BadSampleRate(f64),
    #[error(transparent)]
    Past(#[from] queue::PastEvent),
}

impl RunError {
    /// Whether the input is at fault (exit code 2), not the program (an
    /// event scheduled in the past is a bug: exit code 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, RunError::BadSampleRate(_))
    }
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
    /// Scratch for a slice's simulated touch times when they are drawn
    /// (`Engine::slice`).
    points: Vec<f64>,
    kswapd_pending: bool,
    /// ksmd, when the host runs KSM; which guests it may merge.
    ksm: Option<Ksm>,
    /// khugepaged, when the host has THP guests.
    khugepaged: Option<khugepaged::Khugepaged>,
    mergeable: Vec<bool>,
    /// What sets KSM's knobs; when the current full scan began and ksmd's
    /// CPU time then (for the advisor).
    tuner: Option<Box<dyn KsmTuner>>,
    scan_began: (SimTime, f64),
    /// The balloon controller (MoM, Proxmox), when one runs.
    balloons: Option<Box<dyn BalloonController>>,
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
    /// Zipf's weights of a group's pages (its sample's, when sampled), by
    /// exponent (its bits) and group: what the samplers of its working
    /// sets of every size take theirs from.
    zipf_weights: BTreeMap<(u64, usize), Arc<Vec<f64>>>,
    /// Sampled mode, THP guests: per-region touch shares, by workload.
    region_shares: BTreeMap<WorkloadKey, Arc<RegionShares>>,
    /// Address translation costs (4 KiB, huge) by workload: guests of a
    /// group share them.
    translations: BTreeMap<WorkloadKey, (Translation, Translation)>,
    /// Touches are played by events ([`RunConfig::events`], where it applies).
    event_mode: bool,
    /// Event mode: Zipf weights (k + 1)^(−s) per page, in units, by
    /// exponent (its bits), guest size and sample (the group's, or
    /// `usize::MAX` when exact): guests of a group share one table, their
    /// working sets being limits into it.
    zipf_shares: BTreeMap<(u64, usize, usize), Arc<Vec<u64>>>,
    /// Event mode: what the guests' event tracks share with the engine
    /// (the time, and who to wake).
    shared: Arc<crate::model::eventset::Shared>,
}

impl<'a> Engine<'a> {
    pub fn new(scenario: &'a Scenario, cfg: RunConfig) -> Result<Engine<'a>, RunError> {
        let rate = cfg.sample_rate.unwrap_or_else(|| auto_sample_rate(scenario));
        let valid = (0..=9).any(|k| rate == 1.0 / f64::from(1u32 << k));
        if !valid {
            return Err(RunError::BadSampleRate(rate));
        }
        let seed = cfg.seed.unwrap_or(scenario.seed);
        let event_mode = cfg.mode.plays_events(scenario, rate);
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
            // not line up. The seed picks the sample too: SHARDS is unbiased
            // over the choice of hash, so runs over several seeds average
            // the sampling error out with the rest.
            let salt = (if h.ksm.run { image_salt(&group.image) } else { gi as u64 })
                ^ crate::model::page::mix64(seed ^ 0x5EED_5A17);
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
                // A warm start's pages in use, and which part of each
                // content class lies in its working set.
                let used = group
                    .observed
                    .get(k as usize)
                    .map_or(0, |o| (o.resident.bytes() + o.swapped.bytes()) / 4096)
                    .min(group.memory.pages(4096));
                let warm = w.working_set.pages(4096).min(group.memory.pages(4096));
                let even = if used > 0 { (warm as f64 / used as f64).min(1.0) } else { 1.0 };
                let in_warm = w
                    .in_working_set
                    .map(|iw| [iw.shared, iw.zero, iw.duplicate].map(|x| x.map_or(even, crate::units::Fraction::get)));
                let shares = crate::model::page::Shares { warm, used, in_warm, ..w.shares() };
                // The group's first guest lends the others its pages'
                // content classes (same sample and shares: same classes).
                let like = (k > 0).then(|| &guests[guests.len() - k as usize]);
                let mut guest = Guest::with_segments_like(name, gi, &layout, real, shares, like);
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
                    touch_count: None,
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
                    deferred_hits: [0; 2],
                    deferred_flush: [0.0; 2],
                    warm: Baseline::default(),
                    touches: 0,
                    touches_real: 0.0,
                    nonempty_next: false,
                    skip: None,
                    due: None,
                    token: 0,
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
        let pools = h
            .hugepage_pools()
            .map(|p| crate::model::host::Pool { page_bytes: p.size.bytes(), total: p.count, free: p.count })
            .collect();
        let mut mem = Memory::new(
            frames,
            Watermarks::kernel_default(h.ram.bytes(), rate),
            pools,
            crate::policy::resolve::build_swap(h.swap.as_ref(), h.ram.bytes(), rate),
            guests,
        );
        if mem.swap.keeps_slots() {
            for guest in &mut mem.guests {
                let tcg = scenario.guests[guest.group].accel == crate::scenario::schema::Accel::Tcg;
                guest.swap_cache = crate::model::swapcache::SwapCache::new(guest.sim_pages(), tcg);
            }
        }
        let reclaim_page_ns = cfg.costs.reclaim_page_ns;
        let mut engine = Engine {
            scenario,
            cfg,
            seed,
            rate,
            scale: 1.0 / rate,

            mem,
            clock: Clock::new(reclaim_page_ns, scenario.host.reclaim).seeded(seed),
            vm: ReclaimCounters::default(),
            runners,
            queue: EventQueue::default(),
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            slice_ns: ((cfg_slice as f64 / rate) as u64).min(MAX_SAMPLED_SLICE_NS.max(cfg_slice)),
            points: Vec::new(),
            kswapd_pending: false,
            ksm: None,
            khugepaged: None,
            mergeable: Vec::new(),
            tuner: None,
            scan_began: (0, 0.0),
            balloons: h.balloon.policy.build(),
            ksmd_cpu_ns: 0.0,
            ksm_saved_peak: 0,
            cow_at_sample: 0,
            sharing_at_sample: 0,
            swap_full_reported: false,
            oom_kills: 0,
            pending: Vec::new(),
            samplers: BTreeMap::new(),
            zipf_weights: BTreeMap::new(),
            region_shares: BTreeMap::new(),
            translations: BTreeMap::new(),
            event_mode,
            zipf_shares: BTreeMap::new(),
            shared: Arc::default(),
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
                smart_scan: h.ksm.smart_scan,
            };
            engine.tuner = h.ksm.tuner.build(&mut knobs);
            let shares = engine.mem.guests.iter().map(|g| g.shares).collect();
            let pages: Vec<_> = engine.mem.guests.iter().map(|g| (g.real_pages, g.sim_pages())).collect();
            engine.ksm = Some(Ksm::new(knobs, image_of, shares, &pages));
            engine.queue.schedule(0, Ev::Ksmd)?;
            if let Some(interval) = engine.tuner.as_ref().and_then(|t| t.look_interval()) {
                // A tuner that looks sleeps an interval first (ksmtuned's
                // loop; MoM's policy engine).
                engine.queue.schedule(interval.nanos().max(1), Ev::KsmLook)?;
            }
        }
        // Guests whose pages something other than the global CLOCK frees
        // one by one (balloons, free page reporting, their cgroup's
        // reclaim) keep a page-to-slot map.
        for g in 0..engine.mem.guests.len() {
            let group = &scenario.guests[engine.mem.guests[g].group];
            let ballooned = group.balloon
                && (!h.balloon.policy.is_none()
                    || group.current_memory.is_some()
                    || group.workload.phases.iter().any(|p| p.current_memory.is_some())
                    || group.observed.iter().any(|o| o.balloon.bytes() > 0));
            // Reclaim by cgroup walks every guest's pages.
            if ballooned || group.free_page_reporting || group.memtune.is_set() || engine.clock.walks_guests() {
                let pages = engine.mem.guests[g].sim_pages();
                engine.mem.frames.track(g as u32, pages);
            }
        }
        if engine.balloons.is_some() {
            engine.queue.schedule(h.balloon.interval.nanos().max(1), Ev::Balloon)?;
        }
        // khugepaged runs unless THP is off, over the guests that may have
        // THPs; a collapse frees their 4 KiB pages one by one, so they keep
        // a page-to-slot map.
        let thp_guests: Vec<usize> = (0..engine.mem.guests.len())
            .filter(|&g| {
                let guest = &engine.mem.guests[g];
                guest.segments.iter().any(|s| matches!(s.backing, Backing::Small { thp: true }))
            })
            .collect();
        if h.thp != ThpMode::Never && !thp_guests.is_empty() {
            for &g in &thp_guests {
                if !engine.mem.frames.tracks(g as u32) {
                    let pages = engine.mem.guests[g].sim_pages();
                    engine.mem.frames.track(g as u32, pages);
                }
            }
            engine.khugepaged = Some(khugepaged::Khugepaged::new(h.khugepaged));
            let first = u64::from(h.khugepaged.scan_sleep_millisecs).max(1) * 1_000_000;
            engine.queue.schedule(first, Ev::Khugepaged)?;
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
}

/// QEMU's own memory beside guest RAM, which its memory cgroup is charged
/// too: oVirt's estimate (VmOverheadCalculatorImpl: 64 MiB, plus RAM/512
/// for page tables and the like, plus 8 MiB a vCPU).
pub fn qemu_overhead_bytes(g: &GuestGroup) -> u64 {
    (64 << 20) + g.memory.bytes() / 512 + (8 << 20) * u64::from(g.vcpus)
}

/// What of a scenario this engine plays more simply than the kernel, in
/// words for the user.
///
/// KSM pages are reclaimed and swapped as the kernel does it (see
/// `model::ksmpage`). With one LRU for all guests (`host.reclaim.lru:
/// shared`) the model charges a KSM page to no memory cgroup, where the
/// kernel charges it to the cgroup of the page that became it, so a
/// guest's own cgroup reclaim (memtune's limits) never takes one; with an
/// lruvec per guest it is charged as the kernel does it.
pub fn unmodelled(s: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    let shared = s.host.reclaim.lru == crate::policy::reclaim::Lru::Shared;
    if shared && s.host.ksm.run && s.guests.iter().any(|g| g.ksm && g.memtune.is_set()) {
        out.push(
            "KSM pages are charged to no memory cgroup here: a guest's cgroup reclaim does not swap them \
             (host-wide reclaim does)"
                .into(),
        );
    }
    out
}

/// Play `scenario` with `cfg`, reporting to `sink`.
pub fn run(scenario: &Scenario, cfg: RunConfig, sink: &mut dyn Sink) -> Result<Summary, RunError> {
    Engine::new(scenario, cfg)?.run(sink)
}
