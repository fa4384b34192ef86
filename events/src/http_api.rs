//! HTTP-shaped events (API Gateway REST and HTTP APIs, ALB) and the conversion of a plain HTTP
//! exchange to and from an API Gateway HTTP API (payload 2.0) invocation.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::templates::{new_request_id, trace_id, ACCOUNT_ID, REGION};
use crate::EventError;

/// The id of the emulated API (10 lowercase characters, like API Gateway's).
const API_ID: &str = "r3pmxmplak";
const TARGET_GROUP_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/lambda-target/49e9d65c45c6791a";
const SOURCE_IP: &str = "203.0.113.10";
const USER_AGENT: &str = "curl/8.5.0";

/// The name API Gateway gives an HTTP API's catch-all stage and catch-all route.
pub const DEFAULT_STAGE_OR_ROUTE: &str = "$default";

/// How API Gateway delivered a request to an HTTP API integration: the stage it arrived on and
/// the route that matched. [`ApiRoute::default`] is the `$default` stage and route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRoute {
    /// `$default`, or a named stage, which API Gateway keeps as the first segment of `rawPath`
    /// (`/staging/hello/Ada`).
    pub stage: String,
    /// The route key that matched (`GET /hello/{name}`), or `$default`.
    pub route_key: String,
    /// The route's path variables with the request's decoded values (`{"name": "Ada"}`).
    pub path_parameters: BTreeMap<String, String>,
}

impl Default for ApiRoute {
    fn default() -> Self {
        ApiRoute {
            stage: DEFAULT_STAGE_OR_ROUTE.to_owned(),
            route_key: DEFAULT_STAGE_OR_ROUTE.to_owned(),
            path_parameters: BTreeMap::new(),
        }
    }
}

impl ApiRoute {
    /// The path as the client sent it: `path` on the API, behind `/<stage>` for a named stage.
    fn raw_path(&self, path: &str) -> String {
        if self.stage == DEFAULT_STAGE_OR_ROUTE {
            path.to_owned()
        } else {
            format!("/{}{path}", self.stage)
        }
    }
}

/// One HTTP request, independent of the event format that will carry it.
pub(crate) struct HttpParts {
    pub method: String,
    pub path: String,
    /// As sent: still percent-encoded.
    pub raw_query: String,
    /// In arrival order, names as sent; repeated names allowed.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub source_ip: String,
}

impl HttpParts {
    /// A request with the headers a client and API Gateway's edge add, overridden by the user's.
    pub fn from_overrides(overrides: &crate::Overrides, host: &str) -> Result<Self, EventError> {
        let method = overrides
            .method
            .as_deref()
            .unwrap_or("GET")
            .to_ascii_uppercase();
        http::Method::from_bytes(method.as_bytes()).map_err(|_| EventError::InvalidOverride {
            flag: "method",
            reason: format!("`{method}` is not an HTTP method"),
        })?;
        let (path, mut raw_query) = split_path(overrides.path.as_deref().unwrap_or("/"));
        if !path.starts_with('/') {
            return Err(EventError::InvalidOverride {
                flag: "path",
                reason: format!("`{path}` must start with `/`"),
            });
        }
        if !overrides.query.is_empty() {
            let mut encoder = form_urlencoded::Serializer::new(raw_query.clone());
            encoder.extend_pairs(&overrides.query);
            raw_query = encoder.finish();
        }
        let body = overrides
            .body
            .as_ref()
            .map(|body| body.clone().into_bytes());
        let mut headers: Vec<(String, String)> = vec![
            ("accept".into(), "*/*".into()),
            ("host".into(), host.into()),
            ("user-agent".into(), USER_AGENT.into()),
        ];
        if let Some(body) = &body {
            headers.push(("content-length".into(), body.len().to_string()));
            headers.push(("content-type".into(), "application/json".into()));
        }
        for (name, value) in &overrides.headers {
            headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.clone()));
        }
        let mut parts = HttpParts {
            method,
            path: path.to_owned(),
            raw_query,
            headers,
            body,
            source_ip: SOURCE_IP.to_owned(),
        };
        parts.add_edge_headers("https", "443");
        Ok(parts)
    }

    /// The headers API Gateway's (or the load balancer's) edge adds.
    fn add_edge_headers(&mut self, proto: &str, port: &str) {
        let edge = [
            ("x-amzn-trace-id", trace_id()),
            ("x-forwarded-for", self.source_ip.clone()),
            ("x-forwarded-port", port.to_owned()),
            ("x-forwarded-proto", proto.to_owned()),
        ];
        for (name, value) in edge {
            if !self
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                self.headers.push((name.to_owned(), value));
            }
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `(body, isBase64Encoded)`: text as is, anything else base64-encoded, as API Gateway does.
    fn encoded_body(&self) -> (Value, bool) {
        match &self.body {
            None => (Value::Null, false),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => (Value::String(text.to_owned()), false),
                Err(_) => (
                    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    true,
                ),
            },
        }
    }

    fn decoded_query(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.raw_query.as_bytes())
            .into_owned()
            .collect()
    }
}

