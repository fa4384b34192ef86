//! What `cargo metadata` decides for a build (the package, its binary, the toolchain), kept
//! beside the zip so a no-change rebuild skips `cargo metadata`: about half of its time on a
//! large workspace. It is reused only while every input of the dependency graph is unchanged
//! (size and modification time): `Cargo.lock`, `.cargo/config.toml`, and the `Cargo.toml` of
//! the workspace and of every path package in the graph.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use cargo_metadata::Metadata;
use serde::{Deserialize, Serialize};

use super::Toolchain;

const FILE: &str = "resolved.json";

/// The build's decisions that come from the dependency graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Resolved {
    pub(super) package: String,
    pub(super) bin: String,
    pub(super) toolchain: Toolchain,
}

#[derive(Serialize, Deserialize)]
struct Cached {
    /// What was asked: the manifest's package and features for the function.
    package: String,
    features: Vec<String>,
    resolved: Resolved,
    inputs: Vec<Input>,
}

/// One file the graph depends on, as it was (`None`: it did not exist).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Input {
    path: PathBuf,
    stamp: Option<(u64, u128)>,
}

impl Input {
    fn now(path: PathBuf) -> Input {
        let stamp = std::fs::metadata(&path).ok().map(|meta| {
            let modified = meta
                .modified()
                .ok()
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |since| since.as_nanos());
            (meta.len(), modified)
        });
        Input { path, stamp }
    }
}

/// The decisions stored in `out_dir` for `package` with `features`, if no input changed since.
pub(super) fn load(out_dir: &Path, package: &str, features: &[String]) -> Option<Resolved> {
    let text = std::fs::read_to_string(out_dir.join(FILE)).ok()?;
    let cached: Cached = serde_json::from_str(&text).ok()?;
    let unchanged = cached.package == package
        && cached.features == features
        && cached
            .inputs
            .into_iter()
            .all(|input| Input::now(input.path.clone()) == input);
    unchanged.then_some(cached.resolved)
}

/// Stores the decisions with the current state of `inputs`. A failure only costs the next
/// build a `cargo metadata`, so it is not an error.
pub(super) fn store(
    out_dir: &Path,
    package: &str,
    features: &[String],
    resolved: &Resolved,
    inputs: Vec<PathBuf>,
) {
    let cached = Cached {
        package: package.to_owned(),
        features: features.to_vec(),
        resolved: resolved.clone(),
        inputs: inputs.into_iter().map(Input::now).collect(),
    };
    if let Ok(text) = serde_json::to_string(&cached) {
        let _ = std::fs::create_dir_all(out_dir);
        let _ = std::fs::write(out_dir.join(FILE), text);
    }
}

/// The files whose change may change the dependency graph.
pub(super) fn graph_inputs(metadata: &Metadata) -> Vec<PathBuf> {
    let root = metadata.workspace_root.as_std_path();
    let mut inputs = vec![
        root.join("Cargo.lock"),
        root.join("Cargo.toml"),
        root.join(".cargo/config.toml"),
    ];
    // Registry and git packages are pinned by Cargo.lock; path packages can change under it.
    inputs.extend(
        metadata
            .packages
            .iter()
            .filter(|package| package.source.is_none())
            .map(|package| package.manifest_path.clone().into_std_path_buf()),
    );
    inputs.sort();
    inputs.dedup();
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_until_an_input_or_the_request_changes() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("Cargo.lock");
        std::fs::write(&lock, "version = 4\n").unwrap();
        let config = dir.path().join(".cargo/config.toml");
        let resolved = Resolved {
            package: "hello".into(),
            bin: "hello".into(),
            toolchain: Toolchain::RustLld,
        };
        let features = vec!["secrets".to_owned()];
        store(
            dir.path(),
            "hello",
            &features,
            &resolved,
            vec![lock.clone(), config.clone()],
        );
        assert_eq!(load(dir.path(), "hello", &features), Some(resolved));
        assert_eq!(load(dir.path(), "hello", &[]), None, "other features");
        assert_eq!(load(dir.path(), "other", &features), None, "other package");

        // A file that appears is a change too.
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, "[build]\n").unwrap();
        assert_eq!(load(dir.path(), "hello", &features), None);
    }

    #[test]
    fn a_changed_lockfile_invalidates() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("Cargo.lock");
        std::fs::write(&lock, "version = 4\n").unwrap();
        let resolved = Resolved {
            package: "hello".into(),
            bin: "hello".into(),
            toolchain: Toolchain::Zig,
        };
        store(dir.path(), "hello", &[], &resolved, vec![lock.clone()]);
        assert!(load(dir.path(), "hello", &[]).is_some());
        std::fs::write(&lock, "version = 4\n# a new dependency\n").unwrap();
        assert_eq!(load(dir.path(), "hello", &[]), None);
    }
}
