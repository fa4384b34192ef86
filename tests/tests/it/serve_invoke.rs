//! `cargo xtask serve`: the real AWS SDK for Rust invokes the compiled examples through the
//! Invoke API, and plain HTTP requests reach an axum function through the API Gateway v2 front.

use std::net::SocketAddr;

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::operation::RequestId as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use aws_sdk_lambda::Client;
use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use lambda_stage_tests::bins::workspace_root;
use lambda_stage_xtask::serve::{Options, Server};
use serde_json::{json, Value};

async fn serve(functions: &[&str], app_variables: &[(&str, &str)]) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = Options {
        root: workspace_root().to_owned(),
        functions: functions.iter().map(|f| f.to_string()).collect(),
        env: "dev".to_owned(),
        release: false,
        watch: false,
        app_variables: app_variables
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    Server::start(listener, options)
        .await
        .expect("serve starts")
}

/// The SDK as an application configures it, pointed at the local server.
fn sdk(addr: SocketAddr) -> Client {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(format!("http://{addr}"))
        .build();
    Client::from_conf(config)
}

fn json_of(blob: Option<&Blob>) -> Value {
    serde_json::from_slice(blob.expect("a payload").as_ref()).expect("a JSON payload")
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_invokes_hello_in_the_environment_of_its_qualifier() {
    let server = serve(&["hello"], &[("APP_API_KEY", "test-key")]).await;
    let lambda = sdk(server.addr());
    let event = Blob::new(r#"{"name":"Ada"}"#);

    let unqualified = lambda
        .invoke()
        .function_name("hello")
        .payload(event.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unqualified.status_code(), 200);
    assert_eq!(unqualified.function_error(), None);
    assert_eq!(unqualified.executed_version(), Some("$LATEST"));
    assert_eq!(
        json_of(unqualified.payload()),
        json!({"message": "Hello, Ada!", "env": "dev"})
    );

    let by_qualifier = lambda
        .invoke()
        .function_name("hello")
        .qualifier("staging")
        .payload(event.clone())
        .log_type(LogType::Tail)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(by_qualifier.payload()),
        json!({"message": "Hello from staging, Ada!", "env": "staging"})
    );
    let tail = base64::engine::general_purpose::STANDARD
        .decode(
            by_qualifier
                .log_result()
                .expect("LogType=Tail returns the log tail"),
        )
        .unwrap();
    let tail = String::from_utf8(tail).unwrap();
    let request_id = by_qualifier.request_id().expect("a request id").to_owned();
    // Lambda's lines for this invocation, and between them hello's own log line for it.
    let start = tail
        .find(&format!("START RequestId: {request_id}"))
        .unwrap_or_else(|| panic!("START line for {request_id}: {tail}"));
    let greeting = tail
        .find("greeting")
        .unwrap_or_else(|| panic!("the function's log line: {tail}"));
    let report = tail
        .find(&format!("REPORT RequestId: {request_id}"))
        .unwrap_or_else(|| panic!("REPORT line for {request_id}: {tail}"));
    assert!(start < greeting && greeting < report, "{tail}");
    assert!(tail[greeting..].contains("Ada"), "{tail}");

    // The deployed name with the alias in an ARN, as a caller in AWS would write it.
    let by_arn = lambda
        .invoke()
        .function_name(
            "arn:aws:lambda:eu-west-1:123456789012:function:lambda-stage-demo-hello:prod",
        )
        .payload(event.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(by_arn.payload()),
        json!({"message": "Hello from prod, Ada!", "env": "prod"})
    );

    let queued = lambda
        .invoke()
        .function_name("hello")
        .invocation_type(InvocationType::Event)
        .payload(event)
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status_code(), 202);
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_come_back_as_lambda_reports_them() {
    let server = serve(&["hello"], &[("APP_API_KEY", "test-key")]).await;
    let lambda = sdk(server.addr());

    // A payload the handler cannot read: a function error, HTTP 200 with X-Amz-Function-Error.
    let failed = lambda
        .invoke()
        .function_name("hello")
        .payload(Blob::new(r#"{"nom":"Ada"}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status_code(), 200);
    assert_eq!(failed.function_error(), Some("Unhandled"));
    let error = json_of(failed.payload());
    assert!(
        error["errorType"].is_string() && error["errorMessage"].is_string(),
        "{error}"
    );

    let missing = lambda
        .invoke()
        .function_name("goodbye")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");

    let no_such_alias = lambda
        .invoke()
        .function_name("hello:qa")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        no_such_alias.is_resource_not_found_exception(),
        "{no_such_alias:?}"
    );

    let not_json = lambda
        .invoke()
        .function_name("hello")
        .payload(Blob::new("not json"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        not_json.is_invalid_request_content_exception(),
        "{not_json:?}"
    );
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_init_error_is_a_function_error_with_its_reason() {
    // APP_SHOUT is not a bool: hello cannot initialise.
    let server = serve(&["hello"], &[("APP_API_KEY", "k"), ("APP_SHOUT", "maybe")]).await;
    let failed = sdk(server.addr())
        .invoke()
        .function_name("hello")
        .payload(Blob::new(r#"{"name":"Ada"}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.function_error(), Some("Unhandled"));
    let error = json_of(failed.payload());
    assert!(
        error.to_string().contains("SHOUT"),
        "names the bad variable: {error}"
    );
    server.shutdown();
}

async fn get(addr: SocketAddr, path: &str) -> (http::StatusCode, http::HeaderMap, Vec<u8>) {
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let request = http::Request::get(format!("http://{addr}{path}"))
        .header("cookie", "session=abc")
        .body(Full::default())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, body)
}

/// The app's API as deployed: the real `http-api` (an axum router written as `GET /hello/{name}`)
/// answers under each environment's stage, because the framework strips the stage from the path.
#[tokio::test(flavor = "multi_thread")]
async fn the_apps_api_answers_under_each_environments_stage() {
    let server = serve(&["http-api"], &[]).await;
    for (env, greeting) in [
        ("staging", "Hello from staging"),
        ("prod", "Hello from prod"),
    ] {
        let (status, _, body) = get(server.addr(), &format!("/{env}/hello/Ada")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({"message": format!("{greeting}, Ada!"), "env": env})
        );
    }
    // A path no route of the manifest matches gets API Gateway's own answer.
    let (status, _, body) = get(server.addr(), "/staging/goodbye").await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"message": "Not Found"})
    );
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn http_front_turns_requests_into_http_api_events() {
    let server = serve(&["http-api"], &[]).await;
    let (status, headers, body) = get(server.addr(), "/http-api/hello/Ada?lang=en").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, json!({"message": "Hello, Ada!", "env": "dev"}));

    // The function's own router answers paths it does not know.
    let (status, _, _) = get(server.addr(), "/http-api/nowhere").await;
    assert_eq!(status, 404);

    let (status, _, body) = get(server.addr(), "/goodbye/hello/Ada").await;
    assert_eq!(status, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("http-api"),
        "lists the served functions"
    );
    server.shutdown();
}

async fn post(
    addr: SocketAddr,
    path: &str,
    body: Vec<u8>,
) -> (http::StatusCode, http::HeaderMap, Vec<u8>) {
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, body)
}

/// `{"name":"xxx…"}`, `size` bytes in all.
fn name_event(size: usize) -> Vec<u8> {
    let name = "x".repeat(size - r#"{"name":""}"#.len());
    let event = format!(r#"{{"name":"{name}"}}"#).into_bytes();
    assert_eq!(event.len(), size);
    event
}

/// Lambda's `RequestTooLargeException`: HTTP 413, the type in `X-Amzn-ErrorType`, JSON body.
fn assert_request_too_large(status: http::StatusCode, headers: &http::HeaderMap, body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    assert_eq!(status, 413, "{text}");
    assert_eq!(headers["x-amzn-errortype"], "RequestTooLargeException");
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(body).unwrap_or_else(|_| panic!("JSON: {text}"));
    assert_eq!(body["Type"], "User", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("6291456"),
        "names Lambda's limit: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_api_takes_events_up_to_lambdas_limit_and_refuses_larger_as_lambda_does() {
    let server = serve(&["hello"], &[("APP_API_KEY", "test-key")]).await;
    let path = "/2015-03-31/functions/hello:staging/invocations";

    // 3,000,000 bytes: over axum's default 2 MiB, under Lambda's 6 MB.
    let (status, _, body) = post(server.addr(), path, name_event(3_000_000)).await;
    assert_eq!(
        status,
        200,
        "{}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    let name = "x".repeat(3_000_000 - r#"{"name":""}"#.len());
    assert_eq!(
        body,
        json!({"message": format!("Hello from staging, {name}!"), "env": "staging"})
    );

    // Over Lambda's limit: the emulator's refusal, as Lambda's Invoke API answers it.
    let (status, headers, body) = post(server.addr(), path, name_event(7_000_000)).await;
    assert_request_too_large(status, &headers, &body);
    assert!(
        String::from_utf8_lossy(&body).contains("7000000"),
        "says the size sent"
    );
    server.shutdown();
}

/// One HTTP/1.1 response read off `stream`: status, lower-case headers, body (`Content-Length`).
async fn read_response(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use tokio::io::AsyncReadExt as _;
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let status = lines
                .next()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            let headers: Vec<(String, String)> = lines
                .map(|line| {
                    let (name, value) = line.split_once(':').unwrap();
                    (name.trim().to_ascii_lowercase(), value.trim().to_owned())
                })
                .collect();
            let length: usize = headers
                .iter()
                .find(|(name, _)| name == "content-length")
                .map_or(0, |(_, value)| value.parse().unwrap());
            if buffer.len() >= end + 4 + length {
                let body = buffer[end + 4..end + 4 + length].to_vec();
                buffer.drain(..end + 4 + length);
                return (status, headers, body);
            }
        }
        let mut chunk = [0; 65536];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(
            read > 0,
            "the server closed the connection; unanswered: {}",
            String::from_utf8_lossy(buffer)
        );
        buffer.extend_from_slice(&chunk[..read]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_request_after_an_oversize_one_on_a_keep_alive_connection_is_answered() {
    use tokio::io::AsyncWriteExt as _;
    let server = serve(&["hello"], &[("APP_API_KEY", "test-key")]).await;
    let path = "/2015-03-31/functions/hello/invocations";
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let request = |body: &[u8]| {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            server.addr(),
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        request
    };
    // Far over Lambda's limit (and over what serve keeps), then a small one on the same connection.
    let exchange = async {
        stream
            .write_all(&request(&name_event(10_000_000)))
            .await
            .unwrap();
        stream
            .write_all(&request(br#"{"name":"Ada"}"#))
            .await
            .unwrap();
        let mut buffer = Vec::new();
        let first = read_response(&mut stream, &mut buffer).await;
        let second = read_response(&mut stream, &mut buffer).await;
        (first, second)
    };
    let ((status, headers, body), (second_status, _, second_body)) =
        tokio::time::timeout(std::time::Duration::from_secs(60), exchange)
            .await
            .expect("both requests answered within a minute");

    let headers: http::HeaderMap = headers
        .iter()
        .map(|(name, value)| {
            (
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            )
        })
        .collect();
    assert_request_too_large(http::StatusCode::from_u16(status).unwrap(), &headers, &body);
    assert!(
        !headers.contains_key("connection"),
        "the body was read: the connection stays open"
    );
    let second_body: Value = serde_json::from_slice(&second_body).unwrap();
    assert_eq!(second_status, 200, "{second_body}");
    assert_eq!(second_body, json!({"message": "Hello, Ada!", "env": "dev"}));
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_root_and_unknown_paths_say_what_is_served_where() {
    let server = serve(&["hello", "http-api"], &[]).await;
    let says_what_is_served = |text: &str| {
        for expected in [
            "hello",
            "http-api",
            "/2015-03-31/functions/<function>",
            "/<function>/<path>",
            "/<env>/<route>",
            "staging",
        ] {
            assert!(text.contains(expected), "`{expected}` in:\n{text}");
        }
    };

    let (status, headers, body) = get(server.addr(), "/").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    says_what_is_served(&String::from_utf8_lossy(&body));

    for unknown in ["/goodbye/hello/Ada", "/goodbye"] {
        let (status, _, body) = get(server.addr(), unknown).await;
        assert_eq!(status, 404, "{unknown}");
        says_what_is_served(&String::from_utf8_lossy(&body));
    }

    // An environment's API keeps API Gateway's own answer for a path no route matches.
    let (status, _, body) = get(server.addr(), "/staging/nowhere").await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"message": "Not Found"})
    );
    server.shutdown();
}
