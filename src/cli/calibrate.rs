//! `overcommit calibrate` and the child process of its swap test.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::common::{Failure, runtime};

/// The arguments of `calibrate`.
#[derive(Args)]
pub struct CalibrateArgs {
    /// Where to write the calibration (default: output/calibration.yaml, or .json with --json)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Bytes per test mapping (at most half of MemAvailable)
    #[arg(long, default_value = "1G")]
    pub size: String,
    /// Counted repeats of each measurement
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Smaller mappings and fewer repeats (256 MiB, 3)
    #[arg(long)]
    pub quick: bool,
    /// Write JSON instead of YAML (the same content)
    #[arg(long)]
    pub json: bool,
    /// Also time ksmd's CPU per page searched, per page only checksummed and per page smart scan skips, and its wake-up delay (needs root; KSM knobs are put back)
    #[arg(long)]
    pub ksm: bool,
    /// Also time swap-ins on the active swap device (needs root and a memory cgroup)
    #[arg(long)]
    pub swap: bool,
    /// As root, grow the hugetlb pools (vm.nr_hugepages and the 1 GiB pool) for the
    /// hugetlb tests; their sizes are put back after, also on error, Ctrl-C or SIGTERM
    #[arg(long)]
    pub reserve_hugepages: bool,
}

/// The arguments of the swap child.
#[derive(Args)]
pub struct SwapChildArgs {
    #[arg(long)]
    pub bytes: u64,
}
/// `calibrate` (Linux only).
#[cfg(target_os = "linux")]
pub fn calibrate(args: CalibrateArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let CalibrateArgs { out: file, size, repeats, quick, json, ksm, swap, reserve_hugepages } = args;
    let bad = |message: String| Failure::bad_input(format!("error: {message}"));
    let mut o = if quick { overcommit::calibrate::Options::quick() } else { overcommit::calibrate::Options::default() };
    if !quick || size != "1G" {
        o.size = overcommit::units::ByteSize::parse(&size).map_err(|e| bad(format!("--size {size:?}: {e}")))?.bytes();
    }
    if o.size < 4 << 20 {
        return Err(bad(format!("--size {size:?}: at least 4M, so the mappings hold huge pages")));
    }
    overcommit::calibrate::size_allowed(o.size).map_err(bad)?;
    if let Some(r) = repeats {
        if r == 0 {
            return Err(bad("--repeats 0: at least one repeat".into()));
        }
        o.repeats = r;
    }
    o.ksm = ksm;
    o.reserve_hugepages = reserve_hugepages;
    o.swap = swap;
    if ksm || reserve_hugepages {
        overcommit::calibrate::restore::restore_on_signals().map_err(|e| runtime(format!("error: {e}")))?;
    }
    let cal = overcommit::calibrate::calibrate(&o).map_err(|e| runtime(format!("error: {e}")))?;
    let file =
        file.unwrap_or_else(|| PathBuf::from(if json { "output/calibration.json" } else { "output/calibration.yaml" }));
    let (dir, name) = (
        file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")),
        file.file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad(format!("--out {}: not a file name", file.display())))?,
    );
    let body = if json { cal.to_json() } else { cal.to_yaml() };
    overcommit::report::run::write_atomically(dir, &[(name, body.into_bytes())])?;
    write!(out, "{}", cal.render_text())?;
    writeln!(out, "\nwrote {}", file.display())?;
    Ok(())
}

/// The child process `calibrate --swap` times swap-ins in (Linux only).
#[cfg(target_os = "linux")]
pub fn swap_child(args: SwapChildArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let ns = overcommit::calibrate::swap::child(args.bytes).map_err(|e| runtime(format!("error: {e}")))?;
    writeln!(out, "{ns}")?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn calibrate(_: CalibrateArgs, _: &mut dyn Write) -> Result<(), Failure> {
    Err(not_linux())
}

#[cfg(not(target_os = "linux"))]
pub fn swap_child(_: SwapChildArgs, _: &mut dyn Write) -> Result<(), Failure> {
    Err(not_linux())
}

#[cfg(not(target_os = "linux"))]
fn not_linux() -> Failure {
    runtime("error: calibrate times Linux page faults, hugetlb pools and ksmd: it needs Linux".into())
}
