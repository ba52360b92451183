//! The `fluxroute` binary: parse the command line, run it, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = fluxroute::cli::Cli::parse();
    match fluxroute::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
