//! A small HTTP proxy between the AWS SDK and moto that does what moto does not:
//! fails the Nth call of an operation, throttles, holds calls so two clients really race, and
//! enforces alias `RevisionId` preconditions (moto accepts any revision and never changes it).
//!
//! Operations are named as in the AWS API (`UpdateAlias`, `PublishVersion`,
//! `GetCallerIdentity`, ...), recognised from Lambda's REST paths and the `Action` of
//! STS/IAM query requests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// What an injected fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A non-retryable client error (`400 InjectedFailure`): the command must stop.
    Fail,
    /// `429 TooManyRequestsException` / `Throttling`: the SDK must retry with backoff.
    Throttle,
}

#[derive(Debug, Clone)]
struct Fault {
    operation: String,
    /// The first call (1-based) that fails.
    nth: usize,
    /// How many consecutive calls fail from there.
    times: usize,
    kind: FaultKind,
}

#[derive(Default)]
struct Inner {
    calls: HashMap<String, usize>,
    log: Vec<String>,
    faults: Vec<Fault>,
    /// The proxy's own alias revisions, by `<function>/<alias>`.
    revisions: HashMap<String, u64>,
    next_revision: u64,
    holds: HashMap<String, Arc<tokio::sync::Barrier>>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    /// Serialises alias writes so check-and-set of a revision is atomic.
    alias_writes: Arc<tokio::sync::Mutex<()>>,
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub struct FaultProxy {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts the proxy on a free 127.0.0.1 port in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> anyhow::Result<FaultProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            inner: Arc::default(),
            alias_writes: Arc::default(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FaultProxy { addr, shared, task })
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes the `nth` call (1-based, counted from now on) of `operation` fail, `times` calls
    /// in a row.
    pub fn inject(&self, operation: &str, nth: usize, times: usize, kind: FaultKind) {
        let mut inner = self.shared.inner.lock().unwrap();
        let seen = inner.calls.get(operation).copied().unwrap_or(0);
        inner.faults.push(Fault {
            operation: operation.to_owned(),
            nth: seen + nth,
            times,
            kind,
        });
    }

    /// Drops every injected fault.
    pub fn clear_faults(&self) {
        self.shared.inner.lock().unwrap().faults.clear();
    }

    /// Holds the next `count` calls of `operation` until all of them arrived (at most 20 s), so
    /// two clients reach it at the same time.
    pub fn hold(&self, operation: &str, count: usize) {
        self.shared.inner.lock().unwrap().holds.insert(
            operation.to_owned(),
            Arc::new(tokio::sync::Barrier::new(count)),
        );
    }

    /// How many calls of `operation` reached the proxy so far.
    pub fn calls(&self, operation: &str) -> usize {
        self.shared
            .inner
            .lock()
            .unwrap()
            .calls
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Every call so far, in order, as operation names.
    pub fn log(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().log.clone()
    }

    /// Calls that write (everything but Get/List/Describe reads).
    pub fn writes(&self) -> Vec<String> {
        self.log().into_iter().filter(|op| is_write(op)).collect()
    }

    /// Forgets the call counts, the log and pending faults (alias revisions stay).
    pub fn reset_counts(&self) {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.calls.clear();
        inner.log.clear();
        inner.faults.clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn is_write(operation: &str) -> bool {
    !["Get", "List", "Describe"]
        .iter()
        .any(|read| operation.starts_with(read))
}

async fn handle(State(shared): State<Shared>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 256 * 1024 * 1024).await {
        Ok(body) => body,
        Err(err) => return plain(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    let path = parts.uri.path().to_owned();
    let operation = operation(parts.method.as_str(), &path, &parts.headers, &body);
    let query = is_query(&body);

    let (fault, hold) = {
        let mut inner = shared.inner.lock().unwrap();
        let count = {
            let count = inner.calls.entry(operation.clone()).or_default();
            *count += 1;
            *count
        };
        inner.log.push(operation.clone());
        let fault = inner
            .faults
            .iter()
            .find(|f| f.operation == operation && (f.nth..f.nth + f.times).contains(&count))
            .map(|f| f.kind);
        let hold = inner.holds.get(&operation).cloned();
        (fault, hold)
    };
    if let Some(kind) = fault {
        return injected(kind, query);
    }
    if let Some(barrier) = hold {
        let _ = tokio::time::timeout(Duration::from_secs(20), barrier.wait()).await;
    }

    let alias_key = alias_key(&path, &operation, &body);
    let _alias_guard = match alias_key {
        Some(_) if is_write(&operation) => Some(shared.alias_writes.lock().await),
        _ => None,
    };
    if let (Some(key), "UpdateAlias") = (&alias_key, operation.as_str()) {
        let sent = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["RevisionId"].as_str().map(str::to_owned));
        let current = current_revision(&shared, key);
        if let Some(sent) = sent {
            if sent != current {
                return lambda_error(
                    StatusCode::PRECONDITION_FAILED,
                    "PreconditionFailedException",
                    "The Revision Id provided does not match the latest Revision Id. Call the GetAlias API to retrieve the latest Revision Id",
                );
            }
        }
    }

    let uri = format!(
        "{}{}",
        shared.upstream,
        parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
    );
    let mut forward = Request::builder().method(parts.method.clone()).uri(uri);
    for (name, value) in &parts.headers {
        if name != "host" {
            forward = forward.header(name, value);
        }
    }
    let forward = match forward.body(Full::new(body)) {
        Ok(forward) => forward,
        Err(err) => return plain(StatusCode::BAD_GATEWAY, &err.to_string()),
    };
    let response = match shared.client.request(forward).await {
        Ok(response) => response,
        Err(err) => return plain(StatusCode::BAD_GATEWAY, &err.to_string()),
    };
    let (mut parts, body) = response.into_parts();
    let mut body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(err) => return plain(StatusCode::BAD_GATEWAY, &err.to_string()),
    };
    if let Some(key) = alias_key.filter(|_| parts.status.is_success()) {
        body = rewrite_revisions(&shared, &key, &operation, body);
        parts.headers.remove("content-length");
    }
    Response::from_parts(parts, Body::from(body))
}

fn current_revision(shared: &Shared, key: &str) -> String {
    let mut inner = shared.inner.lock().unwrap();
    let next = inner.next_revision + 1;
    let revision = *inner.revisions.entry(key.to_owned()).or_insert(next);
    if revision == next {
        inner.next_revision = next;
    }
    format!("proxy-revision-{revision}")
}

/// Gives aliases revisions that change on every write, as AWS does.
fn rewrite_revisions(shared: &Shared, key: &str, operation: &str, body: Bytes) -> Bytes {
    match operation {
        "CreateAlias" | "UpdateAlias" => {
            let mut inner = shared.inner.lock().unwrap();
            inner.next_revision += 1;
            let next = inner.next_revision;
            inner.revisions.insert(key.to_owned(), next);
        }
        "DeleteAlias" => {
            shared.inner.lock().unwrap().revisions.remove(key);
            return body;
        }
        _ => {}
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    if let Some(aliases) = value.get_mut("Aliases").and_then(Value::as_array_mut) {
        let function = key.trim_end_matches('/');
        for alias in aliases {
            let name = alias["Name"].as_str().unwrap_or_default().to_owned();
            alias["RevisionId"] =
                Value::from(current_revision(shared, &format!("{function}/{name}")));
        }
    } else if value.get("RevisionId").is_some() {
        value["RevisionId"] = Value::from(current_revision(shared, key));
    }
    Bytes::from(value.to_string())
}

/// `<function>/<alias>` for alias operations; `<function>/` for ListAliases.
fn alias_key(path: &str, operation: &str, body: &[u8]) -> Option<String> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (operation, segments.as_slice()) {
        (
            "GetAlias" | "UpdateAlias" | "DeleteAlias",
            [_, "functions", function, "aliases", alias],
        ) => Some(format!("{function}/{alias}")),
        ("CreateAlias", [_, "functions", function, "aliases"]) => {
            let name = serde_json::from_slice::<Value>(body).ok()?["Name"]
                .as_str()?
                .to_owned();
            Some(format!("{function}/{name}"))
        }
        ("ListAliases", [_, "functions", function, "aliases"]) => Some(format!("{function}/")),
        _ => None,
    }
}

/// The AWS operation a request calls.
fn operation(method: &str, path: &str, headers: &axum::http::HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    if is_query(body) {
        let text = String::from_utf8_lossy(body);
        if let Some(action) = text
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
        {
            return action.to_owned();
        }
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let name = match (method, segments.as_slice()) {
        ("POST", [_, "functions"]) => "CreateFunction",
        ("GET", [_, "functions"]) => "ListFunctions",
        ("GET", [_, "functions", _]) => "GetFunction",
        ("DELETE", [_, "functions", _]) => "DeleteFunction",
        ("GET", [_, "functions", _, "configuration"]) => "GetFunctionConfiguration",
        ("PUT", [_, "functions", _, "configuration"]) => "UpdateFunctionConfiguration",
        ("PUT", [_, "functions", _, "code"]) => "UpdateFunctionCode",
        ("POST", [_, "functions", _, "versions"]) => "PublishVersion",
        ("GET", [_, "functions", _, "versions"]) => "ListVersionsByFunction",
        ("POST", [_, "functions", _, "aliases"]) => "CreateAlias",
        ("GET", [_, "functions", _, "aliases"]) => "ListAliases",
        ("GET", [_, "functions", _, "aliases", _]) => "GetAlias",
        ("PUT", [_, "functions", _, "aliases", _]) => "UpdateAlias",
        ("DELETE", [_, "functions", _, "aliases", _]) => "DeleteAlias",
        ("POST", [_, "tags", ..]) => "TagResource",
        ("GET", [_, "tags", ..]) => "ListTags",
        ("DELETE", [_, "tags", ..]) => "UntagResource",
        _ => return format!("{method} {path}"),
    };
    name.to_owned()
}

fn is_query(body: &[u8]) -> bool {
    body.starts_with(b"Action=") || body.windows(8).any(|w| w == b"&Action=")
}

fn injected(kind: FaultKind, query: bool) -> Response<Body> {
    let (status, code, message) = match kind {
        FaultKind::Fail => (
            StatusCode::BAD_REQUEST,
            "InjectedFailure",
            "failure injected by the test proxy",
        ),
        FaultKind::Throttle if query => (StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded"),
        FaultKind::Throttle => (
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            "Rate exceeded",
        ),
    };
    if query {
        let body = format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
        );
        return Response::builder()
            .status(status)
            .header("content-type", "text/xml")
            .body(Body::from(body))
            .unwrap();
    }
    lambda_error(status, code, message)
}

fn lambda_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", code)
        .body(Body::from(
            serde_json::json!({ "Type": "User", "message": message }).to_string(),
        ))
        .unwrap()
}

fn plain(status: StatusCode, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(message.to_owned()))
        .unwrap()
}
