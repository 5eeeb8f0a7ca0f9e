//! Spatial sampling: what a run is expected to cost, the rate it plays at,
//! which pages it simulates,
//! and counts of simulated things as the real counts they stand for.

use super::Engine;
use crate::model::page::mix64;
use crate::scenario::Scenario;

/// Sampled mode starts above this many simulated page touches in a run
/// (a sampled run plays 10 to 20 million touches a second: under ten
/// seconds).
pub const AUTO_TOUCH_BUDGET: f64 = 1.5e8;

/// ... or above this many simulated pages (a byte of state each).
pub const AUTO_PAGE_BUDGET: f64 = (1u64 << 28) as f64;

/// The longest a simulated swap-in may stall its guest. At rate R one
/// simulated swap-in stands for 1/R real ones: it books their device time
/// at once and stalls its guest for all of them at once, where the real
/// guest spreads them among its touches. Where the device queues, a
/// coarse enough rate moves the guests' competition for memory. Measured
/// on the 512 GiB benchmark host (`benches/scenarios/large-host.yaml`, by
/// events), major faults per touch:
///
/// | swap device | a swap-in | rate: a simulated one's stall | web, db, batch |
/// |---|---|---|---|
/// | NVMe (its own) | 80 µs | 1/512: 41 ms | 0.0693, 0.0676, 0.0551 (its page-exact twin's 0.0696, 0.0671, 0.0567) |
/// | SATA SSD, saturated | 1.1 ms | 1/16: 17 ms | 0.0550, 0.0413, 0.0663 |
/// | | | 1/32: 35 ms | 0.0565, 0.0434, 0.0665 |
/// | | | 1/64: 70 ms | 0.0578, 0.0500, 0.0606 |
/// | | | 1/128: 140 ms | 0.0614, 0.0515, 0.0211 |
/// | | | 1/512: 560 ms | 0.0389, 0.0402, 0.0039 |
/// | 2 ms, never queueing | 2.0 ms | 1/16: 32 ms | 0.0929, 0.0340, 0.0484 |
/// | | | 1/32: 64 ms | 0.0967, 0.0332, 0.0480 |
/// | | | 1/64: 128 ms | 0.0934, 0.0331, 0.0452 |
/// | | | 1/512: 1 s | 0.0928, 0.0322, 0.0360 |
///
/// (Seed 7, since reclaim's draws for a sampled THP took the seed.) On
/// the SSD the rates agree within about 5% up to 64 ms (db 5.1% high at
/// 1/32 with this seed; over seeds 7 to 10 4.6%, and 1.7% to 3.3% for
/// each group over seeds 1 to 5 and 7, `tests/truth/sampled.rs`) and move
/// past it: db by a fifth at 70 ms, batch threefold at 140 ms and
/// seventeenfold at 560 ms.
/// That is the queue, not THPs: with `thp: never` web reads 0.0369,
/// 0.0609 and 0.0689 at 1/512, 1/128 and 1/32. Spreading a simulated
/// swap-in's stall over its guest's following compute (tried, not kept)
/// left 1/512 as far off (batch 0.0039 against 0.0035 lumped, build
/// before) and doubled the guests' waits at 1/32, where the rates agreed:
/// a guest that goes on before its stall is served issues reads its
/// closed loop would not let it, and the queue grows. On the 2 ms device
/// that never queues the rates agree within 7% up to 128 ms. (That
/// device is 16 GiB/s and 4,096 deep: its queue never fills, but its 2 ms
/// reads sit at blk-wbt's 2 ms latency target for a non-rotational
/// device, so page-outs are throttled (7,994 throttled kswapd runs in the
/// hour at 1/32). 65,536 deep, wbt's depth never binds, none are, and the
/// host thrashes otherwise: web 0.167, db 0.037, batch 0.0045.) (Before
/// sampled slices drew their touches' times, README, sampled mode, it
/// moved batch from 0.0050 at 1/16 to 0.0131 at 1/32: not the stall.)
/// The host's 1/8-size twin on that device (`large-host-eighth.yaml`,
/// seeds 1 to 16; a thrashing host, web slowed about 40-fold) gives web
/// 0.1800 ± 0.0085, db 0.0358 ± 0.0014 and batch 0.0019 ± 0.0003
/// page-exact (batch's seeds alone 0.0008-0.0050); at 1/8, 1/16 and 1/32
/// web 0.184, 0.173 and 0.178 and db 0.0355, 0.0381 and 0.0363, all within
/// 0.8 standard errors of the difference, but batch 0.0036, 0.0049 and
/// 0.0149 (2.2, 2.6 and 2.0): most seeds as page-exact's, a few tipped
/// into thrashing (up to 0.099 at 1/32). With `thp: never` the twin holds
/// there at 1/32 over 8 seeds (web 0.0458, db 0.0198, batch 0.1646
/// against 0.0456, 0.0198, 0.1646). So the bound stays: it holds the
/// saturated SSD, a finer one would send the NVMe host, which agrees with
/// its twin at 1/512 (41 ms), to 1/128, and on a slow device a group that
/// seldom faults can read high even within it.
pub const MAX_SAMPLED_STALL_NS: f64 = 64e6;

