//! A lambda-stage function for the framework's tests: its event (or path) chooses what it does,
//! and its variables choose how it runs.
//!
//! - `PROBE_RUNNER`: `event` (default, [`lambda_stage::run`]), `http` (`run_http`), `router`
//!   (`run_router`), or `service`: the event handler's service in a `lambda_runtime::Runtime`
//!   composed here, with a layer that logs `layer saw <request id>`. The HTTP runners answer
//!   `GET /echo` and `GET /rendezvous/{count}`.
//! - `PROBE_FLAVOR`: `multi_thread` (default) or `current_thread`: the tokio runtime, as
//!   `#[tokio::main(flavor = "...")]` would build it.
//! - Per-environment state ([`Probe`]), built by [`probe_state`]; `APP_STATE_FAILURES=<n>` (or
//!   `APP_<ENV>__STATE_FAILURES`) makes its first `n` attempts in an environment fail.
//!
//! Event commands: `{"do": "echo"}` replies with the environment, its config and its state;
//! `"error"` returns a typed handler error; `"panic"` panics; `{"do": "rendezvous", "count": n}`
//! waits (up to 5 s) until `n` invocations are in flight at once, then echoes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use lambda_stage::http::Env;
use lambda_stage::lambda_http::{Request, RequestExt as _};
use lambda_stage::lambda_runtime::layers::TracingLayer;
use lambda_stage::lambda_runtime::tower::util::MapRequestLayer;
use lambda_stage::lambda_runtime::{LambdaInvocation, Runtime};
use lambda_stage::{Ctx, Error, HandlerError, Options, Secret};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
struct Config {
    greeting: String,
    api_key: Secret<String>,
    /// How many construction attempts of this environment's state fail before one succeeds.
    #[serde(default)]
    state_failures: u32,
}

/// What each environment builds once: which environment it was built for, and on which attempt.
#[derive(Debug)]
struct Probe {
    built_for: String,
    attempt: u32,
}

/// Construction attempts so far, per environment.
static ATTEMPTS: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());

async fn probe_state(env: Env<Config>) -> Result<Probe, Error> {
    let attempt = {
        let mut attempts = ATTEMPTS.lock().unwrap();
        let count = attempts.entry(env.name().to_owned()).or_default();
        *count += 1;
        *count
    };
    // Invocations that arrive meanwhile must wait for this one construction.
    tokio::time::sleep(Duration::from_millis(50)).await;
    if attempt <= env.config().state_failures {
        return Err(format!(
            "the probe's state for `{}` refused attempt {attempt} (APP_STATE_FAILURES)",
            env.name()
        )
        .into());
    }
    Ok(Probe {
        built_for: env.name().to_owned(),
        attempt,
    })
}

/// The reply to `echo`: what this invocation's environment looks like from inside.
fn echo(env: &Env<Config, Probe>, request_id: &str) -> Value {
    json!({
        "env": env.name(),
        "greeting": env.config().greeting,
        "api_key_len": env.config().api_key.expose().len(),
        "request_id": request_id,
        "state": { "built_for": env.state().built_for, "attempt": env.state().attempt },
    })
}

/// Invocations in flight inside [`rendezvous`].
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Waits until `count` invocations are here at once: proof that they run concurrently.
async fn rendezvous(count: usize) -> Result<(), Error> {
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    while IN_FLIGHT.load(Ordering::SeqCst) < count {
        if started.elapsed() > Duration::from_secs(5) {
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            return Err(HandlerError::new("Rendezvous", "the other invocations never came").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[derive(Deserialize)]
struct Command {
    #[serde(rename = "do")]
    action: String,
    #[serde(default)]
    count: usize,
}

async fn handler(command: Command, ctx: Ctx<Config, Probe>) -> Result<Value, Error> {
    // Debug-print the whole config at info level: the secret must come out redacted.
    tracing::info!(config = ?ctx.config(), "handling `{}`", command.action);
    let env = Env::clone(ctx.environment());
    match command.action.as_str() {
        "echo" => Ok(echo(&env, &ctx.lambda().request_id)),
        "rendezvous" => {
            rendezvous(command.count).await?;
            Ok(echo(&env, &ctx.lambda().request_id))
        }
        "error" => Err(HandlerError::new("OrderNotFound", "no order 42").into()),
        "panic" => panic!("probe asked to panic"),
        other => Err(format!("unknown action {other}").into()),
    }
}

async fn http_handler(request: Request, ctx: Ctx<Config, Probe>) -> Result<Value, Error> {
    let request_id = request.lambda_context().request_id;
    let env = Env::clone(ctx.environment());
    match request.uri().path().split('/').collect::<Vec<_>>()[..] {
        ["", "echo"] => Ok(echo(&env, &request_id)),
        ["", "rendezvous", count] => {
            rendezvous(count.parse()?).await?;
            Ok(echo(&env, &request_id))
        }
        _ => Err(format!("no route for {}", request.uri().path()).into()),
    }
}

fn router(env: Env<Config, Probe>) -> Router {
    async fn echo_route(State(env): State<Env<Config, Probe>>) -> Json<Value> {
        Json(echo(&env, "-"))
    }
    async fn rendezvous_route(
        State(env): State<Env<Config, Probe>>,
        Path(count): Path<usize>,
    ) -> Result<Json<Value>, String> {
        rendezvous(count).await.map_err(|err| err.to_string())?;
        Ok(Json(echo(&env, "-")))
    }
    Router::new()
        .route("/echo", get(echo_route))
        .route("/rendezvous/{count}", get(rendezvous_route))
        .with_state(env)
}

fn main() -> Result<(), Error> {
    let runtime = match std::env::var("PROBE_FLAVOR").as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()?;
    let options = Options::default().state(probe_state);
    runtime.block_on(async {
        match std::env::var("PROBE_RUNNER").as_deref() {
            Ok("http") => options.run_http(http_handler).await,
            Ok("router") => options.run_router(router).await,
            Ok("service") => {
                let seen = MapRequestLayer::new(|invocation: LambdaInvocation| {
                    tracing::info!("layer saw {}", invocation.context.request_id);
                    invocation
                });
                Runtime::new(options.service(handler).await?)
                    .layer(TracingLayer::new())
                    .layer(seen)
                    .run_concurrent()
                    .await
            }
            _ => options.run(handler).await,
        }
    })
}
