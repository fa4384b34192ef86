//! The logic behind `cargo xtask`: build, invoke, serve, deploy and friends.
//!
//! A workspace adopts it with a three-line `xtask/src/main.rs`:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     lambda_stage_xtask::main()
//! }
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod arch;
pub mod bench;
pub mod manifest;
pub mod tools;
pub mod workspace;

/// `cargo xtask`: build, run and deploy the workspace's Lambda functions.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a benchmark against its baseline and print ratios.
    Bench(bench::Args),
}

/// Parses the command line, runs the command and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Bench(args) => bench::run(args),
    }
}
