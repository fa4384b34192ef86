//! `cargo xtask bench coldstart`: what lambda-stage adds to a cold start.
//!
//! Compares `hello` (typed config, environment, logging) with two baselines in the same run:
//! `template-baseline` (what `cargo lambda new` generates: lambda_runtime with
//! `tracing::init_default_subscriber()`) and `bare-echo` (lambda_runtime alone, no logging).
//! Measured: time from exec to the first `GET /runtime/invocation/next` (the moment init is over
//! and Lambda could deliver an event), and the size of the stripped release binaries.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use lambda_stage_xtask::workspace;

/// Cold starts measured per function, interleaved so drift hits every function alike.
const ROUNDS: usize = 200;

/// One measured function: its package, the variables it starts with, its label.
struct Subject {
    package: &'static str,
    vars: &'static [(&'static str, &'static str)],
    label: &'static str,
}

const SUBJECTS: [Subject; 3] = [
    Subject {
        package: "hello",
        vars: &[
            ("LAMBDA_STAGE_ENV", "bench"),
            ("APP_GREETING", "Hello"),
            ("APP_API_KEY", "bench-key"),
        ],
        label: "hello (lambda-stage)",
    },
    Subject {
        package: "template-baseline",
        vars: &[],
        label: "template-baseline (cargo lambda new)",
    },
    Subject {
        package: "bare-echo",
        vars: &[],
        label: "bare-echo (lambda_runtime alone)",
    },
];

pub fn run() -> anyhow::Result<()> {
    let root = workspace::root()?;
    let binaries = SUBJECTS
        .iter()
        .map(|subject| build_release(&root, subject.package))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let mut times = vec![Vec::with_capacity(ROUNDS); SUBJECTS.len()];
    for _ in 0..ROUNDS {
        for ((subject, binary), samples) in SUBJECTS.iter().zip(&binaries).zip(&mut times) {
            samples.push(time_to_first_next(binary, subject.vars)?);
        }
    }
    println!("exec -> first /next, {ROUNDS} interleaved cold starts each (release, host target)");
    let mut p50s = Vec::with_capacity(SUBJECTS.len());
    for (subject, samples) in SUBJECTS.iter().zip(&mut times) {
        let (p50, p90) = percentiles(samples);
        println!(
            "  {:<38} p50 {p50:>8.3} ms  p90 {p90:>8.3} ms",
            subject.label
        );
        p50s.push(p50);
    }
    let sizes = binaries
        .iter()
        .map(|binary| Ok(std::fs::metadata(binary)?.len()))
        .collect::<anyhow::Result<Vec<u64>>>()?;
    println!(
        "  hello / template-baseline p50 {:.3}  (target <= 1.0)",
        p50s[0] / p50s[1]
    );
    println!("  hello / bare-echo p50 {:.3}", p50s[0] / p50s[2]);
    println!("stripped release binary size");
    for (subject, size) in SUBJECTS.iter().zip(&sizes) {
        println!("  {:<38} {size} B", subject.label);
    }
    println!(
        "  hello / template-baseline {:.3}  (target <= 1.0)",
        sizes[0] as f64 / sizes[1] as f64
    );
    println!(
        "  hello / bare-echo {:.3}",
        sizes[0] as f64 / sizes[2] as f64
    );
    Ok(())
}

fn build_release(root: &Path, package: &str) -> anyhow::Result<PathBuf> {
    let status = Command::new(workspace::cargo())
        .current_dir(root)
        .args(["build", "--release", "--quiet", "-p", package])
        .status()
        .with_context(|| format!("could not build {package}"))?;
    if !status.success() {
        bail!("cargo build --release -p {package} failed (see cargo's output above)");
    }
    Ok(workspace::target_dir(root).join("release").join(package))
}

/// Starts `binary` against a one-shot Runtime API and returns the time from spawn to its
/// first `/next` request, in milliseconds.
pub(super) fn time_to_first_next(binary: &Path, vars: &[(&str, &str)]) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?.to_string();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", address.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ])
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("could not start {}", binary.display()))?;
    let (stream, _) = listener.accept()?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request_line = String::new();
    BufReader::new(&stream).read_line(&mut request_line)?;
    let elapsed = started.elapsed();
    child.kill()?;
    child.wait()?;
    if !request_line.contains("/runtime/invocation/next") {
        bail!("{} asked for {request_line:?} first", binary.display());
    }
    Ok(elapsed.as_secs_f64() * 1e3)
}

fn percentiles(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}
