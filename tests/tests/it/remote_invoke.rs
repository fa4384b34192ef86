//! `cargo xtask invoke <FUNCTION> --env <env> --remote`: the real CLI invokes the alias an
//! environment runs, deployed to moto's server on 127.0.0.1, through the fault proxy.
//!
//! moto's Lambda without Docker echoes whatever payload it is sent, so stdout must be exactly
//! the event the CLI sent, as the proxy recorded it. What moto cannot answer — a function error,
//! a log tail, access denied, throttling — the proxy answers once in its place; an invoke of an
//! alias moto does not have gets AWS's 404 from the proxy.

use base64::Engine as _;
use lambda_stage_events::Overrides;
use lambda_stage_tests::deploy_stage::{assert_ok, Run, Stage, ACCOUNT};
use lambda_stage_tests::fault_proxy::RecordedRequest;
use serde_json::Value;

const REGION: &str = "us-east-1";
const DEPLOY: &[&str] = &["deploy", "--profile", "dev"];
const DATA: &str = r#"{"x":1}"#;

/// A single-stack app of one function fed by a queue per environment; `dev` and previews are
/// never deployed, `prod` is protected.
const SINGLE_STACK: &str = r#"app = "demo"
region = "us-east-1"
account-id = "123456789012"

[functions.echo]
package = "bare-echo"
arch = "x86_64"
create-role = true
sqs = { queue = "{app}-{env}-jobs", create = true }

[environments.dev]

[environments.staging]

[environments.prod]
protected = true

[environments."pr-*"]
"#;

/// `cargo xtask invoke echo --env <env> --remote <more>`.
async fn invoke(stage: &Stage, env: &str, more: &[&str]) -> Run {
    let args: Vec<&str> = ["invoke", "echo", "--env", env, "--remote"]
        .iter()
        .chain(more)
        .copied()
        .collect();
    stage.xtask(&args).await
}

async fn deploy(stage: &Stage, env: &str) {
    let args: Vec<&str> = DEPLOY
        .iter()
        .chain(&["--env", env, "--yes"])
        .copied()
        .collect();
    assert_ok(&stage.xtask(&args).await);
}

/// The one `Invoke` the proxy saw since the last reset.
#[track_caller]
fn the_invoke(stage: &Stage, run: &Run) -> RecordedRequest {
    let invokes = stage.proxy.requests_of("Invoke");
    assert_eq!(invokes.len(), 1, "{invokes:?}\n{run:?}");
    invokes[0].clone()
}

