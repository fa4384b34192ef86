//! The catalogue's events, shaped as the AWS services send them, with fresh ids and timestamps.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use flate2::{write::GzEncoder, Compression};
use serde_json::{json, Value};
use std::io::Write as _;

use crate::http_api::{self, ApiRoute, HttpParts};
use crate::{dynamodb, EventError, Overrides};

pub(crate) const ACCOUNT_ID: &str = "123456789012";
pub(crate) const REGION: &str = "us-east-1";

/// The deployed resources an event names; `None` leaves the catalogue's samples.
#[derive(Default)]
pub(crate) struct Origin<'a> {
    /// The SQS queue that delivers an `sqs` event.
    pub queue: Option<Arn<'a>>,
    /// The EventBridge rule that sends a `scheduled` event.
    pub rule: Option<Arn<'a>>,
    /// Where API Gateway delivers an `apigw-http` event.
    pub route: Option<&'a ApiRoute>,
}

/// The parts of an ARN (`arn:<partition>:<service>:<region>:<account>:<resource>`) an event
/// repeats.
#[derive(Clone, Copy)]
pub(crate) struct Arn<'a> {
    pub text: &'a str,
    pub region: &'a str,
    pub account: &'a str,
}

impl<'a> Arn<'a> {
    /// Parses `text` as an ARN of `service`; `expected` shows its form in the error.
    pub fn parse(text: &'a str, service: &str, expected: &'static str) -> Result<Self, EventError> {
        match text.splitn(6, ':').collect::<Vec<_>>()[..] {
            ["arn", _, s, region, account, resource]
                if s == service
                    && !region.is_empty()
                    && !account.is_empty()
                    && !resource.is_empty() =>
            {
                Ok(Arn {
                    text,
                    region,
                    account,
                })
            }
            _ => Err(EventError::InvalidArn {
                arn: text.to_owned(),
                expected,
            }),
        }
    }
}

pub(crate) fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An X-Ray trace id: `Root=1-<epoch seconds, hex>-<96 random bits, hex>`.
pub(crate) fn trace_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{:08x}-{}", Utc::now().timestamp(), &random[..24])
}

fn iso_millis(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn iso_seconds(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A decimal sequence number as Kinesis and CloudWatch Logs print them (56 digits).
fn sequence_number() -> String {
    let random = uuid::Uuid::new_v4().as_u128();
    format!("4956{:052}", random % 10u128.pow(38))
}

fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))
}

fn json_body(overrides: &Overrides, default: Value) -> Result<Value, EventError> {
    match &overrides.body {
        None => Ok(default),
        Some(text) => serde_json::from_str(text).map_err(|err| EventError::InvalidOverride {
            flag: "body",
            reason: format!("this event needs JSON here ({err})"),
        }),
    }
}

fn json_object_body(
    overrides: &Overrides,
    default: Value,
) -> Result<serde_json::Map<String, Value>, EventError> {
    match json_body(overrides, default)? {
        Value::Object(object) => Ok(object),
        other => Err(EventError::InvalidOverride {
            flag: "body",
            reason: format!("this event needs a JSON object here, not `{other}`"),
        }),
    }
}

pub(crate) fn build(
    name: &str,
    overrides: &Overrides,
    origin: &Origin<'_>,
) -> Result<Value, EventError> {
    let now = Utc::now();
    let http = || HttpParts::from_overrides(overrides, &http_api::default_host());
    let sample_queue = format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:my-queue");
    let sample_rule = format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/every-five-minutes");
    let sample = |text| Arn {
        text,
        region: REGION,
        account: ACCOUNT_ID,
    };
    let queue = origin.queue.unwrap_or(sample(&sample_queue));
    let rule = origin.rule.unwrap_or(sample(&sample_rule));
    let default_route = ApiRoute::default();
    let route = origin.route.unwrap_or(&default_route);
    Ok(match name {
        "apigw-rest" => http_api::rest_api_v1(&http()?, now),
        "apigw-http" => http_api::http_api_v2(&http()?, route, now),
        "alb" => http_api::alb(&HttpParts::from_overrides(
            overrides,
            "lambda-alb-123578498.us-east-1.elb.amazonaws.com",
        )?),
        "sqs" => sqs(overrides, now, &queue),
        "sns" => sns(overrides, now),
        "s3-put" => s3_put(overrides, now)?,
        "eventbridge" => eventbridge(overrides, now)?,
        "scheduled" => scheduled(overrides, now, &rule)?,
        "dynamodb-stream" => dynamodb_stream(overrides, now)?,
        "kinesis" => kinesis(overrides, now),
        "cloudwatch-logs" => cloudwatch_logs(overrides, now),
        "cognito-trigger" => cognito_pre_sign_up(overrides)?,
        other => unreachable!("catalogue event `{other}` has no template"),
    })
}

