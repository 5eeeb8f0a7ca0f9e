//! Page reclaim: kswapd and direct reclaim.
//!
//! The kernel ages anonymous pages on two LRU lists per memory cgroup
//! (an lruvec): shrink_active_list moves pages from the active list's tail
//! to the inactive list, clearing their accessed bits (for anonymous pages
//! whether or not they were referenced), and shrink_inactive_list takes
//! the inactive tail: a page referenced since it was deactivated goes back
//! to the active list, the others are swapped out. The inactive list is
//! kept at 1/(1 + √(10·GiB)) of the lruvec (`inactive_is_low`, mm/vmscan.c:
//! half of one under 1 GiB, a seventh of one of 4 GiB). Only the inactive
//! scan counts in `pgscan`; the active one is `pgrefill`.
//!
//! We play that as a two-handed CLOCK (the BSD page daemon's): a front
//! hand clears accessed bits (deactivation) and the back hand, that many
//! pages behind it (the inactive list), takes the pages still unreferenced
//! and passes over the others, clearing their bits. It needs one bit per
//! page and no list surgery on a hit, which keeps the touch loop to a
//! single byte write. A page survives when it was touched while it sat
//! between the hands, as on the kernel's inactive list; with the hands half
//! a turn apart (small guests) that approximates LRU closely under
//! independent references, which lets the tests hold it to Che's LRU
//! approximation. With one LRU over all guests (`host.reclaim.lru:
//! shared`, the default) global reclaim is one pair of hands over the
//! slot table, in the order the guests got memory, set apart by the
//! guests' inactive shares weighted by their resident memory. Each guest
//! also has hands of its own over its pages (`lruvec`): its cgroup's
//! reclaim walks them, and so does global reclaim with an lruvec per guest
//! (`per-guest`, libvirt's cgroup per guest), each in proportion to its
//! size.
//!
//! A transparent huge page is reclaimed the way the kernel does it: an
//! unreferenced THP is split into 4 KiB pages (losing its TLB benefit),
//! all of which go to swap in that pass.

mod lruvec;

use lruvec::LruHands;
pub use lruvec::{Knobs, Lru};

use crate::model::ksmpage::KSM_OWNER;
use crate::model::page::{Content, HUGE, MERGED, REFERENCED, RES_MASK, RESIDENT, SWAPPED, WRITTEN, mix64};
use crate::model::swap::SwapPage;
use crate::model::{Memory, Unit};

/// The share of an lruvec of `pages` 4 KiB pages that the kernel keeps on
/// its inactive list: 1/(1 + inactive_ratio), inactive_ratio being
/// int_sqrt(10 × GiB) from 1 GiB up and 1 below (`inactive_is_low`).
pub fn inactive_share(pages: u64) -> f64 {
    let gb = pages >> 18;
    let ratio = if gb == 0 { 1 } else { (10 * gb).isqrt() };
    1.0 / (1 + ratio) as f64
}

#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// The back hand (the inactive scan).
    hand: usize,
    /// The front hand (deactivation), a slot, and the frames it
    /// deactivated that the back hand has not reached (recounted at each
    /// turn: slots appended to the table or reused between the hands make
    /// the running count drift).
    front: usize,
    inactive: u64,
    /// Slots from the front hand on already prefetched.
    front_preloaded: usize,
    /// The hands were placed (at the first reclaim).
    placed: bool,
    /// Totals over the run.
    pub scanned: u64,
    pub evicted: u64,
    /// Draws made for sampled THP regions (the input of their hash),
    /// counted from a start the run's seed gives ([`Clock::seeded`]).
    draws: u64,
    /// Each guest's real touch count at this reclaim (time stands still
    /// while it runs), read once instead of at every visit.
    touches: Vec<f64>,
    /// Slots before this one (from the hand on) already had their pages
    /// loaded: a reclaim that stops after a page or two (throttled) does
    /// not load the same slots again next time.
    preloaded: usize,
    /// What taking one page out costs the reclaimer beyond its swap
    /// backend's store ([`crate::latency::Costs::reclaim_page_ns`]).
    pub page_ns: f64,
    /// Host reclaim walks each guest's lruvec ([`Lru::PerGuest`]), not
    /// the slot table.
    per_guest: bool,
    /// Each guest's hands over its own lruvec (its cgroup's reclaim, and
    /// the host's when per guest), where each round of host reclaim has
    /// got to (in shares of its lruvec scanned), the guest whose turn it
    /// is, and the round.
    lru: Vec<LruHands>,
    pass: Vec<f64>,
    cursor: usize,
    round: f64,
}

/// What one reclaim pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    pub scanned: u64,
    /// Pages under the slots scanned (a THP counts all of its pages, as
    /// the kernel's pgscan counts a folio's).
    pub scanned_pages: u64,
    /// Units and pages the front hand deactivated (`pgrefill`).
    pub deactivated: u64,
    pub refill_pages: u64,
    pub evicted: u64,
    /// Reclaim stopped because too many page-outs are queued: the device
    /// needs this long (ns) before more may be written.
    pub throttled_ns: f64,
    /// The reclaimer's own time taking the pages out: [`Clock::page_ns`]
    /// a page plus what the swap backend's stores took on its CPU.
    pub work_ns: f64,
}

/// How far ahead of a hand its slots' table lines are prefetched.
const SLOTS_AHEAD: usize = 64;

/// What direct reclaim costs a page it scans or deactivates (the LRU
/// walk, the accessed-bit test), beyond taking pages out.
pub const SCAN_NS: f64 = 200.0;

