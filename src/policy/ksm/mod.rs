//! KSM, the kernel's same-page merging, as ksmd does it (mm/ksm.c; the
//! rules and counters are collected in docs/sources/ksm-balloon-policies.md,
//! section 3).
//!
//! ksmd wakes every `sleep_millisecs`, takes the next `pages_to_scan`
//! present pages of mergeable memory, guest by guest in address order, and
//! wraps into a new full scan (`full_scans`), discarding the unstable tree.
//! For each page:
//!
//! - Its checksum is compared with the one from the last scan. A page seen
//!   for the first time, or written since (`WRITTEN`), only has its checksum
//!   stored: it is volatile. So nothing merges during the first full scan.
//! - A zero page with `use_zero_pages` is mapped to the kernel's zero page
//!   (`ksm_zero_pages`).
//! - A page whose content has a KSM page with room for one more sharer
//!   (`max_page_sharing`) in the stable tree is mapped to it.
//! - Otherwise it goes into the unstable tree; when an identical page is
//!   already there, both become one new KSM page (a stable node).
//!
//! Content is the page's class (unique, shared with the image, zero, see
//! `model::page`): shared pages are identical across the guests of one
//! image at the same guest address, zero pages are identical everywhere,
//! unique pages match nothing. A merged page is mapped read-only and has no
//! frame of its own; writing it is a copy-on-write break (handled by the
//! engine through [`Ksm::unmerge`]). A KSM page is a frame of its own on
//! the LRU with its sharers listed (`model::ksmpage`): reclaim swaps it
//! out once for all of them, its stable node stays counted, stale, until
//! ksmd meets it (`Ksm::meet_stale`), and the sharers fault it back one
//! by one.
//!
//! A THP whose page can merge is split first, as try_to_merge_one_page
//! does (`split_huge_page`). Hugetlb memory, `ksm: false` guests and
//! shared backends are never scanned (`ksm_compatible` refuses
//! VM_HUGETLB and VM_SHARED; libvirt's `<nosharepages/>` leaves memory
//! unmergeable).
//!
//! In sampled mode a simulated page stands for 1/R real ones: ksmd then
//! scans R·`pages_to_scan` simulated pages per wake-up (carrying the
//! fraction), and the counters scale back up. Guests of one image sample
//! the same addresses, so their shared pages still meet.
//!
//! The model is split by mechanism: `tree` holds the stable and unstable
//! trees and what their entries pack, `scan` ksmd's look at a page and
//! at a word of 64 pages (cmp_and_merge_page and the merge itself),
//! `smart` smart scan's skipping; this file ksmd's state, its wake-up
//! walk, copy-on-write breaks and the counters.

mod scan;
mod smart;
mod tree;

use crate::model::Memory;
use crate::model::page::{Content, HUGE, MERGED, RES_MASK, RESIDENT};

use tree::{Dups, Key, Tree, ZERO_KEY, unstable_page};

/// Bytes of one `struct ksm_rmap_item` on a 64-bit kernel (ksm.rst: "64B
/// on 64-bit"), charged against the savings in `general_profit`.
pub const RMAP_ITEM_BYTES: f64 = 64.0;

/// The knobs of `/sys/kernel/mm/ksm/` ksmd reads on each wake-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knobs {
    pub run: bool,
    pub pages_to_scan: u32,
    pub sleep_millisecs: u32,
    pub use_zero_pages: bool,
    pub max_page_sharing: u32,
    /// Skip pages that did not merge for a while (Linux 6.7+, on by
    /// default): see `smart::skip_plan`.
    pub smart_scan: bool,
}

impl Knobs {
    /// ksmd running at the kernel's default pace (100 pages every 20 ms),
    /// the other knobs at their defaults but smart scan off: where the
    /// tests start.
    #[cfg(test)]
    pub(crate) fn running() -> Knobs {
        Knobs {
            run: true,
            pages_to_scan: 100,
            sleep_millisecs: 20,
            use_zero_pages: false,
            max_page_sharing: 256,
            smart_scan: false,
        }
    }
}

