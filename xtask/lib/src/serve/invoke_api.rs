//! Lambda's Invoke API, `POST /2015-03-31/functions/<name>[:<qualifier>]/invocations`, answered
//! as Lambda answers it (see the module doc of `serve`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use lambda_stage_emulator::{Invocation, InvokeError};
use serde_json::json;

use super::body::{content_length, read_body};
use super::Shared;

/// `arn:aws:lambda:<region>:<account>:function:<name>[:<q>]`, `<account>:function:<name>[:<q>]`
/// or `<name>[:<q>]` → (name, qualifier).
fn parse_function_name(text: &str) -> (&str, Option<&str>) {
    let bare = match text.find("function:") {
        Some(at) => &text[at + "function:".len()..],
        None => text,
    };
    match bare.split_once(':') {
        Some((name, qualifier)) => (name, Some(qualifier)),
        None => (bare, None),
    }
}

/// An Invoke API error as Lambda sends it: the type in `X-Amzn-ErrorType`, the message in the body.
pub(super) fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = json!({ "Type": "User", "message": message });
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(error_type) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

pub(super) async fn invoke_api(
    State(shared): State<Arc<Shared>>,
    UrlPath(function): UrlPath<String>,
    Query(query): Query<BTreeMap<String, String>>,
    request: axum::extract::Request,
) -> Response {
    // The request taken apart rather than a `HeaderMap` extractor, which would copy the headers.
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let payload = match read_body(body).await {
        Ok(payload) => payload,
        Err(err) => {
            return err.answer(|read| {
                let size = content_length(&headers).unwrap_or(read);
                invoke_error(&InvokeError::RequestTooLarge { size })
            })
        }
    };
    let (name, name_qualifier) = parse_function_name(&function);
    let qualifier = query
        .get("Qualifier")
        .map(String::as_str)
        .or(name_qualifier);
    let Some((function, env)) = shared.resolve(name, qualifier) else {
        let arn = format!(
            "arn:aws:lambda:{}:{}:function:{}{}",
            shared.region(&shared.default_env),
            lambda_stage_emulator::ACCOUNT_ID,
            name,
            qualifier.map(|q| format!(":{q}")).unwrap_or_default()
        );
        return aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {arn}"),
        );
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let payload = if payload.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        payload
    };
    if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            &format!("Could not parse request body into json: {err}"),
        );
    }
    let client_context = match header("x-amz-client-context") {
        None => None,
        Some(encoded) => match base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
        {
            Some(context) => Some(context),
            None => {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    "Client context must be a valid Base64-encoded JSON object.",
                )
            }
        },
    };
    let (plan, emulator) = match shared.emulator(function, &env) {
        Ok(running) => running,
        Err(err) => {
            return aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                &format!("{err:#}"),
            )
        }
    };
    let request_id = lambda_stage_emulator::new_request_id();
    let invocation = Invocation {
        qualifier: qualifier
            .filter(|q| *q != "$LATEST")
            .map(str::to_owned)
            .or(plan.qualifier.clone()),
        client_context,
        request_id: Some(request_id.clone()),
        ..Invocation::new(payload)
    };
    match header("x-amz-invocation-type").unwrap_or("RequestResponse") {
        "RequestResponse" => {}
        "Event" => {
            let name = function.key.clone();
            let in_flight = Arc::clone(&shared.in_flight);
            let tracked = in_flight.track(format!(
                "asynchronous invocation of `{name}` in `{env}` (request {request_id})"
            ));
            tokio::spawn(async move {
                let _tracked = tracked;
                tokio::select! {
                    invoked = emulator.invoke(invocation) => if let Err(err) = invoked {
                        eprintln!("serve: asynchronous invocation of `{name}` failed: {err}");
                    },
                    // Its process is stopped with the others; the stop names it.
                    _ = in_flight.cut_off_reason() => {}
                }
            });
            return (StatusCode::ACCEPTED, [("x-amzn-requestid", request_id)]).into_response();
        }
        "DryRun" => return StatusCode::NO_CONTENT.into_response(),
        other => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!(
                    "Unsupported invocation type {other}: use RequestResponse, Event or DryRun"
                ),
            )
        }
    }
    let (outcome, log_tail) = match emulator.invoke_with_log(invocation).await {
        Ok(invoked) => invoked,
        Err(err) => return invoke_error(&err),
    };
    let mut response = (StatusCode::OK, outcome.payload().clone()).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert("content-type", HeaderValue::from_static("application/json"));
    response_headers.insert(
        "x-amz-executed-version",
        HeaderValue::from_static(lambda_stage_emulator::VERSION),
    );
    if let Some(function_error) = outcome.function_error() {
        response_headers.insert(
            "x-amz-function-error",
            HeaderValue::from_static(function_error),
        );
    }
    if header("x-amz-log-type") == Some("Tail") {
        let tail = base64::engine::general_purpose::STANDARD.encode(log_tail);
        if let Ok(value) = HeaderValue::from_str(&tail) {
            response_headers.insert("x-amz-log-result", value);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response_headers.insert("x-amzn-requestid", value);
    }
    response
}

fn invoke_error(err: &InvokeError) -> Response {
    match err {
        InvokeError::RequestTooLarge { .. } => aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &err.to_string(),
        ),
        _ => aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            &err.to_string(),
        ),
    }
}
