//! The profiler's own cost: profiling 16 guests of 8 GiB for 60 s at a
//! 1/64 content sample must take at most 5% of one core (3 s of CPU).
//! The guests are processes (the binary's own `touch-child`): 8 GiB each
//! mapped, asked for transparent huge pages as QEMU asks for guest RAM,
//! and only read, so every page maps the huge zero page (page tables
//! without memory: 16 × 8 GiB would not fit otherwise), touched 20,000
//! times a second. The figure criterion reports is the profiler's CPU
//! time per 60-s profile, not wall time.
//!
//! Run with `cargo bench --bench profile` (about 12 minutes: ten 60-s
//! profiles after a warm-up).

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use overcommit::profile::{Options, Target, profile};

struct Guests(Vec<Child>);

impl Drop for Guests {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sixteen_guests(c: &mut Criterion) {
    let mut guests = Guests(Vec::new());
    for i in 0..16 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_overcommit"))
            .args(["touch-child", "--mib", "8192", "--rate", "20000", "--read-only", "--thp", "--instance"])
            .arg(i.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("a touch child");
        let out = child.stdout.take().expect("piped");
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line).expect("its ready line");
        assert!(line.contains("ready"), "{line}");
        guests.0.push(child);
    }
    let targets: Vec<Target> = guests
        .0
        .iter()
        .map(|c| Target { name: format!("guest-{}", c.id()), pid: c.id(), backends: vec![8 << 30], libvirt: None })
        .collect();
    let opts = Options {
        duration: Duration::from_secs(60),
        intervals: ["1", "2", "5", "10", "30"].iter().map(|s| Duration::from_secs(s.parse().unwrap())).collect(),
        sample: 1.0 / 64.0,
        seed: 1,
        root: "/".into(),
        pagemap_scan: false,
    };
    let mut group = c.benchmark_group("profile");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(600));
    group.bench_function("cpu-per-60s/16-guests-8g-sample-1-64", |b| {
        b.iter_custom(|iters| {
            let mut cpu = Duration::ZERO;
            for _ in 0..iters {
                let r = profile(&targets, &opts).expect("profiles");
                assert_eq!(r.guests.len(), 16);
                cpu += Duration::from_secs_f64(r.cost.cpu_s);
            }
            cpu
        })
    });
    group.finish();
    drop(guests);
}

criterion_group!(benches, sixteen_guests);
criterion_main!(benches);