impl Outcome {
    /// The reclaiming task's time for the pass: its scans, its page-outs
    /// and any wait for the device (`throttled_ns`) when `with_throttle`.
    pub fn stall_ns(&self, with_throttle: bool) -> f64 {
        (self.scanned + self.deactivated) as f64 * SCAN_NS
            + self.work_ns
            + if with_throttle { self.throttled_ns } else { 0.0 }
    }
}

/// The reclaimer's clock through one pass: it takes its pages out one
/// after another, each costing it [`Clock::page_ns`] and what the
/// backend's store took, so each goes to swap when the reclaimer gets to
/// it, not all at the pass's start.
struct Pace {
    start: u64,
    page_ns: f64,
    work: f64,
}

impl Pace {
    fn at(&self) -> u64 {
        // Work is a finite, non-negative time far below 2^63 ns: through
        // i64 the conversion is one instruction, with the same value.
        self.start + self.work as i64 as u64
    }
}

impl Clock {
    /// A clock whose reclaimer takes `page_ns` a page out, walking the
    /// lists `knobs` say.
    pub fn new(page_ns: f64, knobs: Knobs) -> Clock {
        Clock { page_ns, per_guest: knobs.lru == Lru::PerGuest, ..Clock::default() }
    }

    /// The hash behind a sampled THP's accessed bit (`Clock::visit_thp`)
    /// takes the run's seed: without it every seed drew the same bits for
    /// the same region at the same draw, and a mean over seeds kept that
    /// one draw's error (as the first touches of unsimulated pages did
    /// before their hash took the seed, `Engine::apply_workload`).
    pub fn seeded(mut self, seed: u64) -> Clock {
        self.draws = mix64(seed ^ 0x7C1D_5EED);
        self
    }

    /// Whether host reclaim walks each guest's own pages (and so needs
    /// every guest's page-to-slot map, `Frames::track`).
    pub fn walks_guests(&self) -> bool {
        self.per_guest
    }

