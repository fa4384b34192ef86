//! This repository's own `cargo xtask`: every command of `lambda-stage-xtask` (what adopters
//! get), plus the tooling only this repository needs — `bench` and `test` with its installs.
//! Keeping them here keeps apt, moto and the benchmarks out of every adopter's workspace.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod bench;
pub mod setup;
pub mod test;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    about = "Build, run and deploy the workspace's Lambda functions; `bench` and `test` are this \
             repository's own."
)]
struct Cli {
    #[command(flatten)]
    globals: lambda_stage_xtask::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    App(Box<lambda_stage_xtask::Command>),
    /// Run a benchmark against its baseline and print ratios.
    Bench(bench::Args),
    /// Install what the tests need, then run the whole test suite (what CI runs).
    Test(test::Args),
}

/// Parses the command line, runs the command and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.globals.apply();
    lambda_stage_xtask::exit_code(match cli.command {
        Command::App(command) => match *command {
            lambda_stage_xtask::Command::Ci(args) => {
                lambda_stage_xtask::ci::run(args, setup::for_tests)
            }
            command => lambda_stage_xtask::run(command),
        },
        Command::Bench(args) => bench::run(args),
        Command::Test(args) => test::run(args),
    })
}
