//! Proxmox VE's auto-ballooning (pvestatd's auto_balloning, then
//! PVE::AutoBalloon::compute_alg1): aim the host at `target_use` of its
//! memory, spreading the difference over the guests with a `balloon_min`
//! by their shares, at most `max_step` per guest and round.

use serde::Serialize;

use super::{BalloonController, GuestConfig, GuestView, HostView};
use crate::input::reader::{Decoder, Fields};
use crate::input::values::{fraction, size};
use crate::units::{ByteSize, Fraction};

/// pvestatd ignores goals under 10 MiB (`if ($goal > 10*1024*1024)`).
pub const PVE_MIN_GOAL: i64 = 10 * 1024 * 1024;

/// Proxmox's knobs under `host.balloon:`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Knobs {
    /// The host memory use it aims at.
    pub target_use: Fraction,
    /// The most one balloon moves per round.
    pub max_step: ByteSize,
}

impl Default for Knobs {
    /// pvestatd: `$hostmeminfo->{memtotal}*0.8`, `$maxchange = 100*1024*1024`.
    fn default() -> Self {
        Knobs { target_use: Fraction(0.8), max_step: ByteSize::mib(100) }
    }
}

impl Knobs {
    pub const KEYS: &[&str] = &["target_use", "max_step"];

    /// Read the knobs `f` gives, the defaults for the rest.
    pub fn decode(d: &mut Decoder, f: &Fields) -> Knobs {
        let k = Knobs::default();
        Knobs {
            target_use: d.field(f, "target_use", fraction).unwrap_or(k.target_use),
            max_step: d.field(f, "max_step", size).unwrap_or(k.max_step),
        }
    }

    /// What a guest with a balloon should know under Proxmox: without a
    /// minimum it is not auto-ballooned (`next if !$d->{balloon_min}`).
    pub fn check_guest(&self, g: GuestConfig) -> Option<(&'static str, String)> {
        (g.balloon && g.balloon_min == 0).then(|| {
            (
                "balloon_min",
                "has no balloon_min: Proxmox's auto-ballooning leaves guests without a minimum alone".into(),
            )
        })
    }
}

/// The controller: the knobs; Proxmox keeps no state between rounds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Proxmox {
    pub knobs: Knobs,
}

impl BalloonController for Proxmox {
    fn name(&self) -> &'static str {
        "Proxmox"
    }

    /// A guest without statistics is still ballooned.
    fn tick(&mut self, host: HostView, guests: &[GuestView]) -> Vec<Option<u64>> {
        let step = self.knobs.max_step.bytes().min(i64::MAX as u64) as i64;
        compute(host.total, host.total - host.free, guests, self.knobs.target_use.get(), step)
    }
}

/// Proxmox's auto-ballooning round (pvestatd's auto_balloning, then
/// PVE::AutoBalloon::compute_alg1): new `balloon_cur` per guest.
pub fn compute(
    host_total: u64,
    host_used: u64,
    guests: &[GuestView],
    target_use: f64,
    max_step: i64,
) -> Vec<Option<u64>> {
    let goal = (host_total as f64 * target_use - host_used as f64) as i64;
    // idlist: a running balloon driver and a `balloon` (minimum) set;
    // idlist1: under memory pressure; idlist2: more free than a quarter of
    // the minimum.
    let ids: Vec<usize> = (0..guests.len()).filter(|&i| guests[i].managed && guests[i].min > 0).collect();
    let (pressed, roomy): (Vec<usize>, Vec<usize>) = ids.iter().partition(|&&i| {
        let g = &guests[i];
        !(g.unused > 0 && g.unused as f64 > g.min as f64 * 0.25 && g.cur >= g.min)
    });
    let mut res: Vec<Option<i64>> = vec![None; guests.len()];
    if goal > PVE_MIN_GOAL {
        let rest = change(guests, &mut res, &pressed, goal, max_step);
        if rest >= goal {
            change(guests, &mut res, &ids, rest, max_step);
        }
    } else if goal < -PVE_MIN_GOAL {
        let rest = change(guests, &mut res, &roomy, goal, max_step);
        if rest <= goal {
            change(guests, &mut res, &ids, rest, max_step);
        }
    }
    res.into_iter()
        .enumerate()
        .map(|(i, r)| r.filter(|&v| v as u64 != guests[i].cur).map(|v| v.max(0) as u64))
        .collect()
}

