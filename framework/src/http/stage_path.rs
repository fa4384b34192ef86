//! A named API Gateway stage's `/<stage>` path prefix, taken off before routing, so a route
//! written as `/hello/{name}` matches under `staging` as it does under `$default`.
//!
//! `lambda_http` builds the request path as `/<stage>` + the event's path unless that path
//! already starts with `/<stage>/` (or `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set to any
//! value): an HTTP API (v2) `rawPath` of `/staging/hello/Ada` stays as it is, and a REST API
//! (v1) `path` of `/hello/Ada` becomes `/prod/hello/Ada`.

use http::uri::{PathAndQuery, Uri};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt as _};

/// `request` with a named stage's `/<stage>` prefix removed from its URI path and from its
/// [`raw_http_path`](lambda_http::RequestExt::raw_http_path); the query string, path and query
/// parameters, stage variables and request context are kept. Requests without a stage, under
/// `$default`, or from an ALB are returned unchanged.
pub(crate) fn strip_stage_prefix(request: Request) -> Request {
    let Some(stage) = named_stage(&request) else {
        return request;
    };
    let raw_path = request.raw_http_path();
    // The event's own path decides the stage root: lambda_http turns `/<stage>` into
    // `/<stage>/<stage>`, which would otherwise lose only one prefix.
    let path = if without_stage(raw_path, &stage) == "/" {
        "/"
    } else {
        without_stage(request.uri().path(), &stage)
    };
    let uri = with_path(request.uri(), path);
    let raw_path = without_stage(raw_path, &stage).to_owned();

    let mut request = request.with_raw_http_path(raw_path);
    if let Some(uri) = uri {
        *request.uri_mut() = uri;
    }
    request
}

/// The API Gateway stage of `request`, unless it is `$default` (or there is none).
fn named_stage(request: &Request) -> Option<String> {
    let stage = match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => context.stage.as_deref(),
        RequestContext::ApiGatewayV2(context) => context.stage.as_deref(),
        _ => None,
    }?;
    (!stage.is_empty() && stage != "$default").then(|| stage.to_owned())
}

