//! Deploy's pre-flight beyond the manifest, with the real CLI against moto (through the
//! recording proxy): each function's own code checks its config with exactly the variables
//! it would be deployed with (`deploy` and `promote`), secret references reach no function
//! built without the `secrets` feature, a role the manifest names is checked for the
//! references it must read, and a missing login fails before anything is built.
//!
//! `hello` builds for x86_64 musl here, so the check runs the very binary of the zip.

use lambda_stage_tests::deploy_stage::{assert_failed_with, assert_ok, Run, Stage, ACCOUNT};

const DEPLOY: &[&str] = &["deploy", "--profile", "dev"];
/// A value that must never be printed.
const CANARY: &str = "canary-4b1d-never-print";

fn args<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(more).copied().collect()
}

#[track_caller]
fn assert_never_printed(run: &Run, value: &str) {
    assert!(
        !run.stdout.contains(value) && !run.stderr.contains(value),
        "`{value}` was printed:\n{run:?}"
    );
}

/// `hello` (needs `APP_GREETING` and `APP_API_KEY`) in staging and prod, single-stack; `prod`
/// is the environment's table body for prod.
fn hello_single_stack(function: &str, prod: &str) -> String {
    format!(
        r#"app = "shop"
region = "us-east-1"
account-id = "{ACCOUNT}"

[functions.{function}]
package = "hello"
arch = "x86_64"
create-role = true

[environments.staging]
vars = {{ APP_GREETING = "Hi staging", APP_API_KEY = "{CANARY}" }}

[environments.prod]
{prod}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_whose_config_cannot_load_in_a_served_environment_is_never_deployed() {
    let stage = Stage::start().await;
    let name = "shop-hello-check";
    // No `required-vars`: only the function's own config struct says what it needs.
    stage.write_manifest(&hello_single_stack(
        "hello-check",
        r#"vars = { APP_GREETING = "Hi prod", APP_SHOUT = "maybe" }"#,
    ));
    let run = stage.xtask(&args(DEPLOY, &["--env", "staging"])).await;
    assert_failed_with(&run, "pre-flight failed for `staging`, nothing was written");
    for needle in [
        "hello-check: invalid configuration for environment `prod`",
        "APP_PROD__API_KEY (or the shared APP_API_KEY): missing",
        "APP_PROD__SHOUT: expected a boolean",
        "Fix: set each variable named above in [environments.<env>] (or \
         [environments.<env>.functions.hello-check]) `vars` or `secrets` of lambda-stage.toml.",
    ] {
        assert!(run.stderr.contains(needle), "{needle}:\n{run:?}");
    }
    assert!(
        !run.stderr.contains("environment `staging`"),
        "staging is fine:\n{run:?}"
    );
    assert_never_printed(&run, CANARY);
    assert_never_printed(&run, "maybe");
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());
    assert_eq!(stage.alias(name, "staging").await, None);

    // Complete in every environment the version serves: it deploys, and says what it checked.
    stage.write_manifest(&hello_single_stack(
        "hello-check",
        &format!(r#"vars = {{ APP_GREETING = "Hi prod", APP_API_KEY = "{CANARY}" }}"#),
    ));
    let run = stage.xtask(&args(DEPLOY, &["--env", "staging"])).await;
    assert_ok(&run);
    assert!(
        run.stderr
            .contains("config check: `hello-check` loads its config in prod, staging"),
        "{run:?}"
    );
    assert_eq!(
        stage.alias_version(name, "staging").await.as_deref(),
        Some("1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_references_are_refused_for_a_function_built_without_the_secrets_feature() {
    let stage = Stage::start().await;
    stage.put_parameter("us-east-1", "/shop/prod/api-key").await;
    stage.write_manifest(&hello_single_stack(
        "hello-nosecrets",
        r#"vars = { APP_GREETING = "Hi prod" }
secrets = { APP_API_KEY = "ssm:/shop/prod/api-key" }"#,
    ));
    let run = stage.xtask(&args(DEPLOY, &["--env", "staging"])).await;
    assert_failed_with(&run, "pre-flight failed for `staging`, nothing was written");
    for needle in [
        "APP_PROD__API_KEY: is a `ssm:` reference",
        "`hello-nosecrets` was built without lambda-stage's `secrets` feature, so its init \
         refuses the secret references in APP_PROD__API_KEY",
        // `hello` has a feature that turns the framework's on: the manifest just names it.
        "set `features = [\"secrets\"]` under [functions.hello-nosecrets] in lambda-stage.toml",
    ] {
        assert!(run.stderr.contains(needle), "{needle}:\n{run:?}");
    }
    // The feature is the whole fix: nothing sends the user to the variables.
    assert!(!run.stderr.contains("Fix: set each variable"), "{run:?}");
    assert_never_printed(&run, CANARY);
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_checks_the_target_environment_with_the_code_it_promotes() {
    let stage = Stage::start().await;
    stage.write_manifest(&format!(
        r#"app = "shop"
strategy = "multi-stack"
region = "us-east-1"
account-id = "{ACCOUNT}"

[functions.hello-promote]
package = "hello"
arch = "x86_64"
create-role = true

[environments.staging]
vars = {{ APP_GREETING = "Hi staging", APP_API_KEY = "{CANARY}" }}

[environments.prod]
vars = {{ APP_GREETING = "Hi prod" }}
"#
    ));
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "staging"])).await);

    stage.proxy.reset_counts();
    let run = stage
        .xtask(&["promote", "--from", "staging", "--to", "prod", "--yes"])
        .await;
    assert_failed_with(&run, "pre-flight failed for `prod`, nothing was written");
    for needle in [
        "hello-promote: invalid configuration for environment `prod`",
        "APP_API_KEY: missing",
    ] {
        assert!(run.stderr.contains(needle), "{needle}:\n{run:?}");
    }
    assert_never_printed(&run, CANARY);
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());
    assert_eq!(stage.alias("shop-hello-promote-prod", "live").await, None);
}

