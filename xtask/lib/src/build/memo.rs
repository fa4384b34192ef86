//! What one command learns once and then reuses while it builds: the git commit and dirty
//! flag, the installed Rust targets, and the host binaries the deploy's config check runs.
//! A deploy of thirty functions that share one package asked `git` and `rustup` thirty times
//! and ran a host `cargo build` thirty times for the same binary; with one memo per command,
//! once. Nothing is kept between commands: the next command sees the tree as it is then.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::tools;

/// One command's memo; create one per command (`BuildMemo::default()`) and pass it along.
#[derive(Debug, Default)]
pub struct BuildMemo {
    git: Option<GitState>,
    rust_targets: Option<Vec<String>>,
    /// (package, features) → its binary built for this machine.
    host_binaries: HashMap<(String, Vec<String>), PathBuf>,
}

/// The workspace's git commit and whether its tree has uncommitted changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitState {
    /// `HEAD`, or `None` outside git.
    pub commit: Option<String>,
    pub dirty: bool,
}

impl GitState {
    /// `HEAD` and whether tracked files changed; `(None, false)` outside git.
    fn read(root: &Path) -> GitState {
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .current_dir(root)
                .output()
                .ok()
                .filter(|output| output.status.success())
                .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        };
        let Some(commit) = git(&["rev-parse", "HEAD"]) else {
            return GitState {
                commit: None,
                dirty: false,
            };
        };
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|status| !status.is_empty());
        GitState {
            commit: Some(commit),
            dirty,
        }
    }
}

impl BuildMemo {
    /// The git state of the workspace at `root`, read on first use.
    pub fn git_state(&mut self, root: &Path) -> GitState {
        self.git.get_or_insert_with(|| GitState::read(root)).clone()
    }

    /// Ensures the Rust standard library for `triple` is installed; the installed targets are
    /// listed (`rustup target list --installed`) once per command.
    pub fn ensure_rust_target(&mut self, triple: &str) -> anyhow::Result<()> {
        self.ensure_rust_target_with(
            triple,
            tools::installed_rust_targets,
            tools::ensure_rust_target_among,
        )
    }

    fn ensure_rust_target_with(
        &mut self,
        triple: &str,
        list_installed: impl FnOnce() -> anyhow::Result<Vec<String>>,
        install: impl FnOnce(&str, &mut Vec<String>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let installed = match &mut self.rust_targets {
            Some(installed) => installed,
            None => self.rust_targets.insert(list_installed()?),
        };
        if installed.iter().any(|target| target == triple) {
            return Ok(());
        }
        install(triple, installed)
    }

    /// The host binary of `package` with `features`, built by `build` the first time it is
    /// asked for. A failed build is not remembered.
    pub fn host_binary(
        &mut self,
        package: &str,
        features: &[String],
        build: impl FnOnce() -> anyhow::Result<PathBuf>,
    ) -> anyhow::Result<PathBuf> {
        let key = (package.to_owned(), features.to_vec());
        if let Some(path) = self.host_binaries.get(&key) {
            return Ok(path.clone());
        }
        let path = build()?;
        self.host_binaries.insert(key, path.clone());
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(status.status.success(), "git {args:?}: {status:?}");
    }

    #[test]
    fn the_git_state_is_read_once_per_memo() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "--quiet"]);
        std::fs::write(dir.path().join("a"), "1").unwrap();
        git(dir.path(), &["add", "a"]);
        git(dir.path(), &["commit", "--quiet", "-m", "one"]);

        let mut memo = BuildMemo::default();
        let first = memo.git_state(dir.path());
        assert!(first.commit.is_some());
        assert!(!first.dirty);

        // The tree changes during the command: the command keeps what it read first.
        std::fs::write(dir.path().join("a"), "2").unwrap();
        assert_eq!(memo.git_state(dir.path()), first);
        // The next command reads it again.
        let next = BuildMemo::default().git_state(dir.path());
        assert_eq!(next.commit, first.commit);
        assert!(next.dirty);

        let outside = tempfile::tempdir().unwrap();
        let none = BuildMemo::default().git_state(outside.path());
        assert_eq!(
            none,
            GitState {
                commit: None,
                dirty: false
            }
        );
    }

    #[test]
    fn installed_targets_are_listed_once_and_a_missing_one_installed_once() {
        let mut memo = BuildMemo::default();
        let listed = Cell::new(0);
        let installed = Cell::new(0);
        let list = || {
            listed.set(listed.get() + 1);
            Ok(vec!["x86_64-unknown-linux-musl".to_owned()])
        };
        let install = |triple: &str, targets: &mut Vec<String>| {
            installed.set(installed.get() + 1);
            targets.push(triple.to_owned());
            Ok(())
        };
        for triple in [
            "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-musl",
            "aarch64-unknown-linux-musl",
            "x86_64-unknown-linux-musl",
        ] {
            memo.ensure_rust_target_with(triple, list, install).unwrap();
        }
        assert_eq!(listed.get(), 1, "one `rustup target list` per command");
        assert_eq!(installed.get(), 1, "the missing target is added once");
    }

    #[test]
    fn a_host_binary_is_built_once_per_package_and_features() {
        let mut memo = BuildMemo::default();
        let builds = Cell::new(0);
        let build = |path: &str| {
            let path = PathBuf::from(path);
            let builds = &builds;
            move || {
                builds.set(builds.get() + 1);
                Ok(path)
            }
        };
        let secrets = vec!["secrets".to_owned()];
        let plain = memo.host_binary("hello", &[], build("hello")).unwrap();
        assert_eq!(
            memo.host_binary("hello", &[], build("other")).unwrap(),
            plain
        );
        assert_eq!(builds.get(), 1);
        memo.host_binary("hello", &secrets, build("hello+secrets"))
            .unwrap();
        memo.host_binary("bare-echo", &[], build("bare-echo"))
            .unwrap();
        assert_eq!(builds.get(), 3, "other features, other package");

        // A failure is not kept: the next ask builds again.
        let failed = memo.host_binary("broken", &[], || anyhow::bail!("cargo failed"));
        assert!(failed.is_err());
        memo.host_binary("broken", &[], build("broken")).unwrap();
        assert_eq!(builds.get(), 4);
    }
}
