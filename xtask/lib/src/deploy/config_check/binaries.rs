//! Which binary checks a function, made once per command: the bootstrap of its zip when this
//! machine can run it, else a host build of the same package and features. Each runs as a
//! private copy in a directory of its own, so a concurrent deploy or build never replaces a
//! binary while its check runs.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{Code, Subject};
use crate::arch::Arch;
use crate::build::BuildMemo;
use crate::deploy::artifact::Artifact;
use crate::manifest::Manifest;

/// A binary the check runs (a zip's bootstrap, or a copy of a host build) in a directory of
/// its own, removed when dropped.
pub(super) struct PrivateBinary {
    dir: PathBuf,
    path: PathBuf,
}

impl PrivateBinary {
    /// A place for a binary called `file_name`, in a new directory under `parent` that no other
    /// check (of this or another process) uses.
    fn new_under(parent: &Path, file_name: impl AsRef<Path>) -> anyhow::Result<PrivateBinary> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = parent.join(format!("check-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        Ok(PrivateBinary {
            path: dir.join(file_name),
            dir,
        })
    }
}

impl Drop for PrivateBinary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The binary that checks `subject`: its zip's bootstrap when it runs here, else a host build
/// of its package and features. Each is a private copy, made once per zip or host build and
/// kept in `private_binaries` (by the zip's SHA-256, or the host build's path).
pub(super) fn binary_for(
    root: &Path,
    manifest: &Manifest,
    subject: &Subject,
    memo: &mut BuildMemo,
    private_binaries: &mut HashMap<String, PrivateBinary>,
) -> anyhow::Result<PathBuf> {
    let function = &subject.function;
    match &subject.code {
        Code::Artifact(artifact) if runs_here(&artifact.target) => {
            let bootstrap = match private_binaries.entry(artifact.sha256_hex.clone()) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) => new.insert(extract(artifact)?),
            };
            Ok(bootstrap.path.clone())
        }
        Code::Artifact(artifact) => {
            eprintln!(
                "config check: `{function}` is built for {} ({}), which cannot run here: \
                 checking a build of the same package and features for this machine",
                artifact.arch, artifact.target
            );
            host_build(root, manifest, function, memo, private_binaries)
        }
        Code::WorkingTree {
            version,
            built_from,
        } => {
            eprintln!(
                "note: the zip of version {version} of `{}`{} is not on this machine: its \
                 config is checked with the working tree's code",
                subject.name,
                built_from
                    .as_ref()
                    .map_or_else(String::new, |commit| format!(" (git {commit})"))
            );
            host_build(root, manifest, function, memo, private_binaries)
        }
    }
}

/// Whether this machine runs binaries built for `target`: a static musl build of its own
/// architecture (a glibc build would also need a matching loader and libraries).
fn runs_here(target: &str) -> bool {
    cfg!(target_os = "linux") && Arch::host().is_some_and(|arch| arch.musl_target() == target)
}

/// The zip's `bootstrap`, extracted beside it into a directory of this process's own, so
/// concurrent deploys never write a binary another one is running.
fn extract(artifact: &Artifact) -> anyhow::Result<PrivateBinary> {
    use std::os::unix::fs::PermissionsExt as _;
    let beside_the_zip = artifact.zip_path.parent().unwrap_or(Path::new("."));
    let binary = PrivateBinary::new_under(beside_the_zip, crate::build::ENTRY_NAME)?;
    let zip = std::fs::File::open(&artifact.zip_path)
        .with_context(|| format!("could not open {}", artifact.zip_path.display()))?;
    let mut archive = zip::ZipArchive::new(zip)
        .with_context(|| format!("{} is not a zip", artifact.zip_path.display()))?;
    let mut entry = archive
        .by_name(crate::build::ENTRY_NAME)
        .with_context(|| format!("{} has no bootstrap", artifact.zip_path.display()))?;
    let mut file = std::fs::File::create(&binary.path)
        .with_context(|| format!("could not write {}", binary.path.display()))?;
    std::io::copy(&mut entry, &mut file)
        .with_context(|| format!("could not write {}", binary.path.display()))?;
    drop(file);
    std::fs::set_permissions(&binary.path, std::fs::Permissions::from_mode(0o755))?;
    Ok(binary)
}

/// The package and features of `function`, built for this machine (cargo's output on stderr)
/// once per command: functions that share them share the binary.
///
/// The check runs a private copy, made as soon as cargo is done: cargo's `target/debug/<bin>`
/// is shared, and another build of the package with other features (`serve`, `invoke`, a
/// second deploy) may replace it before the check runs.
fn host_build(
    root: &Path,
    manifest: &Manifest,
    function: &str,
    memo: &mut BuildMemo,
    private_binaries: &mut HashMap<String, PrivateBinary>,
) -> anyhow::Result<PathBuf> {
    let spec = manifest.require_function(function)?;
    let package = spec.package_name(function);
    memo.host_binary(package, &spec.features, || {
        let built = crate::build::host::build_binary(root, package, &spec.features, false)?;
        let copy = private_copy(&built)?;
        let path = copy.path.clone();
        private_binaries.insert(format!("host build of {}", built.display()), copy);
        Ok(path)
    })
    .with_context(|| format!("could not build `{function}` for its config check"))
}

/// `binary` copied into a directory of its own next to it, removed when dropped.
fn private_copy(binary: &Path) -> anyhow::Result<PrivateBinary> {
    let beside_the_build = binary.parent().unwrap_or(Path::new("."));
    let copy = PrivateBinary::new_under(beside_the_build, binary.file_name().unwrap_or_default())?;
    std::fs::copy(binary, &copy.path)
        .with_context(|| format!("could not copy {}", binary.display()))?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_static_build_for_this_machine_runs_here() {
        let host = Arch::host().expect("the tests run on x86_64 or arm64");
        assert!(runs_here(host.musl_target()));
        let other = Arch::ALL.into_iter().find(|a| *a != host).unwrap();
        assert!(!runs_here(other.musl_target()));
        assert!(!runs_here("x86_64-unknown-linux-gnu"));
    }
}
