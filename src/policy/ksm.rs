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
//! engine through [`Ksm::unmerge`]). KSM pages are kept resident: the
//! model does not swap them out (the kernel can, through rmap walks, at a
//! cost this model leaves out).
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

use std::collections::HashMap;

use crate::model::page::{CHECKSUMMED, CLASS_MASK, CLASS_SHIFT, Content, HUGE, MERGED, RES_MASK, RESIDENT, WRITTEN};
use crate::model::{Memory, Unit};
use crate::policy::reclaim::split_thp;

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
    /// default): see [`skip_plan`].
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

/// What ksmd did with one page it scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// Already mapped a KSM page (or the zero page).
    Kept,
    /// Its checksum stored (first sight, or changed): volatile.
    Checksummed,
    /// Searched the trees and merged.
    Merged,
    /// Searched the trees and left in the unstable tree.
    Searched,
}

/// Where a merged page's content lives, packed in a word so a tree entry
/// is two words: page `page` (real index; all ones for the image's common
/// pattern) of image `image`, or all-zero content merged as an ordinary
/// KSM page ([`ZERO_KEY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key(u64);

const KEY_PAGE_BITS: u32 = 40;
const KEY_PAGE_MASK: u64 = (1 << KEY_PAGE_BITS) - 1;
const ZERO_KEY: Key = Key(u64::MAX);

impl Key {
    fn image(image: u32, page: Option<u64>) -> Key {
        // Real page indices stay far below 2^40 (4 PiB of guest memory).
        debug_assert!(page.is_none_or(|p| p < KEY_PAGE_MASK));
        let page = page.unwrap_or(KEY_PAGE_MASK);
        Key(u64::from(image) << KEY_PAGE_BITS | page)
    }

    /// One content however the guests are sampled: the zero page's, or an
    /// image's common pattern (not a page of the image).
    fn single(self) -> bool {
        self == ZERO_KEY || self.0 & KEY_PAGE_MASK == KEY_PAGE_MASK
    }
}

/// The KSM pages of one content: `full` of them with `max_page_sharing`
/// sharers each (the kernel's stable_node dups), then one with `last`.
/// Only the last has room: a dup is added when all were full, and
/// unmerging takes sharers from the last (sharers are interchangeable).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Dups {
    full: u32,
    last: u32,
}

impl Dups {
    /// As a tree entry (nonzero: a live content has a KSM page).
    fn pack(self) -> u64 {
        u64::from(self.full) << 32 | u64::from(self.last)
    }
    fn unpack(v: u64) -> Dups {
        Dups { full: (v >> 32) as u32, last: v as u32 }
    }
}

/// An unstable tree entry: the waiting page, with a bit that keeps page 0
/// of guest 0 nonzero.
fn unstable_entry(g: usize, p: u64) -> u64 {
    1 << 63 | (g as u64) << KEY_PAGE_BITS | p
}

fn unstable_page(v: u64) -> (u32, u64) {
    (((v & !(1 << 63)) >> KEY_PAGE_BITS) as u32, v & KEY_PAGE_MASK)
}

/// Hashing for the trees' keys: a content key is two small integers, so a
/// multiply-and-mix hash (no per-process seed: nothing here meets keys
/// chosen against it) instead of SipHash, which took ksmd's scan a fifth
/// of its time.
type KeyHash = std::hash::BuildHasherDefault<KeyHasher>;

#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        crate::model::page::mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_isize(&mut self, v: isize) {
        self.write_u64(v as u64);
    }
}

/// One of ksmd's trees, each entry a nonzero word: for an image whose
/// real pages are few enough (every page-exact run), a table indexed by
/// real page, which the scan reads in cache where a hash map's probes
/// miss; other keys (the zero page, an image's common pattern, sampled
/// images whose real indices are sparse) in a hash map. A table is made
/// at its first entry, zeroed (the OS maps its pages as they are first
/// written, so a run whose pages never reach the tree does not pay for
/// it), and a tree that is cleared logs the entries it set, so clearing
/// costs what was put in, not the table's size.
#[derive(Debug, Clone)]
struct Tree {
    /// Each image's table length (0: its keys are hashed).
    spans: Vec<u64>,
    dense: Vec<Vec<u64>>,
    other: HashMap<Key, u64, KeyHash>,
    /// Table entries set since the last clear, when `clears`.
    set: Vec<Key>,
    clears: bool,
    /// Entries keyed by a page of an image (each a simulated page standing
    /// for `scale` real contents in sampled mode), and the others (zero
    /// content, an image's common pattern: one content each, sampled or
    /// not): what the kernel's rbtree holds, for the depth of a search.
    paged: u64,
    single: u64,
}

