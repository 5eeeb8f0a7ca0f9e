//! What drives KSM's knobs while guests run: the scenario's values
//! (`static`), Red Hat's ksmtuned script, oVirt MoM's KSM policy, or the
//! kernel's scan-time advisor. Each follows its published source, quoted in
//! docs/sources/ksm-balloon-policies.md (sections 1.3, 2 and 3.4), with
//! its integer arithmetic.

use std::collections::VecDeque;

use crate::policy::balloon::push_capped;
use crate::policy::ksm::Knobs;
use crate::scenario::KsmPolicy;

/// ksmtuned's constants (Fedora qemu packaging, ksmtuned):
/// `KSM_NPAGES_BOOST=300`, `KSM_NPAGES_DECAY=-50`, `KSM_NPAGES_MIN=64`,
/// `KSM_NPAGES_MAX=1250`, `KSM_SLEEP_MSEC=10` ("millisecond sleep between
/// ksm scans for 16Gb server"), `KSM_THRES_COEF=20` (%),
/// `KSM_THRES_CONST=2048` (KiB). MoM's 03-ksm.policy uses the same
/// numbers (`ksm_pages_boost 300`, `ksm_pages_decay -50`, `ksm_npages_min
/// 64`, `ksm_npages_max 1250`, `ksm_sleep_ms_baseline 10`,
/// `ksm_free_percent 0.20`).
pub const NPAGES_BOOST: i64 = 300;
pub const NPAGES_DECAY: i64 = -50;
pub const NPAGES_MIN: i64 = 64;
pub const NPAGES_MAX: i64 = 1250;
pub const SLEEP_MSEC_16G: u64 = 10;
pub const THRES_COEF_PERCENT: u64 = 20;
pub const THRES_CONST_KIB: u64 = 2048;

/// The advisor's fixed numbers (mm/ksm.c): `EWMA_WEIGHT 30`,
/// `KSM_ADVISOR_MIN_CPU 10`, `ksm_advisor_min_pages_to_scan = 500` (the
/// first value), `ksm_advisor_max_pages_to_scan = 30000`.
pub const ADVISOR_EWMA_WEIGHT: u64 = 30;
pub const ADVISOR_MIN_CPU: u64 = 10;
pub const ADVISOR_FIRST_PAGES: u32 = 500;
pub const ADVISOR_MAX_PAGES: u64 = 30_000;

/// What a tuner sees of the host at a look, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct HostView {
    /// MemTotal.
    pub total_bytes: u64,
    /// MemFree + Buffers + Cached: free memory (the model has no page
    /// cache).
    pub free_bytes: u64,
    /// Sum of the qemu processes' RSS (ksmtuned's `ps -o rsz`).
    pub qemu_rss_bytes: u64,
    /// Sum of their VSZ, about their guest RAM (MoM's `ksm_shareable`).
    pub qemu_vsz_bytes: u64,
}

#[derive(Debug, Clone)]
pub enum Tuner {
    Static,
    /// ksmtuned's `npages`, which starts at 0.
    Ksmtuned {
        npages: i64,
    },
    /// MoM's recent free-memory samples.
    Mom {
        free_kib: VecDeque<u64>,
    },
    /// The advisor's context: last full-scan time (s) and change factor.
    Advisor {
        scan_time: u64,
        change: u64,
        target_s: u64,
        max_cpu: u64,
    },
}

impl Tuner {
    /// The tuner for `policy`; sets the knobs it starts from.
    pub fn new(policy: KsmPolicy, target_s: u32, max_cpu: u32, knobs: &mut Knobs) -> Tuner {
        match policy {
            KsmPolicy::Static => Tuner::Static,
            KsmPolicy::Ksmtuned => Tuner::Ksmtuned { npages: 0 },
            KsmPolicy::Mom => Tuner::Mom { free_kib: VecDeque::new() },
            KsmPolicy::Advisor => {
                // Setting advisor_mode to scan-time sets pages_to_scan to
                // advisor_min_pages_to_scan.
                knobs.pages_to_scan = ADVISOR_FIRST_PAGES;
                Tuner::Advisor { scan_time: 0, change: 0, target_s: u64::from(target_s), max_cpu: u64::from(max_cpu) }
            }
        }
    }

