//! Deploy when things go wrong, with nothing left half-done: refusals before any write
//! (`--dry-run`, credentials, account, region, configuration), an AWS error at any call (every
//! alias stays, a re-run converges), two deploys racing for an alias, throttling (retried), and
//! an update Lambda is still running or that failed (waited for, or stopped at).
//!
//! Each test runs the real CLI against a moto server of its own behind the fault proxy
//! (`deploy_stage`). Functions are tiny (`bare-echo`, x86_64 musl, dev profile), under function
//! keys of each test's own, so parallel tests never share a build output.

use lambda_stage_tests::deploy_stage::{
    args, assert_failed_with, assert_ok, echo_app, variable, Run, Stage, ACCOUNT, DEPLOY,
};
use lambda_stage_tests::fault_proxy::FaultKind;

/// Functions `echo-fail-a` (of `package_a`) and `echo-fail-b` in `dev`, greeting `greeting`.
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

/// A stage where `function` of [`echo_app`] (greeting `One`) is deployed to `dev`.
async fn deployed_to_dev(function: &str) -> Stage {
    let stage = Stage::start().await;
    stage.write_manifest(&echo_app(function, "One", 128));
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "dev"])).await);
    stage
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_deploys_one_wins_the_other_reports_a_conflict() {
    let stage = deployed_to_dev("echo-race").await;
    stage.write_manifest(&echo_app("echo-race", "Two", 128));
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
    let good = echo_app("echo-preflight", "Hi", 128);
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
    let stage = deployed_to_dev("echo-throttle").await;
    stage.write_manifest(&echo_app("echo-throttle", "Two", 128));
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

/// `GetFunction` answered as Lambda does while an update runs, and when one failed (moto's
/// updates finish at once): deploy waits for `InProgress` to end before it publishes, and a
/// `Failed` update stops it with Lambda's reason, before any alias moves. Before an update it
/// reads the function only when the plan's read found a change in progress (another deploy's,
/// or the console's), and then waits it out.
#[tokio::test(flavor = "multi_thread")]
async fn deploy_waits_for_an_update_and_stops_at_a_failed_one() {
    let stage = deployed_to_dev("echo-wait").await;
    let name = "demo-echo-wait";
    let reads_before_the_first_update = || {
        let log = stage.proxy.log();
        let first_update = log
            .iter()
            .position(|op| op.starts_with("UpdateFunction"))
            .unwrap_or_else(|| panic!("an update: {log:?}"));
        let reads = log[..first_update]
            .iter()
            .filter(|op| *op == "GetFunction")
            .count();
        (reads, log)
    };

    let run = deploy_seeing_the_update(&stage, "echo-wait", "Two", "InProgress").await;
    assert_ok(&run);
    let (reads, log) = reads_before_the_first_update();
    assert_eq!(reads, 1, "the plan's read alone: {log:?}");
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

    let run = deploy_seeing_the_update(&stage, "echo-wait", "Three", "Failed").await;
    assert_failed_with(
        &run,
        "the last update of `demo-echo-wait` failed: Failed (from the test proxy)",
    );
    assert_eq!(stage.proxy.calls("PublishVersion"), 0, "{run:?}");
    assert_eq!(stage.alias_version(name, "dev").await.as_deref(), Some("2"));

    stage.write_manifest(&echo_app("echo-wait", "Four", 128));
    stage.proxy.reset_counts();
    answer_get_function(&stage, 1, "echo-wait", "InProgress");
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "dev"])).await);
    let (reads, log) = reads_before_the_first_update();
    assert_eq!(
        reads, 2,
        "the plan's read, then one until it finished: {log:?}"
    );
    assert_eq!(stage.alias_version(name, "dev").await.as_deref(), Some("3"));
}

/// Deploys `function` of [`echo_app`] with `greeting` (a configuration update) to `dev`,
/// while the first `GetFunction` after the update says its `LastUpdateStatus` is `status`.
async fn deploy_seeing_the_update(
    stage: &Stage,
    function: &str,
    greeting: &str,
    status: &str,
) -> Run {
    // The calls of a deploy that changes the configuration: the plan's read, then the wait
    // after `UpdateFunctionConfiguration`.
    let after_the_update = 2;
    stage.write_manifest(&echo_app(function, greeting, 128));
    stage.proxy.reset_counts();
    answer_get_function(stage, after_the_update, function, status);
    stage.xtask(&args(DEPLOY, &["--env", "dev"])).await
}

/// The `nth` `GetFunction` of `function` says its `LastUpdateStatus` is `status`.
fn answer_get_function(stage: &Stage, nth: usize, function: &str, status: &str) {
    let answer = serde_json::json!({ "Configuration": {
        "FunctionName": format!("demo-{function}"),
        "State": "Active",
        "LastUpdateStatus": status,
        "LastUpdateStatusReason": format!("{status} (from the test proxy)"),
    }});
    stage.proxy.respond_to_call(
        "GetFunction",
        nth,
        200,
        &[("content-type", "application/json")],
        &answer.to_string(),
    );
}
