//! A lambda-stage function whose event chooses what it does: `{"do": "echo"}` replies with the
//! environment and its config, `"error"` returns a typed handler error, `"panic"` panics.

use lambda_stage::{Ctx, Error, HandlerError, Secret};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
struct Config {
    greeting: String,
    api_key: Secret<String>,
}

#[derive(Deserialize)]
struct Command {
    #[serde(rename = "do")]
    action: String,
}

async fn handler(command: Command, ctx: Ctx<Config>) -> Result<Value, Error> {
    // Debug-print the whole config at info level: the secret must come out redacted.
    tracing::info!(config = ?ctx.config(), "handling `{}`", command.action);
    match command.action.as_str() {
        "echo" => Ok(json!({
            "env": ctx.env(),
            "greeting": ctx.config().greeting,
            "api_key_len": ctx.config().api_key.expose().len(),
            "request_id": ctx.lambda().request_id,
        })),
        "error" => Err(HandlerError::new("OrderNotFound", "no order 42").into()),
        "panic" => panic!("probe asked to panic"),
        other => Err(format!("unknown action {other}").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_stage::run(handler).await
}