/// compute_alg1's `$change_func`: spread `bytes` over `ids` by shares,
/// each between its minimum and its memory, at most `max_step` from
/// where it is; returns what could not be placed.
fn change(guests: &[GuestView], res: &mut [Option<i64>], ids: &[usize], bytes: i64, max_step: i64) -> i64 {
    let mut rest = bytes;
    let mut done = vec![false; guests.len()];
    let (mut repeat, mut progress) = (true, true);
    while rest != 0 && repeat && progress {
        repeat = false;
        progress = false;
        let (mut shares_total, mut alloc_old) = (0i64, 0i64);
        for &i in ids.iter().filter(|&&i| !done[i]) {
            let g = &guests[i];
            let balloon = res[i].unwrap_or(g.cur as i64);
            alloc_old += balloon - g.min as i64;
            shares_total += i64::from(if g.shares == 0 { 1000 } else { g.shares });
        }
        let alloc_new = alloc_old + rest;
        let mut changes = 0i64;
        for &i in ids {
            if done[i] {
                continue;
            }
            let g = &guests[i];
            let shares = i64::from(if g.shares == 0 { 1000 } else { g.shares });
            let mut desired = g.min as i64 + ((alloc_new as f64 / shares_total.max(1) as f64) * shares as f64) as i64;
            if desired > g.memory as i64 {
                desired = g.memory as i64;
                repeat = true;
            } else if desired < g.min as i64 {
                desired = g.min as i64;
                repeat = true;
            }
            let cur = g.cur as i64;
            let balloon = if bytes > 0 && desired - cur > 0 {
                (cur + max_step).min(desired)
            } else if desired - cur < 0 {
                (cur - max_step).max(desired)
            } else {
                done[i] = true;
                continue;
            };
            let diff = balloon - cur;
            if diff != 0 {
                let old = res[i].unwrap_or(cur);
                res[i] = Some(balloon);
                let c = balloon - old;
                if c != 0 {
                    changes += c;
                    progress = true;
                    repeat = true;
                }
            }
        }
        rest -= changes;
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;
    // pvestatd's defaults (see Knobs::default).
    const PVE_TARGET_USE: f64 = 0.8;
    const PVE_MAX_STEP: i64 = 100 * 1024 * 1024;

    #[test]
    fn proxmox_spreads_a_shrink_by_shares_at_most_100_mib_each() {
        // Host 100 GiB with 90 GiB used: goal = 80 - 90 = -10 GiB. Two
        // guests with enough free memory and min 1 GiB: each gives 100 MiB
        // (the per-round cap) this round.
        let g = GuestView {
            managed: true,
            has_stats: true,
            memory: 8 * GIB,
            cur: 8 * GIB,
            unused: 6 * GIB,
            min: GIB,
            shares: 1000,
        };
        let t = compute(100 * GIB, 90 * GIB, &[g, g], PVE_TARGET_USE, PVE_MAX_STEP);
        assert_eq!(t, vec![Some(8 * GIB - 100 * 1024 * 1024); 2]);
        // Under the 80% target the balloons deflate towards memory.
        let small = GuestView { cur: 6 * GIB, ..g };
        let t = compute(100 * GIB, 50 * GIB, &[small], PVE_TARGET_USE, PVE_MAX_STEP);
        assert_eq!(t, vec![Some(6 * GIB + 100 * 1024 * 1024)]);
        // A guest without a minimum is not auto-ballooned.
        let t = compute(100 * GIB, 90 * GIB, &[GuestView { min: 0, ..g }], PVE_TARGET_USE, PVE_MAX_STEP);
        assert_eq!(t, vec![None]);
    }
}
