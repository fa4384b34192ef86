//! An invocation as the Runtime API hands it to the function at `/next`.

use bytes::Bytes;

use crate::{FunctionConfig, Invocation};

/// What `/next` delivers: the event and the values of its `Lambda-Runtime-*` headers.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) request_id: String,
    pub(crate) payload: Bytes,
    pub(crate) invoked_arn: String,
    pub(crate) trace_id: String,
    pub(crate) client_context: Option<String>,
    pub(crate) cognito_identity: Option<String>,
}

impl Delivery {
    /// The delivery of `invocation` to `config`'s function: a fresh request id and trace id
    /// unless the caller chose them.
    pub(crate) fn new(config: &FunctionConfig, invocation: Invocation) -> Self {
        Self {
            request_id: invocation.request_id.unwrap_or_else(new_request_id),
            invoked_arn: config.arn(invocation.qualifier.as_deref()),
            trace_id: invocation.trace_id.unwrap_or_else(new_trace_id),
            payload: invocation.payload,
            client_context: invocation.client_context,
            cognito_identity: invocation.cognito_identity,
        }
    }
}

/// A random (v4) UUID, as Lambda's request ids are. Ids have to be unique, not unpredictable:
/// they come from a per-thread generator, not from the system's, which costs a syscall each.
pub fn new_request_id() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
        .into_uuid()
        .to_string()
}

/// An X-Ray trace header like Lambda's (`Root=1-<epoch hex>-<96-bit hex>;Parent=<64-bit
/// hex>;Sampled=0`), random like [`new_request_id`].
fn new_trace_id() -> String {
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let root = fastrand::u128(..) >> 32;
    let parent = fastrand::u64(..);
    format!("Root=1-{epoch:08x}-{root:024x};Parent={parent:016x};Sampled=0")
}
