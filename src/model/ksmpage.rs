//! KSM pages as the kernel keeps them: each a frame of its own on the LRU,
//! with the list of the pages that map it, so reclaim can swap it out.
//!
//! A KSM page is an ordinary anonymous folio to reclaim (KSM pages have
//! been swappable since Linux 2.6.33): `folio_referenced` walks its rmap,
//! every sharer's page table, and finds it referenced if any sharer's
//! accessed bit is set; otherwise `try_to_unmap` replaces every sharer's
//! mapping with one swap entry, so the page is written once, to one slot
//! whose swap count is its sharers (mm/ksm.c `rmap_walk_ksm`,
//! mm/vmscan.c `shrink_folio_list`).
//!
//! The page's stable node is not told: it stays in the stable tree,
//! stale, and `pages_shared` and `pages_sharing` keep counting it until
//! ksmd meets it, in a search of the stable tree or when its walk reaches
//! one of the sharers' addresses; `ksm_get_folio` (`get_ksm_page` before
//! Linux 6.8) then finds the page gone and `remove_node_from_stable_tree`
//! drops the node and all its rmap items at once (docs/sources, 3.6).
//!
//! Each sharer faults its entry back on its own (`do_swap_page`): the
//! first reads the slot into a page of its own, which stays in the swap
//! cache while other sharers still hold the entry; each later sharer of
//! another process finds that page there, mapped by someone else, and
//! copies it (`ksm_might_need_to_copy`, counted in `/proc/vmstat`
//! `ksm_swpin_copy`). The slot is freed with the last entry. ksmd then
//! merges the copies again, like any identical pages.
//!
//! Measured on this project's kernel (Linux 6.18; the system test
//! `ksm_swap`): four processes of 64 MiB of identical content merged into
//! 16 384 KSM pages, then a 100 MiB cgroup limit and a hot process:
//! `pages_shared` down to 8 117 three seconds later as ksmd met the stale
//! nodes, 3 983 after fifteen, and `ksm_swpin_copy` climbing (1 219 after
//! fifteen) as sharers faulted the pages back.

use super::frames::{Frames, Unit};
use super::swap::{SwapIn, SwapPage};

/// The `guest` of a frame-table [`Unit`] that is a KSM page (its `page`
/// is the KSM page's number): no guest owns it.
pub const KSM_OWNER: u32 = (1 << 23) - 1;

/// No KSM page.
const NONE: u32 = u32::MAX;

/// A KSM page's room while it is not in RAM.
const SWAPPED_OUT: u32 = u32::MAX;

/// One KSM page.
#[derive(Debug, Clone, Default)]
pub struct KsmPage {
    /// The pages mapping it (guest and simulated page, packed by
    /// [`pack`]), in the order they merged: its stable node's rmap items.
    sharers: Vec<u64>,
    /// Its slot in the frame table while it is resident.
    slot: Option<u32>,
    /// Swapped out: the sharers whose page tables still hold its swap
    /// entry (the slot's swap count).
    swap_refs: u32,
    /// Swapped out and read back by a sharer: that sharer's page is the
    /// swap cache's copy, which later sharers copy while it is resident.
    cached_in: Option<(u32, u64)>,
    /// Its stable node is still in ksmd's tree and counters (until ksmd
    /// meets it stale).
    pub node: bool,
    /// Its content is all zero (what the swap core may keep as a bit).
    zero: bool,
    /// The stable tree's key of its content (ksmd's to read).
    pub key: u64,
}

/// A sharer's swap-in of a swapped-out KSM page: what the caller does
/// with the swap device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KsmSwapIn {
    /// Read `page` from its slot (the first sharer, or the swap cache's
    /// copy was reclaimed since), keeping the slot (`keep`) while other
    /// sharers hold it.
    Read { page: SwapPage, keep: bool },
    /// Copied from the page another sharer read (`ksm_swpin_copy`); the
    /// last entry's copy frees the slot (`discard`).
    Copied { discard: Option<SwapPage> },
}

/// A sharer as one word: guest and simulated page.
#[inline]
fn pack(g: u32, p: u64) -> u64 {
    u64::from(g) << 40 | p
}

