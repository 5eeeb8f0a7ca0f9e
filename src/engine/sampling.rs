//! Spatial sampling: the rate a run plays at, which pages it simulates,
//! and counts of simulated things as the real counts they stand for.

use super::Engine;
use crate::model::page::mix64;
use crate::scenario::Scenario;

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
    let (pages, touches) = (configured_pages(s), peak_touches(s));
    let mut r = 1.0;
    while (touches * r > touch_budget || pages * r > AUTO_PAGE_BUDGET) && r > 1.0 / 512.0 {
        r /= 2.0;
    }
    r
}

/// The 4 KiB pages the scenario's guests configure.
pub fn configured_pages(s: &Scenario) -> f64 {
    s.guests.iter().map(|g| g.memory.pages(4096) as f64 * f64::from(g.count)).sum()
}

/// The touches the scenario's guests make over the run at each group's
/// peak rate (its phases' included): a bound on a touch-by-touch run's
/// work.
pub fn peak_touches(s: &Scenario) -> f64 {
    s.guests
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
        .sum()
}

/// Longest slice sampled mode stretches to. Measured: 10 ms slices cut
/// the 512 GiB benchmark from 39 s to 26 s but moved group fault ratios by
/// over 10% against page-exact runs (guests then take memory from each
/// other in 10 ms bursts), so sampled slices stay at 1 ms and sparse
/// guests skip empty slices instead.
pub const MAX_SAMPLED_SLICE_NS: u64 = 1_000_000;

/// A sampling salt per image (FNV-1a of its name): groups of one image
/// sample the same addresses.
pub(super) fn image_salt(image: &str) -> u64 {
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
pub(super) fn sampled_pages(real_pages: u64, rate: f64, salt: u64) -> Vec<u64> {
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

impl Engine<'_> {
    pub fn sample_rate(&self) -> f64 {
        self.rate
    }

    /// A count of simulated things as the real count it stands for.
    pub(super) fn scaled(&self, sim: u64) -> u64 {
        (sim as f64 * self.scale).round() as u64
    }

    pub(super) fn bytes(&self, sim_pages: u64) -> u64 {
        (sim_pages as f64 * 4096.0 * self.scale).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backing, Guest};

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