/// Counters in simulated pages (the engine scales them by 1/R), with the
/// kernel's meaning.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// KSM pages in use (stable nodes, counting each dup).
    pub pages_shared: u64,
    /// Mappings beyond the first of each KSM page: pages saved.
    pub pages_sharing: u64,
    /// Pages in the unstable tree: unique, but checked for merging.
    pub pages_unshared: u64,
    /// Pages changing too fast to enter a tree.
    pub pages_volatile: u64,
    /// Pages mapped to the kernel's zero page (`use_zero_pages`).
    pub zero_pages: u64,
    pub full_scans: u64,
    pub pages_scanned: u64,
    /// Pages smart scan passed over (`pages_skipped`).
    pub pages_skipped: u64,
    /// Writes that broke a merged mapping (copy-on-write).
    pub cow_breaks: u64,
}

/// What one wake-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Wake {
    /// Simulated pages scanned.
    pub scanned: u64,
    /// Simulated pages that merged (each freed a frame, less the frames
    /// new KSM pages took).
    pub merged: u64,
    /// A full scan ended during this wake-up.
    pub full_scan_done: bool,
    /// Of the pages scanned, those already mapping a KSM page: nothing to
    /// search ([`crate::latency::Costs::ksm_pages_ns`]).
    pub kept: u64,
    /// Pages smart scan passed over: outside `scanned`, but not free
    /// ([`crate::latency::Costs::ksm_skipped_page_ns`]).
    pub skipped: u64,
    /// The levels of the stable and of the unstable tree the pages looked
    /// at went down, summed: every page not yet mapping a KSM page is
    /// searched for in the stable tree, and one that may merge and has no
    /// KSM page also in the unstable tree. A search of a balanced tree of
    /// n contents goes log2(1 + n) levels down, each a compare against a
    /// page (see [`crate::latency::Costs::ksm_pages_ns`]).
    pub stable_levels: f64,
    pub unstable_levels: f64,
}

/// ksmd's state.
#[derive(Debug, Clone)]
pub struct Ksm {
    pub knobs: Knobs,
    /// Guest index and simulated page where the scan goes on.
    cursor: (usize, u64),
    /// Simulated pages owed to the scan (sampled mode scans fractions).
    budget: f64,
    /// Stable tree: for each content, its KSM pages ([`Dups`], packed).
    stable: Tree,
    /// Unstable tree of this full scan: for each content, the page
    /// waiting for a twin ([`tree::unstable_entry`]).
    unstable: Tree,
    /// Per guest, one bit per page: the page sits in the unstable tree, or
    /// was volatile, as of ksmd's last pass over it. The kernel keeps a
    /// page in these counts until ksmd passes it again (its rmap_item is
    /// then removed or reused), and drops it when the page is gone.
    unshared_bits: Vec<Vec<u64>>,
    volatile_bits: Vec<Vec<u64>>,
    pub counters: Counters,
    /// Image number of each guest (guests of one image share content).
    image_of: Vec<u32>,
    /// Guests of each image: how many pages one KSM page of an image's
    /// page may come to have (its sharers' room is made for them at once).
    image_guests: Vec<u32>,
    /// Each guest's content classes, to tell its common-pattern pages
    /// (the duplicate share) from those keyed by their index.
    classes: Vec<crate::model::page::Classifier>,
    /// Pass whole words of 64 pages as one ([`Ksm::pass_word`]); off
    /// only in the test that holds it to the page-by-page walk.
    word_pass: bool,
    /// Smart scan: per guest and page, the rmap item's age and the scans
    /// it may still skip, packed ([`smart::Smart`]); sized on first use.
    smart: Vec<Vec<u8>>,
    /// Unique pages put in the unstable tree this full scan: nothing
    /// matches them, so the model keeps no entry, but they make the
    /// kernel's tree deeper.
    unique_unstable: u64,
    /// Real pages a simulated page stands for (1 page-exact).
    scale: f64,
    /// The stable tree's counts and its depth then ([`Ksm::stable_depth`]).
    stable_depth_at: ((u64, u64), f64),
}

