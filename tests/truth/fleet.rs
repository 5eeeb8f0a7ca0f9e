//! Fleets against closed forms: on identical hosts with one guest type the
//! hosts needed are ⌈guests / what one host holds⌉, what one host holds
//! being the single-host `plan` answer for the same host and guests; and
//! surviving the loss of one host needs the guests to fit on the others,
//! (N − 1) × that answer ≥ guests.

use std::path::Path;

use overcommit::engine::{Mode, RunConfig};
use overcommit::fleet::evaluate::Play;
use overcommit::fleet::{file, search};
use overcommit::plan::capacity::{self as cap, Goal, Mix};

const HOST: &str = "{ ram: 4G, reserved: 0, swap: { size: 4G, device: ssd } }";
const WEB: &str =
    "{ name: web, count: 1, memory: 512M, workload: { working_set: 300M, touch_rate: 20k/s, pattern: uniform } }";

/// The most web guests one host holds at p99 ≤ 50 µs: `plan --grow web`
/// on the host alone, page-exact, one seed, swap as the host has it.
fn single_host_answer() -> u64 {
    let text = format!("name: one\nseed: 1\nduration: 5s\nhost: {HOST}\nguests:\n  - {WEB}\n");
    let inputs = overcommit::plan::Inputs {
        text,
        label: "one.yaml".into(),
        default_name: "one".into(),
        base: vec![],
        master_seed: None,
        sample_rate: Some(1.0),
        mode: Mode::Touches,
        costs: Default::default(),
        calibration: None,
    };
    let spec = cap::PlanSpec {
        inputs,
        slo: vec!["p99<=50us".parse().unwrap()],
        allow_oom_kills: false,
        goal: Goal::Grow("web".into()),
        mixes: vec![Mix::Swap],
        seeds: 1,
        quantile: 1.0,
        limit: 64,
    };
    let (_, results) = cap::plan(&spec, 2, &|| {}).unwrap();
    results[0].max_count.expect("one host holds some guests")
}

fn fleet(guests: u32, survive: u32) -> file::Fleet {
    let text = format!(
        "name: cell\nseed: 1\nduration: 5s\nhosts:\n  - {{ name: h, host: {HOST} }}\nguests:\n  - {}\n\
         objectives: [\"p99<=50us\"]\nplacement: first-fit\nsurvive: {survive}\n",
        WEB.replace("count: 1", &format!("count: {guests}"))
    );
    file::load_str(&text, "cell.yaml", "cell", Path::new(".")).unwrap()
}

fn play() -> Play {
    Play { run: RunConfig { sample_rate: Some(1.0), mode: Mode::Touches, ..Default::default() }, jobs: 2 }
}

#[test]
fn identical_hosts_need_the_guests_over_one_hosts_plan_answer() {
    let n = single_host_answer();
    assert!(n >= 2, "the host holds {n}");
    for guests in [3 * n as u32 - 1, 3 * n as u32, 3 * n as u32 + 1] {
        let a = search::search(&fleet(guests, 0), &play()).unwrap();
        assert!(a.none.is_none(), "{:?}", a.none);
        // ⌈G / n⌉.
        let expect = (u64::from(guests)).div_ceil(n) as u32;
        assert_eq!(a.hosts, [expect], "{guests} guests, {n} a host");
        // The ratio found packs exactly n a host: n × 512 MiB over 4 GiB.
        assert!((a.searched.unwrap() - n as f64 * 0.125).abs() < 1e-9, "{:?}", a.searched);
    }
}

#[test]
fn surviving_one_loss_needs_the_guests_to_fit_on_the_others() {
    let n = single_host_answer();
    for guests in [2 * n as u32, 2 * n as u32 + 1] {
        let a = search::search(&fleet(guests, 1), &play()).unwrap();
        if a.none.is_some() {
            eprintln!("{}", serde_json::to_string_pretty(&a).unwrap());
        }
        assert!(a.none.is_none(), "{:?}", a.none);
        // The least N with (N − 1) × n ≥ G: ⌈G / n⌉ + 1.
        let expect = u64::from(guests).div_ceil(n) as u32 + 1;
        assert_eq!(a.hosts, [expect], "{guests} guests, {n} a host");
        let f = a.outcome.failure.as_ref().expect("a loss was played");
        assert!(f.passes() && f.unplaced.is_empty(), "{f:?}");
    }
}
