//! The swap cache, as far as it outlives a swap-in: which of a guest's
//! resident pages still hold their swap slot, and of them which are
//! clean (the slot still holds what the page holds).
//!
//! The kernel's rules (mm/memory.c `do_swap_page` and
//! `should_try_to_free_swap`, mm/vmscan.c `shrink_folio_list`, Linux 6.18):
//!
//! - a page read back from a block device (or from zswap in front of one)
//!   enters the swap cache and keeps its slot after it is mapped, unless
//!   swap is more than half full (`vm_swap_full`: free × 2 < total; with a
//!   memory cgroup whose swap is limited, also its own usage × 2 ≥
//!   `memory.swap.max`), the fault is a write, or the memory is mlocked;
//!   then the slot is freed at once;
//! - a page read from a synchronous device (zram) with one user skips the
//!   swap cache and frees its slot (`SWP_SYNCHRONOUS_IO`);
//! - a page loaded from zswap comes back dirty (zswap frees its entry and
//!   marks the folio dirty), one read from the device or the zero map
//!   comes back clean;
//! - reclaim frees a clean swap-cache page without any I/O (its slot still
//!   holds it) and writes a dirty one to the slot it has;
//! - the slot goes when the page does otherwise (the balloon takes it,
//!   KSM merges it, its guest dies).
//!
//! Who makes a swapped-in page dirty decides how much this saves. A
//! process (and QEMU under TCG, whose guest RAM the process itself reads
//! and writes) dirties it only by writing. KVM marks a page dirty when it
//! maps it into the guest writable, which it does on a read fault too for
//! an exclusive anonymous page (since Linux 6.13, `kvm_release_faultin_page`
//! with `dirty` = mapped writable): a KVM guest's swapped-in pages are
//! dirty at once, keep their slots and are written again when reclaimed.
//!
//! Bits per page, kept only where a backend keeps slots: one for "holds a
//! slot" and one for "clean". In event mode a clean page's writes are not
//! played; the pressure of hits when it came in is kept, and whether its
//! hits wrote it is drawn when reclaim takes it.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct SwapCache {
    /// Resident pages holding a slot, a bit each (empty: none can).
    slot: Vec<u64>,
    /// Of them, the clean ones (only for guests whose swap-ins are clean).
    clean: Vec<u64>,
    /// Event mode: a clean page's hit pressure when it came in.
    clean_since: HashMap<u64, f64>,
    /// Pages holding a slot now.
    pub slots: u64,
}

#[inline]
fn get(bits: &[u64], p: u64) -> bool {
    bits.get((p / 64) as usize).is_some_and(|w| w & (1 << (p % 64)) != 0)
}

#[inline]
fn put(bits: &mut [u64], p: u64, on: bool) {
    if let Some(w) = bits.get_mut((p / 64) as usize) {
        if on {
            *w |= 1 << (p % 64);
        } else {
            *w &= !(1 << (p % 64));
        }
    }
}

impl SwapCache {
    /// For a guest of `pages` simulated pages; `clean`: its swap-ins come
    /// back clean (a process or TCG), not dirty (KVM).
    pub fn new(pages: u64, clean: bool) -> SwapCache {
        let words = pages.div_ceil(64) as usize;
        SwapCache {
            slot: vec![0; words],
            clean: if clean { vec![0; words] } else { Vec::new() },
            clean_since: HashMap::new(),
            slots: 0,
        }
    }

    /// Whether its pages can be clean in the swap cache (writes must then
    /// be told).
    #[inline]
    pub fn tracks_writes(&self) -> bool {
        !self.clean.is_empty()
    }

    /// Bring the word holding page `p`'s bits into the cache ahead of a
    /// [`Self::take`] (reclaim looks at pages at random; a hint only).
    #[inline]
    pub fn prefetch(&self, p: u64) {
        if let Some(w) = self.slot.get((p / 64) as usize) {
            crate::model::page::prefetch(w);
        }
    }

    /// Whether resident page `p` holds a swap slot.
    #[inline]
    pub fn holds(&self, p: u64) -> bool {
        get(&self.slot, p)
    }

    /// Page `p` came back and keeps its slot; `clean` when the slot still
    /// holds its content, with `pressure` the hit pressure now (event
    /// mode).
    pub fn keep(&mut self, p: u64, clean: bool, pressure: Option<f64>) {
        if self.slot.is_empty() {
            return;
        }
        debug_assert!(!self.holds(p));
        put(&mut self.slot, p, true);
        self.slots += 1;
        let clean = clean && self.tracks_writes();
        put(&mut self.clean, p, clean);
        if let (true, Some(a)) = (clean, pressure) {
            self.clean_since.insert(p, a);
        }
    }

    /// Page `p` was written: its slot's copy is stale.
    #[inline]
    pub fn written(&mut self, p: u64) {
        put(&mut self.clean, p, false);
        if !self.clean_since.is_empty() {
            self.clean_since.remove(&p);
        }
    }

    /// Page `p` leaves residency: whether it held a slot, and if so
    /// whether it was clean (with, in event mode, the hit pressure when
    /// it came in, for the caller to draw whether its hits wrote it).
    pub fn take(&mut self, p: u64) -> Option<(bool, Option<f64>)> {
        if !self.holds(p) {
            return None;
        }
        put(&mut self.slot, p, false);
        self.slots -= 1;
        let clean = get(&self.clean, p);
        put(&mut self.clean, p, false);
        let since = if self.clean_since.is_empty() { None } else { self.clean_since.remove(&p) };
        Some((clean, since))
    }

    /// Every page leaves (its guest died): the slots it held.
    pub fn clear(&mut self) -> u64 {
        self.slot.fill(0);
        self.clean.fill(0);
        self.clean_since.clear();
        std::mem::take(&mut self.slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_page_stays_clean_until_written() {
        let mut c = SwapCache::new(130, true);
        c.keep(129, true, None);
        c.keep(3, true, None);
        assert_eq!(c.slots, 2);
        c.written(3);
        assert_eq!(c.take(3), Some((false, None)));
        assert_eq!(c.take(129), Some((true, None)));
        assert_eq!((c.take(129), c.slots), (None, 0));
    }

    #[test]
    fn kvm_guests_pages_are_never_clean() {
        // A KVM guest's swap-ins are dirty: they keep a slot, never clean.
        let mut c = SwapCache::new(64, false);
        c.keep(5, true, Some(1.0));
        assert!(!c.tracks_writes());
        assert_eq!(c.take(5), Some((false, None)));
    }

    #[test]
    fn event_mode_keeps_the_pressure_of_a_clean_page() {
        let mut c = SwapCache::new(64, true);
        c.keep(7, true, Some(2.5));
        c.keep(8, false, Some(3.0));
        assert_eq!(c.take(7), Some((true, Some(2.5))));
        assert_eq!(c.take(8), Some((false, None)));
        c.keep(9, true, None);
        assert_eq!(c.clear(), 1);
    }
}