#[inline]
fn unpack(v: u64) -> (u32, u64) {
    ((v >> 40) as u32, v & ((1 << 40) - 1))
}

impl KsmPage {
    /// How many pages map it (its rmap items while its node counts).
    pub fn sharer_count(&self) -> usize {
        self.sharers.len()
    }

    /// Its sharers (guest, simulated page).
    pub fn sharers(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.sharers.iter().map(|&v| unpack(v))
    }

    /// Sharer `i`.
    pub fn sharer(&self, i: usize) -> (u32, u64) {
        unpack(self.sharers[i])
    }
}

/// Every KSM page, and which one each merged or swapped page maps.
#[derive(Debug, Clone, Default)]
pub struct KsmPages {
    pages: Vec<KsmPage>,
    /// Per KSM page: its sharers while it is resident, [`SWAPPED_OUT`]
    /// otherwise; what ksmd reads of a page a new sharer may join, kept
    /// apart so the stable tree's searches read four bytes, not the page.
    room: Vec<u32>,
    free: Vec<u32>,
    /// Per guest, per simulated page: the KSM page it maps, or whose swap
    /// entry it holds (sized at its guest's first merge).
    of: Vec<Vec<u32>>,
    /// Per guest, one bit per page: the page is (or was, until it faulted
    /// back) a sharer of a KSM page whose node is stale, which ksmd drops
    /// when its walk reaches the address.
    stale: Vec<Vec<u64>>,
    /// Sharers that faulted a stale KSM page back while its node was
    /// still counted: their page is their own now, but ksmd meets the
    /// node at their address.
    stale_in: std::collections::HashMap<(u32, u64), u32>,
    /// Swap-ins copied from a sharer's page (`ksm_swpin_copy`).
    pub swpin_copy: u64,
    /// KSM pages written to swap.
    pub swapped_out: u64,
    /// KSM pages in RAM now (each one frame).
    pub resident_pages: u64,
    /// KSM pages in swap now (one slot each), and the sharers' entries
    /// of them (each counted in its guest's swapped pages, as the
    /// kernel's `VmSwap` counts every swap entry a process maps).
    pub swap_slots: u64,
    pub swap_entries: u64,
    /// Per guest: the resident KSM pages its memory cgroup is charged
    /// with, those whose first sharer is one of its pages (see
    /// [`KsmPages::charged`]).
    charged: Vec<u64>,
}

impl KsmPages {
    /// The KSM page that guest `g`'s page `p` maps (merged) or whose swap
    /// entry it holds (swapped out with it).
    #[inline]
    pub fn id_of(&self, g: usize, p: u64) -> Option<u32> {
        let id = *self.of.get(g)?.get(p as usize)?;
        (id != NONE).then_some(id)
    }

    pub fn page(&self, id: u32) -> &KsmPage {
        &self.pages[id as usize]
    }

    /// Whether KSM page `id` is in RAM.
    #[inline]
    pub fn resident(&self, id: u32) -> bool {
        self.room[id as usize] != SWAPPED_OUT
    }

    /// KSM page `id`'s sharers while it is in RAM (`None`: swapped out).
    #[inline]
    pub fn resident_sharers(&self, id: u32) -> Option<u32> {
        let n = self.room[id as usize];
        (n != SWAPPED_OUT).then_some(n)
    }

    /// Resident KSM pages charged to guest `g`'s memory cgroup: those
    /// whose first sharer is `g`'s. The kernel charges a KSM page to the
    /// cgroup of the page ksmd was scanning when it merged
    /// (`try_to_merge_two_pages` turns that page into the KSM page), and
    /// ksmd lists that page first; when it leaves, the model moves the
    /// charge to the sharer that takes its place in the list, where the
    /// kernel's charge would stay with a page no cgroup's walk finds.
    pub fn charged(&self, g: usize) -> u64 {
        self.charged.get(g).copied().unwrap_or(0)
    }

    fn charge(&mut self, g: u32, by: i64) {
        let g = g as usize;
        if self.charged.len() <= g {
            self.charged.resize(g + 1, 0);
        }
        self.charged[g] = self.charged[g].checked_add_signed(by).expect("KSM charges stay within bounds");
    }

