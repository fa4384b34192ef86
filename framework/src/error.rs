//! Errors an invocation ends with, each with a meaningful Lambda `errorType`
//! ([`crate::error_type`] lists them).

use std::any::Any;
use std::fmt;

use lambda_runtime::Diagnostic;

use crate::config::ConfigError;
use crate::environment::EnvironmentError;
use crate::error_type;
use crate::secrets::SecretError;

/// The error type of handlers: anything that implements `std::error::Error` converts into it
/// with `?`. Return a [`HandlerError`] to choose the `errorType` Lambda reports.
pub type Error = lambda_runtime::Error;

/// A handler error with an explicit `errorType` (e.g. `OrderNotFound`).
#[derive(Debug, Clone)]
pub struct HandlerError {
    /// The `errorType` Lambda reports.
    pub error_type: String,
    /// The `errorMessage`.
    pub message: String,
}

impl HandlerError {
    /// An error whose `errorType` is `error_type`.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        HandlerError {
            error_type: error_type.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for HandlerError {}

/// How an invocation failed, as reported to the Runtime API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationError {
    /// The `errorType`: one of [`crate::error_type`], or a [`HandlerError`]'s own.
    pub error_type: String,
    /// The `errorMessage`: what failed, where, and what to do; never a secret's value.
    pub message: String,
}

impl InvocationError {
    fn new(error_type: &str, message: String) -> Self {
        InvocationError {
            error_type: error_type.to_owned(),
            message,
        }
    }

    pub(crate) fn environment(err: &EnvironmentError) -> Self {
        Self::new(error_type::UNKNOWN_ENVIRONMENT, err.to_string())
    }

    pub(crate) fn config(err: &ConfigError) -> Self {
        Self::new(error_type::CONFIG, err.to_string())
    }

    pub(crate) fn secret(err: &SecretError) -> Self {
        Self::new(error_type::SECRET, err.to_string())
    }

    pub(crate) fn invalid_event<E>(err: &serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at `{path}`")
        };
        Self::new(
            error_type::INVALID_EVENT,
            format!(
                "the event is not a valid `{}`{at}: {}",
                std::any::type_name::<E>(),
                err.inner()
            ),
        )
    }

    pub(crate) fn handler(err: Error) -> Self {
        match err.downcast::<HandlerError>() {
            Ok(typed) => Self::new(&typed.error_type, typed.message),
            Err(err) => Self::new(error_type::HANDLER, err.to_string()),
        }
    }

    pub(crate) fn panic(payload: &(dyn Any + Send)) -> Self {
        Self::new(
            error_type::PANIC,
            format!("the handler panicked: {}", panic_message(payload)),
        )
    }
}

/// What a panic said, when it said it with a string.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

impl fmt::Display for InvocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for InvocationError {}

impl From<InvocationError> for Diagnostic {
    fn from(err: InvocationError) -> Self {
        Diagnostic {
            error_type: err.error_type,
            error_message: err.message,
        }
    }
}
