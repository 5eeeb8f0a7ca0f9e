//! oVirt MoM's KSM policy (vdsm's 03-ksm.policy; docs/sources/
//! ksm-balloon-policies.md section 2): ksmtuned's rule
//! (`super::ksmtuned_rule`) on MoM's view of the host: free memory
//! averaged over its last samples, the guests' configured memory as what
//! could be shared, and `npages` taken from the kernel's current
//! `pages_to_scan`.

use std::collections::VecDeque;

use serde::Serialize;

use super::{HostView, KsmTuner, Look, THRES_COEF_PERCENT, ksmtuned_rule};
use crate::input::reader::{Decoder, Fields};
use crate::input::values::span;
use crate::policy::ksm::Knobs;
use crate::policy::push_capped;
use crate::units::Span;

/// MoM's KSM knobs under `host.ksm:`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MomKnobs {
    /// How often its policy engine runs.
    pub interval: Span,
}

impl Default for MomKnobs {
    /// vdsm runs MoM's policies every 15 s (mom.conf policy-engine-interval).
    fn default() -> Self {
        MomKnobs { interval: Span::from_secs(15) }
    }
}

impl MomKnobs {
    pub const KEYS: &[&str] = &["interval"];

    pub fn decode(d: &mut Decoder, f: &Fields) -> MomKnobs {
        MomKnobs { interval: d.field(f, "interval", span).unwrap_or(MomKnobs::default().interval) }
    }
}

/// MoM's recent free-memory samples (KiB).
#[derive(Debug, Clone)]
pub struct Mom {
    knobs: MomKnobs,
    free_kib: VecDeque<u64>,
}

impl Mom {
    pub fn new(knobs: MomKnobs) -> Mom {
        Mom { knobs, free_kib: VecDeque::new() }
    }
}

impl KsmTuner for Mom {
    fn look_interval(&self) -> Option<Span> {
        Some(self.knobs.interval)
    }

    fn look(&mut self, knobs: &mut Knobs, host: HostView) -> Option<String> {
        let total = host.total_bytes / 1024;
        // ksm_pressure_threshold = mem_available * ksm_free_percent;
        // ksm_shareable: the qemu processes' VSZ; free memory averaged over
        // MoM's last samples (sample-history-length).
        push_capped(&mut self.free_kib, host.free_bytes / 1024);
        let free = self.free_kib.iter().sum::<u64>() / self.free_kib.len() as u64;
        let look = Look {
            who: "MoM: mean free",
            free,
            thres: total * THRES_COEF_PERCENT / 100,
            committed: ("shareable", host.qemu_vsz_bytes / 1024),
            base: i64::from(knobs.pages_to_scan),
        };
        ksmtuned_rule(knobs, total, look).0
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
    fn mom_starts_from_the_kernels_pages_to_scan_and_averages_free_memory() {
        // pages_to_scan 100 + 300 = 400 (MoM adds to the current value).
        let mut k = knobs();
        let mut t = Mom::new(MomKnobs::default());
        let tight =
            HostView { total_bytes: 64 * GIB, free_bytes: 4 * GIB, qemu_rss_bytes: 0, qemu_vsz_bytes: 96 * GIB };
        t.look(&mut k, tight);
        assert_eq!(k.pages_to_scan, 400);
        // One sample with 30 GiB free after nine at 4 GiB: the mean (6.6
        // GiB) is still under 12.8 GiB, so it boosts again.
        for _ in 0..8 {
            t.look(&mut k, tight);
        }
        t.look(&mut k, HostView { free_bytes: 30 * GIB, ..tight });
        assert_eq!(k.pages_to_scan, 1250);
        assert!(k.run);
    }
}
