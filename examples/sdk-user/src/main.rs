//! A function that uses the AWS SDK for Rust (STS), built by `cargo xtask build` with Zig because
//! the SDK's TLS stack (aws-lc-sys) compiles C.
//!
//! Events:
//! - `{"action": "region"}` answers `{"region": "<configured region>"}` without any network call,
//!   so the function can be run locally against the Runtime API alone;
//! - `{"action": "whoami"}` calls STS `GetCallerIdentity` and answers the account and ARN.

use aws_sdk_sts::Client;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
enum Request {
    Region,
    Whoami,
}

async fn handle(client: &Client, event: LambdaEvent<Request>) -> Result<Value, Error> {
    match event.payload {
        Request::Region => Ok(json!({
            "region": client.config().region().map(|region| region.to_string()),
        })),
        Request::Whoami => {
            let identity = client.get_caller_identity().send().await?;
            Ok(json!({ "account": identity.account(), "arn": identity.arn() }))
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Reads the region and credentials Lambda puts in the environment; no network at start-up.
    let config = aws_config::load_from_env().await;
    let client = Client::new(&config);
    lambda_runtime::run(service_fn(|event| handle(&client, event))).await
}