/// `path` without a leading `/<stage>` segment: `/staging/hello` → `/hello`, `/staging` → `/`;
/// any other path (`/stagingx`, `/hello/staging`) is returned as it is.
fn without_stage<'a>(path: &'a str, stage: &str) -> &'a str {
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// `uri` with its path replaced by `path`, keeping scheme, authority and query.
fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    if uri.path() == path {
        return None;
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use axum::extract::{Path, RawQuery};
    use axum::routing::get;
    use axum::Router;
    use http::StatusCode;
    use http_body_util::BodyExt as _;
    use lambda_http::request::LambdaRequest;
    use lambda_runtime::tower::ServiceExt as _;
    use serde_json::{json, Value};

    use super::*;

    /// An HTTP API (payload 2.0) event for `GET <host>/<stage>/hello/Ada?lang=en&lang=de` on
    /// the `GET /hello/{name}` route, as API Gateway sends it: with a named stage, `rawPath`
    /// and `requestContext.http.path` carry the stage, `pathParameters` do not.
    fn http_api_event(stage: &str, raw_path: &str) -> Value {
        json!({
            "version": "2.0",
            "routeKey": "GET /hello/{name}",
            "rawPath": raw_path,
            "rawQueryString": "lang=en&lang=de",
            "headers": {
                "accept": "*/*",
                "content-length": "0",
                "host": "abc123defg.execute-api.eu-west-1.amazonaws.com",
                "user-agent": "curl/8.5.0",
                "x-amzn-trace-id": "Root=1-65f1c2a4-3b1f0c1e5d7a2b9c4e6f8a01",
                "x-forwarded-for": "203.0.113.7",
                "x-forwarded-port": "443",
                "x-forwarded-proto": "https"
            },
            "queryStringParameters": { "lang": "en,de" },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123defg",
                "domainName": "abc123defg.execute-api.eu-west-1.amazonaws.com",
                "domainPrefix": "abc123defg",
                "http": {
                    "method": "GET",
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.7",
                    "userAgent": "curl/8.5.0"
                },
                "requestId": "LV7fzho-PHcEJPw=",
                "routeKey": "GET /hello/{name}",
                "stage": stage,
                "time": "13/Mar/2024:09:14:12 +0000",
                "timeEpoch": 1710321252000_u64
            },
            "pathParameters": { "name": "Ada" },
            "isBase64Encoded": false
        })
    }

    /// A REST API (payload 1.0) event for `GET <host>/prod/hello/Ada?lang=en` on the
    /// `/hello/{name}` resource: `path` has no stage, `requestContext.path` has it.
    fn rest_api_event() -> Value {
        json!({
            "resource": "/hello/{name}",
            "path": "/hello/Ada",
            "httpMethod": "GET",
            "headers": {
                "Accept": "*/*",
                "Host": "abc123defg.execute-api.eu-west-1.amazonaws.com",
                "User-Agent": "curl/8.5.0",
                "X-Amzn-Trace-Id": "Root=1-65f1c2a4-3b1f0c1e5d7a2b9c4e6f8a01",
                "X-Forwarded-For": "203.0.113.7",
                "X-Forwarded-Port": "443",
                "X-Forwarded-Proto": "https"
            },
            "multiValueHeaders": {
                "Accept": ["*/*"],
                "Host": ["abc123defg.execute-api.eu-west-1.amazonaws.com"],
                "User-Agent": ["curl/8.5.0"],
                "X-Amzn-Trace-Id": ["Root=1-65f1c2a4-3b1f0c1e5d7a2b9c4e6f8a01"],
                "X-Forwarded-For": ["203.0.113.7"],
                "X-Forwarded-Port": ["443"],
                "X-Forwarded-Proto": ["https"]
            },
            "queryStringParameters": { "lang": "en" },
            "multiValueQueryStringParameters": { "lang": ["en"] },
            "pathParameters": { "name": "Ada" },
            "stageVariables": null,
            "requestContext": {
                "resourceId": "2gxmpl",
                "resourcePath": "/hello/{name}",
                "httpMethod": "GET",
                "extendedRequestId": "JJbxmHc3joEFdJw=",
                "requestTime": "13/Mar/2024:09:14:12 +0000",
                "path": "/prod/hello/Ada",
                "accountId": "123456789012",
                "protocol": "HTTP/1.1",
                "stage": "prod",
                "domainPrefix": "abc123defg",
                "requestTimeEpoch": 1710321252000_u64,
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                "identity": {
                    "cognitoIdentityPoolId": null,
                    "accountId": null,
                    "cognitoIdentityId": null,
                    "caller": null,
                    "sourceIp": "203.0.113.7",
                    "principalOrgId": null,
                    "accessKey": null,
                    "cognitoAuthenticationType": null,
                    "cognitoAuthenticationProvider": null,
                    "userArn": null,
                    "userAgent": "curl/8.5.0",
                    "user": null
                },
                "domainName": "abc123defg.execute-api.eu-west-1.amazonaws.com",
                "apiId": "abc123defg"
            },
            "body": null,
            "isBase64Encoded": false
        })
    }

    /// An ALB target group event whose path happens to start with a stage-like segment.
    fn alb_event() -> Value {
        json!({
            "requestContext": {
                "elb": {
                    "targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/lambda-279XGJDqGZ5rsrHC2Fjr/49e9d65c45c6791a"
                }
            },
            "httpMethod": "GET",
            "path": "/staging/hello/Ada",
            "queryStringParameters": { "lang": "en" },
            "headers": {
                "host": "lambda-alb-123578498.eu-west-1.elb.amazonaws.com",
                "user-agent": "curl/8.5.0",
                "x-forwarded-for": "203.0.113.7",
                "x-forwarded-port": "80",
                "x-forwarded-proto": "http"
            },
            "body": "",
            "isBase64Encoded": false
        })
    }

    /// The request `lambda_http::run` hands a handler for `event`.
    fn lambda_http_request(event: Value, origin: &str) -> Request {
        let event: LambdaRequest = serde_json::from_value(event).unwrap();
        assert_eq!(format!("{:?}", event.request_origin()), origin);
        Request::from(event)
    }

    fn router() -> Router {
        async fn hello(Path(name): Path<String>, RawQuery(query): RawQuery) -> String {
            format!("Hello, {name}! ({})", query.unwrap_or_default())
        }
        Router::new()
            .route("/", get(|| async { "root" }))
            .route("/hello/{name}", get(hello))
    }

    async fn answer(request: Request) -> (StatusCode, String) {
        let response = router().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn named_http_api_stage_is_stripped_before_routing() {
        let request = lambda_http_request(
            http_api_event("staging", "/staging/hello/Ada"),
            "ApiGatewayV2",
        );
        // What lambda_http alone gives a router: the stage stays in the path.
        assert_eq!(request.uri().path(), "/staging/hello/Ada");
        assert_eq!(answer(request).await.0, StatusCode::NOT_FOUND);

        let request = strip_stage_prefix(lambda_http_request(
            http_api_event("staging", "/staging/hello/Ada"),
            "ApiGatewayV2",
        ));
        assert_eq!(
            request.uri().to_string(),
            "https://abc123defg.execute-api.eu-west-1.amazonaws.com/hello/Ada?lang=en&lang=de"
        );
        assert_eq!(request.raw_http_path(), "/hello/Ada");
        assert_eq!(request.path_parameters().first("name"), Some("Ada"));
        assert_eq!(
            request.query_string_parameters().all("lang"),
            Some(vec!["en", "de"])
        );
        match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => {
                assert_eq!(context.stage.as_deref(), Some("staging"));
                assert_eq!(context.http.path.as_deref(), Some("/staging/hello/Ada"));
            }
            other => panic!("request context: {other:?}"),
        }
        assert_eq!(
            answer(request).await,
            (StatusCode::OK, "Hello, Ada! (lang=en&lang=de)".to_owned())
        );
    }

    #[tokio::test]
    async fn default_http_api_stage_is_left_alone() {
        let request = strip_stage_prefix(lambda_http_request(
            http_api_event("$default", "/hello/Ada"),
            "ApiGatewayV2",
        ));
        assert_eq!(
            request.uri().to_string(),
            "https://abc123defg.execute-api.eu-west-1.amazonaws.com/hello/Ada?lang=en&lang=de"
        );
        assert_eq!(request.raw_http_path(), "/hello/Ada");
        assert_eq!(
            answer(request).await,
            (StatusCode::OK, "Hello, Ada! (lang=en&lang=de)".to_owned())
        );
    }

    #[tokio::test]
    async fn rest_api_stage_that_lambda_http_adds_is_stripped() {
        let request = lambda_http_request(rest_api_event(), "ApiGatewayV1");
        // lambda_http puts the stage in front of the event's stage-less `path`.
        assert_eq!(request.uri().path(), "/prod/hello/Ada");
        assert_eq!(answer(request).await.0, StatusCode::NOT_FOUND);

        let request = strip_stage_prefix(lambda_http_request(rest_api_event(), "ApiGatewayV1"));
        assert_eq!(
            request.uri().to_string(),
            "https://abc123defg.execute-api.eu-west-1.amazonaws.com/hello/Ada?lang=en"
        );
        assert_eq!(request.raw_http_path(), "/hello/Ada");
        assert_eq!(request.path_parameters().first("name"), Some("Ada"));
        match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(context)) => {
                assert_eq!(context.stage.as_deref(), Some("prod"));
                assert_eq!(context.path.as_deref(), Some("/prod/hello/Ada"));
            }
            other => panic!("request context: {other:?}"),
        }
        assert_eq!(
            answer(request).await,
            (StatusCode::OK, "Hello, Ada! (lang=en)".to_owned())
        );
    }

    #[tokio::test]
    async fn the_stage_root_becomes_the_root() {
        let request = lambda_http_request(http_api_event("staging", "/staging"), "ApiGatewayV2");
        // Not `/staging/`, so lambda_http adds the stage once more.
        assert_eq!(request.uri().path(), "/staging/staging");
        let request = strip_stage_prefix(request);
        assert_eq!(request.uri().path(), "/");
        assert_eq!(request.uri().query(), Some("lang=en&lang=de"));
        assert_eq!(request.raw_http_path(), "/");
        assert_eq!(answer(request).await, (StatusCode::OK, "root".to_owned()));
    }

    #[tokio::test]
    async fn alb_requests_are_left_alone() {
        let request = strip_stage_prefix(lambda_http_request(alb_event(), "Alb"));
        assert_eq!(request.uri().path(), "/staging/hello/Ada");
        assert_eq!(request.raw_http_path(), "/staging/hello/Ada");
        assert_eq!(answer(request).await.0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn only_a_whole_leading_stage_segment_is_removed() {
        assert_eq!(without_stage("/staging/hello/Ada", "staging"), "/hello/Ada");
        assert_eq!(without_stage("/staging/", "staging"), "/");
        assert_eq!(without_stage("/staging", "staging"), "/");
        assert_eq!(without_stage("/staging/staging", "staging"), "/staging");
        assert_eq!(
            without_stage("/stagingx/hello", "staging"),
            "/stagingx/hello"
        );
        assert_eq!(without_stage("/hello/staging", "staging"), "/hello/staging");
        assert_eq!(without_stage("staging/hello", "staging"), "staging/hello");
        assert_eq!(without_stage("", "staging"), "");
    }
}
