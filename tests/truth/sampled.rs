//! Sampled mode against page-exact mode. Spatial sampling (SHARDS,
//! Waldspurger et al., FAST 2015) keeps a share R of the pages by hash (the
//! smallest hashes of each 2 MiB region) and scales counts by 1/R; it
//! estimates miss ratios, so a sampled run's major-fault ratio per guest
//! group must match the page-exact run of the same scenario.

use overcommit::engine::{self, Discard, Mode, RunConfig, Summary};

use crate::support::scenario;

/// Two groups competing for a host: Zipf web guests and uniform batch
/// guests, 4 KiB pages only, working sets 1.4x RAM. (Pushed harder, two
/// identical batch guests stop sharing memory evenly — one keeps its pages,
/// the other thrashes, a real effect of reclaim feeding back on a stalled
/// guest — and which one wins is chance, exact or sampled; this test stays
/// where the groups settle evenly.)
const COMPETING: &str = "
name: competing
seed: 11
duration: 120s
sample_every: 10s
host:
  ram: 1G
  reserved: 0
  thp: never
  swap: { size: 2G, device: nvme }
guests:
  - name: web
    count: 2
    memory: 512M
    workload: { working_set: 384M, touch_rate: 200k/s, pattern: zipf(0.9), write: 0% }
  - name: batch
    count: 2
    memory: 512M
    workload: { working_set: 336M, touch_rate: 200k/s, pattern: uniform, write: 0% }
";

/// Major faults over touches, summed over a group's guests.
fn group_ratio(s: &Summary, group: &str) -> f64 {
    let gs = s.guests.iter().filter(|g| g.group == group);
    let (major, touches) = gs.fold((0u64, 0u64), |(m, t), g| (m + g.major_faults, t + g.touches));
    major as f64 / touches as f64
}

/// The same question with transparent huge pages (`thp: madvise`): uniform
/// batch guests and a Zipf web guest on THP, under pressure, so reclaim
/// splits THPs and pages them out. Here sampled mode also models the THP's
/// unsimulated pages (their first touches, whether they were touched since
/// reclaim's last look).
const COMPETING_THP: &str = "
name: competing-thp
seed: 7
duration: 2m
sample_every: 1m
host:
  ram: 12G
  reserved: 1G
  thp: madvise
  swap: { size: 8G, device: nvme }
guests:
  - name: batch
    count: 2
    memory: 8G
    workload: { working_set: 5G, touch_rate: 100k/s, pattern: uniform }
  - name: web
    count: 1
    memory: 8G
    workload: { working_set: 6G, touch_rate: 100k/s, pattern: zipf(0.9) }
";

#[test]
fn sampled_fault_ratios_match_page_exact() {
    check_against_exact(COMPETING, 1, false);
}

#[test]
fn sampled_fault_ratios_match_page_exact_with_thp() {
    // Here one run is not enough: the web guest's fault ratio moves by
    // about 6% from seed to seed page-exact, and by as much from one
    // sample of pages to another (a Zipf guest's hottest pages are few,
    // and a sample keeps some of them or not). The seed picks the sample,
    // so means over seeds are compared: over 8 (the count), two
    // means differ by about 3% by chance (measured: over 32 seeds, web
    // 0.1102 page-exact, 0.1126 at 1/8 touch by touch, 0.1137 in event
    // mode); over 4 they differed by 10% for one draw of the streams.
    // Measured again once the first touches of unsimulated pages came at
    // their own compute times (seeds 7-38): web 0.1099 page-exact, 0.1107
    // at 1/8, 0.1018 at 1/32 (-7.4%; it was 0.1010 before), 0.1100 at 1/32
    // in event mode; batch 0.1222, 0.1197, 0.1160, 0.1188. The 8 seeds
    // here give the web guest -10.0% at 1/32, touch by touch: at the
    // bound, by the draw of these seeds and a small bias of 1/32 itself.
    // Event mode's 0.1100 was partly a fault of its own: after a first
    // touch mid-slice it counted the next one's offset from that touch
    // as if from the slice's start. Counted from the touch, web 0.1065 at
    // 1/32 over seeds 7-54 (touch by touch 0.1022), and over this test's
    // 8 seeds -3.2% (batch -3.8%).
    check_against_exact(COMPETING_THP, 8, false);
}

