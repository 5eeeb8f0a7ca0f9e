//! Scenario files: YAML in, a validated [`Scenario`] out.

pub mod qemu;
pub mod schema;

pub use schema::*;
