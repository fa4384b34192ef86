//! Builds workspace binaries once per test process and hands out their paths.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use anyhow::{bail, Context as _};

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// The path of `package`'s binary built with `profile` (`dev` or `release`) for the host,
/// building it on first use. Cargo is fast when it is up to date.
pub fn binary(package: &str, profile: &str) -> anyhow::Result<PathBuf> {
    binary_with_features(package, profile, "")
}

/// [`binary`] built with cargo `features` (comma list, `""` for none). A featured build is
/// copied to `<binary>+<features>`, so it never replaces the plain binary other tests run.
pub fn binary_with_features(
    package: &str,
    profile: &str,
    features: &str,
) -> anyhow::Result<PathBuf> {
    /// (package, profile, features) → binary.
    type Built = HashMap<(String, String, String), PathBuf>;
    static BUILT: OnceLock<Mutex<Built>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Mutex::default).lock().unwrap();
    let key = (package.to_owned(), profile.to_owned(), features.to_owned());
    if let Some(path) = built.get(&key) {
        return Ok(path.clone());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "--profile",
            profile,
            "-p",
            package,
        ])
        .args(["--features", features])
        .output()
        .with_context(|| format!("could not run cargo build for {package}"))?;
    if !output.status.success() {
        bail!(
            "cargo build -p {package} --profile {profile} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let path = String::from_utf8(output.stdout)?
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["kind"][0] == "bin")
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .next()
        .with_context(|| format!("cargo built no binary for {package}"))?;
    let path = if features.is_empty() {
        path
    } else {
        let copy = PathBuf::from(format!("{}+{}", path.display(), features.replace(',', "+")));
        std::fs::copy(&path, &copy)
            .with_context(|| format!("could not copy {}", path.display()))?;
        copy
    };
    built.insert(key, path.clone());
    Ok(path)
}