impl Tree {
    fn new(spans: &[u64], clears: bool) -> Tree {
        Tree {
            spans: spans.to_vec(),
            dense: vec![Vec::new(); spans.len()],
            other: HashMap::default(),
            set: Vec::new(),
            clears,
            paged: 0,
            single: 0,
        }
    }

    /// Count an entry of `key` in or out.
    fn count(&mut self, key: Key, delta: i64) {
        let n = if key.single() { &mut self.single } else { &mut self.paged };
        *n = n.checked_add_signed(delta).expect("a tree's entries stay counted");
    }

    /// The contents the kernel's tree holds when a simulated page stands
    /// for `scale` real ones.
    fn real_len(&self, scale: f64) -> f64 {
        self.paged as f64 * scale + self.single as f64
    }

    /// Where `key` sits in a table, when its image has one.
    #[inline]
    fn at(&self, key: Key) -> Option<(usize, usize)> {
        if key == ZERO_KEY {
            return None;
        }
        let (i, p) = ((key.0 >> KEY_PAGE_BITS) as usize, key.0 & KEY_PAGE_MASK);
        (p < *self.spans.get(i)?).then_some((i, p as usize))
    }

    #[inline]
    fn get_mut(&mut self, key: Key) -> Option<&mut u64> {
        match self.at(key) {
            Some((i, p)) => self.dense[i].get_mut(p).filter(|v| **v != 0),
            None => self.other.get_mut(&key),
        }
    }

    fn insert(&mut self, key: Key, v: u64) {
        debug_assert!(v != 0);
        match self.at(key) {
            Some((i, p)) => {
                if self.dense[i].is_empty() {
                    self.dense[i] = vec![0; self.spans[i] as usize];
                }
                if self.dense[i][p] == 0 {
                    if self.clears {
                        self.set.push(key);
                    }
                    self.count(key, 1);
                }
                self.dense[i][p] = v;
            }
            None => {
                if self.other.insert(key, v).is_none() {
                    self.count(key, 1);
                }
            }
        }
    }

    fn remove(&mut self, key: Key) -> Option<u64> {
        let v = match self.at(key) {
            Some((i, p)) => self.dense[i].get_mut(p).map(std::mem::take).filter(|&v| v != 0),
            None => self.other.remove(&key),
        };
        if v.is_some() {
            self.count(key, -1);
        }
        v
    }

    fn clear(&mut self) {
        debug_assert!(self.clears);
        for key in std::mem::take(&mut self.set) {
            if let Some((i, p)) = self.at(key) {
                self.dense[i][p] = 0;
            }
        }
        self.other.clear();
        (self.paged, self.single) = (0, 0);
    }

    fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        debug_assert!(self.clears);
        for k in 0..self.set.len() {
            let key = self.set[k];
            if let Some((i, p)) = self.at(key)
                && self.dense[i][p] != 0
                && !keep(self.dense[i][p])
            {
                self.dense[i][p] = 0;
                self.count(key, -1);
            }
        }
        let (mut paged, mut single) = (0, 0);
        self.other.retain(|k, v| {
            let stays = keep(*v);
            if !stays {
                *if k.single() { &mut single } else { &mut paged } += 1;
            }
            stays
        });
        self.paged -= paged;
        self.single -= single;
    }
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
    /// waiting for a twin ([`unstable_entry`]).
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
    /// Each guest's content classes, to tell its common-pattern pages
    /// (the duplicate share) from those keyed by their index.
    classes: Vec<crate::model::page::Classifier>,
    /// Pass whole words of 64 pages as one ([`Ksm::pass_word`]); off
    /// only in the test that holds it to the page-by-page walk.
    word_pass: bool,
    /// Smart scan: per guest and page, the rmap item's age and the scans
    /// it may still skip, packed ([`Smart`]); sized on first use.
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

/// How many scans smart scan lets a page of `age` skip (mm/ksm.c,
/// `skip_age`).
const fn skip_age(age: u8) -> u8 {
    match age {
        0..=3 => 1,
        4..=5 => 2,
        6..=8 => 4,
        _ => 8,
    }
}

