//! oVirt's Memory Overcommitment Manager balloon rules (vdsm's
//! 02-balloon.policy; docs/sources/ksm-balloon-policies.md section 1.2):
//! under host memory pressure each guest with statistics shrinks by
//! `max_change` down to its use plus a free margin, and grows back when the
//! pressure is gone.

use std::collections::VecDeque;

use serde::Serialize;

use super::{BalloonController, GuestConfig, GuestView, HostView};
use crate::input::reader::{Decoder, Fields};
use crate::input::values::fraction;
use crate::policy::{mean, push_capped};
use crate::units::Fraction;

/// MoM's critical offset (vdsm's 02-balloon.policy, `(+ -0.05
/// host_free_percent)`); its other constants are the knobs below.
pub const MOM_CRITICAL_OFFSET: f64 = -0.05;

/// MoM's knobs under `host.balloon:`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Knobs {
    /// Host free share under which guests shrink, and the critical share
    /// under which they are made to swap.
    pub pressure_threshold: Fraction,
    pub pressure_critical: Fraction,
    /// Free share each guest keeps (scaled by the host's free share).
    pub guest_free: Fraction,
    /// Largest change per run, and smallest worth making, as shares of the
    /// guest's current size.
    pub max_change: Fraction,
    pub min_change: Fraction,
}

impl Default for Knobs {
    /// vdsm's 02-balloon.policy: `pressure_threshold 0.20`,
    /// `pressure_critical 0.05`, `min_guest_free_percent 0.20`,
    /// `max_balloon_change_percent 0.05`, `min_balloon_change_percent
    /// 0.0025`.
    fn default() -> Self {
        Knobs {
            pressure_threshold: Fraction(0.20),
            pressure_critical: Fraction(0.05),
            guest_free: Fraction(0.20),
            max_change: Fraction(0.05),
            min_change: Fraction(0.0025),
        }
    }
}

impl Knobs {
    pub const KEYS: &[&str] = &["pressure_threshold", "pressure_critical", "guest_free", "max_change", "min_change"];

    /// Read the knobs `f` gives, the defaults for the rest.
    pub fn decode(d: &mut Decoder, f: &Fields) -> Knobs {
        let k = Knobs::default();
        let mut share = |key: &str, default: Fraction| d.field(f, key, fraction).unwrap_or(default);
        Knobs {
            pressure_threshold: share("pressure_threshold", k.pressure_threshold),
            pressure_critical: share("pressure_critical", k.pressure_critical),
            guest_free: share("guest_free", k.guest_free),
            max_change: share("max_change", k.max_change),
            min_change: share("min_change", k.min_change),
        }
    }

    /// What a guest with a balloon should know under MoM: without
    /// statistics it is left alone (vdsm: "MOM will ignore VMs with missing
    /// balloon information"). The field it concerns, and the message.
    pub fn check_guest(&self, g: GuestConfig) -> Option<(&'static str, String)> {
        (g.balloon && !g.balloon_stats)
            .then(|| ("balloon_stats", "reports no balloon statistics: MoM leaves it alone".to_string()))
    }
}

/// The knobs as plain numbers, for the rule's arithmetic.
#[derive(Debug, Clone, Copy)]
struct Params {
    pressure_threshold: f64,
    pressure_critical: f64,
    guest_free: f64,
    max_change: f64,
    min_change: f64,
}

impl From<&Knobs> for Params {
    fn from(k: &Knobs) -> Self {
        Params {
            pressure_threshold: k.pressure_threshold.get(),
            pressure_critical: k.pressure_critical.get(),
            guest_free: k.guest_free.get(),
            max_change: k.max_change.get(),
            min_change: k.min_change.get(),
        }
    }
}

/// MoM's state: its knobs, recent host free memory and per-guest
/// statistics.
#[derive(Debug, Clone, Default)]
pub struct Mom {
    pub knobs: Knobs,
    host_free: VecDeque<u64>,
    guests: Vec<VecDeque<(u64, u64)>>,
}

impl Mom {
    pub fn new(knobs: Knobs) -> Mom {
        Mom { knobs, ..Default::default() }
    }
}

impl BalloonController for Mom {
    fn name(&self) -> &'static str {
        "MoM"
    }

    /// One policy run (vdsm's 02-balloon.policy with balloonEnabled = 1):
    /// new targets per guest. A guest without statistics is left alone
    /// ("MOM will ignore VMs with missing balloon information").
    fn tick(&mut self, host: HostView, guests: &[GuestView]) -> Vec<Option<u64>> {
        let (host_total, host_free) = (host.total, host.free);
        push_capped(&mut self.host_free, host_free);
        if self.guests.len() < guests.len() {
            self.guests.resize(guests.len(), VecDeque::new());
        }
        let k = Params::from(&self.knobs);
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
                if !(g.managed && g.has_stats) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn guest(cur: u64, unused: u64) -> GuestView {
        GuestView { managed: true, has_stats: true, memory: 4 * GIB, cur, unused, min: 0, shares: 1000 }
    }

    #[test]
    fn mom_shrinks_by_five_percent_under_pressure_and_not_below_use_plus_margin() {
        // Host 10% free (< 20%): guest_free_percent = 0.20 x 0.10 / 0.20 =
        // 0.10. A guest at 4 GiB using 1 GiB: floor = 1 + 0.1 x 4 = 1.4 GiB,
        // so 5% off: 3.8 GiB.
        let mut m = Mom::default();
        let t = m.tick(HostView { total: 100 * GIB, free: 10 * GIB }, &[guest(4 * GIB, 3 * GIB)]);
        assert_eq!(t[0], Some((4.0 * GIB as f64 * 0.95) as u64));
        // A guest using 3.9 of 4 GiB: floor = 3.9 + 0.4 > 4 GiB: no shrink
        // (size would exceed cur).
        let mut m = Mom::default();
        let t = m.tick(HostView { total: 100 * GIB, free: 10 * GIB }, &[guest(4 * GIB, GIB / 10)]);
        assert_eq!(t[0], None);
    }

    #[test]
    fn mom_grows_back_by_five_percent_when_pressure_is_gone() {
        // 50% free: grow 5% from 2 GiB = 2.1 GiB (the floor, 1 GiB used +
        // 0.5 x 2 GiB = 2 GiB, is lower).
        let mut m = Mom::default();
        let t = m.tick(HostView { total: 100 * GIB, free: 50 * GIB }, &[guest(2 * GIB, GIB)]);
        assert_eq!(t[0], Some((2.0 * GIB as f64 * 1.05) as u64));
        // At its configured size nothing changes.
        let t = m.tick(HostView { total: 100 * GIB, free: 50 * GIB }, &[guest(4 * GIB, GIB)]);
        assert_eq!(t[0], None);
    }

    #[test]
    fn mom_leaves_a_guest_without_statistics_alone() {
        // vdsm: "MOM will ignore VMs with missing balloon information": the
        // guest that would shrink to 3.8 GiB above keeps its size.
        let mut m = Mom::default();
        let g = GuestView { has_stats: false, ..guest(4 * GIB, 3 * GIB) };
        assert_eq!(m.tick(HostView { total: 100 * GIB, free: 10 * GIB }, &[g]), vec![None]);
        let cfg = GuestConfig { balloon: true, balloon_stats: false, balloon_min: 0 };
        assert_eq!(Knobs::default().check_guest(cfg).map(|c| c.0), Some("balloon_stats"));
    }
}
