//! The host's ordinary (non-hugetlb) memory: how many 4 KiB frames exist and
//! are free, and a table of what occupies them that reclaim's CLOCK hand
//! walks.
//!
//! A table slot holds one resident unit: a 4 KiB guest page, or the head
//! of a transparent huge page, whose other simulated pages hold the slots
//! after it (tails, which the hands pass over), so that every simulated
//! frame has a slot at every sampling rate. A reclaimed THP then leaves
//! its slots to the 4 KiB pages that replace it, where it was. With one
//! slot for a THP's 512 frames, page-exact play appended those pages
//! together at the table's end, and THPs and 4 KiB pages came to lie in
//! stretches of their own that the hands crossed at different speeds:
//! results moved with the rate (README, sampled mode).

/// A slot's occupant: `guest` index, simulated page index, and whether it is
/// a THP head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    pub guest: u32,
    pub page: u64,
    pub thp: bool,
}

const EMPTY: u64 = u64::MAX;
/// A slot of the THP whose head is the first slot before it that is not a
/// tail (see the module).
const TAIL: u64 = u64::MAX - 1;
const THP_BIT: u64 = 1 << 63;
const PAGE_BITS: u32 = 40;
const PAGE_MASK: u64 = (1 << PAGE_BITS) - 1;

impl Unit {
    #[inline]
    fn encode(self) -> u64 {
        (u64::from(self.thp) << 63) | (u64::from(self.guest) << PAGE_BITS) | self.page
    }
    #[inline]
    fn decode(v: u64) -> Unit {
        Unit { guest: ((v & !THP_BIT) >> PAGE_BITS) as u32, page: v & PAGE_MASK, thp: v & THP_BIT != 0 }
    }
}

#[derive(Debug, Clone)]
pub struct Frames {
    total: u64,
    used: u64,
    slots: Vec<u64>,
    free_slots: Vec<u32>,
    /// For guests KSM may merge: the slot of each of their pages
    /// (`NO_SLOT` when it has none), so a merged page's frame can be
    /// freed. Empty for other guests.
    rev: Vec<Vec<u32>>,
    /// Sampled THP guests: what reclaim's hand reads of each THP, kept
    /// beside its slot so the sweep finds it in order. Empty unless
    /// [`Frames::keep_thp_aux`] was called.
    thp_aux: Vec<ThpAux>,
    aux_on: bool,
}

/// A THP of a sampled guest, as reclaim's hand sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThpAux {
    /// The guest's real touch count when the THP was made or reclaim last
    /// looked at it.
    pub last_visit: f64,
    /// Made since reclaim last looked: the touch that faulted it in set
    /// its accessed bit.
    pub fresh: bool,
    /// Its region and the simulated pages in it, kept here so the hands
    /// find them in order with the slot instead of in the guest's tables.
    pub region: u32,
    pub pages: u16,
}

/// A page without a slot in [`Frames::slot_of`]'s map.
const NO_SLOT: u32 = u32::MAX;

impl Frames {
    /// The table starts empty and grows as memory is used (a 512 GiB host
    /// that is mostly idle does not pay for 128 Mi slots); slots freed by
    /// reclaim are reused before new ones are added.
    pub fn new(total: u64) -> Self {
        Frames {
            total,
            used: 0,
            slots: Vec::new(),
            free_slots: Vec::new(),
            rev: Vec::new(),
            thp_aux: Vec::new(),
            aux_on: false,
        }
    }

    /// Keep a [`ThpAux`] beside every slot from now on.
    pub fn keep_thp_aux(&mut self) {
        self.aux_on = true;
        self.thp_aux.resize(self.slots.len(), ThpAux::default());
    }

    /// The [`ThpAux`] of `slot`, when kept.
    #[inline]
    pub fn thp_aux(&self, slot: usize) -> Option<&ThpAux> {
        self.thp_aux.get(slot)
    }

    /// The [`ThpAux`] of `slot`, when kept, to change.
    #[inline]
    pub fn thp_aux_mut(&mut self, slot: usize) -> Option<&mut ThpAux> {
        self.thp_aux.get_mut(slot)
    }

