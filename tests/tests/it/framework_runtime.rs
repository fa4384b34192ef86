//! The compiled example functions against a Runtime API served over real HTTP on 127.0.0.1.

use std::time::Duration;

use lambda_stage_tests::bins::{binary, workspace_root};
use lambda_stage_tests::function::Function;
use lambda_stage_tests::runtime_api::{Outcome, RuntimeApi};
use serde_json::{json, Value};

const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:probe";
const CANARY: &str = "canary-7f3a9c21-do-not-print";

fn alias(name: &str) -> String {
    format!("{ARN}:{name}")
}

fn error_type(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Error { error_type, .. } => error_type,
        Outcome::Response(body) => panic!("expected an error, got {body}"),
    }
}

#[tokio::test]
async fn init_error_lists_every_bad_variable_and_is_posted() {
    let api = RuntimeApi::start().await.unwrap();
    let hello = binary("hello", "dev").unwrap();
    let function = Function::start(
        &hello,
        api.address(),
        &[
            ("LAMBDA_STAGE_ENV", "prod"),
            ("APP_SHOUT", "maybe"),
            ("APP_API_KEY", CANARY),
        ],
    )
    .unwrap();
    let output = function.wait_exit(Duration::from_secs(20)).await.unwrap();
    assert!(!output.success, "a config error must exit non-zero");

    let reports = api.init_errors().await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert_eq!(report.header_error_type, "LambdaStage.ConfigError");
    assert_eq!(report.body["errorType"], "LambdaStage.ConfigError");
    let message = report.body["errorMessage"].as_str().unwrap();
    assert!(message.contains("environment `prod`"), "{message}");
    assert!(message.contains("APP_GREETING: missing"), "{message}");
    assert!(
        message.contains("APP_SHOUT: expected a boolean"),
        "{message}"
    );
    assert!(!message.contains("maybe"), "a value leaked: {message}");
    assert!(!output.all().contains(CANARY));
    assert!(
        output.stderr.contains("APP_GREETING: missing"),
        "{}",
        output.stderr
    );
}

#[tokio::test]
async fn a_broken_prod_config_fails_the_single_stack_cold_start() {
    let api = RuntimeApi::start().await.unwrap();
    let hello = binary("hello", "dev").unwrap();
    let function = Function::start(
        &hello,
        api.address(),
        &[
            ("LAMBDA_STAGE_ENVS", "staging,prod"),
            ("APP_STAGING__GREETING", "Hi"),
            ("APP_API_KEY", CANARY),
        ],
    )
    .unwrap();
    let output = function.wait_exit(Duration::from_secs(20)).await.unwrap();
    assert!(!output.success);
    let reports = api.init_errors().await;
    let message = reports[0].body["errorMessage"].as_str().unwrap().to_owned();
    assert!(
        message.contains("APP_PROD__GREETING (or the shared APP_GREETING): missing"),
        "{message}"
    );
    assert!(!message.contains("`staging`"), "staging is fine: {message}");
}

#[tokio::test]
async fn single_stack_keeps_environments_apart() {
    let api = RuntimeApi::start().await.unwrap();
    let hello = binary("hello", "dev").unwrap();
    let function = Function::start(
        &hello,
        api.address(),
        &[
            ("LAMBDA_STAGE_ENVS", "staging,prod"),
            ("APP_GREETING", "shared"),
            ("APP_STAGING__GREETING", "Hello from staging"),
            ("APP_PROD__GREETING", "Hello from prod"),
            ("APP_PROD__SHOUT", "true"),
            ("APP_API_KEY", CANARY),
        ],
    )
    .unwrap();
    for round in 0..40 {
        let env = if round % 2 == 0 { "staging" } else { "prod" };
        let name = format!("user{round}");
        let outcome = api
            .invoke(&alias(env), json!({ "name": name }))
            .await
            .unwrap();
        let expected = if env == "staging" {
            format!("Hello from staging, {name}!")
        } else {
            format!("HELLO FROM PROD, {}!", name.to_uppercase())
        };
        assert_eq!(
            outcome,
            Outcome::Response(json!({ "message": expected, "env": env })),
            "round {round}"
        );
    }
    function.stop().await.unwrap();
}

