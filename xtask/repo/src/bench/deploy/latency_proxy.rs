//! A proxy in front of moto that makes Lambda's control plane take the time AWS's takes: every
//! call answers [`Timing::call_latency`] later, and a function stays busy for
//! [`Timing::settle`] after each change Lambda applies asynchronously (`CreateFunction`,
//! `UpdateFunctionCode`, `UpdateFunctionConfiguration`). While it is busy:
//! - the function's configuration reads as AWS shows it then (`State: Pending` while it is being
//!   created, `LastUpdateStatus: InProgress` while an update is applied), in `GetFunction`,
//!   `GetFunctionConfiguration` and the write's own answer; moto answers `Active`/`Successful`
//!   at once;
//! - another update or a `PublishVersion` of it is refused with `409
//!   ResourceConflictException`, as AWS refuses it, so a deploy that does not wait fails here
//!   instead of looking fast.
//!
//! Field names and values are Lambda's REST-JSON `FunctionConfiguration` (moto's answers use the
//! same): `State`, `StateReason`, `StateReasonCode`, `LastUpdateStatus`,
//! `LastUpdateStatusReason`, `LastUpdateStatusReasonCode`; `Version` is `$LATEST` for the
//! unpublished function, the only one a change is applied to.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// How long Lambda takes, as the proxy plays it.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Added to every call before it reaches moto.
    pub call_latency: Duration,
    /// How long a function stays `Pending` / `InProgress` after a change.
    pub settle: Duration,
}

/// What Lambda is still applying to a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `CreateFunction`: `State` is `Pending`.
    Creating,
    /// `UpdateFunctionCode` / `UpdateFunctionConfiguration`: `LastUpdateStatus` is `InProgress`.
    Updating,
}

/// A function's pending change and when Lambda is done with it.
#[derive(Debug, Clone, Copy)]
pub struct Busy {
    pub change: Change,
    pub until: Instant,
}

impl Busy {
    fn at(self, now: Instant) -> Option<Change> {
        (now < self.until).then_some(self.change)
    }
}

/// The proxy, on a free 127.0.0.1 port; stops when dropped.
pub struct LatencyProxy {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    settling_answers: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    timing: Timing,
    client: Client<HttpConnector, Full<Bytes>>,
    /// By function name.
    busy: Arc<Mutex<HashMap<String, Busy>>>,
    calls: Arc<AtomicUsize>,
    settling_answers: Arc<AtomicUsize>,
}

