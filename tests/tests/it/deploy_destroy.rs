//! Removing what deploy made, one environment at a time: `cargo xtask destroy` takes down one
//! environment's aliases, stages, routes, mappings, rules, queues and permissions and leaves
//! every other environment exactly as it was; a preview environment is made from its template,
//! listed and destroyed. The same app, stage and reads as `deploy_triggers`.

use lambda_stage_tests::deploy_stage::{assert_failed_with, assert_ok, Stage};
use lambda_stage_tests::fault_proxy::FaultKind;
use lambda_stage_tests::moto_reads::MotoReads;
use serde_json::{json, Value};

use super::deploy_triggers::{
    alias_arn, args, queue_arn, reads, single_stack, DEPLOY, REGION, ROUTES,
};

/// Everything of `env` that another environment's destroy must not touch, read from moto:
/// the function's configuration for that alias, the alias, its stage, the API's routes, its
/// mapping, its rule and target, its queue, and its permission statements.
async fn environment_snapshot(stage: &Stage, aws: &MotoReads, env: &str) -> Value {
    let mut snapshot = serde_json::Map::new();
    for function in ["demo-trig-web", "demo-trig-worker", "demo-trig-cron"] {
        let alias = stage.alias(function, env).await;
        let version = alias
            .as_ref()
            .and_then(|a| a["FunctionVersion"].as_str().map(str::to_owned));
        let config = match &version {
            Some(version) => stage.version(function, version).await,
            None => Value::Null,
        };
        let policy = aws
            .lambda
            .get_policy()
            .function_name(function)
            .qualifier(env)
            .send()
            .await
            .ok()
            .and_then(|p| p.policy().map(str::to_owned))
            .map(|p| serde_json::from_str::<Value>(&p).unwrap())
            .unwrap_or(Value::Null);
        let own_statements: Vec<Value> = policy["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| {
                s["Sid"]
                    .as_str()
                    .is_some_and(|sid| sid.ends_with(&format!("-{env}")))
            })
            .cloned()
            .collect();
        snapshot.insert(
            function.to_owned(),
            json!({ "alias": alias, "config": config, "statements": own_statements }),
        );
    }
    let apis = aws.apis().await;
    let api = &apis["demo"];
    snapshot.insert(
        "api".into(),
        json!({
            "stage": aws.stages(api).await.get(env),
            "routes": aws.routes(api).await,
        }),
    );
    snapshot.insert(
        "mapping".into(),
        json!(
            aws.mapped_sources(&alias_arn("demo-trig-worker", env))
                .await
        ),
    );
    snapshot.insert(
        "rule".into(),
        json!(format!(
            "{:?}",
            aws.rule(&format!("demo-trig-cron-{env}")).await
        )),
    );
    snapshot.insert(
        "queue".into(),
        json!(aws.queue_exists(&format!("demo-{env}-jobs")).await),
    );
    Value::Object(snapshot)
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_removes_one_environment_and_leaves_the_others_as_they_were() {
    let stage = Stage::start().await;
    let aws = reads(&stage).await;
    stage.write_manifest(&single_stack(ROUTES, ""));
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "staging"])).await);
    assert_ok(
        &stage
            .xtask(&args(DEPLOY, &["--env", "prod", "--yes"]))
            .await,
    );
    let prod_before = environment_snapshot(&stage, &aws, "prod").await;
    assert!(
        prod_before["rule"].as_str().unwrap().contains("ENABLED"),
        "{prod_before}"
    );

    // A protected environment is never destroyed without a person or --yes.
    let run = stage.xtask(&["destroy", "--env", "prod"]).await;
    assert_failed_with(&run, "`prod` is a protected environment");

    // A failure halfway (the second alias) stops the command; a re-run finishes the job.
    stage.proxy.reset_counts();
    stage.proxy.inject("DeleteAlias", 2, 1, FaultKind::Fail);
    let run = stage.xtask(&["destroy", "--env", "staging"]).await;
    assert_failed_with(&run, "destroying `staging` stopped");
    assert!(
        run.stdout.contains("keeps queue `demo-staging-jobs`"),
        "{run:?}"
    );
    let run = stage.xtask(&["destroy", "--env", "staging"]).await;
    assert_ok(&run);
    assert!(run.stdout.contains("`staging` is destroyed"), "{run:?}");
    let run = stage.xtask(&["destroy", "--env", "staging"]).await;
    assert_ok(&run);
    assert!(run.stdout.contains("Nothing to destroy"), "{run:?}");

    // Staging's alias, stage, mapping and rule are gone; its queue stays (it may hold messages);
    // the functions stay, since prod's aliases still use them.
    for function in ["demo-trig-web", "demo-trig-worker", "demo-trig-cron"] {
        assert!(
            stage.alias(function, "staging").await.is_none(),
            "{function}"
        );
    }
    let api = &aws.apis().await["demo"];
    assert!(!aws.stages(api).await.contains_key("staging"));
    assert!(aws
        .mapped_sources(&alias_arn("demo-trig-worker", "staging"))
        .await
        .is_empty());
    assert_eq!(aws.rule("demo-trig-cron-staging").await, None);
    assert!(aws.queue_exists("demo-staging-jobs").await);

    // prod is exactly as it was.
    assert_eq!(
        environment_snapshot(&stage, &aws, "prod").await,
        prod_before
    );

    // Destroying the last environment removes the functions and the roles deploy made.
    let run = stage
        .xtask(&["destroy", "--env", "prod", "--yes", "--delete-queues"])
        .await;
    assert_ok(&run);
    for function in ["demo-trig-web", "demo-trig-worker", "demo-trig-cron"] {
        let (status, _) = stage
            .moto
            .get_json(&format!("/2015-03-31/functions/{function}"))
            .await
            .unwrap();
        assert_eq!(status, 404, "{function} should be gone");
        assert!(
            aws.iam
                .get_role()
                .role_name(format!("{function}-exec"))
                .send()
                .await
                .is_err(),
            "{function}-exec should be gone"
        );
    }
    assert!(!aws.queue_exists("demo-prod-jobs").await);
    assert!(
        aws.queue_exists("demo-staging-jobs").await,
        "only prod's queue"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_stack_destroy_removes_the_environments_functions_api_and_queue() {
    let stage = Stage::start().await;
    let aws = reads(&stage).await;
    stage.write_manifest(&format!(
        r#"app = "demo"
strategy = "multi-stack"
region = "{REGION}"

[functions.trig-mdestroy]
package = "bare-echo"
arch = "x86_64"
create-role = true
http = {{}}
sqs = {{ queue = "{{app}}-{{env}}-work", create = true }}

[environments.dev]
[environments.prod]
"#
    ));
    for env in ["dev", "prod"] {
        assert_ok(&stage.xtask(&args(DEPLOY, &["--env", env])).await);
    }
    let prod_function = stage.version("demo-trig-mdestroy-prod", "live").await;
    let run = stage
        .xtask(&["destroy", "--env", "dev", "--delete-queues"])
        .await;
    assert_ok(&run);
    let (status, _) = stage
        .moto
        .get_json("/2015-03-31/functions/demo-trig-mdestroy-dev")
        .await
        .unwrap();
    assert_eq!(status, 404);
    assert_eq!(aws.apis().await.keys().collect::<Vec<_>>(), ["demo-prod"]);
    assert!(!aws.queue_exists("demo-dev-work").await);
    assert!(aws.queue_exists("demo-prod-work").await);
    assert_eq!(
        stage.version("demo-trig-mdestroy-prod", "live").await,
        prod_function
    );
    assert_eq!(
        aws.mapped_sources(&alias_arn("demo-trig-mdestroy-prod", "live"))
            .await,
        [queue_arn("demo-prod-work")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preview_environment_is_made_from_its_template_listed_and_destroyed() {
    let stage = Stage::start().await;
    let aws = reads(&stage).await;
    let template = "[environments.\"pr-*\"]\nvars = { APP_GREETING = \"hi preview\" }\n";
    stage.write_manifest(&single_stack(ROUTES, template));
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "staging"])).await);
    let staging_before = environment_snapshot(&stage, &aws, "staging").await;

    let run = stage.xtask(&args(DEPLOY, &["--env", "pr-7"])).await;
    assert_ok(&run);
    let version = stage.alias_version("demo-trig-web", "pr-7").await.unwrap();
    let config = stage.version("demo-trig-web", &version).await;
    assert_eq!(
        lambda_stage_tests::deploy_stage::variable(&config, "APP_PR_7__GREETING").as_deref(),
        Some("hi preview")
    );
    let api = &aws.apis().await["demo"];
    assert_eq!(aws.stages(api).await["pr-7"]["alias"], "pr-7");
    assert!(aws.queue_exists("demo-pr-7-jobs").await);
    assert_eq!(
        environment_snapshot(&stage, &aws, "staging").await,
        staging_before
    );

    // status finds it in AWS, with the template it came from and its age.
    let run = stage.xtask(&["status", "--json"]).await;
    assert_ok(&run);
    let statuses: Value = serde_json::from_str(&run.stdout).unwrap();
    let preview = statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["env"] == "pr-7")
        .unwrap_or_else(|| panic!("no pr-7 in {statuses}"));
    assert_eq!(preview["preview"]["template"], "pr-*");
    assert_eq!(preview["preview"]["age"], "0m");

    let run = stage
        .xtask(&["destroy", "--env", "pr-7", "--delete-queues"])
        .await;
    assert_ok(&run);
    assert!(stage.alias("demo-trig-web", "pr-7").await.is_none());
    assert!(!aws.stages(api).await.contains_key("pr-7"));
    assert!(!aws.queue_exists("demo-pr-7-jobs").await);
    assert_eq!(
        environment_snapshot(&stage, &aws, "staging").await,
        staging_before
    );
    let run = stage.xtask(&["status", "--json"]).await;
    assert!(!run.stdout.contains("pr-7"), "{run:?}");

    // A single-stack preview adds its variables to the shared function: past 4 KB, deploy
    // refuses before writing and says what to do.
    let big = format!(
        "[environments.\"pr-*\"]\nvars = {{ APP_NOTES = \"{}\" }}\n",
        "n".repeat(4000)
    );
    stage.write_manifest(&single_stack(ROUTES, &big));
    stage.proxy.reset_counts();
    let run = stage.xtask(&args(DEPLOY, &["--env", "pr-8"])).await;
    assert_failed_with(&run, "over Lambda's 4096 bytes");
    assert!(run.stderr.contains("multi-stack"), "{run:?}");
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());
}