impl Ksm {
    /// `image_of[g]` numbers guest `g`'s image; `shares[g]` are its
    /// content shares; `pages[g]` its real and simulated page counts.
    pub fn new(knobs: Knobs, image_of: Vec<u32>, shares: Vec<crate::model::page::Shares>, pages: &[(u64, u64)]) -> Ksm {
        // An image's trees are tables when its guests' real pages are at
        // most four times the simulated pages of its largest guest:
        // always when page-exact (a guest's real pages are then its own),
        // never sampled at 1/8 or below, where the sampled pages would
        // sit one to a table page and every page of the table be mapped.
        let images = image_of.iter().map(|&i| i as usize + 1).max().unwrap_or(0);
        let (mut span, mut sim) = (vec![0u64; images], vec![0u64; images]);
        for (&i, &(real, simulated)) in image_of.iter().zip(pages) {
            span[i as usize] = span[i as usize].max(real);
            sim[i as usize] = sim[i as usize].max(simulated);
        }
        let spans: Vec<u64> = span.iter().zip(&sim).map(|(&r, &s)| if r <= 4 * s { r } else { 0 }).collect();
        Ksm {
            knobs,
            cursor: (0, 0),
            budget: 0.0,
            stable: Tree::new(&spans, false),
            unstable: Tree::new(&spans, true),
            unshared_bits: Vec::new(),
            volatile_bits: Vec::new(),
            counters: Counters::default(),
            image_guests: (0..images as u32).map(|i| image_of.iter().filter(|&&x| x == i).count() as u32).collect(),
            image_of,
            classes: shares.iter().map(|s| s.classifier()).collect(),
            word_pass: true,
            smart: Vec::new(),
            unique_unstable: 0,
            stable_depth_at: ((0, 0), 0.0),
            scale: {
                let (real, sim) = pages.iter().fold((0u64, 0u64), |(r, s), &(a, b)| (r + a, s + b));
                if sim == 0 { 1.0 } else { real as f64 / sim as f64 }
            },
        }
    }

    fn key(&self, mem: &Memory, g: usize, p: u64, content: Content) -> Option<Key> {
        match content {
            Content::Unique => None,
            Content::Zero => Some(ZERO_KEY),
            Content::Shared => {
                let real = mem.guests[g].real_page(p);
                let common = self.classes.get(g).is_some_and(|c| c.is_common(real));
                let page = (!common).then_some(real);
                Some(Key::image(self.image_of[g], page))
            }
        }
    }

