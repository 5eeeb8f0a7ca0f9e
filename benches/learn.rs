//! Lesson speed (issue 17: every lesson in `scenarios/learn/` in at most
//! 5 s): each lesson's runs played as `overcommit learn NAME` plays them
//! (its sweep, touch by touch at the rate the sweep chooses, on two
//! worker threads) and its explanation written from them. The command
//! adds its plots and report (tens of milliseconds) and process start.
//!
//! Run with `cargo bench --bench learn` (about four minutes).

use criterion::{Criterion, criterion_group, criterion_main};
use overcommit::learn::{LESSONS, Lang, run};

fn lessons(c: &mut Criterion) {
    let mut g = c.benchmark_group("learn");
    g.sample_size(10);
    for lesson in LESSONS {
        g.bench_function(lesson.name, |b| {
            b.iter(|| {
                let (table, scenario) = run(lesson, 2).expect("the lesson runs");
                let lines = (lesson.explain)(&table, &scenario, Lang::En);
                assert!(!lines.is_empty());
                lines
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lessons);
criterion_main!(benches);
