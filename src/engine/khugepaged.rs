//! khugepaged's wake-ups: the next PMD ranges of the THP guests looked at,
//! and those [`crate::policy::khugepaged::verdict`] accepts collapsed into
//! huge pages (the rules and their sources are in that file).
//!
//! What a range holds is read off its simulated pages. Page-exact, that is
//! its 512 pages; in sampled mode a region keeps only some of them, and
//! each count is scaled to 512 (an estimate the limits are then held to),
//! and a region was referenced when the guest's workload touches it at
//! all (its young bits stay set until reclaim looks, and the model keeps
//! no per-page bit for a sampled region's unseen pages). A range holding
//! ballooned pages is left alone: the model does not let a collapse fill
//! the balloon's holes (the kernel would, with max_ptes_none at 511).

use super::*;
use crate::model::frames::ThpAux;
use crate::model::page::Content;
use crate::model::swap::SwapPage;
use crate::policy::khugepaged::{Knobs, Range, Verdict, verdict};

/// khugepaged's place in its scan and what it did.
#[derive(Debug, Clone, Default)]
pub(super) struct Khugepaged {
    pub(super) knobs: Knobs,
    /// The next range to look at: guest and region.
    guest: usize,
    region: usize,
    /// Passes over every guest (`full_scans`), ranges collapsed
    /// (`pages_collapsed`, `thp_collapse_alloc`) and huge pages it could
    /// not allocate (`thp_collapse_alloc_failed`).
    pub(super) full_scans: u64,
    pub(super) collapsed: u64,
    pub(super) alloc_failed: u64,
}

impl Khugepaged {
    pub(super) fn new(knobs: Knobs) -> Khugepaged {
        Khugepaged { knobs, ..Khugepaged::default() }
    }
}

/// What looking at one range came to.
enum Look {
    Done,
    /// No huge page to collapse into: khugepaged sleeps
    /// `alloc_sleep_millisecs`.
    AllocFailed,
}

