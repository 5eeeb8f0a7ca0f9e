//! A guest's memory cgroup (libvirt `<memtune>` on cgroup v2): charging
//! its pages against memory.max and memory.high, the cgroup's own
//! reclaim, throttling over memory.high, and its OOM killer.

use super::*;

impl Engine<'_> {
    /// Charge one page to guest `g`'s memory cgroup at `t`, as the kernel's
    /// try_charge does (mm/memcontrol.c): at memory.max the cgroup reclaims
    /// its own pages (a batch, up to MAX_RECLAIM_RETRIES = 16 tries) and,
    /// with nothing left to take, its OOM killer ends QEMU, the only large
    /// process in it; over memory.high it reclaims the excess and, while
    /// still over, the guest is throttled on return to user space:
    /// 64 s × overage² × pages / MEMCG_CHARGE_BATCH (64), skipped up to
    /// 10 ms and capped at 2 s (mem_cgroup_handle_over_high). Returns the
    /// stall, or `None` when the guest was killed.
    pub(super) fn memcg_charge(&mut self, g: usize, t: SimTime) -> Option<f64> {
        let Some(cg) = self.runners[g].memcg.as_ref() else { return Some(0.0) };
        let (max, high) = (cg.max, cg.high);
        let usage = |e: &Self| e.memcg_usage(g);
        let mut stall = 0.0;
        let batch = crate::model::swap::SWAP_CLUSTER_MAX;
        if usage(self) + 1 > max {
            stall += self.memcg_reclaim_for(g, 1, batch, t);
            if usage(self) + 1 > max {
                let group = &self.scenario.guests[self.mem.guests[g].group];
                let why = if group.locked {
                    "its memory is locked"
                } else if self.mem.guests[g].swapped >= self.mem.guests[g].swap_max {
                    "its swap is at memory.swap.max (swap_hard_limit)"
                } else if self.mem.swap.is_full() {
                    "the host's swap is full"
                } else {
                    "nothing of it can be reclaimed"
                };
                let detail = format!(
                    "memory cgroup at memory.max ({}, libvirt hard_limit) and {why}: its OOM killer ends QEMU",
                    group.memtune.hard_limit.unwrap_or_default()
                );
                if let Some(cg) = self.runners[g].memcg.as_mut() {
                    cg.events.oom += 1;
                    cg.events.oom_kill += 1;
                }
                self.kill_as(g, t, EventKind::MemcgOom, detail);
                return None;
            }
        } else if usage(self) + 1 > high {
            if let Some(cg) = self.runners[g].memcg.as_mut() {
                cg.events.high += 1;
            }
            let want = (usage(self) + 1).saturating_sub(high).max(batch);
            stall += self.memcg_reclaim(g, want, t);
            let now_usage = usage(self) + 1;
            if now_usage > high {
                let overage = (now_usage - high) as f64 / high.max(1) as f64;
                let penalty = 64e9 * overage * overage / 64.0;
                if penalty > 10e6 {
                    // One simulated charge stands for 1/R real ones, each
                    // throttled alike: the caller scales the stall.
                    let throttle = penalty.min(2e9);
                    stall += throttle;
                    let scale = self.scale;
                    if let Some(cg) = self.runners[g].memcg.as_mut() {
                        cg.throttled_ns += throttle * scale;
                    }
                }
            }
        }
        let u = usage(self) + 1;
        if let Some(cg) = self.runners[g].memcg.as_mut() {
            cg.peak = cg.peak.max(u);
        }
        // make_room's stall counts as direct reclaim in the slice; this
        // part is the cgroup's.
        let r = &mut self.runners[g];
        r.stall_by.memcg_s += stall * self.scale / 1e9;
        r.stall_by.direct_reclaim_s -= stall * self.scale / 1e9;
        Some(stall)
    }

    /// Guest `g`'s cgroup is at memory.max and must take `extra` pages:
    /// it reclaims its own pages, at least `min_batch` a round, until they
    /// fit, up to MAX_RECLAIM_RETRIES (16) rounds (`try_charge_memcg`),
    /// or until nothing more can be taken. Counts the `max` event; returns
    /// the stall.
    pub(super) fn memcg_reclaim_for(&mut self, g: usize, extra: u64, min_batch: u64, t: SimTime) -> f64 {
        let Some(cg) = self.runners[g].memcg.as_mut() else { return 0.0 };
        cg.events.max += 1;
        let max = cg.max;
        let over = |e: &Self| (e.memcg_usage(g) + extra).saturating_sub(max);
        let mut stall = 0.0;
        for _ in 0..16 {
            let want = over(self);
            if want == 0 {
                break;
            }
            stall += self.memcg_reclaim(g, want.max(min_batch), t + stall as u64);
            if self.runners[g].memcg.as_ref().is_some_and(|cg| cg.stuck) {
                break;
            }
        }
        stall
    }

    /// The cgroup's own reclaim for guest `g`: `nr` pages wanted. Returns
    /// the stall (0.2 us a page scanned, as direct reclaim, the work of
    /// taking the pages out, plus any wait for writeback); marks the cgroup
    /// stuck when nothing could be taken, so the caller stops retrying.
    ///
    /// zswap's written-back pages charged here go first (see
    /// [`Memcg::written_back`]): each freed for a page scanned.
    pub(super) fn memcg_reclaim(&mut self, g: usize, nr: u64, t: SimTime) -> f64 {
        let Some(cg) = self.runners[g].memcg.as_mut() else { return 0.0 };
        let freed = nr.min(cg.written_back);
        cg.written_back -= freed;
        cg.pgscan += freed;
        cg.pgsteal += freed;
        let out = if nr > freed {
            self.clock.reclaim_guest(&mut self.mem, g, nr - freed, t + freed * crate::policy::reclaim::SCAN_NS as u64)
        } else {
            crate::policy::reclaim::Outcome::default()
        };
        let cg = self.runners[g].memcg.as_mut().expect("checked above");
        cg.pgscan += out.scanned_pages;
        cg.pgsteal += out.evicted;
        cg.pgrefill += out.refill_pages;
        cg.stuck = freed == 0 && out.evicted == 0 && out.throttled_ns == 0.0;
        freed as f64 * crate::policy::reclaim::SCAN_NS + out.stall_ns(true)
    }

    /// What guest `g`'s memory cgroup holds (`memory.current`): the guest's
    /// pages, QEMU's own, zswap's written-back pages not yet freed, and,
    /// when reclaim goes by cgroup, the KSM pages charged to it (which its
    /// own reclaim then takes too).
    pub(super) fn memcg_usage(&self, g: usize) -> u64 {
        let ksm = if self.clock.walks_guests() { self.mem.ksm.charged(g) } else { 0 };
        self.runners[g].memcg.as_ref().map_or(0, |cg| self.mem.guest_frames(g) + cg.overhead + cg.written_back + ksm)
    }
}