    fn set_of(&mut self, g: u32, p: u64, id: u32, pages: u64) {
        let g = g as usize;
        if self.of.len() <= g {
            self.of.resize(g + 1, Vec::new());
        }
        if self.of[g].is_empty() {
            self.of[g] = vec![NONE; pages as usize];
        }
        self.of[g][p as usize] = id;
    }

    fn clear_of(&mut self, g: u32, p: u64) {
        if let Some(v) = self.of.get_mut(g as usize).and_then(|v| v.get_mut(p as usize)) {
            *v = NONE;
        }
    }

    /// A new KSM page of content `key` for `sharers` (guest, page, the
    /// guest's page count; their frames already freed), taking a frame and
    /// a slot of its own: the page that became it. Its list of sharers has
    /// room for `room` from the start.
    pub fn create(
        &mut self,
        frames: &mut Frames,
        key: u64,
        zero: bool,
        sharers: &[(u32, u64, u64)],
        room: usize,
    ) -> u32 {
        let id = self.free.pop().unwrap_or_else(|| {
            self.pages.push(KsmPage::default());
            self.room.push(SWAPPED_OUT);
            (self.pages.len() - 1) as u32
        });
        self.room[id as usize] = sharers.len() as u32;
        let slot = frames.insert(Unit { guest: KSM_OWNER, page: u64::from(id), thp: false }, 1);
        self.resident_pages += 1;
        self.pages[id as usize] = KsmPage {
            sharers: {
                let mut v = Vec::with_capacity(room.max(sharers.len()));
                v.extend(sharers.iter().map(|&(g, p, _)| pack(g, p)));
                v
            },
            slot: Some(slot),
            swap_refs: 0,
            cached_in: None,
            node: true,
            zero,
            key,
        };
        for &(g, p, n) in sharers {
            self.set_of(g, p, id, n);
        }
        if let Some(&(g, _, _)) = sharers.first() {
            self.charge(g, 1);
        }
        id
    }

    /// Guest `g`'s page `p` (of `pages`) maps KSM page `id` too.
    pub fn join(&mut self, id: u32, g: u32, p: u64, pages: u64) {
        self.pages[id as usize].sharers.push(pack(g, p));
        self.room[id as usize] += 1;
        self.set_of(g, p, id, pages);
    }

    /// Guest `g`'s page `p` stops mapping its KSM page (a copy-on-write
    /// break, the page unmapped): it leaves the sharers, and a page left
    /// with none is freed, its frame with it. Returns the page and the
    /// sharers it had before.
    pub fn leave(&mut self, frames: &mut Frames, g: u32, p: u64) -> Option<(u32, usize)> {
        let id = self.id_of(g as usize, p)?;
        self.clear_of(g, p);
        let page = &mut self.pages[id as usize];
        let before = page.sharers.len();
        if let Some(i) = page.sharers.iter().position(|&s| s == pack(g, p)) {
            page.sharers.swap_remove(i);
            if page.slot.is_some() {
                self.room[id as usize] -= 1;
                if i == 0 {
                    // The charge moves to the sharer now first, if any.
                    let next = page.sharers.first().map(|&v| unpack(v).0);
                    self.charge(g, -1);
                    if let Some(h) = next {
                        self.charge(h, 1);
                    }
                }
            }
        }
        let page = &mut self.pages[id as usize];
        if page.sharers.is_empty()
            && let Some(slot) = page.slot.take()
        {
            frames.remove(slot as usize, Unit { guest: KSM_OWNER, page: u64::from(id), thp: false }, 1);
            self.resident_pages -= 1;
            self.room[id as usize] = SWAPPED_OUT;
            page.node = false;
            self.free.push(id);
        }
        Some((id, before))
    }