    /// Sweep until `target_free` frames are free, the swap is full, too many
    /// page-outs are queued (the outcome then says how long to wait), or two
    /// full turns found nothing to take. `paced`: a task reclaims on its
    /// own time (direct reclaim), taking its pages out one after another
    /// ([`Clock::page_ns`] each); kswapd's pass is played at its instant
    /// (it works beside the guests, and its batches run to thousands of
    /// pages, which would date their writes far ahead of the device's
    /// other requests).
    pub fn reclaim(&mut self, mem: &mut Memory, target_free: u64, now: u64, paced: bool) -> Outcome {
        if self.per_guest {
            return self.reclaim_lruvecs(mem, target_free, now, paced);
        }
        let n = mem.frames.slot_count();
        let mut out = Outcome::default();
        if n == 0 {
            return out;
        }
        let mut pace = Pace { start: now, page_ns: if paced { self.page_ns } else { 0.0 }, work: 0.0 };
        let limit = 2 * n as u64 + 2;
        let target_inactive = (global_inactive_share(mem) * mem.frames.used() as f64) as u64;
        self.touches.clear();
        self.touches.extend(mem.guests.iter().map(|g| g.touches_now()));
        if !self.placed {
            // The kernel puts new anonymous pages on the inactive list
            // (lru_cache_add_inactive_or_unevictable), their accessed bits
            // set by the faults that mapped them: at the first reclaim,
            // everything is between the hands.
            self.placed = true;
            self.front = (self.hand + n - 1) % n;
            self.inactive = mem.frames.used();
        }
        // Slots are visited 16 at a time: first their pages' states are
        // prefetched together so the cache misses overlap, then each slot is
        // handled in order, exactly as one at a time.
        const BATCH: usize = 16;
        let mut at_front = false;
        'sweep: while mem.frames.free() < target_free && out.scanned < limit && !mem.swap.is_full() {
            // Throttled on writeback: stop before touching any page.
            let wait = mem.swap.write_throttle(pace.at());
            if wait > 0.0 {
                out.throttled_ns = wait;
                break;
            }
            let k = BATCH.min(n - self.hand);
            // The front hand first: every slot of the batch deactivated, and
            // the inactive list between the hands at its size.
            self.advance_front(mem, target_inactive, k, &mut out);
            let from =
                if self.preloaded > self.hand && self.preloaded <= self.hand + k { self.preloaded } else { self.hand };
            self.preloaded = self.hand + k;
            mem.frames.prefetch_slot(self.hand + SLOTS_AHEAD);
            mem.frames.prefetch_slot(self.hand + SLOTS_AHEAD + 8);
            for slot in from..self.hand + k {
                if let Some(u) = mem.frames.get(slot) {
                    prefetch_unit(mem, slot, u);
                }
            }
            // Free memory and a full device change only where a page goes
            // out: checked there (and by the sweep's condition), not at
            // every slot.
            for _ in 0..k {
                // Caught up with the front hand by a move past a THP's
                // tails: it goes on first.
                if std::mem::take(&mut at_front) {
                    break;
                }
                let slot = self.hand;
                self.hand += 1;
                if self.hand == n {
                    self.hand = 0;
                    self.recount(mem);
                }
                if mem.frames.is_tail(slot) {
                    continue;
                }
                out.scanned += 1;
                let Some(unit) = mem.frames.get(slot) else { continue };
                // A KSM page is one frame, whoever maps it (looked at with
                // the 4 KiB pages below).
                let ksm = unit.guest == KSM_OWNER;
                // Pages on no LRU (mlocked, or no swap left to their
                // cgroup) are not taken.
                if !ksm && mem.guests[unit.guest as usize].off_lru() {
                    continue;
                }
                if unit.thp {
                    let (region, pages) = thp_extent(mem, slot, unit);
                    out.scanned_pages += pages;
                    self.inactive = self.inactive.saturating_sub(pages);
                    // Past its tails in one move (they follow it; a THP
                    // taken below leaves them empty, not to be counted as
                    // slots scanned).
                    if pages > 1 {
                        let end = slot + pages as usize;
                        if end >= n {
                            self.hand = 0;
                            self.recount(mem);
                        } else {
                            self.hand = end;
                        }
                        at_front = self.hand == self.front;
                    }
                    let touches = self.touches[unit.guest as usize];
                    if !self.visit_thp(mem, slot, unit, region, touches) {
                        continue;
                    }
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
                    out.evicted += evict_thp(mem, slot, unit, &mut pace, |_| false);
                    if mem.swap.is_full() || mem.frames.free() >= target_free {
                        break 'sweep;
                    }
                    continue;
                }
                out.scanned_pages += 1;
                self.inactive = self.inactive.saturating_sub(1);
                if ksm {
                    if ksm_referenced(mem, unit.page as u32) {
                        continue;
                    }
                } else {
                    let guest = &mut mem.guests[unit.guest as usize];
                    let p = unit.page as usize;
                    let mut st = guest.pages[p];
                    debug_assert_eq!(st & RES_MASK, RESIDENT);
                    // Event mode: the hits were not played; whether one fell
                    // on this page since the front hand passed is drawn now.
                    if let Some(e) = guest.events.as_deref_mut()
                        && e.touched_since(p)
                    {
                        st |= REFERENCED;
                    }
                    if st & REFERENCED != 0 {
                        guest.pages[p] = st & !REFERENCED;
                        continue;
                    }
                }
                let wait = mem.swap.write_throttle(pace.at());
                if wait > 0.0 {
                    // Put the hand back: this page is the next candidate.
                    self.hand = slot;
                    self.inactive += 1;
                    out.scanned -= 1;
                    out.scanned_pages -= 1;
                    out.throttled_ns = wait;
                    break 'sweep;
                }
                if ksm {
                    ksm_swap_out(mem, unit.page as u32, &mut pace);
                } else {
                    swap_out(mem, slot, unit, &mut pace);
                }
                out.evicted += 1;
                if mem.frames.free() >= target_free || mem.swap.is_full() {
                    break 'sweep;
                }
            }
        }
        out.work_ns = pace.work;
        self.scanned += out.scanned;
        self.evicted += out.evicted;
        out
    }

    /// Slots the front hand is ahead of the back.
    #[inline]
    fn lead(&self, n: usize) -> usize {
        // Both hands are below n: no division needed.
        if self.front >= self.hand { self.front - self.hand } else { self.front + n - self.hand }
    }

    /// Count the frames between the hands afresh.
    fn recount(&mut self, mem: &Memory) {
        let n = mem.frames.slot_count();
        self.inactive = (0..self.lead(n))
            .filter_map(|i| {
                let slot = (self.hand + i) % n;
                mem.frames.get(slot).map(|u| lru_pages(mem, slot, u))
            })
            .sum();
    }

    /// Move the front hand until it is at least `min_lead` slots ahead of
    /// the back hand and has `target` frames deactivated between them (or
    /// is a whole turn ahead), clearing the accessed bits of what it passes.
    fn advance_front(&mut self, mem: &mut Memory, target: u64, min_lead: usize, out: &mut Outcome) {
        let n = mem.frames.slot_count();
        const BATCH: usize = 16;
        self.front %= n;
        // It never stops on a THP's tail: the back hand moves past a THP's
        // tails in one step and must not pass it.
        while (self.inactive < target || self.lead(n) < min_lead || mem.frames.is_tail(self.front))
            && self.lead(n) + 1 < n
        {
            let front = self.front;
            let k = BATCH.min(n - front).min(n - 1 - self.lead(n));
            let from = if self.front_preloaded > front && self.front_preloaded <= front + k {
                self.front_preloaded
            } else {
                front
            };
            self.front_preloaded = front + k;
            // The table's lines a few batches on (eight slots a line).
            mem.frames.prefetch_slot(front + SLOTS_AHEAD);
            mem.frames.prefetch_slot(front + SLOTS_AHEAD + 8);
            for slot in from..front + k {
                if let Some(u) = mem.frames.get(slot) {
                    prefetch_unit(mem, slot, u);
                }
            }
            for slot in front..front + k {
                self.front = if slot + 1 == n { 0 } else { slot + 1 };
                let Some(unit) = mem.frames.get(slot) else { continue };
                let touches = self.touches.get(unit.guest as usize).copied().unwrap_or(0.0);
                let pages = deactivate(mem, slot, unit, touches);
                self.inactive += pages;
                out.deactivated += u64::from(pages > 0);
                out.refill_pages += pages;
                if self.inactive >= target && self.lead(n) >= min_lead && !mem.frames.is_tail(self.front) {
                    break;
                }
            }
        }
    }

    /// A THP under the back hand: second chance if it was touched since
    /// the front hand passed it; otherwise it is to be split and paged out
    /// (true; the split counts in `Memory::thp_splits`).
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
    fn visit_thp(&mut self, mem: &mut Memory, slot: usize, unit: Unit, region: usize, touches: f64) -> bool {
        let guest = &mut mem.guests[unit.guest as usize];
        let referenced = if let Some(aux) = mem.frames.thp_aux_mut(slot) {
            let n = (touches - aux.last_visit).max(0.0);
            aux.last_visit = touches;
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
            pmd_young(guest, guest.region_range(region))
        };
        // The look clears the accessed bit, kept on the pages: a THP
        // split to go out has pages that start unreferenced, as the
        // kernel's split copies the PMD's cleared young bit to every PTE.
        // A sampled THP's bit is its ThpAux, so a busy one's pages are
        // left alone (the hand does not wait for their line): a split by
        // KSM or a balloon gives them the bit ([`split_thp`]).
        if !(guest.thp_sampled && referenced) {
            for p in guest.region_range(region) {
                guest.pages[p as usize] &= !REFERENCED;
            }
        }
        !referenced
    }
}

