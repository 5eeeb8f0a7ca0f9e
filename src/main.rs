//! The command-line face of overcommit: parse arguments, call the library,
//! print. No logic lives here.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use overcommit::scenario::{self, Override};

/// Exit codes: 0 success, 1 runtime failure, 2 bad input or usage.
const EXIT_RUNTIME: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "overcommit",
    version,
    about = "Simulate and plan memory overcommit on KVM hosts: swap, virtio-balloon, KSM and huge pages",
    long_about = "overcommit answers \"how many guests can this KVM host hold, and what will it cost them in \
latency?\". A scenario (YAML) describes a host and groups of guests; overcommit checks it, plays it \
forward, and reports density against latency.",
    after_help = "Examples:\n  \
overcommit run scenarios/quickstart.yaml\n  \
overcommit check scenarios/quickstart.yaml\n  \
overcommit check scenarios/quickstart.yaml --set guests.web.count=12\n  \
overcommit host\n  \
overcommit host --scenario > my-host.yaml\n  \
overcommit completions bash > /etc/bash_completion.d/overcommit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play a scenario forward and report memory, faults and latency per guest
    #[command(after_help = "Examples:\n  \
overcommit run scenarios/quickstart.yaml\n  \
overcommit run scenarios/quickstart.yaml --seed 7 --out /tmp/qs\n  \
overcommit run scenarios/quickstart.yaml --set host.swap.device=hdd --set duration=2m\n\n\
Writes summary.json, timeseries.csv and events.csv to --out (default output/<scenario name>/).")]
    Run {
        /// The scenario file (YAML)
        file: PathBuf,
        /// Where to write the results (default: output/<scenario name>/)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Override the scenario's seed
        #[arg(long)]
        seed: Option<u64>,
        /// Override a value: a dotted path and a YAML value
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<Override>,
        /// A calibration file whose measured costs replace the defaults
        #[arg(long, value_name = "FILE")]
        calibration: Option<PathBuf>,
        /// Share of pages to simulate: 1 (page-exact), a power of two such as
        /// 1/64, or auto (page-exact unless the guests are large)
        #[arg(long, value_name = "RATE", default_value = "auto")]
        sample_rate: String,
        /// No progress bar and no table
        #[arg(long, short)]
        quiet: bool,
    },
    /// Validate a scenario and print a one-screen summary (or its errors)
    #[command(after_help = "Examples:\n  \
overcommit check scenarios/quickstart.yaml\n  \
overcommit check scenarios/quickstart.yaml --set host.ram=32G --set guests.web.count=16\n\n\
Exit status: 0 when the scenario is valid (warnings allowed), 2 when it has errors.")]
    Check {
        /// The scenario file (YAML)
        file: PathBuf,
        /// Override a value before checking: a dotted path and a YAML value
        /// (e.g. host.ksm.run=true, guests.web.count=12)
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<Override>,
        /// Print the validated scenario as JSON instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// Report this machine's virtualisation and memory features, and what they mean for overcommit
    #[command(after_help = "Examples:\n  \
overcommit host\n  \
overcommit host --json | jq .meminfo\n  \
overcommit host --scenario > host.yaml   # a host: section to start a scenario from")]
    Host {
        /// Print a stable JSON object instead of the text report
        #[arg(long, conflicts_with = "scenario")]
        json: bool,
        /// Print a `host:` section for a scenario, built from this machine
        #[arg(long)]
        scenario: bool,
    },
    /// Measure this machine's page-fault, zeroing, memory-latency and copy costs, and write a calibration file
    #[command(after_help = "Examples:\n  \
overcommit calibrate --quick\n  \
overcommit calibrate --size 2G --repeats 9 --out host.yaml\n  \
sudo overcommit calibrate --reserve-hugepages --ksm --swap   # hugetlb pools, ksmd and swap-in too\n  \
overcommit run scenarios/quickstart.yaml --calibration output/calibration.yaml\n\n\
Each figure is the median (with min and max) of --repeats repeats after one warm-up; faults are \
timed on fresh mappings, touched one byte per page (once per huge page). Settings changed for a \
test are put back, also on Ctrl-C. Linux only.")]
    Calibrate {
        /// Where to write the calibration (default: output/calibration.yaml, or .json with --json)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Bytes per test mapping (at most half of MemAvailable)
        #[arg(long, default_value = "1G")]
        size: String,
        /// Counted repeats of each measurement
        #[arg(long)]
        repeats: Option<usize>,
        /// Smaller mappings and fewer repeats (256 MiB, 3)
        #[arg(long)]
        quick: bool,
        /// Write JSON instead of YAML (the same content)
        #[arg(long)]
        json: bool,
        /// Also time ksmd's CPU per scanned page (needs root; KSM knobs are put back)
        #[arg(long)]
        ksm: bool,
        /// Also time swap-ins on the active swap device (needs root and a memory cgroup)
        #[arg(long)]
        swap: bool,
        /// As root, grow the hugetlb pools (vm.nr_hugepages and the 1 GiB pool) for the
        /// hugetlb tests; their sizes are put back after, also on error, Ctrl-C or SIGTERM
        #[arg(long)]
        reserve_hugepages: bool,
    },
    /// The child process of `calibrate --swap` (internal)
    #[command(hide = true)]
    SwapChild {
        #[arg(long)]
        bytes: u64,
    },
    /// Print a shell completion script
    #[command(after_help = "Examples:\n  \
overcommit completions bash > ~/.local/share/bash-completion/completions/overcommit\n  \
overcommit completions zsh > ~/.zfunc/_overcommit\n  \
overcommit completions fish > ~/.config/fish/completions/overcommit.fish")]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout
    #[command(after_help = "Example:\n  overcommit man | man -l -")]
    Man,
}

