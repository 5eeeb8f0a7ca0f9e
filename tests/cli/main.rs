//! Integration tests: each module is a topic, and every test runs the real
//! `overcommit` binary or the library's public face.

mod browser;
mod calibrate;
mod check;
mod cli_help;
mod fleet;
mod harness;
mod host;
mod import;
mod learn;
mod no_panic;
mod plan;
mod profile;
mod report;
mod run;
mod sweep;