    pub fn total(&self) -> u64 {
        self.total
    }
    pub fn used(&self) -> u64 {
        self.used
    }
    pub fn free(&self) -> u64 {
        self.total - self.used
    }
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Occupy `frames` frames with `unit`. The caller has checked there is
    /// room. A THP of more than one frame takes that many slots together,
    /// at the table's end.
    #[inline]
    pub fn insert(&mut self, unit: Unit, frames: u64) -> u32 {
        debug_assert!(self.used + frames <= self.total);
        self.used += frames;
        if unit.thp && frames > 1 {
            let head = self.slots.len() as u32;
            self.slots.push(unit.encode());
            self.slots.extend(std::iter::repeat_n(TAIL, frames as usize - 1));
            if self.aux_on {
                self.thp_aux.resize(self.slots.len(), ThpAux::default());
            }
            self.note(unit, head);
            return head;
        }
        self.place(unit)
    }

    /// Give the tail slots after THP head `slot` back to the free list.
    fn free_tails(&mut self, slot: usize) {
        let mut i = slot + 1;
        while i < self.slots.len() && self.slots[i] == TAIL {
            self.slots[i] = EMPTY;
            self.free_slots.push(i as u32);
            i += 1;
        }
    }

    /// Whether `slot` is a THP's tail (no unit of its own; the hands pass
    /// over it without counting it).
    #[inline]
    pub fn is_tail(&self, slot: usize) -> bool {
        self.slots[slot] == TAIL
    }

    /// Keep the page-to-slot map for `guest`'s `pages` pages.
    pub fn track(&mut self, guest: u32, pages: u64) {
        let g = guest as usize;
        if self.rev.len() <= g {
            self.rev.resize(g + 1, Vec::new());
        }
        self.rev[g] = vec![NO_SLOT; pages as usize];
    }

    /// Whether `guest`'s page-to-slot map is kept.
    pub fn tracks(&self, guest: u32) -> bool {
        self.rev.get(guest as usize).is_some_and(|v| !v.is_empty())
    }

    /// The slot holding `guest`'s page `page` (a 4 KiB page or a THP head),
    /// for tracked guests.
    pub fn slot_of(&self, guest: u32, page: u64) -> Option<usize> {
        let s = *self.rev.get(guest as usize)?.get(page as usize)?;
        (s != NO_SLOT).then_some(s as usize)
    }

    #[inline]
    fn note(&mut self, unit: Unit, slot: u32) {
        if let Some(v) = self.rev.get_mut(unit.guest as usize)
            && let Some(s) = v.get_mut(unit.page as usize)
        {
            *s = slot;
        }
    }

