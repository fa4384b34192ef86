//! What one log line says about its invocation: the request it belongs to, the environment
//! the framework names, and whether Lambda opens or closes a request with it.
//!
//! Shapes read (Lambda's Text and JSON log formats, lambda-stage's in both):
//! - platform, Text: `START RequestId: <id> Version: 7`, `END RequestId: <id>`,
//!   `REPORT RequestId: <id>\tDuration: …`; `INIT_START …` carries no request;
//! - platform, JSON: `{"type":"platform.start","record":{"requestId":"<id>",…},…}`, then
//!   `platform.runtimeDone` and `platform.report`;
//! - lambda-stage, Text: ` INFO Lambda runtime invoke{requestId="<id>"}:invocation{env=staging}: …`;
//! - lambda-stage, JSON: `{"level":"INFO","message":…,"requestId":"<id>","env":"staging",…}`
//!   (and, from versions built before the flat shape, the same keys inside `"spans":[…]`).

use serde_json::Value;

/// Where a line stands in its request's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Lambda starts a request: later lines of the stream belong to it.
    Start,
    /// Lambda ends a request: later lines of the stream do not belong to it.
    End,
    None,
}

/// What a line says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFacts {
    pub request_id: Option<String>,
    /// The environment the framework wrote: in single-stack, the alias that was invoked.
    pub env: Option<String>,
    pub mark: Mark,
}

impl LineFacts {
    pub fn of(message: &str) -> LineFacts {
        let trimmed = message.trim();
        if trimmed.starts_with('{') {
            if let Ok(json) = serde_json::from_str::<Value>(trimmed) {
                return from_json(&json);
            }
        }
        from_text(message)
    }
}

fn from_json(json: &Value) -> LineFacts {
    let kind = json["type"].as_str().unwrap_or_default();
    if kind.starts_with("platform.") {
        let mark = match kind {
            "platform.start" => Mark::Start,
            "platform.runtimeDone" | "platform.report" => Mark::End,
            _ => Mark::None,
        };
        return LineFacts {
            request_id: string(&json["record"]["requestId"]),
            env: None,
            mark,
        };
    }
    let spans = json["spans"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let find = |key: &str| {
        string(&json[key]).or_else(|| spans.iter().rev().find_map(|span| string(&span[key])))
    };
    LineFacts {
        request_id: find("requestId"),
        env: find("env"),
        mark: Mark::None,
    }
}

fn string(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

fn from_text(message: &str) -> LineFacts {
    for (prefix, mark) in [
        ("START RequestId: ", Mark::Start),
        ("END RequestId: ", Mark::End),
        ("REPORT RequestId: ", Mark::End),
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let id = rest.split_whitespace().next().map(str::to_owned);
            return LineFacts {
                request_id: id,
                env: None,
                mark,
            };
        }
    }
    let mut facts = LineFacts {
        request_id: None,
        env: None,
        mark: Mark::None,
    };
    for (key, value) in span_fields(message) {
        match key {
            "requestId" => facts.request_id = Some(value),
            "env" => facts.env = Some(value),
            _ => {}
        }
    }
    facts
}

/// The fields of the span list tracing-subscriber's Text format writes after the level:
/// `name{key=value key="quoted"}:name{…}: message`. Stops at the message, so text a handler
/// logs never counts as a span field.
fn span_fields(message: &str) -> Vec<(&str, String)> {
    let mut fields = Vec::new();
    let Some(level_end) = message.trim_start().find(' ') else {
        return fields;
    };
    let offset = message.len() - message.trim_start().len();
    let mut rest = &message[offset + level_end + 1..];
    // Each span: a name (lambda_runtime's has spaces), `{`, its fields, `}`, then `:`.
    while let Some(open) = rest.find('{') {
        if rest[..open].contains(':') {
            break;
        }
        let Some((body, after)) = split_span_body(&rest[open + 1..]) else {
            break;
        };
        fields.extend(parse_fields(body));
        match after.strip_prefix(':') {
            Some(next) if !next.starts_with(' ') => rest = next,
            _ => break,
        }
    }
    fields
}

/// Splits `fields} after` at the `}` that closes the span, skipping braces inside quotes.
fn split_span_body(text: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some((&text[..i], &text[i + 1..])),
            _ => {}
        }
    }
    None
}

