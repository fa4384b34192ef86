//! A small HTTP proxy between the AWS SDK and moto that does what moto does not:
//! fails the Nth call of an operation, throttles, holds calls so two clients really race,
//! enforces alias `RevisionId` preconditions (moto accepts any revision and never changes it),
//! answers `Invoke` of a missing function or alias with AWS's 404 (moto echoes any payload), and
//! gives a canned answer to one call ([`FaultProxy::respond_once`]).
//!
//! Operations are named as in the AWS API (`UpdateAlias`, `PublishVersion`, `CreateRoute`,
//! `GetCallerIdentity`, `PutRule`, ...), recognised from Lambda's and API Gateway v2's REST
//! paths, the `x-amz-target` header of JSON-protocol services (SQS, EventBridge, ...) and the
//! `Action` of STS/IAM query requests. Lambda and API Gateway name their tag operations alike
//! (`TagResource`, `UntagResource`), so their calls count together.
//!
//! Every request is also recorded as it was sent ([`RecordedRequest`]), so tests can check
//! what deploy asked for where moto does not show it (it ignores a function URL's
//! `Qualifier`, for one).

use std::collections::{BTreeMap, HashMap};
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

/// How long a held call waits for the others ([`FaultProxy::hold`]).
const HOLD_LIMIT: Duration = Duration::from_secs(20);

/// Bodies above this size (code zips) are recorded as `<N bytes>` only.
const MAX_RECORDED_BODY: usize = 64 * 1024;

/// One request as the SDK sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The AWS operation name, as in [`FaultProxy::log`].
    pub operation: String,
    pub method: String,
    /// The URL path, percent-decoded (`/v2/apis/abc/stages/$default`).
    pub path: String,
    /// The raw query string, `""` when there is none.
    pub query: String,
    /// The `x-amz-*` headers (`x-amz-log-type`, ...), names in lower case.
    pub amz_headers: BTreeMap<String, String>,
    /// The body as UTF-8 (lossy), or `<N bytes>` when larger than 64 KiB.
    pub body: String,
}

