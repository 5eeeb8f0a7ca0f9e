//! A calibration file's figures reach the run's latency.

use overcommit::engine::{self, Discard, RunConfig};
use overcommit::latency::{Costs, calibration};

use crate::support::scenario;

/// One guest first-touching 64 MiB of 4 KiB pages (THP off), no swap.
const SCENARIO: &str = "name: cal
seed: 5
duration: 4s
host: { ram: 1G, reserved: 0, thp: never }
guests:
  - name: g
    memory: 64M
    workload: { working_set: 100%, touch_rate: 200k/s, pattern: uniform }
";

#[test]
fn doubling_the_4k_fault_cost_shows_in_the_latency() {
    // The shipped default calibration, and the same with the host's 4 KiB
    // fault cost doubled (2 us to 4 us). Every first touch is a minor fault
    // and pays it, so the mean latency grows by minor faults × 2 us over
    // the touches (the run's own counts), and the slowest 1% of touches,
    // the faults (16 384 of some 800 000 touches: 2%), get dearer.
    let text = include_str!("../../calibrations/default.yaml");
    let doubled = text.replace("page_4k: { median: 2000,", "page_4k: { median: 4000,");
    assert_ne!(text, doubled, "the edit applied");
    let base = calibration::from_str(text, "default.yaml", Costs::default()).unwrap();
    let dear = calibration::from_str(&doubled, "doubled.yaml", Costs::default()).unwrap();
    assert_eq!(dear.fault_4k_ns - base.fault_4k_ns, 2000.0);
    let s = scenario(SCENARIO);
    let run = |costs: Costs| {
        let cfg = RunConfig { sample_rate: Some(1.0), costs, ..RunConfig::default() };
        engine::run(&s, cfg, &mut Discard).expect("the run plays").guests.remove(0)
    };
    let (a, b) = (run(base), run(dear));
    assert_eq!(a.minor_faults, 16_384, "64 MiB of 4 KiB pages, each faulted once");
    let expect = b.minor_faults as f64 * 2000.0 / b.touches as f64;
    let grew = b.latency_ns.mean - a.latency_ns.mean;
    // The histogram keeps 3 significant digits: a little slack.
    assert!((grew / expect - 1.0).abs() < 0.05, "mean grew {grew:.1} ns, expected {expect:.1}");
    assert!(b.latency_ns.p99 > a.latency_ns.p99, "p99 {} -> {}", a.latency_ns.p99, b.latency_ns.p99);
}
