//! `cargo xtask ci`: every check the pipeline runs, the same on a laptop and in CI.
//!
//! The manifest's pre-flight for every environment (offline: the deploy command's own checks,
//! no AWS call), generated pipeline files up to date, `cargo fmt --check`,
//! `cargo clippy --all-targets -- -D warnings` and the whole test suite (`cargo test --workspace`,
//! after whatever set-up the workspace's own xtask asks for).
//! Every check runs even after one fails, so one run shows everything to fix; the exit code is
//! non-zero when any failed.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Context as _;
use clap::Args as ClapArgs;

use crate::manifest::{self, Manifest};
use crate::pipeline::{self, Provider};
use crate::{deploy, workspace};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Extra arguments for `cargo test` (e.g. `-- --test-threads 1`).
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

/// The outcome of one check.
struct Outcome {
    name: String,
    failure: Option<String>,
}

/// Runs every check; `test_setup` runs first in the tests' step (this repository's own xtask
/// installs moto, Zig and qemu there; an adopter's workspace needs nothing).
pub fn run(
    args: Args,
    test_setup: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let root = workspace::root()?;
    let mut outcomes = Vec::new();
    let mut check = |name: &str, result: anyhow::Result<()>| {
        if let Err(err) = &result {
            eprintln!("ci: `{name}` failed: {err:#}");
        }
        outcomes.push(Outcome {
            name: name.to_owned(),
            failure: result.err().map(|err| format!("{err:#}")),
        });
    };

    check("manifest pre-flight", manifest_preflight(&root));
    check("pipeline files up to date", pipelines_current(&root));
    check(
        "cargo fmt --check",
        cargo(&root, &["fmt", "--all", "--check"]),
    );
    check(
        "cargo clippy --all-targets -- -D warnings",
        cargo(
            &root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
    );
    let mut cargo_test = vec!["test", "--workspace"];
    cargo_test.extend(args.cargo_args.iter().map(String::as_str));
    check(
        "cargo test --workspace",
        test_setup(&root)
            .context("could not install what the tests need")
            .and_then(|()| cargo(&root, &cargo_test)),
    );

    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    println!("\nci summary:");
    for outcome in &outcomes {
        match &outcome.failure {
            None => println!("  ok      {}", outcome.name),
            Some(failure) => {
                let first_line = failure.lines().next().unwrap_or_default();
                println!("  FAILED  {}: {first_line}", outcome.name);
            }
        }
    }
    if failed.is_empty() {
        println!("ci: all {} checks passed", outcomes.len());
        Ok(ExitCode::SUCCESS)
    } else {
        let names: Vec<&str> = failed.iter().map(|o| o.name.as_str()).collect();
        eprintln!(
            "error: {} of {} ci checks failed: {} (details above)",
            failed.len(),
            outcomes.len(),
            names.join("; ")
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Loads the manifest (located errors) and runs deploy's offline pre-flight for every
/// environment and every function, exactly as `cargo xtask deploy --env <name>` would before
/// touching AWS.
pub fn manifest_preflight(root: &Path) -> anyhow::Result<()> {
    let Some((path, manifest)) = Manifest::load(root)? else {
        println!(
            "ci: no {} in {}: nothing to pre-flight",
            manifest::FILE_NAME,
            root.display()
        );
        return Ok(());
    };
    let functions: Vec<String> = manifest.functions.keys().cloned().collect();
    let problems: Vec<String> = manifest
        .environments
        .keys()
        .filter_map(|env| {
            deploy::check_config(&manifest, env, &functions)
                .err()
                .map(|err| format!("{err:#}"))
        })
        .collect();
    anyhow::ensure!(
        problems.is_empty(),
        "{} fails deploy pre-flight:\n{}",
        path.display(),
        problems.join("\n")
    );
    println!(
        "ci: {} passes pre-flight for {} environment(s): {}",
        manifest::FILE_NAME,
        manifest.environments.len(),
        manifest
            .environments
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Every pipeline file that `cargo xtask pipeline` generated (it starts with the marker) must
/// still be what the manifest generates now.
pub fn pipelines_current(root: &Path) -> anyhow::Result<()> {
    for provider in Provider::ALL {
        let path = root.join(provider.default_path());
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text.starts_with(pipeline::GENERATED_MARKER) {
            let expected = pipeline::generate_for_workspace(root, provider)?;
            pipeline::check_file(&path, &expected)?;
        }
    }
    Ok(())
}

fn cargo(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(workspace::cargo())
        .current_dir(root)
        .args(args)
        .status()
        .with_context(|| format!("could not run cargo {}", args.join(" ")))?;
    anyhow::ensure!(status.success(), "`cargo {}` failed", args.join(" "));
    Ok(())
}
