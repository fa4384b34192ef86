//! The zip a deploy uploads: built (or re-used) through the build record, or found among the
//! local build records by its `CodeSha256` when promoting what another environment runs.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::arch::Arch;
use crate::build::{BuildMemo, BuildOptions};
use crate::manifest::Manifest;
use crate::workspace;

/// The part of the build record (`target/lambda/<function>/<arch>/build.json`) a deploy needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Artifact {
    pub arch: Arch,
    /// The Rust target triple the binary was built for.
    pub target: String,
    pub git_commit: Option<String>,
    #[serde(default)]
    pub git_dirty: bool,
    pub zip_path: PathBuf,
    /// Hex sha256 of the zip.
    pub sha256_hex: String,
    /// Base64 sha256 of the zip: what Lambda reports as `CodeSha256`.
    pub code_sha256: String,
}

impl Artifact {
    /// The commit as recorded in version descriptions (`-dirty` when the tree had changes).
    pub fn git_label(&self) -> Option<String> {
        self.git_commit.as_ref().map(|commit| {
            let short = &commit[..commit.len().min(12)];
            if self.git_dirty {
                format!("{short}-dirty")
            } else {
                short.to_owned()
            }
        })
    }

    /// The zip's bytes, read on tokio's blocking pool: functions deploy concurrently on one
    /// thread, and reading a zip of up to 50 MB there would stall every other function's calls.
    pub async fn read_zip(&self) -> anyhow::Result<Vec<u8>> {
        let path = self.zip_path.clone();
        tokio::task::spawn_blocking(move || std::fs::read(&path))
            .await
            .context("reading the zip stopped")?
            .with_context(|| format!("could not read the zip {}", self.zip_path.display()))
    }
}

/// Where the build writes `function`'s record for `arch`.
pub fn record_path(root: &Path, function: &str, arch: Arch) -> PathBuf {
    workspace::target_dir(root)
        .join("lambda")
        .join(function)
        .join(arch.as_str())
        .join("build.json")
}

fn read_record(path: &Path) -> anyhow::Result<Artifact> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a build record", path.display()))
}

/// Builds each `(function, arch)` of `wanted` (a no-change rebuild re-uses everything; functions
/// that share a package are compiled once), showing each build as a step, and returns their
/// zips in `wanted`'s order.
pub fn build_all(
    root: &Path,
    manifest: &Manifest,
    wanted: &[(String, Arch)],
    profile: &str,
    memo: &mut BuildMemo,
) -> anyhow::Result<Vec<Artifact>> {
    let options = BuildOptions {
        profile: profile.to_owned(),
        progress: true,
        ..BuildOptions::default()
    };
    let records = crate::build::build_functions(root, Some(manifest), wanted, &options, memo)?;
    Ok(records
        .into_iter()
        .map(|record| Artifact {
            arch: record.arch,
            target: record.target,
            git_commit: record.git_commit,
            git_dirty: record.git_dirty,
            zip_path: record.zip_path,
            sha256_hex: record.sha256_hex,
            code_sha256: record.code_sha256,
        })
        .collect())
}

/// The local build of `function` whose zip has `code_sha256`, if this machine has it.
pub fn find_by_code_sha(root: &Path, function: &str, code_sha256: &str) -> Option<Artifact> {
    Arch::ALL
        .into_iter()
        .filter_map(|arch| read_record(&record_path(root, function, arch)).ok())
        .find(|artifact| artifact.code_sha256 == code_sha256 && artifact.zip_path.is_file())
}
