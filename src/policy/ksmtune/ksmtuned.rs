//! Red Hat's ksmtuned script (Fedora qemu packaging; docs/sources/
//! ksm-balloon-policies.md section 1.3): every `KSM_MONITOR_INTERVAL` it
//! compares free memory with a threshold, stops KSM when there is room, and
//! otherwise boosts or decays `pages_to_scan` (`super::ksmtuned_rule`).

use serde::Serialize;

use super::{HostView, KsmTuner, Look, THRES_COEF_PERCENT, THRES_CONST_KIB, ksmtuned_rule};
use crate::input::reader::{Decoder, Fields};
use crate::input::values::span;
use crate::policy::ksm::Knobs;
use crate::units::Span;

/// ksmtuned's knobs under `host.ksm:`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KsmtunedKnobs {
    /// How long it sleeps between looks.
    pub interval: Span,
}

impl Default for KsmtunedKnobs {
    /// ksmtuned sleeps KSM_MONITOR_INTERVAL = 60 s between looks.
    fn default() -> Self {
        KsmtunedKnobs { interval: Span::from_secs(60) }
    }
}

impl KsmtunedKnobs {
    pub const KEYS: &[&str] = &["interval"];

    pub fn decode(d: &mut Decoder, f: &Fields) -> KsmtunedKnobs {
        KsmtunedKnobs { interval: d.field(f, "interval", span).unwrap_or(KsmtunedKnobs::default().interval) }
    }
}

/// ksmtuned's state: its `npages`, which starts at 0.
#[derive(Debug, Clone)]
pub struct Ksmtuned {
    knobs: KsmtunedKnobs,
    npages: i64,
}

impl Ksmtuned {
    pub fn new(knobs: KsmtunedKnobs) -> Ksmtuned {
        Ksmtuned { knobs, npages: 0 }
    }
}

impl KsmTuner for Ksmtuned {
    fn look_interval(&self) -> Option<Span> {
        Some(self.knobs.interval)
    }

    fn look(&mut self, knobs: &mut Knobs, host: HostView) -> Option<String> {
        let total = host.total_bytes / 1024;
        // thres=$[total * KSM_THRES_COEF / 100], raised to KSM_THRES_CONST;
        // committed: the qemu processes' RSS (ps -o rsz).
        let look = Look {
            who: "ksmtuned: free",
            free: host.free_bytes / 1024,
            thres: (total * THRES_COEF_PERCENT / 100).max(THRES_CONST_KIB),
            committed: ("committed", host.qemu_rss_bytes / 1024),
            base: self.npages,
        };
        let (why, npages) = ksmtuned_rule(knobs, total, look);
        if let Some(n) = npages {
            self.npages = n;
        }
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knobs() -> Knobs {
        Knobs::running()
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn ksmtuned_stops_when_there_is_room_and_boosts_under_pressure() {
        // 64 GiB host: thres = 64 GiB x 20% = 13 421 772 KiB; sleep = 10 x
        // 16 GiB / 64 GiB = 2.5 -> 10 ms (the floor).
        let mut k = knobs();
        let mut t = Ksmtuned::new(KsmtunedKnobs::default());
        let roomy =
            HostView { total_bytes: 64 * GIB, free_bytes: 40 * GIB, qemu_rss_bytes: 20 * GIB, qemu_vsz_bytes: 0 };
        assert!(t.look(&mut k, roomy).is_some());
        assert!(!k.run);
        // Free 8 GiB < 12.8 GiB: boost from npages = 0 to 300.
        let tight = HostView { free_bytes: 8 * GIB, qemu_rss_bytes: 56 * GIB, ..roomy };
        t.look(&mut k, tight);
        assert_eq!((k.run, k.pages_to_scan, k.sleep_millisecs), (true, 300, 10));
        for _ in 0..10 {
            t.look(&mut k, tight);
        }
        assert_eq!(k.pages_to_scan, 1250, "clamped to KSM_NPAGES_MAX");
        // Committed high but free above the threshold: decay by 50.
        let committed = HostView { free_bytes: 20 * GIB, qemu_rss_bytes: 60 * GIB, ..roomy };
        t.look(&mut k, committed);
        assert_eq!(k.pages_to_scan, 1200);
    }

    #[test]
    fn ksmtuned_sleep_scales_with_ram_below_16_gib() {
        // 4 GiB: sleep = 10 x 16 777 216 / 4 194 304 = 40 ms.
        let mut k = knobs();
        let mut t = Ksmtuned::new(KsmtunedKnobs::default());
        let h = HostView { total_bytes: 4 * GIB, free_bytes: GIB / 2, qemu_rss_bytes: 3 * GIB, qemu_vsz_bytes: 0 };
        t.look(&mut k, h);
        assert_eq!(k.sleep_millisecs, 40);
    }
}