    /// Looks every monitor interval (ksmtuned, MoM): set the knobs from the
    /// host's state. Returns why, in words, when a knob changed.
    pub fn look(&mut self, knobs: &mut Knobs, host: HostView) -> Option<String> {
        let before = *knobs;
        let total = host.total_bytes / 1024;
        let free_now = host.free_bytes / 1024;
        // What each looks at; the rule that follows is the same in both
        // (MoM's 03-ksm.policy is a port of ksmtuned).
        let (who, free, thres, committed, base) = match self {
            Tuner::Static | Tuner::Advisor { .. } => return None,
            // thres=$[total * KSM_THRES_COEF / 100], raised to KSM_THRES_CONST;
            // committed: the qemu processes' RSS (ps -o rsz).
            Tuner::Ksmtuned { npages } => (
                "ksmtuned: free",
                free_now,
                (total * THRES_COEF_PERCENT / 100).max(THRES_CONST_KIB),
                ("committed", host.qemu_rss_bytes / 1024),
                *npages,
            ),
            // ksm_pressure_threshold = mem_available * ksm_free_percent;
            // ksm_shareable: the qemu processes' VSZ; free memory averaged;
            // npages from the kernel's current pages_to_scan.
            Tuner::Mom { free_kib } => {
                // MoM averages its last samples (sample-history-length).
                push_capped(free_kib, free_now);
                let free = free_kib.iter().sum::<u64>() / free_kib.len() as u64;
                let thres = total * THRES_COEF_PERCENT / 100;
                (
                    "MoM: mean free",
                    free,
                    thres,
                    ("shareable", host.qemu_vsz_bytes / 1024),
                    i64::from(knobs.pages_to_scan),
                )
            }
        };
        let (what, committed) = committed;
        let why = if committed + thres < total && free > thres {
            knobs.run = false;
            format!("{who} {free} KiB > threshold {thres} KiB and {what} {committed} KiB + threshold < RAM: stop")
        } else {
            // sleep=$[KSM_SLEEP_MSEC * 16 * 1024 * 1024 / total], at least 10
            // (MoM: (max 10 (/ (* ksm_sleep_ms_baseline 16777216) mem_available))).
            let sleep = (SLEEP_MSEC_16G * 16 * 1024 * 1024 / total.max(1)).max(10);
            let (delta, verb) = if free < thres { (NPAGES_BOOST, "boost") } else { (NPAGES_DECAY, "decay") };
            let npages = (base + delta).clamp(NPAGES_MIN, NPAGES_MAX);
            if let Tuner::Ksmtuned { npages: n } = self {
                *n = npages;
            }
            knobs.pages_to_scan = npages as u32;
            knobs.sleep_millisecs = sleep as u32;
            knobs.run = true;
            format!("{who} {free} KiB vs threshold {thres} KiB: {verb}")
        };
        (*knobs != before).then_some(why)
    }

