//! The swap cache against the kernel's rules (mm/memory.c `do_swap_page`
//! and `should_try_to_free_swap`, mm/vmscan.c `shrink_folio_list`; see
//! src/model/swapcache.rs):
//! - a page read back from a block device keeps its slot (unless swap is
//!   more than half full); while it stays clean, reclaim frees it again
//!   without writing it, so a guest that only reads stops writing to swap
//!   once each of its pages has been out once;
//! - KVM maps a swapped-in page writable and marks it dirty at once
//!   (Linux 6.13 on), so a KVM guest's pages are written again every time
//!   they go out: in steady state page-outs match swap-ins;
//! - the slots resident pages keep count as swap in use (`SwapCached`),
//!   and stop growing once swap is half full (`vm_swap_full`).

use overcommit::engine::{self, Discard, Mode, RunConfig, Summary};

use crate::support::{exact, scenario};

/// One 512 MiB guest under a 256 MiB memory cgroup (plus the QEMU
/// overhead the model charges), touching all of its memory uniformly, on
/// NVMe swap of `swap_mib`; filled first, reads only unless `write`.
fn yaml(accel: &str, swap_mib: u64, write: f64, secs: f64) -> String {
    format!(
        "
name: swapcache
seed: 3
duration: {}ms
host:
  ram: 4G
  reserved: 0
  thp: never
  swap: {{ size: {swap_mib}M, device: nvme }}
guests:
  - name: vm
    memory: 512M
    prealloc: true
    accel: {accel}
    memtune: {{ hard_limit: {}M }}
    workload: {{ working_set: 100%, touch_rate: 1M/s, pattern: uniform, write: {write} }}
",
        (secs * 1000.0) as u64,
        256 + 74
    )
}

fn run(accel: &str, swap_mib: u64, write: f64, secs: f64) -> Summary {
    run_in(accel, swap_mib, write, secs, Mode::Touches)
}

fn run_in(accel: &str, swap_mib: u64, write: f64, secs: f64, mode: Mode) -> Summary {
    let cfg = RunConfig { mode, ..exact() };
    engine::run(&scenario(&yaml(accel, swap_mib, write, secs)), cfg, &mut Discard).expect("the run plays")
}

/// Swap-ins and page-outs between 10 s and 20 s (one seed: the 10 s run
/// is the 20 s run's start).
fn second_half(accel: &str, swap_mib: u64, write: f64) -> (u64, u64, Summary) {
    let (a, b) = (run(accel, swap_mib, write, 10.0), run(accel, swap_mib, write, 20.0));
    (b.host.vmstat.pswpin - a.host.vmstat.pswpin, b.host.vmstat.pswpout - a.host.vmstat.pswpout, b)
}

#[test]
fn a_guest_that_only_reads_stops_writing_to_swap_under_tcg_but_not_under_kvm() {
    // 2 GiB of swap: never half full (the guest has 512 MiB).
    let (tcg_in, tcg_out, _) = second_half("tcg", 2048, 0.0);
    let (kvm_in, kvm_out, _) = second_half("kvm", 2048, 0.0);
    assert!(tcg_in > 10_000 && kvm_in > 10_000, "the guests swap: {tcg_in} and {kvm_in} swap-ins");
    // Under TCG a page that has been out once goes out again clean, at no
    // write: what is still written are pages resident since the fill and
    // never taken yet (referenced at each pass of the hand so far), fewer
    // every pass (4% of the swap-ins here, where every page would be
    // written again without the swap cache).
    assert!(tcg_out * 10 <= tcg_in, "TCG, reads only: {tcg_out} page-outs for {tcg_in} swap-ins");
    // Under KVM each swap-in is dirty: in steady state each page that
    // comes in goes out again, written (within 5%).
    let ratio = kvm_out as f64 / kvm_in as f64;
    assert!((ratio - 1.0).abs() <= 0.05, "KVM, reads only: {kvm_out} page-outs for {kvm_in} swap-ins");
}

