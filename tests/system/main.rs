//! System tests: measurements on the real machine that change its state
//! (KSM knobs, hugepage pools, a libvirtd and its guests). They live in
//! this one test binary and each takes [`LOCK`] first, so no two of them
//! ever run at once; each puts back what it changed, and skips with a
//! message where it cannot run (not root, no KSM, not Linux, no libvirt).

mod calibrate;
mod ksm;
#[cfg(target_os = "linux")]
mod ksm_swap;
mod ksm_thp;

#[cfg(target_os = "linux")]
mod command;
#[cfg(target_os = "linux")]
mod guest_kit;
mod import_live;
#[cfg(target_os = "linux")]
mod kernel_reclaim;
#[cfg(target_os = "linux")]
mod kernel_scan;
#[cfg(target_os = "linux")]
mod kernel_zswap;
#[cfg(target_os = "linux")]
mod khugepaged;
#[cfg(target_os = "linux")]
mod ksm_guard;
#[cfg(target_os = "linux")]
mod libvirt_env;
#[cfg(target_os = "linux")]
mod memwork;
#[cfg(target_os = "linux")]
mod mirror;
mod profile_guests;
#[cfg(target_os = "linux")]
mod real_guests;
#[cfg(target_os = "linux")]
mod slurm;
#[cfg(target_os = "linux")]
mod work_guests;

/// Held by every test here for its whole run.
pub static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