/// The sampling rate `auto` picks: 1 (page-exact) when the run fits the
/// budgets above, else the largest power of two that does, down to 1/512
/// (so a 2 MiB region keeps a page); then finer while a simulated swap-in
/// would stall its guest past [`MAX_SAMPLED_STALL_NS`] (the run's fidelity
/// before its speed), the swap-in's time being [`expected_swapin_ns`]'s,
/// but never past [`AUTO_PAGE_BUDGET`] (its memory).
pub fn auto_sample_rate(s: &Scenario) -> f64 {
    let mut r = sample_rate_within(s, AUTO_TOUCH_BUDGET);
    let (swapin, pages) = (expected_swapin_ns(s), configured_pages(s));
    while r < 1.0 && swapin / r > MAX_SAMPLED_STALL_NS && pages * r * 2.0 <= AUTO_PAGE_BUDGET {
        r *= 2.0;
    }
    r
}

/// The largest power-of-two sampling rate, down to 1/512, at which a run
/// of `s` plays at most `touch_budget` simulated touches and stays within
/// [`AUTO_PAGE_BUDGET`]. A plan plays its points at such a rate, chosen
/// on the scenario as given (each point past its own page budget coarser,
/// [`rate_within_pages`]), and a fleet each host at its own; the swap-ins'
/// stall does not refine it, since a plan's guests grow (a plan of 4
/// guests on a disk, grown at 1/2 to 1 867, took 17.1 GB on two threads):
/// [`stall_warning`] tells a plan when it is coarse.
pub fn sample_rate_within(s: &Scenario, touch_budget: f64) -> f64 {
    let touches = peak_touches(s);
    let mut r = 1.0;
    while touches * r > touch_budget && r > 1.0 / 512.0 {
        r /= 2.0;
    }
    rate_within_pages(s, r, AUTO_PAGE_BUDGET)
}

/// `rate`, or the largest power of two below it (down to 1/512) at which
/// `s` simulates at most `page_budget` pages: a run's memory grows with
/// its simulated pages (7 bytes a page touch by touch here, 20 by events,
/// and more with many guests), whatever its touches.
pub fn rate_within_pages(s: &Scenario, rate: f64, page_budget: f64) -> f64 {
    let pages = configured_pages(s);
    let mut r = rate;
    while pages * r > page_budget && r > 1.0 / 512.0 {
        r /= 2.0;
    }
    r
}

/// Why [`auto_sample_rate`] plays `s` finer than its budgets would, when
/// it does: a line for the user, who waits longer for it. Still sampled,
/// it says that the bound is not tight enough for every device (see
/// [`MAX_SAMPLED_STALL_NS`]: on a 2 ms device the automatic 1/16 read a
/// seldom-faulting group's major faults 2.6 times page-exact's) and how
/// to check.
pub fn stall_bound_note(s: &Scenario) -> Option<String> {
    let (budget, chosen) = (sample_rate_within(s, AUTO_TOUCH_BUDGET), auto_sample_rate(s));
    (chosen > budget).then(|| {
        let check = if chosen < 1.0 {
            "; even so, on a device this slow a group that seldom faults can read high: --sample-rate 1 checks it"
        } else {
            ""
        };
        format!(
            "{} rather than {}: {}{check}",
            rate_words(chosen),
            rate_words(budget).trim_start_matches("sampled "),
            stall_words(s, budget)
        )
    })
}

