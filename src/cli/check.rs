//! `overcommit check` and `overcommit host`: a scenario validated and
//! summed up, and this machine as a KVM tuning guide checks it.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use overcommit::scenario::{self, Override};

use super::common::{Failure, runtime};

/// The arguments of `check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The scenario file (YAML)
    pub file: PathBuf,
    /// Override a value before checking: a dotted path and a YAML value
    /// (e.g. host.ksm.run=true, guests.web.count=12)
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<Override>,
    /// Print the validated scenario as JSON instead of the summary
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `host`.
#[derive(Args)]
pub struct HostArgs {
    /// Print a stable JSON object instead of the text report
    #[arg(long, conflicts_with = "scenario")]
    pub json: bool,
    /// Print a `host:` section for a scenario, built from this machine
    #[arg(long)]
    pub scenario: bool,
}

pub fn check(args: CheckArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let CheckArgs { file, set, json } = args;
    let loaded = scenario::load_with(&file, &set).map_err(|e| Failure::bad_input(e.to_string()))?;
    for w in &loaded.warnings {
        let _ = writeln!(std::io::stderr(), "{w}");
    }
    if json {
        let text = serde_json::to_string_pretty(&loaded.scenario).map_err(|e| runtime(e.to_string()))?;
        writeln!(out, "{text}")?;
    } else {
        write!(out, "{}", overcommit::report::check::summary(&loaded.scenario))?;
    }
    Ok(())
}

pub fn host(args: HostArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let report = overcommit::calibrate::host::inspect();
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| runtime(e.to_string()))?;
        writeln!(out, "{text}")?;
    } else if args.scenario {
        write!(out, "{}", report.scenario_host_yaml())?;
    } else {
        write!(out, "{}", report.render_text())?;
    }
    Ok(())
}
