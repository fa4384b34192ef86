//! Local runs see what the deployed triggers send: the real CLI in a throwaway workspace whose
//! function answers with the event it received, its environment and its config.
//!
//! - `serve` mounts the app's HTTP API at `/<env>/`: routes matched as API Gateway matches them,
//!   the environment's stage in the event (single-stack: in `rawPath` too), 404 as API Gateway
//!   answers it; the `/<function>/` front still works, and an environment shadows a function of
//!   the same name there, which stays reachable by its deployed name.
//! - `invoke` with no event sends what the function's trigger sends in that environment.
//!
//! The function is not an HTTP router, so what it receives is checked without depending on how
//! a framework strips the stage from the path.

use std::process::{Command, Output};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lambda_stage_tests::scratch::Scratch;
use lambda_stage_tests::serve_cli::ServeCli;
use serde_json::{json, Value};

const ECHO_TOML: &str = r#"[package]
name = "echo"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
lambda-stage = { workspace = true }
serde.workspace = true
serde_json.workspace = true
tokio.workspace = true
"#;

/// Answers `{"env", "greeting", "event"}`; without a `statusCode`, API Gateway sends that JSON
/// as a 200 response's body.
const ECHO_MAIN: &str = r#"use lambda_stage::{Ctx, Error};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Config {
    greeting: String,
}

