//! `lifeboat`: parse the command line, run, exit with the contract's code.

use std::process::ExitCode;

use clap::Parser;
use nixos_lifeboat::{app, cli::Cli, exit};

fn main() -> ExitCode {
    let code = app::run(Cli::parse());
    ExitCode::from(u8::try_from(code).unwrap_or(exit::FAILED as u8))
}