#[tokio::test]
async fn refuses_invocations_that_name_no_known_environment() {
    let api = RuntimeApi::start().await.unwrap();
    let hello = binary("hello", "dev").unwrap();
    let function = Function::start(
        &hello,
        api.address(),
        &[
            ("LAMBDA_STAGE_ENVS", "staging,prod"),
            ("APP_GREETING", "Hi"),
            ("APP_API_KEY", CANARY),
        ],
    )
    .unwrap();
    for arn in [
        alias("$LATEST"),
        alias("7"),
        ARN.to_owned(),
        "function-arn".to_owned(),
        alias("qa"),
    ] {
        let outcome = api.invoke(&arn, json!({ "name": "Ada" })).await.unwrap();
        assert_eq!(
            error_type(&outcome),
            "LambdaStage.UnknownEnvironment",
            "{arn}"
        );
    }
    let served = api
        .invoke(&alias("prod"), json!({ "name": "Ada" }))
        .await
        .unwrap();
    assert_eq!(
        served,
        Outcome::Response(json!({ "message": "Hi, Ada!", "env": "prod" }))
    );
    function.stop().await.unwrap();
}

#[tokio::test]
async fn a_default_environment_serves_unqualified_invocations() {
    let api = RuntimeApi::start().await.unwrap();
    let hello = binary("hello", "dev").unwrap();
    let function = Function::start(
        &hello,
        api.address(),
        &[
            ("LAMBDA_STAGE_DEFAULT_ENV", "dev"),
            ("APP_DEV__GREETING", "Yo"),
            ("APP_API_KEY", CANARY),
        ],
    )
    .unwrap();
    let outcome = api
        .invoke("function-arn", json!({ "name": "Ada" }))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Response(json!({ "message": "Yo, Ada!", "env": "dev" }))
    );
    function.stop().await.unwrap();
}

#[tokio::test]
async fn multi_stack_serves_its_one_environment() {
    let api = RuntimeApi::start().await.unwrap();
    let hello = binary("hello", "dev").unwrap();
    let function = Function::start(
        &hello,
        api.address(),
        &[
            ("LAMBDA_STAGE_ENV", "prod"),
            ("APP_GREETING", "Hi"),
            ("APP_API_KEY", CANARY),
        ],
    )
    .unwrap();
    for arn in [alias("live"), "function-arn".to_owned()] {
        let outcome = api.invoke(&arn, json!({ "name": "Ada" })).await.unwrap();
        assert_eq!(
            outcome,
            Outcome::Response(json!({ "message": "Hi, Ada!", "env": "prod" }))
        );
    }
    function.stop().await.unwrap();
}

/// The dev profile unwinds like the release profile (which [`release_profile_unwinds`] checks),
/// so this probe proves the runtime's panic handling without a release build of its own.
#[tokio::test]
async fn survives_panics_errors_and_malformed_events_and_never_prints_the_secret() {
    let api = RuntimeApi::start().await.unwrap();
    let probe = binary("stage-probe", "dev").unwrap();
    let mut function = Function::start(
        &probe,
        api.address(),
        &[
            ("LAMBDA_STAGE_ENVS", "staging"),
            ("APP_GREETING", "Hi"),
            ("APP_API_KEY", CANARY),
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ],
    )
    .unwrap();
    let staging = alias("staging");
    let mut everything_posted = Vec::new();
    for _ in 0..3 {
        let panicked = api
            .invoke(&staging, json!({ "do": "panic" }))
            .await
            .unwrap();
        assert_eq!(error_type(&panicked), "LambdaStage.Panic");
        let failed = api
            .invoke(&staging, json!({ "do": "error" }))
            .await
            .unwrap();
        assert_eq!(error_type(&failed), "OrderNotFound");
        let malformed = api
            .invoke(&staging, json!({ "action": "echo" }))
            .await
            .unwrap();
        assert_eq!(error_type(&malformed), "LambdaStage.InvalidEvent");
        let Outcome::Error { body, .. } = &malformed else {
            unreachable!()
        };
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap()
                .contains("stage_probe::Command"),
            "{body}"
        );
        let refused = api
            .invoke(&alias("prod"), json!({ "do": "echo" }))
            .await
            .unwrap();
        assert_eq!(error_type(&refused), "LambdaStage.UnknownEnvironment");
        everything_posted.extend([panicked, failed, malformed, refused]);
    }
    assert!(function.is_running(), "the runtime must keep serving");
    let echoed = api.invoke(&staging, json!({ "do": "echo" })).await.unwrap();
    let Outcome::Response(reply) = &echoed else {
        panic!("{echoed:?}")
    };
    assert_eq!(reply["env"], "staging");
    assert_eq!(reply["api_key_len"], CANARY.len(), "the secret was loaded");
    let request_id = reply["request_id"].as_str().unwrap().to_owned();
    everything_posted.push(echoed);

    let output = function.stop().await.unwrap();
    for posted in &everything_posted {
        assert!(
            !format!("{posted:?}").contains(CANARY),
            "leaked in {posted:?}"
        );
    }
    assert!(
        !output.all().contains(CANARY),
        "leaked in the process output"
    );
    // JSON log lines are flat objects carrying the request id and the environment at the top
    // level (what CloudWatch Logs Insights filters on), with the event's own fields beside them.
    let handled: Vec<Value> = output
        .stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.to_string().contains("handling `echo`"))
        .collect();
    assert_eq!(handled.len(), 1, "{}", output.stderr);
    let line = &handled[0];
    assert_eq!(line["message"], "handling `echo`", "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["requestId"], request_id.as_str(), "{line}");
    assert_eq!(line["env"], "staging", "{line}");
    assert!(line["timestamp"].is_string(), "{line}");
    assert!(
        line.get("spans").is_none() && line.get("fields").is_none(),
        "{line}"
    );
    let config = line["config"].as_str().unwrap_or_default();
    assert!(config.contains("[redacted]"), "{line}");
}