fn split_path(path_and_query: &str) -> (&str, String) {
    match path_and_query.split_once('?') {
        Some((path, query)) => (path, query.to_owned()),
        None => (path_and_query, String::new()),
    }
}

/// `21/Apr/2020:15:08:21 +0000`, API Gateway's request time.
fn request_time(now: DateTime<Utc>) -> String {
    now.format("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

pub(crate) fn default_host() -> String {
    format!("{API_ID}.execute-api.{REGION}.amazonaws.com")
}

/// API Gateway HTTP API, payload format 2.0, delivered on `route`.
pub(crate) fn http_api_v2(parts: &HttpParts, route: &ApiRoute, now: DateTime<Utc>) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from),
            );
            continue;
        }
        // HTTP API joins repeated headers with commas.
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    let mut query = Map::new();
    for (name, value) in parts.decoded_query() {
        match query.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(name, Value::String(value));
            }
        }
    }
    let domain = parts
        .header("host")
        .map_or_else(default_host, str::to_owned);
    let domain_prefix = domain.split('.').next().unwrap_or(API_ID).to_owned();
    let (body, is_base64_encoded) = parts.encoded_body();
    let raw_path = route.raw_path(&parts.path);
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": parts.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain_prefix,
            "http": {
                "method": parts.method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": parts.source_ip,
                "userAgent": parts.header("user-agent").unwrap_or(""),
            },
            "requestId": http_api_request_id(),
            "routeKey": route.route_key,
            "stage": route.stage,
            "time": request_time(now),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64_encoded,
    });
    // HTTP API leaves out what the request does not have.
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !route.path_parameters.is_empty() {
        event["pathParameters"] = json!(route.path_parameters);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

/// HTTP API request ids look like `LV7fzho-PHcEJPw=`.
fn http_api_request_id() -> String {
    let random = uuid::Uuid::new_v4();
    base64::engine::general_purpose::STANDARD.encode(&random.as_bytes()[..11])
}

/// API Gateway REST API proxy integration, payload format 1.0, on a `/{proxy+}` resource.
pub(crate) fn rest_api_v1(parts: &HttpParts, now: DateTime<Utc>) -> Value {
    let mut headers = Map::new();
    let mut multi_headers = Map::new();
    for (name, value) in &parts.headers {
        headers.insert(name.clone(), Value::String(value.clone()));
        push_multi(&mut multi_headers, name, value);
    }
    let mut query = Map::new();
    let mut multi_query = Map::new();
    for (name, value) in parts.decoded_query() {
        push_multi(&mut multi_query, &name, &value);
        query.insert(name, Value::String(value));
    }
    let proxy = parts.path.trim_start_matches('/');
    let (resource, path_parameters) = if proxy.is_empty() {
        ("/", Value::Null)
    } else {
        ("/{proxy+}", json!({ "proxy": proxy }))
    };
    let (body, is_base64_encoded) = parts.encoded_body();
    let domain = parts
        .header("host")
        .map_or_else(default_host, str::to_owned);
    let null_if_empty = |map: Map<String, Value>| {
        if map.is_empty() {
            Value::Null
        } else {
            Value::Object(map)
        }
    };
    json!({
        "resource": resource,
        "path": parts.path,
        "httpMethod": parts.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": null_if_empty(query),
        "multiValueQueryStringParameters": null_if_empty(multi_query),
        "pathParameters": path_parameters,
        "stageVariables": null,
        "requestContext": {
            "resourceId": "2gxmpl",
            "resourcePath": resource,
            "httpMethod": parts.method,
            "extendedRequestId": http_api_request_id(),
            "requestTime": request_time(now),
            "path": format!("/Prod{}", parts.path),
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": "Prod",
            "domainPrefix": API_ID,
            "requestTimeEpoch": now.timestamp_millis(),
            "requestId": new_request_id(),
            "identity": {
                "cognitoIdentityPoolId": null,
                "accountId": null,
                "cognitoIdentityId": null,
                "caller": null,
                "sourceIp": parts.source_ip,
                "principalOrgId": null,
                "accessKey": null,
                "cognitoAuthenticationType": null,
                "cognitoAuthenticationProvider": null,
                "userArn": null,
                "userAgent": parts.header("user-agent").unwrap_or(""),
                "user": null,
            },
            "domainName": domain,
            "apiId": API_ID,
        },
        "body": body,
        "isBase64Encoded": is_base64_encoded,
    })
}

fn push_multi(map: &mut Map<String, Value>, name: &str, value: &str) {
    match map.get_mut(name) {
        Some(Value::Array(values)) => values.push(Value::String(value.to_owned())),
        _ => {
            map.insert(name.to_owned(), json!([value]));
        }
    }
}

/// Application Load Balancer target group request (multi-value headers off). ALB passes the
/// query string still percent-encoded and lower-cases header names.
pub(crate) fn alb(parts: &HttpParts) -> Value {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        headers.insert(name.to_ascii_lowercase(), Value::String(value.clone()));
    }
    let mut query = Map::new();
    for pair in parts.raw_query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        query.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    let (body, is_base64_encoded) = parts.encoded_body();
    json!({
        "requestContext": { "elb": { "targetGroupArn": TARGET_GROUP_ARN } },
        "httpMethod": parts.method,
        "path": parts.path,
        "queryStringParameters": query,
        "headers": headers,
        "body": if body.is_null() { json!("") } else { body },
        "isBase64Encoded": is_base64_encoded,
    })
}

