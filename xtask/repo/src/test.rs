//! `cargo xtask test`: the whole test suite on a fresh machine — installs what the tests need
//! ([`crate::setup`]), then runs every test. `.ci/run` calls exactly this, so CI proves what the
//! README promises.
//!
//! `--quick` is the inner loop: unit tests, doc tests and the emulator tests, nothing that needs
//! moto, a cross build or an install. Every step passes `--workspace`, as the full run does, so
//! cargo resolves the same features and reuses the same builds.

use std::process::{Command, ExitCode};

use anyhow::Context as _;
use clap::Args as ClapArgs;
use lambda_stage_xtask::workspace;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Only unit tests, doc tests and the emulator tests: no installs, no moto, no cross builds.
    #[arg(long)]
    pub quick: bool,
    /// Skip installing tools (when you know they are there).
    #[arg(long, conflicts_with = "quick")]
    pub no_setup: bool,
    /// Extra arguments for `cargo test` (e.g. `-- --test-threads 1`).
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

/// The integration-test modules the quick tier runs: the local emulator, end to end.
const QUICK_INTEGRATION_FILTER: &str = "emulator_";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = workspace::root()?;
    let steps: Vec<Vec<&str>> = if args.quick {
        vec![
            vec!["--lib", "--bins"],
            vec!["--doc"],
            vec!["--test", "it", QUICK_INTEGRATION_FILTER],
        ]
    } else {
        if !args.no_setup {
            crate::setup::for_tests(&root).context("could not install what the tests need")?;
        }
        vec![vec![]]
    };
    for step in steps {
        let status = Command::new(workspace::cargo())
            .current_dir(&root)
            .args(["test", "--workspace"])
            .args(step)
            .args(&args.cargo_args)
            .status()
            .context("could not run cargo test")?;
        if !status.success() {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
