//! `overcommit profile` and `overcommit import`: measure running guests,
//! and turn libvirt XML or this host as it runs into a scenario.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::common::{Failure, runtime, write_file_atomically};

/// The arguments of `profile`.
#[derive(Args)]
pub struct ProfileArgs {
    /// QEMU process IDs
    pub pids: Vec<u32>,
    /// Every running qemu-system-* process
    #[arg(long)]
    pub all_qemu: bool,
    /// libvirt domains (matched to their QEMU processes)
    #[arg(long, value_name = "DOMAIN", num_args = 1..)]
    pub libvirt: Vec<String>,
    /// The libvirt connection, for the balloon's size and the guest's free memory
    #[arg(long, value_name = "URI", default_value = "qemu:///system")]
    pub uri: String,
    /// How long to measure
    #[arg(long, default_value = "60s")]
    pub duration: String,
    /// The intervals of the working-set curve
    #[arg(long, default_value = "1s,2s,5s,10s,30s")]
    pub intervals: String,
    /// Share of pages read for content and writes (a power of two such as 1/64, or 1)
    #[arg(long, default_value = "1/64")]
    pub sample: String,
    /// Seed of the sample's choice of pages
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the VMM registered guest RAM with userfaultfd for async write protection, count
    /// writes with PAGEMAP_SCAN; re-protecting the pages each pass erases the VMM's own record
    /// of written pages (a snapshot or migration it runs would miss them) and splits huge mappings
    #[arg(long)]
    pub pagemap_scan: bool,
    /// Write here: FILE.json the whole profile, any other name the workloads as YAML (default: YAML on standard output)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum ImportFrom {
    /// Read libvirt domain XML (files, directories of them, or - for standard input) into a scenario
    #[command(after_help = "Examples:\n  \
overcommit import libvirt /etc/libvirt/qemu/ --out mine.yaml\n  \
virsh dumpxml web1 | overcommit import libvirt -\n  \
overcommit import libvirt web1.xml web2.xml --host my-host.yaml\n\n\
Domains with the same memory configuration and image become one guest group (named after the \
first, every domain's name kept in `names:`). The host: section is this machine's (as `overcommit \
host --scenario` writes it) unless --host gives one. What the model cannot represent is a warning \
on standard error naming the element and its line:column, and a comment in the scenario. The \
workload is not in the XML: each group gets a placeholder that says so.")]
    Libvirt {
        /// Domain XML files, directories of *.xml files, or - (standard input)
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Take the host: section from this file (a scenario, or what `overcommit host --scenario` wrote)
        #[arg(long, value_name = "FILE")]
        host: Option<PathBuf>,
        /// Write the scenario here (default: standard output)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Read the QEMU guests running on this host (through libvirt where it runs them) into a scenario
    #[command(after_help = "Examples:\n  \
overcommit import live --out live.yaml\n  \
overcommit import live --libvirt qemu:///system --out live.yaml\n  \
overcommit import live --profile 60s --out live.yaml   # workloads measured, ready for plan\n  \
overcommit run live.yaml\n\n\
Every qemu-system-* process is read through its command line, or, for a running libvirt domain, \
through `virsh dumpxml`. Each guest's state now (resident and swapped memory, transparent huge \
pages, KSM-merged pages, the balloon from `virsh dommemstat`) goes into an `observed:` list, and \
a run starts from it instead of an empty host. Reading other users' processes needs root.")]
    Live {
        /// The libvirt connection URI (default: qemu:///system when it answers, else no libvirt; none: never)
        #[arg(long, value_name = "URI")]
        libvirt: Option<String>,
        /// Take the host: section from this file instead of this machine
        #[arg(long, value_name = "FILE")]
        host: Option<PathBuf>,
        /// Write the scenario here (default: standard output)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Profile the guests this long first (see `overcommit profile`) and write the workloads it fits
        #[arg(long, value_name = "DURATION")]
        profile: Option<String>,
        /// With --profile: the working-set intervals
        #[arg(long, default_value = "1s,2s,5s,10s,30s")]
        intervals: String,
        /// With --profile: the share of pages read
        #[arg(long, default_value = "1/64")]
        sample: String,
    },
}

pub fn profile(args: ProfileArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let ProfileArgs { pids, all_qemu, libvirt, uri, duration, intervals, sample, seed, pagemap_scan, out: dest } = args;
    let opts = overcommit::profile::Options { pagemap_scan, ..profile_options(&duration, &intervals, &sample, seed)? };
    let root = PathBuf::from("/");
    let targets = overcommit::profile::targets(&root, &pids, all_qemu, &libvirt, &uri)
        .map_err(|e| Failure::bad_input(format!("error: {e}")))?;
    let report = overcommit::profile::profile(&targets, &opts).map_err(|e| runtime(format!("error: {e}")))?;
    for s in &report.skipped {
        eprintln!("warning: skipped {s}");
    }
    eprintln!(
        "profiled {} guest{} with {} and {}: {:.2} s of CPU over {:.0} s ({:.1}% of one core)",
        report.guests.len(),
        if report.guests.len() == 1 { "" } else { "s" },
        report.mechanism.label(),
        report.writes.label(),
        report.cost.cpu_s,
        report.cost.wall_s,
        100.0 * report.cost.share_of_one_core
    );
    let yaml = overcommit::profile::write::guests_yaml(&report);
    match dest {
        Some(path) => {
            let json = path.extension().is_some_and(|e| e == "json");
            let bytes = if json {
                serde_json::to_vec_pretty(&report).map_err(|e| runtime(e.to_string()))?
            } else {
                yaml.into_bytes()
            };
            write_file_atomically(&path, bytes)?;
            eprintln!("wrote {}", path.display());
        }
        None => write!(out, "{yaml}")?,
    }
    Ok(())
}

/// `--duration`, `--intervals` and `--sample` of `profile` (and of
/// `import live --profile`).
pub fn profile_options(
    duration: &str,
    intervals: &str,
    sample: &str,
    seed: u64,
) -> Result<overcommit::profile::Options, Failure> {
    use overcommit::units::Span;
    let bad = |what: &str, v: &str, e: String| Failure::bad_input(format!("error: {what} {v:?}: {e}"));
    let duration = Span::parse(duration).map_err(|e| bad("--duration", duration, e.to_string()))?;
    let mut list = Vec::new();
    for part in intervals.split(',') {
        let s = Span::parse(part.trim()).map_err(|e| bad("--intervals", part, e.to_string()))?;
        if s.nanos() == 0 {
            return Err(bad("--intervals", part, "an interval must be longer than 0".into()));
        }
        list.push(std::time::Duration::from_nanos(s.nanos()));
    }
    let longest = list.iter().max().copied().unwrap_or_default();
    if std::time::Duration::from_nanos(duration.nanos()) < longest {
        return Err(bad(
            "--duration",
            &duration.to_string(),
            format!("shorter than the longest interval ({longest:?})"),
        ));
    }
    let rate = match sample.split_once('/') {
        Some((a, b)) => a.trim().parse::<f64>().ok().zip(b.trim().parse::<f64>().ok()).map(|(a, b)| a / b),
        None => sample.trim().parse::<f64>().ok(),
    }
    .filter(|r| *r > 0.0 && *r <= 1.0)
    .ok_or_else(|| bad("--sample", sample, "not a share in (0, 1], such as 1/64".into()))?;
    Ok(overcommit::profile::Options {
        duration: std::time::Duration::from_nanos(duration.nanos()),
        intervals: list,
        sample: rate,
        seed,
        root: PathBuf::from("/"),
        pagemap_scan: false,
    })
}

/// `overcommit import libvirt|live`: the scenario to standard output or,
/// written whole under a temporary name and renamed, to `--out`; warnings
/// to standard error.
pub fn import(from: ImportFrom, out: &mut dyn Write) -> Result<(), Failure> {
    use overcommit::import;
    let (outcome, dest) = match from {
        ImportFrom::Libvirt { paths, host, out: dest } => {
            let outcome = import::import_libvirt(&paths, &mut std::io::stdin().lock(), host.as_deref())
                .map_err(|e| Failure::bad_input(format!("error: {e}")))?;
            (outcome, dest)
        }
        ImportFrom::Live { libvirt, host, out: dest, profile, intervals, sample } => {
            let profile = match profile {
                Some(d) => Some(profile_options(&d, &intervals, &sample, 1)?),
                None => None,
            };
            let use_libvirt = match libvirt.as_deref() {
                Some("none") => import::live::LibvirtUse::Off,
                Some(uri) => import::live::LibvirtUse::Uri(uri.to_string()),
                None => import::live::LibvirtUse::Auto,
            };
            let outcome = import::live::import_live(
                &import::live::system_root(),
                &use_libvirt,
                host.as_deref(),
                profile.as_ref(),
            )
            .map_err(|e| runtime(format!("error: {e}")))?;
            (outcome, dest)
        }
    };
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    match dest {
        Some(path) => {
            write_file_atomically(&path, outcome.yaml.into_bytes())?;
            eprintln!(
                "imported {} guest{} in {} group{}: wrote {}",
                outcome.guests,
                if outcome.guests == 1 { "" } else { "s" },
                outcome.groups,
                if outcome.groups == 1 { "" } else { "s" },
                path.display()
            );
        }
        None => write!(out, "{}", outcome.yaml)?,
    }
    Ok(())
}