/// `run_router` under named API Gateway stages: `GET /hello/{name}` answers
/// `/staging/hello/Ada` from an HTTP API and `/Prod/hello/Ada` from a REST API.
#[tokio::test]
async fn router_answers_under_a_named_api_gateway_stage() {
    let api = RuntimeApi::start().await.unwrap();
    let http_api = binary("http-api", "dev").unwrap();
    let function = Function::start(
        &http_api,
        api.address(),
        &[("LAMBDA_STAGE_ENV", "staging"), ("APP_GREETING", "Hej")],
    )
    .unwrap();
    let overrides = lambda_stage_events::Overrides {
        path: Some("/staging/hello/Ada?lang=en".to_owned()),
        ..Default::default()
    };
    let mut http_api_event = lambda_stage_events::build("apigw-http", &overrides).unwrap();
    http_api_event["requestContext"]["stage"] = json!("staging");
    http_api_event["routeKey"] = json!("GET /hello/{name}");
    http_api_event["requestContext"]["routeKey"] = json!("GET /hello/{name}");
    http_api_event["pathParameters"] = json!({ "name": "Ada" });
    let overrides = lambda_stage_events::Overrides {
        path: Some("/hello/Ada".to_owned()),
        ..Default::default()
    };
    // Stage `Prod`: `path` is `/hello/Ada`, `requestContext.path` is `/Prod/hello/Ada`.
    let rest_event = lambda_stage_events::build("apigw-rest", &overrides).unwrap();
    assert_eq!(rest_event["requestContext"]["path"], "/Prod/hello/Ada");

    for (kind, event) in [("HTTP API", http_api_event), ("REST API", rest_event)] {
        let outcome = api.invoke(&alias("live"), event).await.unwrap();
        let Outcome::Response(response) = &outcome else {
            panic!("{kind}: {outcome:?}")
        };
        assert_eq!(response["statusCode"], 200, "{kind}: {response}");
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({ "message": "Hej, Ada!", "env": "staging" }),
            "{kind}"
        );
    }
    function.stop().await.unwrap();
}

/// A handler panic becomes an invocation error only when it unwinds: `panic = "abort"` in the
/// release profile (what is deployed) would kill the process and the next request would pay a
/// cold start. Read from the workspace manifest, where the profile is set.
#[test]
fn release_profile_unwinds() {
    let manifest: toml::Table = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let profiles = &manifest["profile"];
    for profile in ["release", "dev"] {
        let panic = profiles
            .get(profile)
            .and_then(|profile| profile.get("panic"))
            .and_then(toml::Value::as_str)
            .unwrap_or("unwind");
        assert_eq!(
            panic, "unwind",
            "[profile.{profile}] must keep panic = \"unwind\""
        );
    }
}

/// The check mode deploy runs each function in: its own config code against the variables it
/// would be deployed with, and an exit instead of the Runtime API (which would wait for events).
fn check_report(output: &lambda_stage_tests::function::Output) -> Value {
    output
        .stdout
        .lines()
        .find_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|report| report["lambdaStageCheck"].clone())
        .unwrap_or_else(|| panic!("no check report on stdout: {output:?}"))
}

