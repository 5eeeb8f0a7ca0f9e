//! Everything that looks at the real machine: host inspection (`host`),
//! ksmd's cost (`ksm`) and, later, fault-cost measurement. The only module
//! allowed unsafe code.

pub mod host;
#[cfg(target_os = "linux")]
pub mod ksm;
