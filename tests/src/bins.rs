//! Builds the workspace's binaries once per test process and hands out their paths.
//!
//! Every build passes `--workspace --tests`: the same packages and targets as
//! `cargo test --workspace`, so cargo resolves the same features and every dependency is the
//! build the test run already made (`cargo build -p hello` would resolve hello's features alone
//! and compile tokio, hyper and friends once more), plus `--bin <package>` for the one binary
//! asked for. Binaries are copied out of cargo's output directory, so a later build with other
//! features never swaps one under a running test.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context as _};

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// The path of `package`'s binary built with `profile` (`dev` or `release`) for the host, built
/// on first use.
pub fn binary(package: &str, profile: &str) -> anyhow::Result<PathBuf> {
    binary_with_features(package, profile, "")
}

/// [`binary`] from a build with cargo `features` (comma list, `""` for none), which `package`
/// declares.
///
/// Each feature is turned on in every workspace package that declares it
/// (`hello/secrets,many-secrets/secrets,...`): a feature of the framework, such as `secrets`, is
/// then compiled in one build for all the functions that ask for it, not once per function.
pub fn binary_with_features(
    package: &str,
    profile: &str,
    features: &str,
) -> anyhow::Result<PathBuf> {
    let declared = declared_features()?;
    for feature in features.split(',').filter(|feature| !feature.is_empty()) {
        if !declared
            .get(package)
            .is_some_and(|own| own.contains(feature))
        {
            bail!("the workspace package `{package}` has no cargo feature `{feature}`");
        }
    }
    built(profile, &features_key(features, declared), package)
}

/// package → the cargo features it declares.
type DeclaredFeatures = BTreeMap<String, BTreeSet<String>>;

/// `package`'s binary from the build with `profile` and `features`, built on first use.
fn built(profile: &str, features: &str, package: &str) -> anyhow::Result<PathBuf> {
    type Slot = Arc<OnceLock<Result<PathBuf, String>>>;
    static BUILDS: OnceLock<Mutex<HashMap<[String; 3], Slot>>> = OnceLock::new();
    let key = [profile, features, package].map(str::to_owned);
    let slot = BUILDS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .entry(key)
        .or_default()
        .clone();
    // Other binaries may be asked for meanwhile; cargo's lock on the target directory orders
    // the builds.
    slot.get_or_init(|| build(profile, features, package).map_err(|err| format!("{err:#}")))
        .clone()
        .map_err(|err| anyhow::anyhow!(err))
}

/// `features` turned on in every package of `declared` that has them, for cargo's `--features`
/// (`a/x,b/x`, by package name); `""` without features.
fn features_key(features: &str, declared: &DeclaredFeatures) -> String {
    let wanted: BTreeSet<&str> = features
        .split(',')
        .filter(|feature| !feature.is_empty())
        .collect();
    declared
        .iter()
        .flat_map(|(package, own)| {
            wanted
                .iter()
                .filter(|feature| own.contains(**feature))
                .map(move |feature| format!("{package}/{feature}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The features of every workspace package (`cargo metadata`, read once).
fn declared_features() -> anyhow::Result<&'static DeclaredFeatures> {
    static DECLARED: OnceLock<DeclaredFeatures> = OnceLock::new();
    if let Some(declared) = DECLARED.get() {
        return Ok(declared);
    }
    let stdout = cargo(&[
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
        "--offline",
    ])?;
    let metadata: serde_json::Value = serde_json::from_slice(&stdout)?;
    let declared = metadata["packages"]
        .as_array()
        .context("cargo metadata lists packages")?
        .iter()
        .filter_map(|package| {
            let name = package["name"].as_str()?.to_owned();
            let features = package["features"].as_object()?.keys().cloned().collect();
            Some((name, features))
        })
        .collect();
    Ok(DECLARED.get_or_init(|| declared))
}

/// Builds `package`'s binary with `profile` and `features` and copies it out of cargo's output.
fn build(profile: &str, features: &str, package: &str) -> anyhow::Result<PathBuf> {
    let stdout = cargo(&[
        "build",
        "--quiet",
        "--message-format=json",
        "--profile",
        profile,
        "--workspace",
        "--tests",
        "--bin",
        package,
        "--features",
        features,
    ])?;
    let executable = String::from_utf8(stdout)?
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["kind"][0] == "bin")
        .filter(|message| message["profile"]["test"] == false)
        .find(|message| {
            message["package_id"]
                .as_str()
                .and_then(package_name)
                .as_deref()
                == Some(package)
        })
        .and_then(|message| message["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo built no binary of the package `{package}`"))?;
    let copies = lambda_stage_xtask::workspace::target_dir(workspace_root())
        .join("test-bins")
        .join(profile)
        .join(
            if features.is_empty() {
                "default"
            } else {
                features
            }
            .replace(['/', ','], "+"),
        );
    std::fs::create_dir_all(&copies)
        .with_context(|| format!("could not create {}", copies.display()))?;
    let copy = copies.join(executable.file_name().context("a binary has a name")?);
    // Written beside and renamed: a test may be running the previous copy.
    let partial = copy.with_extension("partial");
    std::fs::copy(&executable, &partial)
        .with_context(|| format!("could not copy {}", executable.display()))?;
    std::fs::rename(&partial, &copy)
        .with_context(|| format!("could not write {}", copy.display()))?;
    Ok(copy)
}

/// `cargo <args>` in the workspace, with the cargo that runs the tests; its stdout, or an error
/// with the command and its stderr.
fn cargo(args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let output = Command::new(lambda_stage_xtask::workspace::cargo())
        .current_dir(workspace_root())
        .args(args)
        .output()
        .with_context(|| format!("could not run cargo {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "cargo {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output.stdout)
}

/// The package name in a cargo package id: `path+file:///…/hello#0.1.0` or
/// `path+file:///…/xtask/lib#lambda-stage-xtask@0.1.0`.
fn package_name(id: &str) -> Option<String> {
    let (path, fragment) = id.rsplit_once('#')?;
    Some(match fragment.split_once('@') {
        Some((name, _)) => name.to_owned(),
        None => path.rsplit('/').next()?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_from_cargo_package_ids() {
        assert_eq!(
            package_name("path+file:///w/examples/hello#0.1.0").as_deref(),
            Some("hello")
        );
        assert_eq!(
            package_name("path+file:///w/tests/functions/chaos#chaos-fn@0.1.0").as_deref(),
            Some("chaos-fn")
        );
    }

    #[test]
    fn a_feature_is_turned_on_in_every_package_that_declares_it() {
        let declared: DeclaredFeatures = [
            ("hello", &["secrets"][..]),
            ("probe", &["secrets", "x"]),
            ("plain", &[]),
        ]
        .into_iter()
        .map(|(package, features)| {
            let features = features.iter().map(|f| f.to_string()).collect();
            (package.to_owned(), features)
        })
        .collect();
        assert_eq!(features_key("", &declared), "");
        assert_eq!(
            features_key("secrets", &declared),
            "hello/secrets,probe/secrets"
        );
        assert_eq!(
            features_key("x,secrets,x", &declared),
            "hello/secrets,probe/secrets,probe/x"
        );
    }
}