#[test]
fn writes_dirty_what_the_swap_cache_kept() {
    // With a fifth of the touches writing, a page resident for its share
    // of a residency (about as many touches as the resident set holds
    // pages, uniform) is written with probability 1 − e^(−0.2) at least:
    // some page-outs come back under TCG, never more than under KVM.
    let (tcg_in, tcg_out, _) = second_half("tcg", 2048, 0.2);
    let (_, kvm_out, _) = second_half("kvm", 2048, 0.2);
    assert!(tcg_out * 10 >= tcg_in, "TCG with writes: {tcg_out} page-outs for {tcg_in} swap-ins");
    assert!(tcg_out < kvm_out, "TCG writes back less than KVM: {tcg_out} against {kvm_out}");
}

#[test]
fn kept_slots_count_as_swap_in_use_and_stop_at_half_of_it() {
    // 640 MiB of swap: the guest's swapped pages (about 260 MiB) fit in
    // half of it, so the slots its resident pages keep fill swap up to
    // half (320 MiB) and no further: past it every swap-in frees its slot.
    let (_, _, s) = second_half("tcg", 640, 0.0);
    let peak = s.host.swap_used_peak_bytes as f64 / (1 << 20) as f64;
    assert!(peak <= 640.0 * 0.55, "swap used at most {peak:.0} MiB of 640");
    // With 2 GiB, nothing stops them: swap in use goes past what the guest
    // has swapped out (its resident pages keep slots too).
    let (_, _, s) = second_half("tcg", 2048, 0.0);
    let swapped = s.guests[0].swapped_peak_bytes;
    assert!(
        s.host.swap_used_peak_bytes > swapped + (64 << 20),
        "swap in use {} against {} swapped",
        s.host.swap_used_peak_bytes,
        swapped
    );
}

#[test]
fn event_mode_draws_the_writes_that_dirty_a_kept_page_as_touches_play_them() {
    // Event mode does not play hits: whether a clean kept page was written
    // is drawn when it goes out, with chance 1 − e^(−λ) for λ its share
    // of the writes since it came in. Over a run the page-outs under TCG
    // with writes must match playing every touch (within 5%; the two
    // modes are the same in distribution).
    let out = |mode| {
        let s = run_in("tcg", 2048, 0.2, 20.0, mode);
        (s.host.vmstat.pswpout, s.host.vmstat.pswpin)
    };
    let ((t_out, t_in), (e_out, e_in)) = (out(Mode::Touches), out(Mode::Events));
    let rel = |a: u64, b: u64| (a as f64 / b as f64 - 1.0).abs();
    assert!(rel(e_out, t_out) <= 0.05, "page-outs: events {e_out}, touches {t_out}");
    assert!(rel(e_in, t_in) <= 0.05, "swap-ins: events {e_in}, touches {t_in}");
}

#[test]
fn a_cgroups_own_reclaim_counts_in_pgscan_anon_but_not_in_direct_or_kswapd() {
    // mm/vmscan.c, shrink_inactive_list (6.x): `item = current_is_kswapd()
    // ? PGSCAN_KSWAPD : PGSCAN_DIRECT; if (!cgroup_reclaim(sc))
    // __count_vm_events(item, nr_scanned); __count_vm_events(PGSCAN_ANON +
    // file, nr_scanned);`, and the same for PGSTEAL. The guest here is held
    // by its cgroup's limit on a 4 GiB host with room to spare, so every
    // page reclaim looks at is the cgroup's: the host's anon counters are
    // the cgroup's own (memory.stat pgscan, pgsteal), the direct and
    // kswapd ones stay 0. Measured on this kernel (cgroup v1, a 2 GiB
    // process on THP under a 1 GiB limit): pgscan_direct and
    // pgscan_kswapd 0, pgscan_anon 4.04 million and pgsteal_anon 392 000
    // in 30 s.
    let s = run("tcg", 1024, 0.0, 3.0);
    let v = &s.host.vmstat;
    let cg = s.guests[0].memcg.as_ref().expect("a cgroup");
    assert!(cg.pgsteal > 0, "the cgroup reclaimed");
    assert_eq!((v.pgscan_direct, v.pgscan_kswapd, v.pgsteal_direct, v.pgsteal_kswapd), (0, 0, 0, 0));
    assert_eq!((v.pgscan_anon, v.pgsteal_anon), (cg.pgscan, cg.pgsteal));
}
