//! `cargo xtask` (cargo builds the `xtask` package alone), `cargo test --workspace` (every
//! member) and an adopting workspace's `cargo xtask` must compile the shared dependency graph
//! once: cargo turns on a dependency's features per build, and one differing feature of `syn` or
//! `tracing` recompiles everything above it, the AWS SDKs included. `xtask/lib/Cargo.toml` lists
//! the features a workspace with lambda-stage functions adds.

use std::collections::BTreeSet;
use std::process::Command;

use lambda_stage_tests::bins::workspace_root;
use lambda_stage_tests::scratch::Scratch;

/// `cargo build <selection>` in this repository.
fn build_here(selection: &[&str]) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(workspace_root())
        .args(["build"])
        .args(selection);
    command
}

/// The library artifacts (file names, which carry cargo's hash of the crate's configuration)
/// of `build`, a `cargo build` that compiles whatever is missing.
fn library_artifacts(mut build: Command) -> BTreeSet<String> {
    let output = build
        .args(["--quiet", "--message-format=json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{build:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|file| {
            let name = file.as_str()?.rsplit('/').next()?.to_owned();
            (name.ends_with(".rlib") || name.ends_with(".so")).then_some(name)
        })
        .collect()
}

/// What `cargo test --workspace` builds (tests/src/bins.rs explains the selection).
fn test_build() -> BTreeSet<String> {
    library_artifacts(build_here(&["--workspace", "--bins", "--tests"]))
}

/// Fails naming the libraries of `build` that the test build does not share, and the fix.
fn assert_reuses_the_test_build(what: &str, build: BTreeSet<String>) {
    assert!(build.len() > 100, "{what}'s graph: {build:?}");
    let test_build = test_build();
    let compiled_twice: Vec<_> = build.difference(&test_build).collect();
    assert!(
        compiled_twice.is_empty(),
        "{} libraries are compiled again for {what} with other features: {compiled_twice:?}\n\
         Find the differing features with `cargo tree -e features` for `-p xtask` and for \
         `--workspace`, and add them to xtask/lib/Cargo.toml",
        compiled_twice.len()
    );
}

#[test]
fn the_xtask_alias_reuses_every_library_the_test_build_compiles() {
    let xtask = library_artifacts(build_here(&["--package", "xtask"]));
    assert_reuses_the_test_build("`cargo xtask`", xtask);
}

/// An adopter's first command, `cargo xtask new`, builds the library alone in their workspace
/// (the README's `xtask` package); the adoption test then runs it from a clean CI cache.
#[test]
fn an_adopting_workspace_s_xtask_reuses_every_library_the_test_build_compiles() {
    let scratch = Scratch::new(&["xtask"]).unwrap();
    scratch
        .write(
            "xtask/Cargo.toml",
            "[package]\nname = \"xtask\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nlambda-stage-xtask.workspace = true\n",
        )
        .unwrap();
    scratch
        .write(
            "xtask/src/main.rs",
            "fn main() -> std::process::ExitCode {\n    lambda_stage_xtask::main()\n}\n",
        )
        .unwrap();
    let adopter = library_artifacts(scratch.cargo(&["build", "--package", "xtask"]))
        .into_iter()
        // lambda-stage's own crates are not members there, so the profile's settings for
        // dependencies apply to them (`[profile.dev.package."*"]`): they compile once more.
        .filter(|library| !library.starts_with("liblambda_stage"))
        .collect();
    assert_reuses_the_test_build("an adopting workspace's `cargo xtask`", adopter);
}
