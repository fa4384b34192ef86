//! Errors an invocation ends with, each with a meaningful Lambda `errorType`.

use std::any::Any;
use std::fmt;

use lambda_runtime::Diagnostic;

/// The error type of handlers: anything that implements `std::error::Error` converts into it
/// with `?`. Return a [`HandlerError`] to choose the `errorType` Lambda reports.
pub type Error = lambda_runtime::Error;

/// A handler error with an explicit `errorType` (e.g. `OrderNotFound`).
#[derive(Debug, Clone)]
pub struct HandlerError {
    pub error_type: String,
    pub message: String,
}

impl HandlerError {
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
    pub error_type: String,
    pub message: String,
}

impl InvocationError {
    fn new(error_type: &str, message: String) -> Self {
        InvocationError {
            error_type: error_type.to_owned(),
            message,
        }
    }

    pub(crate) fn environment(err: &crate::environment::EnvironmentError) -> Self {
        Self::new("LambdaStage.UnknownEnvironment", err.to_string())
    }

    pub(crate) fn config(err: &crate::config::ConfigError) -> Self {
        Self::new(crate::stage::InitError::ERROR_TYPE, err.to_string())
    }

    pub(crate) fn invalid_event<E>(err: &serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at `{path}`")
        };
        Self::new(
            "LambdaStage.InvalidEvent",
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
            Err(err) => Self::new("HandlerError", err.to_string()),
        }
    }

    pub(crate) fn panic(payload: &(dyn Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the handler panicked".to_owned());
        Self::new(
            "LambdaStage.Panic",
            format!("the handler panicked: {message}"),
        )
    }
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
