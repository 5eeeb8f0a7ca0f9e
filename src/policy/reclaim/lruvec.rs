//! Reclaim by memory cgroup: each guest's pages as its own lruvec.
//!
//! libvirt puts every guest in a memory cgroup of its own
//! (`machine.slice/machine-qemu…scope`), and the kernel keeps each cgroup's
//! pages on LRU lists of their own (an lruvec). Reclaim for a cgroup at its
//! limit walks that cgroup's lists alone. Reclaim for the whole host
//! (kswapd, direct reclaim) walks them all: `shrink_node_memcgs` visits
//! every cgroup in turn, and `get_scan_count` gives each lruvec a scan
//! count of its size shifted right by the reclaim priority (DEF_PRIORITY
//! 12 first), so every lruvec is scanned in proportion to its size, and
//! how much each gives up follows how cold its pages are, not the order
//! the guests got their memory. `shrink_lruvec` takes that count in
//! batches of SWAP_CLUSTER_MAX (32): `isolate_lru_folios` counts a THP's
//! 512 pages in its batch, so the batch ends at the THP, and the THP takes
//! 32 of the count although all of its pages are scanned (and counted in
//! `pgscan`).
//!
//! Here each guest has its own two hands over its pages (see the module
//! above), shared by its cgroup's reclaim and the host's. With
//! [`Lru::PerGuest`], host reclaim goes round the guests in rounds of the
//! kernel's first priority: each guest scans 1/4096 of its lruvec a round
//! (at least one page), counted in real pages (a THP 32), and a guest that
//! scanned past its share (a THP at the end of its batch) waits for the
//! others the next round. A guest does not bank rounds it had nothing to
//! scan in. With [`Lru::Shared`], host reclaim is one pair of hands over
//! all guests' pages in the order they got memory (the kernel's behaviour
//! when the guests share one cgroup).
//!
//! A KSM page is charged to one cgroup, and only that cgroup's walk finds
//! it on an LRU: the cgroup of the page ksmd was scanning when it merged
//! (`try_to_merge_two_pages` makes that page the KSM page), which the
//! model keeps as the page's first sharer (when it leaves, the charge
//! moves on to the next).

use super::{Clock, Outcome, Pace, evict_thp, inactive_share, ksm_referenced, swap_out};
use crate::input::node::Node;
use crate::input::reader::Decoder;
use crate::input::values::choice;
use crate::model::page::{HUGE, MERGED, REFERENCED, RES_MASK, RESIDENT};
use crate::model::{Backing, Memory, Unit};
use serde::Serialize;

/// Whose LRU lists host reclaim walks (`host.reclaim.lru`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lru {
    /// One pair of hands over every guest's pages, in the order they got
    /// memory: guests sharing one memory cgroup.
    #[default]
    Shared,
    /// Each guest's own lruvec, scanned in proportion to its size: a
    /// memory cgroup per guest, as libvirt sets guests up.
    PerGuest,
}

/// The `host.reclaim:` knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Knobs {
    pub lru: Lru,
}

impl Knobs {
    pub const KEYS: &'static [&'static str] = &["lru"];

    /// `reclaim: { lru: per-guest }`; `shared` when left out.
    pub fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Knobs> {
        let f = d.map(node, path, Knobs::KEYS)?;
        let f = &f;
        let lru = d
            .field(f, "lru", |n: &Node| choice(n, &[("shared", Lru::Shared), ("per-guest", Lru::PerGuest)]))
            .unwrap_or_default();
        Some(Knobs { lru })
    }

    pub fn is_default(&self) -> bool {
        *self == Knobs::default()
    }
}

/// A guest's two hands over its own pages (its lruvec): its cgroup's
/// reclaim walks them, and host reclaim too with [`Lru::PerGuest`].
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LruHands {
    /// The back hand's page: the next the inactive scan looks at.
    back: u64,
    /// Pages the front hand is ahead of the back, and the resident pages
    /// among them (the inactive list).
    lead: u64,
    inactive: u64,
    /// The hands were placed (at the first reclaim).
    placed: bool,
}

/// What the back hand takes out: a 4 KiB page in its slot, or a KSM
/// page.
enum Take {
    Page(usize),
    Ksm(u32),
}