#[test]
fn sampled_event_mode_matches_page_exact_with_thp() {
    // The event mode plays sampled runs too: the sampled pages' shares of
    // the real touches, the first touches of THP regions on pages not
    // simulated as their own events. Against the same page-exact means
    // (touch by touch, every page), over as many seeds.
    check_against_exact(COMPETING_THP, 8, true);
}

#[test]
fn sampled_thp_guests_fill_memory_as_fast_as_page_exact() {
    // The first 100 ms of `COMPETING_THP` on a host with room for all of
    // it: filling is bound by the THP faults' stalls (about four a 1 ms
    // slice), so how many THPs each guest faults in is the pace of its
    // first touches. At 1/32 a slice plays about three simulated touches
    // and most first touches land on pages not simulated; each must stall
    // the guest at the compute time its real touch comes. Played at the
    // next simulated touch's time instead, the guest was credited with
    // compute it spent stalled, and faulted 15-19% fewer THPs (measured:
    // the batch guest 708 MiB against 870 page-exact at 0.1 s, seed 7;
    // after the fix 868). Truth: page-exact play, over 4 seeds, within 2%.
    let s = scenario(&COMPETING_THP.replace("ram: 12G", "ram: 64G").replace("duration: 2m", "duration: 100ms"));
    let thps = |rate: f64, group: &str| -> f64 {
        (0..4u64)
            .map(|k| {
                let cfg = RunConfig { sample_rate: Some(rate), seed: Some(s.seed + k), ..Default::default() };
                let sum = engine::run(&s, cfg, &mut Discard).unwrap();
                sum.guests.iter().filter(|g| g.group == group).map(|g| g.thp_faults as f64).sum::<f64>()
            })
            .sum()
    };
    for group in ["web", "batch"] {
        let e = thps(1.0, group);
        assert!(e > 1000.0, "{group}: the fill must fault THPs in ({e})");
        for rate in [1.0 / 8.0, 1.0 / 32.0] {
            let m = thps(rate, group);
            let rel = m / e - 1.0;
            eprintln!("{group} THPs in 100 ms at R = {rate}: sampled {m} vs exact {e} ({:+.1}%)", rel * 100.0);
            assert!(rel.abs() < 0.02, "{group} at R = {rate}: {m} THPs against {e} page-exact");
        }
    }
}

#[test]
fn a_sampled_fill_touches_as_many_pages_and_regions_per_touch_as_the_law() {
    // A guest touching uniformly over W units (4 KiB pages, or 2 MiB
    // regions on THP) has, after N touches, touched W·(1 − e^(−N/W)) of
    // them on average: each touch lands on a given unit with probability
    // 1/W (the coupon collector's expectation). Its first moments on a
    // roomy host are such a fill, each new unit a fault that stalls it.
    // Sampled play must keep that law: its faults are 1/R real ones and
    // its touches the simulated ones plus the unsimulated pages' at their
    // rate, and where a slice is cut short (by a fault's stall, or on THP
    // by a first touch on a page not simulated) its few simulated touches
    // must fall where the stream's would. Spread evenly instead, a THP
    // fill took its regions 3% (1/32) to 10% (1/8) behind the law and a
    // 4 KiB fill at 1/8 made 4.6% more faults than the law; and drawing
    // the unsimulated first touches without the seed kept one draw's
    // error in every seed's (guests 0 to 3: 1.9% behind). Truth: the law,
    // over 16 seeds of 4 guests, within 1.5%, page-exact, and at 1/8 and
    // 1/32 by events and touch by touch. (Three standard errors are about
    // 1.1% on THP, where 100 ms make some 430 regions a guest, and on 4
    // KiB pages, played 400 ms for as many simulated faults at 1/32.)
    let yaml = |thp: &str, ms: u32| {
        format!(
            "
name: fill
seed: 1
duration: {ms}ms
host: {{ ram: 64G, reserved: 1G, thp: {thp}, swap: {{ size: 8G, device: nvme }} }}
guests:
  - name: b
    count: 4
    memory: 8G
    workload: {{ working_set: 5G, touch_rate: 100k/s, pattern: uniform }}
"
        )
    };
    for (thp, units, ms) in [("madvise", 2560.0, 100), ("never", 1_310_720.0, 400)] {
        let s = scenario(&yaml(thp, ms));
        let against_law = |rate: f64, mode: Mode| -> f64 {
            let (mut faults, mut law) = (0.0, 0.0);
            for seed in 1..=16u64 {
                let cfg = RunConfig { sample_rate: Some(rate), seed: Some(seed), mode, ..Default::default() };
                for g in &engine::run(&s, cfg, &mut Discard).unwrap().guests {
                    faults += if thp == "never" { g.minor_faults } else { g.thp_faults } as f64;
                    law += units * -(-(g.touches as f64) / units).exp_m1();
                }
            }
            faults / law
        };
        let mut cases = vec![(1.0, Mode::Touches)];
        for rate in [1.0 / 8.0, 1.0 / 32.0] {
            cases.extend([(rate, Mode::Events), (rate, Mode::Touches)]);
        }
        for (rate, mode) in cases {
            let ratio = against_law(rate, mode);
            eprintln!("thp {thp}, R = {rate}, {mode:?}: faults over the law {ratio:.4}");
            assert!((ratio - 1.0).abs() < 0.015, "thp {thp}, R = {rate}, {mode:?}: {ratio:.4} of the law");
        }
    }
}