impl Engine<'_> {
    /// khugepaged's wake-up at `now`: `pages_to_scan` pages' worth of
    /// ranges, then its sleep.
    pub(super) fn khugepaged(&mut self, now: SimTime) -> Result<(), RunError> {
        let Some(mut kh) = self.khugepaged.take() else { return Ok(()) };
        let mut sleep = kh.knobs.scan_sleep_millisecs;
        let mut left = kh.knobs.ranges_per_wake();
        // Guests passed without a range to look at: a whole list of them
        // ends the wake-up (nothing is eligible now).
        let mut idle = 0;
        while left > 0 && idle <= self.mem.guests.len() {
            if kh.guest >= self.mem.guests.len() {
                kh.guest = 0;
                kh.region = 0;
                kh.full_scans += 1;
            }
            let g = kh.guest;
            let guest = &self.mem.guests[g];
            if !guest.is_alive() || kh.region >= guest.region_count() {
                kh.guest += 1;
                kh.region = 0;
                idle += 1;
                continue;
            }
            let r = kh.region;
            kh.region += 1;
            let range = guest.region_range(r);
            if range.is_empty() || !matches!(guest.backing_at(range.start), Backing::Small { thp: true }) {
                continue;
            }
            idle = 0;
            left -= 1;
            if let Look::AllocFailed = self.khugepaged_range(&mut kh, g, r, now) {
                sleep = kh.knobs.alloc_sleep_millisecs;
                break;
            }
        }
        self.khugepaged = Some(kh);
        self.queue.schedule(now + u64::from(sleep).max(1) * 1_000_000, Ev::Khugepaged)?;
        Ok(())
    }

    /// Look at region `r` of guest `g` and collapse it if the kernel would.
    fn khugepaged_range(&mut self, kh: &mut Khugepaged, g: usize, r: usize, now: SimTime) -> Look {
        let guest = &mut self.mem.guests[g];
        let range = guest.region_range(r);
        let size = range.end - range.start;
        // Inside guest RAM, and not a huge page already (SCAN_PMD_MAPPED).
        if guest.region_real_pages(r) != 512 || guest.pages[range.start as usize] & RES_MASK == HUGE {
            return Look::Done;
        }
        let zero_pages = self.ksm.as_ref().is_some_and(|k| k.knobs.use_zero_pages);
        let mut counts = Range::default();
        let mut referenced = false;
        for q in range.clone() {
            let st = guest.pages[q as usize];
            if st & CLASS_MASK == BALLOONED {
                return Look::Done;
            }
            referenced |= st & REFERENCED != 0;
            match st & RES_MASK {
                UNTOUCHED => counts.none_or_zero += 1.0,
                SWAPPED => counts.swap += 1.0,
                RESIDENT if st & MERGED == 0 => counts.own += 1.0,
                RESIDENT => {
                    // The zero page (a split's remap, or KSM's with
                    // use_zero_pages) is a zero-pfn entry; a KSM page is
                    // mapped elsewhere too.
                    let zero = guest.is_zero_mapped(q) || (zero_pages && Content::of(st) == Content::Zero);
                    if zero {
                        counts.none_or_zero += 1.0;
                    } else {
                        counts.shared += 1.0;
                    }
                }
                _ => {}
            }
        }
        let scale = 512.0 / size as f64;
        for c in [&mut counts.none_or_zero, &mut counts.swap, &mut counts.shared, &mut counts.own] {
            *c *= scale;
        }
        if !referenced {
            referenced = if guest.thp_sampled {
                guest.region_shares.total.get(r).is_some_and(|&s| s > 0.0)
            } else if let Some(e) = guest.events.as_deref_mut() {
                e.region_young(range.start as usize..range.end as usize)
            } else {
                false
            };
        }
        // Young pages count one each; what matters is whether there are
        // none, and (with swapped pages) whether half are: the swapped
        // ones are not young, the others are taken to be.
        counts.referenced = if referenced { 512.0 - counts.swap } else { 0.0 };
        if verdict(&counts, &kh.knobs) != Verdict::Collapse {
            return Look::Done;
        }
        // The huge page is allocated first (above the min watermark, as a
        // THP fault's), then charged to the guest's memory cgroup.
        if self.mem.frames.free() < size + self.mem.watermarks.min {
            kh.alloc_failed += 1;
            return Look::AllocFailed;
        }
        if let Some(cg) = &self.runners[g].memcg
            && self.memcg_usage(g) + size > cg.max.min(cg.high)
        {
            // Charged before the old pages are freed; the model does not
            // reclaim the cgroup for it (SCAN_CGROUP_CHARGE_FAIL): the
            // next range.
            return Look::Done;
        }
        self.collapse(g, r, now);
        kh.collapsed += 1;
        Look::Done
    }

    /// Collapse region `r` of guest `g` into a huge page at `now`: its
    /// swapped pages read back, its own pages and its KSM mappings
    /// dropped, every page mapped by the huge page.
    fn collapse(&mut self, g: usize, r: usize, now: SimTime) {
        let range = self.mem.guests[g].region_range(r);
        let size = range.end - range.start;
        let mut reads = false;
        for q in range.clone() {
            let st = self.mem.guests[g].pages[q as usize];
            match st & RES_MASK {
                SWAPPED if st & MERGED != 0 => {
                    // An entry of a swapped-out KSM page: read in (or
                    // copied) for the copy like a sharer's fault, its slot
                    // kept for the other sharers.
                    let id = self.mem.ksm.swapped_entry(g, q).expect("a KSM entry keeps MERGED");
                    let guests = &self.mem.guests;
                    let io = self.mem.ksm.swap_in(id, g as u32, q, |g0, p0| {
                        guests[g0 as usize].pages[p0 as usize] & RES_MASK == RESIDENT
                    });
                    self.mem.ksm_io(now, io);
                    self.mem.guests[g].swapped -= 1;
                    reads = true;
                }
                SWAPPED => {
                    // __collapse_huge_page_swapin: read in for the copy.
                    self.mem.swap.read(now, SwapPage::of(g as u32, q, st), false);
                    self.mem.guests[g].swapped -= 1;
                    reads = true;
                }
                RESIDENT => {
                    self.unmap_small(g, q);
                }
                _ => {}
            }
            let guest = &mut self.mem.guests[g];
            let st = (guest.pages[q as usize] & !(RES_MASK | MERGED)) | HUGE;
            guest.pages[q as usize] = st;
            if let Some(e) = guest.events.as_deref_mut() {
                e.note(q as usize, st);
            }
        }
        if reads && self.mem.swap.keeps_pages_in_ram() {
            self.mem.sync_zram();
        }
        let guest = &mut self.mem.guests[g];
        guest.region_touched[r] = size as u32;
        guest.huge += size;
        guest.thps += 1;
        let slot = self.mem.frames.insert(Unit { guest: g as u32, page: range.start, thp: true }, size);
        if let Some(a) = self.mem.frames.thp_aux_mut(slot as usize) {
            *a = ThpAux { last_visit: self.runners[g].touches_real, fresh: true, region: r as u32, pages: size as u16 };
        }
        self.vm.thp_collapse_alloc += 1;
        self.after_allocation(now);
    }
}
