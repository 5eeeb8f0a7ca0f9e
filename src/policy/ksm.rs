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

use crate::model::page::{CHECKSUMMED, CLASS_MASK, Content, HUGE, MERGED, RES_MASK, RESIDENT, WRITTEN};
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
}

/// Where a merged page's content lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// Page `page` (real index) of image `image`.
    Image { image: u32, page: u64 },
    /// All-zero content merged as an ordinary KSM page.
    Zero,
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

/// ksmd's state.
#[derive(Debug, Clone)]
pub struct Ksm {
    pub knobs: Knobs,
    /// Guest index and simulated page where the scan goes on.
    cursor: (usize, u64),
    /// Simulated pages owed to the scan (sampled mode scans fractions).
    budget: f64,
    /// Stable tree: for each content, the sharer count of each of its KSM
    /// pages (several once one is full: the kernel's stable_node dups).
    stable: HashMap<Key, Vec<u32>, KeyHash>,
    /// Unstable tree of this full scan: the page waiting for a twin.
    unstable: HashMap<Key, (u32, u64), KeyHash>,
    /// Per guest, one bit per page: the page sits in the unstable tree, or
    /// was volatile, as of ksmd's last pass over it. The kernel keeps a
    /// page in these counts until ksmd passes it again (its rmap_item is
    /// then removed or reused), and drops it when the page is gone.
    unshared_bits: Vec<Vec<u64>>,
    volatile_bits: Vec<Vec<u64>>,
    pub counters: Counters,
    /// Image number of each guest (guests of one image share content).
    image_of: Vec<u32>,
    /// Each guest's content shares, to tell its common-pattern pages
    /// (the duplicate share) from those keyed by their index.
    shares: Vec<crate::model::page::Shares>,
}

impl Ksm {
    /// `image_of[g]` numbers guest `g`'s image; `shares[g]` are its
    /// content shares.
    pub fn new(knobs: Knobs, image_of: Vec<u32>, shares: Vec<crate::model::page::Shares>) -> Ksm {
        Ksm {
            knobs,
            cursor: (0, 0),
            budget: 0.0,
            stable: HashMap::default(),
            unstable: HashMap::default(),
            unshared_bits: Vec::new(),
            volatile_bits: Vec::new(),
            counters: Counters::default(),
            image_of,
            shares,
        }
    }

    fn key(&self, mem: &Memory, g: usize, p: u64, content: Content) -> Option<Key> {
        match content {
            Content::Unique => None,
            Content::Zero => Some(Key::Zero),
            Content::Shared => {
                let real = mem.guests[g].real_page(p);
                let shares = self.shares.get(g).copied().unwrap_or_default();
                // The image's common pattern: one content for all its
                // duplicate pages (u64::MAX is no page index).
                let page = if crate::model::page::is_common(real, shares) { u64::MAX } else { real };
                Some(Key::Image { image: self.image_of[g], page })
            }
        }
    }

    /// One wake-up: scan `pages` simulated pages (a fraction is carried) of
    /// the guests `mergeable` says may merge, in guest order.
    pub fn wake(&mut self, mem: &mut Memory, mergeable: &[bool], pages: f64) -> Wake {
        let mut out = Wake::default();
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
            while q < end && self.budget >= 1.0 {
                // Passing the page ends what ksmd last noted of it.
                self.forget(g, q);
                let st = mem.guests[g].pages[q as usize];
                q += 1;
                let res = st & RES_MASK;
                if res != RESIDENT && res != HUGE {
                    // Not present: the page walk skips it without counting it.
                    continue;
                }
                idle_guests = 0;
                self.budget -= 1.0;
                out.scanned += 1;
                if self.scan_page(mem, g, q - 1) {
                    out.merged += 1;
                }
            }
            self.cursor = (g, q);
        }
        self.counters.pages_scanned += out.scanned;
        out
    }

    /// Look at present page `p` of guest `g`; true when it merged.
    fn scan_page(&mut self, mem: &mut Memory, g: usize, p: u64) -> bool {
        if mem.guests[g].pages[p as usize] & MERGED != 0 {
            // Already a KSM (or zero-page) mapping.
            return false;
        }
        settle_written(mem, g, p);
        let st = mem.guests[g].pages[p as usize];
        if st & CHECKSUMMED == 0 || st & WRITTEN != 0 {
            // First sight, or changed since the last scan: store the
            // checksum and move on (cmp_and_merge_page's volatile case). A
            // written page's content is the guest's own from now on (the
            // touch loop leaves the class to this point: nothing reads it
            // in between, a written page being no merge candidate).
            let st = if st & WRITTEN != 0 { st & !CLASS_MASK } else { st };
            mem.guests[g].pages[p as usize] = (st | CHECKSUMMED) & !WRITTEN;
            self.note(g, p, false);
            return false;
        }
        let content = Content::of(st);
        if content == Content::Zero && self.knobs.use_zero_pages {
            self.map_merged(mem, g, p);
            self.counters.zero_pages += 1;
            return true;
        }
        let Some(key) = self.key(mem, g, p, content) else {
            // Unique: into the unstable tree, where nothing will match it.
            self.note(g, p, true);
            return false;
        };
        let max = self.knobs.max_page_sharing.max(2);
        if let Some(dup) = self.stable.get_mut(&key).and_then(|d| d.iter_mut().find(|s| **s < max)) {
            *dup += 1;
            self.map_merged(mem, g, p);
            self.counters.pages_sharing += 1;
            return true;
        }
        let waiting = self.unstable.remove(&key);
        if let Some((g2, p2)) = waiting {
            settle_written(mem, g2 as usize, p2);
        }
        match waiting {
            Some((g2, p2)) if self.still_mergeable(mem, g2 as usize, p2) && (g2 as usize, p2) != (g, p) => {
                // Two identical pages: one becomes the KSM page (a frame is
                // kept for it), the other maps it.
                self.map_merged(mem, g2 as usize, p2);
                self.map_merged(mem, g, p);
                mem.frames.adjust_unslotted(1);
                self.stable.entry(key).or_default().push(2);
                self.counters.pages_shared += 1;
                self.counters.pages_sharing += 1;
                // The waiting page leaves the unstable tree.
                self.forget(g2 as usize, p2);
                true
            }
            _ => {
                self.unstable.insert(key, (g as u32, p));
                self.note(g, p, true);
                false
            }
        }
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
            mem.frames.remove(slot, 1);
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
            && let Some(dups) = self.stable.get_mut(&key)
        {
            // Sharers are interchangeable: take one from the last dup.
            if let Some(last) = dups.last_mut() {
                *last -= 1;
                if *last == 0 {
                    dups.pop();
                    self.counters.pages_shared -= 1;
                    mem.frames.adjust_unslotted(-1);
                } else {
                    self.counters.pages_sharing -= 1;
                }
            }
            if dups.is_empty() {
                self.stable.remove(&key);
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
        self.unstable.retain(|_, (g2, _)| *g2 as usize != g);
    }

    /// ksmd's `general_profit` in simulated pages' bytes: pages saved minus
    /// what its rmap_items cost.
    pub fn general_profit_bytes(&self) -> f64 {
        let c = &self.counters;
        let rmap_items = c.pages_shared + c.pages_sharing + c.pages_unshared + c.pages_volatile;
        (c.pages_sharing + c.zero_pages) as f64 * 4096.0 - rmap_items as f64 * RMAP_ITEM_BYTES
    }
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
