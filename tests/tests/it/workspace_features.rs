//! `cargo xtask` (cargo builds the `xtask` package alone) and `cargo test --workspace` (every
//! member) must compile the shared dependency graph once: cargo turns on a dependency's features
//! per build, and one differing feature of `syn` or `tracing` recompiles everything above it,
//! the AWS SDKs included. `xtask/Cargo.toml` lists the features the other members add.

use std::collections::BTreeSet;
use std::process::Command;

use lambda_stage_tests::bins::workspace_root;

/// The library artifacts (file names, which carry cargo's hash of the crate's configuration)
/// of a build with `selection`, compiling whatever is missing.
fn library_artifacts(selection: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--quiet", "--message-format=json"])
        .args(selection)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo build {selection:?}: {}",
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

#[test]
fn the_xtask_alias_reuses_every_library_the_test_build_compiles() {
    // What `cargo test --workspace` builds (tests/src/bins.rs explains the selection).
    let test_build = library_artifacts(&["--workspace", "--bins", "--tests"]);
    let xtask = library_artifacts(&["--package", "xtask"]);
    assert!(xtask.len() > 100, "xtask's graph: {xtask:?}");
    let compiled_twice: Vec<_> = xtask.difference(&test_build).collect();
    assert!(
        compiled_twice.is_empty(),
        "{} libraries are compiled again for `cargo xtask` with other features: {compiled_twice:?}\n\
         Find the differing features with `cargo tree -e features` for `-p xtask` and for \
         `--workspace`, and add them to xtask/Cargo.toml",
        compiled_twice.len()
    );
}
