//! The OOM killer's choice: the guest with the largest footprint.
//!
//! The kernel's `oom_badness()` (mm/oom_kill.c) scores a task by its RSS
//! plus its swap entries plus its page tables, and kills the highest score
//! (the first one found on a tie). hugetlbfs pages are not in RSS, so a
//! hugepage-backed guest scores only what little ordinary memory it has,
//! and killing it frees no ordinary memory. We follow that; page tables
//! are left out (a fraction of a percent of guest memory).

use crate::model::Memory;

/// The victim, or `None` when no live guest holds ordinary memory or swap.
pub fn select_victim(mem: &Memory) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, g) in mem.guests.iter().enumerate() {
        if !g.is_alive() {
            continue;
        }
        let score = mem.guest_frames(i) + g.swapped;
        if score > 0 && best.is_none_or(|(_, s)| score > s) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i)
}
