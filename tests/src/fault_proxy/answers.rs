//! What the proxy answers instead of forwarding: an injected fault (a failure or throttling at
//! a chosen call), a canned answer, or an error in the shape the calling protocol expects.

use axum::body::Body;
use axum::http::{Response, StatusCode};

/// What an injected fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A non-retryable client error (`400 InjectedFailure`): the command must stop.
    Fail,
    /// `429 TooManyRequestsException` / `Throttling`: the SDK must retry with backoff.
    Throttle,
}

#[derive(Debug, Clone)]
pub(super) struct Fault {
    pub(super) operation: String,
    /// The first call (1-based) that fails.
    pub(super) nth: usize,
    /// How many consecutive calls fail from there.
    pub(super) times: usize,
    pub(super) kind: FaultKind,
}

impl Fault {
    /// Whether the `call`th call (1-based) of `operation` fails.
    pub(super) fn hits(&self, operation: &str, call: usize) -> bool {
        self.operation == operation && (self.nth..self.nth + self.times).contains(&call)
    }
}

/// An answer given instead of upstream's.
#[derive(Debug, Clone)]
pub(super) struct Canned {
    pub(super) operation: String,
    /// The call it answers (1-based, as [`FaultProxy::calls`](super::FaultProxy::calls)
    /// counts them); `None`: the next.
    pub(super) call: Option<usize>,
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl Canned {
    /// Whether this answers the `call`th call (1-based) of `operation`.
    pub(super) fn answers(&self, operation: &str, call: usize) -> bool {
        self.operation == operation && self.call.is_none_or(|answered| answered == call)
    }

    pub(super) fn response(self) -> Response<Body> {
        let mut response = Response::builder().status(self.status);
        for (name, value) in &self.headers {
            response = response.header(name, value);
        }
        response.body(Body::from(self.body)).unwrap()
    }
}

/// The answer of an injected fault, in the shape of a query-protocol (XML) or a JSON service.
pub(super) fn injected(kind: FaultKind, query: bool) -> Response<Body> {
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

/// A Lambda error: the code in `x-amzn-errortype`, the message in a JSON body.
pub(super) fn lambda_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", code)
        .body(Body::from(
            serde_json::json!({ "Type": "User", "message": message }).to_string(),
        ))
        .unwrap()
}

/// The proxy's own failure (a body it could not read, an upstream it could not reach).
pub(super) fn plain(status: StatusCode, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(message.to_owned()))
        .unwrap()
}
