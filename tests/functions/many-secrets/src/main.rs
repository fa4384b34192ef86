//! A lambda-stage function whose config declares 24 fields, any of which may be a secret
//! reference: the subject of the batching test (`tests/tests/secrets_resolve.rs`) and of
//! `cargo xtask bench secrets`.
//!
//! `{"name": "Ada"}` → `{"message": "<greeting>, Ada!", "tokens": <how many token fields are
//! set>, "token_bytes": <their total length>}`: what was resolved, never a value.

use lambda_stage::{Ctx, Error, Secret};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Config {
    /// `APP_GREETING`
    greeting: String,
    /// `APP_API_KEY`
    api_key: Secret<String>,
    /// `APP_TOKEN_01` … `APP_TOKEN_22`: optional, so one binary serves 1 to 24 references.
    #[serde(default)]
    token_01: Option<Secret<String>>,
    #[serde(default)]
    token_02: Option<Secret<String>>,
    #[serde(default)]
    token_03: Option<Secret<String>>,
    #[serde(default)]
    token_04: Option<Secret<String>>,
    #[serde(default)]
    token_05: Option<Secret<String>>,
    #[serde(default)]
    token_06: Option<Secret<String>>,
    #[serde(default)]
    token_07: Option<Secret<String>>,
    #[serde(default)]
    token_08: Option<Secret<String>>,
    #[serde(default)]
    token_09: Option<Secret<String>>,
    #[serde(default)]
    token_10: Option<Secret<String>>,
    #[serde(default)]
    token_11: Option<Secret<String>>,
    #[serde(default)]
    token_12: Option<Secret<String>>,
    #[serde(default)]
    token_13: Option<Secret<String>>,
    #[serde(default)]
    token_14: Option<Secret<String>>,
    #[serde(default)]
    token_15: Option<Secret<String>>,
    #[serde(default)]
    token_16: Option<Secret<String>>,
    #[serde(default)]
    token_17: Option<Secret<String>>,
    #[serde(default)]
    token_18: Option<Secret<String>>,
    #[serde(default)]
    token_19: Option<Secret<String>>,
    #[serde(default)]
    token_20: Option<Secret<String>>,
    #[serde(default)]
    token_21: Option<Secret<String>>,
    #[serde(default)]
    token_22: Option<Secret<String>>,
}

impl Config {
    fn tokens(&self) -> [&Option<Secret<String>>; 22] {
        [
            &self.token_01,
            &self.token_02,
            &self.token_03,
            &self.token_04,
            &self.token_05,
            &self.token_06,
            &self.token_07,
            &self.token_08,
            &self.token_09,
            &self.token_10,
            &self.token_11,
            &self.token_12,
            &self.token_13,
            &self.token_14,
            &self.token_15,
            &self.token_16,
            &self.token_17,
            &self.token_18,
            &self.token_19,
            &self.token_20,
            &self.token_21,
            &self.token_22,
        ]
    }
}

#[derive(Deserialize)]
struct Request {
    name: String,
}

async fn handler(event: Request, ctx: Ctx<Config>) -> Result<Value, Error> {
    let config = ctx.config();
    let tokens: Vec<&Secret<String>> = config.tokens().into_iter().flatten().collect();
    Ok(json!({
        "message": format!("{}, {}!", config.greeting, event.name),
        "api_key_bytes": config.api_key.expose().len(),
        "tokens": tokens.len(),
        "token_bytes": tokens.iter().map(|token| token.expose().len()).sum::<usize>(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_stage::run(handler).await
}