fn sqs(overrides: &Overrides, now: DateTime<Utc>, queue: &Arn<'_>) -> Value {
    let body = overrides.body.as_deref().unwrap_or("Hello from SQS!");
    let receipt =
        uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
    let sent = now.timestamp_millis();
    json!({
        "Records": [{
            "messageId": new_request_id(),
            "receiptHandle": format!("AQEB{}", base64::engine::general_purpose::STANDARD.encode(receipt)),
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": sent.to_string(),
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": (sent + 7).to_string(),
            },
            "messageAttributes": {},
            "md5OfBody": md5_hex(body.as_bytes()),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue.text,
            "awsRegion": queue.region,
        }]
    })
}

fn sns(overrides: &Overrides, now: DateTime<Utc>) -> Value {
    let topic = format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:sns-lambda");
    let subscription = format!("{topic}:{}", new_request_id());
    json!({
        "Records": [{
            "EventVersion": "1.0",
            "EventSubscriptionArn": subscription,
            "EventSource": "aws:sns",
            "Sns": {
                "SignatureVersion": "1",
                "Timestamp": iso_millis(now),
                "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j+WzSkWyRI+sLwWIm7Ngrf5PCRAbsmKWvNNPnY2jfWbSESGIExmDGrX7shmlS/hGkEvYGJJl3/uk+6NuGQ6LOXalhcP8aB1hLB9K0CGKmUXvBXsVEbeuAWmSAk1wRD8Eva6n1V1xnDEhXzvjGbnEVpEJNBOrp/B1zdl8qOUlmUrxP5v8YF3rG5MjT0e2pvOKoiJ0Tw+Wj5lJS8GBtTM2KAbyJVMCdg1yP9VUiOQyAJmz9gGlYFN6I93EbA7YgGFAaHPFH/OeWzSUtGtHlyhGEHYnJAU3nD2KETRg==",
                "SigningCertUrl": format!("https://sns.{REGION}.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"),
                "MessageId": new_request_id(),
                "Message": overrides.body.as_deref().unwrap_or("Hello from SNS!"),
                "MessageAttributes": {},
                "Type": "Notification",
                "UnsubscribeUrl": format!("https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription}"),
                "TopicArn": topic,
                "Subject": "TestInvoke",
            }
        }]
    })
}

fn s3_put(overrides: &Overrides, now: DateTime<Utc>) -> Result<Value, EventError> {
    let key = overrides
        .path
        .as_deref()
        .unwrap_or("uploads/hello.json")
        .trim_start_matches('/');
    if key.is_empty() {
        return Err(EventError::InvalidOverride {
            flag: "path",
            reason: "an S3 object key cannot be empty".to_owned(),
        });
    }
    let content = overrides.body.as_deref().unwrap_or("{\"hello\":\"world\"}");
    // S3 notifications carry the key URL-encoded (a space becomes `+`).
    let encoded_key: String = key
        .split('/')
        .map(|segment| form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/");
    let request_id = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    Ok(json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": REGION,
            "eventTime": iso_millis(now),
            "eventName": "ObjectCreated:Put",
            "userIdentity": { "principalId": "AWS:AIDAINPONIXQXHT3IKHL2" },
            "requestParameters": { "sourceIPAddress": "203.0.113.10" },
            "responseElements": {
                "x-amz-request-id": &request_id[..16],
                "x-amz-id-2": base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes()),
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "lambda-trigger",
                "bucket": {
                    "name": "amzn-s3-demo-bucket",
                    "ownerIdentity": { "principalId": "A3NL1KOZZKExample" },
                    "arn": "arn:aws:s3:::amzn-s3-demo-bucket",
                },
                "object": {
                    "key": encoded_key,
                    "size": content.len(),
                    "eTag": md5_hex(content.as_bytes()),
                    "sequencer": format!("{:018X}", now.timestamp_micros()),
                },
            },
        }]
    }))
}

fn eventbridge(overrides: &Overrides, now: DateTime<Utc>) -> Result<Value, EventError> {
    let detail = json_body(overrides, json!({ "orderId": "1234", "status": "PLACED" }))?;
    Ok(json!({
        "version": "0",
        "id": new_request_id(),
        "detail-type": "OrderPlaced",
        "source": "com.example.orders",
        "account": ACCOUNT_ID,
        "time": iso_seconds(now),
        "region": REGION,
        "resources": [],
        "detail": detail,
    }))
}