/// Smart scan's decision for a page that is not a KSM page, from its rmap
/// item's `age` and remaining skips `rem` (`should_skip_rmap_item`, Linux
/// 6.7+): whether ksmd skips it, and the item's age and remaining skips
/// after. The age counts ksmd's visits and is never reset while the item
/// lives; the first three visits are never skipped (a page needs them to
/// merge), then a page is looked at once and skipped for `skip_age` scans,
/// over and over: a unique page ends up looked at once every nine full
/// scans. A skipped page costs no part of `pages_to_scan`
/// (scan_get_next_rmap_item moves on to the next page). The kernel's age
/// stops at 255; every age from 9 on behaves alike (`skip_age` is 8), so
/// the model's stops at 9, which keeps an item in four bits.
const fn skip_plan(age: u8, rem: u8) -> (bool, u8, u8) {
    let next = if age >= 9 { 9 } else { age + 1 };
    if age < 3 {
        (false, next, rem)
    } else if rem == 0 {
        (false, next, skip_age(age))
    } else {
        (true, next, rem - 1)
    }
}

/// What ksmd needs of 64 pages' states, one bit a page (see
/// [`Ksm::pass_word`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WordMasks {
    /// Mapped (resident or in a huge page).
    present: u64,
    merged: u64,
    /// First sight (no checksum yet), or written since.
    volatile: u64,
    /// Unique content (class 0), checksummed, not written since.
    unique: u64,
    /// First sight of content that may have a KSM page (unwritten, the
    /// image's or zero content).
    first_shareable: u64,
}

impl WordMasks {
    /// The masks of `states` (64 page states), eight at a time: each
    /// condition is a bit of each byte (present is bit 0: RESIDENT and
    /// HUGE have it, SWAPPED and UNTOUCHED not), gathered into a byte.
    #[inline]
    fn of(states: &[u8]) -> WordMasks {
        const LOW: u64 = 0x0101_0101_0101_0101;
        // Byte i's bit 0 to bit i of the top byte (no two terms meet).
        let gather = |f: u64| (f & LOW).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        let bit = |x: u64, b: u32| (x >> b) & LOW;
        let mut m = WordMasks { present: 0, merged: 0, volatile: 0, unique: 0, first_shareable: 0 };
        for (c, chunk) in states.chunks_exact(8).enumerate() {
            let x = u64::from_le_bytes(chunk.try_into().expect("eight states"));
            let (checksummed, written) = (bit(x, CHECKSUMMED.trailing_zeros()), bit(x, WRITTEN.trailing_zeros()));
            let class = bit(x, u32::from(CLASS_SHIFT)) | bit(x, u32::from(CLASS_SHIFT) + 1);
            let shift = 8 * c;
            m.present |= gather(x) << shift;
            m.merged |= gather(bit(x, MERGED.trailing_zeros())) << shift;
            m.volatile |= gather((checksummed ^ LOW) | written) << shift;
            m.unique |= gather(checksummed & !written & !class) << shift;
            m.first_shareable |= gather(!checksummed & !written & class) << shift;
        }
        m
    }
}

/// A page's smart-scan state packed in a byte (age in the low four bits,
/// remaining skips in the high four), and [`skip_plan`] as a table over
/// it: whether the look skips, and the state after.
struct Smart;

impl Smart {
    const TABLE: [(bool, u8); 256] = {
        let mut t = [(false, 0u8); 256];
        let mut b = 0;
        while b < 256 {
            let (age, rem) = ((b & 15) as u8, (b >> 4) as u8);
            if age <= 9 && rem <= 8 {
                let (skip, a, r) = skip_plan(age, rem);
                t[b] = (skip, a | r << 4);
            }
            b += 1;
        }
        t
    };

    #[inline]
    fn look(state: u8) -> (bool, u8) {
        Self::TABLE[state as usize]
    }
}

impl Wake {
    fn count(&mut self, look: Look) {
        match look {
            Look::Kept => self.kept += 1,
            Look::Merged => self.merged += 1,
            Look::Checksummed | Look::Searched => {}
        }
    }
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

    /// Levels a search of the stable tree goes down now (kept with the
    /// counts it was worked out for: the tree changes far less often than
    /// it is searched).
    #[inline]
    fn stable_depth(&mut self) -> f64 {
        let counts = (self.stable.paged, self.stable.single);
        if self.stable_depth_at.0 != counts {
            self.stable_depth_at = (counts, (1.0 + self.stable.real_len(self.scale)).log2());
        }
        self.stable_depth_at.1
    }

    /// Levels a search of the unstable tree goes down now.
    #[inline]
    fn unstable_depth(&self) -> f64 {
        (1.0 + self.unstable_len()).log2()
    }

