//! Adoption outside this repository: a throwaway workspace depends on lambda-stage and its xtask
//! library by path, with the README's three-line `xtask/src/main.rs` and cargo alias, scaffolds
//! a function with its own `cargo xtask new` and invokes it locally with its own
//! `cargo xtask invoke`. Dependencies compiled for the repository are reused (see
//! `lambda_stage_tests::scratch`).

use std::process::{Command, Output};

use lambda_stage_tests::bins::workspace_root;
use lambda_stage_tests::scratch::Scratch;
use serde_json::{json, Value};

const XTASK_MAIN: &str =
    "fn main() -> std::process::ExitCode {\n    lambda_stage_xtask::main()\n}\n";

const XTASK_TOML: &str = r#"[package]
name = "xtask"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
lambda-stage-xtask.workspace = true
"#;

/// This repository's `.cargo/config.toml`: the `cargo xtask` alias the README gives adopters.
fn cargo_config() -> String {
    std::fs::read_to_string(workspace_root().join(".cargo/config.toml")).unwrap()
}

const MANIFEST: &str = r#"# The adopting app: no functions yet, `cargo xtask new` adds them.
app = "adopter"
region = "eu-west-1"

[environments.dev]
vars = { APP_GREETING = "Hello from dev" }

[environments.staging]
vars = { APP_GREETING = "Hi from staging" }

[environments.prod]
protected = true
"#;

#[test]
fn a_user_workspace_adopts_the_xtask_library_and_invokes_a_new_function_locally() {
    let scratch = Scratch::new(&["xtask"]).unwrap();
    scratch.write("xtask/Cargo.toml", XTASK_TOML).unwrap();
    scratch.write("xtask/src/main.rs", XTASK_MAIN).unwrap();
    scratch
        .write(".cargo/config.toml", &cargo_config())
        .unwrap();
    scratch.write("lambda-stage.toml", MANIFEST).unwrap();

    scratch.cargo_ok(&["xtask", "new", "greeter"]).unwrap();
    let manifest = scratch.read("lambda-stage.toml").unwrap();
    assert!(
        manifest.starts_with("# The adopting app") && manifest.contains("[functions.greeter]"),
        "{manifest}"
    );
    let members = scratch.read("Cargo.toml").unwrap();
    assert!(members.contains("\"functions/greeter\""), "{members}");

    // The manifest's per-environment config reaches the function, in the invoked environment.
    for (env, greeting) in [("staging", "Hi from staging"), ("prod", "Hello")] {
        let output = scratch
            .cargo_ok(&[
                "xtask",
                "invoke",
                "greeter",
                "--env",
                env,
                "--data",
                r#"{"name":"Ada"}"#,
            ])
            .unwrap();
        let reply: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
            panic!(
                "stdout is not the function's JSON answer ({err}):\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        assert_eq!(
            reply,
            json!({ "message": format!("{greeting}, Ada!"), "env": env })
        );
    }
}

/// Issue 14 #11: the `cargo xtask` alias keeps cargo quiet once xtask is built (no `Finished`,
/// no `Running`), but shows cargo's progress while it compiles, so the first run, which
/// compiles xtask for minutes, does not look hung (`--quiet` alone hides the progress bar).
/// Shown with this repository's alias on a package named `xtask` whose build takes 1.5 s (a
/// build script that sleeps): cargo draws its bar only after half a second.
#[test]
fn the_xtask_alias_shows_progress_while_compiling_and_nothing_once_built() {
    let config = cargo_config();
    let alias = config
        .parse::<toml::Table>()
        .unwrap()
        .get("alias")
        .and_then(|aliases| aliases.get("xtask"))
        .and_then(|alias| alias.as_str())
        .map(str::to_owned)
        .expect("an `xtask` alias");
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("xtask = \"{alias}\"")),
        "the README gives adopters the same alias: {alias}"
    );

    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[package]\nname = \"xtask\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(
        "build.rs",
        "fn main() { std::thread::sleep(std::time::Duration::from_millis(1500)); }\n",
    );
    write("src/main.rs", "fn main() { println!(\"xtask ran\"); }\n");
    write(".cargo/config.toml", &config);
    let cargo_xtask = || -> Output {
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .arg("xtask")
            .current_dir(dir.path())
            .env("CARGO_TARGET_DIR", dir.path().join("target"))
            .output()
            .unwrap()
    };

    let first = cargo_xtask();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&first.stdout), "xtask ran\n");
    assert!(
        stderr.contains("] 1/3: xtask(build)"),
        "cargo's progress while compiling: {stderr:?}"
    );
    assert!(
        !stderr.contains("Compiling") && !stderr.contains("Finished"),
        "{stderr:?}"
    );

    let again = cargo_xtask();
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout), "xtask ran\n");
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "",
        "nothing once xtask is built"
    );
}