/// The pages of the THP whose head is `unit`, now mapped as 4 KiB pages
/// (their frames not yet given slots of their own).
fn map_thp_small(mem: &mut Memory, unit: Unit) -> std::ops::Range<u64> {
    let guest = &mut mem.guests[unit.guest as usize];
    let range = guest.region_range(guest.region_of(unit.page));
    for p in range.clone() {
        let st = &mut guest.pages[p as usize];
        debug_assert_eq!(*st & RES_MASK, HUGE);
        *st = (*st & !RES_MASK) | RESIDENT;
        // Event mode: its hits are 4 KiB ones now (translation and walk).
        let st = *st;
        if let Some(e) = guest.events.as_deref_mut() {
            e.note(p as usize, st);
        }
    }
    let count = range.end - range.start;
    guest.huge -= count;
    guest.resident += count;
    guest.thps -= 1;
    mem.thp_splits += 1;
    range
}

/// Split the THP in `slot` (`unit` is its head) into 4 KiB pages in place:
/// the head page keeps the slot, the others get slots of their own. Returns
/// each page's slot and page number.
///
/// The kernel's split copies the PMD's young bit to every PTE
/// (`__split_huge_pmd_locked`): a sampled THP's accessed bit is drawn from
/// its [`ThpAux`] as reclaim's hand draws it (the hands do not keep it on
/// the pages), an exact THP's is whether any of its pages was touched
/// since the hand last looked; either way all its pages get it.
///
/// [`ThpAux`]: crate::model::frames::ThpAux
pub fn split_thp(mem: &mut Memory, slot: usize, unit: Unit) -> Vec<(usize, u64)> {
    let young = sampled_young(mem, slot, unit).unwrap_or_else(|| exact_young(mem, unit));
    let range = map_thp_small(mem, unit);
    let g = unit.guest;
    let guest = &mut mem.guests[g as usize];
    for p in range.clone() {
        let st = &mut guest.pages[p as usize];
        *st = if young { *st | REFERENCED } else { *st & !REFERENCED };
    }
    // Since Linux 6.12 the split maps the zero-filled subpages of an
    // anonymous THP to the shared zero page (__split_huge_page: remap_page
    // with RMP_USE_SHARED_ZEROPAGE; try_to_map_unused_to_zeropage skips
    // mlocked memory) and frees them.
    let mut zero = 0u64;
    if !guest.unevictable {
        for p in range.clone() {
            let st = guest.pages[p as usize];
            if Content::of(st) != Content::Zero || st & WRITTEN != 0 {
                continue;
            }
            // A write since the guest's content was last settled (event
            // mode draws it now) leaves the page its own.
            if guest.events.as_deref_mut().is_some_and(|e| e.written_since(p as usize)) {
                guest.pages[p as usize] |= WRITTEN;
                continue;
            }
            guest.pages[p as usize] = st | MERGED;
            guest.resident -= 1;
            guest.map_zero(p);
            zero += 1;
            if let Some(e) = guest.events.as_deref_mut() {
                e.note(p as usize, st | MERGED);
            }
        }
    }
    let kept: Vec<u64> = if zero == 0 {
        range.collect()
    } else {
        range.filter(|&p| !mem.guests[g as usize].is_zero_mapped(p)).collect()
    };
    let mut pages = Vec::with_capacity(kept.len());
    match kept.first() {
        Some(&first) => {
            mem.frames.replace(slot, Unit { guest: g, page: first, thp: false });
            pages.push((slot, first));
            for &p in &kept[1..] {
                pages.push((mem.frames.insert_counted(Unit { guest: g, page: p, thp: false }) as usize, p));
            }
            mem.frames.adjust_unslotted(-(zero as i64));
        }
        None => mem.frames.remove(slot, unit, zero),
    }
    pages
}

/// Whether exact THP `unit` was touched since reclaim's hand last looked
/// at it ([`pmd_young`]).
fn exact_young(mem: &mut Memory, unit: Unit) -> bool {
    let guest = &mut mem.guests[unit.guest as usize];
    let range = guest.region_range(guest.region_of(unit.page));
    pmd_young(guest, range)
}

/// The accessed bit of a page-exact THP over `range` of `guest`'s pages:
/// set when any of its pages was referenced (the fault that mapped it and
/// every access through the PMD set it). Event mode draws whether a hit
/// fell on any of its pages since the last look, which is a look.
#[inline]
fn pmd_young(guest: &mut crate::model::Guest, range: std::ops::Range<u64>) -> bool {
    let mut referenced = false;
    for p in range.clone() {
        referenced |= guest.pages[p as usize] & REFERENCED != 0;
    }
    if let Some(e) = guest.events.as_deref_mut() {
        referenced |= e.region_touched_since(range.start as usize..range.end as usize);
    }
    referenced
}

