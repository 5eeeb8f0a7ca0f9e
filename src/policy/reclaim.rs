//! Page reclaim: kswapd and direct reclaim.
//!
//! The kernel ages anonymous pages on active/inactive LRU lists using the
//! accessed bit; we use CLOCK (second chance, Corbató 1968), the classic
//! approximation of exactly that: a hand sweeps the resident pages, a page
//! whose referenced bit is set has it cleared and is passed over, and a page
//! found unreferenced is swapped out. CLOCK needs one bit per page and no
//! list surgery on a hit, which keeps the touch loop to a single byte write,
//! and it approximates LRU closely under independent references — which is
//! what lets the tests hold it to Che's LRU approximation.
//!
//! A transparent huge page is reclaimed the way the kernel does it: an
//! unreferenced THP is split into 4 KiB pages (losing its TLB benefit),
//! all of which go to swap in that pass.

use crate::model::page::{HUGE, MERGED, REFERENCED, RES_MASK, RESIDENT, SWAPPED, WRITTEN, mix64};
use crate::model::{Memory, Unit};

#[derive(Debug, Clone, Default)]
pub struct Clock {
    hand: usize,
    /// Totals over the run.
    pub scanned: u64,
    pub evicted: u64,
    pub thp_splits: u64,
    /// Draws made for sampled THP regions (the input of their hash).
    draws: u64,
    /// Slots before this one (from the hand on) already had their pages
    /// loaded: a reclaim that stops after a page or two (throttled) does
    /// not load the same slots again next time.
    preloaded: usize,
}

/// What one reclaim pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    pub scanned: u64,
    /// Pages under the slots scanned (a THP counts all of its pages, as
    /// the kernel's pgscan counts a folio's).
    pub scanned_pages: u64,
    pub evicted: u64,
    /// Reclaim stopped because too many page-outs are queued: the device
    /// needs this long (ns) before more may be written.
    pub throttled_ns: f64,
}

