//! A scripted Lambda Runtime API on 127.0.0.1, independent of lambda-stage's emulator, so the
//! framework is proven against a second implementation of the protocol.
//!
//! Tests enqueue invocations with [`RuntimeApi::invoke`] and get back exactly what the function
//! posted; init errors are recorded as they arrive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Mutex};

/// What the function answered to one invocation (`error_type` is the body's `errorType`).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error { error_type: String, body: Value },
}

/// A report posted to `/runtime/init/error`.
#[derive(Debug, Clone, PartialEq)]
pub struct InitError {
    /// The `Lambda-Runtime-Function-Error-Type` header.
    pub header_error_type: String,
    pub body: Value,
}

struct Pending {
    request_id: String,
    arn: String,
    event: Value,
}

#[derive(Clone)]
struct Shared {
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>,
    init_errors: Arc<Mutex<Vec<InitError>>>,
}

pub struct RuntimeApi {
    address: String,
    sender: mpsc::UnboundedSender<Pending>,
    shared: Shared,
    next_id: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start() -> anyhow::Result<RuntimeApi> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Shared {
            queue: Arc::new(Mutex::new(receiver)),
            waiting: Arc::default(),
            init_errors: Arc::default(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RuntimeApi {
            address,
            sender,
            shared,
            next_id: AtomicU64::new(1),
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Delivers `event` as an invocation through `arn` and waits (up to 10 s) for the answer.
    pub async fn invoke(&self, arn: &str, event: Value) -> anyhow::Result<Outcome> {
        let request_id = format!(
            "00000000-0000-4000-8000-{:012}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let (answer, answered) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .await
            .insert(request_id.clone(), answer);
        self.sender
            .send(Pending {
                request_id,
                arn: arn.to_owned(),
                event,
            })
            .map_err(|_| anyhow::anyhow!("runtime API stopped"))?;
        Ok(tokio::time::timeout(Duration::from_secs(10), answered).await??)
    }

    pub async fn init_errors(&self) -> Vec<InitError> {
        self.shared.init_errors.lock().await.clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Shared>) -> Response {
    let Some(pending) = shared.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(3);
    let headers = [
        ("Lambda-Runtime-Aws-Request-Id", pending.request_id),
        (
            "Lambda-Runtime-Deadline-Ms",
            deadline.as_millis().to_string(),
        ),
        ("Lambda-Runtime-Invoked-Function-Arn", pending.arn),
        (
            "Lambda-Runtime-Trace-Id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".to_owned(),
        ),
        ("Content-Type", "application/json".to_owned()),
    ];
    (headers, pending.event.to_string()).into_response()
}

async fn answer(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.waiting.lock().await.remove(id) {
        Some(waiter) => {
            let _ = waiter.send(outcome);
            StatusCode::ACCEPTED
        }
        // Answering twice, or an id that was never handed out: Lambda says 400.
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    answer(&shared, &id, Outcome::Response(body)).await
}

async fn error(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    // lambda_runtime sends `unhandled` in the header; the error type is in the body.
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let outcome = Outcome::Error {
        error_type: body["errorType"].as_str().unwrap_or_default().to_owned(),
        body,
    };
    answer(&shared, &id, outcome).await
}

async fn init_error(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    shared.init_errors.lock().await.push(InitError {
        header_error_type: error_type(&headers),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    StatusCode::ACCEPTED
}

fn error_type(headers: &HeaderMap) -> String {
    headers
        .get("Lambda-Runtime-Function-Error-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
