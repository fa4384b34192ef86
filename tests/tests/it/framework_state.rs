//! Per-environment state, concurrent invocations and the framework's tower service, with the
//! compiled `stage-probe` and `env-clients` against a Runtime API over real HTTP on 127.0.0.1.

use std::time::Duration;

use aws_sdk_sqs::Client as Sqs;
use lambda_stage_tests::bins::binary;
use lambda_stage_tests::function::Function;
use lambda_stage_tests::moto::Moto;
use lambda_stage_tests::runtime_api::{Outcome, RuntimeApi};
use serde_json::{json, Value};

const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:probe";

fn alias(name: &str) -> String {
    format!("{ARN}:{name}")
}

/// stage-probe (dev build) started with `vars`.
fn probe(api: &RuntimeApi, vars: &[(&str, &str)]) -> Function {
    let probe = binary("stage-probe", "dev").expect("stage-probe builds");
    Function::start(&probe, api.address(), vars).expect("stage-probe starts")
}

/// What every probe needs besides the test's own variables.
const CONFIG: [(&str, &str); 2] = [("APP_GREETING", "Hi"), ("APP_API_KEY", "k")];

fn with_config<'a>(vars: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    CONFIG.iter().copied().chain(vars.iter().copied()).collect()
}

/// An HTTP API (payload 2.0) `GET <path>` on the `$default` stage.
fn http_get(path: &str) -> Value {
    let overrides = lambda_stage_events::Overrides {
        path: Some(path.to_owned()),
        ..Default::default()
    };
    lambda_stage_events::build("apigw-http", &overrides).expect("apigw-http builds")
}

/// The event that makes `runner` echo (or meet `count` others first).
fn probe_event(runner: &str, rendezvous: Option<usize>) -> Value {
    match (runner, rendezvous) {
        ("http" | "router", None) => http_get("/echo"),
        ("http" | "router", Some(count)) => http_get(&format!("/rendezvous/{count}")),
        (_, None) => json!({ "do": "echo" }),
        (_, Some(count)) => json!({ "do": "rendezvous", "count": count }),
    }
}

/// The probe's echo, from an event or an HTTP response; panics with the failure otherwise.
fn echoed(outcome: &Outcome) -> Value {
    let Outcome::Response(reply) = outcome else {
        panic!("expected an answer, got {outcome:?}");
    };
    match reply.get("statusCode") {
        Some(status) => {
            assert_eq!(status, 200, "{reply}");
            serde_json::from_str(reply["body"].as_str().expect("a body")).expect("a JSON body")
        }
        None => reply.clone(),
    }
}

fn error_of(outcome: &Outcome) -> (String, String) {
    match outcome {
        Outcome::Error { error_type, body } => (
            error_type.clone(),
            body["errorMessage"].as_str().unwrap_or_default().to_owned(),
        ),
        Outcome::Response(body) => panic!("expected an error, got {body}"),
    }
}

/// Single-stack with `LAMBDA_STAGE_ENVS`: each environment's state is built once, at init, and
/// each invocation gets its own environment's, for every runner.
#[tokio::test]
async fn staging_invocations_never_see_prods_state_on_any_runner() {
    for runner in ["event", "http", "router"] {
        let api = RuntimeApi::start().await.unwrap();
        let function = probe(
            &api,
            &[
                ("PROBE_RUNNER", runner),
                ("LAMBDA_STAGE_ENVS", "staging,prod"),
                ("APP_STAGING__GREETING", "Hello from staging"),
                ("APP_PROD__GREETING", "Hello from prod"),
                ("APP_API_KEY", "k"),
            ],
        );
        for round in 0..12 {
            let env = ["staging", "prod"][round % 2];
            let outcome = api
                .invoke(&alias(env), probe_event(runner, None))
                .await
                .unwrap();
            let reply = echoed(&outcome);
            assert_eq!(reply["env"], env, "{runner} round {round}: {reply}");
            assert_eq!(
                reply["greeting"],
                format!("Hello from {env}"),
                "{runner}: {reply}"
            );
            assert_eq!(
                reply["state"],
                json!({ "built_for": env, "attempt": 1 }),
                "{runner} round {round}: built once, for its own environment"
            );
        }
        function.stop().await.unwrap();
    }
}

