//! The command-line face of overcommit: parse the arguments, hand each
//! subcommand to its function in `cli`, print a failure with its exit code.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::common::{EXIT_BAD_INPUT, EXIT_RUNTIME, Failure};
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    match dispatch(cli.command, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let _ = writeln!(std::io::stderr(), "{}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn dispatch(command: Command, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        Command::Run(a) => cli::run::run(a, out),
        Command::Sweep(a) => cli::sweep::sweep(a, out),
        Command::Merge(a) => cli::sweep::merge(a, out),
        Command::Plan(a) => cli::plan::plan(a, out),
        Command::Fleet(a) => cli::fleet::fleet(a, out),
        Command::Learn(a) => cli::learn::learn(a, out),
        Command::Check(a) => cli::check::check(a, out),
        Command::Host(a) => cli::check::host(a, out),
        Command::Import(from) => cli::profile::import(from, out),
        Command::Profile(a) => cli::profile::profile(a, out),
        Command::Calibrate(a) => cli::calibrate::calibrate(a, out),
        Command::SwapChild(a) => cli::calibrate::swap_child(a, out),
        Command::TouchChild(spec) => overcommit::profile::child::run(&spec).map_err(|e| Failure {
            code: if e.kind() == std::io::ErrorKind::InvalidInput { EXIT_BAD_INPUT } else { EXIT_RUNTIME },
            message: format!("error: {e}"),
        }),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "overcommit", out);
            Ok(())
        }
        Command::Man => Ok(clap_mangen::Man::new(Cli::command()).render(out)?),
    }
}
