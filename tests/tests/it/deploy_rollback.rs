//! Undoing steps: a canary deploy, `finalize`, and `rollback`, which undoes exactly the
//! environment's latest step (a deploy, a finalize or a promote) from the history each alias
//! keeps in AWS, reports what it leaves alone, and walks back one step per run.
//!
//! Each test runs the real CLI against a moto server of its own behind the fault proxy
//! (`deploy_stage`). Functions are tiny (`bare-echo`, x86_64 musl, dev profile), under function
//! keys of each test's own, so parallel tests never share a build output.

use lambda_stage_tests::deploy_stage::{
    args, assert_failed_with, assert_ok, echo_app, Stage, ACCOUNT, DEPLOY,
};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn canary_finalize_and_rollback() {
    let stage = Stage::start().await;
    let name = "demo-echo-canary";
    stage.put_parameter("us-east-1", "/demo/prod/api-key").await;
    stage.write_manifest(&echo_app("echo-canary", "One", 128));
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
    stage.write_manifest(&echo_app("echo-canary", "Two", 128));
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
