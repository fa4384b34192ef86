//! Adoption outside this repository: a throwaway workspace depends on lambda-stage and its xtask
//! library by path, with the README's three-line `xtask/src/main.rs` and cargo alias, scaffolds
//! a function with its own `cargo xtask new` and invokes it locally with its own
//! `cargo xtask invoke`. Dependencies compiled for the repository are reused (see
//! `lambda_stage_tests::scratch`).

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

const ALIAS: &str = "[alias]\nxtask = \"run --quiet --package xtask --\"\n";

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
    scratch.write(".cargo/config.toml", ALIAS).unwrap();
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
