//! The profiler's own cost: profiling 16 guests of 8 GiB for 60 s at a
//! 1/64 content sample must take at most 5% of one core (3 s of CPU).
//!
//! 16 × 8 GiB of real pages would not fit in this machine's memory, so
//! the cost is measured in two parts whose sum is the figure:
//!
//! - `16-guests-8g-thp`: the walks of guest RAM's page tables (clear_refs,
//!   smaps, pagemap). The guests are processes (the binary's own
//!   `touch-child`), 8 GiB each mapped, asked for transparent huge pages
//!   as QEMU asks for guest RAM, and only read, so every page maps the
//!   huge zero page: page tables of the right shape without memory. The
//!   profiler reads no page of theirs (a page mapped to the zero page
//!   holds no memory and is skipped).
//! - `16-guests-128m-every-page`: the reading and hashing of the sample.
//!   Guests of 128 MiB of real pages on transparent huge pages, profiled
//!   with every page in the sample: 32,768 pages a guest, as many as
//!   8 GiB at 1/64, read at the end, and the write sample before the
//!   passes and during them. Their page tables and pagemap add a little
//!   more walking, and the fits and content comparison run in both
//!   parts: the sum errs high.
//!
//! Each guest is touched 20,000 times a second. The figure criterion
//! reports is the profiler's CPU time per 60-s profile, not wall time.
//!
//! Run with `cargo bench --bench profile` (about 25 minutes: ten 60-s
//! profiles of each after a warm-up).

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

/// 16 touch-children with `args`, each told its instance.
fn spawn(args: &[&str]) -> Guests {
    let mut guests = Guests(Vec::new());
    for i in 0..16 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_overcommit"))
            .arg("touch-child")
            .args(args)
            .arg("--instance")
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
    guests
}

/// The profiler's CPU time per 60-s profile of `guests` (each `ram`
/// bytes of guest RAM) at `sample`, asserting it read at least
/// `min_pages_read` pages each time.
fn bench_profile(c: &mut Criterion, name: &str, guests: &Guests, ram: u64, sample: f64, min_pages_read: u64) {
    let targets: Vec<Target> = guests
        .0
        .iter()
        .map(|c| Target { name: format!("guest-{}", c.id()), pid: c.id(), backends: vec![ram], libvirt: None })
        .collect();
    let opts = Options {
        duration: Duration::from_secs(60),
        intervals: ["1", "2", "5", "10", "30"].iter().map(|s| Duration::from_secs(s.parse().unwrap())).collect(),
        sample,
        seed: 1,
        root: "/".into(),
        pagemap_scan: false,
    };
    let mut group = c.benchmark_group("profile");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(600));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut cpu = Duration::ZERO;
            for _ in 0..iters {
                let r = profile(&targets, &opts).expect("profiles");
                assert_eq!(r.guests.len(), 16);
                assert!(r.cost.pages_read >= min_pages_read, "{:?}", r.cost);
                cpu += Duration::from_secs_f64(r.cost.cpu_s);
            }
            cpu
        })
    });
    group.finish();
}

fn sixteen_guests(c: &mut Criterion) {
    let thp = spawn(&["--mib", "8192", "--rate", "20000", "--read-only", "--thp"]);
    bench_profile(c, "cpu-per-60s/16-guests-8g-thp", &thp, 8 << 30, 1.0 / 64.0, 0);
    drop(thp);
    // Every page read at the end, and the write sample's (2,048 a guest)
    // before the passes: at least 16 × (32,768 + 2,048).
    let real = spawn(&["--mib", "128", "--rate", "20000", "--thp"]);
    bench_profile(c, "cpu-per-60s/16-guests-128m-every-page", &real, 128 << 20, 1.0, 16 * (32_768 + 2_048));
    drop(real);
}

criterion_group!(benches, sixteen_guests);
criterion_main!(benches);
