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
//!
//! `mod.rs` is the proxy tests drive; `handle.rs` is a request's way through it, `operation.rs`
//! names requests, `answers.rs` is what it answers in upstream's place, `revisions.rs` keeps
//! alias revisions and `recorded.rs` the requests as sent.

mod answers;
mod handle;
mod operation;
mod recorded;
mod revisions;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub use answers::FaultKind;
use answers::{Canned, Fault};
pub use operation::is_write;
pub use recorded::RecordedRequest;

/// How long a held call waits for the others ([`FaultProxy::hold`]).
const HOLD_LIMIT: Duration = Duration::from_secs(20);

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

/// What a call meets when it arrives: a fault, a hold or a canned answer set up for it.
struct Arrival {
    fault: Option<FaultKind>,
    hold: Option<Arc<tokio::sync::Barrier>>,
    canned: Option<Canned>,
}

impl Inner {
    /// Counts, logs and records the call `request` and takes what was set up for it (a canned
    /// answer is used once).
    fn arrive(&mut self, request: RecordedRequest) -> Arrival {
        let operation = request.operation.clone();
        let count = {
            let count = self.calls.entry(operation.clone()).or_default();
            *count += 1;
            *count
        };
        self.log.push(operation.clone());
        self.requests.push(request);
        let fault = self
            .faults
            .iter()
            .find(|fault| fault.hits(&operation, count))
            .map(|fault| fault.kind);
        let hold = self.holds.get(&operation).cloned();
        let canned = self
            .canned
            .iter()
            .position(|canned| canned.answers(&operation, count))
            .map(|index| self.canned.remove(index));
        Arrival {
            fault,
            hold,
            canned,
        }
    }
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
            .fallback(handle::handle)
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

#[cfg(test)]
mod tests {
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt as _;

    use super::*;

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