/// A line for a plan playing `s` at `rate` (one rate for all of its runs),
/// when a simulated swap-in would stall its guest past
/// [`MAX_SAMPLED_STALL_NS`] there.
pub fn stall_warning(s: &Scenario, rate: f64) -> Option<String> {
    (rate < 1.0 && expected_swapin_ns(s) / rate > MAX_SAMPLED_STALL_NS).then(|| {
        format!("{}: {}; --sample-rate plays it finer, at more time and memory", rate_words(rate), stall_words(s, rate))
    })
}

fn rate_words(r: f64) -> String {
    if r >= 1.0 { "page-exact".to_string() } else { format!("sampled at 1/{}", (1.0 / r).round()) }
}

/// Why rate `r` is too coarse for `s`'s swap-ins.
fn stall_words(s: &Scenario, r: f64) -> String {
    let swapin = expected_swapin_ns(s);
    format!(
        "a swap-in is expected to take {:.2} ms on this swap device, so at 1/{} a simulated one would stall its \
         guest {:.0} ms, over the {:.0} ms past which coarser rates move the guests' competition for memory \
         (README, sampled mode)",
        swapin / 1e6,
        (1.0 / r).round(),
        swapin / r / 1e6,
        MAX_SAMPLED_STALL_NS / 1e6
    )
}

/// The 4 KiB pages the scenario's guests configure.
pub fn configured_pages(s: &Scenario) -> f64 {
    s.guests.iter().map(|g| g.memory.pages(4096) as f64 * f64::from(g.count)).sum()
}

/// The touches the scenario's guests make over the run at each group's
/// peak rate (its phases' included): a bound on a touch-by-touch run's
/// work.
pub fn peak_touches(s: &Scenario) -> f64 {
    s.guests.iter().map(|g| peak_rate(g) * f64::from(g.count) * s.duration.as_secs_f64()).sum()
}

/// A guest's touches a second at its group's peak (its phases' included).
pub(super) fn peak_rate(g: &crate::scenario::GuestGroup) -> f64 {
    let w = &g.workload;
    w.phases.iter().filter_map(|p| p.touch_rate).fold(w.touch_rate.per_sec(), |a, r| a.max(r.per_sec()))
}

/// Longest slice sampled mode stretches to. Measured: 10 ms slices cut
/// the 512 GiB benchmark from 39 s to 26 s but moved group fault ratios by
/// over 10% against page-exact runs (guests then take memory from each
/// other in 10 ms bursts), so sampled slices stay at 1 ms and sparse
/// guests skip empty slices instead.
pub const MAX_SAMPLED_SLICE_NS: u64 = 1_000_000;

/// A fault's work in the touch loop, in touches: a touch that hits is a
/// page-state load and store, a fault also a reclaim step, a swap slot, a
/// device queue and a histogram record. Measured on this project's machine
/// (`learn mix`, 16 guests, swap only): 12 ns a touch, about 190 ns a fault.
const FAULT_TOUCHES: f64 = 16.0;

/// A touch-by-touch run's expected cost in touches' work, to order a
/// sweep's runs longest first (it decides nothing in a run's result). The
/// guests' touches at their peak rates, each group's slowed by its faults
/// (a closed loop: at f faults a touch, each stalling d, a guest at rate r
/// makes r / (1 + r·f·d) touches a second), a fault counted as
/// `FAULT_TOUCHES` (16), and the run's pages. f is
/// [`expected_fault_share`](super::mode::expected_fault_share), d the swap
/// device's read latency plus the kernel's swap-in overhead.
pub fn expected_work(s: &Scenario) -> f64 {
    let f = super::mode::expected_fault_share(s);
    let d = s.host.swap.as_ref().map_or(0.0, |w| w.figures().read_latency.nanos() as f64)
        + crate::latency::Costs::default().swapin_overhead_ns;
    let touches: f64 = s
        .guests
        .iter()
        .map(|g| {
            let r = peak_rate(g);
            let played = r / (1.0 + r * f * d / 1e9);
            played * f64::from(g.count) * s.duration.as_secs_f64()
        })
        .sum();
    touches * (1.0 + FAULT_TOUCHES * f) + configured_pages(s)
}

