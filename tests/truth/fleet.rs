//! Fleets against closed forms: on identical hosts with one guest type the
//! hosts needed are ⌈guests / what one host holds⌉, what one host holds
//! being the single-host `plan` answer for the same host and guests; and
//! surviving the loss of one host needs the guests to fit on the others,
//! (N − 1) × that answer ≥ guests; and N hosts given admit N × that
//! answer of more guests than they can hold, (N − 1) × it when they must
//! survive a loss.

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
        page_budget: None,
    };
    let (_, results) = cap::plan(&spec, 2, &|| {}).unwrap();
    results[0].max_count.expect("one host holds some guests")
}

fn fleet(guests: u32, survive: u32) -> file::Fleet {
    fleet_on(None, guests, survive)
}

/// The same on `hosts` hosts given (`None`: as many as the guests need).
fn fleet_on(hosts: Option<u32>, guests: u32, survive: u32) -> file::Fleet {
    let count = hosts.map_or_else(String::new, |n| format!("count: {n}, "));
    let text = format!(
        "name: cell\nseed: 1\nduration: 5s\nhosts:\n  - {{ name: h, {count}host: {HOST} }}\nguests:\n  - {}\n\
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

#[test]
fn counted_hosts_admit_their_plan_answer_each() {
    // Three hosts given and more guests than they hold: the guests
    // admitted are 3 × n (each host holds what `plan` says one holds), the
    // rest left out, and the ratio packs exactly n a host.
    let n = single_host_answer();
    let guests = 4 * n as u32;
    let a = search::search(&fleet_on(Some(3), guests, 0), &play()).unwrap();
    assert!(a.none.is_none(), "{:?}", a.none);
    assert_eq!(u64::from(a.outcome.admitted()), 3 * n, "{n} a host");
    assert_eq!(u64::from(a.outcome.unplaced["web"]), u64::from(guests) - 3 * n);
    assert!((a.searched.unwrap() - n as f64 * 0.125).abs() < 1e-9, "{:?}", a.searched);
}

#[test]
fn counted_hosts_surviving_a_loss_admit_what_the_others_can_hold() {
    // Three hosts given, 4 × n guests asked for and one loss to survive:
    // hosts filled to the limit leave a lost host's guests nowhere, so
    // the answer is the most guests whose loss still fits: first fit puts
    // n, n and K − 2n on the hosts, host 0 is lost, and its n guests need
    // n − (K − 2n) ≥ n of room on host 2: K = (N − 1) × n = 2 × n, the
    // closed form of surviving one loss on N identical hosts.
    let n = single_host_answer();
    let guests = 4 * n as u32;
    let a = search::search(&fleet_on(Some(3), guests, 1), &play()).unwrap();
    assert!(a.none.is_none(), "{:?}", a.none);
    assert_eq!(u64::from(a.outcome.admitted()), 2 * n, "{n} a host; {:?}", a.note);
    let loss = a.outcome.failure.as_ref().expect("a loss was played");
    assert!(loss.passes(), "{loss:?}");
}

/// A fleet of small hosts with KSM on and `count` guests of each of two
/// images, every guest `memory` MiB with `shared` of its pages identical
/// across its image. Each image's guests come as two guest types, listed
/// img0, img1, img0, img1, so that first fit, taking them as listed, mixes
/// the images on its hosts.
fn ksm_fleet(placement: &str, counts: [u32; 2], memory: [u32; 2], shared: u32) -> file::Fleet {
    let guest = |i: usize, half: u32, part: &str| {
        format!(
            "  - {{ name: g{i}{part}, count: {half}, memory: {}M, image: img{i}, workload: {{ working_set: 70%, touch_rate: 20k/s, shared: {shared}% }} }}\n",
            memory[i]
        )
    };
    let mut guests = String::new();
    for (part, first) in [("a", true), ("b", false)] {
        for (i, &n) in counts.iter().enumerate() {
            let half = if first { n / 2 } else { n - n / 2 };
            guests.push_str(&guest(i, half, part));
        }
    }
    let text = format!(
        "name: k\nseed: 1\nduration: 20s\nhosts:\n  - {{ name: h, host: {{ ram: 4G, reserved: 0, swap: {{ size: 4G, device: ssd }}, \
         ksm: {{ run: true, pages_to_scan: 5000, sleep_millisecs: 20 }} }} }}\nguests:\n{guests}\
         objectives: [\"p99<=50us\"]\nplacement: {placement}\n"
    );
    file::load_str(&text, "k.yaml", "k", Path::new(".")).unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 6, failure_persistence: None, ..Default::default() })]

    /// Packing an image's guests together lets KSM merge what they share
    /// (Memory Buddies' premise): with at least 30% of an image's pages
    /// shared, sharing-aware packing never needs more hosts than first
    /// fit, which mixes the images wherever they land.
    ///
    /// Grouping alone can pack worse than first fit: with 8 guests of
    /// 512 MiB of one image and 7 of 1 GiB of the other, image by image
    /// left a 1 GiB guest for a third host that first fit, mixing them,
    /// did not need (this test found it; the same counts are in
    /// `placement`'s unit tests). So the policy keeps first fit's
    /// placement where grouping leaves a guest without room.
    #[test]
    fn sharing_aware_packing_never_needs_more_hosts_than_first_fit(
        a in 2u32..10, b in 2u32..10,
        sizes in proptest::sample::select(vec![[512u32, 512], [512, 1024], [1024, 512]]),
        shared in 30u32..70,
    ) {
        let hosts = |p: &str| {
            let ans = search::search(&ksm_fleet(p, [a, b], sizes, shared), &play()).unwrap();
            proptest::prop_assert!(ans.none.is_none(), "{p}: {:?}", ans.none);
            Ok(ans.hosts[0])
        };
        let (sharing, first) = (hosts("sharing")?, hosts("first-fit")?);
        proptest::prop_assert!(sharing <= first, "sharing {sharing} hosts, first fit {first} ({a} + {b} guests, {sizes:?} MiB, {shared}% shared)");
    }
}

#[test]
fn the_case_that_found_grouping_packs_worse_holds() {
    // The counterexample the property test found (see it): 8 guests of
    // 512 MiB and 7 of 1 GiB, 30% shared.
    let hosts = |p: &str| search::search(&ksm_fleet(p, [8, 7], [512, 1024], 30), &play()).unwrap().hosts[0];
    let (sharing, first) = (hosts("sharing"), hosts("first-fit"));
    assert!(sharing <= first, "sharing {sharing} hosts, first fit {first}");
}
