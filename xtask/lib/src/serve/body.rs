//! Request bodies, read here rather than by axum's extractors (whose 2 MiB default would answer
//! `413 text/plain`, which no AWS client understands): up to [`MAX_BODY_BYTES`] they are kept;
//! a larger body is read to its end without being kept (up to [`MAX_DRAIN_BYTES`], else the
//! answer says `Connection: close`), so a keep-alive client's next request is answered.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use lambda_stage_emulator::MAX_REQUEST_BYTES;

/// The largest request body `serve` reads: Lambda's request limit plus 1 MiB, so that a body
/// just over the limit still reaches the emulator, which refuses it with its exact size. A larger
/// body gets the same refusal (Lambda's `RequestTooLargeException`) without being kept.
pub const MAX_BODY_BYTES: usize = MAX_REQUEST_BYTES + 1024 * 1024;

/// How much of an oversize body `serve` reads (and discards) so that the connection stays in
/// step and a keep-alive client's next request on it is answered. Past this, the refusal closes
/// the connection (`Connection: close`) instead.
pub const MAX_DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// Why a request body was not read.
pub(super) enum BodyError {
    /// Over [`MAX_BODY_BYTES`]: `size` bytes read; `drained`: the whole body was read.
    TooLarge { size: usize, drained: bool },
    /// The body could not be read (the client went away, or sent a broken body).
    Unreadable,
}

impl BodyError {
    /// The answer to the request: `too_large` for an oversize body, else `400`. Unless the whole
    /// body was read, the answer says `Connection: close`, and the server closes the connection
    /// after it: the client must not send its next request there.
    pub(super) fn answer(self, too_large: impl FnOnce(usize) -> Response) -> Response {
        match self {
            BodyError::TooLarge { size, drained } => {
                let mut response = too_large(size);
                if !drained {
                    response
                        .headers_mut()
                        .insert("connection", HeaderValue::from_static("close"));
                }
                response
            }
            BodyError::Unreadable => (
                StatusCode::BAD_REQUEST,
                [("connection", "close")],
                "could not read the request body\n",
            )
                .into_response(),
        }
    }
}

/// The request body, or [`BodyError::TooLarge`] past [`MAX_BODY_BYTES`] (axum's own limit would
/// answer `413 text/plain`, which no AWS client understands). An oversize body is read to its
/// end, up to [`MAX_DRAIN_BYTES`], without being kept: answering before the client has sent it
/// all would leave the rest of it where the connection's next request should be.
pub(super) async fn read_body(mut body: Body) -> Result<Bytes, BodyError> {
    let mut payload = Vec::new();
    let mut size = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Unreadable)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        size += data.len();
        if size <= MAX_BODY_BYTES {
            payload.extend_from_slice(&data);
        } else if size > MAX_DRAIN_BYTES {
            return Err(BodyError::TooLarge {
                size,
                drained: false,
            });
        } else {
            payload = Vec::new();
        }
    }
    if size > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge {
            size,
            drained: true,
        });
    }
    Ok(Bytes::from(payload))
}

pub(super) fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers.get("content-length")?.to_str().ok()?.parse().ok()
}
