//! The HTTP fronts: the app's HTTP API at `/<env>/<route>` as deployed, and one function at
//! `/<function>/<path>`, each request sent as the HTTP API (payload 2.0) event API Gateway sends
//! and the function's answer turned back into HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use lambda_stage_emulator::{Invocation, Outcome};
use lambda_stage_events::ApiRoute;
use serde_json::{json, Value};

use super::body::read_body;
use super::{Function, Shared};

/// API Gateway's answer when the integration fails.
fn gateway_error(function: &str, reason: &str) -> Response {
    eprintln!("serve: `{function}` did not give an HTTP response: {reason}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({ "message": "Internal Server Error" })),
    )
        .into_response()
}

/// `/<env>/...` for the app's API of an environment, else `/<function>/...`.
pub(super) async fn http_front(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(body).await {
        Ok(body) => body,
        // API Gateway's own answer to a body over its limit.
        Err(err) => {
            return err.answer(|_| {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    axum::Json(json!({ "message": "Request Entity Too Large" })),
                )
                    .into_response()
            })
        }
    };
    let path = uri.path().trim_start_matches('/');
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    let rest = format!("/{rest}");
    let path_and_query = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.clone(),
    };
    let source_ip = peer.ip().to_string();
    let request = |route: &ApiRoute| {
        lambda_stage_events::apigw_http_event(
            &method,
            &path_and_query,
            &headers,
            &body,
            &source_ip,
            route,
        )
    };
    if let Some(api) = shared.apis.get(first) {
        let Some(matched) = api.routes.find(method.as_str(), &rest) else {
            // API Gateway's own answer when no route matches.
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({ "message": "Not Found" })),
            )
                .into_response();
        };
        let route = ApiRoute {
            stage: api.stage.clone(),
            route_key: matched.route.key().to_owned(),
            path_parameters: matched.path_parameters,
        };
        let function = &shared.functions[*matched.target];
        return deliver(&shared, function, first, request(&route)).await;
    }
    let Some((function, env)) = shared.resolve(first, None) else {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "no function or environment `{first}` is served here\n\n{}",
                shared.index()
            ),
        )
            .into_response();
    };
    deliver(&shared, function, &env, request(&ApiRoute::default())).await
}

/// Invokes `function` in `env` with an HTTP API `event` and turns its answer into API Gateway's
/// HTTP response.
async fn deliver(shared: &Shared, function: &Function, env: &str, event: Value) -> Response {
    let (plan, emulator) = match shared.emulator(function, env) {
        Ok(running) => running,
        Err(err) => return gateway_error(&function.key, &format!("{err:#}")),
    };
    let invocation = Invocation {
        qualifier: plan.qualifier.clone(),
        ..Invocation::new(event.to_string())
    };
    let outcome = match emulator.invoke(invocation).await {
        Ok(outcome) => outcome,
        Err(err) => return gateway_error(&function.key, &err.to_string()),
    };
    let Outcome::Response(payload) = outcome else {
        let error_type = outcome.error_type().unwrap_or_default().to_owned();
        let detail = String::from_utf8_lossy(outcome.payload()).into_owned();
        return gateway_error(&function.key, &format!("{error_type}: {detail}"));
    };
    match lambda_stage_events::apigw_http_response(&payload) {
        Ok(response) => response.map(Body::from),
        Err(err) => gateway_error(&function.key, &err.to_string()),
    }
}
