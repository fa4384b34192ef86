//! `cargo xtask deploy | promote | finalize | rollback | status` against moto's server on
//! 127.0.0.1, through the real AWS SDK, with a fault-injecting proxy in between that enforces
//! what moto does not (alias `RevisionId`, throttling, failures at a chosen call).
//!
//! Each test runs the real CLI as a subprocess (its own environment: dummy credentials,
//! `AWS_ENDPOINT_URL`, no instance metadata) on a moto server of its own (leased from the pool,
//! reset). Functions are tiny (`bare-echo`, x86_64 musl, dev profile); each test deploys under
//! its own function keys so parallel tests never share a build output.

use lambda_stage_tests::deploy_stage::{assert_failed_with, assert_ok, variable, Stage, ACCOUNT};
use lambda_stage_tests::fault_proxy::FaultKind;
use serde_json::Value;

fn single_stack(function: &str, greeting: &str, memory: u32) -> String {
    format!(
        r#"app = "demo"
region = "us-east-1"
account-id = "{ACCOUNT}"

[functions.{function}]
package = "bare-echo"
arch = "x86_64"
memory = {memory}
create-role = true
required-vars = ["APP_GREETING"]
tags = {{ team = "payments" }}

[environments.dev]
vars = {{ APP_GREETING = "{greeting} dev" }}

[environments.staging]
vars = {{ APP_GREETING = "{greeting} staging" }}

[environments.prod]
protected = true
vars = {{ APP_GREETING = "{greeting} prod" }}
secrets = {{ APP_API_KEY = "ssm:/demo/prod/api-key" }}
"#
    )
}

const DEPLOY: &[&str] = &["deploy", "--profile", "dev"];

fn args<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(more).copied().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn single_stack_create_redeploy_protect_promote_and_status() {
    let stage = Stage::start().await;
    stage.put_parameter("us-east-1", "/demo/prod/api-key").await;
    stage.write_manifest(&single_stack("echo-single", "Hello", 128));
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
    stage.write_manifest(&single_stack("echo-single", "Hello", 256));
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

#[tokio::test(flavor = "multi_thread")]
async fn canary_finalize_and_rollback() {
    let stage = Stage::start().await;
    let name = "demo-echo-canary";
    stage.put_parameter("us-east-1", "/demo/prod/api-key").await;
    stage.write_manifest(&single_stack("echo-canary", "One", 128));
    assert_ok(
        &stage
            .xtask(&args(DEPLOY, &["--env", "prod", "--yes"]))
            .await,
    );
    assert_eq!(
        stage.alias_version(name, "prod").await.as_deref(),
        Some("1")
    );

    // A canary keeps the alias on version 1 and routes 10% to version 2.
    stage.write_manifest(&single_stack("echo-canary", "Two", 128));
    let run = stage
        .xtask(&args(DEPLOY, &["--env", "prod", "--yes", "--canary", "10"]))
        .await;
    assert_ok(&run);
    let alias = stage.alias(name, "prod").await.unwrap();
    assert_eq!(alias["FunctionVersion"], "1", "{alias}");
    assert_eq!(
        alias["RoutingConfig"]["AdditionalVersionWeights"]["2"], 0.1,
        "{alias}"
    );
    let run = stage.xtask(&["status", "--env", "prod", "--json"]).await;
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status[0]["functions"][0]["weights"]["2"], 0.1, "{status}");

    // Finalize: 100% to version 2; the alias records the step and the canary it replaced.
    assert_ok(&stage.xtask(&["finalize", "--env", "prod", "--yes"]).await);
    let alias = stage.alias(name, "prod").await.unwrap();
    assert_eq!(alias["FunctionVersion"], "2", "{alias}");
    assert_eq!(weights(&alias), 0, "{alias}");
    assert!(
        alias["Description"]
            .as_str()
            .unwrap()
            .ends_with(" steps=3f:1+2@0.1,2d:1,1d:-"),
        "{alias}"
    );

    // Rollback undoes exactly the finalize: the canary is back, from the history in AWS.
    assert_ok(&stage.xtask(&["rollback", "--env", "prod", "--yes"]).await);
    let alias = stage.alias(name, "prod").await.unwrap();
    assert_eq!(alias["FunctionVersion"], "1", "{alias}");
    assert_eq!(
        alias["RoutingConfig"]["AdditionalVersionWeights"]["2"], 0.1,
        "{alias}"
    );

    // Finalize after a rollback finalizes the canary again.
    assert_ok(&stage.xtask(&["finalize", "--env", "prod", "--yes"]).await);
    assert_eq!(
        stage.alias_version(name, "prod").await.as_deref(),
        Some("2")
    );

    // Two rollbacks walk back two steps: the finalize, then the canary deploy.
    assert_ok(&stage.xtask(&["rollback", "--env", "prod", "--yes"]).await);
    assert_ok(&stage.xtask(&["rollback", "--env", "prod", "--yes"]).await);
    let alias = stage.alias(name, "prod").await.unwrap();
    assert_eq!(alias["FunctionVersion"], "1", "{alias}");
    assert_eq!(weights(&alias), 0, "{alias}");

    // A rollback during a canary drops the canary and keeps the primary version.
    let run = stage
        .xtask(&args(DEPLOY, &["--env", "prod", "--yes", "--canary", "20"]))
        .await;
    assert_ok(&run);
    let alias = stage.alias(name, "prod").await.unwrap();
    assert_eq!(
        alias["RoutingConfig"]["AdditionalVersionWeights"]["2"], 0.2,
        "{alias}"
    );
    assert_ok(&stage.xtask(&["rollback", "--env", "prod", "--yes"]).await);
    let alias = stage.alias(name, "prod").await.unwrap();
    assert_eq!(alias["FunctionVersion"], "1", "{alias}");
    assert_eq!(weights(&alias), 0, "{alias}");
}

