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
        Failure {
            code: EXIT_RUNTIME,
            message: format!("error: {e}"),
        }
    }
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
        Command::Check { file, set, json } => {
            let loaded = scenario::load_with(&file, &set).map_err(|e| Failure {
                code: EXIT_BAD_INPUT,
                message: e.to_string(),
            })?;
            for w in &loaded.warnings {
                let _ = writeln!(std::io::stderr(), "{w}");
            }
            if json {
                let text = serde_json::to_string_pretty(&loaded.scenario).map_err(|e| Failure {
                    code: EXIT_RUNTIME,
                    message: e.to_string(),
                })?;
                writeln!(out, "{text}")?;
            } else {
                write!(
                    out,
                    "{}",
                    overcommit::report::check::summary(&loaded.scenario)
                )?;
            }
        }
        Command::Host { json, scenario } => {
            let report = overcommit::calibrate::host::inspect();
            if json {
                let text = serde_json::to_string_pretty(&report).map_err(|e| Failure {
                    code: EXIT_RUNTIME,
                    message: e.to_string(),
                })?;
                writeln!(out, "{text}")?;
            } else if scenario {
                write!(out, "{}", report.scenario_host_yaml())?;
            } else {
                write!(out, "{}", report.render_text())?;
            }
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
