//! The `routeproof` command line: `explain`, `check` (and the data-path commands).
//!
//! This is the only place that uses `anyhow`: library errors are typed.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("routeproof: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