/// The kernel's first reclaim priority: a round scans size >> 12 of
/// every lruvec.
const ROUND: f64 = 1.0 / 4096.0;

/// Real pages a THP takes of an lruvec's scan count: the batch
/// (SWAP_CLUSTER_MAX) it ends.
const THP_SCAN_COST: f64 = 32.0;

/// When a walk over one lruvec stops (besides a full swap device, a
/// cgroup at memory.swap.max, a write backlog and two turns with nothing
/// taken).
#[derive(Debug, Clone, Copy)]
struct Stop {
    /// Pages taken out.
    evicted: u64,
    /// Real pages of its scan count (`nr[lru]`).
    cost: f64,
    /// Free frames on the host.
    free: Option<u64>,
}

impl Clock {
    /// Reclaim for guest `g`'s memory cgroup (memory.max or memory.high
    /// reached): its own lruvec, from where its hands stand, until `nr`
    /// pages are out, the swap device is full or the cgroup at
    /// memory.swap.max, page-outs back up, or two turns found nothing.
    /// Needs `g`'s page-to-slot map (`Frames::track`). Locked memory is
    /// never taken. KSM pages charged to it are looked at only when the
    /// host reclaims by cgroup ([`Lru::PerGuest`]).
    pub fn reclaim_guest(&mut self, mem: &mut Memory, g: usize, nr: u64, now: u64) -> Outcome {
        let mut out = Outcome::default();
        let mut pace = Pace { start: now, page_ns: self.page_ns, work: 0.0 };
        let stop = Stop { evicted: nr, cost: f64::INFINITY, free: None };
        self.walk(mem, g, stop, &mut pace, &mut out);
        out.work_ns = pace.work;
        self.scanned += out.scanned;
        self.evicted += out.evicted;
        out
    }

    /// Host reclaim over the guests' lruvecs ([`Lru::PerGuest`]): rounds
    /// of the guests in turn until `target_free` frames are free, the swap
    /// is full, page-outs back up, or twice every lruvec was looked at
    /// with nothing taken. `paced` as for [`Clock::reclaim`].
    pub(super) fn reclaim_lruvecs(&mut self, mem: &mut Memory, target_free: u64, now: u64, paced: bool) -> Outcome {
        let n = mem.guests.len();
        let mut out = Outcome::default();
        if n == 0 {
            return out;
        }
        self.lru.resize(n, LruHands::default());
        self.pass.resize(n, 0.0);
        self.cursor %= n;
        let mut pace = Pace { start: now, page_ns: if paced { self.page_ns } else { 0.0 }, work: 0.0 };
        let limit = 2 * mem.guests.iter().map(|g| g.sim_pages()).sum::<u64>() + 2 * n as u64;
        let mut looks = 0u64;
        // Guests passed over in a row with nothing on an LRU.
        let mut idle = 0;
        while mem.frames.free() < target_free && !mem.swap.is_full() && looks < limit && idle < n {
            let wait = mem.swap.write_throttle(pace.at());
            if wait > 0.0 {
                out.throttled_ns = wait;
                break;
            }
            let g = self.cursor;
            let size = lru_size(mem, g);
            // The round asks every lruvec to have scanned up to `round +
            // ROUND` of itself.
            let turn = size > 0.0 && self.pass[g] < self.round + ROUND;
            if turn {
                self.pass[g] = self.pass[g].max(self.round);
                let budget = (self.round + ROUND - self.pass[g]) * size;
                let before = out.scanned;
                let stop = Stop { evicted: u64::MAX, cost: budget, free: Some(target_free) };
                let used = self.walk(mem, g, stop, &mut pace, &mut out);
                looks += (out.scanned - before).max(1);
                // Nothing on its lists after all: its turn is spent.
                self.pass[g] += if used > 0.0 { used / size } else { ROUND };
                if self.pass[g] < self.round + ROUND && out.throttled_ns == 0.0 && !mem.swap.is_full() {
                    // Stopped at the target before its share: it goes on
                    // from here next time.
                    continue;
                }
                if out.throttled_ns > 0.0 {
                    break;
                }
            }
            idle = if size == 0.0 { idle + 1 } else { 0 };
            self.cursor += 1;
            if self.cursor == n {
                self.cursor = 0;
                self.round += ROUND;
            }
        }
        out.work_ns = pace.work;
        self.scanned += out.scanned;
        self.evicted += out.evicted;
        out
    }

