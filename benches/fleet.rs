//! Fleet planning speed (issue 20): `overcommit fleet
//! benches/scenarios/fleet-1000.yaml --jobs 2`, 1,000 hosts of three types
//! and 40,000 guests of six types, one simulated hour per host, one
//! placement (the file's: sharing) and the host types' own policies; the
//! target is at most 60 s on this project's 2-core machine. It times the
//! whole question as the command answers it: the ratio search, each
//! distinct host played once, then the loss of the most loaded host.
//!
//! Run with `cargo bench --bench fleet`.

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use overcommit::fleet::answers::{answer, questions};
use overcommit::fleet::evaluate::Play;
use overcommit::fleet::file;

fn fleet(c: &mut Criterion) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scenarios/fleet-1000.yaml");
    let f = file::load(&path).expect("the benchmark fleet loads");
    let asked = questions(std::slice::from_ref(&f.placement), &[None]);
    // As the command plays each host: the engine's choice of mode, sampled
    // within the plan's touch budget.
    let run = overcommit::engine::RunConfig { mode: overcommit::engine::Mode::Auto, ..Default::default() };
    let play = Play { run, jobs: 2 };
    let mut g = c.benchmark_group("fleet");
    // One run a sample (about 16 s each here), not criterion's rising
    // counts.
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.measurement_time(std::time::Duration::from_secs(170));
    g.bench_function("1000-hosts-40000-guests-1h-jobs-2", |b| {
        b.iter(|| {
            let entries = answer(&f, &asked, None, &play).expect("the fleet plays");
            assert!(entries[0].answer.none.is_none(), "the benchmark fleet has an answer");
            entries
        })
    });
    g.finish();
}

criterion_group!(benches, fleet);
criterion_main!(benches);
