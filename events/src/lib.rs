//! An offline catalogue of realistic AWS Lambda events.
//!
//! Every event is shaped the way the AWS service sends it (ids, ARNs, timestamps, encodings) and
//! is checked against its `aws_lambda_events` type before it is returned, so a function that
//! deserializes that type always accepts it. Nothing here touches the network.
//!
//! ```
//! use lambda_stage_events::{build, Overrides};
//!
//! let overrides = Overrides { path: Some("/hello/Ada".into()), ..Overrides::default() };
//! let event = build("apigw-http", &overrides).unwrap();
//! assert_eq!(event["rawPath"], "/hello/Ada");
//! ```
//!
//! [`apigw_http_event`] and [`apigw_http_response`] convert a plain HTTP exchange to and from
//! API Gateway HTTP API (payload 2.0), for an HTTP front in front of a function.
//!
//! [`sqs_from_queue`], [`scheduled_from_rule`] and [`apigw_http_on_route`] build the same
//! catalogue events as a deployed trigger sends them: from that queue, that rule, that stage and
//! route.

mod dynamodb;
mod http_api;
mod templates;

use serde_json::Value;

pub use http_api::{apigw_http_event, apigw_http_response, ApiRoute, DEFAULT_STAGE_OR_ROUTE};
use templates::{Arn, Origin};

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventInfo {
    /// What `--event` and `cargo xtask events <name>` take.
    pub name: &'static str,
    /// One line: which service sends it and what it carries.
    pub description: &'static str,
    /// The override flags that apply to it (`path`, `method`, `query`, `header`, `body`).
    pub overrides: &'static [&'static str],
}

const HTTP_OVERRIDES: &[&str] = &["path", "method", "query", "header", "body"];

static CATALOGUE: &[EventInfo] = &[
    EventInfo {
        name: "apigw-rest",
        description: "API Gateway REST API (payload 1.0) proxy request",
        overrides: HTTP_OVERRIDES,
    },
    EventInfo {
        name: "apigw-http",
        description: "API Gateway HTTP API (payload 2.0) request",
        overrides: HTTP_OVERRIDES,
    },
    EventInfo {
        name: "alb",
        description: "Application Load Balancer target group request",
        overrides: HTTP_OVERRIDES,
    },
    EventInfo {
        name: "sqs",
        description: "SQS batch with one message (--body: message body)",
        overrides: &["body"],
    },
    EventInfo {
        name: "sns",
        description: "SNS notification (--body: message)",
        overrides: &["body"],
    },
    EventInfo {
        name: "s3-put",
        description:
            "S3 ObjectCreated:Put notification (--path: object key, --body: object content)",
        overrides: &["path", "body"],
    },
    EventInfo {
        name: "eventbridge",
        description: "EventBridge custom event (--body: the JSON `detail`)",
        overrides: &["body"],
    },
    EventInfo {
        name: "scheduled",
        description: "EventBridge scheduled rule (cron/rate) event",
        overrides: &["body"],
    },
    EventInfo {
        name: "dynamodb-stream",
        description: "DynamoDB stream INSERT record (--body: the new item as plain JSON)",
        overrides: &["body"],
    },
    EventInfo {
        name: "kinesis",
        description: "Kinesis Data Streams record (--body: data, base64-encoded for you)",
        overrides: &["body"],
    },
    EventInfo {
        name: "cloudwatch-logs",
        description: "CloudWatch Logs subscription (gzip+base64 data; --body: log lines)",
        overrides: &["body"],
    },
    EventInfo {
        name: "cognito-trigger",
        description: "Cognito user pool pre sign-up trigger (--body: user attributes JSON)",
        overrides: &["body"],
    },
];

/// Every built-in event, in a stable order.
pub fn catalogue() -> &'static [EventInfo] {
    CATALOGUE
}

/// Changes to a catalogue event. Each field is optional; a field that does not apply to the
/// chosen event is an error, not silently ignored.
///
/// With the `clap` feature this is a `clap::Args` struct: `cargo xtask events` and
/// `cargo xtask invoke --event <name>` share these flags by flattening it
/// (`#[command(flatten)] overrides: lambda_stage_events::Overrides`), e.g.
/// `--event apigw-http --path /hello/Ada --method GET`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(feature = "clap", command(next_help_heading = "Event overrides"))]
pub struct Overrides {
    /// HTTP request path, query string allowed (`/hello/Ada?lang=en`); for `s3-put`, the object key.
    #[cfg_attr(feature = "clap", arg(long))]
    pub path: Option<String>,
    /// HTTP method (`GET`, `POST`, ...).
    #[cfg_attr(feature = "clap", arg(long))]
    pub method: Option<String>,
    /// Query parameter to add, `NAME=VALUE` (repeatable).
    #[cfg_attr(
        feature = "clap",
        arg(long = "query", value_name = "NAME=VALUE", value_parser = parse_query)
    )]
    pub query: Vec<(String, String)>,
    /// Header to set, `NAME: VALUE` (repeatable).
    #[cfg_attr(
        feature = "clap",
        arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)
    )]
    pub headers: Vec<(String, String)>,
    /// The payload: HTTP body, SQS/SNS message, EventBridge detail, Kinesis data, new DynamoDB
    /// item, log lines, Cognito user attributes.
    #[cfg_attr(feature = "clap", arg(long))]
    pub body: Option<String>,
}

/// Parses `NAME=VALUE` (the `--query` flag).
pub fn parse_query(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!(
            "`{text}` is not a query parameter; write NAME=VALUE"
        )),
    }
}

