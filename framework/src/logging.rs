//! Logging as Lambda configures it: `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) and
//! `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then `info`.
//!
//! Every line written during an invocation carries the request id (from lambda_runtime's
//! invocation span) and the environment (from lambda-stage's span).

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

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
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    // `try_init` fails only when a subscriber is already set: the application's choice wins.
    let _ = if json {
        registry
            .with(layer.json().with_current_span(false).with_span_list(true))
            .try_init()
    } else {
        registry
            .with(layer.with_ansi(false).without_time())
            .try_init()
    };
}
