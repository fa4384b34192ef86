//! Deploy side of secret references: the pre-flight existence check against moto, and the
//! scope of the execution-role statements generated for an environment.

use std::collections::BTreeSet;
use std::path::Path;

use aws_sdk_secretsmanager::Client as SecretsManager;
use aws_sdk_ssm::types::ParameterType;
use aws_sdk_ssm::Client as Ssm;
use lambda_stage_tests::fault_proxy::FaultProxy;
use lambda_stage_tests::moto::Moto;
use lambda_stage_xtask::deploy::aws::EnvClients;
use lambda_stage_xtask::deploy::role::execution_role_policy;
use lambda_stage_xtask::deploy::secrets::{
    environment_references, missing, references, role_statements, with_secret_access,
};
use lambda_stage_xtask::manifest::Manifest;
use serde_json::{json, Value};

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ssm::config::Credentials::for_tests())
        .load()
        .await
}

fn manifest(strategy: &str) -> Manifest {
    let text = format!(
        r#"
app = "demo"
strategy = "{strategy}"
region = "{REGION}"
[functions.hello]
[environments.staging]
vars = {{ APP_GREETING = "Hi" }}
secrets = {{ APP_API_KEY = "ssm:/demo/staging/api-key", APP_DB = "secretsmanager:demo/staging/db#password" }}
[environments.prod]
secrets = {{ APP_API_KEY = "ssm:/demo/prod/api-key", APP_DB = "secretsmanager:demo/prod/db#password" }}
"#
    );
    Manifest::parse(Path::new("lambda-stage.toml"), &text).expect("valid manifest")
}

#[tokio::test]
async fn preflight_names_every_missing_reference_and_reads_no_value() {
    let moto = Moto::start().await.expect("moto starts");
    let proxy = FaultProxy::start(&moto.endpoint())
        .await
        .expect("proxy starts");
    let direct = sdk_config(&moto.endpoint()).await;
    Ssm::new(&direct)
        .put_parameter()
        .name("/demo/staging/api-key")
        .value("never-read")
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    SecretsManager::new(&direct)
        .create_secret()
        .name("demo/staging/db")
        .secret_string(r#"{"password":"never-read"}"#)
        .send()
        .await
        .unwrap();

    let proxied = sdk_config(&proxy.endpoint()).await;
    let (ssm, secrets) = (Ssm::new(&proxied), SecretsManager::new(&proxied));
    let staging = environment_references(&manifest("single-stack"), "staging");
    assert!(missing(&ssm, &secrets, &staging).await.is_empty());

    let prod = environment_references(&manifest("single-stack"), "prod");
    let problems = missing(&ssm, &secrets, &prod).await;
    assert_eq!(
        problems,
        [
            "APP_API_KEY = ssm:/demo/prod/api-key: no such SSM parameter",
            "APP_DB = secretsmanager:demo/prod/db#password: no such secret",
        ]
    );
    // Existence only: no call that returns a decrypted value.
    let log = proxy.log();
    assert!(
        log.iter()
            .all(|op| op == "GetParameters" || op == "DescribeSecret"),
        "{log:?}"
    );
    assert_eq!(proxy.calls("GetParameters"), 2, "one batch per check");
}

fn resources(statements: &[Value], action: &str) -> BTreeSet<String> {
    statements
        .iter()
        .filter(|s| s["Action"] == action)
        .flat_map(|s| s["Resource"].as_array().cloned().unwrap_or_default())
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_role_reads_exactly_the_environments_references() {
    // Multi-stack: each environment's function (and role) reads its own references only.
    let manifest = manifest("multi-stack");
    let staging = role_statements(
        &references(&manifest.function_variables("hello", "staging").unwrap()),
        REGION,
        ACCOUNT,
    );
    assert_eq!(
        resources(&staging, "ssm:GetParameters"),
        BTreeSet::from([format!(
            "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/demo/staging/api-key"
        )])
    );
    assert_eq!(
        resources(&staging, "secretsmanager:GetSecretValue"),
        BTreeSet::from([format!(
            "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:demo/staging/db-??????"
        )])
    );
    let text = serde_json::to_string(&staging).unwrap();
    assert!(
        !text.contains("/prod/"),
        "staging's role reaches prod: {text}"
    );
    let actions: BTreeSet<&str> = staging
        .iter()
        .map(|s| s["Action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from([
            "ssm:GetParameters",
            "secretsmanager:GetSecretValue",
            "kms:Decrypt"
        ])
    );
    for statement in &staging {
        assert_ne!(statement["Resource"], json!("*"), "{statement}");
        if statement["Action"] == "kms:Decrypt" {
            // Decrypt only through the service, for exactly these parameters/secrets.
            let condition = &statement["Condition"];
            assert!(condition["StringEquals"]["kms:ViaService"]
                .as_str()
                .unwrap()
                .ends_with(".eu-west-1.amazonaws.com"));
            let context = condition.to_string();
            assert!(
                context.contains("demo/staging/") && !context.contains("/prod/"),
                "{context}"
            );
        }
    }
}

#[tokio::test]
async fn single_stack_role_covers_every_alias_it_serves_and_keeps_the_log_statements() {
    // Policy generation makes no call: the clients only complete `EnvClients`.
    let config = sdk_config("http://127.0.0.1:9").await;
    let clients = EnvClients::new("staging", REGION, ACCOUNT, &config);
    let manifest = manifest("single-stack");
    let variables = manifest.function_variables("hello", "staging").unwrap();
    let policy = with_secret_access(
        execution_role_policy(&clients, "demo-hello"),
        &variables,
        &clients,
    );
    let statements = policy["Statement"].as_array().unwrap();
    assert!(statements
        .iter()
        .any(|s| s["Action"] == "logs:CreateLogGroup"));
    // One function serves both aliases, so its one role reads both environments' references.
    assert_eq!(
        resources(statements, "ssm:GetParameters"),
        BTreeSet::from([
            format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/demo/prod/api-key"),
            format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/demo/staging/api-key"),
        ])
    );
    // No references, no statements beyond the logs.
    let plain = with_secret_access(
        execution_role_policy(&clients, "demo-hello"),
        &[("APP_GREETING".to_owned(), "Hi".to_owned())].into(),
        &clients,
    );
    assert_eq!(plain, execution_role_policy(&clients, "demo-hello"));
}