/// Each group's major-fault ratio, page-exact and sampled at 1/8 and
/// 1/32 (touch by touch, or in event mode with `events`), as means over
/// `seeds` seeds (the scenario's and the next ones).
fn check_against_exact(yaml: &str, seeds: u64, events: bool) {
    let s = scenario(yaml);
    let mean = |rate: f64, group: &str| -> f64 {
        let runs = (0..seeds).map(|k| {
            let events = events && rate < 1.0;
            let cfg = RunConfig {
                sample_rate: Some(rate),
                seed: Some(s.seed + k),
                mode: Mode::events_if(events),
                ..Default::default()
            };
            group_ratio(&engine::run(&s, cfg, &mut Discard).unwrap(), group)
        });
        runs.sum::<f64>() / seeds as f64
    };
    for group in ["web", "batch"] {
        let e = mean(1.0, group);
        assert!(e > 0.01, "{group}: the scenario must fault (exact ratio {e})");
        for rate in [1.0 / 8.0, 1.0 / 32.0] {
            let m = mean(rate, group);
            // ±10% relative: SHARDS reports about 0.1% mean absolute error on
            // miss-ratio curves at R = 0.01 for large traces; these guests are
            // small (R = 1/32 keeps ~3 000 of a batch guest's 82 000 pages)
            // and compete through reclaim, so we allow more.
            let rel = (m - e) / e;
            eprintln!("{group} at R = {rate}: sampled {m:.4} vs exact {e:.4} ({:+.1}%)", rel * 100.0);
            assert!(rel.abs() < 0.10, "{group} at R = {rate}: sampled {m:.4} vs exact {e:.4} ({:+.1}%)", rel * 100.0);
        }
    }
}

/// Issue 3's accuracy target: the 512 GiB benchmark host, sampled at 1/512
/// (chosen automatically), against its 1/8-size twin run page-exact, group
/// by group within ±5% relative. The twin takes about three minutes, so
/// this test runs on request: `cargo test --release --test truth -- --ignored`.
///
/// It failed from the two-handed clock (b6c67eb) until a THP's pages held
/// a slot each in reclaim's table: batch's major faults per touch were
/// 0.0556 sampled against the twin's 0.0051, set by how THPs and 4 KiB
/// pages lay in the table at each rate (README, sampled mode). Now seed 7
/// gives (by events) web 0.0693 against 0.0696, db 0.0676 against 0.0671,
/// batch 0.0551 against 0.0567 (0.0695, 0.0675 and 0.0556 before sampled
/// slices drew their touches' times; db 0.0675 before reclaim's draws for
/// a sampled THP took the seed).
#[test]
#[ignore = "plays a 64 GiB host page-exact for a simulated hour (about three minutes)"]
fn the_large_host_sampled_matches_its_eighth_size_twin_page_exact() {
    let large = scenario(include_str!("../../benches/scenarios/large-host.yaml"));
    let eighth = scenario(include_str!("../../benches/scenarios/large-host-eighth.yaml"));
    let sampled = engine::run(&large, RunConfig::default(), &mut Discard).unwrap();
    assert_eq!(sampled.sample_rate, 1.0 / 512.0, "the large host samples at 1/512");
    let exact = engine::run(&eighth, RunConfig { sample_rate: Some(1.0), ..Default::default() }, &mut Discard).unwrap();
    for group in ["web", "db", "batch"] {
        let (e, m) = (group_ratio(&exact, group), group_ratio(&sampled, group));
        assert!(e > 0.01, "{group}: the twin must fault (ratio {e})");
        let rel = (m - e) / e;
        assert!(rel.abs() < 0.05, "{group}: sampled {m:.4} vs page-exact twin {e:.4} ({:+.1}%)", rel * 100.0);
    }
}

