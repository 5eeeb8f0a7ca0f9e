//! Engine speed. Each target of issue 3 is one benchmark here:
//!
//! - `exact/uniform-16g-on-8g-zram`: page-exact, a 16 GiB guest touching
//!   all of its memory uniformly on a host with 8 GiB of RAM and zram swap
//!   (target: 20 million simulated touches per second on one core);
//!   `-cli` the same run through the CLI with its outputs, against
//!   `bare-clock-16g-on-8g`, a bare CLOCK loop over the same pages and
//!   frames (issue 17: the CLI at 0.6 times the bare loop or better);
//! - `sampled/large-host-1h`: 512 GiB host, 128 guests of 8 GiB (2x
//!   overcommit), mixed patterns, NVMe swap, one simulated hour, in sampled
//!   mode (target: 10 s; the scenario is `benches/scenarios/large-host.yaml`);
//!   `-events` the same in event mode (issue 17: 1 s); `-ksm-balloon`
//!   with KSM (ksmtuned) and MoM's balloons, touch by touch and in event
//!   mode; `-busy-events` that with four times the touch rates, in event
//!   mode (issue 17: 2 s);
//! - `scaling/*`: cost against guests × simulated time, three points;
//! - `events/hotcold-16g-on-8g-zram/{exact,events}`: the event mode
//!   (issue 17) against page-exact on a 16 GiB guest whose touches fall
//!   99% on its hottest 30%, on 8 GiB with zram: one fault in about 200
//!   touches once warm. The event mode must beat page-exact here.
//!
//! Run with `cargo bench --bench engine`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use overcommit::engine::{Discard, RunConfig, run};
use overcommit::scenario::{Scenario, load_str};

fn scenario(yaml: &str) -> Scenario {
    load_str(yaml, "bench.yaml", "bench", &[]).expect("bench scenario is valid").scenario
}

/// 16 GiB of guest on 8 GiB of usable RAM: a uniform touch misses about
/// half the time once warm, so the loop is dominated by faults, CLOCK
/// sweeps and swap-ins — the hardest case for the page-state arrays.
const UNIFORM_16G: &str = "
name: uniform-16g
seed: 1
duration: 60s
host:
  ram: 9G
  reserved: 1G
  thp: never
  swap: { size: 16G, device: zram, ram_per_page: 0 }
guests:
  - name: big
    memory: 16G
    workload: { working_set: 100%, touch_rate: 5M/s, pattern: uniform, write: 0% }
";

/// The large host, from `benches/scenarios/large-host.yaml` (its 1/8-size
/// twin there is the page-exact reference for its fault ratios).
pub const LARGE_HOST: &str = include_str!("scenarios/large-host.yaml");

fn scaling_yaml(guests: u32, seconds: u32) -> String {
    format!(
        "
name: scaling
seed: 3
duration: {seconds}s
host: {{ ram: 64G, reserved: 1G, thp: never }}
guests:
  - name: g
    count: {guests}
    memory: 1G
    workload: {{ working_set: 512M, touch_rate: 1M/s, pattern: uniform }}
"
    )
}