    /// The advisor runs when a full scan ends, from how long it took and how
    /// much CPU ksmd used meanwhile (mm/ksm.c, scan_time_advisor).
    pub fn after_full_scan(&mut self, knobs: &mut Knobs, scan_ms: u64, cpu_ms: u64) -> Option<String> {
        let Tuner::Advisor { scan_time: last_scan, change: last_change, target_s, max_cpu } = self else {
            return None;
        };
        let before = knobs.pages_to_scan;
        let scan_time = (scan_ms / 1000).max(1);
        let cpu_percent = (cpu_ms * 100 / (scan_time * 1000)).max(1);
        let last = if *last_scan == 0 { scan_time } else { *last_scan };
        let factor = (*target_s * 100 / scan_time).max(1);
        let change = (scan_time * 100 / last).max(1);
        let change = ((100 - ADVISOR_EWMA_WEIGHT) * *last_change + ADVISOR_EWMA_WEIGHT * change) / 100;
        let pts = u64::from(knobs.pages_to_scan);
        let mut pages = pts * 100 / factor;
        pages = pages * change / 100;
        let per_page_cost = (pts / cpu_percent).max(1);
        pages = pages.min(per_page_cost * *max_cpu);
        pages = pages.max(per_page_cost * ADVISOR_MIN_CPU);
        pages = pages.min(ADVISOR_MAX_PAGES);
        *last_change = change;
        *last_scan = scan_time;
        knobs.pages_to_scan = pages as u32;
        (knobs.pages_to_scan != before).then(|| {
            format!(
                "advisor: full scan took {scan_time} s (target {target_s} s), ksmd at {cpu_percent}% CPU: pages_to_scan {before} -> {pages}"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knobs() -> Knobs {
        Knobs { run: true, pages_to_scan: 100, sleep_millisecs: 20, use_zero_pages: false, max_page_sharing: 256 }
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn ksmtuned_stops_when_there_is_room_and_boosts_under_pressure() {
        // 64 GiB host: thres = 64 GiB x 20% = 13 421 772 KiB; sleep = 10 x
        // 16 GiB / 64 GiB = 2.5 -> 10 ms (the floor).
        let mut k = knobs();
        let mut t = Tuner::new(KsmPolicy::Ksmtuned, 200, 70, &mut k);
        let roomy =
            HostView { total_bytes: 64 * GIB, free_bytes: 40 * GIB, qemu_rss_bytes: 20 * GIB, qemu_vsz_bytes: 0 };
        assert!(t.look(&mut k, roomy).is_some());
        assert!(!k.run);
        // Free 8 GiB < 12.8 GiB: boost from npages = 0 to 300.
        let tight = HostView { free_bytes: 8 * GIB, qemu_rss_bytes: 56 * GIB, ..roomy };
        t.look(&mut k, tight);
        assert_eq!((k.run, k.pages_to_scan, k.sleep_millisecs), (true, 300, 10));
        for _ in 0..10 {
            t.look(&mut k, tight);
        }
        assert_eq!(k.pages_to_scan, 1250, "clamped to KSM_NPAGES_MAX");
        // Committed high but free above the threshold: decay by 50.
        let committed = HostView { free_bytes: 20 * GIB, qemu_rss_bytes: 60 * GIB, ..roomy };
        t.look(&mut k, committed);
        assert_eq!(k.pages_to_scan, 1200);
    }

    #[test]
    fn ksmtuned_sleep_scales_with_ram_below_16_gib() {
        // 4 GiB: sleep = 10 x 16 777 216 / 4 194 304 = 40 ms.
        let mut k = knobs();
        let mut t = Tuner::new(KsmPolicy::Ksmtuned, 200, 70, &mut k);
        let h = HostView { total_bytes: 4 * GIB, free_bytes: GIB / 2, qemu_rss_bytes: 3 * GIB, qemu_vsz_bytes: 0 };
        t.look(&mut k, h);
        assert_eq!(k.sleep_millisecs, 40);
    }

    #[test]
    fn mom_starts_from_the_kernels_pages_to_scan_and_averages_free_memory() {
        // pages_to_scan 100 + 300 = 400 (MoM adds to the current value).
        let mut k = knobs();
        let mut t = Tuner::new(KsmPolicy::Mom, 200, 70, &mut k);
        let tight =
            HostView { total_bytes: 64 * GIB, free_bytes: 4 * GIB, qemu_rss_bytes: 0, qemu_vsz_bytes: 96 * GIB };
        t.look(&mut k, tight);
        assert_eq!(k.pages_to_scan, 400);
        // One sample with 30 GiB free after nine at 4 GiB: the mean (6.6
        // GiB) is still under 12.8 GiB, so it boosts again.
        for _ in 0..8 {
            t.look(&mut k, tight);
        }
        t.look(&mut k, HostView { free_bytes: 30 * GIB, ..tight });
        assert_eq!(k.pages_to_scan, 1250);
        assert!(k.run);
    }

    #[test]
    fn advisor_scales_pages_by_scan_time_over_target() {
        // Kernel arithmetic by hand: pages_to_scan 500, a 400 s scan, ksmd at
        // 2% CPU (8 000 ms of 400 000 ms). factor = 200 x 100 / 400 = 50 ->
        // max(1, 50) = 50; change = 400 x 100 / 400 = 100, EWMA with 0:
        // 30; pages = 500 x 100 / 50 = 1000, x 30 / 100 = 300; per_page_cost
        // = 500 / 2 = 250; min(300, 250 x 70) = 300; max(300, 250 x 10) = 2500.
        let mut k = knobs();
        let mut t = Tuner::new(KsmPolicy::Advisor, 200, 70, &mut k);
        assert_eq!(k.pages_to_scan, 500);
        t.after_full_scan(&mut k, 400_000, 8_000);
        assert_eq!(k.pages_to_scan, 2500);
    }
}
