//! Planner speed (issue 7): `overcommit plan scenarios/quickstart.yaml
//! --slo 'p99<=50us' --grow web` with the five swap/balloon/KSM mixes, on
//! two worker threads; the target is under 30 s on this project's 2-core
//! machine. The planner samples the quickstart's runs at 1/8
//! (`capacity::PLAN_TOUCH_BUDGET`), as the command does by default.
//!
//! Run with `cargo bench --bench plan`.

use criterion::{Criterion, criterion_group, criterion_main};
use overcommit::plan::capacity::{Goal, Mix, PlanSpec, plan, planning_rate};

const QUICKSTART: &str = include_str!("../scenarios/quickstart.yaml");

fn spec() -> PlanSpec {
    let mut spec = PlanSpec {
        inputs: overcommit::plan::Inputs {
            text: QUICKSTART.to_string(),
            label: "scenarios/quickstart.yaml".into(),
            default_name: "quickstart".into(),
            base: vec![],
            master_seed: None,
            sample_rate: None,
            mode: overcommit::engine::Mode::Touches,
            costs: Default::default(),
            calibration: None,
        },
        slo: vec!["p99<=50us".parse().expect("a valid objective")],
        allow_oom_kills: false,
        goal: Goal::Grow("web".into()),
        mixes: vec![Mix::None, Mix::Swap, Mix::SwapBalloon, Mix::SwapKsm, Mix::SwapBalloonKsm],
        seeds: 1,
        quantile: 1.0,
        limit: 4096,
        page_budget: Some(overcommit::plan::capacity::PLAN_PAGE_BUDGET),
    };
    spec.inputs.sample_rate = Some(planning_rate(&spec).expect("the quickstart scenario loads"));
    spec
}

fn planner(c: &mut Criterion) {
    let spec = spec();
    let mut g = c.benchmark_group("plan");
    g.sample_size(10);
    g.bench_function("quickstart-5-mixes-jobs-2", |b| {
        b.iter(|| {
            let (_, results) = plan(&spec, 2, &|| {}).expect("the quickstart plan runs");
            assert_eq!(results.len(), 5);
            results
        })
    });
    g.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
