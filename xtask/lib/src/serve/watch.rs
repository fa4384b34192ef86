//! `serve --watch`: a change to a workspace member's `.rs` or `Cargo.toml` rebuilds the served
//! functions; a function whose binary changed is restarted (its next invocation is a cold start
//! of the new build), and a failed build keeps the previous one serving.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use super::{build, Shared};
use crate::workspace;

/// Watches the workspace members' sources and rebuilds the served functions on a change.
pub(super) fn watch(
    root: &Path,
    release: bool,
    shared: Arc<Shared>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let metadata = cargo_metadata::MetadataCommand::new()
        .cargo_path(workspace::cargo())
        .current_dir(root)
        .no_deps()
        .exec()
        .context("could not read the workspace's members (cargo metadata)")?;
    let (sender, receiver) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher =
        notify::recommended_watcher(sender).context("could not start watching files")?;
    let target = workspace::target_dir(root);
    for package in metadata.workspace_packages() {
        let dir = package
            .manifest_path
            .parent()
            .context("a package manifest has no directory")?
            .as_std_path();
        // The root package's directory holds `target/`: watch only its manifest then.
        let (path, mode) = if target.starts_with(dir) {
            (
                package.manifest_path.as_std_path(),
                notify::RecursiveMode::NonRecursive,
            )
        } else {
            (dir, notify::RecursiveMode::Recursive)
        };
        watcher
            .watch(path, mode)
            .with_context(|| format!("could not watch {}", path.display()))?;
    }
    let root = root.to_owned();
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let relevant = |event: &notify::Event| {
            !event.kind.is_access()
                && event.paths.iter().any(|path| {
                    !path.starts_with(&target)
                        && (path.extension().is_some_and(|ext| ext == "rs")
                            || path.file_name().is_some_and(|name| name == "Cargo.toml"))
                })
        };
        while let Ok(first) = receiver.recv() {
            if !first.as_ref().is_ok_and(relevant) {
                continue;
            }
            // Editors save in bursts: wait for quiet before building.
            while receiver.recv_timeout(Duration::from_millis(300)).is_ok() {}
            for function in &shared.functions {
                let before = modified(&function.binary);
                match handle.block_on(build(&root, &function.package, &function.features, release))
                {
                    Ok(_) if modified(&function.binary) != before => {
                        for (_, emulator) in function.emulators.lock().expect("emulators").values()
                        {
                            emulator.restart();
                        }
                        eprintln!(
                            "serve: rebuilt `{}`; its next invocation runs the new build",
                            function.key
                        );
                    }
                    Ok(_) => {}
                    Err(err) => eprintln!(
                        "serve: `{}` did not build ({err:#}); still serving the previous build",
                        function.key
                    ),
                }
            }
        }
    });
    Ok(watcher)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
