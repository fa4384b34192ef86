//! Reports a failed cold start to `POST /2018-06-01/runtime/init/error`.
//!
//! lambda_runtime does this only on the SnapStart path; without it Lambda would log a bare
//! `Runtime.ExitError` and the real reason would be lost.

use http::{Method, Request};
use lambda_runtime_api_client::body::Body;

/// The header that carries the error type on every error post.
const ERROR_TYPE_HEADER: &str = "Lambda-Runtime-Function-Error-Type";

/// Posts `{"errorType", "errorMessage"}` to the Runtime API named by `AWS_LAMBDA_RUNTIME_API`.
/// Returns whether the Runtime API accepted it; a failure here is logged, never fatal.
pub(crate) async fn report(error_type: &str, message: &str) -> bool {
    let Ok(endpoint) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        tracing::warn!("AWS_LAMBDA_RUNTIME_API is not set: the init error is only logged");
        return false;
    };
    match post(&endpoint, error_type, message).await {
        Ok(accepted) => accepted,
        Err(err) => {
            tracing::warn!(error = %err, "could not report the init error to the Runtime API");
            false
        }
    }
}

async fn post(endpoint: &str, error_type: &str, message: &str) -> Result<bool, crate::Error> {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    let client = lambda_runtime_api_client::Client::builder()
        .with_endpoint(format!("http://{endpoint}").parse()?)
        .build()?;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header(ERROR_TYPE_HEADER, error_type)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))?;
    let response = client.call(request).await?;
    Ok(response.status().is_success())
}
