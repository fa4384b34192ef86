//! Logging as Lambda configures it: `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) and
//! `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then `info`.
//!
//! Every line written during an invocation carries the request id (from lambda_runtime's
//! invocation span) and the environment (from lambda-stage's span).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber, unless the application installed its own first.
pub fn init() {
    let directive = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|level| level.to_ascii_lowercase())
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // `try_init` fails only when a subscriber is already set: the application's choice wins.
    let _ = if json {
        builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    } else {
        builder.with_ansi(false).without_time().try_init()
    };
}