    /// Reclaim takes KSM page `id` (resident, in `slot`): its frame is
    /// freed and each sharer now holds its swap entry. The caller writes
    /// it to swap ([`Self::swap_page`]) and sets the sharers' pages.
    pub fn swap_out(&mut self, frames: &mut Frames, id: u32) {
        let page = &mut self.pages[id as usize];
        let slot = page.slot.take().expect("a resident KSM page has a slot");
        frames.remove(slot as usize, Unit { guest: KSM_OWNER, page: u64::from(id), thp: false }, 1);
        self.resident_pages -= 1;
        self.room[id as usize] = SWAPPED_OUT;
        page.swap_refs = page.sharers.len() as u32;
        page.cached_in = None;
        let first = page.sharers.first().map(|&v| unpack(v).0);
        if let Some(g) = first {
            self.charge(g, -1);
        }
        let page = &mut self.pages[id as usize];
        self.swap_slots += 1;
        self.swap_entries += u64::from(page.swap_refs);
        self.swapped_out += 1;
        let sharers = std::mem::take(&mut page.sharers);
        for &v in &sharers {
            let (g, p) = unpack(v);
            self.mark_stale(g, p, true);
        }
        self.pages[id as usize].sharers = sharers;
    }

    /// The swap page KSM page `id` is stored as.
    pub fn swap_page(&self, id: u32) -> SwapPage {
        SwapPage { guest: KSM_OWNER, page: u64::from(id), zero: self.pages[id as usize].zero }
    }

    fn mark_stale(&mut self, g: u32, p: u64, on: bool) {
        let g = g as usize;
        if self.stale.len() <= g {
            self.stale.resize(g + 1, Vec::new());
        }
        let w = (p / 64) as usize;
        if self.stale[g].len() <= w {
            if !on {
                return;
            }
            self.stale[g].resize(w + 1, 0);
        }
        if on {
            self.stale[g][w] |= 1 << (p % 64);
        } else {
            self.stale[g][w] &= !(1 << (p % 64));
        }
    }

    /// The stale bits of guest `g`'s pages `64·w..64·w + 64`.
    #[inline]
    pub fn stale_word(&self, g: usize, w: usize) -> u64 {
        self.stale.get(g).and_then(|v| v.get(w)).copied().unwrap_or(0)
    }

    /// The stale KSM page whose node ksmd meets at guest `g`'s page `p`,
    /// if any.
    pub fn stale_at(&self, g: usize, p: u64) -> Option<u32> {
        if self.stale_word(g, (p / 64) as usize) & (1 << (p % 64)) == 0 {
            return None;
        }
        self.stale_in.get(&(g as u32, p)).copied().or_else(|| self.id_of(g, p)).filter(|&id| {
            let page = &self.pages[id as usize];
            page.node && page.slot.is_none()
        })
    }

    /// ksmd met KSM page `id`'s stale node: it leaves the tree and every
    /// rmap item with it. Returns the sharers it counted.
    pub fn drop_node(&mut self, id: u32) -> usize {
        let page = &mut self.pages[id as usize];
        debug_assert!(page.node && page.slot.is_none());
        page.node = false;
        let sharers = std::mem::take(&mut page.sharers);
        for &v in &sharers {
            let (g, p) = unpack(v);
            self.mark_stale(g, p, false);
            self.stale_in.remove(&(g, p));
        }
        self.release_if_done(id);
        sharers.len()
    }

    fn release_if_done(&mut self, id: u32) {
        let page = &self.pages[id as usize];
        if !page.node && page.swap_refs == 0 && page.slot.is_none() {
            self.pages[id as usize] = KsmPage::default();
            self.free.push(id);
        }
    }

    /// Guest `g`'s page `p` drops its swap entry of KSM page `id` without
    /// reading it (its guest died, a balloon took the page). Returns
    /// whether that was the slot's last entry (the caller discards it).
    pub fn drop_entry(&mut self, g: u32, p: u64) -> Option<(u32, bool)> {
        let id = self.id_of(g as usize, p)?;
        let page = &self.pages[id as usize];
        if page.slot.is_some() || page.swap_refs == 0 {
            return None;
        }
        self.clear_of(g, p);
        let page = &mut self.pages[id as usize];
        page.swap_refs -= 1;
        if page.cached_in == Some((g, p)) {
            page.cached_in = None;
        }
        let last = page.swap_refs == 0;
        self.swap_entries -= 1;
        self.swap_slots -= u64::from(last);
        if page.node {
            self.stale_in.insert((g, p), id);
        }
        self.release_if_done(id);
        Some((id, last))
    }

    /// Guest `g`'s page `p` holds a swapped KSM page's entry: the KSM page.
    pub fn swapped_entry(&self, g: usize, p: u64) -> Option<u32> {
        self.id_of(g, p).filter(|&id| {
            let page = &self.pages[id as usize];
            page.slot.is_none() && page.swap_refs > 0
        })
    }

