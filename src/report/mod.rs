//! Everything that turns results into something a person reads: tables,
//! JSON, CSV, and (later) plots and the HTML report.

pub mod check;
pub mod run;
pub mod sweep;