impl Clock {
    /// Sweep until `target_free` frames are free, the swap is full, too many
    /// page-outs are queued (the outcome then says how long to wait), or two
    /// full turns found nothing to take.
    pub fn reclaim(&mut self, mem: &mut Memory, target_free: u64, now: u64) -> Outcome {
        let n = mem.frames.slot_count();
        let mut out = Outcome::default();
        if n == 0 {
            return out;
        }
        let limit = 2 * n as u64 + 2;
        // Slots are visited 16 at a time: first their pages' states are
        // prefetched together so the cache misses overlap, then each slot is
        // handled in order, exactly as one at a time.
        const BATCH: usize = 16;
        'sweep: while mem.frames.free() < target_free && out.scanned < limit && !mem.swap.is_full() {
            // Throttled on writeback: stop before touching any page.
            let wait = mem.swap.write_throttle(now);
            if wait > 0.0 {
                out.throttled_ns = wait;
                break;
            }
            let k = BATCH.min(n - self.hand);
            let from =
                if self.preloaded > self.hand && self.preloaded <= self.hand + k { self.preloaded } else { self.hand };
            self.preloaded = self.hand + k;
            for slot in from..self.hand + k {
                if let Some(u) = mem.frames.get(slot) {
                    let guest = &mem.guests[u.guest as usize];
                    // A sampled THP's visit reads only its ThpAux.
                    if !(u.thp && guest.thp_sampled) {
                        crate::model::page::prefetch(&guest.pages[u.page as usize]);
                        // Event mode: the page's last look and its place
                        // in the event set, read when it is looked at and
                        // when it goes out.
                        if let Some(e) = guest.events.as_deref() {
                            e.prefetch(u.page as usize);
                        }
                    }
                }
            }
            for _ in 0..k {
                if mem.frames.free() >= target_free || mem.swap.is_full() {
                    break 'sweep;
                }
                let slot = self.hand;
                self.hand += 1;
                if self.hand == n {
                    self.hand = 0;
                }
                out.scanned += 1;
                let Some(unit) = mem.frames.get(slot) else { continue };
                // mlocked memory sits on the unevictable list, and a cgroup
                // at memory.swap.max has no swap for its anonymous pages:
                // reclaim does not take them (get_scan_count).
                let owner = &mem.guests[unit.guest as usize];
                if owner.unevictable || owner.swapped >= owner.swap_max {
                    continue;
                }
                if unit.thp {
                    let guest = &mem.guests[unit.guest as usize];
                    let range = guest.region_range(guest.region_of(unit.page));
                    out.scanned_pages += range.end - range.start;
                    let Some(pages) = self.visit_thp(mem, slot, unit) else { continue };
                    // The kernel reclaims all of a THP in the pass that chose
                    // it: shrink_folio_list swaps the folio out whole, or
                    // splits it onto the list it is working through and
                    // pages out every piece (mm/vmscan.c). That list has no
                    // stop for nr_to_reclaim, and writeback throttling
                    // (reclaim_throttle) waits between lists, not inside
                    // one: so the pages all go out now, even past the target
                    // or the write backlog. Only a full swap device stops
                    // it (the rest stays resident, as 4 KiB pages).
                    //
                    // Stopping at the target or the backlog instead would
                    // leave the rest of the THP resident by an amount set
                    // by reclaim's batch against the 512 pages, which
                    // sampled mode cannot reproduce: there a THP is 512·R
                    // pages and each page out stands for 1/R.
                    for (sub, p) in pages {
                        if mem.swap.is_full() {
                            break 'sweep;
                        }
                        let u = Unit { guest: unit.guest, page: p, thp: false };
                        swap_out(mem, sub, u, now);
                        out.evicted += 1;
                    }
                    continue;
                }
                out.scanned_pages += 1;
                let guest = &mut mem.guests[unit.guest as usize];
                let p = unit.page as usize;
                let mut st = guest.pages[p];
                debug_assert_eq!(st & RES_MASK, RESIDENT);
                // Event mode: the hits were not played; whether one fell on
                // this page since the hand last passed is drawn now.
                if let Some(e) = guest.events.as_deref_mut()
                    && e.touched_since(p)
                {
                    st |= REFERENCED;
                }
                if st & REFERENCED != 0 {
                    guest.pages[p] = st & !REFERENCED;
                    continue;
                }
                let wait = mem.swap.write_throttle(now);
                if wait > 0.0 {
                    // Put the hand back: this page is the next candidate.
                    self.hand = slot;
                    out.scanned -= 1;
                    out.scanned_pages -= 1;
                    out.throttled_ns = wait;
                    break 'sweep;
                }
                swap_out(mem, slot, unit, now);
                out.evicted += 1;
            }
        }
        self.scanned += out.scanned;
        self.evicted += out.evicted;
        out
    }

    /// Reclaim for guest `g`'s memory cgroup (memory.max or memory.high
    /// reached): the same second chance, over the cgroup's own pages only
    /// (its LRU), from `hand` on, until `nr` pages are out, the swap device
    /// is full or the cgroup at memory.swap.max, page-outs back up, or two
    /// turns found nothing. Needs `g`'s page-to-slot map
    /// (`Frames::track`). Locked memory is never taken.
    pub fn reclaim_guest(&mut self, mem: &mut Memory, g: usize, hand: &mut u64, nr: u64, now: u64) -> Outcome {
        let n = mem.guests[g].sim_pages();
        let mut out = Outcome::default();
        if n == 0 || mem.guests[g].unevictable {
            return out;
        }
        let limit = 2 * n + 2;
        let mut visits = 0u64;
        let full = |mem: &Memory| mem.swap.is_full() || mem.guests[g].swapped >= mem.guests[g].swap_max;
        while out.evicted < nr && visits < limit && !full(mem) {
            let p = *hand % n;
            *hand = (p + 1) % n;
            visits += 1;
            let guest = &mut mem.guests[g];
            let mut st = guest.pages[p as usize];
            match st & RES_MASK {
                RESIDENT if st & MERGED == 0 => {
                    out.scanned += 1;
                    out.scanned_pages += 1;
                    if let Some(e) = guest.events.as_deref_mut()
                        && e.touched_since(p as usize)
                    {
                        st |= REFERENCED;
                    }
                    if st & REFERENCED != 0 {
                        mem.guests[g].pages[p as usize] = st & !REFERENCED;
                        continue;
                    }
                    let wait = mem.swap.write_throttle(now);
                    if wait > 0.0 {
                        *hand = p;
                        out.throttled_ns = wait;
                        break;
                    }
                    let Some(slot) = mem.frames.slot_of(g as u32, p) else { continue };
                    swap_out(mem, slot, Unit { guest: g as u32, page: p, thp: false }, now);
                    out.evicted += 1;
                }
                HUGE => {
                    // Hugetlb pages are the pool's, not the cgroup's; a THP
                    // is looked at once, at its head.
                    let region = guest.region_of(p);
                    let range = guest.region_range(region);
                    *hand = range.end % n;
                    visits += range.end.saturating_sub(p + 1);
                    if !matches!(guest.backing_at(p), crate::model::Backing::Small { .. }) {
                        continue;
                    }
                    let Some(slot) = mem.frames.slot_of(g as u32, range.start) else { continue };
                    out.scanned += 1;
                    out.scanned_pages += range.end - range.start;
                    let unit = Unit { guest: g as u32, page: range.start, thp: true };
                    let Some(pages) = self.visit_thp(mem, slot, unit) else { continue };
                    for (sub, q) in pages {
                        if full(mem) {
                            break;
                        }
                        swap_out(mem, sub, Unit { guest: g as u32, page: q, thp: false }, now);
                        out.evicted += 1;
                    }
                }
                _ => {}
            }
        }
        self.scanned += out.scanned;
        self.evicted += out.evicted;
        out
    }

    /// A THP under the hand: second chance if it was touched since the
    /// last look, otherwise split it into 4 KiB pages in place. Returns the
    /// split pages' slots and page numbers.
    ///
    /// When exact, a THP was touched when any of its pages was (the PMD's
    /// accessed bit): plain second chance.
    ///
    /// In sampled mode a region keeps only some of its 512 pages, and the
    /// others are touched too, unseen. The guest's touches are a stream of
    /// independent draws from its pattern, so given n real touches since
    /// the last look (the engine's count), each landed on the region with
    /// its share of the pattern and at least one did with probability
    /// 1 − (1 − share)^n ≈ 1 − e^(−share·n), whether the pages it landed on
    /// are simulated or not. The visit draws that, reading only the THP's
    /// [`ThpAux`] beside its slot (the sampled pages' own accessed bits are
    /// one realisation of the same law and need not be read). Counting
    /// touches, not time, keeps a stalled guest's pace exact: in sampled
    /// mode one simulated fault stalls the guest 1/R real faults at once,
    /// which no rate estimate over a short window follows.
    ///
    /// [`ThpAux`]: crate::model::frames::ThpAux
    // Inlined into both sweeps: called from two places the compiler keeps
    // it out of line, which cost the 512 GiB benchmark host 8%.
    #[inline(always)]
    fn visit_thp(&mut self, mem: &mut Memory, slot: usize, unit: Unit) -> Option<Vec<(usize, u64)>> {
        let guest = &mut mem.guests[unit.guest as usize];
        let region = guest.region_of(unit.page);
        let range = guest.region_range(region);
        let referenced = if let Some(aux) = mem.frames.thp_aux_mut(slot) {
            let n = (guest.touches - aux.last_visit).max(0.0);
            aux.last_visit = guest.touches;
            // A draw that depends only on the region and the sweep, so runs
            // stay reproducible.
            self.draws = self.draws.wrapping_add(1);
            // Past x = share·n = 37, e^(−x) < 2^−53: 1 − e^(−x) rounds to
            // 1.0 and every draw is below it. The usual case for a hot
            // region, so skip the exponential and the hash. Otherwise
            // x/(1 + x) ≤ 1 − e^(−x) ≤ x (from e^x ≥ 1 + x) settles most
            // draws without the exponential either.
            // The shares are one table per group and phase, small enough
            // to stay in cache.
            let x = f64::from(guest.region_shares.total.get(region).copied().unwrap_or(0.0)) * n;
            std::mem::take(&mut aux.fresh) || x > 37.0 || {
                let h = mix64(unit.page ^ (u64::from(unit.guest) << 40) ^ self.draws.wrapping_mul(0x9E37_79B9));
                let u = (h >> 11) as f64 / (1u64 << 53) as f64;
                u < x / (1.0 + x) || (u < x && u < -(-x).exp_m1())
            }
        } else {
            let mut referenced = false;
            for p in range.clone() {
                referenced |= guest.pages[p as usize] & REFERENCED != 0;
            }
            // Event mode: the PMD's accessed bit is set when a hit fell on
            // any of its pages since the last look.
            if let Some(e) = guest.events.as_deref_mut() {
                referenced |= e.region_touched_since(range.start as usize..range.end as usize);
            }
            referenced
        };
        // The look clears the accessed bit (kept on the pages: the split
        // pages start unreferenced, as the kernel's split copies the PMD's
        // cleared young bit to every PTE).
        for p in range {
            guest.pages[p as usize] &= !REFERENCED;
        }
        if referenced {
            return None;
        }
        self.thp_splits += 1;
        Some(split_thp(mem, slot, unit))
    }
}

