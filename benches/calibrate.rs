//! Calibration speed (issue targets: `calibrate --quick` under 20 s, the
//! full default run under 2 minutes, on the project's 2-core machine).
//! These time the real measurements on this machine, so they need Linux.
//!
//! Run with `cargo bench --bench calibrate`.

use criterion::{Criterion, criterion_group, criterion_main};

#[cfg(target_os = "linux")]
fn calibrate(c: &mut Criterion) {
    use overcommit::calibrate::{Options, calibrate};
    let mut group = c.benchmark_group("calibrate");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(40));
    group.bench_function("quick", |b| b.iter(|| calibrate(&Options::quick()).expect("calibrates")));
    group.measurement_time(std::time::Duration::from_secs(120));
    group.bench_function("full", |b| b.iter(|| calibrate(&Options::default()).expect("calibrates")));
    group.finish();
}

#[cfg(not(target_os = "linux"))]
fn calibrate(_: &mut Criterion) {}

criterion_group!(benches, calibrate);
criterion_main!(benches);