/// An error with the exit code it deserves.
struct Failure {
    code: u8,
    message: String,
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure { code: EXIT_RUNTIME, message: format!("error: {e}") }
    }
}

/// `auto`, `1`, `1/64` or `0.015625`: 1 or a power of two down to 1/512.
fn parse_sample_rate(text: &str) -> Result<Option<f64>, Failure> {
    let bad = || Failure {
        code: EXIT_BAD_INPUT,
        message: format!(
            "error: --sample-rate {text:?}: expected auto, 1, or a power of two such as 1/64 (down to 1/512)"
        ),
    };
    let t = text.trim();
    if t == "auto" {
        return Ok(None);
    }
    let v = match t.split_once('/') {
        Some((a, b)) => a.trim().parse::<f64>().map_err(|_| bad())? / b.trim().parse::<f64>().map_err(|_| bad())?,
        None => t.parse::<f64>().map_err(|_| bad())?,
    };
    if (0..=9).any(|k| v == 1.0 / f64::from(1u32 << k)) { Ok(Some(v)) } else { Err(bad()) }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let _ = writeln!(std::io::stderr(), "{}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Run { file, out: out_dir, seed, set, calibration, sample_rate, quiet } => {
            let loaded = scenario::load_with(&file, &set)
                .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: e.to_string() })?;
            for w in &loaded.warnings {
                let _ = writeln!(std::io::stderr(), "{w}");
            }
            let s = &loaded.scenario;
            // --calibration wins over the scenario's `calibration:`, which is
            // relative to the scenario file.
            let cal_path = calibration
                .or_else(|| s.calibration.as_ref().map(|c| file.parent().unwrap_or(std::path::Path::new(".")).join(c)));
            let costs = match &cal_path {
                Some(p) => overcommit::latency::calibration::load(p, Default::default())
                    .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: format!("error: {e}") })?,
                None => Default::default(),
            };
            let rate = parse_sample_rate(&sample_rate)?;
            for note in overcommit::engine::unmodelled(s) {
                let _ = writeln!(std::io::stderr(), "note: {note}");
            }
            let cfg = overcommit::engine::RunConfig {
                seed,
                sample_rate: rate,
                costs,
                calibration: cal_path.as_ref().map(|p| p.display().to_string()),
                ..Default::default()
            };
            let dir = out_dir.unwrap_or_else(|| PathBuf::from("output").join(&s.name));
            let mut record = overcommit::engine::Recorder::default();
            let started = std::time::Instant::now();
            let mut bar: Option<indicatif::ProgressBar> = None;
            let mut on_progress = |now: u64, end: u64| {
                if quiet || end == 0 {
                    return;
                }
                if bar.is_none() && started.elapsed().as_secs_f64() > 1.0 {
                    let b = indicatif::ProgressBar::new(1000);
                    b.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{spinner} simulating [{bar:40}] {percent}% (eta {eta})",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                    bar = Some(b);
                }
                if let Some(b) = &bar {
                    b.set_position(now * 1000 / end);
                }
            };
            let summary = {
                let mut sink =
                    overcommit::report::run::WithProgress { inner: &mut record, on_progress: &mut on_progress };
                overcommit::engine::run(s, cfg, &mut sink)
                    .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: format!("error: {e}") })?
            };
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            use overcommit::report::run as rr;
            let files = [
                ("summary.json", rr::summary_json(&summary)),
                ("timeseries.csv", rr::timeseries_csv(&record, &summary)),
                ("events.csv", rr::events_csv(&record)),
            ];
            rr::write_atomically(&dir, &files).map_err(|e| Failure {
                code: EXIT_RUNTIME,
                message: format!("error: writing {}: {e}", dir.display()),
            })?;
            if !quiet {
                write!(out, "{}", rr::table(&summary))?;
                writeln!(out, "\nwrote {}/{{summary.json,timeseries.csv,events.csv}}", dir.display())?;
            }
        }
        Command::Check { file, set, json } => {
            let loaded = scenario::load_with(&file, &set)
                .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: e.to_string() })?;
            for w in &loaded.warnings {
                let _ = writeln!(std::io::stderr(), "{w}");
            }
            if json {
                let text = serde_json::to_string_pretty(&loaded.scenario)
                    .map_err(|e| Failure { code: EXIT_RUNTIME, message: e.to_string() })?;
                writeln!(out, "{text}")?;
            } else {
                write!(out, "{}", overcommit::report::check::summary(&loaded.scenario))?;
            }
        }
        Command::Host { json, scenario } => {
            let report = overcommit::calibrate::host::inspect();
            if json {
                let text = serde_json::to_string_pretty(&report)
                    .map_err(|e| Failure { code: EXIT_RUNTIME, message: e.to_string() })?;
                writeln!(out, "{text}")?;
            } else if scenario {
                write!(out, "{}", report.scenario_host_yaml())?;
            } else {
                write!(out, "{}", report.render_text())?;
            }
        }
        #[cfg(target_os = "linux")]
        cmd @ (Command::SwapChild { .. } | Command::Calibrate { .. }) => calibrate(cmd, &mut out)?,
        #[cfg(not(target_os = "linux"))]
        Command::SwapChild { .. } | Command::Calibrate { .. } => {
            return Err(Failure {
                code: EXIT_RUNTIME,
                message: "error: calibrate times Linux page faults, hugetlb pools and ksmd: it needs Linux".into(),
            });
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "overcommit", &mut out);
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
        }
    }
    Ok(())
}

