//! What this repository's own test suite needs on a fresh machine, installed by
//! `cargo xtask test` (and so by CI): the musl targets, moto (the local AWS API), Zig, the
//! pipeline providers' schema checker (PyPI, in the project venv, with uv) and qemu-user (apt, as root).
//! None of it ships to adopters: `lambda-stage-xtask` only installs what a build needs.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context as _};
use lambda_stage_xtask::arch::Arch;
use lambda_stage_xtask::tools::{self, run_quiet, which};

/// The local AWS API the deploy tests run against.
pub const MOTO_REQUIREMENT: &str = "moto[server]==5.*";
/// Validates generated pipelines against the providers' published JSON schemas, which it ships
/// (`--builtin-schema vendor.github-workflows`, `vendor.bitbucket-pipelines`); pinned, so the
/// schemas are the same on every machine.
pub const CHECK_JSONSCHEMA_REQUIREMENT: &str = "check-jsonschema==0.39.0";
/// Runs arm64 Linux binaries on an x86_64 machine.
pub const QEMU_PACKAGE: &str = "qemu-user-static";
pub const QEMU_AARCH64: &str = "qemu-aarch64-static";

/// Everything the test suite needs, installed once before `cargo test --workspace`. The three
/// kinds of install mostly wait on downloads, and none needs another, so they run side by side.
pub fn for_tests(root: &Path) -> anyhow::Result<()> {
    std::thread::scope(|scope| {
        let targets = scope.spawn(|| -> anyhow::Result<()> {
            let mut installed = tools::installed_rust_targets()?;
            for arch in Arch::ALL {
                tools::ensure_rust_target_among(arch.musl_target(), &mut installed)?;
            }
            Ok(())
        });
        let qemu = scope.spawn(|| ensure_apt_package(QEMU_PACKAGE, QEMU_AARCH64));
        let [zig, zigbuild] = tools::ZIG_TOOLS;
        let python = tools::venv_bins(
            root,
            &[
                (MOTO_REQUIREMENT, "moto_server"),
                zig,
                zigbuild,
                (CHECK_JSONSCHEMA_REQUIREMENT, "check-jsonschema"),
            ],
        );
        for installed in [targets.join(), qemu.join()] {
            installed.map_err(|_| anyhow::anyhow!("an install thread panicked"))??;
        }
        python.map(drop)
    })
}

/// Ensures the Debian package `pkg` is installed, unless `probe_binary` is already on `PATH`.
/// Runs `apt-get update` once per process before the first install; needs root.
pub fn ensure_apt_package(pkg: &str, probe_binary: &str) -> anyhow::Result<()> {
    static APT: Mutex<bool> = Mutex::new(false);
    if which(probe_binary).is_some() {
        return Ok(());
    }
    let mut updated = APT.lock().unwrap_or_else(|poison| poison.into_inner());
    if which(probe_binary).is_some() {
        return Ok(());
    }
    if which("apt-get").is_none() {
        bail!("`{probe_binary}` is missing and this is not a Debian-like system: install `{pkg}` (or whatever provides `{probe_binary}`) by hand");
    }
    if !is_root()? {
        bail!("`{probe_binary}` is missing; install it as root: `sudo apt-get install -y {pkg}`");
    }
    if !*updated {
        run_quiet(
            Command::new("apt-get").args(["update", "-q"]),
            "update the apt package lists (`apt-get update`)",
        )?;
        *updated = true;
    }
    eprintln!("Installing the Debian package {pkg} (apt-get install -y {pkg})");
    run_quiet(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", pkg])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("install `{pkg}` with apt-get"),
    )?;
    if which(probe_binary).is_none() {
        bail!("installed `{pkg}`, but `{probe_binary}` is still not on PATH");
    }
    Ok(())
}

fn is_root() -> anyhow::Result<bool> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .context("could not run `id -u`")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}
