//! What the engine keeps besides the pages: its events, each guest's
//! runner (counters, latency histograms, the workload it draws from), its
//! memory cgroup, and the host's reclaim counters.

use std::sync::Arc;

use hdrhistogram::Histogram;

use super::observe::{MemcgEvents, StallBreakdown};
use super::queue::SimTime;
use crate::latency::Translation;
use crate::model::workload::{Sampler, TouchCount};

// For the documentation's links.
#[cfg(doc)]
use super::{Engine, observe::Vmstat};

#[derive(Debug, Clone, Copy)]
pub(super) enum Ev {
    Start(usize),
    /// The next slice of guest `.0`, valid while its generation is `.1`
    /// and its slice token `.2` (a guest woken early drops the slice it
    /// had planned).
    Slice(usize, u32, u32),
    Phase {
        group: usize,
        index: usize,
    },
    Kswapd,
    /// ksmd wakes up.
    Ksmd,
    /// khugepaged wakes up.
    Khugepaged,
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
pub(super) struct LatencyHist {
    pub(super) hist: Histogram<u64>,
    pub(super) pending: [(u64, u64); 4],
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
    pub(super) fn record_n(&mut self, value: u64, n: u64) {
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

    pub(super) fn flush(&mut self) {
        for (v, c) in std::mem::take(&mut self.pending) {
            if c > 0 {
                let _ = self.hist.record_n(v, c);
            }
        }
    }
}

/// A guest's counters at the end of the warm-up.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Baseline {
    pub(super) major: u64,
    pub(super) touches: f64,
    pub(super) compute_ns: f64,
    pub(super) stall_ns: f64,
}

/// What the engine keeps for each guest beyond its pages. In declared
/// order (`repr(C)`): what every slice reads and writes first, so that a
/// slice touches a few cache lines of it, not a dozen (a sampled slice
/// holds a handful of touches, and the pages' cache misses between two
/// slices of a guest evict its runner).
#[repr(C)]
pub(super) struct Runner {
    pub(super) sampler: Arc<Sampler>,
    /// Share of the guest's touches that land on simulated pages.
    pub(super) share: f64,
    pub(super) rate: f64,
    /// Expected simulated touches in a slice, and its Poisson law (kept
    /// here: it only changes with the workload).
    pub(super) lambda: f64,
    /// 1/λ (infinite when λ is 0: no touches, nothing is skipped then).
    pub(super) inv_lambda: f64,
    pub(super) touch_count: Option<TouchCount>,
    /// e^(−λ): the chance a slice holds no touch.
    pub(super) p_empty: f64,
    pub(super) write_threshold: u32,
    pub(super) small: Translation,
    pub(super) huge: Translation,
    /// The next slice ends a run of skipped empty slices.
    pub(super) nonempty_next: bool,
    /// Event mode: the stretch being skipped, the compute offset of the
    /// next slice's first event when it is known (with the event set's
    /// total then), and the token of the slice planned.
    pub(super) skip: Option<Skip>,
    pub(super) due: Option<(f64, f64)>,
    pub(super) token: u32,
    /// Real touches the simulated ones stand for: each slice's simulated
    /// touches over the share of touches its sampled pages get (SHARDS'
    /// adjustment: exact in expectation even when the sample holds more or
    /// less than R of the touches, say a Zipf head page or not).
    pub(super) touches_real: f64,
    pub(super) touches: u64,
    pub(super) hits: u64,
    pub(super) compute_ns: f64,
    pub(super) stall_ns: f64,
    /// Hits whose TLB misses are not drawn yet, per translation
    /// (4 KiB, huge), and the misses TLB flushes add to them: drawn
    /// together by `Engine::draw_deferred_misses` (a sum of binomials of
    /// one miss ratio is the binomial of the summed hits).
    pub(super) deferred_hits: [u64; 2],
    pub(super) deferred_flush: [f64; 2],
    /// Where the stall went, in ns of guest time.
    pub(super) stall_by: StallBreakdown,
    /// Sampled mode, THP guests: for each untouched 2 MiB region, how many
    /// of the guest's (real) touches it takes until one lands on a page of
    /// the region that is not simulated; largest first (popped from the
    /// end).
    pub(super) first_touches: Vec<(f64, u32)>,
    /// The counters when the warm-up ended (zero without one): latency,
    /// fault ratio and slowdown are measured from there.
    pub(super) warm: Baseline,
    /// The working set the guest plays now (bytes).
    pub(super) ws_bytes: u64,
    pub(super) guest_swap_faults: u64,
    pub(super) guest_ooms: u64,
    pub(super) thp_faults: u64,
    pub(super) hugetlb_faults: u64,
    pub(super) tlb_misses: u64,
    pub(super) boot_delay: u64,
    pub(super) started_at: Option<u64>,
    pub(super) ended_at: Option<u64>,
    pub(super) minor: u64,
    pub(super) major: u64,
    /// Latencies of faults, each as the real faults it stands for, and of
    /// simulated hits (see [`Engine::latency_hist`]).
    pub(super) hist: LatencyHist,
    pub(super) hit_hist: LatencyHist,
    /// Copy-on-write breaks of merged pages.
    pub(super) cow_breaks: u64,
    /// Most simulated pages merged at once.
    pub(super) shared_peak: u64,
    /// Bytes in the balloon now and at most; the working set a guest OOM
    /// left the guest; guest-side swap faults (simulated) and guest OOMs.
    pub(super) balloon_bytes: u64,
    pub(super) balloon_peak: u64,
    /// The balloon's target: bytes the guest is to keep (libvirt's current
    /// memory, or what a balloon policy asks); the balloon moves toward it
    /// at the driver's pace. `None`: no target yet (the guest keeps all).
    pub(super) balloon_target: Option<u64>,
    /// Who set the target, for the event log; when the balloon began moving
    /// to it, from what size, and the frames it freed on the way.
    pub(super) balloon_by: &'static str,
    pub(super) balloon_began: (SimTime, u64, u64),
    /// A [`Ev::BalloonMove`] is scheduled.
    pub(super) balloon_moving: bool,
    /// A [`Ev::FreeReport`] is scheduled.
    pub(super) report_pending: bool,
    /// Free-page reporting: free pages the guest has reported so far (real
    /// bytes given back to the host).
    pub(super) reported_bytes: u64,
    /// The guest's memory cgroup, when its group has memtune limits.
    pub(super) memcg: Option<Memcg>,
    pub(super) ws_cap: Option<u64>,
}

impl Runner {
    /// Real touches a second of compute brings on pages sampling does not
    /// simulate (0 when exact).
    pub(super) fn unsampled_rate(&self) -> f64 {
        (1.0 - self.share) * self.rate
    }
}

/// A guest's memory cgroup (cgroup v2, as libvirt sets it from
/// `<memtune>`), in simulated pages.
#[derive(Debug, Clone, Default)]
pub(super) struct Memcg {
    /// `memory.max` and `memory.high` (`u64::MAX`: none).
    pub(super) max: u64,
    pub(super) high: u64,
    /// QEMU's own memory, charged beside guest RAM.
    pub(super) overhead: u64,
    /// zswap's written-back pages still charged to the cgroup: each was
    /// read into a swap-cache page charged here (zswap_writeback_entry),
    /// and once written it is clean, unmapped and at the inactive list's
    /// tail (folio_rotate_reclaimable), so the cgroup's next reclaim frees
    /// it first, for the cost of a page scanned.
    pub(super) written_back: u64,
    /// The last reclaim found nothing to take: retrying is pointless.
    pub(super) stuck: bool,
    /// The most it held (`memory.peak`).
    pub(super) peak: u64,
    /// `memory.events`: times over `high`, at `max`, out of memory, and
    /// OOM kills (simulated events, scaled in the summary where they stand
    /// for several).
    pub(super) events: MemcgEvents,
    /// Reclaim of the cgroup's own pages (simulated pages).
    pub(super) pgscan: u64,
    pub(super) pgsteal: u64,
    pub(super) pgrefill: u64,
    /// Time the guest was throttled over `memory.high` (ns of guest time).
    pub(super) throttled_ns: f64,
}

/// What reclaim and THP faults did, in simulated pages and runs; the
/// summary's [`Vmstat`] scales them.
#[derive(Debug, Default)]
pub(super) struct ReclaimCounters {
    pub(super) pageoutrun: u64,
    pub(super) pgrefill: u64,
    pub(super) pgscan_kswapd: u64,
    pub(super) pgsteal_kswapd: u64,
    pub(super) kswapd_throttled: u64,
    pub(super) allocstall: u64,
    pub(super) pgscan_direct: u64,
    pub(super) pgsteal_direct: u64,
    pub(super) direct_throttled: u64,
    pub(super) thp_fault_fallback: u64,
    /// Ranges khugepaged collapsed into huge pages.
    pub(super) thp_collapse_alloc: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FaultKind {
    /// A write to a merged page (copy-on-write break).
    Cow,
    /// A page the guest keeps in its own swap (the balloon has its frame).
    GuestSwap,
    Minor,
    Thp,
    Hugetlb,
    Major,
}

/// A stretch a guest skips without playing its touches.
#[derive(Debug, Clone, Copy)]
pub(super) struct Skip {
    /// Wall time it began, its planned length (ns), and how much of it
    /// has been counted (a sample counts a skip under way).
    pub(super) from: super::queue::SimTime,
    pub(super) wall: f64,
    pub(super) counted: f64,
    /// One slice's wall time in it: a skip plays as slices would, each
    /// slice's touches counted from its start, so a change to the event
    /// set in a slice is seen from the next, as when touches are played.
    pub(super) step: f64,
    /// Compute time per wall time (exits and page walks take the rest).
    pub(super) compute_per_wall: f64,
    /// Hits on the pages tracked per compute ns meanwhile: r·(m − q), the
    /// guest's real touch rate r, the pages' share m of its touches and
    /// the event set's q it began with.
    pub(super) hit_rate: f64,
    /// The event set's total the skip's law stands on: when it began, or
    /// at the last change it went on through (see `Engine::wake_now`).
    pub(super) total: f64,
}