/// A swap-in's expected time on the host's swap device, in ns (0 without
/// swap): its read latency, plus the queue ahead of it where the guests'
/// expected faults keep the device busy. The faults are Che's share of the
/// guests' touches once memory is full ([`expected_fault_share`](super::mode::expected_fault_share)'s), each
/// with a page-out, each taking the device for QueuedDevice's occupancy
/// (4 KiB at its bandwidth, or its latency over its queue depth; a block
/// device merges 32 page-outs into one write). Below saturation the queue
/// is the M/D/1 mean ρ·s / (2(1 − ρ)); at or past it every other guest's
/// read is ahead (a vCPU waits for one swap-in at a time).
pub fn expected_swapin_ns(s: &Scenario) -> f64 {
    use crate::policy::resolve::Backend;
    let Some(swap) = s.host.swap.as_ref() else { return 0.0 };
    let f = swap.figures();
    let (read, write) = (f.read_latency.nanos() as f64, f.write_latency.nanos() as f64);
    let per_page = 4096.0 * 1e9 / f.bandwidth_bytes_per_s.max(1) as f64;
    let depth = f64::from(f.queue_depth.max(1));
    let merge = if matches!(swap.backend, Backend::Device(_)) { 32.0 } else { 1.0 };
    let (read_occupancy, write_occupancy) = (per_page.max(read / depth), per_page.max(write / (depth * merge)));
    let rate: f64 = s.guests.iter().map(|g| peak_rate(g) * f64::from(g.count)).sum();
    let others = (s.guests.iter().map(|g| f64::from(g.count)).sum::<f64>() - 1.0).max(0.0);
    let rho = super::mode::steady_miss_share(s) * rate * (read_occupancy + write_occupancy) / 1e9;
    let full = others * read_occupancy;
    let queue = if rho >= 1.0 { full } else { (rho * read_occupancy / (2.0 * (1.0 - rho))).min(full) };
    read + queue
}

/// A sampling salt per image (FNV-1a of its name): groups of one image
/// sample the same addresses.
pub(super) fn image_salt(image: &str) -> u64 {
    image.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
}

/// Real page indices kept by spatial sampling at `rate`, by hash as in
/// SHARDS (Waldspurger et al., FAST 2015), stratified by 2 MiB block: each
/// full block of [`STRATUM_PAGES`] pages keeps exactly its `rate` share of
/// pages, the ones with the smallest hashes (a partial last block keeps
/// those whose hash falls below rate × 2^64). Every page is still kept
/// with probability `rate`, so counts scaled by 1/R stay unbiased; what
/// stratifying removes is the spread of a block's count. A THP is a
/// block, and whether one fits is a threshold test on free memory (kernel
/// watermarks a few THPs apart): with Binomial(512, R) simulated pages a
/// THP's size in frames varies by ±1/√(512·R), which decides whether the
/// last THP of a kswapd round fits, and so how long THP faults then fall
/// back to 4 KiB pages. With exactly 512·R pages (an integer for the
/// rates allowed) a THP is always 512 real pages, as when exact, and every
/// region is simulated.
pub(super) fn sampled_pages(real_pages: u64, rate: f64, salt: u64) -> Vec<u64> {
    let threshold = (rate * 18_446_744_073_709_551_616.0) as u64;
    let salt = mix64(salt ^ 0x005A_4DD5);
    let keep = (STRATUM_PAGES as f64 * rate).round() as usize;
    let mut out = Vec::with_capacity((real_pages as f64 * rate) as usize + 1);
    let mut block: Vec<(u64, u64)> = Vec::with_capacity(STRATUM_PAGES as usize);
    for start in (0..real_pages).step_by(STRATUM_PAGES as usize) {
        let end = (start + STRATUM_PAGES).min(real_pages);
        if end - start < STRATUM_PAGES {
            out.extend((start..end).filter(|&p| mix64(p ^ salt) < threshold));
            break;
        }
        block.clear();
        block.extend((start..end).map(|p| (mix64(p ^ salt), p)));
        if keep < block.len() {
            block.select_nth_unstable(keep);
        }
        let first = out.len();
        out.extend(block[..keep].iter().map(|&(_, p)| p));
        out[first..].sort_unstable();
    }
    out
}

/// Pages per sampling stratum: a 2 MiB region (a THP), and a whole number
/// of them in a 1 GiB huge page.
const STRATUM_PAGES: u64 = 512;

