//! `cargo xtask new`: in a throwaway workspace (never this repository), every kind of function
//! it scaffolds builds, is rustfmt-clean and passes its own unit test; the workspace members
//! and the manifest are edited in place with their comments kept; bad names are refused.

use lambda_stage_tests::scratch::Scratch;
use lambda_stage_xtask::manifest::Manifest;
use lambda_stage_xtask::new::{create, Kind, EVENTS};

const MANIFEST: &str = r#"# Shop: comments and layout survive `cargo xtask new`.
app = "shop"
region = "eu-west-1" # Ireland

[functions.existing]
create-role = true

# Environments
[environments.dev]
vars = { APP_GREETING = "Hello from dev" }

[environments.prod]
protected = true
"#;

fn scratch_with_manifest() -> Scratch {
    let scratch = Scratch::new(&[]).unwrap();
    scratch.write("lambda-stage.toml", MANIFEST).unwrap();
    scratch
}

#[test]
fn every_kind_of_function_builds_and_passes_its_own_test() {
    let scratch = scratch_with_manifest();
    let root = scratch.root();
    let mut names = vec!["orders".to_owned(), "storefront".to_owned()];
    create(root, "orders", Kind::Json, None).unwrap();
    create(root, "storefront", Kind::Http, None).unwrap();
    for template in EVENTS {
        let name = format!("on-{}", template.name);
        create(root, &name, Kind::Event(template), None).unwrap();
        names.push(name);
    }

    let manifest_text = scratch.read("lambda-stage.toml").unwrap();
    assert!(manifest_text.starts_with("# Shop: comments and layout survive"));
    assert!(manifest_text.contains("region = \"eu-west-1\" # Ireland"));
    let environments = manifest_text.find("# Environments").unwrap();
    let manifest =
        Manifest::parse(std::path::Path::new("lambda-stage.toml"), &manifest_text).unwrap();
    for name in &names {
        let table = manifest_text.find(&format!("[functions.{name}]")).unwrap();
        assert!(
            table < environments,
            "{name} before the environments:\n{manifest_text}"
        );
        assert!(manifest.function(name).is_some(), "{name}");
    }
    let cargo_toml = scratch.read("Cargo.toml").unwrap();
    for name in &names {
        assert!(
            cargo_toml.contains(&format!("\"functions/{name}\"")),
            "{cargo_toml}"
        );
    }

    scratch.cargo_ok(&["fmt", "--all", "--check"]).unwrap();
    let output = scratch.cargo_ok(&["test", "--workspace"]).unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    let passed = report
        .lines()
        .filter(|line| line.starts_with("test result: ok. 1 passed"))
        .count();
    assert_eq!(
        passed,
        names.len(),
        "one passing test per function:\n{report}"
    );
}

#[test]
fn taken_and_invalid_names_are_refused_and_nothing_is_written() {
    let scratch = scratch_with_manifest();
    let root = scratch.root();

    let err = create(root, "existing", Kind::Json, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already exists in") && err.contains("lambda-stage.toml"),
        "{err}"
    );

    std::fs::create_dir_all(root.join("functions/taken")).unwrap();
    let err = create(root, "taken", Kind::Json, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("functions/taken already exists"), "{err}");

    for (name, expected) in [
        ("Orders", "must start with a lower-case letter"),
        ("orders.api", "`.` is not allowed"),
        ("struct", "reserved"),
    ] {
        let err = create(root, name, Kind::Json, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{name}: {err}");
    }
    let err = Kind::from_flags(false, Some("apigw-http"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("use --http"), "{err}");

    assert_eq!(scratch.read("lambda-stage.toml").unwrap(), MANIFEST);
    assert!(!root.join("functions/orders").exists());
}

#[test]
fn a_package_name_taken_in_the_workspace_is_refused() {
    let scratch = Scratch::new(&["libs/billing"]).unwrap();
    scratch.write("lambda-stage.toml", MANIFEST).unwrap();
    scratch
        .write(
            "libs/billing/Cargo.toml",
            "[package]\nname = \"billing\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        )
        .unwrap();
    scratch.write("libs/billing/src/lib.rs", "").unwrap();
    let err = create(scratch.root(), "billing", Kind::Json, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already has a package named `billing`"),
        "{err}"
    );
}
