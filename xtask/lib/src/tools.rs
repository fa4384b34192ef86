//! The tools a build installs for itself, so a fresh machine needs nothing by hand: Rust
//! targets (rustup) and Python tools in the project venv `<root>/.venv` (installed with uv: Zig for
//! functions with C dependencies). Each `ensure_*` is a fast no-op when the tool is already there, and
//! prints one line on stderr for each thing it installs.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{bail, Context as _};
use fs4::fs_std::FileExt as _;

/// Zig as a cross C compiler and linker, for functions with C dependencies.
pub const ZIGLANG_REQUIREMENT: &str = "ziglang==0.15.2";
/// Drives cargo with Zig as the linker (`cargo zigbuild`).
pub const CARGO_ZIGBUILD_REQUIREMENT: &str = "cargo-zigbuild==0.24.1";
/// What [`ensure_zig`] installs, as [`venv_bins`] takes it: the venv's Python runs Zig
/// (`python -m ziglang`), and `cargo-zigbuild` drives cargo with it.
pub const ZIG_TOOLS: [(&str, &str); 2] = [
    (ZIGLANG_REQUIREMENT, "python"),
    (CARGO_ZIGBUILD_REQUIREMENT, "cargo-zigbuild"),
];

/// The project's Python virtual environment (git-ignored).
pub fn venv_dir(root: &Path) -> PathBuf {
    root.join(".venv")
}

/// Installs Python packages into the venv: uv, pinned, which pip installs once. uv resolves,
/// downloads and unpacks in parallel: moto, Zig, cargo-zigbuild and check-jsonschema took 6 s
/// with uv (uv itself included) and 44–52 s with pip on a 2-core machine.
pub const UV_REQUIREMENT: &str = "uv==0.13.9";

/// Ensures the project venv exists and `requirement` (a pip requirement such as
/// `moto[server]==5.*`) is installed in it, and returns the path of `executable` in the venv's
/// `bin/`. Safe to call from concurrent processes: installs are serialised by a file lock.
pub fn venv_bin(root: &Path, requirement: &str, executable: &str) -> anyhow::Result<PathBuf> {
    let mut bins = venv_bins(root, &[(requirement, executable)])?;
    Ok(bins.remove(0))
}