/// Parses `NAME: VALUE` (the `--header` flag).
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let invalid = || format!("`{text}` is not a header; write 'NAME: VALUE'");
    let (name, value) = text.split_once(':').ok_or_else(invalid)?;
    let name = name.trim();
    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
    Ok((name.to_owned(), value.trim().to_owned()))
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(
        "no built-in event `{name}`; known events: {known} (list them with `cargo xtask events`)"
    )]
    UnknownEvent { name: String, known: String },
    #[error("--{flag} does not apply to `{event}` events; it accepts: {accepted}")]
    NotApplicable {
        event: &'static str,
        flag: &'static str,
        accepted: String,
    },
    #[error("invalid --{flag}: {reason}")]
    InvalidOverride { flag: &'static str, reason: String },
    #[error("the `{event}` event does not deserialize into {type_name}: {source}")]
    Shape {
        event: &'static str,
        type_name: &'static str,
        source: serde_json::Error,
    },
    #[error("the function's response is not an API Gateway HTTP API response: {0}")]
    HttpResponse(String),
    #[error("`{arn}` is not an ARN of the form {expected}")]
    InvalidArn { arn: String, expected: &'static str },
}

/// Builds the catalogue event `name` with `overrides` applied.
pub fn build(name: &str, overrides: &Overrides) -> Result<Value, EventError> {
    build_from(name, overrides, &Origin::default())
}

/// The catalogue's `sqs` event as the queue `queue_arn` delivers it: its records'
/// `eventSourceARN` is that queue and `awsRegion` the queue's region.
pub fn sqs_from_queue(queue_arn: &str, overrides: &Overrides) -> Result<Value, EventError> {
    let queue = Arn::parse(queue_arn, "sqs", "arn:aws:sqs:<region>:<account>:<queue>")?;
    let origin = Origin {
        queue: Some(queue),
        ..Origin::default()
    };
    build_from("sqs", overrides, &origin)
}

/// The catalogue's `scheduled` event as the EventBridge rule `rule_arn` sends it: `resources`
/// is that rule, `region` and `account` are the rule's.
pub fn scheduled_from_rule(rule_arn: &str, overrides: &Overrides) -> Result<Value, EventError> {
    let rule = Arn::parse(
        rule_arn,
        "events",
        "arn:aws:events:<region>:<account>:rule/<name>",
    )?;
    let origin = Origin {
        rule: Some(rule),
        ..Origin::default()
    };
    build_from("scheduled", overrides, &origin)
}

/// The catalogue's `apigw-http` event as API Gateway delivers it on `route`: its `routeKey`,
/// `stage` and `pathParameters`, and for a named stage the stage in front of `--path` in
/// `rawPath` and `requestContext.http.path`.
pub fn apigw_http_on_route(route: &ApiRoute, overrides: &Overrides) -> Result<Value, EventError> {
    let origin = Origin {
        route: Some(route),
        ..Origin::default()
    };
    build_from("apigw-http", overrides, &origin)
}

fn build_from(name: &str, overrides: &Overrides, origin: &Origin<'_>) -> Result<Value, EventError> {
    let info = CATALOGUE
        .iter()
        .find(|info| info.name == name)
        .ok_or_else(|| EventError::UnknownEvent {
            name: name.to_owned(),
            known: CATALOGUE
                .iter()
                .map(|i| i.name)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    check_applicable(info, overrides)?;
    let event = templates::build(info.name, overrides, origin)?;
    check_shape(info.name, &event)?;
    Ok(event)
}

fn check_applicable(info: &EventInfo, overrides: &Overrides) -> Result<(), EventError> {
    let given = [
        ("path", overrides.path.is_some()),
        ("method", overrides.method.is_some()),
        ("query", !overrides.query.is_empty()),
        ("header", !overrides.headers.is_empty()),
        ("body", overrides.body.is_some()),
    ];
    for (flag, present) in given {
        if present && !info.overrides.contains(&flag) {
            return Err(EventError::NotApplicable {
                event: info.name,
                flag,
                accepted: match info.overrides {
                    [] => "none".to_owned(),
                    flags => flags
                        .iter()
                        .map(|f| format!("--{f}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            });
        }
    }
    Ok(())
}

/// Proves the event deserializes into the `aws_lambda_events` type a function would use.
fn check_shape(name: &'static str, event: &Value) -> Result<(), EventError> {
    use aws_lambda_events::event as ev;
    fn check<T: serde::de::DeserializeOwned>(
        event: &'static str,
        value: &Value,
    ) -> Result<(), EventError> {
        // From text, as a runtime reads it: some types only borrow from the input.
        serde_json::from_str::<T>(&value.to_string())
            .map(drop)
            .map_err(|source| EventError::Shape {
                event,
                type_name: std::any::type_name::<T>(),
                source,
            })
    }
    match name {
        "apigw-rest" => check::<ev::apigw::ApiGatewayProxyRequest>(name, event),
        "apigw-http" => check::<ev::apigw::ApiGatewayV2httpRequest>(name, event),
        "alb" => check::<ev::alb::AlbTargetGroupRequest>(name, event),
        "sqs" => check::<ev::sqs::SqsEvent>(name, event),
        "sns" => check::<ev::sns::SnsEvent>(name, event),
        "s3-put" => check::<ev::s3::S3Event>(name, event),
        "eventbridge" => check::<ev::eventbridge::EventBridgeEvent>(name, event),
        "scheduled" => check::<ev::cloudwatch_events::CloudWatchEvent>(name, event),
        "dynamodb-stream" => check::<ev::dynamodb::Event>(name, event),
        "kinesis" => check::<ev::kinesis::KinesisEvent>(name, event),
        "cloudwatch-logs" => check::<ev::cloudwatch_logs::LogsEvent>(name, event),
        "cognito-trigger" => check::<ev::cognito::CognitoEventUserPoolsPreSignup>(name, event),
        other => unreachable!("catalogue event `{other}` has no shape check"),
    }
}
