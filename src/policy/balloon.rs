//! Balloon policies: who decides how much memory each guest's virtio
//! balloon takes back. Each follows its published source, quoted in
//! docs/sources/ksm-balloon-policies.md (MoM: section 1.2; the virtio
//! balloon itself: section 4) and Proxmox's PVE::AutoBalloon.
//!
//! A policy sees the host and each guest in bytes and answers a new
//! `balloon_cur` (the memory the guest keeps) per guest, or nothing. The
//! engine moves the balloon: inflating takes the guest's highest
//! addresses first (free memory, then the coldest working-set pages, which
//! go to the guest's swap or cost a guest process), frees their host
//! frames (not for hugetlb memory, see the engine), and deflating gives
//! them back.

use std::collections::VecDeque;

use crate::scenario::Balloon;

/// MoM's critical offset (vdsm's 02-balloon.policy, `(+ -0.05
/// host_free_percent)`); its other constants are the scenario's knobs, with
/// their sources at `scenario::Balloon`'s defaults.
pub const MOM_CRITICAL_OFFSET: f64 = -0.05;
/// Statistics are averaged over the last 10 samples (`sample-history-length`).
pub const MOM_HISTORY: usize = 10;

/// Proxmox's pvestatd ignores goals under 10 MiB (`if ($goal >
/// 10*1024*1024)`); its target use and step are the scenario's knobs.
pub const PVE_MIN_GOAL: i64 = 10 * 1024 * 1024;

/// One guest as a balloon policy sees it, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct GuestView {
    /// Alive, with a balloon device (and, for MoM, statistics).
    pub managed: bool,
    /// Configured memory: the balloon's maximum `balloon_cur`.
    pub memory: u64,
    /// Memory the guest has now (memory minus the balloon).
    pub cur: u64,
    /// The guest's free memory (virtio stat-free-memory).
    pub unused: u64,
    /// The least it may keep.
    pub min: u64,
    /// Proxmox's weight.
    pub shares: u32,
}

/// MoM's knobs, from the scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MomParams {
    pub pressure_threshold: f64,
    pub pressure_critical: f64,
    pub guest_free: f64,
    pub max_change: f64,
    pub min_change: f64,
}

impl From<&Balloon> for MomParams {
    fn from(b: &Balloon) -> Self {
        MomParams {
            pressure_threshold: b.pressure_threshold.get(),
            pressure_critical: b.pressure_critical.get(),
            guest_free: b.guest_free.get(),
            max_change: b.max_change.get(),
            min_change: b.min_change.get(),
        }
    }
}

impl Default for MomParams {
    fn default() -> Self {
        MomParams::from(&Balloon::default())
    }
}

/// MoM's state: its knobs, recent host free memory and per-guest
/// statistics.
#[derive(Debug, Clone, Default)]
pub struct Mom {
    pub params: MomParams,
    host_free: VecDeque<u64>,
    guests: Vec<VecDeque<(u64, u64)>>,
}

impl Mom {
    pub fn new(params: MomParams) -> Mom {
        Mom { params, ..Default::default() }
    }

    /// One policy run (vdsm's 02-balloon.policy with balloonEnabled = 1):
    /// new targets per guest.
    pub fn tick(&mut self, host_total: u64, host_free: u64, guests: &[GuestView]) -> Vec<Option<u64>> {
        push_capped(&mut self.host_free, host_free);
        if self.guests.len() < guests.len() {
            self.guests.resize(guests.len(), VecDeque::new());
        }
        let k = self.params;
        let host_free_percent = mean(&self.host_free) / host_total.max(1) as f64;
        // guest_free_percent: "Force guest to swap" when critical.
        let guest_free_percent = if host_free_percent <= k.pressure_critical {
            MOM_CRITICAL_OFFSET + host_free_percent
        } else {
            k.guest_free * (host_free_percent / k.pressure_threshold)
        };
        let pressure = host_free_percent < k.pressure_threshold;
        guests
            .iter()
            .zip(self.guests.iter_mut())
            .map(|(g, hist)| {
                if !g.managed {
                    hist.clear();
                    return None;
                }
                push_capped(hist, (g.cur, g.unused));
                let avg_cur = hist.iter().map(|h| h.0 as f64).sum::<f64>() / hist.len() as f64;
                let avg_unused = hist.iter().map(|h| h.1 as f64).sum::<f64>() / hist.len() as f64;
                let cur = g.cur as f64;
                let used = avg_cur - avg_unused;
                let floor = (g.min as f64).max(used + guest_free_percent * cur);
                let mut target = None;
                if pressure {
                    // shrink_guest
                    let size = (cur * (1.0 - k.max_change)).max(floor);
                    if size <= cur && (size - cur).abs() > k.min_change * cur {
                        target = Some(size);
                    }
                } else if g.cur < g.memory {
                    // grow_guest
                    let size = (cur * (1.0 + k.max_change)).max(floor).min(g.memory as f64);
                    if (size - cur).abs() > k.min_change * cur {
                        target = Some(size);
                    }
                }
                // The QoS rule: never below the guaranteed memory.
                if g.cur < g.min {
                    target = Some(g.min as f64);
                }
                target.map(|t| t as u64)
            })
            .collect()
    }
}