fn weights(alias: &Value) -> usize {
    alias["RoutingConfig"]["AdditionalVersionWeights"]
        .as_object()
        .map_or(0, |w| w.len())
}

fn two_functions(greeting: &str, package_a: &str) -> String {
    format!(
        r#"app = "demo"
region = "us-east-1"

[functions.echo-fail-a]
package = "{package_a}"
arch = "x86_64"
create-role = true

[functions.echo-fail-b]
package = "bare-echo"
arch = "x86_64"
create-role = true

# `hello` (a new package for function a) also needs its API key to start.
[environments.dev]
vars = {{ APP_GREETING = "{greeting}", APP_API_KEY = "test-key" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn any_aws_error_leaves_every_alias_and_a_rerun_converges() {
    let stage = Stage::start().await;
    stage.write_manifest(&two_functions("start", "bare-echo"));
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "dev"])).await);

    // (operation, which call fails, the package of function a: a new one changes its code).
    let steps: &[(&str, usize, &str)] = &[
        ("GetCallerIdentity", 1, "bare-echo"),
        ("GetFunction", 2, "bare-echo"),
        ("ListVersionsByFunction", 1, "bare-echo"),
        ("UpdateFunctionCode", 1, "hello"),
        ("UpdateFunctionConfiguration", 2, "hello"),
        ("PublishVersion", 2, "hello"),
        ("UpdateAlias", 1, "hello"),
        // Function a's alias already moved when b's fails: a's is put back.
        ("UpdateAlias", 2, "hello"),
    ];
    for (round, (operation, nth, package)) in steps.iter().enumerate() {
        let before_a = stage.alias("demo-echo-fail-a", "dev").await.unwrap();
        let before_b = stage.alias("demo-echo-fail-b", "dev").await.unwrap();
        let greeting = format!("round {round}");
        stage.write_manifest(&two_functions(&greeting, package));
        stage.proxy.reset_counts();
        stage.proxy.inject(operation, *nth, 1, FaultKind::Fail);
        let run = stage.xtask(&args(DEPLOY, &["--env", "dev"])).await;
        assert_failed_with(&run, "InjectedFailure");
        assert!(run.stderr.contains("re-run"), "says what to do: {run:?}");
        // The failing call was made (a failed second alias move adds the move that puts the
        // first alias back).
        assert!(stage.proxy.calls(operation) >= *nth, "{operation}: {run:?}");
        for (function, before) in [
            ("demo-echo-fail-a", &before_a),
            ("demo-echo-fail-b", &before_b),
        ] {
            let now = stage.alias(function, "dev").await.unwrap();
            assert_eq!(
                now["FunctionVersion"], before["FunctionVersion"],
                "{operation}: {run:?}"
            );
            assert_eq!(
                now["Description"], before["Description"],
                "{operation}: {run:?}"
            );
        }

        // The same command again, without the fault, finishes the job.
        stage.proxy.clear_faults();
        let run = stage.xtask(&args(DEPLOY, &["--env", "dev"])).await;
        assert_ok(&run);
        for function in ["demo-echo-fail-a", "demo-echo-fail-b"] {
            let version = stage.alias_version(function, "dev").await.unwrap();
            let config = stage.version(function, &version).await;
            assert_eq!(
                variable(&config, "APP_DEV__GREETING").as_deref(),
                Some(greeting.as_str()),
                "{operation}: {function} runs version {version}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_deploys_one_wins_the_other_reports_a_conflict() {
    let stage = Stage::start().await;
    stage.write_manifest(&single_stack("echo-race", "Before", 128));
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "dev"])).await);

    stage.write_manifest(&single_stack("echo-race", "After", 128));
    stage.proxy.reset_counts();
    stage.proxy.hold("UpdateAlias", 2);
    let deploy = args(DEPLOY, &["--env", "dev"]);
    let (first, second) = tokio::join!(stage.xtask(&deploy), stage.xtask(&deploy));
    assert_eq!(
        stage.proxy.calls("UpdateAlias"),
        2,
        "both reached the alias"
    );
    let (winner, loser) = match (first.success, second.success) {
        (true, false) => (first, second),
        (false, true) => (second, first),
        _ => panic!("exactly one deploy must win:\n{first:?}\n{second:?}"),
    };
    assert!(loser.stderr.contains("conflict"), "{loser:?}");
    let version = stage.alias_version("demo-echo-race", "dev").await.unwrap();
    assert!(
        winner
            .stdout
            .contains(&format!("alias `dev` -> version {version}")),
        "the alias is where the winner put it:\n{winner:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_refusals_write_nothing() {
    let stage = Stage::start().await;
    let good = single_stack("echo-preflight", "Hi", 128);
    let deploy = args(DEPLOY, &["--env", "dev"]);

    // --dry-run prints the plan and stops.
    stage.write_manifest(&good);
    let run = stage.xtask(&args(&deploy, &["--dry-run"])).await;
    assert_ok(&run);
    assert!(run.stdout.contains("Plan to deploy to `dev`"), "{run:?}");
    assert!(run.stdout.contains("--dry-run"), "{run:?}");
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());

    // Missing credentials: a clear message, and not even a call.
    stage.proxy.reset_counts();
    let run = stage
        .xtask_env(
            &deploy,
            &[("AWS_ACCESS_KEY_ID", None), ("AWS_SECRET_ACCESS_KEY", None)],
        )
        .await;
    assert_failed_with(&run, "no usable AWS credentials for environment `dev`");
    assert!(run.stderr.contains("Nothing was written"), "{run:?}");
    assert_eq!(stage.proxy.log(), Vec::<String>::new());

    // Credentials of another account: refused after STS, before any write.
    stage.write_manifest(&good.replace(ACCOUNT, "999999999999"));
    stage.proxy.reset_counts();
    let run = stage.xtask(&deploy).await;
    assert_failed_with(&run, "belongs to account 999999999999");
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());

    // A bad region, from the manifest or from the environment.
    stage.write_manifest(&good.replace("us-east-1", "moon"));
    let run = stage.xtask(&deploy).await;
    assert_failed_with(&run, "`region`: `moon` is not an AWS region name");
    assert!(
        run.stderr.contains("lambda-stage.toml:2:1"),
        "points at the line: {run:?}"
    );
    stage.write_manifest(&good.replace("region = \"us-east-1\"\n", ""));
    stage.proxy.reset_counts();
    let run = stage
        .xtask_env(&deploy, &[("AWS_REGION", Some("nowhere"))])
        .await;
    assert_failed_with(
        &run,
        "`nowhere` (environment `dev`) is not an AWS region name",
    );
    assert_eq!(stage.proxy.log(), Vec::<String>::new());

    // Incomplete configuration for an environment the version serves.
    stage.write_manifest(&good.replace("vars = { APP_GREETING = \"Hi staging\" }", ""));
    let run = stage.xtask(&deploy).await;
    assert_failed_with(
        &run,
        "requires `APP_GREETING`, which environment `staging` does not set",
    );

    // Illegal and reserved variable names, located in the file.
    stage.write_manifest(&good.replace("APP_GREETING = \"Hi dev\"", "AWS_REGION = \"x\""));
    let run = stage.xtask(&deploy).await;
    assert_failed_with(
        &run,
        "`environments.dev.vars.AWS_REGION`: `AWS_REGION` is reserved",
    );
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_retried_with_backoff() {
    let stage = Stage::start().await;
    stage.write_manifest(&single_stack("echo-throttle", "One", 128));
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "dev"])).await);

    stage.write_manifest(&single_stack("echo-throttle", "Two", 128));
    stage.proxy.reset_counts();
    stage
        .proxy
        .inject("GetCallerIdentity", 1, 1, FaultKind::Throttle);
    stage
        .proxy
        .inject("PublishVersion", 1, 2, FaultKind::Throttle);
    stage.proxy.inject("UpdateAlias", 1, 2, FaultKind::Throttle);
    let run = stage.xtask(&args(DEPLOY, &["--env", "dev"])).await;
    assert_ok(&run);
    assert_eq!(stage.proxy.calls("GetCallerIdentity"), 2);
    assert_eq!(stage.proxy.calls("PublishVersion"), 3);
    assert_eq!(stage.proxy.calls("UpdateAlias"), 3);
    assert_eq!(
        stage
            .alias_version("demo-echo-throttle", "dev")
            .await
            .as_deref(),
        Some("2")
    );
}