/// `calibrate` and its swap child (Linux only).
#[cfg(target_os = "linux")]
fn calibrate(cmd: Command, out: &mut dyn Write) -> Result<(), Failure> {
    match cmd {
        Command::SwapChild { bytes } => {
            let ns = overcommit::calibrate::swap::child(bytes)
                .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: {e}") })?;
            writeln!(out, "{ns}")?;
        }
        Command::Calibrate { out: file, size, repeats, quick, json, ksm, swap, reserve_hugepages } => {
            let bad = |message: String| Failure { code: EXIT_BAD_INPUT, message: format!("error: {message}") };
            let mut o =
                if quick { overcommit::calibrate::Options::quick() } else { overcommit::calibrate::Options::default() };
            if !quick || size != "1G" {
                o.size = overcommit::units::ByteSize::parse(&size)
                    .map_err(|e| bad(format!("--size {size:?}: {e}")))?
                    .bytes();
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
                overcommit::calibrate::restore::restore_on_signals()
                    .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: {e}") })?;
            }
            let cal = overcommit::calibrate::calibrate(&o)
                .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: {e}") })?;
            let file = file.unwrap_or_else(|| {
                PathBuf::from(if json { "output/calibration.json" } else { "output/calibration.yaml" })
            });
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
        }
        _ => unreachable!("only calibrate commands come here"),
    }
    Ok(())
}