/// Keep the last [`MOM_HISTORY`] values.
pub fn push_capped<T>(q: &mut VecDeque<T>, v: T) {
    q.push_back(v);
    if q.len() > MOM_HISTORY {
        q.pop_front();
    }
}

fn mean(q: &VecDeque<u64>) -> f64 {
    if q.is_empty() { 0.0 } else { q.iter().map(|&v| v as f64).sum::<f64>() / q.len() as f64 }
}

/// Proxmox's auto-ballooning round (pvestatd's auto_balloning, then
/// PVE::AutoBalloon::compute_alg1): new `balloon_cur` per guest.
pub fn proxmox(
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
    // pvestatd's defaults (see scenario::Balloon).
    const PVE_TARGET_USE: f64 = 0.8;
    const PVE_MAX_STEP: i64 = 100 * 1024 * 1024;

    fn guest(cur: u64, unused: u64) -> GuestView {
        GuestView { managed: true, memory: 4 * GIB, cur, unused, min: 0, shares: 1000 }
    }

    #[test]
    fn mom_shrinks_by_five_percent_under_pressure_and_not_below_use_plus_margin() {
        // Host 10% free (< 20%): guest_free_percent = 0.20 x 0.10 / 0.20 =
        // 0.10. A guest at 4 GiB using 1 GiB: floor = 1 + 0.1 x 4 = 1.4 GiB,
        // so 5% off: 3.8 GiB.
        let mut m = Mom::default();
        let t = m.tick(100 * GIB, 10 * GIB, &[guest(4 * GIB, 3 * GIB)]);
        assert_eq!(t[0], Some((4.0 * GIB as f64 * 0.95) as u64));
        // A guest using 3.9 of 4 GiB: floor = 3.9 + 0.4 > 4 GiB: no shrink
        // (size would exceed cur).
        let mut m = Mom::default();
        let t = m.tick(100 * GIB, 10 * GIB, &[guest(4 * GIB, GIB / 10)]);
        assert_eq!(t[0], None);
    }

    #[test]
    fn mom_grows_back_by_five_percent_when_pressure_is_gone() {
        // 50% free: grow 5% from 2 GiB = 2.1 GiB (the floor, 1 GiB used +
        // 0.5 x 2 GiB = 2 GiB, is lower).
        let mut m = Mom::default();
        let t = m.tick(100 * GIB, 50 * GIB, &[guest(2 * GIB, GIB)]);
        assert_eq!(t[0], Some((2.0 * GIB as f64 * 1.05) as u64));
        // At its configured size nothing changes.
        let t = m.tick(100 * GIB, 50 * GIB, &[guest(4 * GIB, GIB)]);
        assert_eq!(t[0], None);
    }

    #[test]
    fn proxmox_spreads_a_shrink_by_shares_at_most_100_mib_each() {
        // Host 100 GiB with 90 GiB used: goal = 80 - 90 = -10 GiB. Two
        // guests with enough free memory and min 1 GiB: each gives 100 MiB
        // (the per-round cap) this round.
        let g = GuestView { managed: true, memory: 8 * GIB, cur: 8 * GIB, unused: 6 * GIB, min: GIB, shares: 1000 };
        let t = proxmox(100 * GIB, 90 * GIB, &[g, g], PVE_TARGET_USE, PVE_MAX_STEP);
        assert_eq!(t, vec![Some(8 * GIB - 100 * 1024 * 1024); 2]);
        // Under the 80% target the balloons deflate towards memory.
        let small = GuestView { cur: 6 * GIB, ..g };
        let t = proxmox(100 * GIB, 50 * GIB, &[small], PVE_TARGET_USE, PVE_MAX_STEP);
        assert_eq!(t, vec![Some(6 * GIB + 100 * 1024 * 1024)]);
        // A guest without a minimum is not auto-ballooned.
        let t = proxmox(100 * GIB, 90 * GIB, &[GuestView { min: 0, ..g }], PVE_TARGET_USE, PVE_MAX_STEP);
        assert_eq!(t, vec![None]);
    }
}
