//! The built-in event catalogue: every event deserializes into its `aws_lambda_events` type (and
//! the HTTP ones into the request `lambda_http` builds), and overrides land where a function
//! reads them.

use aws_lambda_events::event as ev;
use base64::Engine as _;
use lambda_http::request::LambdaRequest;
use lambda_stage_events::{
    apigw_http_event, apigw_http_on_route, apigw_http_response, build, catalogue,
    scheduled_from_rule, sqs_from_queue, ApiRoute, EventError, Overrides,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

fn event<T: DeserializeOwned>(name: &str, overrides: &Overrides) -> T {
    let value = build(name, overrides).unwrap_or_else(|err| panic!("build {name}: {err}"));
    // From text, as the runtime reads it (some types borrow from the input).
    serde_json::from_str(&value.to_string()).unwrap_or_else(|err| {
        panic!(
            "`{name}` does not deserialize into {}: {err}",
            std::any::type_name::<T>()
        )
    })
}

fn with_body(body: &str) -> Overrides {
    Overrides {
        body: Some(body.to_owned()),
        ..Overrides::default()
    }
}

fn http_overrides() -> Overrides {
    Overrides {
        path: Some("/hello/Ada?lang=en".to_owned()),
        method: Some("post".to_owned()),
        query: vec![("tag".to_owned(), "a b".to_owned())],
        headers: vec![("X-Request-Source".to_owned(), "test".to_owned())],
        body: Some(r#"{"greeting":"Hi"}"#.to_owned()),
    }
}

/// Each catalogue name, deserialized into the type a Rust function would declare for it.
#[test]
fn every_event_deserializes_into_its_aws_lambda_events_type() {
    let names: Vec<&str> = catalogue().iter().map(|info| info.name).collect();
    assert_eq!(
        names,
        [
            "apigw-rest",
            "apigw-http",
            "alb",
            "sqs",
            "sns",
            "s3-put",
            "eventbridge",
            "scheduled",
            "dynamodb-stream",
            "kinesis",
            "cloudwatch-logs",
            "cognito-trigger"
        ]
    );
    let none = Overrides::default();
    for name in names {
        match name {
            "apigw-rest" => drop(event::<ev::apigw::ApiGatewayProxyRequest>(name, &none)),
            "apigw-http" => drop(event::<ev::apigw::ApiGatewayV2httpRequest>(name, &none)),
            "alb" => drop(event::<ev::alb::AlbTargetGroupRequest>(name, &none)),
            "sqs" => drop(event::<ev::sqs::SqsEvent>(name, &none)),
            "sns" => drop(event::<ev::sns::SnsEvent>(name, &none)),
            "s3-put" => drop(event::<ev::s3::S3Event>(name, &none)),
            "eventbridge" => drop(event::<ev::eventbridge::EventBridgeEvent>(name, &none)),
            "scheduled" => drop(event::<ev::cloudwatch_events::CloudWatchEvent>(name, &none)),
            "dynamodb-stream" => drop(event::<ev::dynamodb::Event>(name, &none)),
            "kinesis" => drop(event::<ev::kinesis::KinesisEvent>(name, &none)),
            "cloudwatch-logs" => drop(event::<ev::cloudwatch_logs::LogsEvent>(name, &none)),
            "cognito-trigger" => drop(event::<ev::cognito::CognitoEventUserPoolsPreSignup>(
                name, &none,
            )),
            other => panic!("catalogue event `{other}` has no type in this test"),
        }
        let description = catalogue()
            .iter()
            .find(|i| i.name == name)
            .unwrap()
            .description;
        assert!(
            !description.is_empty() && !description.contains('\n'),
            "{name}: {description:?}"
        );
    }
}

/// `lambda_http` tries REST, then HTTP API, then ALB: each HTTP event must land in its own
/// variant and become the request the user asked for.
#[test]
fn http_events_become_the_overridden_request_in_lambda_http() {
    // A REST API on its execute-api domain puts the stage in the path, as lambda_http shows.
    for (name, expected_origin, expected_path) in [
        ("apigw-rest", "ApiGatewayV1", "/Prod/hello/Ada"),
        ("apigw-http", "ApiGatewayV2", "/hello/Ada"),
        ("alb", "Alb", "/hello/Ada"),
    ] {
        let value = build(name, &http_overrides()).unwrap();
        let lambda_request: LambdaRequest = serde_json::from_value(value).unwrap();
        let origin = format!("{:?}", lambda_request.request_origin());
        assert_eq!(origin, expected_origin, "{name}");
        let request = http::Request::from(lambda_request);
        assert_eq!(request.method(), http::Method::POST, "{name}");
        assert_eq!(request.uri().path(), expected_path, "{name}");
        let query = request.uri().query().unwrap_or_default().to_owned();
        assert!(query.contains("lang=en"), "{name}: query {query}");
        assert!(query.contains("tag=a"), "{name}: query {query}");
        assert_eq!(request.headers()["x-request-source"], "test", "{name}");
        assert_eq!(request.body().as_ref(), br#"{"greeting":"Hi"}"#, "{name}");
    }
}

#[test]
fn http_api_overrides_land_in_their_fields() {
    let request: ev::apigw::ApiGatewayV2httpRequest = event("apigw-http", &http_overrides());
    assert_eq!(request.raw_path.as_deref(), Some("/hello/Ada"));
    assert_eq!(request.raw_query_string.as_deref(), Some("lang=en&tag=a+b"));
    assert_eq!(request.query_string_parameters.first("tag"), Some("a b"));
    assert_eq!(request.request_context.http.method, http::Method::POST);
    assert_eq!(
        request.request_context.http.path.as_deref(),
        Some("/hello/Ada")
    );
    assert_eq!(
        request.request_context.account_id.as_deref(),
        Some("123456789012")
    );
    assert!(
        request.request_context.time_epoch > 1_700_000_000_000,
        "a current timestamp"
    );
    assert_eq!(request.headers["x-request-source"], "test");
    assert_eq!(request.headers["content-type"], "application/json");
    assert!(request.headers["x-amzn-trace-id"]
        .to_str()
        .unwrap()
        .starts_with("Root=1-"));
    assert_eq!(request.body.as_deref(), Some(r#"{"greeting":"Hi"}"#));
    assert!(!request.is_base64_encoded);

    let rest: ev::apigw::ApiGatewayProxyRequest = event("apigw-rest", &http_overrides());
    assert_eq!(rest.path.as_deref(), Some("/hello/Ada"));
    assert_eq!(rest.http_method, http::Method::POST);
    assert_eq!(
        rest.path_parameters.get("proxy").map(String::as_str),
        Some("hello/Ada")
    );
    assert_eq!(
        rest.multi_value_query_string_parameters.first("lang"),
        Some("en")
    );
}

#[test]
fn message_events_carry_the_body() {
    let body = r#"{"orderId":"42"}"#;
    let sqs: ev::sqs::SqsEvent = event("sqs", &with_body(body));
    assert_eq!(sqs.records[0].body.as_deref(), Some(body));
    assert!(sqs.records[0]
        .event_source_arn
        .as_deref()
        .unwrap()
        .starts_with("arn:aws:sqs:"));

    let sns: ev::sns::SnsEvent = event("sns", &with_body(body));
    assert_eq!(sns.records[0].sns.message, body);

    let bridge: ev::eventbridge::EventBridgeEvent = event("eventbridge", &with_body(body));
    assert_eq!(bridge.detail, json!({"orderId": "42"}));

    let kinesis: ev::kinesis::KinesisEvent = event("kinesis", &with_body(body));
    assert_eq!(kinesis.records[0].kinesis.data.0, body.as_bytes());

    let logs: ev::cloudwatch_logs::LogsEvent =
        event("cloudwatch-logs", &with_body("first\nsecond"));
    let messages: Vec<&str> = logs
        .aws_logs
        .data
        .log_events
        .iter()
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(messages, ["first", "second"]);

    let stream: ev::dynamodb::Event = event("dynamodb-stream", &with_body(r#"{"id":"7","n":3}"#));
    let value = serde_json::to_value(&stream.records[0].change.new_image).unwrap();
    assert_eq!(value, json!({"id": {"S": "7"}, "n": {"N": "3"}}));
    let keys = serde_json::to_value(&stream.records[0].change.keys).unwrap();
    assert_eq!(keys, json!({"id": {"S": "7"}}));

    let cognito: ev::cognito::CognitoEventUserPoolsPreSignup = event(
        "cognito-trigger",
        &with_body(r#"{"email":"grace@example.com"}"#),
    );
    assert_eq!(
        cognito.request.user_attributes["email"],
        "grace@example.com"
    );

    let s3: ev::s3::S3Event = event(
        "s3-put",
        &Overrides {
            path: Some("/in/my file.txt".into()),
            body: Some("12345".into()),
            ..Overrides::default()
        },
    );
    let object = &s3.records[0].s3.object;
    assert_eq!(object.key.as_deref(), Some("in/my+file.txt"));
    assert_eq!(object.size, Some(5));
    assert_eq!(
        object.e_tag.as_deref(),
        Some("827ccb0eea8a706c4c34a16891f84e7b")
    );
}

#[test]
fn wrong_overrides_are_clear_errors() {
    let err = build(
        "sqs",
        &Overrides {
            method: Some("GET".into()),
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, EventError::NotApplicable { flag: "method", .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("--body"),
        "names the flags that apply: {err}"
    );

    let err = build("apigw-v3", &Overrides::default()).unwrap_err();
    assert!(
        err.to_string().contains("apigw-http"),
        "lists the known events: {err}"
    );

    let err = build("eventbridge", &with_body("not json")).unwrap_err();
    assert!(
        matches!(err, EventError::InvalidOverride { flag: "body", .. }),
        "{err}"
    );

    let err = build(
        "apigw-http",
        &Overrides {
            method: Some("GE T".into()),
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, EventError::InvalidOverride { flag: "method", .. }),
        "{err}"
    );
}

#[test]
fn plain_http_request_becomes_an_http_api_event() {
    let mut headers = http::HeaderMap::new();
    headers.insert("host", "127.0.0.1:9000".parse().unwrap());
    headers.insert("cookie", "a=1; b=2".parse().unwrap());
    headers.append("x-multi", "one".parse().unwrap());
    headers.append("x-multi", "two".parse().unwrap());
    let binary = [0xff, 0x00, 0xfe];
    let value = apigw_http_event(
        &http::Method::PUT,
        "/hello/Ada?x=1&x=2",
        &headers,
        &binary,
        "127.0.0.1",
        &ApiRoute::default(),
    );
    let request: ev::apigw::ApiGatewayV2httpRequest =
        serde_json::from_value(value.clone()).unwrap();
    assert_eq!(request.request_context.http.method, http::Method::PUT);
    assert_eq!(request.raw_path.as_deref(), Some("/hello/Ada"));
    assert_eq!(request.raw_query_string.as_deref(), Some("x=1&x=2"));
    assert_eq!(
        request.cookies,
        Some(vec!["a=1".to_owned(), "b=2".to_owned()])
    );
    assert_eq!(request.headers["x-multi"], "one,two");
    assert!(!request.headers.contains_key("cookie"));
    assert_eq!(
        request.request_context.domain_name.as_deref(),
        Some("127.0.0.1:9000")
    );
    assert!(request.is_base64_encoded);
    let body = base64::engine::general_purpose::STANDARD
        .decode(request.body.unwrap())
        .unwrap();
    assert_eq!(body, binary);
    // And lambda_http reads it as an HTTP API request, not a REST one.
    let lambda_request: LambdaRequest = serde_json::from_value(value).unwrap();
    assert_eq!(
        format!("{:?}", lambda_request.request_origin()),
        "ApiGatewayV2"
    );
}

fn hello_route(stage: &str) -> ApiRoute {
    ApiRoute {
        stage: stage.to_owned(),
        route_key: "GET /hello/{name}".to_owned(),
        path_parameters: [("name".to_owned(), "Ada".to_owned())].into(),
    }
}

#[test]
fn a_named_stage_leads_the_raw_path_and_the_route_is_in_the_event() {
    let value = apigw_http_event(
        &http::Method::GET,
        "/hello/Ada?lang=en",
        &http::HeaderMap::new(),
        b"",
        "127.0.0.1",
        &hello_route("staging"),
    );
    let request: ev::apigw::ApiGatewayV2httpRequest = serde_json::from_value(value).unwrap();
    assert_eq!(request.raw_path.as_deref(), Some("/staging/hello/Ada"));
    assert_eq!(
        request.request_context.http.path.as_deref(),
        Some("/staging/hello/Ada")
    );
    assert_eq!(request.request_context.stage.as_deref(), Some("staging"));
    assert_eq!(request.route_key.as_deref(), Some("GET /hello/{name}"));
    assert_eq!(
        request.request_context.route_key.as_deref(),
        Some("GET /hello/{name}")
    );
    assert_eq!(request.path_parameters["name"], "Ada");
    assert_eq!(request.raw_query_string.as_deref(), Some("lang=en"));
}

#[test]
fn the_default_stage_adds_no_prefix_and_no_path_parameters() {
    let overrides = Overrides {
        path: Some("/hello/Ada".to_owned()),
        ..Overrides::default()
    };
    let on_default = apigw_http_on_route(&ApiRoute::default(), &overrides).unwrap();
    assert_eq!(on_default["rawPath"], "/hello/Ada");
    assert_eq!(on_default["requestContext"]["stage"], "$default");
    assert_eq!(on_default["routeKey"], "$default");
    assert!(on_default.get("pathParameters").is_none(), "{on_default}");
    let on_stage = apigw_http_on_route(&hello_route("prod"), &overrides).unwrap();
    assert_eq!(on_stage["rawPath"], "/prod/hello/Ada");
    assert_eq!(on_stage["pathParameters"], json!({ "name": "Ada" }));
}

#[test]
fn trigger_events_name_their_queue_and_rule() {
    let queue = "arn:aws:sqs:eu-west-1:111122223333:shop-staging-jobs";
    let sqs: ev::sqs::SqsEvent =
        serde_json::from_value(sqs_from_queue(queue, &with_body("{}")).unwrap()).unwrap();
    let record = &sqs.records[0];
    assert_eq!(record.event_source_arn.as_deref(), Some(queue));
    assert_eq!(record.aws_region.as_deref(), Some("eu-west-1"));
    assert_eq!(record.body.as_deref(), Some("{}"));

    let rule = "arn:aws:events:eu-central-1:111122223333:rule/shop-tick-prod-schedule";
    let scheduled = scheduled_from_rule(rule, &Overrides::default()).unwrap();
    assert_eq!(scheduled["resources"], json!([rule]));
    assert_eq!(scheduled["region"], "eu-central-1");
    assert_eq!(scheduled["account"], "111122223333");

    let err = sqs_from_queue("shop-staging-jobs", &Overrides::default()).unwrap_err();
    assert!(matches!(err, EventError::InvalidArn { .. }), "{err}");
    let err = scheduled_from_rule(queue, &Overrides::default()).unwrap_err();
    assert!(err.to_string().contains("arn:aws:events:"), "{err}");
}

#[test]
fn http_api_responses_become_http_responses() {
    let payload = json!({
        "statusCode": 201,
        "headers": {"content-type": "image/png", "x-count": 3},
        "multiValueHeaders": {"x-many": ["a", "b"]},
        "cookies": ["session=abc; HttpOnly", "theme=dark"],
        "body": base64::engine::general_purpose::STANDARD.encode([1u8, 2, 3]),
        "isBase64Encoded": true,
    });
    let response = apigw_http_response(payload.to_string().as_bytes()).unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["x-count"], "3");
    let many: Vec<_> = response.headers().get_all("x-many").iter().collect();
    assert_eq!(many, ["a", "b"]);
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["session=abc; HttpOnly", "theme=dark"]);
    assert_eq!(response.body(), &[1, 2, 3]);

    // Valid JSON without statusCode: API Gateway answers 200 with the JSON as body.
    let plain = br#"{"message":"Hello, Ada!"}"#;
    let response = apigw_http_response(plain).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.body(), plain);

    let err = apigw_http_response(b"not json").unwrap_err();
    assert!(matches!(err, EventError::HttpResponse(_)), "{err}");
}

#[test]
fn events_carry_fresh_ids() {
    let first: Value = build("sqs", &Overrides::default()).unwrap();
    let second: Value = build("sqs", &Overrides::default()).unwrap();
    assert_ne!(
        first["Records"][0]["messageId"],
        second["Records"][0]["messageId"]
    );
}
