//! Throwaway cargo workspaces in a temp dir that use this repository's lambda-stage through path
//! dependencies, as a user's workspace would.
//!
//! They build with `CARGO_BUILD_BUILD_DIR` = this repository's target dir and `CARGO_TARGET_DIR`
//! = `<repo target>/adoption`: cargo's intermediate artifacts (compiled dependencies) are shared
//! with the repository's own builds, so nothing the suite already compiled is compiled again,
//! while the final binaries (the scratch workspace's own `xtask`, its functions) and
//! `target/lambda/` land in `adoption/` and never overwrite the repository's `target/debug/xtask`.
//! The repository's Cargo.lock and dev profile are copied in so dependencies resolve to the same
//! versions and build with the same settings, which is what makes them shareable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context as _};

use crate::bins::workspace_root;

/// A scratch workspace; removed when dropped.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A workspace with `[workspace.dependencies]` on this repository's framework and xtask
    /// library, the repository's lockfile and dev profile, and nothing else.
    pub fn new(members: &[&str]) -> anyhow::Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix("lambda-stage-scratch")
            .tempdir()?;
        let repo = workspace_root();
        let members = members
            .iter()
            .map(|m| format!("\"{m}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let cargo_toml = format!(
            r#"[workspace]
resolver = "2"
members = [{members}]

[workspace.package]
version = "0.1.0"
edition = "2021"

[workspace.dependencies]
lambda-stage = {{ path = "{framework}" }}
lambda-stage-xtask = {{ path = "{xtask}" }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"
tokio = {{ version = "1", features = ["macros", "rt-multi-thread"] }}

{profiles}"#,
            framework = toml_path(&repo.join("framework")),
            xtask = toml_path(&repo.join("xtask/lib")),
            profiles = dev_profiles()?,
        );
        std::fs::write(dir.path().join("Cargo.toml"), cargo_toml)?;
        std::fs::copy(repo.join("Cargo.lock"), dir.path().join("Cargo.lock"))
            .context("could not copy the repository's Cargo.lock")?;
        Ok(Scratch { dir })
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, text: &str) -> anyhow::Result<()> {
        let path = self.root().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("could not write {}", path.display()))
    }

    pub fn read(&self, relative: &str) -> anyhow::Result<String> {
        let path = self.root().join(relative);
        std::fs::read_to_string(&path).with_context(|| format!("could not read {}", path.display()))
    }

    /// `cargo <args>` in the scratch workspace, with the shared build dir.
    pub fn cargo(&self, args: &[&str]) -> Command {
        self.command(
            std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            args,
        )
    }

    /// This repository's `cargo xtask` (built once) run with `args` in the scratch workspace,
    /// with the shared build dir: the CLI a workspace gets from the xtask library, without
    /// building one for the scratch workspace.
    pub fn xtask(&self, args: &[&str]) -> anyhow::Result<Command> {
        Ok(self.command(crate::bins::binary("xtask", "dev")?, args))
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(self.root())
            .args(args)
            .env("CARGO_BUILD_BUILD_DIR", repo_target_dir())
            .env("CARGO_TARGET_DIR", adoption_target_dir())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        command
    }

    /// Runs `cargo <args>` and fails with its output unless it succeeds.
    pub fn cargo_ok(&self, args: &[&str]) -> anyhow::Result<Output> {
        let output = self.cargo(args).output()?;
        if !output.status.success() {
            bail!(
                "`cargo {}` failed in {} ({}):\n{}{}",
                args.join(" "),
                self.root().display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(output)
    }
}

/// The repository's target dir (honours `CARGO_TARGET_DIR`, as cargo does).
pub fn repo_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where scratch workspaces put their final binaries and zips.
pub fn adoption_target_dir() -> PathBuf {
    repo_target_dir().join("adoption")
}

fn toml_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "/")
}

/// The repository's `[profile.dev*]` tables, plus the same settings for the lambda-stage crates
/// that are workspace members there but path dependencies here (`package."*"` would otherwise
/// change their debug info and so their build hash).
fn dev_profiles() -> anyhow::Result<String> {
    let text = std::fs::read_to_string(workspace_root().join("Cargo.toml"))?;
    let doc: toml::Table = text.parse()?;
    let mut profiles = toml::Table::new();
    if let Some(dev) = doc
        .get("profile")
        .and_then(|p| p.get("dev"))
        .and_then(toml::Value::as_table)
    {
        let mut dev = dev.clone();
        let member_debug = dev.get("debug").cloned();
        if let Some(debug) = member_debug {
            let packages = dev
                .entry("package")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .context("profile.dev.package is not a table")?;
            for crate_name in [
                "lambda-stage",
                "lambda-stage-xtask",
                "lambda-stage-events",
                "lambda-stage-emulator",
                "lambda-stage-names",
            ] {
                let mut settings = toml::Table::new();
                settings.insert("debug".into(), debug.clone());
                packages.insert(crate_name.into(), toml::Value::Table(settings));
            }
        }
        let mut profile = toml::Table::new();
        profile.insert("dev".into(), toml::Value::Table(dev));
        profiles.insert("profile".into(), toml::Value::Table(profile));
    }
    Ok(toml::to_string(&profiles)?)
}