impl Engine<'_> {
    pub fn sample_rate(&self) -> f64 {
        self.rate
    }

    /// Whether the run is sampled (a simulated page stands for more than
    /// one): its slices hold few simulated touches, whose times are then
    /// drawn (`Engine::slice`, `Engine::slice_events`).
    #[inline]
    pub(super) fn sampled(&self) -> bool {
        self.scale > 1.0
    }

    /// A count of simulated things as the real count it stands for.
    pub(super) fn scaled(&self, sim: u64) -> u64 {
        (sim as f64 * self.scale).round() as u64
    }

    pub(super) fn bytes(&self, sim_pages: u64) -> u64 {
        (sim_pages as f64 * 4096.0 * self.scale).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backing, Guest};

    #[test]
    fn sampling_keeps_512r_pages_of_every_full_region() {
        // 8 MiB and 3 pages: four full 2 MiB regions and a partial one.
        let real = 4 * STRATUM_PAGES + 3;
        for k in 0..=9 {
            let rate = 1.0 / f64::from(1u32 << k);
            let v = sampled_pages(real, rate, 5);
            assert!(v.windows(2).all(|w| w[0] < w[1]), "ascending, no repeats");
            for r in 0..4 {
                let n = v.iter().filter(|&&p| p / STRATUM_PAGES == r).count();
                assert_eq!(n as f64, STRATUM_PAGES as f64 * rate, "rate {rate} region {r}");
            }
        }
    }

    #[test]
    fn region_by_division_agrees_with_the_real_page() {
        // Guest::region_of divides the simulated index when regions hold
        // equal counts; the definition is the real page's 2 MiB block.
        for (real, rate) in [(4 * STRATUM_PAGES + 3, 1.0 / 512.0), (4 * STRATUM_PAGES + 300, 1.0 / 8.0), (2048, 1.0)] {
            let v = if rate < 1.0 { sampled_pages(real, rate, 9) } else { Vec::new() };
            let g = Guest::new("g".into(), 0, Backing::Small { thp: true }, real, v, 0.0, 0.0);
            for sim in 0..g.sim_pages() {
                assert_eq!(g.region_of(sim) as u64, g.real_page(sim) / 512, "{real} pages at {rate}, page {sim}");
            }
            for r in 0..g.region_touched.len() {
                let want = g.region_start[r]..g.region_start[r + 1];
                assert_eq!(g.region_range(r), want, "{real} pages at {rate}, region {r}");
            }
        }
    }

    #[test]
    fn every_page_is_kept_with_probability_r() {
        // Inclusion is by hash rank within a region, so over salts each page
        // is kept with probability R: counts scaled by 1/R stay unbiased.
        let rate = 1.0 / 8.0;
        let salts = 4000u64;
        let mut kept = vec![0u32; STRATUM_PAGES as usize];
        for salt in 0..salts {
            for p in sampled_pages(STRATUM_PAGES, rate, salt) {
                kept[p as usize] += 1;
            }
        }
        // Each page expects 500 of 4000 (sd about 21): 5 sd is ±105.
        assert!(kept.iter().all(|&c| (395..=605).contains(&c)), "{kept:?}");
    }

    #[test]
    fn auto_sampling_stays_where_a_simulated_swap_in_stalls_its_guest_64_ms_at_most() {
        // The measurements of MAX_SAMPLED_STALL_NS, on the 512 GiB host:
        // with its NVMe swap (80 us a swap-in) 1/512 holds (41 ms), also at
        // four times the touch rates, where the device is busier (56 ms);
        // a saturated SATA SSD (1.1 ms a swap-in: 128 guests' reads at
        // 7.8 us each of device time) needs 1/32, where 1/16 and 1/32 agree
        // and 1/64 does not; a 2 ms device 1/16 (1/32 is at the bound).
        let text = std::fs::read_to_string(format!("{}/benches/scenarios/large-host.yaml", env!("CARGO_MANIFEST_DIR")))
            .expect("the benchmark host");
        let load = |text: &str, set: &[&str]| {
            let set: Vec<crate::scenario::Override> = set.iter().map(|o| o.parse().expect("PATH=VALUE")).collect();
            crate::scenario::load_str(text, "large-host.yaml", "s", &set).expect("loads").scenario
        };
        let rate = |text: &str, set: &[&str]| {
            let s = load(text, set);
            (auto_sample_rate(&s), stall_bound_note(&s))
        };
        let (nvme, note) = rate(&text, &[]);
        assert_eq!(nvme, 1.0 / 512.0);
        assert!(note.is_none(), "{note:?}");
        let busy = text.replace("touch_rate: 100k/s", "touch_rate: 400k/s");
        assert_eq!(rate(&busy, &[]).0, 1.0 / 512.0);
        let ssd = ["host.swap.device=ssd", "host.swap.bandwidth=500M/s", "host.swap.queue_depth=32"];
        let (r, note) = rate(&text, &ssd);
        assert_eq!(r, 1.0 / 32.0);
        let note = note.expect("the rate is finer than the budgets ask");
        assert!(
            note.starts_with("sampled at 1/32 rather than at 1/512: a swap-in is expected to take 1.09 ms"),
            "{note}"
        );
        assert!(note.ends_with("--sample-rate 1 checks it"), "{note}");
        // A plan keeps its budget's rate (its guests grow from there, and
        // with them its memory) and is told the rate is coarse.
        let on_ssd = load(&text, &ssd);
        assert_eq!(sample_rate_within(&on_ssd, AUTO_TOUCH_BUDGET), 1.0 / 512.0);
        assert!(stall_warning(&on_ssd, 1.0 / 512.0).is_some_and(|w| w.contains("stall its guest 559 ms")));
        assert!(stall_warning(&on_ssd, 1.0 / 32.0).is_none());
        let slow = [
            "host.swap.read_latency=2ms",
            "host.swap.write_latency=2ms",
            "host.swap.bandwidth=16G/s",
            "host.swap.queue_depth=4096",
        ];
        assert_eq!(rate(&text, &slow).0, 1.0 / 16.0);
    }

    #[test]
    fn the_swap_lessons_runs_are_expected_in_the_order_they_take() {
        // Measured on this project's machine, each run alone through the
        // CLI (`run scenarios/learn/swap.yaml --set host.swap.device=D
        // --touches`): hdd 0.52 s, ssd 1.44 s, nvme 1.57 s, zram 3.00 s.
        // Every run has the same touches at full speed and the same
        // expected faults: only the device's read latency orders them,
        // slowing the guests' closed loops. With the runs taken longest
        // first, the lesson on two workers took 3.9-4.4 s against 4.9-6.5 s
        // in the sweep's order.
        let text = std::fs::read_to_string(format!("{}/scenarios/learn/swap.yaml", env!("CARGO_MANIFEST_DIR")))
            .expect("the lesson");
        let work: Vec<f64> = ["hdd", "ssd", "nvme", "zram"]
            .iter()
            .map(|d| {
                let set = [format!("host.swap.device={d}").parse().expect("PATH=VALUE")];
                expected_work(&crate::scenario::load_str(&text, "swap.yaml", "s", &set).expect("loads").scenario)
            })
            .collect();
        assert!(work.windows(2).all(|w| w[0] < w[1]), "{work:?}");
    }

    #[test]
    fn a_rate_within_a_page_budget_halves_until_the_pages_fit() {
        // A 4-guest disk host grown to 1 238 guests of 2 GiB: 1 238 x 524 288
        // = 649 068 544 pages. Within 2^25 (33 554 432): at 1/4 162 M, 1/8
        // 81 M, 1/16 41 M, 1/32 20 M, the first that fits. A scenario that
        // fits keeps its rate, and 1/512 is the floor whatever the budget.
        let load = |count: u32| {
            let text = format!(
                "name: d\nduration: 1s\nhost: {{ ram: 4G }}\nguests:\n  - name: g\n    count: {count}\n    memory: 2G\n    \
                 workload: {{ working_set: 1G, touch_rate: 1k/s }}\n"
            );
            crate::scenario::load_str(&text, "d.yaml", "d", &[]).expect("loads").scenario
        };
        let budget = (1u64 << 25) as f64;
        assert_eq!(rate_within_pages(&load(1238), 0.25, budget), 1.0 / 32.0);
        assert_eq!(rate_within_pages(&load(4), 0.25, budget), 0.25);
        assert_eq!(rate_within_pages(&load(4), 1.0, budget), 1.0);
        assert_eq!(rate_within_pages(&load(1238), 0.25, 1.0), 1.0 / 512.0);
    }
}
