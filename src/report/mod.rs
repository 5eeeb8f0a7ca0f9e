//! Everything that turns results into something a person reads: tables,
//! JSON, CSV, and (later) plots and the HTML report.

pub mod check;
pub mod html;
pub mod plot;
pub mod run;
pub mod run_page;
pub mod sweep;
