//! Zipf touches under the engine's reclaim against Che's approximation.
//!
//! Truth: Che, Tung and Wang (IEEE JSAC 2002): an LRU cache of C items
//! under independent references, item i touched with probability p_i,
//! holds item i with probability 1 − e^(−p_i·T), where T solves
//! Σ (1 − e^(−p_i·T)) = C; its miss ratio is Σ p_i·e^(−p_i·T). Computed
//! here over every page individually (one class per page, weight i^−0.9 for
//! rank i — the engine's page rank is its index) with
//! `latency::che::miss_ratio_classes`. The engine's reclaim is CLOCK, which
//! approximates LRU; we hold it to Che within ±10 % relative.
//!
//! C is the frames the guest can hold: the host's ordinary frames minus the
//! free memory kswapd keeps between the low and high watermarks
//! (`support::available_frames`).

use crate::support::{available_frames, frames, run_recorded, scenario, steady_window};
use overcommit::latency::che::miss_ratio_classes;
use overcommit::model::Status;

/// Che's LRU miss ratio for Zipf(`s`) over `n` pages with a cache of `c`,
/// one class per page.
fn che_zipf(s: f64, n: u64, c: f64) -> f64 {
    let classes: Vec<(f64, f64)> = (1..=n).map(|i| (1.0, (i as f64).powf(-s))).collect();
    miss_ratio_classes(&classes, c)
}

/// Our own Che solver, independent of the crate's: the same fixed point by
/// plain bisection on T, to make sure the truth is not borrowed from the
/// code under test alone.
fn che_zipf_own(s: f64, n: u64, c: f64) -> f64 {
    let w: Vec<f64> = (1..=n).map(|i| (i as f64).powf(-s)).collect();
    let total: f64 = w.iter().sum();
    let p: Vec<f64> = w.iter().map(|x| x / total).collect();
    let occupancy = |t: f64| p.iter().map(|&q| 1.0 - (-q * t).exp()).sum::<f64>();
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while occupancy(hi) < c {
        hi *= 2.0;
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if occupancy(mid) < c {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = 0.5 * (lo + hi);
    p.iter().map(|&q| q * (-q * t).exp()).sum()
}

/// Run a 256 MiB guest (65 536 pages) touching all of its memory with
/// Zipf(0.9) on a host of `ram_mib`, and compare its steady-state miss
/// ratio with Che's for C = `c_expected` pages.
fn zipf_case(ram_mib: u64, c_expected: f64) {
    let yaml = format!(
        "name: zipf-che
seed: 11
duration: 6s
sample_every: 250ms
host:
  ram: {ram_mib}M
  reserved: 0
  thp: never
  hugepages: {{ count: 0 }}
  ksm: {{ run: false }}
  swap: {{ size: 512M, read_latency: 1us, write_latency: 1us, bandwidth: 64G/s, queue_depth: 64 }}
guests:
  - name: z
    memory: 256M
    balloon: false
    workload:
      working_set: 100%
      touch_rate: 1M/s
      pattern: zipf(0.9)
      write: 0%
"
    );
    let s = scenario(&yaml);
    assert_eq!(frames(&s), ram_mib * 256);
    let c = available_frames(&s);
    assert_eq!(c, c_expected);
    let n = 65_536;
    let expected = che_zipf(0.9, n, c);
    let own = che_zipf_own(0.9, n, c);
    assert!((expected - own).abs() < 1e-6, "two Che solvers disagree: {expected} vs {own}");

    let (summary, rec) = run_recorded(&s);
    assert_eq!(summary.guests[0].state, Status::Running);
    // Warm-up: 1.5 M touches (23 per page on average). Pages rarer than
    // about 1 in 1.5 M may still be untouched after it; their first touches
    // are LRU misses too (compulsory ones), so the window counts them with
    // the swap-ins — they are a fraction of a percent of the touches.
    let win = steady_window(&rec.samples, 0, 1_500_000, 1_000_000);
    let measured = win.miss_ratio();
    eprintln!(
        "zipf(0.9) W = {n} pages, C = {c}: measured miss ratio {measured:.4} (major {:.4}, first touches {:.5}) over {} touches; Che {expected:.4} ({:+.1} %)",
        win.major_ratio(),
        win.minor as f64 / win.touches as f64,
        win.touches,
        (measured / expected - 1.0) * 100.0
    );
    assert!(
        (measured / expected - 1.0).abs() <= 0.10,
        "steady-state miss ratio {measured:.4} is not within 10 % of Che's {expected:.4}"
    );
}

#[test]
fn zipf_0_9_with_half_the_working_set_resident_follows_che() {
    // 128 MiB host: 32 768 frames; kernel watermarks for 128 MiB are
    // min = √(16 × 131 072) KiB = 1448.2 KiB, low = min × 5/4 = 1810.2 KiB
    // (453 frames), high = min × 6/4 = 2172.2 KiB (544 frames), so
    // C = 32 768 − (453 + 544) / 2 = 32 269.5 pages, about W / 2.
    zipf_case(128, 32_269.5);
}

#[test]
fn zipf_0_9_with_a_quarter_of_the_working_set_resident_follows_che() {
    // 64 MiB host: 16 384 frames, low 320, high 384: C = 16 032 pages,
    // about W / 4.
    zipf_case(64, 16_032.0);
}