/// Split the THP in `slot` (`unit` is its head) into 4 KiB pages in place:
/// the head page keeps the slot, the others get slots of their own. Returns
/// each page's slot and page number.
pub fn split_thp(mem: &mut Memory, slot: usize, unit: Unit) -> Vec<(usize, u64)> {
    let guest = &mut mem.guests[unit.guest as usize];
    let range = guest.region_range(guest.region_of(unit.page));
    for p in range.clone() {
        let st = &mut guest.pages[p as usize];
        debug_assert_eq!(*st & RES_MASK, HUGE);
        *st = (*st & !RES_MASK) | RESIDENT;
    }
    let count = range.end - range.start;
    guest.huge -= count;
    guest.resident += count;
    guest.thps -= 1;
    let g = unit.guest;
    mem.frames.replace(slot, Unit { guest: g, page: range.start, thp: false });
    let mut pages = Vec::with_capacity(count as usize);
    pages.push((slot, range.start));
    for p in range.start + 1..range.end {
        pages.push((mem.frames.insert_counted(Unit { guest: g, page: p, thp: false }) as usize, p));
    }
    pages
}

/// Write resident 4 KiB page `unit` in `slot` to swap and free its frame.
fn swap_out(mem: &mut Memory, slot: usize, unit: Unit, now: u64) {
    let guest = &mut mem.guests[unit.guest as usize];
    let p = unit.page as usize;
    if let Some(e) = guest.events.as_deref_mut() {
        // Event mode: writes its hits made since ksmd last looked are
        // settled before the page leaves (its content is what goes out).
        if e.written_since(p) {
            guest.pages[p] |= WRITTEN;
        }
    }
    guest.pages[p] = (guest.pages[p] & !RES_MASK) | SWAPPED;
    if let Some(e) = guest.events.as_deref_mut() {
        e.note(p, guest.pages[p]);
    }
    guest.resident -= 1;
    guest.swapped += 1;
    if guest.swapped > guest.peak_swapped {
        guest.peak_swapped = guest.swapped;
    }
    mem.frames.remove(slot, 1);
    mem.swap.write(now);
    if mem.swap.ram_per_page > 0.0 {
        mem.sync_zram();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::page::{HUGE, REFERENCED, RES_MASK, SWAPPED};
    use crate::model::swap::SwapDevice;
    use crate::model::{Backing, Frames, Guest, Watermarks};
    use crate::scenario::Swap;
    use crate::units::{ByteSize, Span};

    /// One THP guest of 8 MiB (four 2 MiB regions, all THPs) filling a host
    /// of exactly that size, with a fast swap device.
    fn full_of_thps() -> Memory {
        let mut g = Guest::new("g".into(), 0, Backing::Small { thp: true }, 2048, Vec::new(), 0.0, 0.0);
        let mut frames = Frames::new(2048);
        for r in 0..4u64 {
            for p in r * 512..(r + 1) * 512 {
                g.pages[p as usize] = HUGE;
            }
            g.region_touched[r as usize] = 512;
            frames.insert(Unit { guest: 0, page: r * 512, thp: true }, 512);
        }
        g.huge = 2048;
        g.thps = 4;
        let swap = Swap {
            size: ByteSize::mib(64),
            device: "custom".into(),
            read_latency: Span(1),
            write_latency: Span(1),
            bandwidth_bytes_per_s: 1 << 40,
            queue_depth: 64,
            ram_per_page: 0.0,
            scheduler: crate::scenario::IoScheduler::None,
        };
        Memory {
            frames,
            watermarks: Watermarks { min: 0, low: 0, high: 0 },
            pools: Vec::new(),
            swap: SwapDevice::new(Some(&swap), 1.0),
            zram_frames: 0,
            guests: vec![g],
            peak_used: 0,
            min_free: 0,
        }
    }

    #[test]
    fn a_split_thp_gives_up_all_its_pages_in_the_same_pass() {
        // Kernel semantics (mm/vmscan.c, shrink_folio_list): an unreferenced
        // THP chosen for swap-out is split and all its pages are reclaimed
        // in that pass, even past the target. Region 0 was not touched
        // since the last look; regions 1-3 were. Asking for 100 frames must
        // split region 0 only and swap all 512 of its pages, leaving the
        // referenced THPs whole.
        let mut mem = full_of_thps();
        for r in 1..4usize {
            mem.guests[0].pages[r * 512 + 7] |= REFERENCED;
        }
        let mut clock = Clock::default();
        let out = clock.reclaim(&mut mem, 100, 0);
        assert_eq!(out.evicted, 512);
        assert_eq!(mem.frames.free(), 512);
        assert_eq!(clock.thp_splits, 1);
        let g = &mem.guests[0];
        assert_eq!(g.thps, 3);
        assert_eq!(g.swapped, 512);
        assert!(g.pages[..512].iter().all(|&s| s & RES_MASK == SWAPPED));
        assert!(g.pages[512..].iter().all(|&s| s & RES_MASK == HUGE));
    }

    #[test]
    fn when_every_thp_is_referenced_clock_clears_then_takes_the_first() {
        // Second chance (CLOCK): a first turn clears every accessed bit and
        // takes nothing; the second turn finds the first THP unreferenced.
        // One split is enough for 10 frames (all of it goes): the other
        // three stay THPs.
        let mut mem = full_of_thps();
        for r in 0..4usize {
            mem.guests[0].pages[r * 512] |= REFERENCED;
        }
        let mut clock = Clock::default();
        let out = clock.reclaim(&mut mem, 10, 0);
        assert_eq!(out.evicted, 512);
        assert_eq!(clock.thp_splits, 1);
        assert_eq!(mem.guests[0].thps, 3);
    }
}
