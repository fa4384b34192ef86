//! A deploy's life when all goes well: `cargo xtask deploy` from nothing, an unchanged redeploy
//! that writes nothing, another environment sharing the version, a protected environment that
//! needs `--yes`, `promote` (single-stack: the same version; multi-stack: the same zip),
//! `status` with its drift, and the one line per step printed without a terminal.
//!
//! Each test runs the real CLI against a moto server of its own behind the fault proxy
//! (`deploy_stage`). Functions are tiny (`bare-echo`, x86_64 musl, dev profile), under function
//! keys of each test's own, so parallel tests never share a build output.

use lambda_stage_tests::deploy_stage::{
    args, assert_failed_with, assert_ok, echo_app, variable, Run, Stage, ACCOUNT, DEPLOY,
};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn single_stack_create_redeploy_protect_promote_and_status() {
    let stage = Stage::start().await;
    stage.put_parameter("us-east-1", "/demo/prod/api-key").await;
    stage.write_manifest(&echo_app("echo-single", "Hello", 128));
    let name = "demo-echo-single";

    // From nothing: role, function, version 1, alias `dev`.
    let run = stage.xtask(&args(DEPLOY, &["--env", "dev"])).await;
    assert_ok(&run);
    assert!(run.stdout.contains("code:     create function"), "{run:?}");
    let writes = stage.proxy.writes();
    for op in [
        "CreateRole",
        "PutRolePolicy",
        "CreateFunction",
        "PublishVersion",
        "CreateAlias",
    ] {
        assert!(
            writes.iter().any(|w| w == op),
            "{op} missing from {writes:?}"
        );
    }
    assert_eq!(stage.alias_version(name, "dev").await.as_deref(), Some("1"));
    let v1 = stage.version(name, "1").await;
    // Every environment's variables live in the one version; secrets only as references.
    assert_eq!(
        variable(&v1, "APP_DEV__GREETING").as_deref(),
        Some("Hello dev")
    );
    assert_eq!(
        variable(&v1, "APP_PROD__GREETING").as_deref(),
        Some("Hello prod")
    );
    assert_eq!(
        variable(&v1, "APP_PROD__API_KEY").as_deref(),
        Some("ssm:/demo/prod/api-key")
    );
    assert_eq!(
        variable(&v1, "LAMBDA_STAGE_ENVS").as_deref(),
        Some("dev,prod,staging")
    );
    assert!(
        v1["Description"].as_str().unwrap().contains("sha256="),
        "{v1}"
    );

    // An unchanged redeploy writes nothing.
    stage.proxy.reset_counts();
    let run = stage.xtask(&args(DEPLOY, &["--env", "dev"])).await;
    assert_ok(&run);
    assert!(run.stdout.contains("Nothing to do"), "{run:?}");
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());

    // Another environment re-uses version 1: only its alias is created.
    stage.proxy.reset_counts();
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "staging"])).await);
    assert_eq!(stage.proxy.writes(), ["CreateAlias"]);
    assert_eq!(
        stage.alias_version(name, "staging").await.as_deref(),
        Some("1")
    );

    // A protected environment refuses without a terminal unless --yes; nothing is written.
    stage.proxy.reset_counts();
    let run = stage.xtask(&args(DEPLOY, &["--env", "prod"])).await;
    assert_failed_with(&run, "--yes");
    assert!(run.stderr.contains("protected"), "{run:?}");
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());
    assert_eq!(stage.alias(name, "prod").await, None);

    // Promote: prod gets the very version staging runs, no upload, no publish.
    stage.proxy.reset_counts();
    let run = stage
        .xtask(&["promote", "--from", "staging", "--to", "prod", "--yes"])
        .await;
    assert_ok(&run);
    assert_eq!(stage.proxy.writes(), ["CreateAlias"]);
    assert_eq!(
        stage.alias_version(name, "prod").await.as_deref(),
        Some("1")
    );

    // Status: alias -> version, code sha, git commit, when, no drift.
    let run = stage.xtask(&["status", "--json"]).await;
    assert_ok(&run);
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    let prod = status
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["env"] == "prod")
        .unwrap();
    let function = &prod["functions"][0];
    assert_eq!(function["version"], "1", "{status}");
    assert_eq!(function["code_sha256"], v1["CodeSha256"], "{status}");
    assert!(function["git_commit"].is_string(), "{status}");
    assert!(function["deployed_at"].is_string(), "{status}");
    assert_eq!(function["drift"], serde_json::json!([]), "{status}");
    assert_eq!(prod["secrets"]["APP_API_KEY"], "ssm:/demo/prod/api-key");

    // Drift: the manifest now wants more memory than what is deployed.
    stage.write_manifest(&echo_app("echo-single", "Hello", 256));
    let run = stage.xtask(&["status", "--env", "dev"]).await;
    assert_ok(&run);
    assert!(
        run.stdout.contains("drift: memory 128 -> 256 MB"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_stack_deploy_and_promote_the_same_zip() {
    let stage = Stage::start().await;
    stage.write_manifest(&format!(
        r#"app = "shop"
strategy = "multi-stack"
region = "us-east-1"

[functions.echo-multi]
package = "bare-echo"
arch = "x86_64"
role = "arn:aws:iam::{ACCOUNT}:role/shop-lambda"

[environments.staging]
vars = {{ APP_GREETING = "Hi staging" }}

[environments.prod]
protected = true
account-id = "{ACCOUNT}"
function-name = "{{app}}-{{env}}-{{function}}"
vars = {{ APP_GREETING = "Hi prod" }}
"#
    ));
    // The named role must exist (pre-flight checks it).
    let run = stage.xtask(&args(DEPLOY, &["--env", "staging"])).await;
    assert_failed_with(&run, "does not exist");
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());
    stage.create_role("shop-lambda").await;

    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "staging"])).await);
    assert_eq!(
        stage
            .alias_version("shop-echo-multi-staging", "live")
            .await
            .as_deref(),
        Some("1")
    );
    let staging = stage.version("shop-echo-multi-staging", "1").await;
    assert_eq!(
        variable(&staging, "LAMBDA_STAGE_ENV").as_deref(),
        Some("staging")
    );
    assert_eq!(
        variable(&staging, "APP_GREETING").as_deref(),
        Some("Hi staging")
    );

    stage.proxy.reset_counts();
    let run = stage
        .xtask(&["promote", "--from", "staging", "--to", "prod", "--yes"])
        .await;
    assert_ok(&run);
    let prod = stage.version("shop-prod-echo-multi", "1").await;
    assert_eq!(prod["CodeSha256"], staging["CodeSha256"], "same zip");
    assert_eq!(variable(&prod, "LAMBDA_STAGE_ENV").as_deref(), Some("prod"));
    assert_eq!(variable(&prod, "APP_GREETING").as_deref(), Some("Hi prod"));
    assert!(
        prod["Description"]
            .as_str()
            .unwrap()
            .contains("promoted-from=staging:1"),
        "{prod}"
    );
    assert_eq!(
        stage
            .alias_version("shop-prod-echo-multi", "live")
            .await
            .as_deref(),
        Some("1")
    );
}

