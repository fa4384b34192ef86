//! Alias `RevisionId`s as AWS keeps them (moto accepts any revision and never changes it): the
//! proxy gives each alias a revision of its own, changes it on every write, puts it in every
//! answer that shows the alias, and refuses an `UpdateAlias` that sends a stale one.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use bytes::Bytes;
use serde_json::Value;

use super::answers::lambda_error;
use super::Shared;

/// `<function>/<alias>` for alias operations; `<function>/` for ListAliases.
pub(super) fn alias_key(path: &str, operation: &str, body: &[u8]) -> Option<String> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (operation, segments.as_slice()) {
        (
            "GetAlias" | "UpdateAlias" | "DeleteAlias",
            [_, "functions", function, "aliases", alias],
        ) => Some(format!("{function}/{alias}")),
        ("CreateAlias", [_, "functions", function, "aliases"]) => {
            let name = serde_json::from_slice::<Value>(body).ok()?["Name"]
                .as_str()?
                .to_owned();
            Some(format!("{function}/{name}"))
        }
        ("ListAliases", [_, "functions", function, "aliases"]) => Some(format!("{function}/")),
        _ => None,
    }
}

/// AWS's `412 PreconditionFailedException` when an `UpdateAlias` of the alias `key` sends a
/// `RevisionId` other than the alias's current one.
pub(super) fn stale_revision(shared: &Shared, key: &str, body: &[u8]) -> Option<Response<Body>> {
    let sent = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["RevisionId"].as_str().map(str::to_owned));
    let current = current_revision(shared, key);
    sent.is_some_and(|sent| sent != current).then(|| {
        lambda_error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. Call the GetAlias API to retrieve the latest Revision Id",
        )
    })
}

/// The revision of the alias `key` (`proxy-revision-<n>`); an alias seen for the first time
/// gets the next number.
fn current_revision(shared: &Shared, key: &str) -> String {
    let mut inner = shared.inner.lock().unwrap();
    let next = inner.next_revision + 1;
    let revision = *inner.revisions.entry(key.to_owned()).or_insert(next);
    if revision == next {
        inner.next_revision = next;
    }
    format!("proxy-revision-{revision}")
}

/// Gives aliases revisions that change on every write, as AWS does.
pub(super) fn rewrite_revisions(shared: &Shared, key: &str, operation: &str, body: Bytes) -> Bytes {
    match operation {
        "CreateAlias" | "UpdateAlias" => {
            let mut inner = shared.inner.lock().unwrap();
            inner.next_revision += 1;
            let next = inner.next_revision;
            inner.revisions.insert(key.to_owned(), next);
        }
        "DeleteAlias" => {
            shared.inner.lock().unwrap().revisions.remove(key);
            return body;
        }
        _ => {}
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    if let Some(aliases) = value.get_mut("Aliases").and_then(Value::as_array_mut) {
        let function = key.trim_end_matches('/');
        for alias in aliases {
            let name = alias["Name"].as_str().unwrap_or_default().to_owned();
            alias["RevisionId"] =
                Value::from(current_revision(shared, &format!("{function}/{name}")));
        }
    } else if value.get("RevisionId").is_some() {
        value["RevisionId"] = Value::from(current_revision(shared, key));
    }
    Bytes::from(value.to_string())
}