    /// Guest `g`'s hands over its lruvec: from the back hand on, until
    /// `stop` (or two turns with nothing taken). Adds what it did to
    /// `out`; returns the real pages of scan count it used.
    fn walk(&mut self, mem: &mut Memory, g: usize, stop: Stop, pace: &mut Pace, out: &mut Outcome) -> f64 {
        let n = mem.guests[g].sim_pages();
        if n == 0 || mem.guests[g].unevictable {
            return 0.0;
        }
        if self.lru.len() <= g {
            self.lru.resize(g + 1, LruHands::default());
        }
        let ksm = self.per_guest;
        let charged = if ksm { mem.ksm.charged(g) } else { 0 };
        let mut hands = self.lru[g];
        if hands.back >= n || !hands.placed {
            // Everything starts inactive (see `Clock::reclaim`).
            let guest = &mem.guests[g];
            hands = LruHands { back: 0, lead: n - 1, inactive: guest.resident + guest.huge + charged, placed: true };
        }
        let (target_inactive, page_cost) = {
            let guest = &mem.guests[g];
            let sim = guest.resident + guest.huge + charged;
            let per = guest.real_pages as f64 / n as f64;
            ((inactive_share((sim as f64 * per) as u64) * sim as f64) as u64, per)
        };
        let limit = 2 * n + 2;
        let mut visits = 0u64;
        let mut used = 0.0;
        let mut evicted = 0u64;
        let full = |mem: &Memory| mem.swap.is_full() || mem.guests[g].swapped >= mem.guests[g].swap_max;
        while evicted < stop.evicted
            && used < stop.cost
            && visits < limit
            && !full(mem)
            && stop.free.is_none_or(|t| mem.frames.free() < t)
        {
            // The front hand: past the back hand's page, and the inactive
            // list at its size.
            while (hands.inactive < target_inactive || hands.lead == 0) && hands.lead + 1 < n {
                let q = (hands.back + hands.lead) % n;
                let step = self.deactivate_page(mem, g, q, ksm);
                hands.lead += step.0.min(n - 1 - hands.lead);
                hands.inactive += step.1;
                out.deactivated += u64::from(step.1 > 0);
                out.refill_pages += step.1;
            }
            let p = hands.back;
            hands.back = (p + 1) % n;
            hands.lead = hands.lead.saturating_sub(1);
            if hands.back == 0 {
                // A turn: count the inactive pages afresh (global reclaim
                // and faults change the pages between the hands).
                hands.inactive = (0..hands.lead).map(|i| on_lru(mem, g, i, ksm)).sum();
            }
            visits += 1;
            let guest = &mut mem.guests[g];
            let mut st = guest.pages[p as usize];
            // What the back hand takes, if anything: a 4 KiB page (in its
            // slot), or a KSM page this cgroup is charged with.
            let take = match st & RES_MASK {
                RESIDENT if st & MERGED == 0 => {
                    out.scanned += 1;
                    out.scanned_pages += 1;
                    used += page_cost;
                    hands.inactive = hands.inactive.saturating_sub(1);
                    if let Some(e) = guest.events.as_deref_mut()
                        && e.touched_since(p as usize)
                    {
                        st |= REFERENCED;
                    }
                    if st & REFERENCED != 0 {
                        mem.guests[g].pages[p as usize] = st & !REFERENCED;
                        continue;
                    }
                    let Some(slot) = mem.frames.slot_of(g as u32, p) else { continue };
                    Take::Page(slot)
                }
                RESIDENT if ksm => {
                    let Some(id) = charged_ksm(mem, g, p) else { continue };
                    out.scanned += 1;
                    out.scanned_pages += 1;
                    used += page_cost;
                    hands.inactive = hands.inactive.saturating_sub(1);
                    if ksm_referenced(mem, id) {
                        continue;
                    }
                    Take::Ksm(id)
                }
                HUGE => {
                    // Hugetlb pages are the pool's, not the cgroup's; a THP
                    // is looked at once, at its head.
                    let region = guest.region_of(p);
                    let range = guest.region_range(region);
                    hands.back = range.end % n;
                    hands.lead = hands.lead.saturating_sub(range.end.saturating_sub(p + 1));
                    visits += range.end.saturating_sub(p + 1);
                    if !matches!(guest.backing_at(p), Backing::Small { .. }) {
                        continue;
                    }
                    let Some(slot) = mem.frames.slot_of(g as u32, range.start) else { continue };
                    out.scanned += 1;
                    out.scanned_pages += range.end - range.start;
                    used += THP_SCAN_COST;
                    hands.inactive = hands.inactive.saturating_sub(range.end - range.start);
                    let unit = Unit { guest: g as u32, page: range.start, thp: true };
                    let touches = mem.guests[g].touches_now();
                    if !self.visit_thp(mem, slot, unit, region, touches) {
                        continue;
                    }
                    // A THP goes out whole, past the backlog (see
                    // `Clock::reclaim`).
                    let taken = evict_thp(mem, slot, unit, pace, |m| m.guests[g].swapped >= m.guests[g].swap_max);
                    out.evicted += taken;
                    evicted += taken;
                    continue;
                }
                _ => continue,
            };
            let wait = mem.swap.write_throttle(pace.at());
            if wait > 0.0 {
                // Put the hand back: this page is the next candidate.
                hands.back = p;
                hands.lead += 1;
                hands.inactive += 1;
                out.throttled_ns = wait;
                break;
            }
            match take {
                Take::Page(slot) => swap_out(mem, slot, Unit { guest: g as u32, page: p, thp: false }, pace),
                Take::Ksm(id) => super::ksm_swap_out(mem, id, pace),
            }
            out.evicted += 1;
            evicted += 1;
        }
        self.lru[g] = hands;
        used
    }