impl LatencyProxy {
    /// Starts the proxy in front of `upstream` (`http://127.0.0.1:<port>`); call within a tokio
    /// runtime, which then serves it.
    pub async fn start(upstream: &str, timing: Timing) -> anyhow::Result<LatencyProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            timing,
            client: Client::builder(TokioExecutor::new()).build_http(),
            busy: Arc::default(),
            calls: Arc::default(),
            settling_answers: Arc::default(),
        };
        let calls = shared.calls.clone();
        let settling_answers = shared.settling_answers.clone();
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(LatencyProxy {
            addr,
            calls,
            settling_answers,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many calls reached the proxy so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// How many answers said `Pending` or `InProgress` so far: proof the deploys met, and
    /// waited out, Lambda's update states.
    pub fn settling_answers(&self) -> usize {
        self.settling_answers.load(Ordering::Relaxed)
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The Lambda calls whose timing the proxy changes; everything else only gets the latency.
#[derive(Debug, PartialEq, Eq)]
enum Call {
    /// `CreateFunction` (the name is in the body).
    Create,
    /// `UpdateFunctionCode` or `UpdateFunctionConfiguration` of the function.
    Update(String),
    PublishVersion(String),
    /// `GetFunction` or `GetFunctionConfiguration`.
    Read(String),
    Other,
}

fn classify(method: &Method, path: &str) -> Call {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let function = |segment: &str| function_name(segment).to_owned();
    match (method.as_str(), segments.as_slice()) {
        ("POST", [_, "functions"]) => Call::Create,
        ("PUT", [_, "functions", name, "code" | "configuration"]) => Call::Update(function(name)),
        ("POST", [_, "functions", name, "versions"]) => Call::PublishVersion(function(name)),
        ("GET", [_, "functions", name] | [_, "functions", name, "configuration"]) => {
            Call::Read(function(name))
        }
        _ => Call::Other,
    }
}

/// The function name in a path segment that holds a name or a (percent-encoded) ARN.
fn function_name(segment: &str) -> &str {
    ["%3Afunction%3A", "%3afunction%3a", ":function:"]
        .iter()
        .find_map(|marker| segment.split_once(marker))
        .map_or(segment, |(_, rest)| {
            rest.split(['%', ':']).next().unwrap_or(rest)
        })
}

async fn handle(State(shared): State<Shared>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 256 * 1024 * 1024).await {
        Ok(body) => body,
        Err(err) => return plain(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    shared.calls.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(shared.timing.call_latency).await;

    let call = classify(&parts.method, parts.uri.path());
    let function = match &call {
        Call::Create => serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
            v["FunctionName"]
                .as_str()
                .map(|name| function_name(name).to_owned())
        }),
        Call::Update(name) | Call::PublishVersion(name) | Call::Read(name) => Some(name.clone()),
        Call::Other => None,
    };
    let busy = function.as_deref().and_then(|name| shared.busy_now(name));
    if let (Call::Update(name) | Call::PublishVersion(name), Some(change)) = (&call, busy) {
        return conflict(name, change);
    }

    let (mut head, answer) = match forward(&shared, &parts, body).await {
        Ok(answered) => answered,
        Err(err) => return plain(StatusCode::BAD_GATEWAY, &format!("{err:#}")),
    };
    if !head.status.is_success() {
        return Response::from_parts(head, Body::from(answer));
    }
    let now = Instant::now();
    let state = match (&call, function) {
        (Call::Create, Some(name)) => Some(shared.start_change(name, Change::Creating, now)),
        (Call::Update(name), _) => Some(shared.start_change(name.clone(), Change::Updating, now)),
        (Call::Read(name), _) => shared.busy.lock().unwrap().get(name).copied(),
        _ => None,
    };
    match settling_answer(&answer, state, now) {
        Some(rewritten) => {
            shared.settling_answers.fetch_add(1, Ordering::Relaxed);
            head.headers.remove("content-length");
            Response::from_parts(head, Body::from(rewritten))
        }
        None => Response::from_parts(head, Body::from(answer)),
    }
}

impl Shared {
    /// The change Lambda is still applying to `function`, if any.
    fn busy_now(&self, function: &str) -> Option<Change> {
        let busy = self.busy.lock().unwrap().get(function).copied();
        busy.and_then(|busy| busy.at(Instant::now()))
    }

    fn start_change(&self, function: String, change: Change, now: Instant) -> Busy {
        let busy = Busy {
            change,
            until: now + self.timing.settle,
        };
        self.busy.lock().unwrap().insert(function, busy);
        busy
    }
}

async fn forward(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    body: Bytes,
) -> anyhow::Result<(axum::http::response::Parts, Bytes)> {
    let uri = format!(
        "{}{}",
        shared.upstream,
        parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
    );
    let mut request = Request::builder().method(parts.method.clone()).uri(uri);
    for (name, value) in &parts.headers {
        if name != "host" {
            request = request.header(name, value);
        }
    }
    let response = shared
        .client
        .request(request.body(Full::new(body))?)
        .await?;
    let (head, body) = response.into_parts();
    Ok((head, body.collect().await?.to_bytes()))
}

/// moto's `answer` (a `FunctionConfiguration`, or a `GetFunction` answer holding one under
/// `Configuration`) as AWS gives it while the function is `busy`; `None` when moto's answer
/// stands as it is: nothing pending at `now`, a published version, or not JSON.
pub fn settling_answer(answer: &[u8], busy: Option<Busy>, now: Instant) -> Option<Vec<u8>> {
    let change = busy?.at(now)?;
    let mut value: Value = serde_json::from_slice(answer).ok()?;
    let config = match value.get_mut("Configuration") {
        Some(nested) => nested,
        None => &mut value,
    };
    // Changes apply to `$LATEST`; a published version (or an alias's) is frozen and settled.
    if config.get("Version")?.as_str()? != "$LATEST" {
        return None;
    }
    let config = config.as_object_mut()?;
    match change {
        Change::Creating => {
            // Until creation completes, AWS reports no LastUpdateStatus at all.
            for field in [
                "LastUpdateStatus",
                "LastUpdateStatusReason",
                "LastUpdateStatusReasonCode",
            ] {
                config.remove(field);
            }
            config.insert("State".into(), "Pending".into());
            config.insert(
                "StateReason".into(),
                "The function is being created.".into(),
            );
            config.insert("StateReasonCode".into(), "Creating".into());
        }
        Change::Updating => {
            config.insert("State".into(), "Active".into());
            config.insert("LastUpdateStatus".into(), "InProgress".into());
            config.insert(
                "LastUpdateStatusReason".into(),
                "The function is being created.".into(),
            );
            config.insert("LastUpdateStatusReasonCode".into(), "Creating".into());
        }
    }
    serde_json::to_vec(&value).ok()
}

/// AWS's answer to changing a function Lambda is still applying a change to.
fn conflict(function: &str, change: Change) -> Response<Body> {
    let message = match change {
        Change::Creating => format!(
            "The operation cannot be performed at this time. The function {function} is \
             currently in the following state: Pending"
        ),
        Change::Updating => format!(
            "The operation cannot be performed at this time. An update is in progress for \
             resource: {function}"
        ),
    };
    Response::builder()
        .status(StatusCode::CONFLICT)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", "ResourceConflictException")
        .body(Body::from(
            serde_json::json!({ "Type": "User", "message": message }).to_string(),
        ))
        .unwrap_or_else(|_| plain(StatusCode::CONFLICT, "ResourceConflictException"))
}

fn plain(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(message.to_owned()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// moto's `GetFunctionConfiguration` answer for an unpublished function, trimmed.
    fn moto_configuration(version: &str) -> Value {
        json!({
            "FunctionName": "bench-deploybench-01",
            "Version": version,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "MemorySize": 128,
            "Environment": { "Variables": { "APP_GREETING": "Hello" } }
        })
    }

    fn rewrite(answer: &Value, change: Change, until: Instant, now: Instant) -> Option<Value> {
        let body = serde_json::to_vec(answer).unwrap();
        settling_answer(&body, Some(Busy { change, until }), now)
            .map(|bytes| serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn an_update_reads_in_progress_until_it_settles() {
        let now = Instant::now();
        let later = now + Duration::from_millis(1500);
        let answer = moto_configuration("$LATEST");

        let rewritten = rewrite(&answer, Change::Updating, later, now).unwrap();
        let mut expected = answer.clone();
        expected["LastUpdateStatus"] = json!("InProgress");
        expected["LastUpdateStatusReason"] = json!("The function is being created.");
        expected["LastUpdateStatusReasonCode"] = json!("Creating");
        assert_eq!(rewritten, expected);

        // From `until` on, moto's answer goes through as it is.
        assert_eq!(rewrite(&answer, Change::Updating, later, later), None);
        assert_eq!(settling_answer(b"{}", None, now), None);
    }

    #[test]
    fn a_new_function_reads_pending_without_a_last_update_status() {
        let now = Instant::now();
        let until = now + Duration::from_secs(1);
        let rewritten = rewrite(&moto_configuration("$LATEST"), Change::Creating, until, now);
        assert_eq!(
            rewritten.unwrap(),
            json!({
                "FunctionName": "bench-deploybench-01",
                "Version": "$LATEST",
                "State": "Pending",
                "StateReason": "The function is being created.",
                "StateReasonCode": "Creating",
                "MemorySize": 128,
                "Environment": { "Variables": { "APP_GREETING": "Hello" } }
            })
        );
    }

    #[test]
    fn get_function_nests_the_configuration() {
        let now = Instant::now();
        let answer = json!({
            "Configuration": moto_configuration("$LATEST"),
            "Code": { "RepositoryType": "S3" },
            "Tags": { "team": "bench" }
        });
        let rewritten = rewrite(&answer, Change::Updating, now + Duration::from_secs(1), now);
        let rewritten = rewritten.unwrap();
        assert_eq!(rewritten["Configuration"]["LastUpdateStatus"], "InProgress");
        assert_eq!(rewritten["Configuration"]["State"], "Active");
        assert_eq!(rewritten["Code"], answer["Code"]);
        assert_eq!(rewritten["Tags"], answer["Tags"]);
    }

    #[test]
    fn published_versions_and_non_json_answers_pass_through() {
        let now = Instant::now();
        let until = now + Duration::from_secs(1);
        assert_eq!(
            rewrite(&moto_configuration("3"), Change::Updating, until, now),
            None
        );
        let busy = Some(Busy {
            change: Change::Creating,
            until,
        });
        assert_eq!(settling_answer(b"<not json>", busy, now), None);
    }

    #[test]
    fn classifies_the_calls_whose_timing_changes() {
        let get = |path| classify(&Method::GET, path);
        assert_eq!(
            classify(&Method::POST, "/2015-03-31/functions"),
            Call::Create
        );
        assert_eq!(
            classify(&Method::PUT, "/2015-03-31/functions/f1/code"),
            Call::Update("f1".into())
        );
        assert_eq!(
            classify(&Method::PUT, "/2015-03-31/functions/f1/configuration"),
            Call::Update("f1".into())
        );
        assert_eq!(
            classify(&Method::POST, "/2015-03-31/functions/f1/versions"),
            Call::PublishVersion("f1".into())
        );
        assert_eq!(get("/2015-03-31/functions/f1"), Call::Read("f1".into()));
        assert_eq!(
            get("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af1%3Astaging/configuration"),
            Call::Read("f1".into())
        );
        assert_eq!(get("/2015-03-31/functions/f1/aliases"), Call::Other);
        assert_eq!(
            classify(&Method::POST, "/2015-03-31/functions/f1/aliases"),
            Call::Other
        );
    }

    /// An upstream that answers every request as moto answers for a settled `$LATEST`.
    async fn settled_upstream() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = moto_configuration("$LATEST").to_string();
        let app = axum::Router::new().fallback(move || async move { answer });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), task)
    }

    async fn send(proxy: &LatencyProxy, method: Method, path: &str, body: &str) -> (u16, Value) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", proxy.endpoint()))
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn a_created_function_is_pending_and_refuses_changes_until_it_settles() {
        let (upstream, upstream_task) = settled_upstream().await;
        let settle = Duration::from_millis(300);
        let timing = Timing {
            call_latency: Duration::ZERO,
            settle,
        };
        let proxy = LatencyProxy::start(&upstream, timing).await.unwrap();
        let functions = "/2015-03-31/functions";
        let configuration = "/2015-03-31/functions/bench-deploybench-01/configuration";
        let publish = "/2015-03-31/functions/bench-deploybench-01/versions";

        let created = send(
            &proxy,
            Method::POST,
            functions,
            r#"{"FunctionName":"bench-deploybench-01"}"#,
        )
        .await;
        assert_eq!((created.0, &created.1["State"]), (200, &json!("Pending")));
        let read = send(&proxy, Method::GET, configuration, "").await;
        assert_eq!(read.1["State"], "Pending");
        let (status, refused) = send(&proxy, Method::POST, publish, "{}").await;
        assert_eq!(status, 409);
        assert!(
            refused["message"].as_str().unwrap().contains("Pending"),
            "{refused}"
        );

        tokio::time::sleep(settle).await;
        let read = send(&proxy, Method::GET, configuration, "").await;
        assert_eq!(read.1, moto_configuration("$LATEST"));
        let updated = send(&proxy, Method::PUT, configuration, "{}").await;
        assert_eq!(updated.1["LastUpdateStatus"], "InProgress");
        let (status, _) = send(&proxy, Method::PUT, configuration, "{}").await;
        assert_eq!(status, 409, "a second update while the first is applied");
        // Another function is not held up.
        let other = send(&proxy, Method::GET, "/2015-03-31/functions/other", "").await;
        assert_eq!(other.1["State"], "Active");
        // The create, the first read, the update; not the refused calls or other functions.
        assert_eq!(proxy.settling_answers(), 3);
        assert_eq!(proxy.calls(), 7, "every call counts, refused ones too");
        upstream_task.abort();
    }
}
