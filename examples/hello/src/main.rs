//! `hello`: `{"name": "Ada"}` → `{"message": "<greeting>, Ada!", "env": "<env>"}`.

use lambda_stage::{Ctx, Error, Secret};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Config {
    /// `APP_GREETING`
    greeting: String,
    /// `APP_SHOUT`: upper-case the message.
    #[serde(default)]
    shout: bool,
    /// `APP_API_KEY`: required, never printed.
    #[allow(dead_code)] // a real function would call an API with it
    api_key: Secret<String>,
}

#[derive(Deserialize)]
struct Request {
    name: String,
}

#[derive(Debug, PartialEq, Serialize)]
struct Response {
    message: String,
    env: String,
}

async fn handler(event: Request, ctx: Ctx<Config>) -> Result<Response, Error> {
    let config = ctx.config();
    // Lambda's log line for this invocation (the invocation span adds the environment).
    tracing::info!(name = %event.name, "greeting");
    let mut message = format!("{}, {}!", config.greeting, event.name);
    if config.shout {
        message = message.to_uppercase();
    }
    Ok(Response {
        message,
        env: ctx.env().to_owned(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_stage::run(handler).await
}

#[cfg(test)]
mod tests {
    use lambda_stage::testing::TestInvocation;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn greets_in_the_invoked_environment() {
        let reply = TestInvocation::new("staging")
            .config_vars(&[
                ("APP_GREETING", "Hello"),
                ("APP_STAGING__SHOUT", "true"),
                ("APP_API_KEY", "test-key"),
            ])
            .invoke(handler, json!({ "name": "Ada" }))
            .await
            .unwrap();
        assert_eq!(
            reply,
            Response {
                message: "HELLO, ADA!".into(),
                env: "staging".into()
            }
        );
    }

    #[tokio::test]
    async fn an_event_without_a_name_is_an_invocation_error() {
        let err = TestInvocation::new("dev")
            .config_vars(&[("APP_GREETING", "Hello"), ("APP_API_KEY", "k")])
            .invoke(handler, json!({ "nom": "Ada" }))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "LambdaStage.InvalidEvent");
        assert!(err.message.contains("hello::Request"), "{}", err.message);
    }
}
