//! Sweep speed (issue 6): a 200-run sweep of the quickstart scenario with
//! `--jobs 1` and `--jobs 2`; the target is a speed-up of at least 1.7×
//! on this project's 2-core machine. Runs are shortened to 2 simulated
//! seconds so that one sample takes seconds, not minutes: each run still
//! sets up its twelve-odd 8 GiB guests (the part of a short run that
//! strains memory bandwidth most, so the speed-up is if anything
//! understated).
//!
//! Run with `cargo bench --bench sweep`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use overcommit::plan::sweep::{SweepSpec, execute, plan};
use overcommit::scenario::Override;
use overcommit::scenario::vary::Vary;

const QUICKSTART: &str = include_str!("../scenarios/quickstart.yaml");

fn spec() -> SweepSpec {
    SweepSpec {
        inputs: overcommit::plan::Inputs {
            text: QUICKSTART.to_string(),
            label: "scenarios/quickstart.yaml".into(),
            default_name: "quickstart".into(),
            base: vec![Override { path: "duration".into(), value: "2s".into() }],
            master_seed: None,
            sample_rate: None,
            mode: overcommit::engine::Mode::Touches,
            costs: Default::default(),
            calibration: None,
        },
        // 20 densities × 10 seeds = 200 runs.
        vary: vec![Vary { path: "guests.web.count".into(), values: (1..=20).map(|n| n.to_string()).collect() }],
        seeds: 10,
        slo: vec![],
    }
}

fn sweep(c: &mut Criterion) {
    let spec = spec();
    let mut g = c.benchmark_group("sweep/quickstart-200-runs");
    g.sample_size(10);
    for jobs in [1usize, 2] {
        g.bench_with_input(BenchmarkId::new("jobs", jobs), &jobs, |b, &jobs| {
            b.iter(|| {
                let (meta, runs) = plan(&spec).expect("the quickstart sweep plans");
                assert_eq!(runs.len(), 200);
                execute(&spec, meta, runs, jobs, &|_| {}).expect("the quickstart sweep runs")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, sweep);
criterion_main!(benches);
