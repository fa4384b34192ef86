//! Secret references resolved by the compiled `hello --features secrets` against moto's SSM and
//! Secrets Manager, through a counting proxy, on a Runtime API over real HTTP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_secretsmanager::Client as SecretsManager;
use aws_sdk_ssm::types::ParameterType;
use aws_sdk_ssm::Client as Ssm;
use lambda_stage_tests::bins::{binary_with_features, workspace_root};
use lambda_stage_tests::fault_proxy::FaultProxy;
use lambda_stage_tests::function::{Function, Output};
use lambda_stage_tests::moto::Moto;
use lambda_stage_tests::runtime_api::{Outcome, RuntimeApi};
use serde_json::json;

const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:probe";
const REGION: &str = "eu-west-1";

/// A value that must never leave moto except into the function's memory: made up at run
/// time, so no file of the repository can hold it unless something wrote it there.
fn canary() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("canary-{nanos:x}-{}", std::process::id())
}

/// moto, a counting proxy in front of it, and SDK clients that write to moto directly.
struct Aws {
    _moto: Moto,
    proxy: FaultProxy,
    ssm: Ssm,
    secrets: SecretsManager,
}

impl Aws {
    async fn start() -> Aws {
        let moto = Moto::start().await.expect("moto starts");
        let proxy = FaultProxy::start(&moto.endpoint())
            .await
            .expect("proxy starts");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(moto.endpoint())
            .credentials_provider(aws_sdk_ssm::config::Credentials::for_tests())
            .load()
            .await;
        Aws {
            ssm: Ssm::new(&config),
            secrets: SecretsManager::new(&config),
            proxy,
            _moto: moto,
        }
    }

    async fn parameter(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .expect("put-parameter");
    }

    async fn secret(&self, name: &str, value: &str) {
        self.secrets
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("create-secret");
    }

