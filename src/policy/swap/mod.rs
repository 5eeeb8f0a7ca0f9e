//! Swap backends: where reclaimed pages go and what bringing them back
//! costs. Each backend is one file with its knobs (their defaults and
//! checks) and its behaviour, and implements
//! [`crate::model::swap::SwapBackend`]:
//!
//! - [`device`]: a block device (nvme, ssd, hdd presets, or figures of
//!   one's own);
//! - [`zram`]: compressed pages kept in host RAM;
//! - [`zswap`]: the kernel's compressed cache in front of a block device.
//!
//! The scenario's `host.swap:` section names one (`device:`) and may adjust
//! its figures; `policy::resolve` reads it and builds the backend a run
//! uses.

pub mod device;
pub mod zram;
pub mod zswap;
