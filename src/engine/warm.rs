//! A warm start: a guest begins in the state `import live` observed on a
//! running host (balloon, resident pages and THPs, swapped pages).

use super::*;

impl Engine<'_> {
    /// Put guest `g` in the state `import live` observed: its balloon
    /// already inflated, then THPs, 4 KiB pages and swapped pages, the
    /// working set first (pages by rank: the hottest are the likeliest to
    /// be resident). KSM merging is not carried over: ksmd merges again
    /// from the start of the run. Returns false when the guest could not
    /// start (the OOM killer chose it while its memory was being placed).
    pub(super) fn warm_start(&mut self, g: usize, o: &crate::scenario::Observed, now: SimTime) -> bool {
        let group = &self.scenario.guests[self.mem.guests[g].group];
        let memory = group.memory.bytes();
        if o.balloon.bytes() > 0 && group.balloon {
            let keep = memory.saturating_sub(o.balloon.bytes());
            let want = self.balloon_sim_pages(g, memory - keep);
            self.inflate(g, want);
            let r = &mut self.runners[g];
            r.balloon_bytes = memory - keep;
            r.balloon_peak = r.balloon_peak.max(r.balloon_bytes);
            r.balloon_target = Some(keep);
            r.balloon_by = "observed";
        }
        let per_real = self.rate;
        let mut thp_left = (o.thp.bytes() as f64 / 4096.0 * per_real).round() as u64;
        let mut small_left =
            ((o.resident.bytes().saturating_sub(o.thp.bytes())) as f64 / 4096.0 * per_real).round() as u64;
        let mut swap_left = (o.swapped.bytes() as f64 / 4096.0 * per_real).round() as u64;
        let n = self.mem.guests[g].sim_pages();
        let mut p = 0u64;
        while p < n && (thp_left > 0 || small_left > 0) {
            let st = self.mem.guests[g].pages[p as usize];
            if st & RES_MASK != UNTOUCHED || st & CLASS_MASK == BALLOONED {
                p += 1;
                continue;
            }
            let backing = self.mem.guests[g].backing_at(p);
            if let Backing::Hugetlb { .. } = backing {
                // Pool memory: mapped as a whole huge page, not counted as
                // the observed anonymous memory.
                let r = self.mem.guests[g].region_of(p);
                self.fault_hugetlb_region(g, r);
                p = self.mem.guests[g].region_range(r).end;
                continue;
            }
            let r = self.mem.guests[g].region_of(p);
            let range = self.mem.guests[g].region_range(r);
            if thp_left > 0
                && p == range.start
                && matches!(backing, Backing::Small { thp: true })
                && self.try_thp(g, r, None).0
            {
                thp_left = thp_left.saturating_sub(range.end - range.start);
                p = range.end;
                continue;
            }
            if small_left == 0 {
                // THPs still to place, but this region is not a whole one.
                p = range.end.max(p + 1);
                continue;
            }
            if self.make_room(g, now).is_none() {
                return false;
            }
            let guest = &mut self.mem.guests[g];
            guest.pages[p as usize] = (st & !RES_MASK) | RESIDENT;
            guest.region_touched[r] += 1;
            guest.resident += 1;
            self.mem.frames.insert(Unit { guest: g as u32, page: p, thp: false }, 1);
            self.after_allocation(now);
            small_left -= 1;
            p += 1;
        }
        // Swapped pages: the next ones, as far as the swap device has room.
        while p < n && swap_left > 0 && !self.mem.swap.is_full() {
            let st = self.mem.guests[g].pages[p as usize];
            if st & RES_MASK == UNTOUCHED
                && st & CLASS_MASK != BALLOONED
                && matches!(self.mem.guests[g].backing_at(p), Backing::Small { .. })
            {
                let guest = &mut self.mem.guests[g];
                guest.pages[p as usize] = (st & !RES_MASK) | SWAPPED;
                guest.swapped += 1;
                guest.peak_swapped = guest.peak_swapped.max(guest.swapped);
                let r = guest.region_of(p);
                guest.region_touched[r] += 1;
                self.mem.swap.occupy(crate::model::swap::SwapPage::of(g as u32, p, st));
                swap_left -= 1;
            }
            p += 1;
        }
        if self.mem.swap.keeps_pages_in_ram() {
            self.mem.sync_zram();
        }
        let guest = &mut self.mem.guests[g];
        guest.pages.iter_mut().for_each(|s| *s &= !REFERENCED);
        if let Some(e) = guest.events.as_deref_mut() {
            // Event mode: the pages placed are mapped, the rest events.
            e.resync(&guest.pages);
            e.looked_at_all();
        }
        let held = self.mem.guest_frames(g) + self.mem.guests[g].merged;
        let guest = &mut self.mem.guests[g];
        guest.peak_frames = guest.peak_frames.max(held);
        true
    }
}
