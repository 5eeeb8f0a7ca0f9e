//! What a run reports: the time-series samples, each guest's latency
//! histogram, and the summary at the end.

use hdrhistogram::Histogram;

use super::observe::{
    GroupCdf, GuestSample, GuestSummary, HostSample, HostSummary, KsmSummary, MemcgEvents, MemcgSummary, Percentiles,
    Sample, Summary, Vmstat, ZswapSummary,
};
use super::queue::SimTime;
use super::state::{LatencyHist, Runner};
use super::{Engine, qemu_overhead_bytes, unmodelled};
use crate::model::Status;

impl Engine<'_> {
    pub(super) fn sample(&self, now: SimTime) -> Sample {
        let m = &self.mem;
        let guests: Vec<GuestSample> = m
            .guests
            .iter()
            .zip(&self.runners)
            .map(|(g, r)| GuestSample {
                resident_bytes: self.bytes(g.resident + g.huge + g.merged),
                huge_bytes: self.bytes(g.huge),
                shared_bytes: self.bytes(g.merged),
                balloon_bytes: r.balloon_bytes,
                guest_swap_major_faults: self.scaled(r.guest_swap_faults),
                swapped_bytes: self.bytes(g.swapped),
                untouched_bytes: if g.is_alive() { self.bytes(g.untouched()) } else { 0 },
                touches: r.touches_real.round() as u64,
                minor_faults: self.scaled(r.minor) + r.thp_faults + r.hugetlb_faults,
                major_faults: self.scaled(r.major),
            })
            .collect();
        let guest_resident: u64 = (0..m.guests.len()).map(|g| m.guest_frames(g)).sum();
        let (pool_bytes, pool_used_bytes) = m.pool_bytes();
        let kc = self.ksm.as_ref().map(|k| k.counters).unwrap_or_default();
        Sample {
            t_ns: now,
            host: HostSample {
                frames_bytes: self.bytes(m.frames.total()),
                used_bytes: self.bytes(m.frames.used()),
                free_bytes: self.bytes(m.frames.free()),
                guest_resident_bytes: self.bytes(guest_resident),
                swap_used_bytes: self.bytes(m.swap.used()),
                swap_cached_bytes: self.bytes(m.guests.iter().map(|g| g.swap_cache.slots).sum()),
                zram_bytes: self.bytes(m.zram_frames),
                ksm_bytes: self.bytes(m.ksm.resident_pages),
                ksm_swap_slots_bytes: self.bytes(m.ksm.swap_slots),
                ksm_swap_entries_bytes: self.bytes(m.ksm.swap_entries),
                ksm_pages_shared: self.scaled(kc.pages_shared),
                ksm_pages_sharing: self.scaled(kc.pages_sharing),
                ksm_zero_pages: self.scaled(kc.zero_pages),
                ksm_full_scans: kc.full_scans,
                ksm_cow_breaks: self.scaled(kc.cow_breaks),
                pool_bytes,
                pool_used_bytes,
            },
            guests,
        }
    }

    /// A guest's latency over its real touches. Faults are recorded as the
    /// real faults they stand for, the SHARDS estimate (1/R for each
    /// simulated 4 KiB fault); hits are the rest of the real touches, in
    /// the proportions of the simulated hits. Weighting simulated touches
    /// alike instead would misstate the faults' share wherever the sampled
    /// pages' share of the touches is not R (a Zipf guest whose hottest
    /// page is sampled or not), and p99 sits on that share.
    pub(super) fn latency_hist(&self, r: &Runner) -> Histogram<u64> {
        let mut out = r.hist.hist.clone();
        let sim_hits = r.hit_hist.hist.len();
        if !self.sampled() || sim_hits == 0 {
            let _ = out.add(&r.hit_hist.hist);
            return out;
        }
        let real_hits = (r.touches_real - r.warm.touches - out.len() as f64).max(0.0);
        let weight = real_hits / sim_hits as f64;
        for v in r.hit_hist.hist.iter_recorded() {
            let n = (v.count_at_value() as f64 * weight).round() as u64;
            if n > 0 {
                let _ = out.record_n(v.value_iterated_to(), n);
            }
        }
        out
    }

    pub(super) fn summary(&self) -> Summary {
        let s = self.scenario;
        let h = &s.host;
        let hists: Vec<Histogram<u64>> = self.runners.iter().map(|r| self.latency_hist(r)).collect();
        let guests = self
            .mem
            .guests
            .iter()
            .zip(&self.runners)
            .zip(&hists)
            .map(|((g, r), hist)| {
                let group = &s.guests[g.group];
                let pct = |q: f64| if hist.is_empty() { 0 } else { hist.value_at_quantile(q) };
                let touches = r.touches_real.round() as u64;
                let major = self.scaled(r.major);
                GuestSummary {
                    name: g.name.clone(),
                    group: group.name.clone(),
                    state: match g.status {
                        Status::Starting => Status::Running,
                        other => other,
                    },
                    memory_bytes: group.memory.bytes(),
                    backing: group.backing_label(&s.host),
                    resident_peak_bytes: self.bytes(g.peak_frames.max(g.huge)),
                    swapped_peak_bytes: self.bytes(g.peak_swapped),
                    resident_end_bytes: self.bytes(g.resident + g.huge + g.merged),
                    swapped_end_bytes: self.bytes(g.swapped),
                    touches,
                    minor_faults: self.scaled(r.minor) + r.thp_faults + r.hugetlb_faults,
                    major_faults: major,
                    thp_faults: r.thp_faults,
                    hugetlb_faults: r.hugetlb_faults,
                    shared_peak_bytes: self.bytes(r.shared_peak),
                    cow_breaks: self.scaled(r.cow_breaks),
                    balloon_peak_bytes: r.balloon_peak,
                    guest_swap_major_faults: self.scaled(r.guest_swap_faults),
                    guest_oom_events: r.guest_ooms,
                    balloon_end_bytes: r.balloon_bytes,
                    current_memory_bytes: r.balloon_target,
                    free_page_reported_bytes: r.reported_bytes,
                    locked: group.locked,
                    memcg: r.memcg.as_ref().map(|cg| MemcgSummary {
                        max_bytes: group.memtune.hard_limit.map(|b| b.bytes()),
                        high_bytes: group.memtune.soft_limit.map(|b| b.bytes()),
                        swap_max_bytes: group.memtune.swap_hard_limit.map(|b| b.bytes()),
                        overhead_bytes: qemu_overhead_bytes(group),
                        peak_bytes: self.bytes(cg.peak),
                        events: MemcgEvents {
                            high: self.scaled(cg.events.high),
                            max: self.scaled(cg.events.max),
                            oom: cg.events.oom,
                            oom_kill: cg.events.oom_kill,
                        },
                        pgscan: self.scaled(cg.pgscan),
                        pgsteal: self.scaled(cg.pgsteal),
                        pgrefill: self.scaled(cg.pgrefill),
                    }),
                    fault_ratio: {
                        let touched = r.touches_real - r.warm.touches;
                        if touched > 0.0 { (r.major - r.warm.major) as f64 * self.scale / touched } else { 0.0 }
                    },
                    tlb_miss_ratio: if r.hits > 0 { r.tlb_misses as f64 / r.hits as f64 } else { 0.0 },
                    latency_ns: Percentiles {
                        mean: if hist.is_empty() { 0.0 } else { (hist.mean() * 10.0).round() / 10.0 },
                        p50: pct(0.50),
                        p95: pct(0.95),
                        p99: pct(0.99),
                        p999: pct(0.999),
                    },
                    slowdown: {
                        let compute = r.compute_ns - r.warm.compute_ns;
                        let stall = r.stall_ns - r.warm.stall_ns;
                        if compute > 0.0 { (compute + stall) / compute } else { 1.0 }
                    },
                    stall_s: r.stall_by.rounded(),
                    boot_delay_ns: r.boot_delay,
                    started_at_ns: r.started_at,
                    ended_at_ns: r.ended_at,
                }
            })
            .collect::<Vec<_>>();
        let latency_cdf = s
            .guests
            .iter()
            .enumerate()
            .map(|(gi, group)| {
                let mut merged = LatencyHist::default().hist;
                for (g, hist) in self.mem.guests.iter().zip(&hists) {
                    if g.group == gi {
                        let _ = merged.add(hist);
                    }
                }
                GroupCdf { group: group.name.clone(), points: cdf_points(&merged) }
            })
            .collect();
        let running = self.mem.guests.iter().filter(|g| g.is_alive()).count() as u64;
        let failed = self.mem.guests.iter().filter(|g| g.status == Status::FailedToStart).count() as u64;
        Summary {
            scenario: s.name.clone(),
            seed: self.seed,
            duration_s: s.duration.as_secs_f64(),
            warmup_s: s.warmup.as_secs_f64(),
            sample_rate: self.rate,
            mode: if self.event_mode { "events" } else { "touches" },
            calibration: self.cfg.calibration.clone(),
            notes: unmodelled(s),
            stopped_at_s: None,
            host: HostSummary {
                ram_bytes: h.ram.bytes(),
                usable_bytes: h.usable().bytes(),
                configured_bytes: s.configured_bytes(),
                overcommit_ratio: (s.overcommit_ratio() * 1e6).round() / 1e6,
                hugepages_pool_bytes: h.pool_bytes(),
                peak_used_bytes: self.bytes(self.mem.peak_used),
                min_free_bytes: self.bytes(self.mem.min_free),
                swap_size_bytes: h.swap.as_ref().map_or(0, |sw| sw.size.bytes()),
                swap_used_peak_bytes: self.bytes(self.mem.swap.peak_used()),
                oom_kills: self.oom_kills,
                memcg_oom_kills: self
                    .runners
                    .iter()
                    .filter_map(|r| r.memcg.as_ref())
                    .map(|cg| cg.events.oom_kill)
                    .sum(),
                guests_running: running,
                guests_failed_to_start: failed,
                vmstat: Vmstat {
                    pageoutrun: self.vm.pageoutrun,
                    pgrefill: self.scaled(self.vm.pgrefill),
                    pgscan_kswapd: self.scaled(self.vm.pgscan_kswapd),
                    pgsteal_kswapd: self.scaled(self.vm.pgsteal_kswapd),
                    allocstall: self.scaled(self.vm.allocstall),
                    pgscan_direct: self.scaled(self.vm.pgscan_direct),
                    pgsteal_direct: self.scaled(self.vm.pgsteal_direct),
                    pgscan_anon: self.scaled(
                        self.vm.pgscan_kswapd
                            + self.vm.pgscan_direct
                            + self.runners.iter().filter_map(|r| r.memcg.as_ref()).map(|cg| cg.pgscan).sum::<u64>(),
                    ),
                    pgsteal_anon: self.scaled(
                        self.vm.pgsteal_kswapd
                            + self.vm.pgsteal_direct
                            + self.runners.iter().filter_map(|r| r.memcg.as_ref()).map(|cg| cg.pgsteal).sum::<u64>(),
                    ),
                    reclaim_throttled: self.vm.kswapd_throttled + self.scaled(self.vm.direct_throttled),
                    pswpin: self.scaled(self.mem.swap.reads()),
                    pswpout: self.scaled(self.mem.swap.writes()),
                    ksm_swpin_copy: self.scaled(self.mem.ksm.swpin_copy),
                    thp_fault_alloc: self.runners.iter().map(|r| r.thp_faults).sum(),
                    thp_fault_fallback: self.vm.thp_fault_fallback,
                    // Every THP region is simulated (see `kind_scale`): one
                    // split is one real split, of a PMD-mapped THP.
                    thp_split_page: self.mem.thp_splits,
                    thp_split_pmd: self.mem.thp_splits,
                    // Regions are real ones in sampled mode too.
                    thp_collapse_alloc: self.vm.thp_collapse_alloc,
                    thp_collapse_alloc_failed: self.khugepaged.as_ref().map_or(0, |k| k.alloc_failed),
                },
                khugepaged: self
                    .khugepaged
                    .as_ref()
                    .map(|k| super::KhugepagedSummary { full_scans: k.full_scans, pages_collapsed: k.collapsed }),
                zswap: self.mem.swap.cache().map(|c| ZswapSummary {
                    zswpout: self.scaled(c.stores),
                    zswpin: self.scaled(c.loads),
                    zswpwb: self.scaled(c.written_back),
                    swpout_zero: self.scaled(c.zero_out),
                    swpin_zero: self.scaled(c.zero_in),
                    pool_limit_hit: c.pool_limit_hit,
                    rejected_pool_full: self.scaled(c.rejected_full),
                    stored_pages: self.scaled(c.stored),
                    stored_incompressible_pages: self.scaled(c.stored_incompressible),
                    pool_total_size_bytes: self.bytes(c.pool_pages),
                    pool_peak_bytes: self.bytes(c.pool_peak_pages),
                }),
                ksm: self.ksm.as_ref().map(|k| {
                    let c = &k.counters;
                    let duration = s.duration.nanos().max(1) as f64;
                    KsmSummary {
                        pages_shared: self.scaled(c.pages_shared),
                        pages_sharing: self.scaled(c.pages_sharing),
                        pages_unshared: self.scaled(c.pages_unshared),
                        pages_volatile: self.scaled(c.pages_volatile),
                        ksm_zero_pages: self.scaled(c.zero_pages),
                        full_scans: c.full_scans,
                        pages_scanned: self.scaled(c.pages_scanned),
                        pages_skipped: self.scaled(c.pages_skipped),
                        general_profit_bytes: (k.general_profit_bytes() * self.scale).round() as i64,
                        saved_bytes: self.bytes(c.pages_sharing + c.zero_pages),
                        saved_peak_bytes: self.bytes(self.ksm_saved_peak),
                        ksmd_cpu_percent: (self.ksmd_cpu_ns / duration * 1e6).round() / 1e4,
                        cow_breaks: self.scaled(c.cow_breaks),
                        policy: h.ksm.tuner.name(),
                        run: k.knobs.run,
                        pages_to_scan: k.knobs.pages_to_scan,
                        sleep_millisecs: k.knobs.sleep_millisecs,
                    }
                }),
            },
            guests,
            latency_cdf,
        }
    }
}

/// A histogram's distribution as (value, share at or below) points: every
/// recorded value, thinned to one point per 2% of value, 0.2% of share or
/// 5% of the share above (the tail, which the report draws on a log axis),
/// a few hundred points at most, the last value always kept.
fn cdf_points(h: &Histogram<u64>) -> Vec<(u64, f64)> {
    let total = h.len();
    if total == 0 {
        return Vec::new();
    }
    let mut out: Vec<(u64, f64)> = Vec::new();
    let mut below = 0u64;
    let mut recorded = h.iter_recorded().peekable();
    while let Some(v) = recorded.next() {
        below += v.count_at_value();
        let (value, share) = (h.highest_equivalent(v.value_iterated_to()), below as f64 / total as f64);
        let keep = match out.last() {
            None => true,
            Some(&(lv, ls)) => {
                value as f64 >= lv as f64 * 1.02
                    || share >= ls + 0.002
                    || 1.0 - share <= (1.0 - ls) * 0.95
                    || recorded.peek().is_none()
            }
        };
        if keep {
            out.push((value, share));
        }
    }
    out
}
