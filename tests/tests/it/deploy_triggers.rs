//! The whole app per environment: `cargo xtask deploy` wires HTTP API stages and routes,
//! function URLs, SQS queues and schedules to each environment's alias, against moto's server
//! on 127.0.0.1 through the real CLI, with the fault-injecting proxy in between.
//!
//! Resources are read straight from moto with the AWS SDK (not through our code or the proxy).
//! Where moto cannot tell — it reports a mapping's function as a version and keeps one function
//! URL per function whatever the qualifier — the tests assert on what deploy sent, as the proxy
//! recorded it.

use std::collections::BTreeMap;

use lambda_stage_tests::deploy_stage::{assert_failed_with, assert_ok, Stage, ACCOUNT};
use lambda_stage_tests::fault_proxy::FaultKind;
use lambda_stage_tests::moto_reads::{self, MotoReads};
use serde_json::{json, Value};

pub(super) const REGION: &str = "us-east-1";
pub(super) const DEPLOY: &[&str] = &["deploy", "--profile", "dev"];

pub(super) fn args<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(more).copied().collect()
}

pub(super) async fn reads(stage: &Stage) -> MotoReads {
    moto_reads::connect(&stage.moto.endpoint(), REGION).await
}

pub(super) fn alias_arn(function: &str, alias: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}:{alias}")
}

pub(super) fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

/// A single-stack app of three functions (one per trigger kind), all built from `bare-echo`.
pub(super) fn single_stack(web_routes: &str, extra: &str) -> String {
    format!(
        r#"app = "demo"
region = "{REGION}"
account-id = "{ACCOUNT}"

[functions.trig-web]
package = "bare-echo"
arch = "x86_64"
create-role = true
http = {{ routes = [{web_routes}] }}
url = {{ auth = "none" }}

[functions.trig-worker]
package = "bare-echo"
arch = "x86_64"
create-role = true
sqs = {{ queue = "{{app}}-{{env}}-jobs", batch-size = 5, create = true }}

[functions.trig-cron]
package = "bare-echo"
arch = "x86_64"
create-role = true
schedule = {{ expression = "rate(1 hour)", input = {{ name = "scheduler" }} }}

[environments.dev]
vars = {{ APP_GREETING = "hi dev" }}

[environments.dev.functions.trig-cron]
schedule = {{ enabled = false }}

[environments.staging]
vars = {{ APP_GREETING = "hi staging" }}

[environments.prod]
protected = true
vars = {{ APP_GREETING = "hi prod" }}
{extra}"#
    )
}

pub(super) const ROUTES: &str = r#""GET /hello/{name}", "POST /orders""#;

