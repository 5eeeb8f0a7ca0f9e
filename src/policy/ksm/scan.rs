//! ksmd's look at the pages it scans: one page as cmp_and_merge_page does
//! it ([`Ksm::scan_page`]: the stable tree, the checksum, the zero page,
//! the unstable tree, the merge), a word of 64 quiet pages in one step
//! ([`Ksm::pass_word`]), mapping a page to a KSM page, and the depth of
//! the trees' searches.

use super::smart::Smart;
use super::tree::{Dups, Key, unstable_entry, unstable_page};
use super::{Ksm, Wake};
use crate::model::page::{CHECKSUMMED, CLASS_MASK, CLASS_SHIFT, Content, HUGE, MERGED, RES_MASK, RESIDENT, WRITTEN};
use crate::model::{Memory, Unit};
use crate::policy::reclaim::split_thp;

/// What ksmd did with one page it scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Look {
    /// Already mapped a KSM page (or the zero page).
    Kept,
    /// Its checksum stored (first sight, or changed): volatile.
    Checksummed,
    /// Searched the trees and merged.
    Merged,
    /// Searched the trees and left in the unstable tree.
    Searched,
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
    /// Content with a key in the trees (class bits set: the image's or
    /// zero content); a unique page has none, so it is in no tree.
    keyed: u64,
}

/// Eight bits spread to eight bytes: byte i is 0xFF when bit i is set,
/// else 0.
#[inline]
fn byte_mask(bits: u8) -> u64 {
    // Bit i lands in byte i (0x0101… copies the byte to every byte, the
    // second mask keeps bit i of byte i); adding 0x7F carries into a
    // byte's top bit exactly when it is not 0, and no byte overflows.
    let spread = (u64::from(bits) * 0x0101_0101_0101_0101) & 0x8040_2010_0804_0201;
    (((spread + 0x7F7F_7F7F_7F7F_7F7F) & 0x8080_8080_8080_8080) >> 7) * 0xFF
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
        let mut m = WordMasks { present: 0, merged: 0, volatile: 0, unique: 0, first_shareable: 0, keyed: 0 };
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
            // Class 1 or 2 (class 3, a ballooned page's, reads as unique).
            m.keyed |= gather(bit(x, u32::from(CLASS_SHIFT)) ^ bit(x, u32::from(CLASS_SHIFT) + 1)) << shift;
        }
        m
    }
}

impl Wake {
    pub(super) fn count(&mut self, look: Look) {
        match look {
            Look::Kept => self.kept += 1,
            Look::Merged => self.merged += 1,
            Look::Checksummed | Look::Searched => {}
        }
    }
}