/// Whether sampled THP `unit` in `slot` was touched since reclaim's hand
/// last looked at it (`None` when it is not sampled): the hand's law,
/// 1 − e^(−share·n) for the n real touches since, drawn by a hash of the
/// THP and the guest's touch count (a split is no hand look: it leaves
/// the look's record as it is).
fn sampled_young(mem: &Memory, slot: usize, unit: Unit) -> Option<bool> {
    let guest = &mem.guests[unit.guest as usize];
    if !guest.thp_sampled {
        return None;
    }
    let aux = mem.frames.thp_aux(slot)?;
    if aux.fresh {
        return Some(true);
    }
    let touches = guest.touches_now();
    let share = guest.region_shares.total.get(guest.region_of(unit.page)).copied().unwrap_or(0.0);
    let x = f64::from(share) * (touches - aux.last_visit).max(0.0);
    let h = mix64(unit.page ^ (u64::from(unit.guest) << 40) ^ touches.to_bits());
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    Some(u < -(-x).exp_m1())
}

/// The inactive share of global reclaim: each evictable guest's
/// [`inactive_share`] of its own lruvec (libvirt's cgroup per guest),
/// weighted by its resident memory.
fn global_inactive_share(mem: &Memory) -> f64 {
    let (mut sum, mut weight) = (0.0, 0.0);
    for g in &mem.guests {
        let sim = g.resident + g.huge;
        if sim == 0 || g.unevictable {
            continue;
        }
        let real = g.real_count(sim) as u64;
        sum += sim as f64 * inactive_share(real);
        weight += sim as f64;
    }
    if weight == 0.0 { 0.5 } else { sum / weight }
}

/// The pages of `unit` in `slot` on an LRU list (0 when it is not: mlocked, or its
/// cgroup at memory.swap.max).
fn lru_pages(mem: &Memory, slot: usize, unit: Unit) -> u64 {
    if unit.guest == KSM_OWNER {
        return u64::from(ksm_evictable(mem, unit.page as u32));
    }
    if mem.guests[unit.guest as usize].off_lru() {
        return 0;
    }
    if unit.thp { thp_extent(mem, slot, unit).1 } else { 1 }
}

/// Prefetch what a hand reads of `unit` in `slot`: its page's state (the
/// back hand clears a THP's accessed bits on its pages) and, in event
/// mode, its last look and place in the event set. For a sampled THP only
/// its region's share: its draw reads that and its `ThpAux`, and its pages
/// are written only when it goes out.
#[inline(always)]
fn prefetch_unit(mem: &Memory, slot: usize, u: Unit) {
    if u.guest == KSM_OWNER {
        return;
    }
    let guest = &mem.guests[u.guest as usize];
    if u.thp && guest.thp_sampled {
        // Its region's share of the touches, which the draw reads.
        if let Some(x) = mem.frames.thp_aux(slot).and_then(|a| guest.region_shares.total.get(a.region as usize)) {
            crate::model::page::prefetch(x);
        }
        return;
    }
    crate::model::page::prefetch(&guest.pages[u.page as usize]);
    // The page may go out: its swap-cache bits are read then.
    guest.swap_cache.prefetch(u.page);
    mem.frames.prefetch_rev(u.guest, u.page);
    if let Some(e) = guest.events.as_deref() {
        e.prefetch(u.page as usize);
    }
}

/// The front hand passes `unit` in `slot`: its accessed bits are cleared,
/// as shrink_active_list's folio_referenced does when it moves a page to
/// the inactive list. Returns its pages (0 when it is not on an LRU:
/// mlocked, or its cgroup at memory.swap.max). `touches` is the guest's
/// real touch count now (what a sampled THP's look is counted from).
// Inlined into the front hand's loop: it runs once a slot, and out of
// line its checks of the guest and the THP's record were made twice (once
// for the page count, once for the look).
#[inline(always)]
fn deactivate(mem: &mut Memory, slot: usize, unit: Unit, touches: f64) -> u64 {
    if unit.guest == KSM_OWNER {
        if !ksm_evictable(mem, unit.page as u32) {
            return 0;
        }
        ksm_referenced(mem, unit.page as u32);
        return 1;
    }
    let guest = &mut mem.guests[unit.guest as usize];
    if guest.off_lru() {
        return 0;
    }
    if unit.thp {
        // As `visit_thp` reads it: a sampled THP's bit is its ThpAux.
        if let Some(aux) = mem.frames.thp_aux_mut(slot) {
            aux.last_visit = touches;
            aux.fresh = false;
            return u64::from(aux.pages);
        }
        let range = guest.region_range(guest.region_of(unit.page));
        for p in range.clone() {
            guest.pages[p as usize] &= !REFERENCED;
        }
        if let Some(e) = guest.events.as_deref_mut() {
            e.look_region(range.start as usize..range.end as usize);
        }
        return range.end - range.start;
    }
    let p = unit.page as usize;
    guest.pages[p] &= !REFERENCED;
    if let Some(e) = guest.events.as_deref_mut() {
        e.looked_now(p);
    }
    1
}

/// The region of THP `unit` in `slot` and its simulated pages: from its
/// [`ThpAux`] when kept (in order with the slot), else from the guest's
/// tables.
///
/// [`ThpAux`]: crate::model::frames::ThpAux
#[inline(always)]
fn thp_extent(mem: &Memory, slot: usize, unit: Unit) -> (usize, u64) {
    if let Some(a) = mem.frames.thp_aux(slot) {
        return (a.region as usize, u64::from(a.pages));
    }
    let guest = &mem.guests[unit.guest as usize];
    let region = guest.region_of(unit.page);
    let range = guest.region_range(region);
    (region, range.end - range.start)
}