    /// The front hand of guest `g`'s lruvec at page `q`: deactivate what
    /// maps it (a KSM page when `ksm` and `g` is charged with it). Returns
    /// the pages to step over (a THP's rest) and the pages deactivated.
    fn deactivate_page(&mut self, mem: &mut Memory, g: usize, q: u64, ksm: bool) -> (u64, u64) {
        let guest = &mem.guests[g];
        let st = guest.pages[q as usize];
        match st & RES_MASK {
            RESIDENT if st & MERGED == 0 => {
                let Some(slot) = mem.frames.slot_of(g as u32, q) else { return (1, 0) };
                (1, super::deactivate(mem, slot, Unit { guest: g as u32, page: q, thp: false }, 0.0))
            }
            RESIDENT if ksm => match charged_ksm(mem, g, q) {
                Some(id) => {
                    ksm_referenced(mem, id);
                    (1, 1)
                }
                None => (1, 0),
            },
            HUGE => {
                let range = guest.region_range(guest.region_of(q));
                let step = range.end - q;
                if !matches!(guest.backing_at(q), Backing::Small { .. }) {
                    return (step, 0);
                }
                let Some(slot) = mem.frames.slot_of(g as u32, range.start) else { return (step, 0) };
                let touches = guest.touches_now();
                (step, super::deactivate(mem, slot, Unit { guest: g as u32, page: range.start, thp: true }, touches))
            }
            _ => (1, 0),
        }
    }
}

/// Guest `g`'s lruvec in real pages: its resident 4 KiB pages and THPs
/// (not its hugetlb pages, which are the pool's), or 0 when reclaim may
/// not take from it (locked, or its cgroup at memory.swap.max).
fn lru_size(mem: &Memory, g: usize) -> f64 {
    let guest = &mem.guests[g];
    if guest.off_lru() {
        return 0.0;
    }
    let sim = (guest.resident + guest.huge).saturating_sub(guest.pool_mapped) + mem.ksm.charged(g);
    guest.real_count(sim)
}

/// The KSM page guest `g`'s page `p` maps, when `g`'s cgroup is charged
/// with it (the page is its first sharer).
fn charged_ksm(mem: &Memory, g: usize, p: u64) -> Option<u32> {
    let id = mem.ksm.id_of(g, p)?;
    (mem.ksm.resident(id) && mem.ksm.page(id).sharer(0) == (g as u32, p)).then_some(id)
}

