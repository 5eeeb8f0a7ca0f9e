//! Balloons and free page reporting: the policy's round (MoM, Proxmox)
//! sets targets, each balloon moves toward its target at virtio-balloon's
//! pace, taking the guest's pages in the order its allocator hands them
//! out and giving them back last-in first-out; what the guest frees goes
//! back to the host when it reports free pages. QEMU discards what the
//! balloon takes, so the host gets back only what was resident.

use super::*;

impl Engine<'_> {
    /// The balloon policy's round: targets per guest, then the balloons move.
    pub(super) fn balloon_tick(&mut self, now: SimTime) {
        let s = self.scenario;
        if self.balloons.is_none() {
            return;
        }
        let views: Vec<GuestView> = (0..self.mem.guests.len())
            .map(|g| {
                let guest = &self.mem.guests[g];
                let group = &s.guests[guest.group];
                let r = &self.runners[g];
                let memory = group.memory.bytes();
                let cur = memory - r.balloon_bytes;
                GuestView {
                    managed: guest.is_alive() && group.balloon,
                    has_stats: group.balloon_stats,
                    memory,
                    cur,
                    // MemFree inside the guest: what its working set leaves.
                    unused: cur.saturating_sub(r.ws_bytes),
                    min: group.balloon_min.bytes(),
                    shares: group.shares,
                }
            })
            .collect();
        let host = HostView { total: s.host.ram.bytes(), free: self.bytes(self.mem.frames.free()) };
        let Some(c) = self.balloons.as_mut() else { return };
        let (who, targets) = (c.name(), c.tick(host, &views));
        for (g, t) in targets.into_iter().enumerate() {
            if let Some(cur) = t {
                self.set_balloon_target(g, cur, now, who);
            }
        }
    }

    /// A new balloon target for guest `g`: it is to keep `keep` bytes
    /// (`virsh setmem`, libvirt's `<currentMemory>`, a balloon policy).
    /// The balloon moves there at the driver's pace ([`Self::balloon_move`]).
    pub(super) fn set_balloon_target(&mut self, g: usize, keep: u64, now: SimTime, who: &'static str) {
        let memory = self.scenario.guests[self.mem.guests[g].group].memory.bytes();
        let keep = (keep.min(memory) / 4096) * 4096;
        let gn = self.mem.guests[g].generation;
        let r = &mut self.runners[g];
        r.balloon_target = Some(keep);
        r.balloon_by = who;
        if !r.balloon_moving && memory - keep != r.balloon_bytes {
            r.balloon_moving = true;
            r.balloon_began = (now, r.balloon_bytes, 0);
            let _ = self.queue.schedule(now.max(self.queue.now()), Ev::BalloonMove(g, gn));
        }
    }

    /// One step of guest `g`'s balloon toward its target: what the guest
    /// driver moves in [`BALLOON_STEP_NS`] at the balloon's pace (it sends
    /// 256 pages a request and waits for each, back to back, so the pace
    /// is steady while a target is unmet).
    pub(super) fn balloon_move(&mut self, g: usize, now: SimTime) {
        self.runners[g].balloon_moving = false;
        if !self.mem.guests[g].is_alive() {
            return;
        }
        let memory = self.scenario.guests[self.mem.guests[g].group].memory.bytes();
        let Some(keep) = self.runners[g].balloon_target else { return };
        let target = memory - keep;
        let old = self.runners[g].balloon_bytes;
        let costs = &self.cfg.costs;
        let step_s = BALLOON_STEP_NS as f64 / 1e9;
        let new = if target > old {
            old + (target - old).min((costs.balloon_inflate_bytes_per_s * step_s) as u64 / 4096 * 4096)
        } else {
            old - (old - target).min((costs.balloon_deflate_bytes_per_s * step_s) as u64 / 4096 * 4096)
        };
        let freed = self.move_balloon(g, new, now);
        let r = &mut self.runners[g];
        r.balloon_began.2 += freed;
        let done = r.balloon_bytes == memory - r.balloon_target.unwrap_or(memory);
        if !done && self.mem.guests[g].is_alive() {
            r.balloon_moving = true;
            let gn = self.mem.guests[g].generation;
            let _ = self.queue.schedule(now + BALLOON_STEP_NS, Ev::BalloonMove(g, gn));
            return;
        }
        let (began, from, freed) = r.balloon_began;
        let to = r.balloon_bytes;
        let who = r.balloon_by;
        let hugetlb = !self.mem.guests[g].has_small();
        let host = if hugetlb && to > from {
            " (hugetlbfs memory: QEMU frees a huge page only when all its 4 KiB pieces are ballooned, so the host gains nothing)".to_string()
        } else if freed > 0 {
            format!(", {} back to the host", crate::units::ByteSize(self.bytes(freed)))
        } else {
            String::new()
        };
        let msg = format!(
            "{who}: balloon {} -> {} in {:.2} s (the guest keeps {}){host}",
            crate::units::ByteSize(from),
            crate::units::ByteSize(to),
            (now + BALLOON_STEP_NS).saturating_sub(began) as f64 / 1e9,
            crate::units::ByteSize(memory - to)
        );
        self.push_event(now, EventKind::Balloon, g, msg);
    }

    /// Simulated pages a balloon of `bytes` holds in guest `g`.
    pub(super) fn balloon_sim_pages(&self, g: usize, bytes: u64) -> u64 {
        let real = bytes / 4096;
        let guest = &self.mem.guests[g];
        if guest.real.is_empty() { real } else { ((real as f64) * self.rate).round() as u64 }.min(guest.sim_pages())
    }

    /// The guest's working set in simulated pages (pages below it).
    pub(super) fn ws_sim_pages(&self, g: usize) -> u64 {
        let real = self.runners[g].ws_bytes.div_ceil(4096);
        let guest = &self.mem.guests[g];
        if guest.real.is_empty() {
            real.min(guest.sim_pages())
        } else {
            guest.real.partition_point(|&p| p < real) as u64
        }
    }

    /// Set guest `g`'s balloon to `balloon` bytes now: the guest's free
    /// memory goes first (what it freed last first, then memory it never
    /// used), then its coldest working-set pages (ranks follow addresses),
    /// which go to its swap; without room there the guest kills a process,
    /// or with `deflate_on_oom` gives back 256 pages per OOM notification.
    /// Returns the host frames freed.
    pub(super) fn move_balloon(&mut self, g: usize, balloon: u64, now: SimTime) -> u64 {
        let group = &self.scenario.guests[self.mem.guests[g].group];
        let memory = group.memory.bytes();
        let mut balloon = balloon.min(memory) / 4096 * 4096;
        // The working set the guest cannot hold even with its swap.
        let excess = self.runners[g].ws_bytes.saturating_sub(memory - balloon + group.guest_swap.bytes());
        if excess > 0 {
            if group.deflate_on_oom {
                // VIRTIO_BALLOON_OOM_NR_PAGES = 256 per notification.
                let step = 256 * 4096;
                let notes = excess.div_ceil(step);
                balloon = balloon.saturating_sub(notes * step);
                // The driver gives the pages back and the host's target
                // stands unmet: libvirt's view settles where the guest is.
                self.runners[g].balloon_target = Some(memory - balloon);
                let msg = format!("the guest ran out and deflated {notes} x 256 pages (deflate_on_oom)");
                self.push_event(now, EventKind::Balloon, g, msg);
            } else {
                // What is left runs in whole 2 MiB pieces (guests of a group
                // squeezed alike then share their samplers).
                let keep = (memory - balloon + group.guest_swap.bytes()) / (2 << 20) * (2 << 20);
                self.runners[g].ws_cap = Some(keep);
                self.runners[g].guest_ooms += 1;
                let msg = format!(
                    "the balloon leaves {} and the guest's swap {}: the guest's OOM killer ends a process, its working set drops to {}",
                    crate::units::ByteSize(memory - balloon),
                    group.guest_swap,
                    crate::units::ByteSize(keep)
                );
                self.push_event(now, EventKind::GuestOom, g, msg);
                // Event mode: a skipping guest plays on from here with the
                // workload that is left (its skip assumed the old one).
                if let Some(s) = self.runners[g].skip {
                    let t = now.max(s.from);
                    self.settle_skip(g, t);
                    self.runners[g].due = None;
                    let _ = self.schedule_slice(g, t);
                }
                self.apply_workload(g, self.last_phase(g, now));
            }
        }
        let want = self.balloon_sim_pages(g, balloon);
        let have = self.mem.guests[g].ballooned;
        let freed = if want > have {
            self.inflate(g, want - have)
        } else {
            self.deflate(g, have - want);
            0
        };
        if want < have {
            self.balloon_out_of_working_set(g);
        }
        let r = &mut self.runners[g];
        r.balloon_bytes = balloon;
        r.balloon_peak = r.balloon_peak.max(balloon);
        self.mem.note_usage();
        freed
    }

    /// The balloon takes `k` more simulated pages of guest `g`, in the
    /// order the guest's allocator hands them out: pages it freed last
    /// first (Linux's per-CPU and buddy free lists are LIFO), then memory
    /// it never used (freed at boot to the lists' tails), then, past its
    /// free memory, its working set from the coldest end. QEMU discards
    /// each (MADV_DONTNEED): the host gets back only what was resident.
    /// Returns the frames freed.
    pub(super) fn inflate(&mut self, g: usize, k: u64) -> u64 {
        let mut left = k;
        let mut freed = 0u64;
        while left > 0 {
            let Some(&(a, b)) = self.mem.guests[g].freed.last() else { break };
            let mut end = b;
            while left > 0 && end > a {
                end -= 1;
                if self.mem.guests[g].pages[end as usize] & CLASS_MASK != BALLOONED {
                    freed += self.take_for_balloon(g, end);
                    left -= 1;
                }
            }
            let guest = &mut self.mem.guests[g];
            if end > a {
                if let Some(last) = guest.freed.last_mut() {
                    last.1 = end;
                }
            } else {
                guest.freed.pop();
            }
        }
        while left > 0 && self.mem.guests[g].balloon_cursor > 0 {
            let p = self.mem.guests[g].balloon_cursor - 1;
            self.mem.guests[g].balloon_cursor = p;
            if self.mem.guests[g].pages[p as usize] & CLASS_MASK != BALLOONED {
                freed += self.take_for_balloon(g, p);
                left -= 1;
            }
        }
        freed
    }

    /// Page `p` of guest `g` goes into the balloon. Returns frames freed.
    pub(super) fn take_for_balloon(&mut self, g: usize, p: u64) -> u64 {
        let freed = self.release_page(g, p);
        let guest = &mut self.mem.guests[g];
        guest.pages[p as usize] = BALLOONED;
        note_event(guest, p);
        guest.ballooned += 1;
        match guest.balloon_taken.last_mut() {
            Some(last) if last.0 == p + 1 => last.0 = p,
            _ => guest.balloon_taken.push((p, p + 1)),
        }
        freed
    }

    /// The balloon gives `k` simulated pages back to guest `g`, the last
    /// taken first (the driver's page list is LIFO). The guest has them
    /// again, untouched: touching one is a fresh fault on the host.
    pub(super) fn deflate(&mut self, g: usize, k: u64) {
        let shares = self.mem.guests[g].shares;
        let mut left = k;
        let guest = &mut self.mem.guests[g];
        while left > 0 {
            let Some(last) = guest.balloon_taken.last_mut() else { break };
            let p = last.0;
            last.0 += 1;
            if last.0 >= last.1 {
                guest.balloon_taken.pop();
            }
            let real = guest.real_page(p);
            guest.pages[p as usize] = crate::model::page::content_of(real, shares).bits();
            note_event(guest, p);
            guest.ballooned -= 1;
            guest.balloon_cursor = guest.balloon_cursor.max(p + 1);
            left -= 1;
        }
    }

    /// Pages the balloon holds inside the working set (it grew over them,
    /// or the balloon took them when the guest had nothing else to give)
    /// move out of it while the guest has free memory above it: the
    /// guest's allocator serves its working set from free pages, not the
    /// balloon's, and a guest that had to give working-set pages gets
    /// them back once the balloon shrinks. Each such page comes back
    /// untouched (it faults in afresh, from the host: a page the guest
    /// had swapped out inside would be read back from its swap once, which
    /// this leaves out), and a free page above the working set, from the
    /// top, takes its place in the balloon (discarded now). Without free
    /// memory left, the rest stay ballooned: the guest keeps them in its
    /// own swap.
    pub(super) fn balloon_out_of_working_set(&mut self, g: usize) {
        let ws = self.ws_sim_pages(g);
        let mut inside: Vec<u64> = Vec::new();
        for &(a, b) in &self.mem.guests[g].balloon_taken {
            inside.extend(a..b.min(ws));
        }
        if inside.is_empty() {
            return;
        }
        inside.sort_unstable();
        let shares = self.mem.guests[g].shares;
        let mut top = self.mem.guests[g].sim_pages();
        let mut moved = Vec::new();
        for b in inside {
            // The next free page above the working set, from the top.
            let f = loop {
                if top <= ws {
                    break None;
                }
                top -= 1;
                if self.mem.guests[g].pages[top as usize] & CLASS_MASK != BALLOONED {
                    break Some(top);
                }
            };
            let Some(f) = f else { break };
            self.take_for_balloon(g, f);
            let guest = &mut self.mem.guests[g];
            let real = guest.real_page(b);
            guest.pages[b as usize] = crate::model::page::content_of(real, shares).bits();
            note_event(guest, b);
            guest.ballooned -= 1;
            moved.push(b);
        }
        if moved.is_empty() {
            return;
        }
        // Drop the pages given back from the balloon's list, keeping the
        // order the rest were taken in.
        let guest = &mut self.mem.guests[g];
        let mut list: Vec<(u64, u64)> = Vec::with_capacity(guest.balloon_taken.len());
        for &(a, b) in &guest.balloon_taken {
            let mut start = a;
            for p in a..b {
                if moved.binary_search(&p).is_ok() {
                    if start < p {
                        list.push((start, p));
                    }
                    start = p + 1;
                }
            }
            if start < b {
                list.push((start, b));
            }
        }
        guest.balloon_taken = list;
    }

    /// Free page reporting: guest `g` reports free 2 MiB blocks (the
    /// reporting order is pageblock_order, 9 on x86) to the host, which
    /// discards them. A pass runs 2 s after memory was freed
    /// (PAGE_REPORTING_DELAY) and reports about a sixteenth of the free
    /// blocks, at least one request of 32 (PAGE_REPORTING_CAPACITY), so
    /// an idle guest reports all within about 30 s (mm/page_reporting.c).
    /// It pauses while the guest's free memory is below its low watermark
    /// plus 64 MiB.
    pub(super) fn free_report(&mut self, g: usize, now: SimTime) {
        self.runners[g].report_pending = false;
        if !self.mem.guests[g].is_alive() {
            return;
        }
        let group = &self.scenario.guests[self.mem.guests[g].group];
        let memory = group.memory.bytes();
        let guest_free = memory.saturating_sub(self.runners[g].ws_bytes + self.runners[g].balloon_bytes);
        let low = Watermarks::kernel_default(memory, 1.0).low * 4096;
        if guest_free < low + (64 << 20) {
            return;
        }
        let ws = self.ws_sim_pages(g);
        // Candidate blocks: whole 2 MiB regions of ordinary memory above
        // the working set with something resident and nothing ballooned;
        // the ones the guest freed last first.
        let guest = &self.mem.guests[g];
        let mut order: Vec<usize> = Vec::new();
        for &(a, b) in guest.freed.iter().rev() {
            if a < b {
                let (ra, rb) = (guest.region_of(a), guest.region_of(b - 1));
                order.extend((ra..=rb).rev());
            }
        }
        let first = if ws < guest.sim_pages() { guest.region_of(ws) } else { guest.region_touched.len() };
        order.extend((first..guest.region_touched.len()).rev());
        let mut seen = std::collections::BTreeSet::new();
        let mut candidates = Vec::new();
        for r in order {
            if !seen.insert(r) {
                continue;
            }
            let range = guest.region_range(r);
            if range.start < ws
                || guest.region_real_pages(r) != 512
                || !matches!(guest.backing_at(range.start), Backing::Small { .. })
            {
                continue;
            }
            let pages = &guest.pages[range.start as usize..range.end as usize];
            let resident = pages.iter().any(|&st| st & RES_MASK != UNTOUCHED);
            let ballooned = pages.iter().any(|&st| st & CLASS_MASK == BALLOONED);
            if resident && !ballooned {
                candidates.push(r);
            }
        }
        let free_blocks = guest_free / (2 << 20);
        let budget = free_blocks.div_ceil(16).max(32) as usize;
        let mut freed = 0u64;
        for &r in candidates.iter().take(budget) {
            let range = self.mem.guests[g].region_range(r);
            for p in range {
                freed += self.release_page(g, p);
            }
        }
        if freed > 0 {
            let bytes = self.bytes(freed);
            self.runners[g].reported_bytes += bytes;
            let msg = format!("the guest reported free memory: {} back to the host", crate::units::ByteSize(bytes));
            self.push_event(now, EventKind::FreePageReport, g, msg);
            self.mem.note_usage();
        }
        if candidates.len() > budget {
            self.schedule_report(g, now);
        }
    }

    /// Free page reporting runs 2 s (PAGE_REPORTING_DELAY) after the
    /// guest freed memory.
    pub(super) fn schedule_report(&mut self, g: usize, now: SimTime) {
        let group = &self.scenario.guests[self.mem.guests[g].group];
        if !group.free_page_reporting || !group.balloon || self.runners[g].report_pending {
            return;
        }
        self.runners[g].report_pending = true;
        let gn = self.mem.guests[g].generation;
        let _ = self.queue.schedule(now + PAGE_REPORTING_DELAY_NS, Ev::FreeReport(g, gn));
    }

    /// The balloon takes page `p` of guest `g`: QEMU discards it
    /// (MADV_DONTNEED), freeing its frame, its swap slot or its KSM
    /// mapping. Returns the frames freed.
    pub(super) fn release_page(&mut self, g: usize, p: u64) -> u64 {
        let st = self.mem.guests[g].pages[p as usize];
        let mut freed = 0;
        match st & RES_MASK {
            HUGE if matches!(self.mem.guests[g].backing_at(p), Backing::Hugetlb { .. }) => {
                // A piece of a hugetlb page: QEMU cannot discard less than
                // the whole huge page, so the host keeps it (the pool).
                let guest = &mut self.mem.guests[g];
                guest.huge -= 1;
                guest.pool_mapped -= 1;
            }
            HUGE => {
                // Discarding part of a THP splits it first.
                let head = self.mem.guests[g].region_range(self.mem.guests[g].region_of(p)).start;
                let Some(slot) = self.mem.frames.slot_of(g as u32, head) else { return 0 };
                crate::policy::reclaim::split_thp(&mut self.mem, slot, Unit { guest: g as u32, page: head, thp: true });
                return self.release_page(g, p);
            }
            RESIDENT => freed = self.unmap_small(g, p),
            SWAPPED => {
                // A swapped-out KSM page's entry: one less on its slot.
                let ksm_entry = st & MERGED != 0
                    && self.ksm.as_mut().is_some_and(|k| k.drop_swapped_entry(&mut self.mem, g, p, false));
                if !ksm_entry {
                    self.mem.swap.discard(crate::model::swap::SwapPage::of(g as u32, p, st));
                }
                self.mem.sync_zram();
                self.mem.guests[g].swapped -= 1;
            }
            _ => return 0,
        }
        let guest = &mut self.mem.guests[g];
        let region = guest.region_of(p);
        if let Some(t) = guest.region_touched.get_mut(region) {
            *t = t.saturating_sub(1);
        }
        guest.pages[p as usize] = st & CLASS_MASK;
        note_event(guest, p);
        freed
    }
}

