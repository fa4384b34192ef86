//! `{{name}}`: `{"name": "Ada"}` → `{"message": "Hello, Ada!", "env": "<env>"}`.

use lambda_stage::{Ctx, Error};
use serde::{Deserialize, Serialize};

/// The function's configuration, loaded once per cold start from `APP_<FIELD>` variables
/// (set per environment in lambda-stage.toml, `[environments.<env>] vars`). A missing or
/// malformed value fails the cold start with a message naming the variable.
#[derive(Deserialize)]
struct Config {
    /// `APP_GREETING` (default: `Hello`).
    #[serde(default = "default_greeting")]
    greeting: String,
}

fn default_greeting() -> String {
    "Hello".to_owned()
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
    Ok(Response {
        message: format!("{}, {}!", ctx.config().greeting, event.name),
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
    async fn greets_with_the_environment_config() {
        let reply = TestInvocation::new("staging")
            .config_vars(&[("APP_STAGING__GREETING", "Hi")])
            .invoke(handler, json!({ "name": "Ada" }))
            .await
            .unwrap();
        assert_eq!(
            reply,
            Response {
                message: "Hi, Ada!".into(),
                env: "staging".into()
            }
        );
    }
}