#[tokio::test]
async fn check_mode_names_every_environment_and_variable_and_never_serves() {
    let api = RuntimeApi::start().await.unwrap();
    let hello = binary("hello", "dev").unwrap();
    let function = Function::start(
        &hello,
        api.address(),
        &[
            ("LAMBDA_STAGE_CHECK_CONFIG", "1"),
            ("LAMBDA_STAGE_ENVS", "staging,prod"),
            ("APP_GREETING", "Hi"),
            ("APP_STAGING__API_KEY", CANARY),
            ("APP_PROD__SHOUT", "maybe"),
        ],
    )
    .unwrap();
    // It exits by itself: a runtime that reached `/next` would wait there for an event.
    let output = function.wait_exit(Duration::from_secs(20)).await.unwrap();
    assert!(!output.success, "{output:?}");
    let report = check_report(&output);
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["environments"], json!(["staging", "prod"]));
    let message = report["message"].as_str().unwrap();
    assert!(message.contains("environment `prod`"), "{message}");
    assert!(
        message.contains("APP_PROD__API_KEY (or the shared APP_API_KEY): missing"),
        "{message}"
    );
    assert!(
        message.contains("APP_PROD__SHOUT: expected a boolean"),
        "{message}"
    );
    assert!(!message.contains("`staging`"), "staging is fine: {message}");
    assert!(output.stderr.contains("APP_PROD__API_KEY"), "{output:?}");
    assert!(!output.all().contains(CANARY), "a value leaked: {output:?}");
    assert!(
        !output.all().contains("maybe"),
        "a value leaked: {output:?}"
    );
    assert!(
        api.init_errors().await.is_empty(),
        "the check posts nothing"
    );

    let function = Function::start(
        &hello,
        api.address(),
        &[
            ("LAMBDA_STAGE_CHECK_CONFIG", "1"),
            ("LAMBDA_STAGE_ENV", "prod"),
            ("APP_GREETING", "Hi"),
            ("APP_API_KEY", CANARY),
        ],
    )
    .unwrap();
    let output = function.wait_exit(Duration::from_secs(20)).await.unwrap();
    assert!(output.success, "{output:?}");
    assert_eq!(
        check_report(&output),
        json!({ "ok": true, "environments": ["prod"], "secretsFeature": false })
    );
}

#[tokio::test]
async fn check_mode_counts_references_as_present_only_with_the_secrets_feature() {
    let api = RuntimeApi::start().await.unwrap();
    let references = [
        ("LAMBDA_STAGE_CHECK_CONFIG", "1"),
        ("LAMBDA_STAGE_ENVS", "staging"),
        ("APP_GREETING", "Hi"),
        ("APP_STAGING__API_KEY", "ssm:/demo/staging/api-key"),
    ];
    // Nothing could resolve the reference here (no credentials, no endpoint): it is not read.
    let with = lambda_stage_tests::bins::binary_with_features("hello", "dev", "secrets").unwrap();
    let output = Function::start(&with, api.address(), &references)
        .unwrap()
        .wait_exit(Duration::from_secs(20))
        .await
        .unwrap();
    assert!(output.success, "{output:?}");
    assert_eq!(check_report(&output)["secretsFeature"], true);

    let without = binary("hello", "dev").unwrap();
    let output = Function::start(&without, api.address(), &references)
        .unwrap()
        .wait_exit(Duration::from_secs(20))
        .await
        .unwrap();
    assert!(!output.success, "{output:?}");
    let report = check_report(&output);
    assert_eq!(report["secretsFeature"], false);
    let message = report["message"].as_str().unwrap();
    assert!(
        message.contains("APP_STAGING__API_KEY: is a `ssm:` reference"),
        "{message}"
    );
    assert!(message.contains("`secrets` feature"), "{message}");
}

#[tokio::test]
async fn check_mode_covers_the_http_runners() {
    let api = RuntimeApi::start().await.unwrap();
    // `http-api` starts through `run_router`.
    let http_api = binary("http-api", "dev").unwrap();
    let output = Function::start(
        &http_api,
        api.address(),
        &[
            ("LAMBDA_STAGE_CHECK_CONFIG", "1"),
            ("LAMBDA_STAGE_ENVS", "staging,prod"),
            ("APP_STAGING__GREETING", "Hej"),
        ],
    )
    .unwrap()
    .wait_exit(Duration::from_secs(20))
    .await
    .unwrap();
    assert!(!output.success, "{output:?}");
    let message = check_report(&output)["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("APP_PROD__GREETING (or the shared APP_GREETING): missing"),
        "{message}"
    );
}
