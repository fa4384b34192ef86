//! `cargo xtask bench <name>`: benchmarks that measure lambda-stage against a baseline in the
//! same run and report ratios. Each benchmark lives in its own module.

use std::process::ExitCode;

use clap::{Args as ClapArgs, ValueEnum};

mod build;
mod coldstart;
mod deploy;
mod emulator;
mod moto;
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
    /// `cargo xtask deploy` of 1 and of 10 functions (first, unchanged, one variable changed), on
    /// moto and behind a proxy with AWS-like latency and update states.
    Deploy,
    /// Invoke round trip and throughput of `serve` vs cargo-lambda's `watch`, 1 and 8 clients.
    Emulator,
    /// Init time added by resolving 1 and 20 secret references, batched vs one call each.
    Secrets,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.name {
        Benchmark::Build => build::run()?,
        Benchmark::Coldstart => coldstart::run()?,
        Benchmark::Deploy => deploy::run()?,
        Benchmark::Emulator => emulator::run()?,
        Benchmark::Secrets => secrets::run()?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The middle value of `samples` (the upper middle of an even count): how every benchmark here
/// reports repeated measurements. Panics on no samples.
fn median(samples: impl IntoIterator<Item = f64>) -> f64 {
    let mut sorted: Vec<f64> = samples.into_iter().collect();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
