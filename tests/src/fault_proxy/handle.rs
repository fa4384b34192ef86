//! One request's way through the proxy: recorded and counted, then answered by an injected
//! fault, a canned answer or AWS's 404 for an `Invoke` of a missing target, or held until the
//! other calls of a race arrive, checked against its alias's revision, and forwarded to
//! upstream, whose answer gets the proxy's alias revisions.

use axum::body::Body;
use axum::extract::State;
use axum::http::{request, response, Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};

use super::answers::{injected, plain};
use super::operation::{is_query, is_write, operation};
use super::recorded::RecordedRequest;
use super::revisions::{alias_key, rewrite_revisions, stale_revision};
use super::{Shared, HOLD_LIMIT};

pub(super) async fn handle(State(shared): State<Shared>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 256 * 1024 * 1024).await {
        Ok(body) => body,
        Err(err) => return plain(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    let path = parts.uri.path().to_owned();
    let operation = operation(parts.method.as_str(), &path, &parts.headers, &body);
    let recorded = RecordedRequest::new(&operation, &parts, &body);
    let arrival = shared.inner.lock().unwrap().arrive(recorded);
    if let Some(kind) = arrival.fault {
        return injected(kind, is_query(&body));
    }
    if let Some(canned) = arrival.canned {
        return canned.response();
    }
    if operation == "Invoke" {
        if let Some(not_found) = missing_invoke_target(&shared, &parts).await {
            return not_found;
        }
    }
    if let Some(barrier) = arrival.hold {
        if tokio::time::timeout(HOLD_LIMIT, barrier.wait())
            .await
            .is_err()
        {
            shared
                .inner
                .lock()
                .unwrap()
                .holds_timed_out
                .push(operation.clone());
        }
    }

    let alias_key = alias_key(&path, &operation, &body);
    let _alias_guard = match alias_key {
        Some(_) if is_write(&operation) => Some(shared.alias_writes.lock().await),
        _ => None,
    };
    if let (Some(key), "UpdateAlias") = (&alias_key, operation.as_str()) {
        if let Some(refused) = stale_revision(&shared, key, &body) {
            return refused;
        }
    }

    let (mut parts, mut body) = match forward(&shared, &parts, body).await {
        Ok(answer) => answer,
        Err(err) => return plain(StatusCode::BAD_GATEWAY, &err),
    };
    if let Some(key) = alias_key.filter(|_| parts.status.is_success()) {
        body = rewrite_revisions(&shared, &key, &operation, body);
        parts.headers.remove("content-length");
    }
    Response::from_parts(parts, Body::from(body))
}

/// Sends the request to upstream as it came (but for `host`); upstream's answer, or why there
/// is none.
async fn forward(
    shared: &Shared,
    parts: &request::Parts,
    body: Bytes,
) -> Result<(response::Parts, Bytes), String> {
    let uri = format!(
        "{}{}",
        shared.upstream,
        parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
    );
    let mut forward = Request::builder().method(parts.method.clone()).uri(uri);
    for (name, value) in &parts.headers {
        if name != "host" {
            forward = forward.header(name, value);
        }
    }
    let forward = forward
        .body(Full::new(body))
        .map_err(|err| err.to_string())?;
    let response = shared
        .client
        .request(forward)
        .await
        .map_err(|err| err.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|err| err.to_string())?;
    Ok((parts, body.to_bytes()))
}

/// moto's answer to reading the function (and qualifier) an `Invoke` names, when moto does not
/// have it: a 404 `ResourceNotFoundException` "Function not found: <arn>", as AWS answers the
/// invoke itself (moto's Lambda without Docker echoes any invoke).
async fn missing_invoke_target(shared: &Shared, parts: &request::Parts) -> Option<Response<Body>> {
    let [version, "functions", function, "invocations"] = parts
        .uri
        .path()
        .trim_matches('/')
        .split('/')
        .collect::<Vec<_>>()[..]
    else {
        return None;
    };
    let qualifier = parts
        .uri
        .query()
        .and_then(|query| query.split('&').find(|pair| pair.starts_with("Qualifier=")))
        .map_or_else(String::new, |pair| format!("?{pair}"));
    let mut read = Request::builder().method("GET").uri(format!(
        "{}/{version}/functions/{function}{qualifier}",
        shared.upstream
    ));
    // moto finds the region in the signature's credential scope.
    if let Some(authorization) = parts.headers.get("authorization") {
        read = read.header("authorization", authorization);
    }
    let response = shared
        .client
        .request(read.body(Full::new(Bytes::new())).ok()?)
        .await
        .ok()?;
    if response.status().is_success() {
        return None;
    }
    let (head, body) = response.into_parts();
    let body = body.collect().await.ok()?.to_bytes();
    Some(Response::from_parts(head, Body::from(body)))
}