/// `rb-hello` and `rb-hello2` (and `rb-new` when `with_new`) in staging and prod; `hello_var`
/// is a variable of `rb-hello` alone in staging, so changing it changes that function only.
fn rollback_app(greeting: &str, hello_var: &str, with_new: bool) -> String {
    let new = if with_new {
        "[functions.rb-new]\npackage = \"bare-echo\"\narch = \"x86_64\"\ncreate-role = true\n"
    } else {
        ""
    };
    format!(
        r#"app = "demo"
region = "us-east-1"
account-id = "{ACCOUNT}"

[functions.rb-hello]
package = "bare-echo"
arch = "x86_64"
create-role = true

[functions.rb-hello2]
package = "bare-echo"
arch = "x86_64"
create-role = true

{new}
[environments.staging]
vars = {{ APP_GREETING = "{greeting} staging" }}

[environments.staging.functions.rb-hello]
vars = {{ APP_ONLY_HELLO = "{hello_var}" }}

[environments.prod]
vars = {{ APP_GREETING = "{greeting} prod" }}
"#
    )
}

const HELLO: &str = "demo-rb-hello";
const HELLO2: &str = "demo-rb-hello2";

/// Issue 14 #4: after both functions are deployed twice and `hello` alone gets a canary,
/// rollback drops that canary and leaves `hello2` alone; the next rollback undoes the second
/// deploy of both; then nothing earlier is recorded, and rollback says so and writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_undoes_only_the_latest_step_and_walks_back() {
    let stage = Stage::start().await;
    let staging = |more: &[&'static str]| args(&args(DEPLOY, &["--env", "staging"]), more);
    stage.write_manifest(&rollback_app("One", "a", false));
    assert_ok(&stage.xtask(&staging(&[])).await);
    stage.write_manifest(&rollback_app("Two", "a", false));
    assert_ok(&stage.xtask(&staging(&[])).await);
    for function in [HELLO, HELLO2] {
        assert_eq!(
            stage.alias_version(function, "staging").await.as_deref(),
            Some("2")
        );
    }
    stage.write_manifest(&rollback_app("Two", "b", false));
    assert_ok(&stage.xtask(&staging(&["rb-hello", "--canary", "10"])).await);
    let alias = stage.alias(HELLO, "staging").await.unwrap();
    assert_eq!(alias["FunctionVersion"], "2", "{alias}");
    assert_eq!(
        alias["RoutingConfig"]["AdditionalVersionWeights"]["3"], 0.1,
        "{alias}"
    );

    // Status shows each alias's steps and what rollback would undo.
    let run = stage.xtask(&["status", "--env", "staging"]).await;
    assert_ok(&run);
    assert!(
        run.stdout.contains(
            "history: #3 deploy from version 2, #2 deploy from version 1, #1 deploy created the alias"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("history: #2 deploy from version 1, #1 deploy created the alias"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("rollback would undo step #3 (deploy) on rb-hello\n"),
        "{run:?}"
    );
    let run = stage.xtask(&["status", "--env", "staging", "--json"]).await;
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    let hello = &status[0]["functions"][0];
    assert_eq!(hello["function"], "rb-hello", "{status}");
    assert_eq!(hello["history"][0]["step"]["number"], 3, "{status}");
    assert_eq!(hello["history"][0]["step"]["kind"], "deploy", "{status}");
    assert_eq!(hello["history"][0]["before"]["version"], "2", "{status}");
    assert_eq!(hello["history"][2]["before"], Value::Null, "{status}");
    assert_eq!(
        status[0]["next_rollback"]["functions"],
        serde_json::json!(["rb-hello"]),
        "{status}"
    );

    // First rollback: the canary of `hello` is dropped; `hello2` is not even written.
    let hello2_before = stage.alias(HELLO2, "staging").await.unwrap();
    stage.proxy.reset_counts();
    let run = stage.xtask(&["rollback", "--env", "staging"]).await;
    assert_ok(&run);
    assert!(run.stdout.contains("undo step #3 (deploy)"), "{run:?}");
    assert!(
        run.stdout
            .contains("rb-hello2: not changed by this step: stays on version 2"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("The next `rollback` would undo step #2 (deploy) on rb-hello, rb-hello2."),
        "{run:?}"
    );
    assert_eq!(stage.proxy.writes(), ["UpdateAlias"]);
    let alias = stage.alias(HELLO, "staging").await.unwrap();
    assert_eq!(alias["FunctionVersion"], "2", "{alias}");
    assert_eq!(weights(&alias), 0, "{alias}");
    assert_eq!(stage.alias(HELLO2, "staging").await.unwrap(), hello2_before);

    // Second rollback: the second deploy, on both.
    let run = stage.xtask(&["rollback", "--env", "staging"]).await;
    assert_ok(&run);
    for function in [HELLO, HELLO2] {
        assert_eq!(
            stage.alias_version(function, "staging").await.as_deref(),
            Some("1"),
            "{run:?}"
        );
    }

    // Third: only the creations are left, which have nothing earlier: exit 1, nothing written.
    stage.proxy.reset_counts();
    let run = stage.xtask(&["rollback", "--env", "staging"]).await;
    assert_failed_with(
        &run,
        "nothing to roll back in `staging`, nothing was written",
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains(
            "rb-hello2: alias `staging` on version 1, history: #1 deploy created the alias"
        ),
        "{run:?}"
    );
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());
}

/// A step that moves one alias and creates another: rollback moves the first back and reports
/// that the new one has nothing earlier (exit 0). Promote is a step of the target environment
/// only, and rollback undoes it there.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_reports_created_aliases_and_undoes_a_promote() {
    let stage = Stage::start().await;
    let deploy_staging = args(DEPLOY, &["--env", "staging"]);
    let promote = ["promote", "--from", "staging", "--to", "prod", "--yes"];
    stage.write_manifest(&rollback_app("One", "a", false));
    assert_ok(&stage.xtask(&deploy_staging).await);
    // Step 2 moves both functions and creates `rb-new`.
    stage.write_manifest(&rollback_app("Two", "a", true));
    assert_ok(&stage.xtask(&deploy_staging).await);
    assert_eq!(
        stage
            .alias_version("demo-rb-new", "staging")
            .await
            .as_deref(),
        Some("1")
    );

    let run = stage.xtask(&["rollback", "--env", "staging"]).await;
    assert_ok(&run);
    assert!(
        run.stdout.contains(
            "rb-new: alias `staging` was created by this step, nothing earlier to return to: \
             stays on version 1"
        ),
        "{run:?}"
    );
    for function in [HELLO, HELLO2] {
        assert_eq!(
            stage.alias_version(function, "staging").await.as_deref(),
            Some("1"),
            "{run:?}"
        );
    }
    assert_eq!(
        stage
            .alias_version("demo-rb-new", "staging")
            .await
            .as_deref(),
        Some("1")
    );

    // Promote creates prod's aliases (nothing earlier there), then moves them.
    assert_ok(&stage.xtask(&deploy_staging).await);
    assert_ok(&stage.xtask(&promote).await);
    let run = stage.xtask(&["rollback", "--env", "prod"]).await;
    assert_failed_with(&run, "nothing to roll back in `prod`");
    stage.write_manifest(&rollback_app("Three", "a", true));
    assert_ok(&stage.xtask(&deploy_staging).await);
    assert_ok(&stage.xtask(&promote).await);
    for function in [HELLO, HELLO2] {
        assert_eq!(
            stage.alias_version(function, "prod").await.as_deref(),
            Some("3")
        );
    }
    let run = stage.xtask(&["rollback", "--env", "prod"]).await;
    assert_ok(&run);
    assert!(run.stdout.contains("undo step #2 (promote)"), "{run:?}");
    for (function, staging, prod) in [(HELLO, "3", "2"), (HELLO2, "3", "2")] {
        assert_eq!(
            stage.alias_version(function, "prod").await.as_deref(),
            Some(prod),
            "{run:?}"
        );
        assert_eq!(
            stage.alias_version(function, "staging").await.as_deref(),
            Some(staging),
            "staging is another environment: {run:?}"
        );
    }
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
    let steps = |run: &lambda_stage_tests::deploy_stage::Run| -> Vec<String> {
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

/// `GetFunction` answered as Lambda does while an update runs, and when one failed (moto's
/// updates finish at once): deploy waits for `InProgress` to end before it publishes, and a
/// `Failed` update stops it with Lambda's reason, before any alias moves.
#[tokio::test(flavor = "multi_thread")]
async fn deploy_waits_for_an_update_and_stops_at_a_failed_one() {
    let stage = Stage::start().await;
    let name = "demo-echo-wait";
    stage.write_manifest(&single_stack("echo-wait", "One", 128));
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "dev"])).await);
    let status = |status: &str| {
        serde_json::json!({ "Configuration": {
            "FunctionName": name,
            "State": "Active",
            "LastUpdateStatus": status,
            "LastUpdateStatusReason": format!("{status} (from the test proxy)"),
        }})
        .to_string()
    };
    let json = [("content-type", "application/json")];
    // The calls of a deploy that changes the configuration: the plan's read, the check that no
    // update is running, then the wait after `UpdateFunctionConfiguration`.
    let after_the_update = 3;

    stage.write_manifest(&single_stack("echo-wait", "Two", 128));
    stage.proxy.reset_counts();
    stage.proxy.respond_to_call(
        "GetFunction",
        after_the_update,
        200,
        &json,
        &status("InProgress"),
    );
    let run = stage.xtask(&args(DEPLOY, &["--env", "dev"])).await;
    assert_ok(&run);
    let log = stage.proxy.log();
    let update = log
        .iter()
        .position(|op| op == "UpdateFunctionConfiguration")
        .unwrap();
    let publish = log.iter().position(|op| op == "PublishVersion").unwrap();
    let polls = log[update..publish]
        .iter()
        .filter(|op| *op == "GetFunction")
        .count();
    assert_eq!(polls, 2, "polled until the update finished: {log:?}");
    assert_eq!(stage.alias_version(name, "dev").await.as_deref(), Some("2"));

    stage.write_manifest(&single_stack("echo-wait", "Three", 128));
    stage.proxy.reset_counts();
    stage.proxy.respond_to_call(
        "GetFunction",
        after_the_update,
        200,
        &json,
        &status("Failed"),
    );
    let run = stage.xtask(&args(DEPLOY, &["--env", "dev"])).await;
    assert_failed_with(
        &run,
        "the last update of `demo-echo-wait` failed: Failed (from the test proxy)",
    );
    assert_eq!(stage.proxy.calls("PublishVersion"), 0, "{run:?}");
    assert_eq!(stage.alias_version(name, "dev").await.as_deref(), Some("2"));
}