impl Ksm {
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
    pub(super) fn pass_word(&mut self, mem: &mut Memory, g: usize, q: u64, out: &mut Wake) -> Option<u64> {
        // A stale KSM node is met at one of these addresses: page by page.
        if mem.ksm.stale_word(g, (q / 64) as usize) != 0 {
            return None;
        }
        let WordMasks { mut present, merged, volatile, unique, first_shareable, keyed } =
            WordMasks::of(&mem.guests[g].pages[q as usize..q as usize + 64]);
        // The zero page a THP split left is not anonymous memory: skipped.
        present &= !mem.guests[g].zero_mapped.get((q / 64) as usize).copied().unwrap_or(0);
        // Smart scan: the pages it skips, planned now and applied once the
        // word is known to be passed whole.
        let mut skip = 0u64;
        let mut next = [0u8; 64];
        if self.knobs.smart_scan && present & !merged != 0 {
            let states = &self.smart_of(mem, g)[q as usize..q as usize + 64];
            // Only the candidates' plans are used (the others' states are
            // kept or reset below).
            let mut left = present & !merged;
            while left != 0 {
                let i = left.trailing_zeros() as usize;
                left &= left - 1;
                let (skips, after) = Smart::look(states[i]);
                skip |= u64::from(skips) << i;
                next[i] = after;
            }
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
            // A candidate takes its planned state; a page not present
            // starts again at 0 (its rmap item goes); a merged one keeps
            // its own. Without branches: the masks pick.
            // Eight states at a time, each mask's byte spread to a byte
            // mask ([`byte_mask`]).
            let keep = present & !candidates;
            for (c, (s8, n8)) in states.chunks_exact_mut(8).zip(next.chunks_exact(8)).enumerate() {
                let (take8, keep8) = (byte_mask((candidates >> (8 * c)) as u8), byte_mask((keep >> (8 * c)) as u8));
                let old = u64::from_le_bytes((&*s8).try_into().expect("eight states"));
                let planned = u64::from_le_bytes(n8.try_into().expect("eight states"));
                s8.copy_from_slice(&((planned & take8) | (old & keep8)).to_le_bytes());
            }
            self.counters.pages_skipped += u64::from(skip.count_ones());
            // A skipped page leaves the unstable tree; one of unique
            // content has no key there (`Ksm::key`), so none to leave.
            let mut left = skip & keyed;
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

    /// The key of page `p` of guest `g` (state `st`) and the KSM page of
    /// its content with room for one more sharer, when the stable tree has
    /// one: an unwritten page of the image's or zero content (zero content
    /// only when it is not for the zero page, `use_zero_pages`).
    fn stable_room(&mut self, mem: &mut Memory, g: usize, p: u64, st: u8) -> Option<(Key, u32)> {
        if st & WRITTEN != 0 {
            return None;
        }
        let content = Content::of(st);
        if content == Content::Zero && self.knobs.use_zero_pages {
            return None;
        }
        let key = self.key(mem, g, p, content)?;
        self.last_with_room(mem, key).map(|id| (key, id))
    }

    /// Page `p` of guest `g`, just mapped to a KSM page, joins KSM page
    /// `id`'s sharers.
    fn join(&mut self, mem: &mut Memory, id: u32, g: usize, p: u64) {
        let pages = mem.guests[g].sim_pages();
        mem.ksm.join(id, g as u32, p, pages);
        self.counters.pages_sharing += 1;
    }

    /// Look at present page `p` of guest `g`, as cmp_and_merge_page does:
    /// the stable tree first (a page whose content has a KSM page merges,
    /// seen before or not), then the checksum (a page seen for the first
    /// time or changed since is only checksummed), then the zero page and
    /// the unstable tree.
    pub(super) fn scan_page(&mut self, mem: &mut Memory, g: usize, p: u64, out: &mut Wake) -> Look {
        if mem.guests[g].pages[p as usize] & MERGED != 0 {
            // Already a KSM (or zero-page) mapping.
            return Look::Kept;
        }
        // stable_tree_search comes first, for every page.
        out.stable_levels += self.stable_depth();
        settle_written(mem, g, p);
        let st = mem.guests[g].pages[p as usize];
        if st & CHECKSUMMED == 0
            && let Some((_, id)) = self.stable_room(mem, g, p, st)
        {
            if self.zero_thp(mem, g, p, Content::of(st)) {
                split_at(mem, g, p);
                mem.guests[g].pages[p as usize] |= CHECKSUMMED;
                return Look::Searched;
            }
            // The last dup takes one more sharer.
            mem.guests[g].pages[p as usize] |= CHECKSUMMED;
            self.map_merged(mem, g, p);
            self.join(mem, id, g, p);
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
        let zero_thp = self.zero_thp(mem, g, p, content);
        if let Some(id) = self.last_with_room(mem, key) {
            if zero_thp {
                split_at(mem, g, p);
                return Look::Searched;
            }
            // The last dup takes one more sharer.
            self.map_merged(mem, g, p);
            self.join(mem, id, g, p);
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
                // One frame and a slot on the LRU for the KSM page: the
                // scanned page's, which try_to_merge_two_pages makes the
                // KSM page before it maps the waiting one to it, so its
                // memory cgroup is charged with it (its first sharer).
                let sharers = [(g as u32, p, mem.guests[g].sim_pages()), (g2, p2, mem.guests[g2 as usize].sim_pages())];
                // Room for the image's guests when the content is one of
                // its pages (the zero page's and a common pattern's grow).
                let room = if key.single() { 2 } else { self.image_guests[self.image_of[g] as usize] };
                let room = room.min(self.knobs.max_page_sharing.max(2)) as usize;
                let id = mem.ksm.create(&mut mem.frames, key.raw(), content == Content::Zero, &sharers, room);
                // A new dup: the content's others (if any) are full.
                let full = self.stable.get_mut(key).map_or(0, |v| {
                    let d = Dups::unpack(*v);
                    d.full + u32::from(d.last.is_some())
                });
                self.stable.insert(key, Dups { full, last: Some(id) }.pack());
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
    use crate::model::page::mix64;

    #[test]
    fn a_byte_mask_is_its_bits_spread_byte_by_byte() {
        // Truth: each byte read off its bit, for all 256 bytes.
        for b in 0..=255u8 {
            let want: Vec<u8> = (0..8).map(|i| if b >> i & 1 == 1 { 0xFF } else { 0 }).collect();
            assert_eq!(byte_mask(b).to_le_bytes().to_vec(), want, "{b:#010b}");
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
            let mut want = WordMasks { present: 0, merged: 0, volatile: 0, unique: 0, first_shareable: 0, keyed: 0 };
            for (i, &st) in states.iter().enumerate() {
                let res = st & RES_MASK;
                want.present |= u64::from(res == RESIDENT || res == HUGE) << i;
                want.merged |= u64::from(st & MERGED != 0) << i;
                want.volatile |= u64::from(st & CHECKSUMMED == 0 || st & WRITTEN != 0) << i;
                want.unique |= u64::from(st & (CHECKSUMMED | WRITTEN | CLASS_MASK) == CHECKSUMMED) << i;
                want.first_shareable |= u64::from(st & (CHECKSUMMED | WRITTEN) == 0 && st & CLASS_MASK != 0) << i;
                want.keyed |= u64::from(Content::of(st) != Content::Unique) << i;
            }
            assert_eq!(WordMasks::of(&states), want, "{states:?}");
        }
    }
}
