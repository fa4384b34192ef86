//! Where the workspace lives and where its artifacts go.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

/// The root of the cargo workspace that `cargo xtask` was started in.
pub fn root() -> anyhow::Result<PathBuf> {
    let output = Command::new(cargo())
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .output()
        .context("could not run `cargo locate-project`")?;
    if !output.status.success() {
        bail!(
            "could not find the cargo workspace: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let manifest = PathBuf::from(String::from_utf8(output.stdout)?.trim());
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("workspace manifest has no parent directory")
}

/// The cargo binary that runs us (`CARGO` is set by `cargo run`), so the same toolchain builds
/// the functions.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

/// The shared target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}