/// A constructor that fails at init fails the cold start, reported as `LambdaStage.StateError`
/// to `/runtime/init/error`, in either strategy.
#[tokio::test]
async fn a_state_that_fails_at_init_fails_the_cold_start() {
    let strategies: [&[(&str, &str)]; 2] = [
        &[("LAMBDA_STAGE_ENV", "prod"), ("APP_STATE_FAILURES", "1")],
        &[
            ("LAMBDA_STAGE_ENVS", "staging,prod"),
            ("APP_PROD__STATE_FAILURES", "1"),
        ],
    ];
    for vars in strategies {
        let api = RuntimeApi::start().await.unwrap();
        let function = probe(&api, &with_config(vars));
        let output = function.wait_exit(Duration::from_secs(20)).await.unwrap();
        assert!(!output.success, "{vars:?}: the cold start must fail");
        let reports = api.init_errors().await;
        assert_eq!(reports.len(), 1, "{vars:?}: {reports:?}");
        assert_eq!(reports[0].header_error_type, "LambdaStage.StateError");
        assert_eq!(reports[0].body["errorType"], "LambdaStage.StateError");
        let message = reports[0].body["errorMessage"].as_str().unwrap();
        assert!(
            message.contains(
                "could not build the state of environment `prod`: the probe's state for `prod` \
                 refused attempt 1"
            ),
            "{vars:?}: {message}"
        );
        assert!(
            !message.contains("`staging`"),
            "staging was fine: {message}"
        );
        assert!(
            output.stderr.contains("LambdaStage.StateError"),
            "{}",
            output.stderr
        );
    }
}

/// An environment first seen at an invocation builds its state then: a failure is that
/// invocation's error and is never cached, so the next invocation tries again.
#[tokio::test]
async fn a_state_built_at_first_invocation_fails_that_invocation_and_is_retried() {
    let api = RuntimeApi::start().await.unwrap();
    let function = probe(&api, &with_config(&[("APP_QA__STATE_FAILURES", "2")]));
    for attempt in 1..=2 {
        let (error_type, message) = error_of(
            &api.invoke(&alias("qa"), json!({"do": "echo"}))
                .await
                .unwrap(),
        );
        assert_eq!(error_type, "LambdaStage.StateError");
        assert_eq!(
            message,
            format!(
                "could not build the state of environment `qa`: the probe's state for `qa` \
                 refused attempt {attempt} (APP_STATE_FAILURES) (the next invocation of `qa` \
                 tries again)"
            )
        );
        // Another environment is not held back by qa's failures.
        let staging = echoed(
            &api.invoke(&alias("staging"), json!({"do": "echo"}))
                .await
                .unwrap(),
        );
        assert_eq!(
            staging["state"],
            json!({ "built_for": "staging", "attempt": 1 })
        );
    }
    for _ in 0..2 {
        let qa = echoed(
            &api.invoke(&alias("qa"), json!({"do": "echo"}))
                .await
                .unwrap(),
        );
        assert_eq!(
            qa["state"],
            json!({ "built_for": "qa", "attempt": 3 }),
            "built once, then kept"
        );
    }
    function.stop().await.unwrap();
}

/// With `AWS_LAMBDA_MAX_CONCURRENCY` (Lambda Managed Instances), every runner serves that many
/// invocations at once: four invocations that each wait for the other three all answer. The
/// environment's state, built on their first invocation, is built once for all four.
#[tokio::test]
async fn every_runner_serves_concurrent_invocations_when_the_runtime_asks() {
    for runner in ["event", "http", "router", "service"] {
        let api = RuntimeApi::start().await.unwrap();
        let function = probe(
            &api,
            &with_config(&[
                ("PROBE_RUNNER", runner),
                ("AWS_LAMBDA_MAX_CONCURRENCY", "4"),
            ]),
        );
        let staging = alias("staging");
        let meet = || api.invoke(&staging, probe_event(runner, Some(4)));
        let (one, two, three, four) = tokio::join!(meet(), meet(), meet(), meet());
        for outcome in [one, two, three, four] {
            let reply = echoed(&outcome.unwrap());
            assert_eq!(
                reply["state"],
                json!({ "built_for": "staging", "attempt": 1 }),
                "{runner}: {reply}"
            );
        }
        function.stop().await.unwrap();
    }
}