    /// The pages the kernel's unstable tree holds now.
    #[inline]
    fn unstable_len(&self) -> f64 {
        self.unstable.real_len(self.scale) + self.unique_unstable as f64 * self.scale
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

    /// ksmd passes pages `q..q + 64` of guest `g` (its events off) as one
    /// word. The pages that cannot merge now are settled together: absent,
    /// already merged, seen for the first time or written since the last
    /// pass (the checksum is stored: volatile), or unique content
    /// checksummed and unwritten since (it goes back into the unstable
    /// tree, where nothing matches it). The others, the pages that may
    /// merge, are looked at one by one in order. Exactly what the page
    /// walk does (`forget`, then `scan_page`, page after page): nothing a
    /// look at a page that may merge does touches the settled pages' marks
    /// or states (a waiting page it merges with was itself looked at
    /// earlier in this full scan, so in this word by this loop; a THP it
    /// splits leaves its pages present). Returns the present pages
    /// scanned, or `None` (nothing done) when the budget may end inside
    /// the word.
    fn pass_word(&mut self, mem: &mut Memory, g: usize, q: u64, out: &mut Wake) -> Option<u64> {
        let WordMasks { mut present, merged, volatile, unique, first_shareable } =
            WordMasks::of(&mem.guests[g].pages[q as usize..q as usize + 64]);
        // The zero page a THP split left is not anonymous memory: skipped.
        present &= !mem.guests[g].zero_mapped.get((q / 64) as usize).copied().unwrap_or(0);
        // Smart scan: the pages it skips, planned now and applied once the
        // word is known to be passed whole.
        let mut skip = 0u64;
        if self.knobs.smart_scan && present & !merged != 0 {
            let states = &self.smart_of(mem, g)[q as usize..q as usize + 64];
            let candidates = present & !merged;
            for (i, &s) in states.iter().enumerate() {
                skip |= u64::from(Smart::look(s).0) << i;
            }
            skip &= candidates;
        }
        let mut volatile = present & !merged & !skip & volatile;
        let unique = present & !merged & !skip & unique;
        let n = u64::from((present & !skip).count_ones());
        // Pages seen for the first time whose content may have a KSM page
        // (unwritten, the image's or zero content) are looked at one by
        // one: the stable tree is searched before the checksum
        // (cmp_and_merge_page), and a page earlier in the word may have
        // just made the KSM page they match.
        volatile &= !first_shareable;
        // The page walk stops where the budget drops below one page: the
        // word is passed whole only when it does not drop inside it.
        if self.budget - (n as f64) < 1.0 {
            return None;
        }
        // Words wholly merged (KSM pages are never skipped) keep theirs.
        if self.knobs.smart_scan && (present & !merged != 0 || present != u64::MAX) {
            let candidates = present & !merged;
            let states = &mut self.smart_of(mem, g)[q as usize..q as usize + 64];
            for (i, s) in states.iter_mut().enumerate() {
                if candidates & (1 << i) != 0 {
                    *s = Smart::look(*s).1;
                } else if present & (1 << i) == 0 {
                    // Not present: its rmap item goes.
                    *s = 0;
                }
            }
            self.counters.pages_skipped += u64::from(skip.count_ones());
            let mut left = skip;
            while left != 0 {
                let i = u64::from(left.trailing_zeros());
                left &= left - 1;
                self.leave_unstable(mem, g, q + i);
            }
        }
        let states = &mut mem.guests[g].pages[q as usize..q as usize + 64];
        let mut v = volatile;
        while v != 0 {
            let st = &mut states[v.trailing_zeros() as usize];
            // As `scan_page`: a written page's content is its own now.
            let own = if *st & WRITTEN != 0 { *st & !CLASS_MASK } else { *st };
            *st = (own | CHECKSUMMED) & !WRITTEN;
            v &= v - 1;
        }
        let w = (q / 64) as usize;
        for bits in [&mut self.unshared_bits, &mut self.volatile_bits] {
            if bits.len() <= g {
                bits.resize(g + 1, Vec::new());
            }
            if bits[g].len() <= w {
                bits[g].resize(w + 1, 0);
            }
        }
        let c = &mut self.counters;
        // A skipped page's rmap item is in no tree: volatile, as the
        // kernel counts it (the rmap items less the others).
        let volatile_marks = volatile | skip;
        c.pages_volatile = c.pages_volatile - u64::from(self.volatile_bits[g][w].count_ones())
            + u64::from(volatile_marks.count_ones());
        self.volatile_bits[g][w] = volatile_marks;
        c.pages_unshared =
            c.pages_unshared - u64::from(self.unshared_bits[g][w].count_ones()) + u64::from(unique.count_ones());
        self.unshared_bits[g][w] = unique;
        self.budget -= n as f64;
        out.scanned += n;
        out.kept += u64::from((present & merged).count_ones());
        let may_merge = present & !(merged | volatile | unique | skip);
        // In page order: the pages that may merge are looked at, and the
        // settled ones charged their searches at the trees' size as the
        // walk reaches them (every one searched the stable tree; a unique
        // one the unstable tree too, which it joins). The unique pages'
        // levels, log2(1 + n) each, are summed as the log of a product of
        // up to eight (one logarithm instead of eight: the same sum, to
        // rounding).
        let mut left = volatile | unique | may_merge;
        let (mut product, mut terms) = (1.0f64, 0);
        while left != 0 {
            let i = left.trailing_zeros();
            left &= left - 1;
            let bit = 1u64 << i;
            if may_merge & bit != 0 {
                out.unstable_levels += product.log2();
                (product, terms) = (1.0, 0);
                let look = self.scan_page(mem, g, q + u64::from(i), out);
                out.count(look);
            } else {
                out.stable_levels += self.stable_depth();
                if unique & bit != 0 {
                    product *= 1.0 + self.unstable_len();
                    self.unique_unstable += 1;
                    terms += 1;
                    if terms == 8 {
                        out.unstable_levels += product.log2();
                        (product, terms) = (1.0, 0);
                    }
                }
            }
        }
        out.unstable_levels += product.log2();
        Some(n)
    }

    /// The key of page `p` of guest `g` (state `st`) when the stable tree
    /// has a KSM page of its content with room for one more sharer: an
    /// unwritten page of the image's or zero content (zero content only
    /// when it is not for the zero page, `use_zero_pages`).
    fn stable_room(&mut self, mem: &Memory, g: usize, p: u64, st: u8) -> Option<Key> {
        if st & WRITTEN != 0 {
            return None;
        }
        let content = Content::of(st);
        if content == Content::Zero && self.knobs.use_zero_pages {
            return None;
        }
        let key = self.key(mem, g, p, content)?;
        let max = self.knobs.max_page_sharing.max(2);
        self.stable.get_mut(key).filter(|v| Dups::unpack(**v).last < max).map(|_| key)
    }

    /// Look at present page `p` of guest `g`, as cmp_and_merge_page does:
    /// the stable tree first (a page whose content has a KSM page merges,
    /// seen before or not), then the checksum (a page seen for the first
    /// time or changed since is only checksummed), then the zero page and
    /// the unstable tree.
    fn scan_page(&mut self, mem: &mut Memory, g: usize, p: u64, out: &mut Wake) -> Look {
        if mem.guests[g].pages[p as usize] & MERGED != 0 {
            // Already a KSM (or zero-page) mapping.
            return Look::Kept;
        }
        // stable_tree_search comes first, for every page.
        out.stable_levels += self.stable_depth();
        settle_written(mem, g, p);
        let st = mem.guests[g].pages[p as usize];
        if st & CHECKSUMMED == 0
            && let Some(key) = self.stable_room(mem, g, p, st)
        {
            if self.zero_thp(mem, g, p, Content::of(st)) {
                split_at(mem, g, p);
                mem.guests[g].pages[p as usize] |= CHECKSUMMED;
                return Look::Searched;
            }
            // The last dup takes one more sharer.
            if let Some(entry) = self.stable.get_mut(key) {
                *entry += 1;
            }
            mem.guests[g].pages[p as usize] |= CHECKSUMMED;
            self.map_merged(mem, g, p);
            self.counters.pages_sharing += 1;
            return Look::Merged;
        }
        if st & CHECKSUMMED == 0 || st & WRITTEN != 0 {
            // First sight, or changed since the last scan: store the
            // checksum and move on (cmp_and_merge_page's volatile case). A
            // written page's content is the guest's own from now on (the
            // touch loop leaves the class to this point: nothing reads it
            // in between, a written page being no merge candidate).
            let st = if st & WRITTEN != 0 { st & !CLASS_MASK } else { st };
            mem.guests[g].pages[p as usize] = (st | CHECKSUMMED) & !WRITTEN;
            self.note(g, p, false);
            return Look::Checksummed;
        }
        let content = Content::of(st);
        if self.zero_thp(mem, g, p, content) && self.knobs.use_zero_pages {
            split_at(mem, g, p);
            return Look::Searched;
        }
        if content == Content::Zero && self.knobs.use_zero_pages {
            self.map_merged(mem, g, p);
            self.counters.zero_pages += 1;
            return Look::Merged;
        }
        let Some(key) = self.key(mem, g, p, content) else {
            // Unique: into the unstable tree, where nothing will match it.
            out.unstable_levels += self.unstable_depth();
            self.unique_unstable += 1;
            self.note(g, p, true);
            return Look::Searched;
        };
        let max = self.knobs.max_page_sharing.max(2);
        let zero_thp = self.zero_thp(mem, g, p, content);
        if let Some(entry) = self.stable.get_mut(key).filter(|v| Dups::unpack(**v).last < max) {
            if zero_thp {
                split_at(mem, g, p);
                return Look::Searched;
            }
            // The last dup takes one more sharer.
            *entry += 1;
            self.map_merged(mem, g, p);
            self.counters.pages_sharing += 1;
            return Look::Merged;
        }
        out.unstable_levels += self.unstable_depth();
        let waiting = self.unstable.remove(key).map(unstable_page);
        if let Some((g2, p2)) = waiting {
            settle_written(mem, g2 as usize, p2);
        }
        match waiting {
            Some((g2, p2)) if gone(mem, g2 as usize, p2) => {
                // get_mergeable_page finds no anonymous page where the
                // waiting item was (swapped out, ballooned, on the zero
                // page): unstable_tree_search_insert gives up without
                // inserting this page, and the stale item stays until the
                // tree is dropped at the end of the full scan, turning
                // away every page of this content meanwhile.
                self.unstable.insert(key, unstable_entry(g2 as usize, p2));
                self.note(g, p, false);
                Look::Searched
            }
            Some((g2, p2))
                if self.zero_thp(mem, g, p, content)
                    || (self.still_mergeable(mem, g2 as usize, p2) && self.zero_thp(mem, g2 as usize, p2, content)) =>
            {
                // Zero content in a THP (see `zero_thp`): the merge splits
                // the THP of the first page of the two that is in one (this
                // page's, else the waiting one's) and fails; the waiting
                // item stays, stale if the split mapped it to the zero page.
                let (sg, sp) = if self.zero_thp(mem, g, p, content) { (g, p) } else { (g2 as usize, p2) };
                split_at(mem, sg, sp);
                self.unstable.insert(key, unstable_entry(g2 as usize, p2));
                self.note(g, p, false);
                Look::Searched
            }
            Some((g2, p2)) if self.still_mergeable(mem, g2 as usize, p2) && (g2 as usize, p2) != (g, p) => {
                // Two identical pages: one becomes the KSM page (a frame is
                // kept for it), the other maps it.
                self.map_merged(mem, g2 as usize, p2);
                self.map_merged(mem, g, p);
                mem.frames.adjust_unslotted(1);
                // A new dup: the content's others (if any) are full.
                let full = self.stable.get_mut(key).map_or(0, |v| Dups::unpack(*v).full + 1);
                self.stable.insert(key, Dups { full, last: 2 }.pack());
                self.counters.pages_shared += 1;
                self.counters.pages_sharing += 1;
                // The waiting page leaves the unstable tree.
                self.forget(g2 as usize, p2);
                Look::Merged
            }
            _ => {
                self.unstable.insert(key, unstable_entry(g, p));
                self.note(g, p, true);
                Look::Searched
            }
        }
    }

    /// Whether merging page `p` of guest `g` (content `content`) meets the
    /// zero-filled THP rule: zero content, merged as an ordinary KSM page
    /// or with the zero page (`use_zero_pages`), in a page still mapped by
    /// a THP. try_to_merge_one_page splits the THP first, and since Linux 6.12 the
    /// split maps its zero-filled subpages, this one among them, to the
    /// shared zero page (`split_thp`): the page to merge is gone and the
    /// merge fails, the memory freed without any KSM counter moving.
    /// Measured on Linux 6.18 (system test `ksm_on_thp`'s notes): four
    /// processes of zero-filled THPs lose one THP a full scan and merge
    /// nothing.
    fn zero_thp(&self, mem: &Memory, g: usize, p: u64, content: Content) -> bool {
        content == Content::Zero && mem.guests[g].pages[p as usize] & RES_MASK == HUGE && !mem.guests[g].unevictable
    }

    /// A page waiting in the unstable tree can still merge: present, not
    /// merged, not written since, and its guest alive.
    fn still_mergeable(&self, mem: &Memory, g: usize, p: u64) -> bool {
        let guest = &mem.guests[g];
        if !guest.is_alive() {
            return false;
        }
        let st = guest.pages[p as usize];
        let res = st & RES_MASK;
        (res == RESIDENT || res == HUGE) && st & (MERGED | WRITTEN) == 0 && Content::of(st) != Content::Unique
    }

    /// Map page `p` of guest `g` to a KSM page: its own frame goes back to
    /// the host (a THP is split first).
    fn map_merged(&mut self, mem: &mut Memory, g: usize, p: u64) {
        if mem.guests[g].pages[p as usize] & RES_MASK == HUGE {
            let head = mem.guests[g].region_range(mem.guests[g].region_of(p)).start;
            if let Some(slot) = mem.frames.slot_of(g as u32, head) {
                split_thp(mem, slot, Unit { guest: g as u32, page: head, thp: true });
            }
        }
        if let Some(slot) = mem.frames.slot_of(g as u32, p) {
            mem.frames.remove(slot, Unit { guest: g as u32, page: p, thp: false }, 1);
        }
        if mem.guests[g].swap_cache.take(p).is_some() {
            // The page's own folio goes, and with it the slot it kept.
            mem.swap.discard(crate::model::swap::SwapPage::of(g as u32, p, mem.guests[g].pages[p as usize]));
        }
        let guest = &mut mem.guests[g];
        guest.pages[p as usize] |= MERGED;
        guest.resident -= 1;
        guest.merged += 1;
        if let Some(e) = guest.events.as_deref_mut() {
            // Its writes are events now (copy-on-write breaks).
            e.note(p as usize, guest.pages[p as usize]);
        }
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
        } else if let Some(key) = self.key(mem, g, p, content)
            && let Some(entry) = self.stable.get_mut(key).map(|v| *v)
        {
            // Sharers are interchangeable: take one from the last dup.
            let Dups { full, last } = Dups::unpack(entry);
            if last == 1 {
                // Its only mapping: the KSM page goes.
                self.counters.pages_shared -= 1;
                mem.frames.adjust_unslotted(-1);
                if full == 0 {
                    self.stable.remove(key);
                } else {
                    self.stable.insert(key, Dups { full: full - 1, last: self.knobs.max_page_sharing.max(2) }.pack());
                }
            } else {
                self.counters.pages_sharing -= 1;
                self.stable.insert(key, Dups { full, last: last - 1 }.pack());
            }
        }
        let guest = &mut mem.guests[g];
        guest.pages[p as usize] &= !MERGED;
        guest.merged -= 1;
        if let Some(e) = guest.events.as_deref_mut() {
            e.note(p as usize, guest.pages[p as usize]);
        }
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
    /// The smart-scan state of guest `g`'s pages, sized on first use.
    fn smart_of(&mut self, mem: &Memory, g: usize) -> &mut [u8] {
        let n = mem.guests[g].sim_pages() as usize;
        if self.smart.len() <= g {
            self.smart.resize(g + 1, Vec::new());
        }
        if self.smart[g].len() < n {
            self.smart[g].resize(n, 0);
        }
        &mut self.smart[g]
    }

    /// Page `p` of guest `g` is not present as ksmd passes: its rmap item
    /// goes, and a new one starts at age 0.
    fn reset_age(&mut self, g: usize, p: u64) {
        if let Some(a) = self.smart.get_mut(g).and_then(|v| v.get_mut(p as usize)) {
            *a = 0;
        }
    }

    /// Smart scan at present page `p` of guest `g`, not a KSM page: whether
    /// ksmd skips it ([`skip_plan`]). A skipped page leaves the unstable
    /// tree (remove_rmap_item_from_tree).
    fn smart_skip(&mut self, mem: &Memory, g: usize, p: u64) -> bool {
        if !self.knobs.smart_scan {
            return false;
        }
        // Sized by the walk (`wake`) before it reaches the page.
        let state = &mut self.smart[g][p as usize];
        let skip;
        (skip, *state) = Smart::look(*state);
        if skip {
            self.counters.pages_skipped += 1;
            self.leave_unstable(mem, g, p);
            // Its rmap item is in no tree: the kernel counts it volatile
            // (pages_volatile is the rmap items less the others).
            self.note(g, p, false);
        }
        skip
    }

    /// Page `p` of guest `g` leaves the unstable tree if it waits there.
    fn leave_unstable(&mut self, mem: &Memory, g: usize, p: u64) {
        let st = mem.guests[g].pages[p as usize];
        if let Some(key) = self.key(mem, g, p, Content::of(st))
            && self.unstable.get_mut(key).is_some_and(|v| unstable_page(*v) == (g as u32, p))
        {
            self.unstable.remove(key);
        }
    }

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
/// Split the THP that maps page `p` of guest `g`.
fn split_at(mem: &mut Memory, g: usize, p: u64) {
    let head = mem.guests[g].region_range(mem.guests[g].region_of(p)).start;
    if let Some(slot) = mem.frames.slot_of(g as u32, head) {
        split_thp(mem, slot, Unit { guest: g as u32, page: head, thp: true });
    }
}

/// No anonymous page of its own maps page `p` of guest `g` any more: not
/// present (swapped out, ballooned, never touched again) or on the zero
/// page since a THP split.
fn gone(mem: &Memory, g: usize, p: u64) -> bool {
    let guest = &mem.guests[g];
    let res = guest.pages[p as usize] & RES_MASK;
    (res != RESIDENT && res != HUGE) || guest.is_zero_mapped(p)
}

/// Event mode: whether the guest's hits wrote mapped page `p` since ksmd
/// last looked at it is drawn now, and kept as `WRITTEN` (writes that
/// faulted set it themselves; page-exact mode sets it on every write).
fn settle_written(mem: &mut Memory, g: usize, p: u64) {
    let guest = &mut mem.guests[g];
    let st = guest.pages[p as usize];
    if st & 1 == 1
        && st & MERGED == 0
        && let Some(e) = guest.events.as_deref_mut()
        && e.written_since(p as usize)
    {
        guest.pages[p as usize] = st | WRITTEN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::page::{SWAPPED, UNTOUCHED, mix64};
    use crate::model::swap::NoSwap;
    use crate::model::{Backing, Frames, Guest, Watermarks};

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
        Memory {
            frames,
            watermarks: Watermarks { min: 0, low: 0, high: 0 },
            pools: Vec::new(),
            swap: Box::new(NoSwap),
            zram_frames: 0,
            guests,
            peak_used: 0,
            min_free: 0,
            thp_splits: 0,
        }
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
    fn word_masks_eight_at_a_time_are_the_page_by_page_conditions() {
        // Truth: each condition read off one state at a time.
        let mut x = 0x1234_5678u64;
        for _ in 0..2000 {
            let states: Vec<u8> = (0..64)
                .map(|_| {
                    x = mix64(x);
                    x as u8
                })
                .collect();
            let mut want = WordMasks { present: 0, merged: 0, volatile: 0, unique: 0, first_shareable: 0 };
            for (i, &st) in states.iter().enumerate() {
                let res = st & RES_MASK;
                want.present |= u64::from(res == RESIDENT || res == HUGE) << i;
                want.merged |= u64::from(st & MERGED != 0) << i;
                want.volatile |= u64::from(st & CHECKSUMMED == 0 || st & WRITTEN != 0) << i;
                want.unique |= u64::from(st & (CHECKSUMMED | WRITTEN | CLASS_MASK) == CHECKSUMMED) << i;
                want.first_shareable |= u64::from(st & (CHECKSUMMED | WRITTEN) == 0 && st & CLASS_MASK != 0) << i;
            }
            assert_eq!(WordMasks::of(&states), want, "{states:?}");
        }
    }

    #[test]
    fn smart_scan_looks_at_a_page_that_never_merges_once_in_nine_scans() {
        // should_skip_rmap_item and skip_age (mm/ksm.c, Linux 6.7+): ages
        // 0-2 are looked at; then a look sets the skips allowed (1 up to
        // age 3, 2 up to 5, 4 up to 8, then 8), each spent by one scan.
        let (mut age, mut rem) = (0u8, 0u8);
        let looked: Vec<bool> = (0..40)
            .map(|_| {
                let (skip, a, r) = skip_plan(age, rem);
                (age, rem) = (a, r);
                !skip
            })
            .collect();
        let at: Vec<usize> = looked.iter().enumerate().filter(|(_, l)| **l).map(|(i, _)| i).collect();
        assert_eq!(at, [0, 1, 2, 3, 5, 8, 13, 22, 31]);
        assert_eq!(skip_plan(9, 0), (false, 9, 8), "every age from 9 on skips 8 scans");
        // The packed table is the same rule.
        for age in 0..=9u8 {
            for rem in 0..=8u8 {
                let (skip, a, r) = skip_plan(age, rem);
                assert_eq!(Smart::look(age | rem << 4), (skip, a | r << 4), "age {age}, rem {rem}");
            }
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
