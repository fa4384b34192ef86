//! `cargo xtask bench <name>`: benchmarks that measure lambda-stage against a baseline in the
//! same run and report ratios. Each benchmark lives in its own module.

use std::process::ExitCode;

use clap::{Args as ClapArgs, ValueEnum};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Which benchmark to run.
    pub name: Benchmark,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Benchmark {}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.name {}
}