/// The event handler's service inside a `lambda_runtime::Runtime` the app composed itself, with
/// lambda_runtime's `TracingLayer` and a layer of its own: the same handling as `run`.
#[tokio::test]
async fn the_service_runs_in_a_runtime_the_app_composes_with_its_own_layers() {
    let api = RuntimeApi::start().await.unwrap();
    let function = probe(
        &api,
        &with_config(&[
            ("PROBE_RUNNER", "service"),
            ("LAMBDA_STAGE_ENVS", "staging"),
        ]),
    );
    let reply = echoed(
        &api.invoke(&alias("staging"), json!({"do": "echo"}))
            .await
            .unwrap(),
    );
    assert_eq!(reply["env"], "staging");
    let request_id = reply["request_id"].as_str().unwrap().to_owned();
    let (error_type, _) = error_of(
        &api.invoke(&alias("prod"), json!({"do": "echo"}))
            .await
            .unwrap(),
    );
    assert_eq!(error_type, "LambdaStage.UnknownEnvironment");
    let (error_type, _) = error_of(
        &api.invoke(&alias("staging"), json!({"do": "panic"}))
            .await
            .unwrap(),
    );
    assert_eq!(error_type, "LambdaStage.Panic");
    let output = function.stop().await.unwrap();
    assert!(
        output.stderr.contains(&format!("layer saw {request_id}")),
        "{}",
        output.stderr
    );
}

/// `examples/env-clients`: each environment's SQS client, built once from its config, sends to
/// that environment's queue only.
#[tokio::test]
async fn each_environment_s_sdk_client_reaches_its_own_queue_only() {
    let moto = Moto::start().await.expect("moto starts");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
        .load()
        .await;
    let sqs = Sqs::new(&config);
    let mut urls = Vec::new();
    for env in ["staging", "prod"] {
        let created = sqs
            .create_queue()
            .queue_name(format!("orders-{env}"))
            .send()
            .await
            .unwrap();
        urls.push(created.queue_url().unwrap().to_owned());
    }
    let api = RuntimeApi::start().await.unwrap();
    let example = binary("env-clients", "dev").expect("env-clients builds");
    let endpoint = moto.endpoint();
    let function = Function::start(
        &example,
        api.address(),
        &[
            ("LAMBDA_STAGE_ENVS", "staging,prod"),
            ("APP_STAGING__QUEUE_URL", &urls[0]),
            ("APP_PROD__QUEUE_URL", &urls[1]),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    )
    .unwrap();
    for (env, url) in [("staging", &urls[0]), ("prod", &urls[1])] {
        let described = echoed(
            &api.invoke(&alias(env), json!({ "action": "describe" }))
                .await
                .unwrap(),
        );
        assert_eq!(
            described,
            json!({ "env": env, "queue_url": url, "region": "eu-west-1" })
        );
    }
    for (env, body) in [("staging", "s1"), ("prod", "p1"), ("staging", "s2")] {
        let sent = echoed(
            &api.invoke(&alias(env), json!({ "action": "send", "body": body }))
                .await
                .unwrap(),
        );
        assert_eq!(sent["env"], env, "{sent}");
    }
    function.stop().await.unwrap();

    for (url, expected) in [(&urls[0], vec!["s1", "s2"]), (&urls[1], vec!["p1"])] {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let mut bodies: Vec<&str> = received
            .messages()
            .iter()
            .filter_map(|message| message.body())
            .collect();
        bodies.sort_unstable();
        assert_eq!(bodies, expected, "{url}");
    }
}

/// Check mode (`LAMBDA_STAGE_CHECK_CONFIG=1`, what deploy runs) checks configs and exits before
/// any state constructor runs: constructors may need the network or the execution role.
#[tokio::test]
async fn check_mode_builds_no_state() {
    let api = RuntimeApi::start().await.unwrap();
    let vars = with_config(&[("LAMBDA_STAGE_ENV", "prod"), ("APP_STATE_FAILURES", "1")]);
    let mut checked = vars.clone();
    checked.push(("LAMBDA_STAGE_CHECK_CONFIG", "1"));
    let output = probe(&api, &checked)
        .wait_exit(Duration::from_secs(20))
        .await
        .unwrap();
    assert!(output.success, "the config is valid: {output:?}");
    assert!(!output.all().contains("refused attempt"), "{output:?}");

    // The same variables without the check: the constructor runs, and fails the cold start.
    let output = probe(&api, &vars)
        .wait_exit(Duration::from_secs(20))
        .await
        .unwrap();
    assert!(!output.success);
    assert_eq!(api.init_errors().await.len(), 1);
}