    /// One wake-up: scan `pages` simulated pages (a fraction is carried) of
    /// the guests `mergeable` says may merge, in guest order.
    pub fn wake(&mut self, mem: &mut Memory, mergeable: &[bool], pages: f64) -> Wake {
        let mut out = Wake::default();
        let skipped_before = self.counters.pages_skipped;
        self.budget += pages;
        let n_guests = mem.guests.len();
        if !mergeable.iter().any(|&m| m) {
            self.budget = 0.0;
            return out;
        }
        // A wake-up ends when the budget is spent or a whole pass found no
        // present page (nothing to scan).
        let mut idle_guests = 0usize;
        while self.budget >= 1.0 {
            let (g, p) = self.cursor;
            if g >= n_guests {
                self.end_full_scan();
                out.full_scan_done = true;
                self.cursor = (0, 0);
                if idle_guests >= n_guests {
                    break;
                }
                idle_guests = 0;
                continue;
            }
            if !mergeable[g] || !mem.guests[g].is_alive() || p >= mem.guests[g].sim_pages() {
                self.cursor = (g + 1, 0);
                idle_guests += 1;
                continue;
            }
            // A backend that may not merge (hugetlbfs, shared, or without
            // MADV_MERGEABLE) is passed over whole: ksmd walks only
            // mergeable VMAs.
            let mut end = mem.guests[g].sim_pages();
            if mem.guests[g].segments.len() > 1 {
                let seg = mem.guests[g].segment_of(p);
                if !seg.mergeable {
                    self.cursor = (g, seg.sim.end);
                    continue;
                }
                end = seg.sim.end;
            }
            // The segment's pages in order while the budget lasts (nothing
            // a look does changes the guest, its segment or its life).
            let mut q = p;
            let plain = self.word_pass && mem.guests[g].events.is_none();
            if self.knobs.smart_scan {
                // Sized once here: the walk indexes them directly.
                self.smart_of(mem, g);
            }
            while q < end && self.budget >= 1.0 {
                if plain
                    && q % 64 == 0
                    && q + 64 <= end
                    && let Some(present) = self.pass_word(mem, g, q, &mut out)
                {
                    if present > 0 {
                        idle_guests = 0;
                    }
                    q += 64;
                    continue;
                }
                // A swapped-out KSM page's stale node, met where one of
                // its sharers is (its rmap item is removed here).
                if let Some(id) = mem.ksm.stale_at(g, q) {
                    self.meet_stale(mem, id);
                }
                // Passing the page ends what ksmd last noted of it.
                self.forget(g, q);
                let st = mem.guests[g].pages[q as usize];
                q += 1;
                let res = st & RES_MASK;
                if (res != RESIDENT && res != HUGE) || mem.guests[g].is_zero_mapped(q - 1) {
                    // Not present, or the zero page (not anonymous memory):
                    // the page walk skips it without counting it, and its
                    // rmap item goes (get_next_rmap_item frees it).
                    self.reset_age(g, q - 1);
                    continue;
                }
                idle_guests = 0;
                if st & MERGED == 0 && self.smart_skip(mem, g, q - 1) {
                    continue;
                }
                self.budget -= 1.0;
                out.scanned += 1;
                let look = self.scan_page(mem, g, q - 1, &mut out);
                out.count(look);
            }
            self.cursor = (g, q);
        }
        self.counters.pages_scanned += out.scanned;
        out.skipped = self.counters.pages_skipped - skipped_before;
        out
    }

    /// A write to merged page `p` of guest `g` (copy-on-write break), or the
    /// guest's death: drop the mapping. The page's frame is the caller's
    /// business; a KSM page left with no sharer frees its frame here.
    pub fn unmerge(&mut self, mem: &mut Memory, g: usize, p: u64) {
        let st = mem.guests[g].pages[p as usize];
        debug_assert!(st & MERGED != 0);
        let content = Content::of(st);
        if content == Content::Zero && self.knobs.use_zero_pages {
            self.counters.zero_pages -= 1;
        } else if let Some(key) = self.key(mem, g, p, content) {
            // A mapped KSM page is resident, so its node is counted. (The
            // key is the page's content's, as the KSM page's is.)
            if let Some((id, before)) = mem.ksm.leave(&mut mem.frames, g as u32, p) {
                if before == 1 {
                    // Its only mapping: the KSM page goes.
                    self.counters.pages_shared -= 1;
                    self.drop_dup(key, id);
                } else {
                    self.counters.pages_sharing -= 1;
                }
            }
        }
        let guest = &mut mem.guests[g];
        guest.pages[p as usize] &= !MERGED;
        guest.merged -= 1;
        if let Some(e) = guest.events.as_deref_mut() {
            e.note(p as usize, guest.pages[p as usize]);
        }
    }