/// Pages of guest `g`'s lruvec at page `i` (a THP's at each of its pages:
/// the turn's count is of pages).
fn on_lru(mem: &Memory, g: usize, i: u64, ksm: bool) -> u64 {
    let guest = &mem.guests[g];
    let st = guest.pages[i as usize];
    match st & RES_MASK {
        RESIDENT if st & MERGED == 0 => 1,
        RESIDENT if ksm => u64::from(charged_ksm(mem, g, i).is_some()),
        HUGE => u64::from(matches!(guest.backing_at(i), Backing::Small { .. })),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::page::SWAPPED;
    use crate::model::swap::{Figures, IoScheduler};
    use crate::model::{Frames, Guest, Watermarks};
    use crate::policy::resolve::{Backend, Swap};
    use crate::policy::swap::device;
    use crate::units::{ByteSize, Span};

    /// Guests of 4 KiB pages (`pages` each, all resident, `referenced`
    /// setting their accessed bits) filling a host of exactly their size,
    /// with a fast swap device big enough for all of them.
    fn host(pages: &[u64], referenced: &[bool]) -> Memory {
        let total: u64 = pages.iter().sum();
        let mut frames = Frames::new(total);
        let mut guests = Vec::new();
        for (g, (&n, &r)) in pages.iter().zip(referenced).enumerate() {
            let mut guest = Guest::new(format!("g{g}"), 0, Backing::Small { thp: false }, n, Vec::new(), 0.0, 0.0);
            frames.track(g as u32, n);
            for p in 0..n {
                guest.pages[p as usize] = RESIDENT | if r { REFERENCED } else { 0 };
                frames.insert(Unit { guest: g as u32, page: p, thp: false }, 1);
            }
            guest.resident = n;
            guests.push(guest);
        }
        let figures = Figures {
            read_latency: Span(1),
            write_latency: Span(1),
            bandwidth_bytes_per_s: 1 << 40,
            queue_depth: 1 << 20,
            scheduler: IoScheduler::None,
        };
        let swap = Swap {
            size: ByteSize(total * 4096),
            backend: Backend::Device(device::Knobs { preset: device::Preset::Custom, adjusted: true, figures }),
            zswap: None,
        };
        Memory::new(frames, Watermarks { min: 0, low: 0, high: 0 }, Vec::new(), swap.build(total * 4096, 1.0), guests)
    }

    #[test]
    fn host_reclaim_takes_from_each_guest_in_proportion_to_its_lruvec() {
        // mm/vmscan.c, get_scan_count: each cgroup's lruvec is scanned
        // lruvec_size >> priority pages a round (shrink_node_memcgs visits
        // them all), so with every page cold the pages taken split as the
        // lruvecs' sizes, 1:3 here: 64 and 192 of 256, within a page.
        // Walked in the order they got memory (one shared cgroup), the
        // first guest would give all 256.
        let mut mem = host(&[1024, 3072], &[false, false]);
        let mut clock = Clock::new(0.0, Knobs { lru: Lru::PerGuest });
        let out = clock.reclaim(&mut mem, 256, 0, false);
        assert_eq!(out.evicted, 256);
        let (a, b) = (mem.guests[0].swapped, mem.guests[1].swapped);
        assert!(a.abs_diff(64) <= 1 && b.abs_diff(192) <= 1, "{a} and {b}");
        let mut mem = host(&[1024, 3072], &[false, false]);
        Clock::new(0.0, Knobs::default()).reclaim(&mut mem, 256, 0, false);
        assert_eq!((mem.guests[0].swapped, mem.guests[1].swapped), (256, 0));
    }

    #[test]
    fn a_busy_guest_is_scanned_its_share_and_gives_nothing() {
        // Proportional scanning, not proportional taking (get_scan_count
        // sets how many pages each lruvec scans, from its size at the
        // time; shrink_folio_list keeps the referenced ones): two guests
        // of 1024 pages, the first with every page referenced. Freeing 256
        // pages takes all 256 from the second, and scans the first as far
        // as the second has gone in shares of its shrinking lruvec:
        // Σ 1/(1024 − k) for k < 256 ≈ ln(1024/768) of 1024 pages, 294.6,
        // whose accessed bits the scan clears.
        let mut mem = host(&[1024, 1024], &[true, false]);
        let mut clock = Clock::new(0.0, Knobs { lru: Lru::PerGuest });
        let out = clock.reclaim(&mut mem, 256, 0, false);
        assert_eq!((out.evicted, mem.guests[0].swapped, mem.guests[1].swapped), (256, 0, 256));
        let cleared = mem.guests[0].pages.iter().filter(|&&st| st & REFERENCED == 0).count();
        assert!(cleared.abs_diff(295) <= 1, "{cleared} pages of the busy guest scanned");
    }

    #[test]
    fn a_thp_takes_one_batch_of_an_lruvecs_scan_count() {
        // mm/vmscan.c: shrink_lruvec takes its scan count in batches of
        // SWAP_CLUSTER_MAX (32), and isolate_lru_folios counts a folio's
        // pages in the batch, so a THP ends its batch: it takes 32 of the
        // count though its 512 pages are scanned (and counted in pgscan).
        // A walk with 64 of count left looks at two THPs of a guest of
        // THPs, and at 64 pages of a guest of 4 KiB pages (all referenced
        // here, so nothing is taken).
        let mut mem = host(&[2048, 2048], &[true, true]);
        let g = &mut mem.guests[0];
        *g = Guest::new("thp".into(), 0, Backing::Small { thp: true }, 2048, Vec::new(), 0.0, 0.0);
        for p in 0..2048 {
            g.pages[p] = HUGE | REFERENCED;
        }
        g.huge = 2048;
        g.thps = 4;
        g.region_touched.iter_mut().for_each(|r| *r = 512);
        let mut frames = Frames::new(4096);
        frames.track(0, 2048);
        frames.track(1, 2048);
        for r in 0..4 {
            frames.insert(Unit { guest: 0, page: r * 512, thp: true }, 512);
        }
        for p in 0..2048 {
            frames.insert(Unit { guest: 1, page: p, thp: false }, 1);
        }
        mem.frames = frames;
        let mut clock = Clock::new(0.0, Knobs { lru: Lru::PerGuest });
        for (g, looks, pages) in [(0, 2, 1024), (1, 64, 64)] {
            let mut out = Outcome::default();
            let mut pace = Pace { start: 0, page_ns: 0.0, work: 0.0 };
            let stop = Stop { evicted: u64::MAX, cost: 64.0, free: None };
            let used = clock.walk(&mut mem, g, stop, &mut pace, &mut out);
            assert_eq!((out.scanned, out.scanned_pages, out.evicted, used), (looks, pages, 0, 64.0), "guest {g}");
        }
    }

    #[test]
    fn a_ksm_page_is_taken_by_the_cgroup_charged_with_it() {
        // The cgroup of the page ksmd was scanning is charged with the KSM
        // page (try_to_merge_two_pages makes that page the KSM page), and
        // only that cgroup's lruvec holds it. Two guests of four pages
        // merged pairwise, the second guest's pages first: its walk takes
        // the KSM pages (three to free three frames, each written once),
        // the first guest's finds nothing of its own. When the charged
        // page of the last KSM page leaves (a copy-on-write break), the
        // charge moves to the first guest.
        let mut mem = host(&[4, 4], &[false, false]);
        for g in &mut mem.guests {
            g.pages.iter_mut().for_each(|st| *st = RESIDENT | MERGED);
            g.resident = 0;
            g.merged = 4;
        }
        mem.frames = Frames::new(4);
        mem.frames.track(0, 4);
        mem.frames.track(1, 4);
        for p in 0..4u64 {
            mem.ksm.create(&mut mem.frames, p, false, &[(1, p, 4), (0, p, 4)], 2);
        }
        assert_eq!((mem.ksm.charged(0), mem.ksm.charged(1)), (0, 4));
        let mut clock = Clock::new(0.0, Knobs { lru: Lru::PerGuest });
        let out = clock.reclaim(&mut mem, 3, 0, false);
        assert_eq!((out.evicted, mem.swap.writes(), mem.frames.used()), (3, 3, 1));
        assert_eq!((mem.ksm.charged(0), mem.ksm.charged(1)), (0, 1));
        let left = (0..4).find(|&p| mem.guests[1].pages[p] & RES_MASK != SWAPPED).expect("one KSM page stays") as u64;
        mem.ksm.leave(&mut mem.frames, 1, left);
        assert_eq!((mem.ksm.charged(0), mem.ksm.charged(1)), (1, 0));
    }
}
