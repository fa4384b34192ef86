//! `cargo xtask test`: the whole test suite on a fresh machine — installs what the tests need
//! ([`crate::setup`]), then runs every test. `.ci/run` calls exactly this, so CI proves what the
//! README promises.
//!
//! `--quick` is the inner loop: unit tests, doc tests and the emulator tests, nothing that needs
//! moto, a cross build or an install. Every step passes `--workspace`, as the full run does, so
//! cargo resolves the same features and reuses the same builds.

use std::path::Path;
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
    if args.quick {
        for step in [
            &["--lib", "--bins"][..],
            &["--doc"],
            &["--test", "it", QUICK_INTEGRATION_FILTER],
        ] {
            if !cargo_test(&root, step, &args.cargo_args)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    // The installs (downloads and unpacking, mostly waiting) overlap the compile, which needs
    // none of them: only the tests do.
    let setup = (!args.no_setup).then(|| {
        let root = root.clone();
        std::thread::spawn(move || crate::setup::for_tests(&root))
    });
    let compiled = cargo_test(&root, &["--no-run"], cargo_options(&args.cargo_args))?;
    if let Some(setup) = setup {
        setup
            .join()
            .map_err(|_| anyhow::anyhow!("installing what the tests need panicked"))?
            .context("could not install what the tests need")?;
    }
    if !compiled || !cargo_test(&root, &[], &args.cargo_args)? {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `cargo test --workspace <step> <extra>`; whether it passed.
fn cargo_test(root: &Path, step: &[&str], extra: &[String]) -> anyhow::Result<bool> {
    let mut command = Command::new(workspace::cargo());
    command
        .current_dir(root)
        .args(["test", "--workspace"])
        .args(step)
        .args(extra);
    // `--test-threads` in `extra`, or the variable set by hand, still wins.
    if std::env::var_os(TEST_THREADS_VAR).is_none() {
        command.env(TEST_THREADS_VAR, test_threads().to_string());
    }
    let status = command.status().context("could not run cargo test")?;
    Ok(status.success())
}

/// libtest's default for `--test-threads`.
const TEST_THREADS_VAR: &str = "RUST_TEST_THREADS";

/// Twice as many tests at once as there are cores. Once the functions are built, the integration
/// tests spend much of their time waiting (on moto, on a function process), so with one test per
/// core the cores idle: on 2 cores with the builds already done, `it` took 556 s with 2 threads
/// and 341 s with 4. From a clean clone the builds keep both cores busy either way.
fn test_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get()) * 2
}

/// The options for cargo itself: what comes before `--` (after it: the test binaries').
fn cargo_options(args: &[String]) -> &[String] {
    let end = args
        .iter()
        .position(|arg| arg == "--")
        .unwrap_or(args.len());
    &args[..end]
}

#[cfg(test)]
mod tests {
    use super::cargo_options;

    #[test]
    fn the_compile_step_gets_only_cargos_options() {
        let args: Vec<String> = ["--release", "--", "--test-threads", "1"]
            .map(String::from)
            .to_vec();
        assert_eq!(cargo_options(&args), ["--release"]);
        assert_eq!(cargo_options(&args[..1]), ["--release"]);
        assert!(cargo_options(&args[1..]).is_empty());
    }
}