/// `key=value key="quoted \"value\""` as pairs, quotes and escapes removed.
fn parse_fields(body: &str) -> Vec<(&str, String)> {
    let mut fields = Vec::new();
    let mut rest = body.trim_start();
    while let Some(eq) = rest.find('=') {
        let key = &rest[..eq];
        let value_text = &rest[eq + 1..];
        let (value, after) = if let Some(quoted) = value_text.strip_prefix('"') {
            unquote(quoted)
        } else {
            let end = value_text.find(' ').unwrap_or(value_text.len());
            (value_text[..end].to_owned(), &value_text[end..])
        };
        fields.push((key, value));
        rest = after.trim_start();
    }
    fields
}

/// The text of a Debug-quoted string up to its closing quote, and what follows it.
fn unquote(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &text[i + 1..]),
            '\\' => {
                if let Some((_, next)) = chars.next() {
                    value.push(next);
                }
            }
            c => value.push(c),
        }
    }
    (value, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(request_id: Option<&str>, env: Option<&str>, mark: Mark) -> LineFacts {
        LineFacts {
            request_id: request_id.map(str::to_owned),
            env: env.map(str::to_owned),
            mark,
        }
    }

    #[test]
    fn platform_text_lines_name_their_request_and_open_or_close_it() {
        assert_eq!(
            LineFacts::of("START RequestId: r-1 Version: 7\n"),
            facts(Some("r-1"), None, Mark::Start)
        );
        assert_eq!(
            LineFacts::of("END RequestId: r-1\n"),
            facts(Some("r-1"), None, Mark::End)
        );
        assert_eq!(
            LineFacts::of("REPORT RequestId: r-1\tDuration: 1.20 ms\tBilled Duration: 2 ms\n"),
            facts(Some("r-1"), None, Mark::End)
        );
        assert_eq!(
            LineFacts::of("INIT_START Runtime Version: provided:al2023.v93\n"),
            facts(None, None, Mark::None)
        );
    }

    #[test]
    fn platform_json_lines_name_their_request_in_the_record() {
        assert_eq!(
            LineFacts::of(
                r#"{"time":"2026-11-29T10:00:00.000Z","type":"platform.start","record":{"requestId":"r-1","version":"7"}}"#
            ),
            facts(Some("r-1"), None, Mark::Start)
        );
        assert_eq!(
            LineFacts::of(r#"{"type":"platform.report","record":{"requestId":"r-1"}}"#),
            facts(Some("r-1"), None, Mark::End)
        );
        assert_eq!(
            LineFacts::of(r#"{"type":"platform.initStart","record":{"runtimeVersion":"x"}}"#),
            facts(None, None, Mark::None)
        );
    }

    #[test]
    fn framework_text_lines_carry_request_and_environment_in_their_spans() {
        // The exact shape framework/src/logging.rs's tests pin down.
        let line = r#" INFO Lambda runtime invoke{requestId="8f5e" xrayTraceId="Root=1-2"}:invocation{env=staging}: greeting name="Ada" env=prod"#;
        assert_eq!(
            LineFacts::of(line),
            facts(Some("8f5e"), Some("staging"), Mark::None)
        );
        // A handler's own text is never read as a span field.
        assert_eq!(
            LineFacts::of(r#" WARN outside{a}: requestId="x" env=prod"#),
            facts(None, None, Mark::None)
        );
        assert_eq!(
            LineFacts::of("hello from println with env=prod"),
            facts(None, None, Mark::None)
        );
        assert_eq!(
            LineFacts::of(r#"ERROR Lambda runtime invoke{requestId="a\"}b"}: boom"#),
            facts(Some(r#"a"}b"#), None, Mark::None)
        );
    }

    #[test]
    fn framework_json_lines_are_read_flat_or_with_the_older_span_list() {
        let flat =
            r#"{"timestamp":"t","level":"INFO","message":"hi","requestId":"r-2","env":"prod"}"#;
        assert_eq!(
            LineFacts::of(flat),
            facts(Some("r-2"), Some("prod"), Mark::None)
        );
        let nested = r#"{"level":"INFO","fields":{"message":"hi"},"spans":[{"requestId":"r-3","name":"Lambda runtime invoke"},{"env":"staging","name":"invocation"}]}"#;
        assert_eq!(
            LineFacts::of(nested),
            facts(Some("r-3"), Some("staging"), Mark::None)
        );
        assert_eq!(
            LineFacts::of(r#"{"order": 1}"#),
            facts(None, None, Mark::None)
        );
    }
}