fn scheduled(
    overrides: &Overrides,
    now: DateTime<Utc>,
    rule: &Arn<'_>,
) -> Result<Value, EventError> {
    let detail = json_body(overrides, json!({}))?;
    Ok(json!({
        "version": "0",
        "id": new_request_id(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.account,
        "time": iso_seconds(now),
        "region": rule.region,
        "resources": [rule.text],
        "detail": detail,
    }))
}

fn dynamodb_stream(overrides: &Overrides, now: DateTime<Utc>) -> Result<Value, EventError> {
    let new_item = json_object_body(
        overrides,
        json!({ "id": "1234", "name": "Ada", "visits": 1 }),
    )?;
    // The key is `id` when the item has one, otherwise its first attribute.
    let (key_name, key_value) = new_item
        .get_key_value("id")
        .or_else(|| new_item.iter().next())
        .ok_or_else(|| EventError::InvalidOverride {
            flag: "body",
            reason: "a DynamoDB item needs at least one attribute (its key)".to_owned(),
        })?;
    let keys = dynamodb::item(
        &[(key_name.clone(), key_value.clone())]
            .into_iter()
            .collect(),
    );
    let new_image = dynamodb::item(&new_item);
    let size = keys.to_string().len() + new_image.to_string().len();
    Ok(json!({
        "Records": [{
            "eventID": uuid::Uuid::new_v4().simple().to_string(),
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": {
                "ApproximateCreationDateTime": now.timestamp(),
                "Keys": keys,
                "NewImage": new_image,
                "SequenceNumber": &sequence_number()[..21],
                "SizeBytes": size,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "eventSourceARN": format!(
                "arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/my-table/stream/2026-01-01T00:00:00.000"
            ),
        }]
    }))
}

fn kinesis(overrides: &Overrides, now: DateTime<Utc>) -> Value {
    let data = overrides.body.as_deref().unwrap_or("Hello from Kinesis!");
    let sequence = sequence_number();
    json!({
        "Records": [{
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": "partition-1",
                "sequenceNumber": sequence,
                "data": base64::engine::general_purpose::STANDARD.encode(data),
                "approximateArrivalTimestamp": now.timestamp_millis() as f64 / 1000.0,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": format!("shardId-000000000000:{sequence}"),
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": format!("arn:aws:iam::{ACCOUNT_ID}:role/lambda-kinesis-role"),
            "awsRegion": REGION,
            "eventSourceARN": format!("arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/my-stream"),
        }]
    })
}

/// CloudWatch Logs delivers its payload gzipped, then base64-encoded, under `awslogs.data`.
fn cloudwatch_logs(overrides: &Overrides, now: DateTime<Utc>) -> Value {
    let text = overrides
        .body
        .as_deref()
        .unwrap_or("[INFO] order 1234 placed\n[ERROR] payment for order 1234 declined");
    let millis = now.timestamp_millis();
    let log_events: Vec<Value> = text
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| json!({ "id": sequence_number(), "timestamp": millis, "message": line }))
        .collect();
    let data = json!({
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT_ID,
        "logGroup": "/aws/lambda/my-function",
        "logStream": format!("{}/[$LATEST]{}", now.format("%Y/%m/%d"), uuid::Uuid::new_v4().simple()),
        "subscriptionFilters": ["my-subscription-filter"],
        "logEvents": log_events,
    });
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(data.to_string().as_bytes())
        .and_then(|()| gzip.try_finish())
        .expect("gzip into memory cannot fail");
    let compressed = gzip.finish().expect("gzip into memory cannot fail");
    json!({ "awslogs": { "data": base64::engine::general_purpose::STANDARD.encode(compressed) } })
}

fn cognito_pre_sign_up(overrides: &Overrides) -> Result<Value, EventError> {
    let attributes = json_object_body(
        overrides,
        json!({ "email": "ada@example.com", "name": "Ada" }),
    )?;
    if let Some((name, _)) = attributes.iter().find(|(_, value)| !value.is_string()) {
        return Err(EventError::InvalidOverride {
            flag: "body",
            reason: format!("Cognito user attributes are strings; `{name}` is not"),
        });
    }
    Ok(json!({
        "version": "1",
        "region": REGION,
        "userPoolId": format!("{REGION}_EXAMPLE1a"),
        "userName": new_request_id(),
        "callerContext": {
            "awsSdkVersion": "aws-sdk-unknown-unknown",
            "clientId": "1example23456789abcdefghij",
        },
        "triggerSource": "PreSignUp_SignUp",
        "request": {
            "userAttributes": attributes,
            "validationData": null,
        },
        "response": {
            "autoConfirmUser": false,
            "autoVerifyEmail": false,
            "autoVerifyPhone": false,
        },
    }))
}
