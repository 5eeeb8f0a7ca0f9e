//! The event loop: events in time order, each handed to its mechanism;
//! a guest's start (hugetlb reservation, prealloc, a warm start); what
//! happened, passed on to the sink.

use super::observe::{Event, EventKind, Sink, Summary};
use super::queue::SimTime;
use super::state::{Baseline, Ev, LatencyHist};
use super::{Engine, RunError};
use crate::model::page::{REFERENCED, RES_MASK, UNTOUCHED};
use crate::model::{Backing, Status};
use crate::policy::hugepages;

impl Engine<'_> {
    /// Play the scenario to its end, reporting to `sink`.
    pub fn run(mut self, sink: &mut dyn Sink) -> Result<Summary, RunError> {
        let mut end = self.scenario.duration.nanos();
        let mut stopped = None;
        let mut last_sample = None;
        let mut next_progress = 0u64;
        while let Some(t) = self.queue.peek_time() {
            if t > end {
                break;
            }
            let Some((now, ev)) = self.queue.pop() else { break };
            self.shared.set_now(now);
            match ev {
                Ev::Start(g) => self.start(g, now)?,
                Ev::Slice(g, gn, token) => {
                    if self.mem.guests[g].generation == gn
                        && self.runners[g].token == token
                        && self.mem.guests[g].is_alive()
                    {
                        self.slice(g, now)?;
                    }
                }
                Ev::Phase { group, index } => {
                    self.wake_group(group, now)?;
                    self.phase(group, index, now);
                }
                Ev::Kswapd => {
                    let target = self.mem.watermarks.high;
                    let out = self.clock.reclaim(&mut self.mem, target, now, false);
                    self.vm.pageoutrun += 1;
                    self.vm.pgscan_kswapd += out.scanned_pages;
                    self.vm.pgrefill += out.refill_pages;
                    self.vm.pgsteal_kswapd += out.evicted;
                    self.vm.kswapd_throttled += u64::from(out.throttled_ns > 0.0);
                    self.mem.note_usage();
                    if out.throttled_ns > 0.0 && self.mem.frames.free() < target {
                        // Throttled on writeback: kswapd sleeps until the
                        // device has drained, then goes on.
                        self.queue.schedule(now + out.throttled_ns.ceil() as u64, Ev::Kswapd)?;
                    } else {
                        self.kswapd_pending = false;
                    }
                }
                Ev::Ksmd => self.ksmd(now)?,
                Ev::Khugepaged => self.khugepaged(now)?,
                Ev::BalloonMove(g, gn) => {
                    if self.mem.guests[g].generation == gn {
                        self.balloon_move(g, now);
                    }
                }
                Ev::FreeReport(g, gn) => {
                    if self.mem.guests[g].generation == gn {
                        self.free_report(g, now);
                    }
                }
                Ev::Balloon => {
                    self.balloon_tick(now);
                    self.queue.schedule(now + self.scenario.host.balloon.interval.nanos().max(1), Ev::Balloon)?;
                }
                Ev::KsmLook => {
                    self.ksm_look(now);
                    if let Some(interval) = self.tuner.as_ref().and_then(|t| t.look_interval()) {
                        self.queue.schedule(now + interval.nanos().max(1), Ev::KsmLook)?;
                    }
                }
                Ev::Warmup => {
                    self.count_skips(now);
                    for g in 0..self.runners.len() {
                        self.draw_deferred_misses(g);
                    }
                    for r in &mut self.runners {
                        r.hist = LatencyHist::default();
                        r.hit_hist = LatencyHist::default();
                        r.warm = Baseline {
                            major: r.major,
                            touches: r.touches_real,
                            compute_ns: r.compute_ns,
                            stall_ns: r.stall_ns,
                        };
                    }
                }
                Ev::Sample => {
                    self.count_skips(now);
                    // Every sample, whether or not a bound reads the
                    // latencies: the draws then fall alike in a run that
                    // may stop and one that may not.
                    for g in 0..self.runners.len() {
                        self.draw_deferred_misses(g);
                    }
                    self.check_cow_storm(now);
                    sink.sample(&self.sample(now));
                    last_sample = Some(now);
                    if self.bounds_missed(now) {
                        // A latency objective is missed whatever follows.
                        stopped = Some(now);
                        end = now;
                        break;
                    }
                    let next = now + self.scenario.sample_every.nanos();
                    if next <= end {
                        self.queue.schedule(next, Ev::Sample)?;
                    }
                }
            }
            self.wake_disturbed()?;
            self.check_swap_full(now);
            let told = !self.pending.is_empty();
            for e in self.pending.drain(..) {
                sink.event(&e);
            }
            if now >= next_progress {
                sink.progress(now, end);
                next_progress = now + end / 100 + 1;
            }
            // A sink stops the run on what it was told, so it is asked only
            // after events, not after every slice.
            if told && sink.stop() {
                stopped = Some(now);
                end = now;
                break;
            }
        }
        // Skips count up to the end.
        self.shared.set_now(end);
        self.count_skips(end);
        if last_sample != Some(end) {
            sink.sample(&self.sample(end));
        }
        sink.event(&Event { t_ns: end, kind: EventKind::RunEnd, guest: String::new(), detail: String::new() });
        sink.progress(end, end);
        for g in 0..self.runners.len() {
            self.draw_deferred_misses(g);
        }
        for r in &mut self.runners {
            r.hist.flush();
            r.hit_hist.flush();
        }
        let mut summary = self.summary();
        summary.stopped_at_s = stopped.map(|t| t as f64 / 1e9);
        Ok(summary)
    }

    pub(super) fn start(&mut self, g: usize, now: SimTime) -> Result<(), RunError> {
        let gi = self.mem.guests[g].group;
        let group = &self.scenario.guests[gi];
        let costs = self.cfg.costs;
        // Hugetlb backends reserve their whole size in huge pages when
        // QEMU maps them, each from the pool of its page size.
        let needs: Vec<(u64, u64)> = group
            .backends
            .iter()
            .filter_map(|b| b.hugetlb.map(|size| (size.bytes(), b.size.bytes().div_ceil(size.bytes()))))
            .collect();
        if !needs.is_empty()
            && let Err(short) = hugepages::reserve(&mut self.mem, g, &needs)
        {
            self.mem.guests[g].status = Status::FailedToStart;
            let detail = format!(
                "needs {} huge pages of {} MiB but the pool has {} free: QEMU cannot map its memory",
                short.needed,
                short.page_bytes >> 20,
                short.free
            );
            self.push_event(now, EventKind::FailedToStart, g, detail);
            return Ok(());
        }
        // -mem-prealloc / prealloc=on: QEMU touches every page of the
        // backend before the guest runs; with THP the kernel faults 2 MiB
        // at a time, hugetlbfs a whole huge page.
        let mut t = 0f64;
        for (si, b) in group.backends.iter().enumerate() {
            if !b.prealloc {
                continue;
            }
            let seg = self.mem.guests[g].segments[si].clone();
            match seg.backing {
                Backing::Hugetlb { page_bytes } => {
                    let first = self.mem.guests[g].region_of(seg.sim.start);
                    let last =
                        if seg.sim.is_empty() { first } else { self.mem.guests[g].region_of(seg.sim.end - 1) + 1 };
                    for r in first..last {
                        self.fault_hugetlb_region(g, r);
                    }
                    let per = if page_bytes >= 1 << 30 { costs.fault_hugetlb_1g_ns } else { costs.fault_hugetlb_2m_ns };
                    t += (last - first) as f64 * per;
                }
                Backing::Small { .. } => {
                    // The faults' reclaim delays the boot; it is no stall of
                    // the running guest's (a memory cgroup's charge would
                    // otherwise move it from direct reclaim's share to its
                    // own, leaving direct reclaim's below zero).
                    let stall_by = self.runners[g].stall_by;
                    for p in seg.sim.clone() {
                        if self.mem.guests[g].pages[p as usize] & RES_MASK != UNTOUCHED {
                            continue;
                        }
                        match self.fault(g, p, now + t as u64, false) {
                            Some((cost, kind, reclaim)) => t += (cost + reclaim) * self.kind_scale(kind),
                            None => return Ok(()),
                        }
                    }
                    self.runners[g].stall_by = stall_by;
                }
            }
        }
        let boot = t as u64;
        if boot > 0 {
            self.mem.guests[g].pages.iter_mut().for_each(|s| *s &= !REFERENCED);
            if let Some(e) = self.mem.guests[g].events.as_deref_mut() {
                e.looked_at_all();
            }
        }
        let k = self.mem.guests[..g].iter().filter(|x| x.group == gi).count();
        let warm = self.scenario.guests[gi].observed.get(k).cloned();
        if let Some(o) = &warm
            && !self.warm_start(g, o, now)
        {
            return Ok(());
        }
        let r = &mut self.runners[g];
        r.boot_delay = boot;
        let at = now + boot;
        r.started_at = Some(at);
        let detail = if boot > 0 {
            format!("prealloc took {:.3} s before the guest ran", boot as f64 / 1e9)
        } else if let Some(o) = &warm {
            format!(
                "warm start as observed: {:.1} resident ({:.1} in THPs), {:.1} swapped, balloon {:.1}",
                o.resident, o.thp, o.swapped, o.balloon
            )
        } else {
            String::new()
        };
        self.push_event(at, EventKind::GuestStarted, g, detail);
        // The balloon driver inflates to the boot target (libvirt's
        // <currentMemory>) once the guest runs.
        let group = &self.scenario.guests[gi];
        if let Some(cur) = group.current_memory
            && cur < group.memory
        {
            self.set_balloon_target(g, cur.bytes(), at, "current_memory");
        }
        // Free memory the guest never used but the host holds (prealloc, a
        // warm start) is reported too.
        self.schedule_report(g, at);
        self.schedule_slice(g, at)
    }

    pub(super) fn push_event(&mut self, t: SimTime, kind: EventKind, g: usize, detail: String) {
        self.pending.push(Event { t_ns: t, kind, guest: self.mem.guests[g].name.clone(), detail });
    }
}
