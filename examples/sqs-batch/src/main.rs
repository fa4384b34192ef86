//! `sqs-batch`: processes an `SqsEvent`; records whose body is not valid JSON are reported in
//! `batchItemFailures` so SQS retries only those.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_stage::{Ctx, Error};
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    /// `APP_QUEUE_LABEL`: a name for the logs; optional.
    #[serde(default)]
    queue_label: Option<String>,
}

async fn handler(event: SqsEvent, ctx: Ctx<Config>) -> Result<SqsBatchResponse, Error> {
    let label = ctx.config().queue_label.as_deref().unwrap_or("sqs");
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let body = record.body.as_deref().unwrap_or_default();
        if let Err(err) = serde_json::from_str::<serde_json::Value>(body) {
            let id = record.message_id.unwrap_or_default();
            tracing::warn!(queue = label, message_id = %id, error = %err, "not JSON: retry later");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
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

    fn record(id: &str, body: &str) -> serde_json::Value {
        json!({
            "messageId": id, "receiptHandle": "r", "body": body, "md5OfBody": "",
            "eventSource": "aws:sqs", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
            "attributes": {}, "messageAttributes": {}
        })
    }

    #[tokio::test]
    async fn reports_only_records_that_are_not_json() {
        let event = json!({ "Records": [record("a", r#"{"ok":1}"#), record("b", "not json"), record("c", "[]")] });
        let response = TestInvocation::new("dev")
            .invoke(handler, event)
            .await
            .unwrap();
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["b"]);
    }
}
