//! A run stopped once a latency objective is missed for good: the miss
//! must be the whole run's. The truth here is the definition of a latency
//! quantile — over every touch of the run, to its end — so each stopped run
//! is checked against the same run played through.

use overcommit::engine::{self, Discard, LatencyBound, RunConfig};

use crate::support::scenario;

/// A guest whose working set grows past RAM at 20 s: from then on, about a
/// fifth of its touches fault to an SSD (~100 µs each), far above 50 µs.
fn yaml(grow_to: &str) -> String {
    format!(
        "
name: settled
seed: 3
duration: 60s
host:
  ram: 1G
  reserved: 0
  thp: never
  swap: {{ size: 2G, device: ssd }}
guests:
  - name: g
    count: 2
    memory: 768M
    workload:
      working_set: 256M
      touch_rate: 50k/s
      pattern: uniform
      phases:
        - {{ at: 20s, working_set: {grow_to} }}
"
    )
}

fn p99_bound() -> LatencyBound {
    LatencyBound { quantile: 0.99, above_ns: 50_000 }
}

#[test]
fn a_run_stops_only_once_its_p99_is_over_the_bound_whatever_follows() {
    for (grow_to, misses) in [("700M", true), ("300M", false)] {
        let s = scenario(&yaml(grow_to));
        let exact = RunConfig { sample_rate: Some(1.0), ..Default::default() };
        let whole = engine::run(&s, exact.clone(), &mut Discard).expect("plays");
        let cfg = RunConfig { stop_when_missed: vec![p99_bound()], ..exact };
        let stopped = engine::run(&s, cfg, &mut Discard).expect("plays");
        let worst = |sum: &engine::Summary| sum.guests.iter().map(|g| g.latency_ns.p99).max().unwrap_or(0);
        // The whole run decides: its worst p99 is over 50 µs or not.
        assert_eq!(worst(&whole) > 50_000, misses, "grow to {grow_to}: whole-run p99 {}", worst(&whole));
        if misses {
            // This one misses early and by far: it must stop, and only once
            // the touches so far already miss.
            let t = stopped.stopped_at_s.expect("a run that misses this early stops before its end");
            assert!(worst(&stopped) > 50_000, "stopped at {t} s with p99 {}", worst(&stopped));
            assert!(t > 20.0 && t < 60.0, "stopped at {t} s: only after the growth and before the end");
        } else {
            // A run that meets its bound plays to the end, unchanged.
            assert_eq!(stopped.stopped_at_s, None, "grow to {grow_to}: stopped, yet the whole run meets the bound");
            assert_eq!(
                serde_json::to_string(&stopped).unwrap(),
                serde_json::to_string(&whole).unwrap(),
                "grow to {grow_to}: a run that never stops must be the whole run"
            );
        }
    }
}