/// Issue 14 #18: without a terminal (how CI runs it), deploy prints one plain line per step on
/// stderr, as cargo does, in the order the steps run: each build (one for the two functions that
/// share a package), then each function's update (only the functions that change), with no
/// spinner drawn.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_terminal_deploy_prints_one_line_per_step() {
    let stage = Stage::start().await;
    let manifest = |greeting: &str| {
        format!(
            r#"app = "demo"
region = "us-east-1"

[functions.steps-a]
package = "bare-echo"
arch = "x86_64"
create-role = true

[functions.steps-b]
package = "bare-echo"
arch = "x86_64"
create-role = true

[environments.dev]
vars = {{ APP_GREETING = "Hi" }}

[environments.dev.functions.steps-b]
vars = {{ APP_ONLY_B = "{greeting}" }}
"#
        )
    };
    let steps = |run: &Run| -> Vec<String> {
        assert!(
            !run.stderr.contains('\r') && !run.stderr.contains('\u{1b}'),
            "no spinner without a terminal: {run:?}"
        );
        run.stderr
            .lines()
            .filter(|line| line.starts_with("    Building") || line.starts_with("   Deploying"))
            .map(str::to_owned)
            .collect()
    };
    stage.write_manifest(&manifest("one"));
    let run = stage.xtask(&args(DEPLOY, &["--env", "dev"])).await;
    assert_ok(&run);
    assert_eq!(
        steps(&run),
        [
            "    Building steps-a, steps-b (x86_64, dev)",
            "   Deploying steps-a (create role, create function, publish a version)",
            "   Deploying steps-b (create role, create function, publish a version)",
        ],
        "{run:?}"
    );

    // Only `steps-b` changes: their one build runs (cargo finds it up to date), one is updated.
    stage.write_manifest(&manifest("two"));
    let run = stage.xtask(&args(DEPLOY, &["--env", "dev"])).await;
    assert_ok(&run);
    assert_eq!(
        steps(&run),
        [
            "    Building steps-a, steps-b (x86_64, dev)",
            "   Deploying steps-b (update configuration, publish a version)",
        ],
        "{run:?}"
    );
}
