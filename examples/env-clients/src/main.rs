//! `env-clients`: one AWS SDK client per environment, built once from that environment's config,
//! so staging's invocations can only ever reach staging's queue.
//!
//! Config (`APP_<FIELD>`, or `APP_<ENV>__<FIELD>` single-stack): `APP_QUEUE_URL`, the
//! environment's SQS queue; `APP_QUEUE_REGION`, its region (default: the function's).
//!
//! Events: `{"action": "describe"}` answers `{"env", "queue_url", "region"}` without any network
//! call; `{"action": "send", "body": "..."}` sends `body` to the environment's queue and answers
//! `{"env", "message_id"}`.

use aws_sdk_sqs::Client;
use lambda_stage::{Ctx, Env, Error, Options};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Config {
    /// `APP_QUEUE_URL`
    queue_url: String,
    /// `APP_QUEUE_REGION` (default: `AWS_REGION`, the function's own).
    #[serde(default)]
    queue_region: Option<String>,
}

/// What one environment's invocations share.
struct Queue {
    client: Client,
    url: String,
}

/// Builds the environment's client. No network call happens here: the SDK resolves credentials
/// and connects on the first request.
async fn queue(env: Env<Config>) -> Result<Queue, Error> {
    let config = env.config();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &config.queue_region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let sdk_config = loader.load().await;
    tracing::info!(env = env.name(), queue = %config.queue_url, "SQS client ready");
    Ok(Queue {
        client: Client::new(&sdk_config),
        url: config.queue_url.clone(),
    })
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
enum Request {
    Describe,
    Send { body: String },
}

async fn handler(request: Request, ctx: Ctx<Config, Queue>) -> Result<Value, Error> {
    let queue = ctx.state();
    match request {
        Request::Describe => Ok(json!({
            "env": ctx.env(),
            "queue_url": queue.url,
            "region": queue.client.config().region().map(ToString::to_string),
        })),
        Request::Send { body } => {
            let sent = queue
                .client
                .send_message()
                .queue_url(&queue.url)
                .message_body(body)
                .send()
                .await?;
            Ok(json!({ "env": ctx.env(), "message_id": sent.message_id() }))
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Options::default().state(queue).run(handler).await
}

#[cfg(test)]
mod tests {
    use lambda_stage::testing::TestInvocation;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn each_environment_describes_its_own_queue() {
        for (env, url) in [("staging", "https://q/staging"), ("prod", "https://q/prod")] {
            let reply = TestInvocation::new(env)
                .config_vars(&[
                    ("LAMBDA_STAGE_ENVS", "staging,prod"),
                    ("APP_STAGING__QUEUE_URL", "https://q/staging"),
                    ("APP_PROD__QUEUE_URL", "https://q/prod"),
                    ("APP_QUEUE_REGION", "eu-west-1"),
                ])
                .invoke_with_state(queue, handler, json!({ "action": "describe" }))
                .await
                .unwrap();
            assert_eq!(
                reply,
                json!({ "env": env, "queue_url": url, "region": "eu-west-1" })
            );
        }
    }
}
