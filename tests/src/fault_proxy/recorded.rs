//! Each request as the SDK sent it, kept so tests can check what a command asked for where
//! moto does not show it (it ignores a function URL's `Qualifier`, for one).

use std::collections::BTreeMap;

use axum::http::request::Parts;
use serde_json::Value;

/// Bodies above this size (code zips) are recorded as `<N bytes>` only.
const MAX_RECORDED_BODY: usize = 64 * 1024;

/// One request as the SDK sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The AWS operation name, as in [`FaultProxy::log`](super::FaultProxy::log).
    pub operation: String,
    pub method: String,
    /// The URL path, percent-decoded (`/v2/apis/abc/stages/$default`).
    pub path: String,
    /// The raw query string, `""` when there is none.
    pub query: String,
    /// The `x-amz-*` headers (`x-amz-log-type`, ...), names in lower case.
    pub amz_headers: BTreeMap<String, String>,
    /// The body as UTF-8 (lossy), or `<N bytes>` when larger than 64 KiB.
    pub body: String,
}

impl RecordedRequest {
    /// The body parsed as JSON; `Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The value of the `x-amz-*` header `name` (any case).
    pub fn amz_header(&self, name: &str) -> Option<&str> {
        self.amz_headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The percent-decoded value of the first query parameter called `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }

    /// The request of `operation` made of `parts` and `body`.
    pub(super) fn new(operation: &str, parts: &Parts, body: &[u8]) -> RecordedRequest {
        RecordedRequest {
            operation: operation.to_owned(),
            method: parts.method.to_string(),
            path: percent_decode(parts.uri.path()),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            amz_headers: parts
                .headers
                .iter()
                .filter(|(name, _)| name.as_str().starts_with("x-amz-"))
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
            body: recorded_body(body),
        }
    }
}

fn recorded_body(body: &[u8]) -> String {
    if body.len() > MAX_RECORDED_BODY {
        format!("<{} bytes>", body.len())
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

/// Decodes `%XX` escapes; a `+` stays a plus (the AWS SDKs escape spaces as `%20`).
fn percent_decode(text: &str) -> String {
    let hex = |digit: u8| (digit as char).to_digit(16);
    let mut decoded = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let [first, tail @ ..] = rest {
        if let [b'%', high, low, after @ ..] = rest {
            if let (Some(high), Some(low)) = (hex(*high), hex(*low)) {
                decoded.push((high * 16 + low) as u8);
                rest = after;
                continue;
            }
        }
        decoded.push(*first);
        rest = tail;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes_only() {
        assert_eq!(percent_decode("%24default"), "$default");
        assert_eq!(percent_decode("arn%3Aaws%2Fx"), "arn:aws/x");
        assert_eq!(percent_decode("a+b%20c"), "a+b c");
        // Malformed escapes are kept as written.
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn records_large_bodies_as_their_size() {
        assert_eq!(recorded_body(b"{\"a\":1}"), "{\"a\":1}");
        let zip = vec![0u8; MAX_RECORDED_BODY + 1];
        assert_eq!(
            recorded_body(&zip),
            format!("<{} bytes>", MAX_RECORDED_BODY + 1)
        );
    }

    #[test]
    fn recorded_request_helpers() {
        let request = RecordedRequest {
            operation: "CreateFunctionUrlConfig".to_owned(),
            method: "POST".to_owned(),
            path: "/2021-10-31/functions/demo-hello/url".to_owned(),
            query: "Qualifier=staging&Note=a%20b".to_owned(),
            amz_headers: BTreeMap::from([("x-amz-log-type".to_owned(), "Tail".to_owned())]),
            body: r#"{"AuthType":"NONE"}"#.to_owned(),
        };
        assert_eq!(request.query_param("Qualifier").as_deref(), Some("staging"));
        assert_eq!(request.query_param("Note").as_deref(), Some("a b"));
        assert_eq!(request.query_param("Missing"), None);
        assert_eq!(request.amz_header("X-Amz-Log-Type"), Some("Tail"));
        assert_eq!(request.amz_header("X-Amz-Client-Context"), None);
        assert_eq!(request.json()["AuthType"], "NONE");
        let not_json = RecordedRequest {
            body: "<4096 bytes>".to_owned(),
            query: String::new(),
            ..request
        };
        assert_eq!(not_json.json(), Value::Null);
        assert_eq!(not_json.query_param("Qualifier"), None);
    }
}
