//! overcommit: simulate and plan memory overcommit on KVM hosts.
//!
//! Data flows one way: a [`scenario`] is loaded and validated, the
//! [`engine`] plays it forward over the [`model`] (calling [`policy`] and
//! [`latency`]), and results flow through a sink to the [`report`] writers.
//! [`plan`] plays many runs at once: sweeps and the capacity search;
//! [`fleet`] places guests on many hosts and plans each with them.
//! The library never prints; the binary in `main.rs` is a thin command-line
//! face over it.

pub mod calibrate;
pub mod engine;
pub mod fleet;
pub mod import;
pub mod input;
pub mod latency;
pub mod learn;
pub mod model;
pub mod plan;
pub mod policy;
pub mod profile;
pub mod report;
pub mod running;
pub mod scenario;
pub mod units;