    /// Put `unit` in a freed slot, or a new one at the end.
    #[inline]
    fn place(&mut self, unit: Unit) -> u32 {
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = unit.encode();
                slot
            }
            None => {
                self.slots.push(unit.encode());
                if self.aux_on {
                    self.thp_aux.push(ThpAux::default());
                }
                (self.slots.len() - 1) as u32
            }
        };
        self.note(unit, slot);
        slot
    }

    /// Prefetch what placing `guest`'s page `page` will write: its entry in
    /// the page-to-slot map and the slot it will take (the last freed, or
    /// none when the table grows). A fault issues this before its reclaim,
    /// so the two lines, far apart in memory, arrive meanwhile.
    #[inline]
    pub fn prefetch_place(&self, guest: u32, page: u64) {
        self.prefetch_rev(guest, page);
        if let Some(&s) = self.free_slots.last() {
            self.prefetch_slot(s as usize);
        }
    }

    /// Prefetch `guest`'s page `page`'s entry in the page-to-slot map, when
    /// kept: placing or freeing its frame writes it.
    #[inline]
    pub fn prefetch_rev(&self, guest: u32, page: u64) {
        if let Some(e) = self.rev.get(guest as usize).and_then(|v| v.get(page as usize)) {
            crate::model::page::prefetch(e);
        }
    }

    /// Prefetch the table's line holding `slot` (a hint; nothing when
    /// the slot is past the end). The hands walk the table in order but
    /// between slots visit guests' page states all over memory, which
    /// keeps the hardware's stream prefetcher from running ahead of them.
    #[inline]
    pub fn prefetch_slot(&self, slot: usize) {
        if let Some(v) = self.slots.get(slot) {
            crate::model::page::prefetch(v);
        }
    }

    #[inline]
    pub fn get(&self, slot: usize) -> Option<Unit> {
        let v = self.slots[slot];
        (v < TAIL).then(|| Unit::decode(v))
    }

    /// Replace what a slot holds (a THP head becoming its first 4 KiB page
    /// when split) without changing the frame count.
    pub fn replace(&mut self, slot: usize, unit: Unit) {
        if self.get(slot).is_some_and(|u| u.thp) {
            self.free_tails(slot);
        }
        self.slots[slot] = unit.encode();
        self.note(unit, slot as u32);
    }

    /// Free a slot, which holds `unit`, and the `frames` it stood for.
    /// The caller names the unit, so the slot is only written: freeing a
    /// page found through [`Frames::slot_of`] (KSM merging it, a balloon
    /// taking it) does not wait for the slot's cache line.
    #[inline]
    pub fn remove(&mut self, slot: usize, unit: Unit, frames: u64) {
        debug_assert_eq!(self.slots[slot], unit.encode());
        self.note(unit, NO_SLOT);
        if unit.thp {
            self.free_tails(slot);
        }
        self.slots[slot] = EMPTY;
        self.free_slots.push(slot as u32);
        self.used -= frames;
    }

    /// Add a slot for a page whose frame is already counted (the pages a
    /// split THP brings out).
    pub fn insert_counted(&mut self, unit: Unit) -> u32 {
        self.place(unit)
    }

    /// Take (or give back) frames that have no slot: memory outside the
    /// reclaimable set, such as pages pinned for a balloon.
    pub fn adjust_unslotted(&mut self, delta: i64) {
        self.used = self.used.checked_add_signed(delta).expect("frame accounting stays within bounds");
        debug_assert!(self.used <= self.total);
    }

    /// Free every slot owned by `guest` and the `frames` it held.
    pub fn remove_guest(&mut self, guest: u32, frames: u64) {
        // A removed THP's tails follow its head.
        let mut tails = false;
        for (i, v) in self.slots.iter_mut().enumerate() {
            if *v == TAIL {
                if tails {
                    *v = EMPTY;
                    self.free_slots.push(i as u32);
                }
                continue;
            }
            tails = false;
            if *v != EMPTY && Unit::decode(*v).guest == guest {
                tails = Unit::decode(*v).thp;
                *v = EMPTY;
                self.free_slots.push(i as u32);
            }
        }
        self.used -= frames;
        if let Some(v) = self.rev.get_mut(guest as usize) {
            v.fill(NO_SLOT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_trip() {
        for u in [
            Unit { guest: 0, page: 0, thp: false },
            Unit { guest: 127, page: (1 << 40) - 1, thp: true },
            Unit { guest: 5, page: 12345, thp: false },
        ] {
            assert_eq!(Unit::decode(u.encode()), u);
        }
    }

    #[test]
    fn a_thp_holds_a_slot_for_each_of_its_frames_and_gives_them_to_what_replaces_it() {
        // Every simulated frame has a slot (the module's rule): a THP of 512
        // frames takes 512 slots, its head first; reclaimed, it leaves all
        // of them free, and the 512 4 KiB pages that come next take those
        // slots without the table growing. A split (the head becoming its
        // first 4 KiB page) frees the tails too, and so does a guest's end.
        let mut f = Frames::new(4096);
        let thp = Unit { guest: 1, page: 0, thp: true };
        let head = f.insert(thp, 512) as usize;
        assert_eq!((head, f.slot_count(), f.used()), (0, 512, 512));
        assert!((1..512).all(|s| f.is_tail(s) && f.get(s).is_none()));
        assert_eq!(f.get(0), Some(thp));
        f.remove(head, thp, 512);
        assert_eq!(f.used(), 0);
        for p in 0..512 {
            f.insert(Unit { guest: 2, page: p, thp: false }, 1);
        }
        assert_eq!((f.slot_count(), f.used()), (512, 512));
        assert!((0..512).all(|s| !f.is_tail(s) && f.get(s).is_some()));
        let thp = Unit { guest: 3, page: 512, thp: true };
        let head = f.insert(thp, 512) as usize;
        assert_eq!(head, 512);
        f.replace(head, Unit { guest: 3, page: 512, thp: false });
        assert!((513..1024).all(|s| !f.is_tail(s) && f.get(s).is_none()));
        f.insert(Unit { guest: 4, page: 0, thp: true }, 512);
        f.remove_guest(4, 512);
        assert!((1024..1536).all(|s| f.get(s).is_none() && !f.is_tail(s)));
        assert_eq!(f.used(), 1024);
    }

    #[test]
    fn accounting() {
        let mut f = Frames::new(1024);
        let a = f.insert(Unit { guest: 1, page: 0, thp: true }, 512);
        let _b = f.insert(Unit { guest: 2, page: 7, thp: false }, 1);
        assert_eq!(f.used(), 513);
        f.remove(a as usize, Unit { guest: 1, page: 0, thp: true }, 512);
        assert_eq!(f.free(), 1023);
        f.remove_guest(2, 1);
        assert_eq!(f.used(), 0);
    }
}