async fn handler(event: Value, ctx: Ctx<Config>) -> Result<Value, Error> {
    Ok(json!({ "env": ctx.env(), "greeting": ctx.config().greeting, "event": event }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_stage::run(handler).await
}
"#;

/// One package behind every function: each key has its own trigger. `dev` is a function named
/// like an environment.
const FUNCTIONS: &str = r#"
[functions.web]
package = "echo"
http = { routes = ["GET /hello/{name}", "ANY /files/{path+}"] }

[functions.jobs]
package = "echo"
sqs = { queue = "{app}-{env}-jobs" }

[functions.tick]
package = "echo"
schedule = { expression = "rate(1 hour)", input = { name = "scheduler" } }

[functions.dev]
package = "echo"

[environments.dev]
vars = { APP_GREETING = "Hello" }

[environments.staging]
vars = { APP_GREETING = "Hello from staging" }
"#;

fn single_stack() -> String {
    format!("app = \"shop\"\nregion = \"eu-west-1\"\n{FUNCTIONS}")
}

/// One function and API per environment; staging in its own account.
fn multi_stack() -> String {
    format!(
        "app = \"shop\"\nstrategy = \"multi-stack\"\nregion = \"eu-west-1\"\n{FUNCTIONS}account-id = \"111122223333\"\n"
    )
}

fn workspace(manifest: &str) -> Scratch {
    let scratch = Scratch::new(&["echo"]).unwrap();
    scratch.write("echo/Cargo.toml", ECHO_TOML).unwrap();
    scratch.write("echo/src/main.rs", ECHO_MAIN).unwrap();
    scratch.write("lambda-stage.toml", manifest).unwrap();
    scratch
}

/// The shell's `APP_*` and `AWS_*` variables would change what the function gets.
fn isolated(mut command: Command) -> Command {
    for (key, _) in std::env::vars_os().filter(|(key, _)| {
        let key = key.to_string_lossy();
        key.starts_with("APP_") || key.starts_with("AWS_")
    }) {
        command.env_remove(key);
    }
    command
}

async fn send(method: &str, url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(bytes::Bytes::copy_from_slice(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

/// A 200 answer's JSON, or a failure with the server's stderr.
async fn answer(serve: &ServeCli, method: &str, path: &str, body: &[u8]) -> Value {
    let (status, reply) = send(method, &format!("{}{path}", serve.url()), body).await;
    assert_eq!(
        status,
        200,
        "{method} {path}: {}\nstderr:\n{}",
        String::from_utf8_lossy(&reply),
        serve.stderr()
    );
    serde_json::from_slice(&reply).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_mounts_each_environments_api_as_deployed() {
    let scratch = workspace(&single_stack());
    let mut serve = ServeCli::start(&scratch, &[], &[]);

    let staging = answer(&serve, "GET", "/staging/hello/Ada?lang=en", b"").await;
    assert_eq!(staging["env"], "staging");
    assert_eq!(staging["greeting"], "Hello from staging");
    let event = &staging["event"];
    assert_eq!(event["rawPath"], "/staging/hello/Ada");
    assert_eq!(
        event["requestContext"]["http"]["path"],
        "/staging/hello/Ada"
    );
    assert_eq!(event["requestContext"]["stage"], "staging");
    assert_eq!(event["routeKey"], "GET /hello/{name}");
    assert_eq!(event["pathParameters"], json!({ "name": "Ada" }));
    assert_eq!(event["rawQueryString"], "lang=en");

    let dev = answer(&serve, "GET", "/dev/hello/Ada", b"").await;
    assert_eq!(
        (&dev["env"], &dev["greeting"]),
        (&json!("dev"), &json!("Hello"))
    );
    assert_eq!(dev["event"]["rawPath"], "/dev/hello/Ada");

    // The greedy route takes what the literal one does not; a binary body arrives in base64.
    let binary = [0xff, 0x00, 0xfe];
    let upload = answer(&serve, "PUT", "/staging/files/a/b.bin", &binary).await;
    let event = &upload["event"];
    assert_eq!(event["routeKey"], "ANY /files/{path+}");
    assert_eq!(event["pathParameters"], json!({ "path": "a/b.bin" }));
    assert_eq!(event["isBase64Encoded"], true);
    let body = base64::engine::general_purpose::STANDARD
        .decode(event["body"].as_str().unwrap())
        .unwrap();
    assert_eq!(body, binary);

    // No route: API Gateway's 404, and the function is not invoked.
    for (method, path) in [("GET", "/staging/nowhere"), ("POST", "/staging/hello/Ada")] {
        let (status, reply) = send(method, &format!("{}{path}", serve.url()), b"").await;
        assert_eq!(status, 404, "{method} {path}");
        let reply: Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(reply, json!({ "message": "Not Found" }));
    }

    // The function front: one function, `$default` stage and route, in --env (dev).
    let front = answer(&serve, "GET", "/web/hello/Ada", b"").await;
    assert_eq!(front["env"], "dev");
    assert_eq!(front["event"]["rawPath"], "/hello/Ada");
    assert_eq!(front["event"]["requestContext"]["stage"], "$default");
    assert_eq!(front["event"]["routeKey"], "$default");

    // `/dev/` is the environment's API; the function `dev` answers at its deployed name.
    let shadowed = answer(&serve, "GET", "/shop-dev/anything", b"").await;
    assert_eq!(shadowed["event"]["rawPath"], "/anything");
    let stderr = serve.stderr();
    for line in [
        format!("  GET {}/staging/hello/{{name}} -> web (staging)", serve.url()),
        format!("  ANY {}/dev/files/{{path+}} -> web (dev)", serve.url()),
        format!(
            "  dev: POST {url}/2015-03-31/functions/dev/invocations, front {url}/shop-dev/ (/dev/ is environment `dev`'s API)",
            url = serve.url()
        ),
    ] {
        assert!(stderr.contains(&line), "start-up lists `{line}`:\n{stderr}");
    }
    assert!(serve.is_running());
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_multi_stack_delivers_on_the_default_stage_without_the_prefix() {
    let scratch = workspace(&multi_stack());
    let serve = ServeCli::start(&scratch, &["web"], &[]);
    let staging = answer(&serve, "GET", "/staging/hello/Ada", b"").await;
    assert_eq!(staging["env"], "staging");
    assert_eq!(staging["greeting"], "Hello from staging");
    let event = &staging["event"];
    assert_eq!(event["rawPath"], "/hello/Ada");
    assert_eq!(event["requestContext"]["http"]["path"], "/hello/Ada");
    assert_eq!(event["requestContext"]["stage"], "$default");
    assert_eq!(event["routeKey"], "GET /hello/{name}");
}

/// `cargo xtask invoke <args>`: exit code, stdout's JSON, stderr.
fn invoke(scratch: &Scratch, args: &[&str]) -> (Option<i32>, Value, String) {
    let command = scratch.xtask(&[&["invoke"], args].concat()).unwrap();
    let Output {
        status,
        stdout,
        stderr,
    } = isolated(command).output().unwrap();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let reply = serde_json::from_slice(&stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}): {}\nstderr:\n{stderr}",
            String::from_utf8_lossy(&stdout)
        )
    });
    (status.code(), reply, stderr)
}

#[test]
fn invoke_without_an_event_sends_what_the_trigger_sends() {
    let scratch = workspace(&single_stack());

    let (code, reply, stderr) = invoke(&scratch, &["jobs", "--env", "staging"]);
    assert_eq!(code, Some(0), "{stderr}");
    let record = &reply["event"]["Records"][0];
    let queue = "arn:aws:sqs:eu-west-1:123456789012:shop-staging-jobs";
    assert_eq!(record["eventSourceARN"], queue);
    assert_eq!(record["awsRegion"], "eu-west-1");
    assert_eq!(reply["env"], "staging");
    assert!(
        stderr.contains("note: no --event or --data: sending what `jobs`'s sqs trigger in `staging` sends: an SQS message from arn:aws:sqs:eu-west-1:123456789012:shop-staging-jobs"),
        "{stderr}"
    );

    let (code, reply, stderr) = invoke(&scratch, &["tick", "--env", "dev"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(reply["event"], json!({ "name": "scheduler" }));

    let (code, reply, stderr) = invoke(
        &scratch,
        &["web", "--env", "staging", "--path", "/hello/Ada"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(reply["event"]["rawPath"], "/staging/hello/Ada");
    assert_eq!(reply["event"]["pathParameters"], json!({ "name": "Ada" }));

    // A function without a trigger still gets `{}`.
    let (code, reply, stderr) = invoke(&scratch, &["dev", "--env", "staging"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(reply["event"], json!({}));
    assert!(!stderr.contains("note: no --event"), "{stderr}");

    // Multi-stack: staging's own account in the queue's ARN; its API's `$default` stage.
    scratch.write("lambda-stage.toml", &multi_stack()).unwrap();
    let (code, reply, stderr) = invoke(&scratch, &["jobs", "--env", "staging"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        reply["event"]["Records"][0]["eventSourceARN"],
        "arn:aws:sqs:eu-west-1:111122223333:shop-staging-jobs"
    );
    let (code, reply, stderr) = invoke(
        &scratch,
        &["web", "--env", "staging", "--path", "/hello/Ada"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(reply["env"], "staging");
    assert_eq!(reply["event"]["rawPath"], "/hello/Ada");
    assert_eq!(reply["event"]["requestContext"]["stage"], "$default");
}
