//! `cargo xtask bench build`: `cargo xtask build` against `cargo lambda build --release
//! --output-format zip` (cargo-lambda from PyPI, in the project venv) on the same functions, in
//! the same run, each in its own target directory.
//!
//! For `hello` and `http-api` on both architectures: clean build time, no-change rebuild time,
//! rebuild time after touching `src/main.rs`, and zip size. Both tools run as the commands a user
//! types (our xtask binary, cargo-lambda's), so process start-up counts for both.
//! Targets: zip size <= cargo-lambda's, no-change rebuild <= 1 s, clean build no worse.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _};

use lambda_stage_xtask::arch::Arch;
use lambda_stage_xtask::manifest::Manifest;
use lambda_stage_xtask::{build, tools, workspace};

const FUNCTIONS: [&str; 2] = ["hello", "http-api"];
const CARGO_LAMBDA_REQUIREMENT: &str = "cargo-lambda==1.9.2";

struct Figures {
    clean: Duration,
    no_change: Duration,
    touched: Duration,
    zip_size: u64,
}

pub fn run() -> anyhow::Result<()> {
    let root = workspace::root()?;
    let cargo_lambda = tools::venv_bin(&root, CARGO_LAMBDA_REQUIREMENT, "cargo-lambda")?;
    let xtask = std::env::current_exe().context("could not find the xtask binary")?;
    let bench_dir = workspace::target_dir(&root).join("bench-build");
    let manifest = Manifest::load(&root)?.map(|(_, manifest)| manifest);

    println!("function  arch    what            lambda-stage  cargo-lambda  ratio");
    for function in FUNCTIONS {
        // cargo-lambda builds what ours builds: the manifest's features of the function.
        let features = manifest
            .as_ref()
            .and_then(|manifest| manifest.function(function))
            .map_or_else(Vec::new, |spec| spec.features.clone());
        let main_rs = root.join("examples").join(function).join("src/main.rs");
        for arch in Arch::ALL {
            let ours_dir = bench_dir.join("lambda-stage");
            let ours = measure(&ours_dir, &main_rs, || {
                let mut command = Command::new(&xtask);
                command.args(["build", function, "--arch", arch.as_str()]);
                command.env("CARGO_TARGET_DIR", &ours_dir);
                run_quiet(command, &root)?;
                zip_size(&build::output_dir_in(&ours_dir, function, arch))
            })?;
            let theirs_dir = bench_dir.join("cargo-lambda");
            let theirs = measure(&theirs_dir, &main_rs, || {
                let mut command = Command::new(&cargo_lambda);
                command.args(["lambda", "build", "--release", "--output-format", "zip"]);
                command.args(["--package", function]);
                if !features.is_empty() {
                    command.args(["--features", &features.join(",")]);
                }
                command.arg(match arch {
                    Arch::Arm64 => "--arm64",
                    Arch::X86_64 => "--x86-64",
                });
                command.env("CARGO_TARGET_DIR", &theirs_dir);
                // cargo-lambda finds the Zig it installs beside it in the venv.
                command.env(
                    "PATH",
                    prepend_path(cargo_lambda.parent().unwrap_or(&root))?,
                );
                run_quiet(command, &root)?;
                zip_size(&theirs_dir.join("lambda").join(function))
            })?;
            report(function, arch, &ours, &theirs);
        }
    }
    Ok(())
}

/// Clean build (target directory removed), no-change rebuild, rebuild after touching main.rs.
fn measure(
    target_dir: &Path,
    main_rs: &Path,
    mut build: impl FnMut() -> anyhow::Result<u64>,
) -> anyhow::Result<Figures> {
    if target_dir.exists() {
        std::fs::remove_dir_all(target_dir)
            .with_context(|| format!("could not remove {}", target_dir.display()))?;
    }
    let (clean, zip_size) = timed(&mut build)?;
    let (no_change, _) = timed(&mut build)?;
    std::fs::File::options()
        .append(true)
        .open(main_rs)
        .and_then(|file| file.set_modified(SystemTime::now()))
        .with_context(|| format!("could not touch {}", main_rs.display()))?;
    let (touched, _) = timed(&mut build)?;
    Ok(Figures {
        clean,
        no_change,
        touched,
        zip_size,
    })
}

/// Runs one build; its duration and the zip size it reports.
fn timed(build: &mut dyn FnMut() -> anyhow::Result<u64>) -> anyhow::Result<(Duration, u64)> {
    let start = Instant::now();
    let size = build()?;
    Ok((start.elapsed(), size))
}

fn report(function: &str, arch: Arch, ours: &Figures, theirs: &Figures) {
    let arch = arch.as_str();
    let rows = [
        ("clean build", ours.clean, theirs.clean),
        ("no-change", ours.no_change, theirs.no_change),
        ("touch main.rs", ours.touched, theirs.touched),
    ];
    for (what, ours, theirs) in rows {
        println!(
            "{function:<9} {arch:<7} {what:<15} {:>10.2} s  {:>10.2} s  {:>5.2}",
            ours.as_secs_f64(),
            theirs.as_secs_f64(),
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
    println!(
        "{function:<9} {arch:<7} {:<15} {:>10} B  {:>10} B  {:>5.3}",
        "zip size",
        ours.zip_size,
        theirs.zip_size,
        ours.zip_size as f64 / theirs.zip_size as f64
    );
}

fn zip_size(dir: &Path) -> anyhow::Result<u64> {
    let zip = dir.join(build::ZIP_FILE);
    Ok(std::fs::metadata(&zip)
        .with_context(|| format!("no zip at {}", zip.display()))?
        .len())
}

fn run_quiet(mut command: Command, root: &Path) -> anyhow::Result<()> {
    let output = command
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn prepend_path(dir: &Path) -> anyhow::Result<std::ffi::OsString> {
    let current = std::env::var_os("PATH").unwrap_or_default();
    let paths = std::iter::once(PathBuf::from(dir)).chain(std::env::split_paths(&current));
    std::env::join_paths(paths).context("PATH cannot hold the venv directory")
}
