//! Logging as Lambda configures it: `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) and
//! `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then `info`.
//!
//! Every line written during an invocation carries the request id (from lambda_runtime's
//! invocation span) and the environment (from lambda-stage's span). In Text format they are
//! span fields: ` INFO Lambda runtime invoke{requestId="8f5…"}:invocation{env=staging}: greeting
//! name="Ada"`; in JSON format every line is one flat object (`json::FlatJson`):
//! `{"timestamp":…,"level":"INFO","message":"greeting","requestId":"8f5…","env":"staging","name":"Ada"}`.
//! `cargo xtask logs` reads both shapes to tell environments apart.

mod json;

use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer;

/// Installs the global subscriber, unless the application installed its own first.
pub fn init() {
    let directive = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|level| level.to_ascii_lowercase())
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    // `Targets` reads `RUST_LOG`-style directives (`info,my_crate=debug`) without the regex
    // engine `EnvFilter` brings: that keeps the binary, and the cold start, small.
    let filter = directive
        .parse::<Targets>()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init` fails only when a subscriber is already set: the application's choice wins.
    let _ = if json {
        registry.with(json_layer(std::io::stderr)).try_init()
    } else {
        registry.with(text_layer(std::io::stderr)).try_init()
    };
}

/// `AWS_LAMBDA_LOG_FORMAT=JSON`: one flat JSON object per line.
fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
        .event_format(json::FlatJson)
}

/// Text format: level, the span list with its fields, the message and the event's fields.
/// No time (CloudWatch stamps every line) and no colours.
fn text_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(false)
        .without_time()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::layer::SubscriberExt as _;

    /// A writer that keeps what it is given.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    /// The spans an invocation runs in: lambda_runtime's (`requestId`, as its `request_span`
    /// names it) around lambda-stage's (`env`, as `runtime::invoke` names it), then one event.
    fn log_one_invocation_line() {
        let request_id = "8f5e3c1a-0000-4000-8000-000000000001".to_owned();
        let runtime_span = tracing::info_span!("Lambda runtime invoke", requestId = &request_id);
        let _runtime = runtime_span.enter();
        let stage_span = tracing::info_span!("invocation", env = %"staging");
        let _stage = stage_span.enter();
        tracing::info!(name = "Ada", attempt = 2, "greeting");
    }

    fn captured_lines(
        layer: impl FnOnce(
            Captured,
        ) -> Box<
            dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync,
        >,
    ) -> Vec<String> {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(layer(captured.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!("outside any invocation");
            log_one_invocation_line();
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    fn keys_of(object: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = object
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn json_lines_are_flat_objects_with_the_request_id_and_environment_at_the_top_level() {
        let lines = captured_lines(|w| Box::new(super::json_layer(w)));
        assert_eq!(lines.len(), 2, "{lines:?}");
        let outside: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            keys_of(&outside),
            ["level", "message", "timestamp"],
            "{}",
            lines[0]
        );
        assert_eq!(outside["level"], "WARN");

        let line: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(
            keys_of(&line),
            [
                "attempt",
                "env",
                "level",
                "message",
                "name",
                "requestId",
                "timestamp"
            ],
            "{}",
            lines[1]
        );
        // Written in the order people read them.
        let at = |key: &str| lines[1].find(&format!(r#""{key}":"#)).unwrap();
        assert!(
            at("timestamp") < at("level")
                && at("level") < at("message")
                && at("message") < at("requestId")
                && at("requestId") < at("env")
                && at("env") < at("name"),
            "{}",
            lines[1]
        );
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "greeting");
        assert_eq!(line["requestId"], "8f5e3c1a-0000-4000-8000-000000000001");
        assert_eq!(line["env"], "staging");
        assert_eq!(line["name"], "Ada");
        assert_eq!(line["attempt"], 2);
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(
            timestamp.len() >= 20 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
            "RFC 3339 UTC: {timestamp}"
        );
    }

    #[test]
    fn json_lines_keep_their_own_timestamp_and_level_and_prefer_the_event_s_fields() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(super::json_layer(captured.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("invocation", env = %"staging", step = "outer");
            let _entered = span.enter();
            tracing::error!(level = "mine", step = "inner", "boom");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["level"], "ERROR", "{text}");
        assert_eq!(line["step"], "inner", "{text}");
        assert_eq!(line["env"], "staging", "{text}");
    }

    /// `cargo xtask logs` parses this shape (xtask/lib/src/logs/line.rs).
    #[test]
    fn text_lines_carry_the_request_id_and_environment_as_span_fields() {
        let lines = captured_lines(|w| Box::new(super::text_layer(w)));
        assert_eq!(lines[0], " WARN outside any invocation", "{lines:?}");
        assert_eq!(
            lines[1],
            r#" INFO Lambda runtime invoke{requestId="8f5e3c1a-0000-4000-8000-000000000001"}:invocation{env=staging}: greeting name="Ada" attempt=2"#,
            "{lines:?}"
        );
    }
}
