//! overcommit: simulate and plan memory overcommit on KVM hosts.
//!
//! Data flows one way: a [`scenario`] is loaded and validated, the model and
//! engine play it forward, and results flow to report writers. The library
//! never prints; the binary in `main.rs` is a thin command-line face over it.

pub mod calibrate;
pub mod report;
pub mod scenario;
pub mod units;