/// Turns a plain HTTP request into the API Gateway HTTP API (payload 2.0) event that API
/// Gateway would send for it: lower-cased headers (repeats joined by commas), `Cookie` split into
/// `cookies`, decoded query parameters, a base64 body when it is not UTF-8, and the
/// `x-forwarded-*`/`x-amzn-trace-id` headers the edge adds. `path_and_query` is the path on the
/// API, after any stage (`/hello/Ada?lang=en`); `route` is where API Gateway delivered it.
pub fn apigw_http_event(
    method: &http::Method,
    path_and_query: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    source_ip: &str,
    route: &ApiRoute,
) -> Value {
    let (path, raw_query) = split_path(path_and_query);
    let mut parts = HttpParts {
        method: method.as_str().to_owned(),
        path: if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        },
        raw_query,
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: (!body.is_empty()).then(|| body.to_vec()),
        source_ip: source_ip.to_owned(),
    };
    parts.add_edge_headers("http", "80");
    http_api_v2(&parts, route, Utc::now())
}

/// A payload 2.0 response as a function returns it (every field optional, as API Gateway reads it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V2Response {
    status_code: u16,
    #[serde(default)]
    headers: Option<Map<String, Value>>,
    #[serde(default)]
    multi_value_headers: Option<Map<String, Value>>,
    #[serde(default)]
    cookies: Option<Vec<String>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: Option<bool>,
}

/// Turns a function's response to an HTTP API (payload 2.0) event into the HTTP response API
/// Gateway would send: status, headers, `cookies` as `set-cookie`, base64 bodies decoded. A
/// valid JSON response without `statusCode` becomes a 200 `application/json` response with that
/// JSON as the body, as API Gateway does.
pub fn apigw_http_response(payload: &[u8]) -> Result<http::Response<Vec<u8>>, EventError> {
    let invalid = |reason: String| EventError::HttpResponse(reason);
    let value: Value = serde_json::from_slice(payload)
        .map_err(|err| invalid(format!("it is not JSON ({err})")))?;
    let has_status = value
        .as_object()
        .is_some_and(|object| object.contains_key("statusCode"));
    if !has_status {
        return http::Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(payload.to_vec())
            .map_err(|err| invalid(err.to_string()));
    }
    let response: V2Response =
        serde_json::from_value(value).map_err(|err| invalid(err.to_string()))?;
    let mut builder = http::Response::builder().status(response.status_code);
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    for (name, values) in response.multi_value_headers.iter().flatten() {
        for value in values.as_array().into_iter().flatten() {
            builder = builder.header(name.as_str(), text(value));
        }
    }
    for (name, value) in response.headers.iter().flatten() {
        builder = builder.header(name.as_str(), text(value));
    }
    for cookie in response.cookies.iter().flatten() {
        builder = builder.header(http::header::SET_COOKIE, cookie.as_str());
    }
    let body = match (response.body, response.is_base64_encoded.unwrap_or(false)) {
        (None, _) => Vec::new(),
        (Some(body), false) => body.into_bytes(),
        (Some(body), true) => base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|err| {
                invalid(format!(
                    "isBase64Encoded is true but the body is not base64 ({err})"
                ))
            })?,
    };
    builder.body(body).map_err(|err| invalid(err.to_string()))
}
