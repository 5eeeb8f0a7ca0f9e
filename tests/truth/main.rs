//! Truth tests: the engine against numbers that come from outside it —
//! closed forms, Che's approximation, the kernel's and QEMU's rules, and
//! the reference generator. Each module is a topic; every test says where
//! its expected number comes from.

mod balloon;
mod calibration;
mod conservation;
mod determinism;
mod events;
mod fleet;
mod ksm;
mod libvirt_pairs;
mod lruvecs;
mod operator;
mod sampled;
mod settled;
mod start_rules;
mod support;
mod swapcache;
mod uniform;
mod zipf_che;
