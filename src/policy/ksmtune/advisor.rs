//! The kernel's scan-time advisor (mm/ksm.c, `advisor_mode` scan-time,
//! since Linux 6.7): after each full scan it scales `pages_to_scan` so a
//! full scan takes `advisor_target_scan_time`, within `advisor_max_cpu` of
//! ksmd's CPU (docs/sources/ksm-balloon-policies.md section 3.4).

use serde::Serialize;

use super::KsmTuner;
use crate::input::reader::{Decoder, Fields};
use crate::input::values::int;
use crate::policy::ksm::Knobs;

/// The advisor's fixed numbers (mm/ksm.c): `EWMA_WEIGHT 30`,
/// `KSM_ADVISOR_MIN_CPU 10`, `ksm_advisor_min_pages_to_scan = 500` (the
/// first value), `ksm_advisor_max_pages_to_scan = 30000`.
pub const ADVISOR_EWMA_WEIGHT: u64 = 30;
pub const ADVISOR_MIN_CPU: u64 = 10;
pub const ADVISOR_FIRST_PAGES: u32 = 500;
pub const ADVISOR_MAX_PAGES: u64 = 30_000;

/// The advisor's knobs under `host.ksm:` (`/sys/kernel/mm/ksm/advisor_*`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdvisorKnobs {
    /// The full-scan time it aims at (s).
    #[serde(rename = "advisor_target_scan_time")]
    pub target_scan_time: u32,
    /// The ksmd CPU share it allows (% of one core).
    #[serde(rename = "advisor_max_cpu")]
    pub max_cpu: u32,
}

impl Default for AdvisorKnobs {
    /// mm/ksm.c: ksm_advisor_target_scan_time = 200, ksm_advisor_max_cpu = 70.
    fn default() -> Self {
        AdvisorKnobs { target_scan_time: 200, max_cpu: 70 }
    }
}

impl AdvisorKnobs {
    pub const KEYS: &[&str] = &["advisor_target_scan_time", "advisor_max_cpu"];

    /// Read the knobs `f` gives (with the kernel's limits), the defaults for
    /// the rest.
    pub fn decode(d: &mut Decoder, f: &Fields) -> AdvisorKnobs {
        let k = AdvisorKnobs::default();
        AdvisorKnobs {
            target_scan_time: d
                .field(f, "advisor_target_scan_time", |n| {
                    let v = int::<u32>(n, "seconds")?;
                    if v < 1 {
                        Err("advisor_target_scan_time must be at least 1 s (the kernel's rule)".into())
                    } else {
                        Ok(v)
                    }
                })
                .unwrap_or(k.target_scan_time),
            max_cpu: d
                .field(f, "advisor_max_cpu", |n| {
                    let v = int::<u32>(n, "percent of one core")?;
                    if !(1..=100).contains(&v) {
                        Err(format!("advisor_max_cpu is {v}: it must be 1 to 100"))
                    } else {
                        Ok(v)
                    }
                })
                .unwrap_or(k.max_cpu),
        }
    }
}

/// The advisor's context: its knobs, the last full-scan time (s) and the
/// change factor.
#[derive(Debug, Clone)]
pub struct Advisor {
    knobs: AdvisorKnobs,
    scan_time: u64,
    change: u64,
}

impl Advisor {
    /// Setting advisor_mode to scan-time sets pages_to_scan to
    /// advisor_min_pages_to_scan.
    pub fn new(knobs: AdvisorKnobs, ksm: &mut Knobs) -> Advisor {
        ksm.pages_to_scan = ADVISOR_FIRST_PAGES;
        Advisor { knobs, scan_time: 0, change: 0 }
    }
}

impl KsmTuner for Advisor {
    /// The advisor runs when a full scan ends, from how long it took and how
    /// much CPU ksmd used meanwhile (mm/ksm.c, scan_time_advisor).
    fn after_full_scan(&mut self, knobs: &mut Knobs, scan_ms: u64, cpu_ms: u64) -> Option<String> {
        let (target_s, max_cpu) = (&u64::from(self.knobs.target_scan_time), &u64::from(self.knobs.max_cpu));
        let (last_scan, last_change) = (&mut self.scan_time, &mut self.change);
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
        Knobs::running()
    }

    #[test]
    fn advisor_scales_pages_by_scan_time_over_target() {
        // Kernel arithmetic by hand: pages_to_scan 500, a 400 s scan, ksmd at
        // 2% CPU (8 000 ms of 400 000 ms). factor = 200 x 100 / 400 = 50 ->
        // max(1, 50) = 50; change = 400 x 100 / 400 = 100, EWMA with 0:
        // 30; pages = 500 x 100 / 50 = 1000, x 30 / 100 = 300; per_page_cost
        // = 500 / 2 = 250; min(300, 250 x 70) = 300; max(300, 250 x 10) = 2500.
        let mut k = knobs();
        let mut t = Advisor::new(AdvisorKnobs::default(), &mut k);
        assert_eq!(k.pages_to_scan, 500);
        t.after_full_scan(&mut k, 400_000, 8_000);
        assert_eq!(k.pages_to_scan, 2500);
    }
}
