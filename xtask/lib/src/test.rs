//! `cargo xtask test`: the whole test suite on a fresh machine — installs what the tests need
//! (Rust targets, the project venv with moto and Zig, qemu-user), then runs every test.
//! `.ci/run` calls exactly this, so CI proves what the README promises.

use std::process::{Command, ExitCode};

use anyhow::Context as _;
use clap::Args as ClapArgs;

use crate::{tools, workspace};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Skip installing tools (when you know they are there).
    #[arg(long)]
    pub no_setup: bool,
    /// Extra arguments for `cargo test` (e.g. `-- --test-threads 1`).
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = workspace::root()?;
    if !args.no_setup {
        tools::setup_for_tests(&root).context("could not install what the tests need")?;
    }
    let status = Command::new(workspace::cargo())
        .current_dir(&root)
        .args(["test", "--workspace"])
        .args(&args.cargo_args)
        .status()
        .context("could not run cargo test")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