    /// KSM page `id` of content `key` left the stable tree.
    fn drop_dup(&mut self, key: Key, id: u32) {
        let Some(entry) = self.stable.get_mut(key) else { return };
        let mut dups = Dups::unpack(*entry);
        if dups.last == Some(id) {
            dups.last = None;
        } else {
            dups.full = dups.full.saturating_sub(1);
        }
        if dups.is_empty() {
            self.stable.remove(key);
        } else {
            *entry = dups.pack();
        }
    }

    /// ksmd meets the stable node of KSM page `id`, swapped out since it
    /// was merged (stale): `get_ksm_page` finds its page gone and
    /// `remove_node_from_stable_tree` drops it with every rmap item, the
    /// counters with them.
    fn meet_stale(&mut self, mem: &mut Memory, id: u32) {
        let key = Key::from_raw(mem.ksm.page(id).key);
        let n = mem.ksm.drop_node(id) as u64;
        self.counters.pages_shared -= 1;
        self.counters.pages_sharing -= n.saturating_sub(1);
        self.drop_dup(key, id);
    }

    /// The KSM page of content `key` a new sharer joins: the last dup,
    /// while it has room. A stale one is met (and dropped) on the way, as
    /// the stable tree's search meets it.
    fn last_with_room(&mut self, mem: &mut Memory, key: Key) -> Option<u32> {
        let id = Dups::unpack(*self.stable.get_mut(key)?).last?;
        let Some(n) = mem.ksm.resident_sharers(id) else {
            self.meet_stale(mem, id);
            return None;
        };
        (n < self.knobs.max_page_sharing.max(2)).then_some(id)
    }

    /// Guest `g` lost page `p`'s swap entry of a swapped-out KSM page
    /// (a balloon took the page, or the guest died: `gone`): the slot goes
    /// with its last entry. The rmap item stays on the stale node until
    /// ksmd reaches the address, or, for a dead guest, is dropped now
    /// (ksmd frees an exited mm's items when it next comes to it; the
    /// model's walk passes dead guests by).
    pub fn drop_swapped_entry(&mut self, mem: &mut Memory, g: usize, p: u64, gone: bool) -> bool {
        let Some((id, last)) = mem.ksm.drop_entry(g as u32, p) else { return false };
        if last {
            mem.swap.discard(mem.ksm.swap_page(id));
        }
        if gone && mem.ksm.page(id).node && !mem.ksm.resident(id) {
            self.meet_stale(mem, id);
        }
        true
    }

    fn end_full_scan(&mut self) {
        self.counters.full_scans += 1;
        self.unstable.clear();
        self.unique_unstable = 0;
    }

    /// Note page `p` of guest `g` as unshared (in the unstable tree) or
    /// volatile until ksmd passes it again.
    fn note(&mut self, g: usize, p: u64, unshared: bool) {
        let bits = if unshared { &mut self.unshared_bits } else { &mut self.volatile_bits };
        if bits.len() <= g {
            bits.resize(g + 1, Vec::new());
        }
        let (w, b) = ((p / 64) as usize, p % 64);
        if bits[g].len() <= w {
            bits[g].resize(w + 1, 0);
        }
        bits[g][w] |= 1 << b;
        if unshared {
            self.counters.pages_unshared += 1;
        } else {
            self.counters.pages_volatile += 1;
        }
    }

    /// Drop what ksmd noted of page `p` of guest `g`.
    fn forget(&mut self, g: usize, p: u64) {
        let (w, b) = ((p / 64) as usize, p % 64);
        for (bits, count) in [
            (&mut self.unshared_bits, &mut self.counters.pages_unshared),
            (&mut self.volatile_bits, &mut self.counters.pages_volatile),
        ] {
            if let Some(word) = bits.get_mut(g).and_then(|v| v.get_mut(w))
                && *word & (1 << b) != 0
            {
                *word &= !(1 << b);
                *count -= 1;
            }
        }
    }