    /// What the function needs to reach AWS through the proxy.
    fn vars(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.proxy.endpoint()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

fn start(api: &RuntimeApi, aws: &Aws, vars: &[(&str, &str)]) -> Function {
    start_package("hello", api, aws, vars)
}

/// `package` built with its `secrets` feature, started with `aws`'s endpoint and `vars`.
fn start_package(package: &str, api: &RuntimeApi, aws: &Aws, vars: &[(&str, &str)]) -> Function {
    let binary = binary_with_features(package, "dev", "secrets").expect("the function builds");
    let mut all: Vec<(String, String)> = aws.vars();
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let borrowed: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Function::start(&binary, api.address(), &borrowed).expect("the function starts")
}

fn assert_never_shows(secret: &str, output: &Output, also: &[String]) {
    assert!(
        !output.all().contains(secret),
        "the secret leaked into the function's output"
    );
    for text in also {
        assert!(!text.contains(secret), "the secret leaked into: {text}");
    }
}

async fn hello(api: &RuntimeApi, alias: &str) -> Outcome {
    api.invoke(&format!("{ARN}:{alias}"), json!({ "name": "Ada" }))
        .await
        .expect("invocation answered")
}

/// `many-secrets` declares 24 fields: 23 SSM references among them take three `GetParameters`
/// calls, and a reference in a variable no field reads is neither fetched nor a failure.
#[tokio::test]
async fn multi_stack_resolves_every_declared_reference_at_init_in_few_calls() {
    let aws = Aws::start().await;
    let secret = canary();
    aws.parameter("/app/prod/api-key", &secret).await;
    aws.secret(
        "app/prod/config",
        &json!({ "greeting": "Hello from Secrets Manager", "token": secret }).to_string(),
    )
    .await;
    let mut vars = vec![
        ("LAMBDA_STAGE_ENV".to_owned(), "prod".to_owned()),
        ("APP_API_KEY".to_owned(), "ssm:/app/prod/api-key".to_owned()),
        (
            "APP_GREETING".to_owned(),
            "secretsmanager:app/prod/config#greeting".to_owned(),
        ),
        // No field reads it, and the parameter does not exist: it must not matter.
        (
            "APP_UNRELATED".to_owned(),
            "ssm:/someone/elses/parameter".to_owned(),
        ),
    ];
    // 22 token fields: 23 SSM references in all, so three GetParameters calls.
    let mut token_bytes = 0;
    for i in 1..=22 {
        let name = format!("/app/prod/token-{i}");
        let value = format!("{secret}-{i}");
        token_bytes += value.len();
        aws.parameter(&name, &value).await;
        vars.push((format!("APP_TOKEN_{i:02}"), format!("ssm:{name}")));
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let api = RuntimeApi::start().await.unwrap();
    let function = start_package("many-secrets", &api, &aws, &vars);
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let outcome = hello(&api, "live").await;
        assert_eq!(
            outcome,
            Outcome::Response(json!({
                "message": "Hello from Secrets Manager, Ada!",
                "api_key_bytes": secret.len(),
                "tokens": 22,
                "token_bytes": token_bytes,
            }))
        );
        outcomes.push(format!("{outcome:?}"));
    }
    assert_eq!(aws.proxy.calls("GetParameters"), 3, "{:?}", aws.proxy.log());
    assert_eq!(
        aws.proxy.calls("GetSecretValue"),
        1,
        "{:?}",
        aws.proxy.log()
    );
    assert_eq!(aws.proxy.calls("GetParameter"), 0, "{:?}", aws.proxy.log());
    let output = function.stop().await.unwrap();
    assert!(
        output.stderr.contains("resolved secret references"),
        "{}",
        output.stderr
    );
    assert!(
        !output.all().contains("someone/elses"),
        "the undeclared reference was touched: {}",
        output.stderr
    );
    assert_never_shows(&secret, &output, &outcomes);
}

#[tokio::test]
async fn a_function_without_references_makes_no_aws_call() {
    let aws = Aws::start().await;
    let api = RuntimeApi::start().await.unwrap();
    let function = start(
        &api,
        &aws,
        &[
            ("LAMBDA_STAGE_ENVS", "staging,prod"),
            ("APP_GREETING", "Hi"),
            ("APP_API_KEY", "plain"),
        ],
    );
    for alias in ["staging", "prod", "staging"] {
        let outcome = hello(&api, alias).await;
        assert_eq!(
            outcome,
            Outcome::Response(json!({ "message": "Hi, Ada!", "env": alias }))
        );
    }
    function.stop().await.unwrap();
    assert_eq!(aws.proxy.log(), Vec::<String>::new());
}

#[tokio::test]
async fn single_stack_fetches_an_environment_on_its_first_invocation_only() {
    let aws = Aws::start().await;
    let staging_secret = canary();
    let prod_secret = canary() + "-prod";
    aws.parameter("/app/staging/api-key", &staging_secret).await;
    aws.parameter("/app/staging/greeting", "Hello from staging")
        .await;
    aws.secret(
        "app/prod",
        &json!({ "api_key": prod_secret, "greeting": "Hello from prod" }).to_string(),
    )
    .await;
    let api = RuntimeApi::start().await.unwrap();
    let function = start(
        &api,
        &aws,
        &[
            ("LAMBDA_STAGE_ENVS", "staging,prod,qa"),
            ("APP_STAGING__API_KEY", "ssm:/app/staging/api-key"),
            ("APP_STAGING__GREETING", "ssm:/app/staging/greeting"),
            ("APP_PROD__API_KEY", "secretsmanager:app/prod#api_key"),
            ("APP_PROD__GREETING", "secretsmanager:app/prod#greeting"),
            ("APP_QA__GREETING", "Hi"),
            ("APP_QA__API_KEY", "ssm:/app/qa/missing"),
        ],
    );
    for _ in 0..3 {
        let outcome = hello(&api, "staging").await;
        assert_eq!(
            outcome,
            Outcome::Response(json!({ "message": "Hello from staging, Ada!", "env": "staging" }))
        );
    }
    assert_eq!(
        aws.proxy.log(),
        ["GetParameters"],
        "staging fetched once, alone"
    );

    let outcome = hello(&api, "prod").await;
    assert_eq!(
        outcome,
        Outcome::Response(json!({ "message": "Hello from prod, Ada!", "env": "prod" }))
    );
    assert_eq!(aws.proxy.log(), ["GetParameters", "GetSecretValue"]);

    // An environment whose reference is missing fails its own invocations, naming the
    // variable and the reference; the others go on.
    // (lambda_runtime's error header always says `unhandled`: the type is in the body.)
    let Outcome::Error { body, .. } = hello(&api, "qa").await else {
        panic!("qa must fail");
    };
    assert_eq!(body["errorType"], "LambdaStage.SecretError", "{body}");
    let message = body["errorMessage"].as_str().unwrap().to_owned();
    assert!(
        message.contains("APP_QA__API_KEY = ssm:/app/qa/missing: no such SSM parameter"),
        "{message}"
    );
    assert!(matches!(hello(&api, "staging").await, Outcome::Response(_)));
    let output = function.stop().await.unwrap();
    assert_never_shows(&staging_secret, &output, std::slice::from_ref(&message));
    assert_never_shows(&prod_secret, &output, &[message]);
}

#[tokio::test]
async fn a_missing_reference_fails_the_init_naming_the_variable_and_the_reference() {
    let aws = Aws::start().await;
    let secret = canary();
    aws.secret("app/prod/config", &json!({ "token": secret }).to_string())
        .await;
    let api = RuntimeApi::start().await.unwrap();
    let function = start(
        &api,
        &aws,
        &[
            ("LAMBDA_STAGE_ENV", "prod"),
            ("APP_API_KEY", "ssm:/app/prod/missing"),
            ("APP_GREETING", "secretsmanager:app/prod/config#greeting"),
            ("APP_SHOUT", "secretsmanager:app/prod/absent"),
        ],
    );
    let output = function.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert!(
        !output.success,
        "an unresolvable reference must fail the init"
    );
    let reports = api.init_errors().await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].header_error_type, "LambdaStage.SecretError");
    assert_eq!(reports[0].body["errorType"], "LambdaStage.SecretError");
    let message = reports[0].body["errorMessage"].as_str().unwrap().to_owned();
    for expected in [
        "environment `prod`",
        "APP_API_KEY = ssm:/app/prod/missing: no such SSM parameter",
        "APP_GREETING = secretsmanager:app/prod/config#greeting: the secret's JSON object has no key `greeting`",
        "APP_SHOUT = secretsmanager:app/prod/absent: no such secret",
    ] {
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
    assert_never_shows(&secret, &output, &[message]);
}

#[tokio::test]
async fn values_are_refreshed_in_the_background_after_the_ttl() {
    let aws = Aws::start().await;
    aws.parameter("/app/prod/greeting", "Hello").await;
    let api = RuntimeApi::start().await.unwrap();
    let function = start(
        &api,
        &aws,
        &[
            ("LAMBDA_STAGE_ENV", "prod"),
            ("LAMBDA_STAGE_SECRETS_TTL", "1"),
            ("APP_GREETING", "ssm:/app/prod/greeting"),
            ("APP_API_KEY", "k"),
        ],
    );
    let message = |outcome: Outcome| match outcome {
        Outcome::Response(body) => body["message"].as_str().unwrap().to_owned(),
        other => panic!("{other:?}"),
    };
    assert_eq!(message(hello(&api, "live").await), "Hello, Ada!");
    aws.parameter("/app/prod/greeting", "Rotated").await;
    assert_eq!(
        message(hello(&api, "live").await),
        "Hello, Ada!",
        "cached within the TTL"
    );
    assert_eq!(aws.proxy.calls("GetParameters"), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The first call past the TTL is served the cached value and starts the refresh.
    assert_eq!(message(hello(&api, "live").await), "Hello, Ada!");
    let mut refreshed = String::new();
    for _ in 0..50 {
        refreshed = message(hello(&api, "live").await);
        if refreshed != "Hello, Ada!" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refreshed, "Rotated, Ada!");
    assert_eq!(aws.proxy.calls("GetParameters"), 2);
    function.stop().await.unwrap();
}

#[tokio::test]
async fn the_canary_is_nowhere_in_the_binary_or_the_repository() {
    let aws = Aws::start().await;
    let secret = canary();
    aws.parameter("/app/prod/api-key", &secret).await;
    let api = RuntimeApi::start().await.unwrap();
    let function = start(
        &api,
        &aws,
        &[
            ("LAMBDA_STAGE_ENV", "prod"),
            ("APP_GREETING", "Hi"),
            ("APP_API_KEY", "ssm:/app/prod/api-key"),
            // Everything the SDK and the runtime log, requests and responses included
            // (~50 KB: one reference keeps it within the harness's pipe).
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
        ],
    );
    assert!(matches!(hello(&api, "live").await, Outcome::Response(_)));
    let output = function.stop().await.unwrap();
    assert!(
        output.stderr.contains("GetParameters"),
        "TRACE logs expected: {}",
        output.stderr
    );
    assert_never_shows(&secret, &output, &[]);

    // The deployable binary carries references at most, never values.
    let hello = binary_with_features("hello", "dev", "secrets").unwrap();
    let bytes = std::fs::read(&hello).unwrap();
    assert!(!bytes
        .windows(secret.len())
        .any(|window| window == secret.as_bytes()));
    // Nothing the run did wrote the value into the working tree.
    let grep = std::process::Command::new("git")
        .current_dir(workspace_root())
        .args(["grep", "--untracked", "-I", "-l", "-F", &secret])
        .output()
        .unwrap();
    assert_eq!(
        grep.status.code(),
        Some(1),
        "git grep found the canary in: {}",
        String::from_utf8_lossy(&grep.stdout)
    );
}

/// `#[tokio::main(flavor = "current_thread")]`: an environment's references are resolved on its
/// first invocation by every runner, awaited, with no thread blocked for them.
#[tokio::test]
async fn every_runner_resolves_references_on_a_current_thread_runtime() {
    let aws = Aws::start().await;
    let secret = canary();
    aws.parameter("/app/staging/api-key", &secret).await;
    let overrides = lambda_stage_events::Overrides {
        path: Some("/echo".to_owned()),
        ..Default::default()
    };
    let http_echo = lambda_stage_events::build("apigw-http", &overrides).unwrap();
    for (runner, event) in [
        ("event", json!({ "do": "echo" })),
        ("http", http_echo.clone()),
        ("router", http_echo),
    ] {
        let api = RuntimeApi::start().await.unwrap();
        let function = start_package(
            "stage-probe",
            &api,
            &aws,
            &[
                ("PROBE_RUNNER", runner),
                ("PROBE_FLAVOR", "current_thread"),
                ("APP_GREETING", "Hi"),
                ("APP_STAGING__API_KEY", "ssm:/app/staging/api-key"),
            ],
        );
        let outcome = api
            .invoke(&format!("{ARN}:staging"), event)
            .await
            .expect("invocation answered");
        let Outcome::Response(reply) = &outcome else {
            panic!("{runner}: {outcome:?}");
        };
        let reply = match reply.get("body") {
            Some(body) => serde_json::from_str(body.as_str().unwrap()).unwrap(),
            None => reply.clone(),
        };
        assert_eq!(reply["env"], "staging", "{runner}: {reply}");
        assert_eq!(reply["api_key_len"], secret.len(), "{runner}: {reply}");
        let output = function.stop().await.unwrap();
        assert_never_shows(&secret, &output, &[format!("{outcome:?}")]);
    }
}