/// Split the THP in `slot` (`unit` is its head) and write all of its
/// pages to swap, until the device is full or `stop` says so; the rest
/// stay resident as 4 KiB pages. The pages that go out never take slots of
/// their own (the THP's frees whole), so the slot table, which places new
/// pages relative to the reclaim hands, does not churn. Returns the pages
/// written.
fn evict_thp(mem: &mut Memory, slot: usize, unit: Unit, pace: &mut Pace, stop: impl Fn(&Memory) -> bool) -> u64 {
    let range = map_thp_small(mem, unit);
    let count = range.end - range.start;
    let mut out = 0;
    for p in range.clone() {
        if mem.swap.is_full() || stop(mem) {
            break;
        }
        page_out(mem, unit.guest, p, pace);
        out += 1;
    }
    if out == count {
        mem.frames.remove(slot, unit, count);
    } else {
        // The rest, as 4 KiB pages: the first keeps the THP's slot.
        let g = unit.guest;
        let first = range.start + out;
        mem.frames.replace(slot, Unit { guest: g, page: first, thp: false });
        for p in first + 1..range.end {
            mem.frames.insert_counted(Unit { guest: g, page: p, thp: false });
        }
        mem.frames.adjust_unslotted(-(out as i64));
    }
    if out > 0 && mem.swap.keeps_pages_in_ram() {
        mem.sync_zram();
    }
    out
}

/// Write resident 4 KiB page `unit` in `slot` to swap and free its frame.
fn swap_out(mem: &mut Memory, slot: usize, unit: Unit, pace: &mut Pace) {
    page_out(mem, unit.guest, unit.page, pace);
    mem.frames.remove(slot, unit, 1);
    if mem.swap.keeps_pages_in_ram() {
        mem.sync_zram();
    }
}

/// Write guest `g`'s resident 4 KiB page `p` to swap (its frame is the
/// caller's to free), when the reclaimer gets to it; it takes the
/// reclaimer [`Clock::page_ns`] and the store's own time.
#[inline]
fn page_out(mem: &mut Memory, g: u32, p: u64, pace: &mut Pace) {
    let guest = &mut mem.guests[g as usize];
    let p = p as usize;
    if let Some(e) = guest.events.as_deref_mut() {
        // Event mode: writes its hits made since ksmd last looked are
        // settled before the page leaves (its content is what goes out).
        if e.written_since(p) {
            guest.pages[p] |= WRITTEN;
        }
    }
    let page = SwapPage::of(g, p as u64, guest.pages[p]);
    // A page that kept its slot from its last swap-in (model::swapcache):
    // clean, it is freed without I/O, its slot still holding it; dirty,
    // it is written to that slot. In event mode its hits' writes were not
    // played: whether they wrote it is drawn now.
    let cached = guest.swap_cache.take(p as u64);
    let clean = match cached {
        Some((true, Some(since))) => guest.events.as_deref_mut().is_none_or(|e| !e.written_after(p, since)),
        Some((clean, _)) => clean,
        None => false,
    };
    guest.pages[p] = (guest.pages[p] & !RES_MASK) | SWAPPED;
    if let Some(e) = guest.events.as_deref_mut() {
        e.note(p, guest.pages[p]);
    }
    guest.resident -= 1;
    guest.swapped += 1;
    if guest.swapped > guest.peak_swapped {
        guest.peak_swapped = guest.swapped;
    }
    let store = if clean { 0.0 } else { mem.swap.write(pace.at(), page, cached.is_some()) };
    pace.work += pace.page_ns + store;
}

/// Whether reclaim may take KSM page `id`: not when a sharer's memory is
/// locked (an mlocked mapping makes the page unevictable).
fn ksm_evictable(mem: &Memory, id: u32) -> bool {
    mem.ksm.page(id).sharers().all(|(g, _)| !mem.guests[g as usize].unevictable)
}

/// Whether KSM page `id` was referenced through any of its sharers since
/// reclaim last looked, as `folio_referenced` finds it by walking every
/// mapping (`rmap_walk_ksm`); the look clears every sharer's accessed bit.
/// A page reclaim may not take counts as referenced.
fn ksm_referenced(mem: &mut Memory, id: u32) -> bool {
    let mut referenced = !ksm_evictable(mem, id);
    let n = mem.ksm.page(id).sharer_count();
    for i in 0..n {
        let (g, p) = mem.ksm.page(id).sharer(i);
        let guest = &mut mem.guests[g as usize];
        let st = guest.pages[p as usize];
        referenced |= st & REFERENCED != 0;
        guest.pages[p as usize] = st & !REFERENCED;
        if let Some(e) = guest.events.as_deref_mut() {
            // Every mapping is looked at (no short cut): the walk clears
            // each young bit it passes.
            referenced |= e.read_since(p as usize);
        }
    }
    referenced
}

