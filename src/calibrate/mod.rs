//! Everything that looks at the real machine: host inspection (`host`),
//! timing its memory (`measure`, driven by `run` for `overcommit
//! calibrate`) and ksmd's cost (`ksm`). The only module allowed unsafe
//! code, and Linux only apart from `host`.

pub mod host;
#[cfg(target_os = "linux")]
pub mod ksm;
#[cfg(target_os = "linux")]
pub mod measure;
#[cfg(target_os = "linux")]
pub mod restore;
#[cfg(target_os = "linux")]
mod run;
#[cfg(target_os = "linux")]
pub mod swap;
#[cfg(target_os = "linux")]
pub use run::{Calibration, Figure, Options, calibrate, size_allowed};