/// [`venv_bin`] for several `(requirement, executable)` pairs: the missing ones are installed
/// together, in one resolve and one install. The executables' paths come back in order.
pub fn venv_bins(root: &Path, wanted: &[(&str, &str)]) -> anyhow::Result<Vec<PathBuf>> {
    let venv = venv_dir(root);
    let state = venv.join(".lambda-stage");
    let bins: Vec<PathBuf> = wanted
        .iter()
        .map(|(_, executable)| venv.join("bin").join(executable))
        .collect();
    let missing = || -> Vec<&str> {
        wanted
            .iter()
            .zip(&bins)
            .filter(|((requirement, _), bin)| {
                !(bin.is_file() && state.join(marker_name(requirement)).is_file())
            })
            .map(|((requirement, _), _)| *requirement)
            .collect()
    };
    if missing().is_empty() {
        return Ok(bins);
    }

    std::fs::create_dir_all(&state)
        .with_context(|| format!("could not create {}", state.display()))?;
    let lock_path = state.join("lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("could not create {}", lock_path.display()))?;
    lock.lock_exclusive()
        .with_context(|| format!("could not lock {}", lock_path.display()))?;
    // Another process may have installed them while we waited for the lock.
    let requirements = missing();
    if requirements.is_empty() {
        return Ok(bins);
    }

    let python = venv.join("bin").join("python");
    if !python.is_file() {
        eprintln!("Creating the project Python venv at {}", venv.display());
        run_quiet(
            Command::new(system_python()?)
                .args([OsStr::new("-m"), OsStr::new("venv")])
                .arg(&venv),
            "create the project venv",
        )?;
    }
    let uv = ensure_uv(&venv, &state)?;
    let listed = requirements
        .iter()
        .map(|requirement| format!("`{requirement}`"))
        .collect::<Vec<_>>()
        .join(", ");
    eprintln!("Installing {listed} into {}", venv.display());
    run_quiet(
        Command::new(&uv)
            .args(["pip", "install", "--quiet", "--python"])
            .arg(&python)
            .args(&requirements),
        &format!("install {listed} with uv"),
    )?;
    for ((requirement, executable), bin) in wanted.iter().zip(&bins) {
        if !bin.is_file() {
            bail!(
                "`{requirement}` installed, but it has no `{executable}` in {}",
                venv.join("bin").display()
            );
        }
        let marker = state.join(marker_name(requirement));
        std::fs::write(&marker, requirement)
            .with_context(|| format!("could not write {}", marker.display()))?;
    }
    Ok(bins)
}

/// The venv's uv (`<venv>/bin/uv`), installed with the venv's pip the first time.
fn ensure_uv(venv: &Path, state: &Path) -> anyhow::Result<PathBuf> {
    let uv = venv.join("bin").join("uv");
    let marker = state.join(marker_name(UV_REQUIREMENT));
    if uv.is_file() && marker.is_file() {
        return Ok(uv);
    }
    run_quiet(
        Command::new(venv.join("bin").join("python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            UV_REQUIREMENT,
        ]),
        &format!("install `{UV_REQUIREMENT}` (the venv's installer) with pip"),
    )?;
    std::fs::write(&marker, UV_REQUIREMENT)
        .with_context(|| format!("could not write {}", marker.display()))?;
    Ok(uv)
}

/// The venv's Python with Zig (`python -m ziglang`) installed, plus `cargo-zigbuild`.
/// Returns the venv's `bin/` directory: put it first on `PATH` so cargo-zigbuild finds
/// `cargo-zigbuild` and the Python that runs Zig.
pub fn ensure_zig(root: &Path) -> anyhow::Result<PathBuf> {
    let bins = venv_bins(root, &ZIG_TOOLS)?;
    Ok(bins[0]
        .parent()
        .context("venv python has no parent directory")?
        .to_path_buf())
}

fn marker_name(requirement: &str) -> String {
    requirement
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn system_python() -> anyhow::Result<PathBuf> {
    which("python3").context(
        "no `python3` on PATH: the project venv needs Python 3 with the venv module \
         (on Debian: `apt-get install -y python3 python3-venv`)",
    )
}

/// Ensures the Rust standard library for `triple` is installed (`rustup target add`), given the
/// targets [`installed_rust_targets`] listed (a build lists them once per command,
/// [`crate::build::BuildMemo`]); `installed` gains `triple` once it is added.
pub fn ensure_rust_target_among(triple: &str, installed: &mut Vec<String>) -> anyhow::Result<()> {
    if installed.iter().any(|t| t == triple) {
        return Ok(());
    }
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _guard = INSTALLING
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    // Another thread may have added it while this one waited for the lock.
    if !installed_rust_targets()?.iter().any(|t| t == triple) {
        eprintln!("Installing the Rust target {triple} (rustup target add {triple})");
        run_quiet(
            Command::new("rustup").args(["target", "add", triple]),
            &format!("install the Rust target `{triple}`"),
        )?;
    }
    installed.push(triple.to_owned());
    Ok(())
}

/// The Rust targets rustup has installed (`rustup target list --installed`).
pub fn installed_rust_targets() -> anyhow::Result<Vec<String>> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context(
            "could not run `rustup`: lambda-stage installs cross-compilation targets with rustup \
             (https://rustup.rs)",
        )?;
    if !output.status.success() {
        bail!(
            "`rustup target list --installed` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.trim().to_owned())
        .collect())
}

/// Finds `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs a command with its output captured; on failure the error carries that output.
pub fn run_quiet(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not {what}: {command:?} did not start"))?;
    if !output.status.success() {
        bail!(
            "could not {what}: {command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
