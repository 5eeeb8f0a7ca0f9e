//! What drives KSM's knobs while guests run. With `policy: static` the
//! scenario's values hold; otherwise a tuner sets them, each one file with
//! its knobs and its rule, following its published source quoted in
//! docs/sources/ksm-balloon-policies.md (sections 1.3, 2 and 3.4), with
//! its integer arithmetic:
//!
//! - [`ksmtuned`]: Red Hat's ksmtuned script;
//! - [`mom`]: oVirt MoM's KSM policy (vdsm's 03-ksm.policy), a port of
//!   ksmtuned's rule;
//! - [`advisor`]: the kernel's scan-time advisor (`advisor_mode`).
//!
//! `policy::resolve` maps `host.ksm.policy` to a tuner.

pub mod advisor;
pub mod ksmtuned;
pub mod mom;

use crate::policy::ksm::Knobs;
use crate::units::Span;

/// ksmtuned's constants (Fedora qemu packaging, ksmtuned):
/// `KSM_NPAGES_BOOST=300`, `KSM_NPAGES_DECAY=-50`, `KSM_NPAGES_MIN=64`,
/// `KSM_NPAGES_MAX=1250`, `KSM_SLEEP_MSEC=10` ("millisecond sleep between
/// ksm scans for 16Gb server"), `KSM_THRES_COEF=20` (%),
/// `KSM_THRES_CONST=2048` (KiB). MoM's 03-ksm.policy uses the same
/// numbers (`ksm_pages_boost 300`, `ksm_pages_decay -50`, `ksm_npages_min
/// 64`, `ksm_npages_max 1250`, `ksm_sleep_ms_baseline 10`,
/// `ksm_free_percent 0.20`).
pub const NPAGES_BOOST: i64 = 300;
pub const NPAGES_DECAY: i64 = -50;
pub const NPAGES_MIN: i64 = 64;
pub const NPAGES_MAX: i64 = 1250;
pub const SLEEP_MSEC_16G: u64 = 10;
pub const THRES_COEF_PERCENT: u64 = 20;
pub const THRES_CONST_KIB: u64 = 2048;

/// What a tuner sees of the host at a look, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct HostView {
    /// MemTotal.
    pub total_bytes: u64,
    /// MemFree + Buffers + Cached: free memory (the model has no page
    /// cache).
    pub free_bytes: u64,
    /// Sum of the qemu processes' RSS (ksmtuned's `ps -o rsz`).
    pub qemu_rss_bytes: u64,
    /// Sum of their VSZ, about their guest RAM (MoM's `ksm_shareable`).
    pub qemu_vsz_bytes: u64,
}

/// Something that sets ksmd's knobs as the run goes on.
pub trait KsmTuner: std::fmt::Debug + Send {
    /// How often it looks at the host, when it does (ksmtuned, MoM).
    fn look_interval(&self) -> Option<Span> {
        None
    }
    /// A look at the host: set the knobs from its state. Returns why, in
    /// words, when a knob changed.
    fn look(&mut self, _knobs: &mut Knobs, _host: HostView) -> Option<String> {
        None
    }
    /// A full scan ended after `scan_ms`, ksmd having used `cpu_ms` of CPU
    /// meanwhile (the advisor's moment). Returns why, when a knob changed.
    fn after_full_scan(&mut self, _knobs: &mut Knobs, _scan_ms: u64, _cpu_ms: u64) -> Option<String> {
        None
    }
}

/// What ksmtuned and MoM each look at (in KiB); the rule that follows is
/// the same in both.
pub(crate) struct Look {
    pub who: &'static str,
    pub free: u64,
    pub thres: u64,
    pub committed: (&'static str, u64),
    /// The `npages` the boost or decay starts from.
    pub base: i64,
}

/// ksmtuned's rule (and MoM's port of it): stop KSM when there is room,
/// else set `pages_to_scan` to `base` boosted or decayed, and the sleep
/// by RAM. Returns why a knob changed, and the new `npages` if it was set.
pub(crate) fn ksmtuned_rule(knobs: &mut Knobs, total_kib: u64, l: Look) -> (Option<String>, Option<i64>) {
    let before = *knobs;
    let total = total_kib;
    let Look { who, free, thres, committed: (what, committed), base } = l;
    let (why, set) = if committed + thres < total && free > thres {
        knobs.run = false;
        (format!("{who} {free} KiB > threshold {thres} KiB and {what} {committed} KiB + threshold < RAM: stop"), None)
    } else {
        // sleep=$[KSM_SLEEP_MSEC * 16 * 1024 * 1024 / total], at least 10
        // (MoM: (max 10 (/ (* ksm_sleep_ms_baseline 16777216) mem_available))).
        let sleep = (SLEEP_MSEC_16G * 16 * 1024 * 1024 / total.max(1)).max(10);
        let (delta, verb) = if free < thres { (NPAGES_BOOST, "boost") } else { (NPAGES_DECAY, "decay") };
        let npages = (base + delta).clamp(NPAGES_MIN, NPAGES_MAX);
        knobs.pages_to_scan = npages as u32;
        knobs.sleep_millisecs = sleep as u32;
        knobs.run = true;
        (format!("{who} {free} KiB vs threshold {thres} KiB: {verb}"), Some(npages))
    };
    ((*knobs != before).then_some(why), set)
}
