//! `cargo xtask bench coldstart`: what lambda-stage adds to a cold start.
//!
//! Compares `hello` (typed config, environment, logging) with `bare-echo` (a stock
//! lambda_runtime function) in the same run: time from exec to the first
//! `GET /runtime/invocation/next` (the moment init is over and Lambda could deliver an event),
//! and the size of the stripped release binaries.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use lambda_stage_xtask::workspace;

/// Cold starts measured per function, interleaved so drift hits both alike.
const ROUNDS: usize = 200;

pub fn run() -> anyhow::Result<()> {
    let root = workspace::root()?;
    let ours = build_release(&root, "hello")?;
    let baseline = build_release(&root, "bare-echo")?;
    let hello_vars = [
        ("LAMBDA_STAGE_ENV", "bench"),
        ("APP_GREETING", "Hello"),
        ("APP_API_KEY", "bench-key"),
    ];

    let mut ours_times = Vec::with_capacity(ROUNDS);
    let mut baseline_times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        ours_times.push(time_to_first_next(&ours, &hello_vars)?);
        baseline_times.push(time_to_first_next(&baseline, &[])?);
    }
    let (ours_p50, ours_p90) = percentiles(&mut ours_times);
    let (base_p50, base_p90) = percentiles(&mut baseline_times);
    let ours_size = std::fs::metadata(&ours)?.len();
    let base_size = std::fs::metadata(&baseline)?.len();

    println!("exec -> first /next, {ROUNDS} cold starts each (release, host target)");
    println!("  hello (lambda-stage)      p50 {ours_p50:>8.3} ms  p90 {ours_p90:>8.3} ms");
    println!("  bare-echo (lambda_runtime) p50 {base_p50:>8.3} ms  p90 {base_p90:>8.3} ms");
    println!("  ratio p50 {:.3}  (target <= 1.05)", ours_p50 / base_p50);
    println!("stripped release binary size");
    println!("  hello {ours_size} B, bare-echo {base_size} B");
    println!(
        "  ratio {:.3}  (target <= 1.10)",
        ours_size as f64 / base_size as f64
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
