//! `cargo xtask bench <name>`: benchmarks that measure lambda-stage against a baseline in the
//! same run and report ratios. Each benchmark lives in its own module.

use std::process::ExitCode;

use clap::{Args as ClapArgs, ValueEnum};

mod build;
mod coldstart;
mod emulator;
mod secrets;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Which benchmark to run.
    pub name: Benchmark,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Benchmark {
    /// `cargo xtask build` vs `cargo lambda build`: clean, no-change and touched rebuilds, zip sizes.
    Build,
    /// hello vs `cargo lambda new`'s template and a bare lambda_runtime function: exec to first
    /// `/next`, binary size.
    Coldstart,
    /// Invoke round trip and throughput of `serve` vs cargo-lambda's `watch`, 1 and 8 clients.
    Emulator,
    /// Init time added by resolving 1 and 20 secret references, batched vs one call each.
    Secrets,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.name {
        Benchmark::Build => build::run()?,
        Benchmark::Coldstart => coldstart::run()?,
        Benchmark::Emulator => emulator::run()?,
        Benchmark::Secrets => secrets::run()?,
    }
    Ok(ExitCode::SUCCESS)
}