impl Engine<'_> {
    /// Guest `g` stops mapping its 4 KiB page `p` (state RESIDENT), as a
    /// balloon's discard or a khugepaged collapse does: the zero page a
    /// THP split left is unmapped, a KSM mapping loses its sharer, a page
    /// of its own frees its frame and the slot it kept in swap. Returns
    /// the frames freed. The page's state is the caller's to set.
    pub(super) fn unmap_small(&mut self, g: usize, p: u64) -> u64 {
        let st = self.mem.guests[g].pages[p as usize];
        debug_assert_eq!(st & RES_MASK, RESIDENT);
        if st & MERGED != 0 && self.mem.guests[g].is_zero_mapped(p) {
            // On the zero page (a THP split mapped it): no frame to free.
            self.mem.guests[g].unmap_zero(p);
            return 0;
        }
        if st & MERGED != 0 {
            if let Some(k) = self.ksm.as_mut() {
                k.unmerge(&mut self.mem, g, p);
            }
            return 0;
        }
        if let Some(slot) = self.mem.frames.slot_of(g as u32, p) {
            self.mem.frames.remove(slot, Unit { guest: g as u32, page: p, thp: false }, 1);
        }
        if self.mem.guests[g].swap_cache.take(p).is_some() {
            self.mem.swap.discard(crate::model::swap::SwapPage::of(g as u32, p, st));
        }
        self.mem.guests[g].resident -= 1;
        1
    }
}

/// Event mode: page `p` of `guest` changed state outside a fault or
/// reclaim (the balloon took it, gave it back, or the host discarded it):
/// the event set follows.
fn note_event(guest: &mut crate::model::Guest, p: u64) {
    if let Some(e) = guest.events.as_deref_mut() {
        e.note(p as usize, guest.pages[p as usize]);
    }
}
