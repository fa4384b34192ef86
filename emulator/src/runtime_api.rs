//! One sandbox's Runtime API (`/2018-06-01/runtime/...`), as the bootstrap process sees it.
//!
//! The server only moves data: it hands the sandbox's pending invocation to `/next` and reports
//! every call to the sandbox driver as a [`SandboxEvent`]; the driver decides the outcome.
//!
//! It is plain hyper (HTTP/1.1, the only version a runtime speaks) with a `match` on the four
//! paths: every invocation makes two of these calls, and a router's layers cost more than the
//! rest of the call.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::delivery::Delivery;
use crate::MAX_RESPONSE_BYTES;

/// What the runtime did, in the order it did it.
#[derive(Debug)]
pub(crate) enum SandboxEvent {
    /// The runtime asked for its first event: init is over.
    Initialized {
        at: Instant,
    },
    /// The runtime received the invocation; its deadline starts now.
    Taken {
        request_id: String,
        deadline: Instant,
    },
    Response {
        request_id: String,
        body: Bytes,
    },
    Error {
        request_id: String,
        error_type: String,
        body: Bytes,
    },
    ResponseTooLarge {
        request_id: String,
        size: usize,
    },
    InitError {
        error_type: String,
        body: Bytes,
    },
    /// The process ended (`None`: its status could not be read).
    Exited(Option<std::process::ExitStatus>),
}

pub(crate) struct ApiState {
    deliveries: tokio::sync::Mutex<mpsc::Receiver<Arc<Delivery>>>,
    /// The request id delivered and not answered yet: answers for any other id are refused.
    current: Mutex<Option<String>>,
    events: mpsc::UnboundedSender<SandboxEvent>,
    timeout: Duration,
    initialized: AtomicBool,
}

impl ApiState {
    pub(crate) fn new(
        deliveries: mpsc::Receiver<Arc<Delivery>>,
        events: mpsc::UnboundedSender<SandboxEvent>,
        timeout: Duration,
    ) -> Self {
        Self {
            deliveries: tokio::sync::Mutex::new(deliveries),
            current: Mutex::new(None),
            events,
            timeout,
            initialized: AtomicBool::new(false),
        }
    }

    fn report(&self, event: SandboxEvent) {
        // The driver may be gone (the sandbox is being torn down); nobody is left to tell.
        let _ = self.events.send(event);
    }

    /// Marks `request_id` answered; false when it is not the invocation in flight.
    fn answer(&self, request_id: &str) -> bool {
        let mut current = self.current.lock().expect("current invocation");
        if current.as_deref() == Some(request_id) {
            *current = None;
            true
        } else {
            false
        }
    }
}

/// Serves the Runtime API on `listener` until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, state: Arc<ApiState>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors or the like: give others time to close theirs. A runtime
            // left unanswered meanwhile is the driver's deadlines' business.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(route(&state, request).await) }
            });
            // A connection that breaks concerns only the runtime that opened it.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

type ApiResponse = Response<Full<Bytes>>;

/// The four calls a runtime makes; the request ids are percent-decoded.
enum Call {
    Next,
    Response(String),
    Error(String),
    InitError,
}

async fn route(state: &ApiState, request: Request<Incoming>) -> ApiResponse {
    let path = request.uri().path();
    let request_id = |id: &str| {
        percent_encoding::percent_decode_str(id)
            .decode_utf8_lossy()
            .into_owned()
    };
    let call = match path.strip_prefix("/2018-06-01/runtime/") {
        Some("invocation/next") => Call::Next,
        Some("init/error") => Call::InitError,
        Some(route) => match route
            .strip_prefix("invocation/")
            .and_then(|rest| rest.split_once('/'))
        {
            Some((id, "response")) => Call::Response(request_id(id)),
            Some((id, "error")) => Call::Error(request_id(id)),
            _ => return not_found(path),
        },
        None => return not_found(path),
    };
    let method = match call {
        Call::Next => Method::GET,
        _ => Method::POST,
    };
    if request.method() != method {
        return api_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "InvalidRequest",
            &format!("{path} takes {method}, not {}", request.method()),
        );
    }
    match call {
        Call::Next => next(state).await,
        Call::Response(id) => response(state, id, request).await,
        Call::Error(id) => error(state, id, request).await,
        Call::InitError => init_error(state, request).await,
    }
}