/// Write KSM page `id` to swap once, for all its sharers, and free its
/// frame: each sharer's mapping becomes the one swap entry (try_to_unmap
/// through `rmap_walk_ksm`). ksmd's counters do not move: its stable node
/// goes stale (see [`crate::model::ksmpage`]).
fn ksm_swap_out(mem: &mut Memory, id: u32, pace: &mut Pace) {
    let page = mem.ksm.swap_page(id);
    mem.ksm.swap_out(&mut mem.frames, id);
    let n = mem.ksm.page(id).sharer_count();
    for i in 0..n {
        let (g, p) = mem.ksm.page(id).sharer(i);
        let guest = &mut mem.guests[g as usize];
        let st = guest.pages[p as usize];
        debug_assert!(st & MERGED != 0 && st & RES_MASK == RESIDENT);
        // MERGED stays: the entry is a KSM page's (see model::page).
        let st = (st & !(RES_MASK | REFERENCED)) | SWAPPED;
        guest.pages[p as usize] = st;
        guest.merged -= 1;
        guest.swapped += 1;
        guest.peak_swapped = guest.peak_swapped.max(guest.swapped);
        if let Some(e) = guest.events.as_deref_mut() {
            e.note(p as usize, st);
        }
    }
    let store = mem.swap.write(pace.at(), page, false);
    pace.work += pace.page_ns + store;
    if mem.swap.keeps_pages_in_ram() {
        mem.sync_zram();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::page::{HUGE, REFERENCED, RES_MASK, RESIDENT, SWAPPED};
    use crate::model::swap::{Figures, IoScheduler, NoSwap};
    use crate::model::{Backing, Frames, Guest, Watermarks};
    use crate::policy::resolve::Backend;
    use crate::policy::resolve::Swap;
    use crate::policy::swap::device;
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
        let figures = Figures {
            read_latency: Span(1),
            write_latency: Span(1),
            bandwidth_bytes_per_s: 1 << 40,
            queue_depth: 64,
            scheduler: IoScheduler::None,
        };
        let swap = Swap {
            size: ByteSize::mib(64),
            backend: Backend::Device(device::Knobs { preset: device::Preset::Custom, adjusted: true, figures }),
            zswap: None,
        };
        Memory::new(frames, Watermarks { min: 0, low: 0, high: 0 }, Vec::new(), swap.build(8 << 20, 1.0), vec![g])
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
        let out = clock.reclaim(&mut mem, 100, 0, true);
        assert_eq!(out.evicted, 512);
        assert_eq!(mem.frames.free(), 512);
        assert_eq!(mem.thp_splits, 1);
        let g = &mem.guests[0];
        assert_eq!(g.thps, 3);
        assert_eq!(g.swapped, 512);
        assert!(g.pages[..512].iter().all(|&s| s & RES_MASK == SWAPPED));
        assert!(g.pages[512..].iter().all(|&s| s & RES_MASK == HUGE));
    }

    #[test]
    fn a_split_gives_a_sampled_thps_accessed_bit_to_all_its_pages() {
        // Kernel semantics (mm/huge_memory.c, __split_huge_pmd_locked): a
        // split copies the PMD's young bit to every PTE. A THP of a guest
        // sampled at 1/8 (64 of its 512 pages simulated) whose accessed bit
        // is its ThpAux: made since the hand's last look (fresh), every
        // page comes out referenced; looked at with no touch since (the
        // hand's law 1 - e^(-share x 0) = 0), none does, whatever bits the
        // touches left on its pages.
        for fresh in [true, false] {
            let real: Vec<u64> = (0..1024u64).step_by(8).collect();
            let mut g = Guest::new("g".into(), 0, Backing::Small { thp: true }, 1024, real, 0.0, 0.0);
            assert!(g.thp_sampled);
            g.region_shares = std::sync::Arc::new(crate::model::workload::RegionShares {
                unsampled: vec![0.0; 2],
                total: vec![0.5; 2],
            });
            g.touches = 1000.0;
            for p in 0..64 {
                g.pages[p] = HUGE | if p % 3 == 0 { REFERENCED } else { 0 };
            }
            g.huge = 64;
            g.thps = 1;
            let mut frames = Frames::new(4096);
            frames.keep_thp_aux();
            let slot = frames.insert(Unit { guest: 0, page: 0, thp: true }, 512) as usize;
            *frames.thp_aux_mut(slot).expect("kept") =
                crate::model::frames::ThpAux { last_visit: 1000.0, fresh, region: 0, pages: 64 };
            let mut mem =
                Memory::new(frames, Watermarks { min: 0, low: 0, high: 0 }, Vec::new(), Box::new(NoSwap), vec![g]);
            let pages = split_thp(&mut mem, slot, Unit { guest: 0, page: 0, thp: true });
            assert_eq!(pages.len(), 64);
            let g = &mem.guests[0];
            assert!(g.pages[..64].iter().all(|&st| st & RES_MASK == RESIDENT && (st & REFERENCED != 0) == fresh));
        }
    }

    #[test]
    fn a_split_gives_an_exact_thps_accessed_bit_to_all_its_pages() {
        // Kernel semantics (mm/huge_memory.c, __split_huge_pmd_locked): a
        // split copies the PMD's young bit to every PTE, and the PMD is
        // young when any access went through it since the last look (the
        // fault that mapped it is one). A page-exact THP with one page
        // touched comes out with all 512 referenced; with none, none.
        for touched in [true, false] {
            let mut mem = full_of_thps();
            if touched {
                mem.guests[0].pages[300] |= REFERENCED;
            }
            let pages = split_thp(&mut mem, 0, Unit { guest: 0, page: 0, thp: true });
            assert_eq!(pages.len(), 512);
            let g = &mem.guests[0];
            assert!(g.pages[..512].iter().all(|&st| st & RES_MASK == RESIDENT && (st & REFERENCED != 0) == touched));
        }
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
        let out = clock.reclaim(&mut mem, 10, 0, true);
        assert_eq!(out.evicted, 512);
        assert_eq!(mem.thp_splits, 1);
        assert_eq!(mem.guests[0].thps, 3);
    }

    /// One guest of 16 resident 4 KiB pages filling a host of 16 frames.
    fn sixteen_pages() -> Memory {
        let mut mem = full_of_thps();
        let mut g = Guest::new("g".into(), 0, Backing::Small { thp: false }, 16, Vec::new(), 0.0, 0.0);
        let mut frames = Frames::new(16);
        for p in 0..16u64 {
            g.pages[p as usize] = RESIDENT;
            frames.insert(Unit { guest: 0, page: p, thp: false }, 1);
        }
        g.resident = 16;
        mem.guests = vec![g];
        mem.frames = frames;
        mem
    }

    #[test]
    fn a_ksm_page_goes_out_once_for_all_its_sharers_unless_one_touched_it() {
        // mm/vmscan.c and mm/ksm.c (see model::ksmpage): folio_referenced
        // walks every mapping of a KSM page (rmap_walk_ksm), so one
        // sharer's accessed bit keeps it; otherwise try_to_unmap gives
        // every sharer the one swap entry and the page is written once.
        // Two guests of four pages, merged pairwise into four KSM pages
        // filling a host of four frames; the second guest touched page 1.
        // Freeing three frames writes three pages (not six), leaves both
        // guests three pages swapped and one merged, and ksmd's counters
        // are not the reclaimer's to move.
        let mut mem = sixteen_pages();
        let mut guests = Vec::new();
        for g in 0..2u32 {
            let mut guest = Guest::new(format!("g{g}"), 0, Backing::Small { thp: false }, 4, Vec::new(), 0.0, 0.0);
            for p in 0..4 {
                guest.pages[p] = RESIDENT | MERGED;
            }
            guest.merged = 4;
            guests.push(guest);
        }
        mem.guests = guests;
        mem.frames = Frames::new(4);
        for p in 0..4u64 {
            mem.ksm.create(&mut mem.frames, p, false, &[(0, p, 4), (1, p, 4)], 2);
        }
        mem.guests[1].pages[1] |= REFERENCED;
        let mut clock = Clock { front: 3, inactive: 4, placed: true, ..Clock::default() };
        let out = clock.reclaim(&mut mem, 3, 0, true);
        assert_eq!((out.evicted, mem.swap.writes(), mem.frames.used()), (3, 3, 1));
        for g in &mem.guests {
            assert_eq!((g.swapped, g.merged), (3, 1));
            for p in [0usize, 2, 3] {
                assert_eq!(g.pages[p] & (RES_MASK | MERGED), SWAPPED | MERGED, "page {p}");
            }
            assert_eq!(g.pages[1], RESIDENT | MERGED, "page 1 kept, its bits cleared");
        }
        assert_eq!((mem.ksm.swap_slots, mem.ksm.swap_entries, mem.ksm.resident_pages), (3, 6, 1));
    }

    #[test]
    fn the_inactive_list_is_the_kernels_share_of_an_lruvec() {
        // mm/vmscan.c inactive_is_low: inactive_ratio = int_sqrt(10 × GiB)
        // from 1 GiB up, 1 below; the inactive list is 1/(1 + ratio) of
        // the lruvec. Rik van Riel's note on the formula: "On a 1GB system,
        // this leads to a ratio of 3 active anon pages to 1 inactive", and
        // about 100 at 1 TB.
        let gib = 1u64 << 18;
        assert_eq!(inactive_share(gib / 2), 0.5);
        assert_eq!(inactive_share(gib), 1.0 / 4.0);
        assert_eq!(inactive_share(4 * gib), 1.0 / 7.0);
        assert_eq!(inactive_share(1024 * gib), 1.0 / 102.0);
    }

    #[test]
    fn a_page_touched_after_deactivation_survives_and_the_others_go() {
        // Two-handed CLOCK as the kernel's two lists: the back hand takes
        // a page not touched since the front hand deactivated it, and
        // passes over (activates) one that was, clearing its bit. Pages
        // 0-7 sit between the hands (the inactive list, half of a small
        // guest's pages); page 2 was touched since. Freeing 3 frames takes
        // pages 0, 1 and 3. Before the back hand's batch of 16 slots the
        // front hand gets as far ahead as it may (a turn less one slot):
        // it deactivates pages 8 to 14, clearing their bits, and stops
        // short of page 15, the back hand's last.
        let mut mem = sixteen_pages();
        for p in [2usize, 8, 9, 10, 11, 12, 15] {
            mem.guests[0].pages[p] |= REFERENCED;
        }
        let mut clock = Clock { front: 8, inactive: 8, placed: true, ..Clock::default() };
        let out = clock.reclaim(&mut mem, 3, 0, true);
        let g = &mem.guests[0];
        assert_eq!(out.evicted, 3);
        assert_eq!(out.scanned, 4);
        for p in [0usize, 1, 3] {
            assert_eq!(g.pages[p] & RES_MASK, SWAPPED, "page {p}");
        }
        assert_eq!(g.pages[2], RESIDENT, "page 2 kept, its bit cleared");
        assert_eq!(out.refill_pages, 7);
        for p in 8..15 {
            assert_eq!(g.pages[p], RESIDENT, "page {p} deactivated");
        }
        assert_eq!(g.pages[15], RESIDENT | REFERENCED, "page 15 not reached");
    }

    #[test]
    fn at_the_first_reclaim_every_page_is_inactive_with_its_faults_bit() {
        // New anonymous pages go on the inactive list with the accessed bit
        // their fault set (lru_cache_add_inactive_or_unevictable): the
        // first reclaim finds them all referenced, activates each once,
        // and takes the first page only after a whole turn.
        let mut mem = sixteen_pages();
        for p in 0..16 {
            mem.guests[0].pages[p] |= REFERENCED;
        }
        let mut clock = Clock::default();
        let out = clock.reclaim(&mut mem, 1, 0, true);
        assert_eq!(out.evicted, 1);
        assert_eq!(out.scanned, 17, "a turn of 16, then the first page again");
        assert_eq!(mem.guests[0].pages[0] & RES_MASK, SWAPPED);
    }
}