/// moto's Lambda, straight (not through the proxy): what another tool, or an older
/// lambda-stage without the config check, could have done.
async fn lambda_client(stage: &Stage) -> aws_sdk_lambda::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(stage.moto.endpoint())
        .credentials_provider(aws_sdk_lambda::config::Credentials::for_tests())
        .load()
        .await;
    aws_sdk_lambda::Client::new(&config)
}

#[tokio::test(flavor = "multi_thread")]
async fn single_stack_promote_checks_the_variables_the_version_was_published_with() {
    let stage = Stage::start().await;
    let name = "shop-hello-frozen";
    stage.write_manifest(&hello_single_stack(
        "hello-frozen",
        &format!(r#"vars = {{ APP_GREETING = "Hi prod", APP_API_KEY = "{CANARY}" }}"#),
    ));
    assert_ok(&stage.xtask(&args(DEPLOY, &["--env", "staging"])).await);

    // Staging now runs a version published without prod's API key.
    let lambda = lambda_client(&stage).await;
    let current = lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .unwrap();
    let mut variables = current
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap();
    assert!(
        variables.remove("APP_PROD__API_KEY").is_some(),
        "{variables:?}"
    );
    lambda
        .update_function_configuration()
        .function_name(name)
        .environment(
            aws_sdk_lambda::types::Environment::builder()
                .set_variables(Some(variables))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let version = lambda
        .publish_version()
        .function_name(name)
        .send()
        .await
        .unwrap();
    let version = version.version().unwrap().to_owned();
    lambda
        .update_alias()
        .function_name(name)
        .name("staging")
        .function_version(&version)
        .send()
        .await
        .unwrap();

    stage.proxy.reset_counts();
    let run = stage
        .xtask(&["promote", "--from", "staging", "--to", "prod", "--yes"])
        .await;
    assert_failed_with(&run, "pre-flight failed for `prod`, nothing was written");
    for needle in [
        "hello-frozen: invalid configuration for environment `prod`",
        "APP_PROD__API_KEY (or the shared APP_API_KEY): missing",
    ] {
        assert!(run.stderr.contains(needle), "{needle}:\n{run:?}");
    }
    assert_never_printed(&run, CANARY);
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());
    assert_eq!(stage.alias(name, "prod").await, None);
}

/// A function whose role the manifest names, and one secret reference in staging.
fn named_role(function: &str) -> String {
    format!(
        r#"app = "shop"
region = "us-east-1"
account-id = "{ACCOUNT}"

[functions.{function}]
package = "bare-echo"
arch = "x86_64"
role = "arn:aws:iam::{ACCOUNT}:role/shop-named"

[environments.staging]
secrets = {{ APP_API_KEY = "ssm:/shop/staging/api-key" }}
"#
    )
}

/// IAM's answer to `SimulatePrincipalPolicy` for one action on one resource.
fn simulation(resource: &str, decision: &str) -> String {
    format!(
        r#"<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <SimulatePrincipalPolicyResult>
    <IsTruncated>false</IsTruncated>
    <EvaluationResults>
      <member>
        <EvalActionName>ssm:GetParameters</EvalActionName>
        <EvalResourceName>{resource}</EvalResourceName>
        <EvalDecision>{decision}</EvalDecision>
        <MatchedStatements/>
        <MissingContextValues/>
      </member>
    </EvaluationResults>
  </SimulatePrincipalPolicyResult>
  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>
</SimulatePrincipalPolicyResponse>"#
    )
}

fn percent_decoded(text: &str) -> String {
    text.replace("%3A", ":").replace("%2F", "/")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_role_is_checked_for_the_references_it_must_read() {
    let stage = Stage::start().await;
    stage.create_role("shop-named").await;
    stage
        .put_parameter("us-east-1", "/shop/staging/api-key")
        .await;
    stage.write_manifest(&named_role("echo-named-role"));
    let role = format!("arn:aws:iam::{ACCOUNT}:role/shop-named");
    let parameter = format!("arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/shop/staging/api-key");
    let dry_run = args(DEPLOY, &["--env", "staging", "--dry-run"]);

    // moto has no policy simulator: the plan says the role could not be checked, and why.
    let run = stage.xtask(&dry_run).await;
    assert_ok(&run);
    assert!(
        run.stdout.contains(&format!(
            "role:     WARNING: could not check that role `{role}` may read \
             APP_STAGING__API_KEY -> ssm:/shop/staging/api-key (IAM policy simulation failed"
        )),
        "{run:?}"
    );
    assert_eq!(stage.proxy.writes(), Vec::<String>::new());
    let asked = stage.proxy.requests_of("SimulatePrincipalPolicy");
    let body = percent_decoded(&asked.first().expect("a simulation was asked for").body);
    assert!(body.contains(&format!("PolicySourceArn={role}")), "{body}");
    assert!(
        body.contains("ActionNames.member.1=ssm:GetParameters"),
        "{body}"
    );
    assert!(
        body.contains(&format!("ResourceArns.member.1={parameter}")),
        "{body}"
    );

    // IAM says the role may not: the plan names the role, the reference and the decision.
    let xml = [("content-type", "text/xml")];
    stage.proxy.respond_once(
        "SimulatePrincipalPolicy",
        200,
        &xml,
        &simulation(&parameter, "implicitDeny"),
    );
    let run = stage.xtask(&dry_run).await;
    assert_ok(&run);
    assert!(
        run.stdout.contains(&format!(
            "role:     WARNING: role `{role}` may not read APP_STAGING__API_KEY -> \
             ssm:/shop/staging/api-key (ssm:GetParameters: implicitDeny): every cold start \
             would fail with AccessDenied"
        )),
        "{run:?}"
    );

    // IAM says it may: nothing to say.
    stage.proxy.respond_once(
        "SimulatePrincipalPolicy",
        200,
        &xml,
        &simulation(&parameter, "allowed"),
    );
    let run = stage.xtask(&dry_run).await;
    assert_ok(&run);
    assert!(!run.stdout.contains("WARNING"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_credentials_deploy_fails_in_words_before_building_anything() {
    let stage = Stage::start().await;
    let function = "echo-no-login";
    stage.write_manifest(&format!(
        r#"app = "shop"
region = "us-east-1"

[functions.{function}]
package = "bare-echo"
arch = "x86_64"
create-role = true

[environments.staging]
vars = {{ APP_GREETING = "Hi" }}
"#
    ));
    let build_output = lambda_stage_tests::scratch::repo_target_dir()
        .join("lambda")
        .join(function);
    let _ = std::fs::remove_dir_all(&build_output);
    let empty = tempfile::tempdir().unwrap();
    let (config, credentials) = (
        empty.path().join("config"),
        empty.path().join("credentials"),
    );
    std::fs::write(&config, "").unwrap();
    std::fs::write(&credentials, "").unwrap();
    let (config, credentials) = (
        config.display().to_string(),
        credentials.display().to_string(),
    );
    let no_login = |imds| no_login(&config, &credentials, imds);
    let deploy = args(DEPLOY, &["--env", "staging", "--dry-run"]);
    for imds in [
        ("AWS_EC2_METADATA_DISABLED", Some("true")),
        // An instance metadata service that refuses: the SDK's longest error (IMDS, HTTP).
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            Some("http://127.0.0.1:1"),
        ),
    ] {
        let run = stage.xtask_env(&deploy, &no_login(imds)).await;
        assert_failed_with(
            &run,
            "no usable AWS credentials for environment `staging`: log in (`aws sso login`), or \
             set AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, then re-run. \
             Nothing was written.\nCause: ",
        );
        assert!(
            run.stderr.contains("no credentials found in chain"),
            "{run:?}"
        );
        for debug_marker in ["SdkBody", "DispatchFailure(", "ConnectorError {", "Some("] {
            assert!(
                !run.stderr.contains(debug_marker),
                "the SDK's Debug form ({debug_marker}):\n{run:?}"
            );
        }
        assert!(!run.stderr.contains("Compiling"), "{run:?}");
        assert!(
            !build_output.exists(),
            "{} was built before the credentials were checked",
            build_output.display()
        );
        assert_eq!(stage.proxy.log(), Vec::<String>::new());
    }

    // The SDK's whole detail is there for a bug report, on request.
    let verbose = args(&deploy, &["--verbose"]);
    let run = stage
        .xtask_env(
            &verbose,
            &no_login(("AWS_EC2_METADATA_DISABLED", Some("true"))),
        )
        .await;
    assert_failed_with(&run, "SDK detail (--verbose): DispatchFailure(");
}

/// No credentials anywhere: none in the environment, empty AWS config files, and `imds` for
/// the instance metadata service.
fn no_login<'a>(
    config: &'a str,
    credentials: &'a str,
    imds: (&'a str, Option<&'a str>),
) -> Vec<(&'a str, Option<&'a str>)> {
    vec![
        ("AWS_ACCESS_KEY_ID", None),
        ("AWS_SECRET_ACCESS_KEY", None),
        ("AWS_SESSION_TOKEN", None),
        ("AWS_PROFILE", None),
        ("AWS_CONFIG_FILE", Some(config)),
        ("AWS_SHARED_CREDENTIALS_FILE", Some(credentials)),
        imds,
    ]
}