#[tokio::test(flavor = "multi_thread")]
async fn single_stack_wires_each_environment_to_its_own_alias_then_converges() {
    let stage = Stage::start().await;
    let aws = reads(&stage).await;
    stage.write_manifest(&single_stack(ROUTES, ""));

    let mut first_deploys = Vec::new();
    for env in ["dev", "staging"] {
        let run = stage.xtask(&args(DEPLOY, &["--env", env])).await;
        assert_ok(&run);
        assert!(
            run.stdout.contains("create route") || env != "dev",
            "{run:?}"
        );
        first_deploys.push(run);
    }

    // One API for the app, a stage per environment naming its alias.
    let apis = aws.apis().await;
    assert_eq!(apis.keys().collect::<Vec<_>>(), ["demo"], "{apis:?}");
    let api = &apis["demo"];
    // Each deploy ends with where its environment is reachable: dev's created the API, so the
    // address comes from what AWS answered to the creation.
    let reachable = |env: &str| {
        let stage_url = format!("https://{api}.execute-api.{REGION}.amazonaws.com/{env}");
        format!(
            "  reachable at:\n    GET {stage_url}/hello/{{name}} -> trig-web\n    \
             POST {stage_url}/orders -> trig-web\n    "
        )
    };
    for (env, run) in ["dev", "staging"].iter().zip(&first_deploys) {
        assert!(run.stdout.contains(&reachable(env)), "{run:?}");
        let url_line = run
            .stdout
            .lines()
            .find(|line| line.ends_with(" -> trig-web (function URL, auth NONE)"));
        assert!(
            url_line.is_some_and(|line| line.starts_with("    https://")
                && line.contains(&format!(".lambda-url.{REGION}.on.aws"))),
            "{run:?}"
        );
    }
    let stages = aws.stages(api).await;
    for env in ["dev", "staging"] {
        assert_eq!(stages[env]["alias"], env, "{stages:?}");
    }
    assert!(
        !stages.contains_key("prod"),
        "prod was not deployed: {stages:?}"
    );
    // Every route reaches the function through the stage's alias, never a version or $LATEST.
    let through_stage = format!(
        "arn:aws:lambda:{REGION}:{ACCOUNT}:function:demo-trig-web:${{stageVariables.alias}}"
    );
    let routes = aws.routes(api).await;
    assert_eq!(
        routes,
        BTreeMap::from([
            ("GET /hello/{name}".to_owned(), through_stage.clone()),
            ("POST /orders".to_owned(), through_stage.clone()),
        ])
    );

    // One permission per alias, for that API's stage only.
    let grants: Vec<(String, String)> = stage
        .proxy
        .requests_of("AddPermission")
        .iter()
        .filter(|r| r.json()["Principal"] == "apigateway.amazonaws.com")
        .map(|r| {
            assert!(r.path.contains("/functions/demo-trig-web/policy"), "{r:?}");
            (
                r.query_param("Qualifier").unwrap(),
                r.json()["SourceArn"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        grants,
        ["dev", "staging"].map(|env| (
            env.to_owned(),
            format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/{env}/*")
        ))
    );

    // A queue per environment, mapped to that environment's alias.
    for env in ["dev", "staging"] {
        let queue = format!("demo-{env}-jobs");
        assert!(aws.queue_exists(&queue).await, "{queue}");
        assert_eq!(
            aws.mapped_sources(&alias_arn("demo-trig-worker", env))
                .await,
            [queue_arn(&queue)]
        );
    }
    let sent: Vec<(String, String, i64)> = stage
        .proxy
        .requests_of("CreateEventSourceMapping")
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["FunctionName"].as_str().unwrap().to_owned(),
                body["EventSourceArn"].as_str().unwrap().to_owned(),
                body["BatchSize"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        ["dev", "staging"].map(|env| (
            alias_arn("demo-trig-worker", env),
            queue_arn(&format!("demo-{env}-jobs")),
            5
        ))
    );
    // One role serves every alias, so it may read every environment's queue, and only those.
    let policy = aws.role_policy("demo-trig-worker-exec").await;
    for env in ["dev", "staging", "prod"] {
        assert!(policy.contains(&format!("demo-{env}-jobs")), "{policy}");
    }
    assert!(policy.contains("sqs%3AReceiveMessage") || policy.contains("sqs:ReceiveMessage"));

    // A rule per environment on its alias; dev's is off.
    let input = Some(json!({ "name": "scheduler" }));
    assert_eq!(
        aws.rule("demo-trig-cron-dev").await,
        Some((
            "DISABLED".into(),
            alias_arn("demo-trig-cron", "dev"),
            input.clone()
        ))
    );
    assert_eq!(
        aws.rule("demo-trig-cron-staging").await,
        Some((
            "ENABLED".into(),
            alias_arn("demo-trig-cron", "staging"),
            input
        ))
    );

    // The function URL was asked for on the alias (moto keeps one per function).
    let url = stage.proxy.requests_of("CreateFunctionUrlConfig");
    assert_eq!(
        url[0].query_param("Qualifier").as_deref(),
        Some("dev"),
        "{url:?}"
    );
    assert_eq!(url[0].json()["AuthType"], "NONE");

    // An unchanged redeploy reads and writes nothing.
    stage.proxy.reset_counts();
    let run = stage.xtask(&args(DEPLOY, &["--env", "staging"])).await;
    assert_ok(&run);
    assert!(run.stdout.contains("triggers: unchanged"), "{run:?}");
    assert!(run.stdout.contains(&reachable("staging")), "{run:?}");
    assert_eq!(stage.proxy.writes(), Vec::<String>::new(), "{run:?}");
    // Each alias's policy is read once, though its API, URL and schedule each check it.
    let mut policy_reads: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for read in stage.proxy.requests_of("GetPolicy") {
        *policy_reads
            .entry((read.path.clone(), read.query_param("Qualifier")))
            .or_default() += 1;
    }
    assert_eq!(
        policy_reads.len(),
        3,
        "one alias per function: {policy_reads:?}"
    );
    assert!(
        policy_reads.values().all(|reads| *reads == 1),
        "{policy_reads:?}"
    );

    // status shows the invoke URL and every trigger's state.
    let run = stage.xtask(&["status", "--env", "staging", "--json"]).await;
    assert_ok(&run);
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    let triggers = status[0]["triggers"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = triggers
        .iter()
        .map(|t| (t["kind"].as_str().unwrap(), t["target"].as_str().unwrap()))
        .collect();
    assert!(
        kinds.contains(&(
            "http",
            &format!("https://{api}.execute-api.{REGION}.amazonaws.com/staging")[..]
        )),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("sqs", &queue_arn("demo-staging-jobs")[..])),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("schedule", "demo-trig-cron-staging")),
        "{kinds:?}"
    );

    // Triggers the manifest no longer names are removed: the schedule, the mapping (not the
    // queue, which may hold messages), a route, the URL; dev keeps its own.
    let fewer = single_stack(r#""GET /hello/{name}""#, "")
        .replace("url = { auth = \"none\" }\n", "")
        .replace(
            "sqs = { queue = \"{app}-{env}-jobs\", batch-size = 5, create = true }\n",
            "",
        )
        .replace(
            "schedule = { expression = \"rate(1 hour)\", input = { name = \"scheduler\" } }\n",
            "",
        )
        .replace(
            "[environments.dev.functions.trig-cron]\nschedule = { enabled = false }\n",
            "",
        );
    stage.write_manifest(&fewer);
    let run = stage.xtask(&args(DEPLOY, &["--env", "staging"])).await;
    assert_ok(&run);
    for line in [
        "remove schedule rule `demo-trig-cron-staging`",
        "remove the mapping from queue `demo-staging-jobs`",
        "remove route `POST /orders`",
        "remove the function URL of alias `staging`",
    ] {
        assert!(run.stdout.contains(line), "{line}:\n{run:?}");
    }
    assert_eq!(aws.rule("demo-trig-cron-staging").await, None);
    assert!(
        aws.rule("demo-trig-cron-dev").await.is_some(),
        "dev keeps its rule"
    );
    assert!(aws
        .mapped_sources(&alias_arn("demo-trig-worker", "staging"))
        .await
        .is_empty());
    assert_eq!(
        aws.mapped_sources(&alias_arn("demo-trig-worker", "dev"))
            .await,
        [queue_arn("demo-dev-jobs")]
    );
    assert!(aws.queue_exists("demo-staging-jobs").await);
    assert_eq!(
        aws.routes(api).await.keys().collect::<Vec<_>>(),
        ["GET /hello/{name}"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_stack_gives_each_environment_its_own_api_and_url() {
    let stage = Stage::start().await;
    let aws = reads(&stage).await;
    stage.write_manifest(&format!(
        r#"app = "demo"
strategy = "multi-stack"
region = "{REGION}"

[functions.trig-multi]
package = "bare-echo"
arch = "x86_64"
create-role = true
http = {{}}
url = {{ auth = "iam" }}

[environments.dev]
vars = {{ APP_GREETING = "hi dev" }}

[environments.prod]
vars = {{ APP_GREETING = "hi prod" }}

[environments.prod.functions.trig-multi]
url = {{ auth = "none" }}
"#
    ));
    let mut deploys = Vec::new();
    for env in ["dev", "prod"] {
        let run = stage.xtask(&args(DEPLOY, &["--env", env])).await;
        assert_ok(&run);
        deploys.push(run);
    }
    let apis = aws.apis().await;
    assert_eq!(apis.keys().collect::<Vec<_>>(), ["demo-dev", "demo-prod"]);
    for (&env, run) in ["dev", "prod"].iter().zip(&deploys) {
        let api = &apis[&format!("demo-{env}")];
        // Each environment's own API, on `$default`: no stage in its address.
        let route = format!(
            "\n    ANY https://{api}.execute-api.{REGION}.amazonaws.com/{{proxy+}} -> trig-multi\n"
        );
        assert!(run.stdout.contains(&route), "{run:?}");
        assert_eq!(
            aws.stages(api).await.keys().collect::<Vec<_>>(),
            ["$default"]
        );
        assert_eq!(
            aws.routes(api).await,
            BTreeMap::from([(
                "ANY /{proxy+}".to_owned(),
                alias_arn(&format!("demo-trig-multi-{env}"), "live")
            )])
        );
        let url = aws
            .lambda
            .get_function_url_config()
            .function_name(format!("demo-trig-multi-{env}"))
            .qualifier("live")
            .send()
            .await
            .unwrap();
        let auth = if env == "prod" { "NONE" } else { "AWS_IAM" };
        assert_eq!(url.auth_type().as_str(), auth);
    }
    // The public URL's permissions exist on prod's alias only; each API may invoke its own.
    let grants: Vec<(String, String)> = stage
        .proxy
        .requests_of("AddPermission")
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                r.json()["Action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(grants.contains(&(
        "/2015-03-31/functions/demo-trig-multi-prod/policy".into(),
        "lambda:InvokeFunctionUrl".into()
    )));
    assert!(!grants
        .iter()
        .any(|(path, action)| path.contains("-dev/") && action == "lambda:InvokeFunctionUrl"));
    let dev_api = &apis["demo-dev"];
    assert!(stage
        .proxy
        .requests_of("AddPermission")
        .iter()
        .any(|r| r.json()["SourceArn"]
            == format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{dev_api}/$default/*")));
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_wires_the_target_and_moves_only_aliases_and_a_canary_keeps_triggers() {
    let stage = Stage::start().await;
    let aws = reads(&stage).await;
    stage.write_manifest(&single_stack(ROUTES, ""));
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "staging"])).await);
    let staging_version = stage.alias_version("demo-trig-worker", "staging").await;

    // prod has no triggers yet: promote's plan says it creates them, then does.
    stage.proxy.reset_counts();
    let run = stage
        .xtask(&["promote", "--from", "staging", "--to", "prod", "--yes"])
        .await;
    assert_ok(&run);
    for line in [
        "create stage `prod`",
        "create queue `demo-prod-jobs`",
        "create schedule rule `demo-trig-cron-prod`",
    ] {
        assert!(run.stdout.contains(line), "{line}:\n{run:?}");
    }
    let writes = stage.proxy.writes();
    for forbidden in [
        "PublishVersion",
        "UpdateFunctionCode",
        "UpdateFunctionConfiguration",
    ] {
        assert!(!writes.contains(&forbidden.to_owned()), "{writes:?}");
    }
    // prod's stage, mapping and rule reach exactly the version staging ran, through prod's alias.
    for function in ["demo-trig-web", "demo-trig-worker", "demo-trig-cron"] {
        assert_eq!(
            stage.alias_version(function, "prod").await,
            stage.alias_version(function, "staging").await,
            "{function}"
        );
    }
    assert_eq!(
        stage.alias_version("demo-trig-worker", "prod").await,
        staging_version
    );
    let api = &aws.apis().await["demo"];
    assert_eq!(aws.stages(api).await["prod"]["alias"], "prod");
    let mapping = stage.proxy.requests_of("CreateEventSourceMapping");
    assert_eq!(
        mapping[0].json()["FunctionName"],
        alias_arn("demo-trig-worker", "prod")
    );
    assert_eq!(
        aws.rule("demo-trig-cron-prod").await.map(|r| r.1),
        Some(alias_arn("demo-trig-cron", "prod"))
    );

    // A canary moves only the alias: its weights apply to every trigger, none is rewritten.
    stage.write_manifest(&single_stack(ROUTES, "").replace("hi staging", "hey staging"));
    stage.proxy.reset_counts();
    let run = stage
        .xtask(&args(DEPLOY, &["--env", "staging", "--canary", "10"]))
        .await;
    assert_ok(&run);
    assert!(run.stdout.contains("triggers: unchanged"), "{run:?}");
    let writes = stage.proxy.writes();
    for trigger_write in [
        "CreateRoute",
        "CreateIntegration",
        "UpdateIntegration",
        "CreateEventSourceMapping",
        "UpdateEventSourceMapping",
        "PutRule",
        "PutTargets",
        "AddPermission",
    ] {
        assert!(!writes.contains(&trigger_write.to_owned()), "{writes:?}");
    }
    let alias = stage.alias("demo-trig-worker", "staging").await.unwrap();
    assert!(
        alias["RoutingConfig"]["AdditionalVersionWeights"]
            .as_object()
            .is_some_and(|w| w.values().any(|v| v.as_f64() == Some(0.1))),
        "{alias}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_queue_fails_preflight_and_a_wiring_failure_leaves_every_alias_in_place() {
    let stage = Stage::start().await;
    let aws = reads(&stage).await;

    // A queue that does not exist, without `create`: nothing is written.
    stage.write_manifest(
        &single_stack(ROUTES, "").replace("batch-size = 5, create = true", "batch-size = 5"),
    );
    let run = stage.xtask(&args(DEPLOY, &["--env", "staging"])).await;
    assert_failed_with(&run, "queue `demo-staging-jobs`");
    assert!(run.stderr.contains("set `create = true`"), "{run:?}");
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());

    // Version 1 everywhere, with one route.
    stage.write_manifest(&single_stack(r#""GET /hello/{name}""#, ""));
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "staging"])).await);
    let before = stage.alias_version("demo-trig-web", "staging").await;

    // A new version and a new route; creating the route fails.
    stage.write_manifest(&single_stack(ROUTES, "").replace("hi staging", "hey staging"));
    stage.proxy.inject("CreateRoute", 1, 1, FaultKind::Fail);
    let run = stage.xtask(&args(DEPLOY, &["--env", "staging"])).await;
    assert_failed_with(
        &run,
        "wiring the triggers of `staging` failed; no alias was moved",
    );
    assert!(run.stderr.contains("InjectedFailure"), "{run:?}");
    assert!(
        run.stderr
            .contains("in progress when it failed: trig-web: create route `POST /orders`"),
        "{run:?}"
    );
    for function in ["demo-trig-web", "demo-trig-worker", "demo-trig-cron"] {
        assert_eq!(
            stage.alias_version(function, "staging").await,
            before,
            "{function} stays where it was"
        );
    }

    // The same command again converges: the route exists and the aliases move.
    stage.proxy.clear_faults();
    let run = stage.xtask(&args(DEPLOY, &["--env", "staging"])).await;
    assert_ok(&run);
    let api = &aws.apis().await["demo"];
    assert!(aws.routes(api).await.contains_key("POST /orders"));
    assert_ne!(
        stage.alias_version("demo-trig-web", "staging").await,
        before
    );
}