    /// Guest `g`'s page `p` faults its entry of swapped KSM page `id` back
    /// (`do_swap_page`): a copy of the swap cache's page when a sharer
    /// read it and it is still resident (`cached`: that page's state says
    /// so), else a read of the slot, which keeps the slot while other
    /// sharers hold it. The slot goes with the last entry.
    pub fn swap_in(&mut self, id: u32, g: u32, p: u64, cached: impl Fn(u32, u64) -> bool) -> KsmSwapIn {
        let swap_page = self.swap_page(id);
        self.clear_of(g, p);
        let page = &mut self.pages[id as usize];
        debug_assert!(page.swap_refs > 0);
        page.swap_refs -= 1;
        let last = page.swap_refs == 0;
        self.swap_entries -= 1;
        self.swap_slots -= u64::from(last);
        let out = match page.cached_in {
            Some((g0, p0)) if cached(g0, p0) => {
                self.swpin_copy += 1;
                KsmSwapIn::Copied { discard: last.then_some(swap_page) }
            }
            _ => {
                page.cached_in = Some((g, p));
                KsmSwapIn::Read { page: swap_page, keep: !last }
            }
        };
        if self.pages[id as usize].node {
            // Its rmap item stays on the stale node until ksmd meets it.
            self.stale_in.insert((g, p), id);
        }
        self.release_if_done(id);
        out
    }

    /// Guest `g` is gone: its pages map nothing.
    pub fn forget_guest(&mut self, g: usize) {
        if let Some(v) = self.of.get_mut(g) {
            v.clear();
        }
        self.stale_in.retain(|k, _| k.0 as usize != g);
    }
}

impl super::Memory {
    /// Do what a sharer's swap-in asks of the swap device at `now`: the
    /// read, with how long it took (`None` for a copy).
    pub fn ksm_io(&mut self, now: u64, io: KsmSwapIn) -> Option<SwapIn> {
        match io {
            KsmSwapIn::Read { page, keep } => {
                let got = self.swap.read(now, page, keep);
                // The slot stays while other sharers hold its entry, also
                // on a synchronous device (zram), whose swap-ins skip the
                // swap cache only when the entry is the slot's last
                // (`__swap_count(entry) == 1` in do_swap_page).
                if keep && !self.swap.keeps_slots() {
                    self.swap.occupy(page);
                }
                Some(got)
            }
            KsmSwapIn::Copied { discard } => {
                if let Some(page) = discard {
                    self.swap.discard(page);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swapped_ksm_page_is_read_once_and_copied_by_the_other_sharers() {
        // The kernel's rules (module doc): one slot for all sharers, the
        // first fault reads it, later ones copy (ksm_swpin_copy), the slot
        // freed with the last entry; the node counted until ksmd meets it.
        let mut frames = Frames::new(16);
        let mut k = KsmPages::default();
        let id = k.create(&mut frames, 7, false, &[(0, 3, 8), (1, 3, 8)], 3);
        k.join(id, 2, 3, 8);
        assert_eq!(frames.used(), 1);
        k.swap_out(&mut frames, id);
        assert_eq!((frames.used(), k.swapped_out), (0, 1));
        assert_eq!(k.stale_at(1, 3), Some(id));
        let page = k.swap_page(id);
        assert_eq!(page.guest, KSM_OWNER);
        assert_eq!(k.swap_in(id, 1, 3, |_, _| true), KsmSwapIn::Read { page, keep: true });
        assert_eq!(k.swap_in(id, 0, 3, |g, p| (g, p) == (1, 3)), KsmSwapIn::Copied { discard: None });
        assert_eq!(k.swap_in(id, 2, 3, |_, _| true), KsmSwapIn::Copied { discard: Some(page) });
        assert_eq!(k.swpin_copy, 2);
        // ksmd meets the node at a sharer's address: three rmap items.
        assert_eq!(k.stale_at(0, 3), Some(id));
        assert_eq!(k.drop_node(id), 3);
        assert_eq!(k.stale_at(0, 3), None);
        assert_eq!(k.free, vec![id]);
    }
}
