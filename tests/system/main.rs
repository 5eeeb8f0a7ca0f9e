//! System tests: measurements on the real machine that change its state
//! (KSM knobs, hugepage pools). They live in this one test binary and each
//! takes [`LOCK`] first, so no two of them ever run at once; each puts back
//! what it changed, and skips with a message where it cannot run (not
//! root, no KSM, not Linux).

mod calibrate;
mod ksm;

/// Held by every test here for its whole run.
pub static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
