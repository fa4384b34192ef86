//! A function built for this machine rather than for Lambda: what `invoke` and `serve` run on
//! the emulator, and what deploy's config check runs when the zip's binary cannot run here.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context as _};

use crate::workspace;

/// Builds `package` with `features` for this machine (debug unless `release`), build output on
/// stderr, and returns its executable.
pub fn build_binary(
    root: &Path,
    package: &str,
    features: &[String],
    release: bool,
) -> anyhow::Result<PathBuf> {
    let mut command = std::process::Command::new(workspace::cargo());
    command
        .current_dir(root)
        .args([
            "build",
            "--package",
            package,
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if release {
        command.arg("--release");
    }
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let mut child = command.spawn().context("could not run cargo build")?;
    let stdout = child.stdout.take().context("cargo build has no stdout")?;
    let mut executables = Vec::new();
    for message in cargo_metadata::Message::parse_stream(std::io::BufReader::new(stdout)) {
        if let cargo_metadata::Message::CompilerArtifact(artifact) =
            message.context("could not read cargo's build messages")?
        {
            if let Some(executable) = artifact.executable {
                if artifact.target.is_bin() {
                    executables
                        .push((artifact.target.name.clone(), executable.into_std_path_buf()));
                }
            }
        }
    }
    let status = child.wait().context("cargo build did not finish")?;
    if !status.success() {
        bail!("`cargo build --package {package}` failed (its output is above)");
    }
    pick_executable(package, executables)
}

/// The package's bootstrap: its only binary, else the one named `bootstrap` or after the package.
fn pick_executable(package: &str, executables: Vec<(String, PathBuf)>) -> anyhow::Result<PathBuf> {
    if let [(_, path)] = executables.as_slice() {
        return Ok(path.clone());
    }
    let names: Vec<&str> = executables.iter().map(|(name, _)| name.as_str()).collect();
    executables
        .iter()
        .find(|(name, _)| name == "bootstrap")
        .or_else(|| executables.iter().find(|(name, _)| name == package))
        .map(|(_, path)| path.clone())
        .with_context(|| {
            if names.is_empty() {
                format!("package `{package}` builds no binary: a Lambda function needs a `main`")
            } else {
                format!(
                    "package `{package}` builds several binaries ({}); name the function's `bootstrap` or `{package}`",
                    names.join(", ")
                )
            }
        })
}