    /// Guest `g` is gone: ksmd drops its pages (ksm_exit).
    pub fn forget_guest(&mut self, g: usize) {
        for (bits, count) in [
            (&mut self.unshared_bits, &mut self.counters.pages_unshared),
            (&mut self.volatile_bits, &mut self.counters.pages_volatile),
        ] {
            if let Some(v) = bits.get_mut(g) {
                *count -= v.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
                v.clear();
            }
        }
        self.unstable.retain(|w| unstable_page(w).0 as usize != g);
        if let Some(v) = self.smart.get_mut(g) {
            v.clear();
        }
    }

    /// ksmd's `general_profit` in simulated pages' bytes: pages saved minus
    /// what its rmap_items cost.
    pub fn general_profit_bytes(&self) -> f64 {
        let c = &self.counters;
        let rmap_items = c.pages_shared + c.pages_sharing + c.pages_unshared + c.pages_volatile;
        (c.pages_sharing + c.zero_pages) as f64 * 4096.0 - rmap_items as f64 * RMAP_ITEM_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::page::{CHECKSUMMED, CLASS_MASK, SWAPPED, UNTOUCHED, WRITTEN, mix64};
    use crate::model::swap::NoSwap;
    use crate::model::{Backing, Frames, Guest, Unit, Watermarks};

    const PAGES: [(u64, u64); 2] = [(4096, 4096); 2];

    /// Two guests of one image, 4,096 pages each (a tenth shared, a tenth
    /// zero), with residency and ksmd's marks spread by a hash: runs of
    /// quiet words (absent, merged-to-be or unique and checksummed) and
    /// words that need a page-by-page look.
    fn two_guests(salt: u64) -> Memory {
        let pages = 4096u64;
        let mut frames = Frames::new(1 << 20);
        let mut guests = Vec::new();
        for g in 0..2u32 {
            let mut guest = Guest::new(format!("g{g}"), 0, Backing::Small { thp: false }, pages, Vec::new(), 0.1, 0.1);
            frames.track(g, pages);
            for p in 0..pages {
                let h = mix64(p ^ u64::from(g) << 32 ^ salt);
                // Every fifth word all absent, the others mixed.
                let res = if (p / 64) % 5 == 0 {
                    UNTOUCHED
                } else if h.is_multiple_of(7) {
                    SWAPPED
                } else {
                    RESIDENT
                };
                let mut st = guest.pages[p as usize] | res;
                if !(h >> 8).is_multiple_of(4) {
                    st |= CHECKSUMMED;
                }
                if (h >> 16).is_multiple_of(29) {
                    st |= WRITTEN;
                }
                guest.pages[p as usize] = st;
                if res == RESIDENT {
                    frames.insert(Unit { guest: g, page: p, thp: false }, 1);
                    guest.resident += 1;
                } else if res == SWAPPED {
                    guest.swapped += 1;
                }
            }
            guests.push(guest);
        }
        Memory::new(frames, Watermarks { min: 0, low: 0, high: 0 }, Vec::new(), Box::new(NoSwap), guests)
    }

    #[test]
    fn passing_quiet_words_whole_is_the_page_by_page_walk() {
        // Truth: ksmd's own walk (cmp_and_merge_page on each present page,
        // as `scan_page` plays it), taken one page at a time. Passing a
        // quiet word in one step must leave every counter, mark, page and
        // the cursor exactly where that walk does, after every wake-up,
        // whatever the budget (fractions and budgets that end inside a
        // word included) and with writes between wake-ups.
        // Smart scan on (salts 4-7) as off.
        for salt in 0..8u64 {
            let knobs = Knobs {
                run: true,
                pages_to_scan: 100,
                sleep_millisecs: 20,
                use_zero_pages: salt % 2 == 1,
                max_page_sharing: 3,
                smart_scan: salt >= 4,
            };
            let shares = vec![crate::model::page::Shares { shared: 0.1, zero: 0.1, ..Default::default() }; 2];
            let (mut fast, mut slow) =
                (Ksm::new(knobs, vec![0, 0], shares.clone(), &PAGES), Ksm::new(knobs, vec![0, 0], shares, &PAGES));
            slow.word_pass = false;
            let (mut a, mut b) = (two_guests(salt), two_guests(salt));
            let mut words_passed = 0;
            for wake in 0..400u64 {
                // Budgets from half a word to many, with fractions.
                let budget = (mix64(wake ^ salt << 32) % 900) as f64 / 4.0 + 30.0;
                let before = fast.counters.pages_scanned;
                let mut wa = fast.wake(&mut a, &[true, true], budget);
                let wb = slow.wake(&mut b, &[true, true], budget);
                // The word pass sums the unstable tree's levels as logs of
                // products: the same to rounding.
                let d = (wa.unstable_levels - wb.unstable_levels).abs();
                assert!(d <= 1e-9 * wb.unstable_levels.max(1.0), "salt {salt} wake {wake}: {wa:?} {wb:?}");
                wa.unstable_levels = wb.unstable_levels;
                assert_eq!(wa, wb, "salt {salt} wake {wake}");
                assert_eq!(fast.counters, slow.counters, "salt {salt} wake {wake}");
                assert_eq!(fast.cursor, slow.cursor, "salt {salt} wake {wake}");
                // The marks, whatever words each side allocated.
                fn marks(k: &Ksm) -> [Vec<Vec<(usize, u64)>>; 2] {
                    [&k.unshared_bits, &k.volatile_bits].map(|v| {
                        v.iter().map(|w| w.iter().copied().enumerate().filter(|e| e.1 != 0).collect()).collect()
                    })
                }
                assert_eq!(marks(&fast), marks(&slow), "salt {salt} wake {wake}");
                assert_eq!(fast.smart, slow.smart, "salt {salt} wake {wake}");
                assert_eq!(a.frames.used(), b.frames.used());
                for g in 0..2 {
                    assert!(a.guests[g].pages.iter().eq(b.guests[g].pages.iter()), "salt {salt} wake {wake}");
                }
                words_passed += u64::from(fast.counters.pages_scanned - before >= 64);
                // The guests write some pages between wake-ups.
                for g in 0..2 {
                    let p = (mix64(wake ^ salt << 20 ^ g as u64) % 4096) as usize;
                    for m in [&mut a, &mut b] {
                        m.guests[g].pages[p] |= WRITTEN;
                    }
                }
            }
            assert!(fast.counters.full_scans >= 10 && fast.counters.pages_sharing > 0 && words_passed > 0);
            assert_eq!(fast.counters.pages_skipped > 0, salt >= 4, "salt {salt}");
        }
    }

    #[test]
    fn a_budget_that_ends_inside_a_quiet_word_stops_after_its_last_page() {
        // ksmd scans pages_to_scan present pages and stops; the next
        // wake-up goes on from the address after the last one it scanned
        // (ksm_scan.address, mm/ksm.c). A word whose first ten pages are
        // present, unique and checksummed and whose other 54 are swapped
        // out, met with 10.5 pages of budget: the wake-up scans those ten
        // and stops at page 74 with half a page carried, not at the word's
        // end.
        let mut mem = two_guests(0);
        let g = &mut mem.guests[0];
        for p in 64..128usize {
            let class = g.pages[p] & CLASS_MASK;
            g.pages[p] = if p < 74 { RESIDENT | CHECKSUMMED } else { SWAPPED | class };
        }
        let mut ksm = Ksm::new(Knobs::running(), vec![0, 0], vec![Default::default(); 2], &PAGES);
        ksm.cursor = (0, 64);
        let w = ksm.wake(&mut mem, &[true, true], 10.5);
        assert_eq!((w.scanned, ksm.cursor, ksm.budget), (10, (0, 74), 0.5));
        assert_eq!(ksm.counters.pages_unshared, 10);
    }
}
