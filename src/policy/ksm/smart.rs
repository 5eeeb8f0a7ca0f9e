//! Smart scan (Linux 6.7+, `smart_scan`): ksmd passes over pages that
//! did not merge for a while, by the age of their rmap item. The rule
//! ([`skip_plan`]), its table over a page's packed state ([`Smart`]), and
//! ksmd's per-page smart-scan state.

use super::Ksm;
use super::tree::unstable_page;
use crate::model::Memory;
use crate::model::page::Content;

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
pub(super) const fn skip_plan(age: u8, rem: u8) -> (bool, u8, u8) {
    let next = if age >= 9 { 9 } else { age + 1 };
    if age < 3 {
        (false, next, rem)
    } else if rem == 0 {
        (false, next, skip_age(age))
    } else {
        (true, next, rem - 1)
    }
}

/// A page's smart-scan state packed in a byte (age in the low four bits,
/// remaining skips in the high four), and [`skip_plan`] as a table over
/// it: whether the look skips, and the state after.
pub(super) struct Smart;

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
    pub(super) fn look(state: u8) -> (bool, u8) {
        Self::TABLE[state as usize]
    }
}

impl Ksm {
    /// The smart-scan state of guest `g`'s pages, sized on first use.
    pub(super) fn smart_of(&mut self, mem: &Memory, g: usize) -> &mut [u8] {
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
    pub(super) fn reset_age(&mut self, g: usize, p: u64) {
        if let Some(a) = self.smart.get_mut(g).and_then(|v| v.get_mut(p as usize)) {
            *a = 0;
        }
    }

    /// Smart scan at present page `p` of guest `g`, not a KSM page: whether
    /// ksmd skips it ([`skip_plan`]). A skipped page leaves the unstable
    /// tree (remove_rmap_item_from_tree).
    pub(super) fn smart_skip(&mut self, mem: &Memory, g: usize, p: u64) -> bool {
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
    pub(super) fn leave_unstable(&mut self, mem: &Memory, g: usize, p: u64) {
        let st = mem.guests[g].pages[p as usize];
        if let Some(key) = self.key(mem, g, p, Content::of(st))
            && self.unstable.get_mut(key).is_some_and(|v| unstable_page(*v) == (g as u32, p))
        {
            self.unstable.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