fn exact(c: &mut Criterion) {
    let s = scenario(UNIFORM_16G);
    let cfg = RunConfig { sample_rate: Some(1.0), ..RunConfig::default() };
    let summary = run(&s, cfg.clone(), &mut Discard).unwrap();
    let touches: u64 = summary.guests.iter().map(|g| g.touches).sum();
    let misses: u64 = summary.guests.iter().map(|g| g.minor_faults + g.major_faults).sum();
    let frames = summary.guests.iter().map(|g| g.resident_peak_bytes).sum::<u64>() / 4096;
    let mut group = c.benchmark_group("exact");
    group.sample_size(10);
    group.throughput(Throughput::Elements(touches));
    group.bench_function("uniform-16g-on-8g-zram", |b| b.iter(|| run(&s, cfg.clone(), &mut Discard).unwrap()));
    // The same run as a user makes it, through the CLI with every output
    // written, against a bare CLOCK loop over the same pages and frames
    // making as many touches (its miss ratio, printed, comes out as the
    // run's): the issue asks the first to reach 0.6 times the second's
    // touches per second.
    let dir = tempfile::tempdir().expect("a scratch directory");
    let file = dir.path().join("uniform-16g.yaml");
    std::fs::write(&file, UNIFORM_16G).expect("the scenario");
    group.bench_function("uniform-16g-on-8g-zram-cli", |b| {
        b.iter(|| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_overcommit"))
                .arg("run")
                .arg(&file)
                .args(["--sample-rate", "1", "--quiet", "--out"])
                .arg(dir.path().join("out"))
                .output()
                .expect("the CLI runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        })
    });
    let pages = s.guests[0].memory.pages(4096);
    let mut bare_misses = 0;
    group.bench_function("bare-clock-16g-on-8g", |b| b.iter(|| bare_misses = bare_clock(pages, frames, touches, 1)));
    group.finish();
    eprintln!(
        "miss ratio: the run {:.4}, the bare CLOCK loop {:.4} ({touches} touches, {pages} pages, {frames} frames)",
        misses as f64 / touches as f64,
        bare_misses as f64 / touches as f64
    );
}

/// CLOCK as plainly as it is written: `touches` uniform touches over
/// `pages` pages held in `frames` frames, a resident and a referenced bit
/// a page, the hand taking the first page found unreferenced and clearing
/// the bits it passes. Returns the misses.
fn bare_clock(pages: u64, frames: u64, touches: u64, seed: u64) -> u64 {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut state = vec![0u8; pages as usize];
    let mut slots = vec![0u32; frames as usize];
    let (mut used, mut hand, mut misses) = (0usize, 0usize, 0u64);
    for _ in 0..touches {
        let p = ((u128::from(rng.next_u64()) * u128::from(pages)) >> 64) as usize;
        let st = state[p];
        if st & 1 != 0 {
            state[p] = st | 2;
            continue;
        }
        misses += 1;
        if used < slots.len() {
            slots[used] = p as u32;
            used += 1;
        } else {
            loop {
                let q = slots[hand] as usize;
                if state[q] & 2 != 0 {
                    state[q] &= !2;
                    hand = (hand + 1) % slots.len();
                } else {
                    state[q] = 0;
                    slots[hand] = p as u32;
                    hand = (hand + 1) % slots.len();
                    break;
                }
            }
        }
        state[p] = 3;
    }
    std::hint::black_box(&state);
    misses
}

fn sampled(c: &mut Criterion) {
    let s = scenario(LARGE_HOST);
    let mut group = c.benchmark_group("sampled");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(60));
    group.bench_function("large-host-1h", |b| b.iter(|| run(&s, RunConfig::default(), &mut Discard).unwrap()));
    // The same in event mode (`run --events`): faults, hand moves and
    // skips instead of touches.
    let events = RunConfig { mode: overcommit::engine::Mode::Events, ..RunConfig::default() };
    group.bench_function("large-host-1h-events", |b| b.iter(|| run(&s, events.clone(), &mut Discard).unwrap()));
    // The same host with KSM (ksmtuned driving it; guests of one image with
    // 30% shared and 5% zero pages) and MoM's balloons: the policies' cost.
    let with_policies = LARGE_HOST
        .replace(
            "  thp: madvise\n",
            "  thp: madvise\n  ksm: { run: true, policy: ksmtuned }\n  balloon: { policy: mom }\n",
        )
        .replace("touch_rate: 100k/s,", "touch_rate: 100k/s, shared: 30%, zero: 5%,")
        .replace("    memory: 8G\n", "    memory: 8G\n    image: ubuntu\n");
    assert!(with_policies.contains("ksmtuned") && with_policies.contains("image: ubuntu"), "the policy edits applied");
    let s = scenario(&with_policies);
    group.bench_function("large-host-1h-ksm-balloon", |b| {
        b.iter(|| run(&s, RunConfig::default(), &mut Discard).unwrap())
    });
    group.bench_function("large-host-1h-ksm-balloon-events", |b| {
        b.iter(|| {
            run(&s, RunConfig { mode: overcommit::engine::Mode::Events, ..RunConfig::default() }, &mut Discard).unwrap()
        })
    });
    // Issue 17's busy host: the same with four times the touch rates
    // (about 51 million touches a second in all), in event mode (target:
    // 2 s). Touch by touch it takes about 29 s here, too long to sample.
    let busy = with_policies.replace("touch_rate: 100k/s,", "touch_rate: 400k/s,");
    assert_eq!(busy.matches("touch_rate: 400k/s,").count(), 3, "the busy edit applied to every group");
    let s = scenario(&busy);
    group.bench_function("large-host-1h-busy-events", |b| {
        b.iter(|| {
            run(&s, RunConfig { mode: overcommit::engine::Mode::Events, ..RunConfig::default() }, &mut Discard).unwrap()
        })
    });
    group.finish();
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("scaling");
    group.sample_size(10);
    for (guests, seconds) in [(2, 10), (4, 10), (4, 20)] {
        let s = scenario(&scaling_yaml(guests, seconds));
        let cfg = RunConfig { sample_rate: Some(1.0), ..RunConfig::default() };
        group.throughput(Throughput::Elements(u64::from(guests * seconds)));
        group.bench_with_input(BenchmarkId::new("guest-seconds", guests * seconds), &s, |b, s| {
            b.iter(|| run(s, cfg.clone(), &mut Discard).unwrap())
        });
    }
    group.finish();
}

/// The uniform 16 GiB guest's host, its touches 99% on its hottest 30%.
fn hotcold_16g() -> String {
    UNIFORM_16G
        .replace("name: uniform-16g", "name: hotcold-16g")
        .replace("pattern: uniform", "pattern: \"hotcold(0.3, 0.99)\"")
}

fn events(c: &mut Criterion) {
    let s = scenario(&hotcold_16g());
    let mut group = c.benchmark_group("events/hotcold-16g-on-8g-zram");
    group.sample_size(10);
    for (name, events) in [("exact", false), ("events", true)] {
        let cfg = RunConfig {
            sample_rate: Some(1.0),
            mode: overcommit::engine::Mode::events_if(events),
            ..RunConfig::default()
        };
        group.bench_function(name, |b| b.iter(|| run(&s, cfg.clone(), &mut Discard).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, exact, sampled, scaling, events);
criterion_main!(benches);
