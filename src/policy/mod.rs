//! How the host reclaims and shares memory, the way Linux and KVM do it.
//! Each mechanism is one file and sees the model through [`Memory`]:
//!
//! - [`reclaim`]: kswapd and direct reclaim, a CLOCK (second-chance) scan
//!   of resident pages between the kernel's watermarks;
//! - [`oom`]: the OOM killer's choice of victim;
//! - [`hugepages`]: the hugetlb pool's rules;
//! - [`ksm`]: ksmd merging identical pages, and copy-on-write breaks;
//! - [`khugepaged`]: which split 2 MiB ranges khugepaged collapses back
//!   into huge pages (the engine's `khugepaged.rs` plays its wake-ups).
//!
//! Where a host has a choice, each choice is one file behind a trait, with
//! its knobs (their decoding, defaults and checks), its behaviour and its
//! tests, and [`resolve`] maps the scenario's choice to it:
//!
//! - [`swap`]: where reclaimed pages go (a block device, zram), behind
//!   [`crate::model::swap::SwapBackend`];
//! - [`balloon`]: how much each guest's virtio balloon takes (MoM,
//!   Proxmox), behind [`balloon::BalloonController`];
//! - [`ksmtune`]: what sets KSM's knobs (ksmtuned, MoM, the kernel's
//!   advisor), behind [`ksmtune::KsmTuner`].
//!
//! [`Memory`]: crate::model::Memory

pub mod balloon;
pub mod hugepages;
pub mod khugepaged;
pub mod ksm;
pub mod ksmtune;
pub mod oom;
pub mod reclaim;
pub mod resolve;
pub mod swap;

use std::collections::VecDeque;

/// MoM averages its statistics over the last 10 samples
/// (`sample-history-length`), in its balloon and its KSM policy alike.
pub const MOM_HISTORY: usize = 10;

/// Keep the last [`MOM_HISTORY`] values.
pub fn push_capped<T>(q: &mut VecDeque<T>, v: T) {
    q.push_back(v);
    if q.len() > MOM_HISTORY {
        q.pop_front();
    }
}

/// The mean of a sample history (0 when empty).
pub fn mean(q: &VecDeque<u64>) -> f64 {
    if q.is_empty() { 0.0 } else { q.iter().map(|&v| v as f64).sum::<f64>() / q.len() as f64 }
}