#[track_caller]
fn assert_exit(run: &Run, code: i32) {
    assert_eq!(run.code, Some(code), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn single_stack_sends_the_local_event_options_to_the_environments_alias() {
    let stage = Stage::start_in(REGION).await;
    stage.write_manifest(SINGLE_STACK);
    deploy(&stage, "staging").await;

    // --data: one Invoke of staging's alias, and nothing but the identity check before it.
    stage.proxy.reset_counts();
    let run = invoke(&stage, "staging", &["--data", DATA]).await;
    assert_exit(&run, 0);
    assert_eq!(stage.proxy.log(), ["GetCallerIdentity", "Invoke"]);
    let sent = the_invoke(&stage, &run);
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/2015-03-31/functions/demo-echo/invocations");
    assert_eq!(sent.query_param("Qualifier").as_deref(), Some("staging"));
    assert_eq!(sent.body, DATA);
    assert_eq!(
        sent.amz_header("x-amz-log-type"),
        None,
        "no --log: {sent:?}"
    );
    assert_eq!(run.stdout, format!("{DATA}\n"), "moto echoes the payload");

    // No event: what the function's trigger sends in staging, a message from staging's queue.
    stage.proxy.reset_counts();
    let run = invoke(&stage, "staging", &[]).await;
    assert_exit(&run, 0);
    let sent = the_invoke(&stage, &run);
    let queue = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:demo-staging-jobs");
    assert_eq!(sent.json()["Records"][0]["eventSourceARN"], queue.as_str());
    assert_eq!(run.stdout, format!("{}\n", sent.body));
    assert!(run.stderr.contains("sqs trigger in `staging`"), "{run:?}");

    // --event <catalogue name> with an override: the catalogue's event, not the trigger's.
    stage.proxy.reset_counts();
    let order = r#"{"order":7}"#;
    let run = invoke(&stage, "staging", &["--event", "sqs", "--body", order]).await;
    assert_exit(&run, 0);
    let sent = the_invoke(&stage, &run).json();
    let overrides = Overrides {
        body: Some(order.to_owned()),
        ..Overrides::default()
    };
    let catalogue = lambda_stage_events::build("sqs", &overrides).unwrap();
    let (record, expected) = (&sent["Records"][0], &catalogue["Records"][0]);
    assert_eq!(record["body"], order);
    assert_eq!(record["eventSourceARN"], expected["eventSourceARN"]);
    assert_ne!(record["eventSourceARN"], queue.as_str());
    assert_eq!(keys(record), keys(expected));

    // --event <file>: the file exactly.
    stage.proxy.reset_counts();
    let file = stage.dir.path().join("event.json");
    std::fs::write(&file, r#"{"from":"a file"}"#).unwrap();
    let run = invoke(&stage, "staging", &["--event", file.to_str().unwrap()]).await;
    assert_exit(&run, 0);
    assert_eq!(the_invoke(&stage, &run).body, r#"{"from":"a file"}"#);
}

fn keys(object: &Value) -> Vec<&String> {
    object
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn function_errors_log_tails_and_aws_errors_come_back_as_exit_codes() {
    let stage = Stage::start_in(REGION).await;
    stage.write_manifest(SINGLE_STACK);
    deploy(&stage, "staging").await;

    // A function error: its JSON on stdout, exit 1, as a local invoke.
    let error = r#"{"errorType":"HandlerError","errorMessage":"boom"}"#;
    stage.proxy.respond_once(
        "Invoke",
        200,
        &[
            ("content-type", "application/json"),
            ("x-amz-function-error", "Unhandled"),
        ],
        error,
    );
    let run = invoke(&stage, "staging", &["--data", DATA]).await;
    assert_exit(&run, 1);
    assert_eq!(run.stdout, format!("{error}\n"));
    assert!(
        run.stderr
            .contains("answered with a function error (HandlerError): boom"),
        "{run:?}"
    );

    // --log asks for the tail and prints it decoded on stderr; stdout keeps only the answer.
    stage.proxy.reset_counts();
    let tail = "START RequestId: 42 Version: 3\nhello from staging\nEND RequestId: 42\n";
    let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
    stage.proxy.respond_once(
        "Invoke",
        200,
        &[
            ("content-type", "application/json"),
            ("x-amz-log-result", &encoded),
            ("x-amz-executed-version", "3"),
        ],
        r#"{"ok":true}"#,
    );
    let run = invoke(&stage, "staging", &["--data", DATA, "--log"]).await;
    assert_exit(&run, 0);
    assert_eq!(run.stdout, "{\"ok\":true}\n");
    assert!(run.stderr.contains(tail), "{run:?}");
    assert!(
        run.stderr.contains("`demo-echo:staging` (version 3)"),
        "{run:?}"
    );
    let sent = the_invoke(&stage, &run);
    assert_eq!(sent.amz_header("x-amz-log-type"), Some("Tail"));

    // Never deployed: AWS's 404 becomes what to do.
    stage.proxy.reset_counts();
    let run = invoke(&stage, "dev", &["--data", DATA]).await;
    assert_exit(&run, 2);
    assert!(
        run.stderr.contains(
            "`demo-echo` has no alias `dev`: deploy `dev` first (`cargo xtask deploy --env dev`)"
        ),
        "{run:?}"
    );
    assert_eq!(run.stdout, "");
    // The same for a preview environment, named after its template.
    let run = invoke(&stage, "pr-7", &["--data", DATA]).await;
    assert_exit(&run, 2);
    assert!(
        run.stderr
            .contains("`demo-echo` has no alias `pr-7`: deploy `pr-7` first"),
        "{run:?}"
    );

    // Access denied: the permission it needs, exit 2.
    stage.proxy.respond_once(
        "Invoke",
        403,
        &[
            ("content-type", "application/json"),
            ("x-amzn-errortype", "AccessDeniedException"),
        ],
        r#"{"Message":"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: lambda:InvokeFunction"}"#,
    );
    let run = invoke(&stage, "staging", &["--data", DATA]).await;
    assert_exit(&run, 2);
    assert!(
        run.stderr.contains("may not invoke `demo-echo:staging`")
            && run.stderr.contains(&format!(
                "`lambda:InvokeFunction` on arn:aws:lambda:{REGION}:{ACCOUNT}:function:demo-echo:staging"
            )),
        "{run:?}"
    );

    // Throttled: not retried, since a retried invoke may run the function twice.
    stage.proxy.reset_counts();
    stage.proxy.respond_once(
        "Invoke",
        429,
        &[
            ("content-type", "application/json"),
            ("x-amzn-errortype", "TooManyRequestsException"),
        ],
        r#"{"message":"Rate exceeded","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#,
    );
    let run = invoke(&stage, "staging", &["--data", DATA]).await;
    assert_exit(&run, 2);
    assert!(run.stderr.contains("TooManyRequestsException"), "{run:?}");
    assert_eq!(stage.proxy.calls("Invoke"), 1, "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protected_environment_is_invoked_only_when_confirmed() {
    let stage = Stage::start_in(REGION).await;
    stage.write_manifest(SINGLE_STACK);
    deploy(&stage, "prod").await;

    // No terminal (stdin is null) and no --yes: refused before anything is invoked.
    stage.proxy.reset_counts();
    let run = invoke(&stage, "prod", &["--data", DATA]).await;
    assert_exit(&run, 2);
    assert!(
        run.stderr.contains("`prod` is a protected environment")
            && run.stderr.contains("--yes to invoke `demo-echo:prod`"),
        "{run:?}"
    );
    assert!(stage.proxy.requests_of("Invoke").is_empty(), "{run:?}");

    let run = invoke(&stage, "prod", &["--data", DATA, "--yes"]).await;
    assert_exit(&run, 0);
    let sent = the_invoke(&stage, &run);
    assert_eq!(sent.path, "/2015-03-31/functions/demo-echo/invocations");
    assert_eq!(sent.query_param("Qualifier").as_deref(), Some("prod"));
    assert_eq!(run.stdout, format!("{DATA}\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_stack_invokes_the_environments_own_function_on_live() {
    let stage = Stage::start_in(REGION).await;
    stage.write_manifest(&format!(
        r#"app = "demo"
strategy = "multi-stack"
region = "{REGION}"

[functions.echo]
package = "bare-echo"
arch = "x86_64"
create-role = true

[environments.staging]

[environments.prod]
"#
    ));
    deploy(&stage, "staging").await;

    stage.proxy.reset_counts();
    let run = invoke(&stage, "staging", &["--data", DATA]).await;
    assert_exit(&run, 0);
    let sent = the_invoke(&stage, &run);
    assert_eq!(
        sent.path,
        "/2015-03-31/functions/demo-echo-staging/invocations"
    );
    assert_eq!(sent.query_param("Qualifier").as_deref(), Some("live"));
    assert_eq!(run.stdout, format!("{DATA}\n"));

    // prod's own function does not exist yet.
    let run = invoke(&stage, "prod", &["--data", DATA]).await;
    assert_exit(&run, 2);
    assert!(
        run.stderr
            .contains("`demo-echo-prod` has no alias `live`: deploy `prod` first"),
        "{run:?}"
    );
}
