//! Uniform touches over a working set larger than RAM.
//!
//! Truth (closed form): a guest touching W pages uniformly at random with
//! only L of them resident misses with probability (W − L) / W on every
//! touch, whatever the replacement policy (no policy can predict an
//! independent uniform reference), so its steady-state major-fault ratio is
//! 1 − L/W. For W/L = 1.25, 2 and 4 that is 0.20, 0.50 and 0.75.
//!
//! L is what the host leaves the guest: the ordinary frames
//! (ram − reserved − pool) / 4 KiB minus the free memory kswapd keeps. It
//! wakes below the kernel's low watermark and frees up to the high one, so
//! free memory averages about (low + high) / 2 (see
//! `support::available_frames`). Free memory is always in 0..=high, so
//! even a worst-case saw-tooth moves 1 − L/W by at most
//! ((low + high) / 2) / W: 352 / 20 040 = 0.018 on this 64 MiB host, inside
//! the ±0.03 tolerance.

use crate::support::{available_frames, frames, run_recorded, scenario, steady_window};
use overcommit::model::Status;
use overcommit::model::Watermarks;

/// A 64 MiB host with no reserve and no pool: 16 384 frames; the kernel's
/// watermarks for 64 MiB are min = √(16 × 65 536 KiB) = 1024 KiB (256
/// frames), low = min + min/4 = 320 frames and high = 384 frames, so
/// L = 16 384 − 352 = 16 032 pages.
fn host_yaml() -> &'static str {
    "host:
  ram: 64M
  reserved: 0
  thp: never
  hugepages: { count: 0 }
  ksm: { run: false }
  # A fast custom device (1 us, 64 queues) so swap-ins do not stall the
  # guest to a crawl; sized for the whole working set.
  swap: { size: 512M, read_latency: 1us, write_latency: 1us, bandwidth: 64G/s, queue_depth: 64 }
"
}

fn uniform_case(ratio: f64, nominal: f64) {
    // Work out L from a scenario with this host, then size the guest.
    let probe = scenario(&format!("{}guests: []\n", host_yaml()));
    assert_eq!(frames(&probe), 16_384, "64 MiB is 16 384 frames of 4 KiB");
    let w = Watermarks::kernel_default(64 << 20, 1.0);
    assert_eq!((w.low, w.high), (320, 384), "kernel watermarks for 64 MiB");
    let l = available_frames(&probe);
    assert_eq!(l, 16_032.0);
    let pages = (ratio * l).round() as u64;
    let yaml = format!(
        "name: uniform
seed: 7
duration: 5s
sample_every: 250ms
{host}guests:
  - name: u
    memory: {kib}K
    balloon: false
    workload:
      working_set: 100%
      touch_rate: 1M/s
      pattern: uniform
      write: 0%
",
        host = host_yaml(),
        kib = pages * 4
    );
    let s = scenario(&yaml);
    let (summary, rec) = run_recorded(&s);
    assert_eq!(summary.guests[0].state, Status::Running);
    assert_eq!(summary.host.oom_kills, 0);
    // Warm-up: after 12 W uniform touches a page is still untouched with
    // probability e^-12 = 6e-6, so first touches are gone from the window.
    let win = steady_window(&rec.samples, 0, 12 * pages, 300_000);
    let measured = win.major_ratio();
    let expected = 1.0 - l / pages as f64;
    eprintln!(
        "uniform W/L = {ratio}: W = {pages} pages, L = {l}: measured {measured:.4} over {} touches, expected {expected:.4} (nominal {nominal})",
        win.touches
    );
    assert!((expected - nominal).abs() < 0.001, "W was sized for {nominal}");
    assert!(
        (measured - expected).abs() <= 0.03,
        "W/L = {ratio}: steady-state major-fault ratio {measured:.4}, expected 1 − L/W = {expected:.4} ± 0.03"
    );
}

#[test]
fn working_set_1_25x_ram_misses_one_touch_in_five() {
    // 1 − 1/1.25 = 0.20.
    uniform_case(1.25, 0.20);
}

#[test]
fn working_set_2x_ram_misses_half_the_touches() {
    // 1 − 1/2 = 0.50.
    uniform_case(2.0, 0.50);
}

#[test]
fn working_set_4x_ram_misses_three_touches_in_four() {
    // 1 − 1/4 = 0.75.
    uniform_case(4.0, 0.75);
}
