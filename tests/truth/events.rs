//! The event mode against page-exact: the same scenarios over 8 seeds.
//!
//! Truth: page-exact play, which draws every touch. The event mode draws
//! only the touches that change state (faults), the hits between them as
//! a count, and each page's accessed bit when reclaim looks at it; if it
//! is exact in distribution, as its derivation says
//! (`overcommit::model::eventset`), the two agree in the mean over seeds
//! up to the seeds' own spread. The bounds: fault ratios within
//! ±1% relative on the mean over 8 seeds, p99 within one histogram bucket.

use crate::support::scenario;
use overcommit::engine::{self, Discard, RunConfig};

/// The uniform truth test's 64 MiB host (16,032 pages left to a guest),
/// with a guest of W = 2L pages under `pattern`.
fn yaml(pattern: &str, seed: u64) -> String {
    format!(
        "name: events
seed: {seed}
duration: 5s
host:
  ram: 64M
  reserved: 0
  thp: never
  hugepages: {{ count: 0 }}
  ksm: {{ run: false }}
  swap: {{ size: 512M, read_latency: 1us, write_latency: 1us, bandwidth: 64G/s, queue_depth: 64 }}
guests:
  - name: u
    memory: 128256K
    balloon: false
    workload:
      working_set: 100%
      touch_rate: 1M/s
      pattern: {pattern}
      write: 10%
"
    )
}

struct Mean {
    major_ratio: f64,
    minor: f64,
    touches: f64,
    p99: f64,
}

fn mean_over_seeds(pattern: &str, events: bool) -> Mean {
    let mut m = Mean { major_ratio: 0.0, minor: 0.0, touches: 0.0, p99: 0.0 };
    let seeds = 8;
    for seed in 1..=seeds {
        let s = scenario(&yaml(pattern, seed));
        if events {
            assert!(engine::event_mode_blockers(&s, 1.0).is_empty(), "{:?}", engine::event_mode_blockers(&s, 1.0));
        }
        let cfg = RunConfig { sample_rate: Some(1.0), events, ..Default::default() };
        let g = &engine::run(&s, cfg, &mut Discard).expect("plays").guests[0];
        m.major_ratio += g.major_faults as f64 / g.touches as f64 / seeds as f64;
        m.minor += g.minor_faults as f64 / seeds as f64;
        m.touches += g.touches as f64 / seeds as f64;
        m.p99 += g.latency_ns.p99 as f64 / seeds as f64;
    }
    m
}

fn compare(pattern: &str) {
    let exact = mean_over_seeds(pattern, false);
    let ev = mean_over_seeds(pattern, true);
    eprintln!(
        "{pattern}: major-fault ratio {:.5} page-exact, {:.5} events ({:+.2}%); touches {:.0} / {:.0}; \
         minor {:.0} / {:.0}; p99 {:.0} / {:.0} ns",
        exact.major_ratio,
        ev.major_ratio,
        100.0 * (ev.major_ratio / exact.major_ratio - 1.0),
        exact.touches,
        ev.touches,
        exact.minor,
        ev.minor,
        exact.p99,
        ev.p99
    );
    assert!((ev.major_ratio / exact.major_ratio - 1.0).abs() <= 0.01, "{pattern}");
    assert!((ev.touches / exact.touches - 1.0).abs() <= 0.01, "{pattern}: touches");
}

#[test]
fn uniform_faults_as_page_exact() {
    compare("uniform");
}

#[test]
fn hot_cold_faults_as_page_exact() {
    compare("hotcold(0.2, 0.9)");
}

#[test]
fn zipf_faults_as_page_exact() {
    compare("zipf(0.9)");
}