impl RecordedRequest {
    /// The body parsed as JSON; `Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The value of the `x-amz-*` header `name` (any case).
    pub fn amz_header(&self, name: &str) -> Option<&str> {
        self.amz_headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The percent-decoded value of the first query parameter called `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }
}

/// An answer given instead of upstream's.
#[derive(Debug, Clone)]
struct Canned {
    operation: String,
    /// The call it answers (1-based, as [`FaultProxy::calls`] counts them); `None`: the next.
    call: Option<usize>,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

#[derive(Default)]
struct Inner {
    calls: HashMap<String, usize>,
    log: Vec<String>,
    requests: Vec<RecordedRequest>,
    faults: Vec<Fault>,
    canned: Vec<Canned>,
    /// The proxy's own alias revisions, by `<function>/<alias>`.
    revisions: HashMap<String, u64>,
    next_revision: u64,
    holds: HashMap<String, Arc<tokio::sync::Barrier>>,
    /// Operations whose hold ended by its time limit instead of by every call arriving.
    holds_timed_out: Vec<String>,
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

    /// Answers the next call of `operation` with `status`, `headers` and `body` instead of
    /// forwarding it: what moto cannot answer (a function error, a log tail, access denied).
    pub fn respond_once(&self, operation: &str, status: u16, headers: &[(&str, &str)], body: &str) {
        self.respond(operation, None, status, headers, body);
    }

    /// Like [`FaultProxy::respond_once`], for the `nth` call (1-based, counted from now) of
    /// `operation`: a state moto never reports, in the middle of a command.
    pub fn respond_to_call(
        &self,
        operation: &str,
        nth: usize,
        status: u16,
        headers: &[(&str, &str)],
        body: &str,
    ) {
        let seen = self.calls(operation);
        self.respond(operation, Some(seen + nth), status, headers, body);
    }

    fn respond(
        &self,
        operation: &str,
        call: Option<usize>,
        status: u16,
        headers: &[(&str, &str)],
        body: &str,
    ) {
        self.shared.inner.lock().unwrap().canned.push(Canned {
            operation: operation.to_owned(),
            call,
            status,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body: body.to_owned(),
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

    /// Stops holding calls of `operation`.
    pub fn release(&self, operation: &str) {
        self.shared.inner.lock().unwrap().holds.remove(operation);
    }

    /// Whether a held call of `operation` waited out the time limit ([`FaultProxy::hold`])
    /// because the other calls did not come while it waited: they were not in flight together.
    pub fn hold_timed_out(&self, operation: &str) -> bool {
        self.shared
            .inner
            .lock()
            .unwrap()
            .holds_timed_out
            .iter()
            .any(|held| held == operation)
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

    /// Every request so far, in order, as sent.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.inner.lock().unwrap().requests.clone()
    }

    /// The requests of `operation` so far, in order.
    pub fn requests_of(&self, operation: &str) -> Vec<RecordedRequest> {
        let inner = self.shared.inner.lock().unwrap();
        inner
            .requests
            .iter()
            .filter(|request| request.operation == operation)
            .cloned()
            .collect()
    }

    /// Forgets the call counts, the log, the recorded requests and pending faults (alias
    /// revisions stay).
    pub fn reset_counts(&self) {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.calls.clear();
        inner.log.clear();
        inner.requests.clear();
        inner.faults.clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `operation` changes state: anything but Get/List/Describe (and IAM's policy
/// simulation, which only reads). Unrecognised requests,
/// named `<METHOD> <path>`, are judged by their method.
pub fn is_write(operation: &str) -> bool {
    if let Some((method, _)) = operation.split_once(' ') {
        return !matches!(method, "GET" | "HEAD");
    }
    !["Get", "List", "Describe", "Simulate"]
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
    let recorded = RecordedRequest {
        operation: operation.clone(),
        method: parts.method.to_string(),
        path: percent_decode(&path),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        amz_headers: parts
            .headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("x-amz-"))
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: recorded_body(&body),
    };

    let (fault, hold, canned) = {
        let mut inner = shared.inner.lock().unwrap();
        let count = {
            let count = inner.calls.entry(operation.clone()).or_default();
            *count += 1;
            *count
        };
        inner.log.push(operation.clone());
        inner.requests.push(recorded);
        let fault = inner
            .faults
            .iter()
            .find(|f| f.operation == operation && (f.nth..f.nth + f.times).contains(&count))
            .map(|f| f.kind);
        let hold = inner.holds.get(&operation).cloned();
        let canned = inner
            .canned
            .iter()
            .position(|canned| {
                canned.operation == operation && canned.call.is_none_or(|call| call == count)
            })
            .map(|index| inner.canned.remove(index));
        (fault, hold, canned)
    };
    if let Some(kind) = fault {
        return injected(kind, query);
    }
    if let Some(canned) = canned {
        return canned_response(canned);
    }
    if operation == "Invoke" {
        if let Some(not_found) = missing_invoke_target(&shared, &parts).await {
            return not_found;
        }
    }
    if let Some(barrier) = hold {
        if tokio::time::timeout(HOLD_LIMIT, barrier.wait())
            .await
            .is_err()
        {
            shared
                .inner
                .lock()
                .unwrap()
                .holds_timed_out
                .push(operation.clone());
        }
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

fn canned_response(canned: Canned) -> Response<Body> {
    let mut response = Response::builder().status(canned.status);
    for (name, value) in &canned.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(canned.body)).unwrap()
}

/// moto's answer to reading the function (and qualifier) an `Invoke` names, when moto does not
/// have it: a 404 `ResourceNotFoundException` "Function not found: <arn>", as AWS answers the
/// invoke itself (moto's Lambda without Docker echoes any invoke).
async fn missing_invoke_target(
    shared: &Shared,
    parts: &axum::http::request::Parts,
) -> Option<Response<Body>> {
    let [version, "functions", function, "invocations"] = parts
        .uri
        .path()
        .trim_matches('/')
        .split('/')
        .collect::<Vec<_>>()[..]
    else {
        return None;
    };
    let qualifier = parts
        .uri
        .query()
        .and_then(|query| query.split('&').find(|pair| pair.starts_with("Qualifier=")))
        .map_or_else(String::new, |pair| format!("?{pair}"));
    let mut read = Request::builder().method("GET").uri(format!(
        "{}/{version}/functions/{function}{qualifier}",
        shared.upstream
    ));
    // moto finds the region in the signature's credential scope.
    if let Some(authorization) = parts.headers.get("authorization") {
        read = read.header("authorization", authorization);
    }
    let response = shared
        .client
        .request(read.body(Full::new(Bytes::new())).ok()?)
        .await
        .ok()?;
    if response.status().is_success() {
        return None;
    }
    let (head, body) = response.into_parts();
    let body = body.collect().await.ok()?.to_bytes();
    Some(Response::from_parts(head, Body::from(body)))
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
    // Matched on the raw path, so an escaped `/` in an ARN stays inside its segment. Trimming
    // the slashes also accepts `/2015-03-31/event-source-mappings/` with or without the last.
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let ["v2", rest @ ..] = segments.as_slice() {
        if let Some(name) = api_gateway_v2_operation(method, rest) {
            return name.to_owned();
        }
    }
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
        ("POST", [_, "functions", _, "policy"]) => "AddPermission",
        ("GET", [_, "functions", _, "policy"]) => "GetPolicy",
        ("DELETE", [_, "functions", _, "policy", _]) => "RemovePermission",
        ("POST", [_, "functions", _, "url"]) => "CreateFunctionUrlConfig",
        ("GET", [_, "functions", _, "url"]) => "GetFunctionUrlConfig",
        ("PUT", [_, "functions", _, "url"]) => "UpdateFunctionUrlConfig",
        ("DELETE", [_, "functions", _, "url"]) => "DeleteFunctionUrlConfig",
        ("POST", [_, "functions", _, "invocations"]) => "Invoke",
        ("POST", [_, "event-source-mappings"]) => "CreateEventSourceMapping",
        ("GET", [_, "event-source-mappings"]) => "ListEventSourceMappings",
        ("GET", [_, "event-source-mappings", _]) => "GetEventSourceMapping",
        ("PUT", [_, "event-source-mappings", _]) => "UpdateEventSourceMapping",
        ("DELETE", [_, "event-source-mappings", _]) => "DeleteEventSourceMapping",
        ("POST", [_, "tags", ..]) => "TagResource",
        ("GET", [_, "tags", ..]) => "ListTags",
        ("DELETE", [_, "tags", ..]) => "UntagResource",
        _ => return format!("{method} {path}"),
    };
    name.to_owned()
}

/// API Gateway v2 operations, from the path segments after `/v2/`.
fn api_gateway_v2_operation(method: &str, segments: &[&str]) -> Option<&'static str> {
    let name = match (method, segments) {
        ("POST", ["apis"]) => "CreateApi",
        ("GET", ["apis"]) => "GetApis",
        ("GET", ["apis", _]) => "GetApi",
        ("PATCH", ["apis", _]) => "UpdateApi",
        ("DELETE", ["apis", _]) => "DeleteApi",
        ("POST", ["apis", _, "integrations"]) => "CreateIntegration",
        ("GET", ["apis", _, "integrations"]) => "GetIntegrations",
        ("GET", ["apis", _, "integrations", _]) => "GetIntegration",
        ("PATCH", ["apis", _, "integrations", _]) => "UpdateIntegration",
        ("DELETE", ["apis", _, "integrations", _]) => "DeleteIntegration",
        ("POST", ["apis", _, "routes"]) => "CreateRoute",
        ("GET", ["apis", _, "routes"]) => "GetRoutes",
        ("GET", ["apis", _, "routes", _]) => "GetRoute",
        ("PATCH", ["apis", _, "routes", _]) => "UpdateRoute",
        ("DELETE", ["apis", _, "routes", _]) => "DeleteRoute",
        ("POST", ["apis", _, "stages"]) => "CreateStage",
        ("GET", ["apis", _, "stages"]) => "GetStages",
        ("GET", ["apis", _, "stages", _]) => "GetStage",
        ("PATCH", ["apis", _, "stages", _]) => "UpdateStage",
        ("DELETE", ["apis", _, "stages", _]) => "DeleteStage",
        ("POST", ["tags", ..]) => "TagResource",
        ("GET", ["tags", ..]) => "GetTags",
        ("DELETE", ["tags", ..]) => "UntagResource",
        _ => return None,
    };
    Some(name)
}

fn recorded_body(body: &[u8]) -> String {
    if body.len() > MAX_RECORDED_BODY {
        format!("<{} bytes>", body.len())
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

/// Decodes `%XX` escapes; a `+` stays a plus (the AWS SDKs escape spaces as `%20`).
fn percent_decode(text: &str) -> String {
    let hex = |digit: u8| (digit as char).to_digit(16);
    let mut decoded = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let [first, tail @ ..] = rest {
        if let [b'%', high, low, after @ ..] = rest {
            if let (Some(high), Some(low)) = (hex(*high), hex(*low)) {
                decoded.push((high * 16 + low) as u8);
                rest = after;
                continue;
            }
        }
        decoded.push(*first);
        rest = tail;
    }
    String::from_utf8_lossy(&decoded).into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    /// The operation of `"<METHOD> <path>"` with a JSON body and no target header.
    fn rest_operation(request: &str) -> String {
        let (method, path) = request.split_once(' ').unwrap();
        operation(method, path, &HeaderMap::new(), b"{}")
    }

    /// Checks cases written `"<METHOD> <path> => <operation>"`.
    fn assert_operations(cases: &[&str]) {
        for case in cases {
            let (request, expected) = case.split_once(" => ").unwrap();
            assert_eq!(rest_operation(request), expected, "{request}");
        }
    }

    fn target_operation(target: &str) -> String {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", target.parse().unwrap());
        operation("POST", "/", &headers, b"{}")
    }

    #[test]
    fn names_lambda_permission_url_and_mapping_operations() {
        let cases = [
            "POST /2015-03-31/functions/demo/policy => AddPermission",
            "GET /2015-03-31/functions/demo/policy => GetPolicy",
            "DELETE /2015-03-31/functions/demo/policy/apigw => RemovePermission",
            "POST /2021-10-31/functions/demo/url => CreateFunctionUrlConfig",
            "GET /2021-10-31/functions/demo/url => GetFunctionUrlConfig",
            "PUT /2021-10-31/functions/demo/url => UpdateFunctionUrlConfig",
            "DELETE /2021-10-31/functions/demo/url => DeleteFunctionUrlConfig",
            "POST /2015-03-31/functions/demo/invocations => Invoke",
            "POST /2015-03-31/event-source-mappings/ => CreateEventSourceMapping",
            "POST /2015-03-31/event-source-mappings => CreateEventSourceMapping",
            "GET /2015-03-31/event-source-mappings/ => ListEventSourceMappings",
            "GET /2015-03-31/event-source-mappings => ListEventSourceMappings",
            "GET /2015-03-31/event-source-mappings/4f1c => GetEventSourceMapping",
            "PUT /2015-03-31/event-source-mappings/4f1c => UpdateEventSourceMapping",
            "DELETE /2015-03-31/event-source-mappings/4f1c => DeleteEventSourceMapping",
            "POST /2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1 => TagResource",
            "GET /2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1 => ListTags",
            "DELETE /2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1 => UntagResource",
            // The alias paths still resolve next to the new ones.
            "PUT /2015-03-31/functions/demo/aliases/live => UpdateAlias",
        ];
        assert_operations(&cases);
    }

    #[test]
    fn names_api_gateway_v2_operations() {
        let cases = [
            "POST /v2/apis => CreateApi",
            "GET /v2/apis => GetApis",
            "GET /v2/apis/a1b2 => GetApi",
            "PATCH /v2/apis/a1b2 => UpdateApi",
            "DELETE /v2/apis/a1b2 => DeleteApi",
            "POST /v2/apis/a1b2/integrations => CreateIntegration",
            "GET /v2/apis/a1b2/integrations => GetIntegrations",
            "GET /v2/apis/a1b2/integrations/i9 => GetIntegration",
            "PATCH /v2/apis/a1b2/integrations/i9 => UpdateIntegration",
            "DELETE /v2/apis/a1b2/integrations/i9 => DeleteIntegration",
            "POST /v2/apis/a1b2/routes => CreateRoute",
            "GET /v2/apis/a1b2/routes => GetRoutes",
            "GET /v2/apis/a1b2/routes/r7 => GetRoute",
            "PATCH /v2/apis/a1b2/routes/r7 => UpdateRoute",
            "DELETE /v2/apis/a1b2/routes/r7 => DeleteRoute",
            "POST /v2/apis/a1b2/stages => CreateStage",
            "GET /v2/apis/a1b2/stages => GetStages",
            "GET /v2/apis/a1b2/stages/%24default => GetStage",
            "PATCH /v2/apis/a1b2/stages/%24default => UpdateStage",
            "DELETE /v2/apis/a1b2/stages/$default => DeleteStage",
            "POST /v2/tags/arn%3Aaws%3Aapigateway%3A%3A%2Fapis%2Fa1b2 => TagResource",
            // An unescaped ARN spreads over several segments; still the same operation.
            "GET /v2/tags/arn:aws:apigateway:us-east-1::/apis/a1b2 => GetTags",
            "DELETE /v2/tags/arn%3Aaws%3Aapigateway => UntagResource",
        ];
        assert_operations(&cases);
    }

    #[test]
    fn names_sqs_and_eventbridge_operations_from_their_target() {
        assert_eq!(target_operation("AmazonSQS.CreateQueue"), "CreateQueue");
        assert_eq!(target_operation("AmazonSQS.GetQueueUrl"), "GetQueueUrl");
        // SQS's older query protocol names the operation in the body instead.
        let query_body = b"Action=CreateQueue&QueueName=demo-jobs&Version=2012-11-05";
        assert_eq!(
            operation("POST", "/", &HeaderMap::new(), query_body),
            "CreateQueue"
        );
        assert_eq!(target_operation("AWSEvents.PutRule"), "PutRule");
        assert_eq!(target_operation("AWSEvents.PutTargets"), "PutTargets");
        assert_eq!(
            target_operation("AWSEvents.ListTargetsByRule"),
            "ListTargetsByRule"
        );
    }

    #[test]
    fn unrecognised_requests_are_named_by_method_and_path() {
        assert_eq!(rest_operation("GET /v2/domainnames"), "GET /v2/domainnames");
    }

    #[test]
    fn classifies_reads_and_writes() {
        for read in [
            "GetApis",
            "GetRoutes",
            "GetPolicy",
            "GetFunctionUrlConfig",
            "ListEventSourceMappings",
            "ListTargetsByRule",
            "DescribeRule",
            "GetQueueUrl",
            "SimulatePrincipalPolicy",
            "GET /v2/domainnames",
        ] {
            assert!(!is_write(read), "{read} is a read");
        }
        for write in [
            "PutRule",
            "PutTargets",
            "AddPermission",
            "RemovePermission",
            "CreateQueue",
            "CreateEventSourceMapping",
            "UpdateStage",
            "TagResource",
            "POST /v2/domainnames",
        ] {
            assert!(is_write(write), "{write} is a write");
        }
    }

    #[test]
    fn decodes_percent_escapes_only() {
        assert_eq!(percent_decode("%24default"), "$default");
        assert_eq!(percent_decode("arn%3Aaws%2Fx"), "arn:aws/x");
        assert_eq!(percent_decode("a+b%20c"), "a+b c");
        // Malformed escapes are kept as written.
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn records_large_bodies_as_their_size() {
        assert_eq!(recorded_body(b"{\"a\":1}"), "{\"a\":1}");
        let zip = vec![0u8; MAX_RECORDED_BODY + 1];
        assert_eq!(
            recorded_body(&zip),
            format!("<{} bytes>", MAX_RECORDED_BODY + 1)
        );
    }

    #[test]
    fn recorded_request_helpers() {
        let request = RecordedRequest {
            operation: "CreateFunctionUrlConfig".to_owned(),
            method: "POST".to_owned(),
            path: "/2021-10-31/functions/demo-hello/url".to_owned(),
            query: "Qualifier=staging&Note=a%20b".to_owned(),
            amz_headers: BTreeMap::from([("x-amz-log-type".to_owned(), "Tail".to_owned())]),
            body: r#"{"AuthType":"NONE"}"#.to_owned(),
        };
        assert_eq!(request.query_param("Qualifier").as_deref(), Some("staging"));
        assert_eq!(request.query_param("Note").as_deref(), Some("a b"));
        assert_eq!(request.query_param("Missing"), None);
        assert_eq!(request.amz_header("X-Amz-Log-Type"), Some("Tail"));
        assert_eq!(request.amz_header("X-Amz-Client-Context"), None);
        assert_eq!(request.json()["AuthType"], "NONE");
        let not_json = RecordedRequest {
            body: "<4096 bytes>".to_owned(),
            query: String::new(),
            ..request
        };
        assert_eq!(not_json.json(), Value::Null);
        assert_eq!(not_json.query_param("Qualifier"), None);
    }

    /// Starts an upstream that answers every request with `200 {}`.
    async fn ok_upstream() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(|| async { "{}" });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), task)
    }

    async fn send(proxy: &FaultProxy, method: &str, path_and_query: &str, body: &str) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", proxy.endpoint()))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{method} {path_and_query}"
        );
    }

    #[tokio::test]
    async fn records_what_each_request_sent() {
        let (upstream, upstream_task) = ok_upstream().await;
        let proxy = FaultProxy::start(&upstream).await.unwrap();

        let permission = r#"{"StatementId":"apigw-invoke","Action":"lambda:InvokeFunction","Principal":"apigateway.amazonaws.com"}"#;
        send(
            &proxy,
            "POST",
            "/2015-03-31/functions/demo-hello/policy?Qualifier=staging",
            permission,
        )
        .await;
        send(&proxy, "DELETE", "/v2/apis/a1b2c3/stages/%24default", "").await;

        let added = proxy.requests_of("AddPermission");
        assert_eq!(added.len(), 1);
        let added = &added[0];
        assert_eq!(added.method, "POST");
        assert_eq!(added.path, "/2015-03-31/functions/demo-hello/policy");
        assert_eq!(added.query, "Qualifier=staging");
        assert_eq!(added.query_param("Qualifier").as_deref(), Some("staging"));
        assert_eq!(added.body, permission);
        assert_eq!(added.json()["StatementId"], "apigw-invoke");

        let all = proxy.requests();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].operation, "DeleteStage");
        assert_eq!(all[1].path, "/v2/apis/a1b2c3/stages/$default");
        assert_eq!(all[1].query, "");
        assert_eq!(proxy.log(), ["AddPermission", "DeleteStage"]);

        proxy.reset_counts();
        assert!(proxy.requests().is_empty());
        upstream_task.abort();
    }

    #[tokio::test]
    async fn answers_one_call_with_a_canned_response() {
        let (upstream, upstream_task) = ok_upstream().await;
        let proxy = FaultProxy::start(&upstream).await.unwrap();
        proxy.respond_once(
            "Invoke",
            200,
            &[("x-amz-function-error", "Unhandled")],
            r#"{"errorType":"HandlerError"}"#,
        );
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let invoke = || {
            Request::builder()
                .method("POST")
                .uri(format!(
                    "{}/2015-03-31/functions/demo/invocations?Qualifier=staging",
                    proxy.endpoint()
                ))
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap()
        };
        let canned = client.request(invoke()).await.unwrap();
        assert_eq!(canned.headers()["x-amz-function-error"], "Unhandled");
        let body = canned.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"errorType":"HandlerError"}"#);
        // Only once: the next call reaches upstream.
        let forwarded = client.request(invoke()).await.unwrap();
        assert!(!forwarded.headers().contains_key("x-amz-function-error"));
        assert_eq!(proxy.calls("Invoke"), 2);
        upstream_task.abort();
    }
}