async fn next(state: &ApiState) -> ApiResponse {
    if !state.initialized.swap(true, Ordering::SeqCst) {
        state.report(SandboxEvent::Initialized { at: Instant::now() });
    }
    let delivery = state.deliveries.lock().await.recv().await;
    let Some(delivery) = delivery else {
        return api_error(
            StatusCode::GONE,
            "ServiceShutdown",
            "The execution environment is shutting down",
        );
    };
    let deadline_ms = (SystemTime::now() + state.timeout)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    *state.current.lock().expect("current invocation") = Some(delivery.request_id.clone());
    state.report(SandboxEvent::Taken {
        request_id: delivery.request_id.clone(),
        deadline: Instant::now() + state.timeout,
    });

    let mut response = Response::new(Full::new(delivery.payload.clone()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &delivery.request_id);
    set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &delivery.invoked_arn);
    set("lambda-runtime-trace-id", &delivery.trace_id);
    if let Some(client_context) = &delivery.client_context {
        set("lambda-runtime-client-context", client_context);
    }
    if let Some(identity) = &delivery.cognito_identity {
        set("lambda-runtime-cognito-identity", identity);
    }
    response
}

async fn response(state: &ApiState, request_id: String, request: Request<Incoming>) -> ApiResponse {
    let body = match read_limited(request.into_body()).await {
        Ok(body) => body,
        Err(err) => return unreadable(err),
    };
    if !state.answer(&request_id) {
        return invalid_request_id();
    }
    match body {
        Ok(body) => {
            state.report(SandboxEvent::Response { request_id, body });
            accepted()
        }
        Err(size) => {
            state.report(SandboxEvent::ResponseTooLarge { request_id, size });
            api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
            )
        }
    }
}

async fn error(state: &ApiState, request_id: String, request: Request<Incoming>) -> ApiResponse {
    let (parts, body) = request.into_parts();
    let body = match read_limited(body).await {
        Ok(body) => body,
        Err(err) => return unreadable(err),
    };
    if !state.answer(&request_id) {
        return invalid_request_id();
    }
    let (error_type, body) = error_report(&parts.headers, body);
    state.report(SandboxEvent::Error {
        request_id,
        error_type,
        body,
    });
    accepted()
}

async fn init_error(state: &ApiState, request: Request<Incoming>) -> ApiResponse {
    let (parts, body) = request.into_parts();
    let body = match read_limited(body).await {
        Ok(body) => body,
        Err(err) => return unreadable(err),
    };
    if state.initialized.load(Ordering::SeqCst) {
        return api_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "State transition from Ready to InitError failed for runtime: init is already over",
        );
    }
    let (error_type, body) = error_report(&parts.headers, body);
    state.report(SandboxEvent::InitError { error_type, body });
    accepted()
}

/// The error type (the body's `errorType`, else `Lambda-Runtime-Function-Error-Type`) and the
/// error JSON Lambda hands the invoker.
///
/// The body comes first: its `errorType` is the one the function chose and the one the invoker
/// reads, while lambda_runtime's header says `unhandled` for every error it reports.
fn error_report(headers: &HeaderMap, body: Result<Bytes, usize>) -> (String, Bytes) {
    let from_header = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = body.unwrap_or_else(|size| {
        let message = format!(
            "The runtime's error report was {size} bytes, over the {MAX_RESPONSE_BYTES}-byte limit"
        );
        Bytes::from(json!({"errorType": "Runtime.Unknown", "errorMessage": message}).to_string())
    });
    let from_body = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value.get("errorType")?.as_str().map(str::to_owned));
    let error_type = from_body
        .or(from_header)
        .unwrap_or_else(|| "Unhandled".to_owned());
    (error_type, body)
}

/// Reads the whole body; keeps it only up to [`MAX_RESPONSE_BYTES`] (`Err(size)` beyond), and
/// drains the rest so the runtime's connection stays usable, as Lambda's does.
async fn read_limited(mut body: Incoming) -> Result<Result<Bytes, usize>, hyper::Error> {
    let mut kept = BytesMut::new();
    let mut size = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            size += data.len();
            if size <= MAX_RESPONSE_BYTES {
                kept.extend_from_slice(&data);
            } else if !kept.is_empty() {
                kept = BytesMut::new();
            }
        }
    }
    Ok(if size <= MAX_RESPONSE_BYTES {
        Ok(kept.freeze())
    } else {
        Err(size)
    })
}

/// The answer to every accepted `/response` and `/error`: the same bytes each time.
fn accepted() -> ApiResponse {
    json_bytes(
        StatusCode::ACCEPTED,
        Bytes::from_static(br#"{"status":"OK"}"#),
    )
}

fn invalid_request_id() -> ApiResponse {
    api_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        "Invalid request ID: it is not the invocation in flight (never delivered, or already answered)",
    )
}

fn unreadable(err: hyper::Error) -> ApiResponse {
    api_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
        &format!("could not read the request body: {err}"),
    )
}

fn not_found(path: &str) -> ApiResponse {
    api_error(
        StatusCode::NOT_FOUND,
        "InvalidRequest",
        &format!("{path} is not a Runtime API path (they start with /2018-06-01/runtime/)"),
    )
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> ApiResponse {
    json_response(
        status,
        &json!({"errorType": error_type, "errorMessage": message}),
    )
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> ApiResponse {
    json_bytes(status, Bytes::from(body.to_string()))
}

fn json_bytes(status: StatusCode, body: Bytes) -> ApiResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
