//! `cargo xtask serve --watch`: the real CLI serves a function of a throwaway workspace; editing
//! its source rebuilds it and the next invocation runs the new build, on the same server; a
//! change that does not compile keeps the previous build serving.

use std::time::{Duration, Instant};

use lambda_stage_tests::scratch::Scratch;
use lambda_stage_tests::serve_cli::ServeCli;

const FUNCTION_TOML: &str = r#"[package]
name = "watched"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
lambda-stage = { workspace = true }
serde.workspace = true
serde_json.workspace = true
tokio.workspace = true
"#;

/// The function's source answering `"<APP_GREETING> <mark>"`.
fn source(mark: &str) -> String {
    format!(
        r#"use lambda_stage::{{Ctx, Error}};
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {{
    greeting: String,
}}

async fn handler(_event: serde_json::Value, ctx: Ctx<Config>) -> Result<String, Error> {{
    Ok(format!("{{}} {mark}", ctx.config().greeting))
}}

#[tokio::main]
async fn main() -> Result<(), Error> {{
    lambda_stage::run(handler).await
}}
"#
    )
}

/// The server with the waits this test needs.
struct Serve(ServeCli);

impl Serve {
    fn start(scratch: &Scratch) -> Serve {
        Serve(ServeCli::start(
            scratch,
            &["watched", "--watch"],
            &[("APP_GREETING", "Hi")],
        ))
    }

    fn stderr(&self) -> String {
        self.0.stderr()
    }

    async fn invoke(&self) -> String {
        let (status, body) = lambda_stage_tests::moto::request(
            "POST",
            &format!("{}/2015-03-31/functions/watched/invocations", self.0.url()),
            "{}",
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls until `done` holds (a rebuild takes a while); fails after 5 minutes.
    async fn wait_until(&self, what: &str, mut done: impl AsyncFnMut() -> bool) {
        let started = Instant::now();
        while !done().await {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "{what}: not within 5 minutes; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Invokes until the answer is `wanted`.
    async fn wait_for_answer(&self, wanted: &str) {
        self.wait_until(&format!("the answer `{wanted}`"), async || {
            self.invoke().await == wanted
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_rebuilds_and_restarts_the_function_without_restarting_the_server() {
    let scratch = Scratch::new(&["functions/watched"]).unwrap();
    scratch
        .write("functions/watched/Cargo.toml", FUNCTION_TOML)
        .unwrap();
    scratch
        .write("functions/watched/src/main.rs", &source("v1"))
        .unwrap();
    let mut serve = Serve::start(&scratch);
    assert_eq!(serve.invoke().await, r#""Hi v1""#);

    scratch
        .write("functions/watched/src/main.rs", &source("v2"))
        .unwrap();
    serve.wait_for_answer(r#""Hi v2""#).await;
    assert!(
        serve
            .stderr()
            .contains("serve: rebuilt `watched`; its next invocation runs the new build"),
        "{}",
        serve.stderr()
    );

    // A change that does not compile: reported, and the previous build keeps serving.
    scratch
        .write(
            "functions/watched/src/main.rs",
            "fn main() { this is not Rust }\n",
        )
        .unwrap();
    serve
        .wait_until("the failed build is reported", async || {
            serve.stderr().contains("did not build")
        })
        .await;
    assert!(
        serve.stderr().contains("`watched` did not build")
            && serve.stderr().contains("still serving the previous build"),
        "{}",
        serve.stderr()
    );
    assert_eq!(serve.invoke().await, r#""Hi v2""#);

    scratch
        .write("functions/watched/src/main.rs", &source("v3"))
        .unwrap();
    serve.wait_for_answer(r#""Hi v3""#).await;
    assert!(
        serve.0.is_running(),
        "the same server process answered throughout"
    );
}