/// The same host swapping to one SATA SSD, which its 128 guests saturate
/// (a swap-in waits about 1.1 ms). At 1/512 a simulated swap-in would
/// stall its guest 560 ms at once, and the guests' competition for memory
/// moves: batch's major faults per touch (by events) are 0.0066 at 1/512,
/// 0.021 at 1/128 and 0.058 at 1/64, against 0.069 at 1/32 and 0.066 at
/// 1/16 (web 0.038, 0.060, 0.059 against 0.058 and 0.056; db 0.047 at
/// 1/64 against 0.040 and 0.041). The automatic rate holds a simulated
/// swap-in's stall to 64 ms (`engine::MAX_SAMPLED_STALL_NS`): 1/32 here.
/// Truth: the same host at 1/16, each group's major faults per touch
/// within 5% or 0.0005, as means over 4 seeds, played as `run` plays
/// them (by events, being sampled); 1/512 must miss some group's by a
/// fifth or more (the bound is needed). One seed is not enough: over
/// seeds 1 to 5 and 7, 1/32 reads 1.7% to 3.3% above 1/16 on the mean
/// (web 0.0573 against 0.0554, db 0.0421 against 0.0409, batch 0.0678
/// against 0.0667) with about 1% of spread a seed at 1/32 and 0.5% at
/// 1/16, and seed 7 alone read db 5.1% high. Seeds 7 to 10, the ones
/// played here, read web 0.0567 against 0.0553, db 0.0430 against 0.0411
/// (+4.6%, the closest to the bound) and batch 0.0665 against 0.0669;
/// 1/512 batch 0.0044. About three minutes on two cores: `cargo test
/// --release --test truth -- --ignored saturated`.
#[test]
#[ignore = "plays the 512 GiB host at 1/32 and 1/16 for a simulated hour, 4 seeds (about three minutes)"]
fn the_large_host_on_a_saturated_ssd_samples_no_coarser_than_its_swap_ins_allow() {
    let ssd = ["host.swap.device=ssd", "host.swap.bandwidth=500M/s", "host.swap.queue_depth=32"];
    let set: Vec<overcommit::scenario::Override> = ssd.iter().map(|o| o.parse().expect("PATH=VALUE")).collect();
    let text = include_str!("../../benches/scenarios/large-host.yaml");
    let s = overcommit::scenario::load_str(text, "large-host.yaml", "large-host", &set).expect("loads").scenario;
    const SEEDS: u64 = 4;
    // The runs at `rate` (None: the automatic one), one for each seed,
    // the seeds played side by side.
    let at = |rate: Option<f64>| -> Vec<Summary> {
        std::thread::scope(|scope| {
            let runs: Vec<_> = (0..SEEDS)
                .map(|k| {
                    let s = &s;
                    scope.spawn(move || {
                        let cfg = RunConfig {
                            sample_rate: rate,
                            seed: Some(s.seed + k),
                            mode: Mode::Auto,
                            ..Default::default()
                        };
                        engine::run(s, cfg, &mut Discard).unwrap()
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().expect("a run")).collect()
        })
    };
    let mean =
        |runs: &[Summary], group: &str| runs.iter().map(|r| group_ratio(r, group)).sum::<f64>() / runs.len() as f64;
    let auto = at(None);
    assert!(auto.iter().all(|r| r.sample_rate == 1.0 / 32.0), "the swap-ins' stall bounds the rate");
    let (fine, coarse) = (at(Some(1.0 / 16.0)), at(Some(1.0 / 512.0)));
    let mut worst_coarse = 0.0f64;
    for group in ["web", "db", "batch"] {
        let (e, m, c) = (mean(&fine, group), mean(&auto, group), mean(&coarse, group));
        eprintln!("{group}: 1/16 {e:.4}, auto (1/32) {m:.4}, 1/512 {c:.4}");
        assert!((m - e).abs() <= (0.05 * e).max(0.0005), "{group}: auto {m:.4} against 1/16 {e:.4}");
        worst_coarse = worst_coarse.max((c / e - 1.0).abs());
    }
    assert!(
        worst_coarse >= 0.2,
        "1/512 within {:.0}% of 1/16 everywhere: the bound would not be needed",
        worst_coarse * 100.0
    );
}
