//! lambda-stage: typed, environment-aware AWS Lambda handlers for apps that run in several
//! environments (dev, staging, prod) — one function per environment (*multi-stack*) or one
//! function with an alias per environment (*single-stack*).
//!
//! ```no_run
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     greeting: String,                      // APP_GREETING
//!     api_key: lambda_stage::Secret<String>, // APP_API_KEY, never printed
//! }
//!
//! async fn handler(event: serde_json::Value, ctx: lambda_stage::Ctx<Config>) -> Result<serde_json::Value, lambda_stage::Error> {
//!     Ok(serde_json::json!({ "message": ctx.config().greeting, "env": ctx.env() }))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_stage::Error> {
//!     lambda_stage::run(handler).await
//! }
//! ```
//!
//! See the README for the variable rules ([`environment`] has the reference). Resources built
//! once per environment (SDK clients, pools): [`Options::state`] and [`state`]. The handling as a
//! tower service, for a `lambda_runtime::Runtime` of your own: [`Options::service`].
//!
//! Cargo features (none by default): `http` for `lambda_http` handlers and axum routers (the
//! `http` module), `secrets` to resolve `ssm:` and `secretsmanager:` references in config values
//! ([`secrets`]).

#![warn(missing_docs)]

pub mod check;
pub mod config;
pub mod environment;
mod error;
#[cfg(feature = "http")]
pub mod http;
mod init_error;
pub mod logging;
mod runtime;
mod secret;
pub mod secrets;
mod service;
mod serving;
mod stage;
pub mod state;
pub mod testing;

pub use error::{Error, HandlerError, InvocationError};
/// The `errorType` of each failure the framework reports (public API: match on these).
pub use lambda_stage_names::error_type;
pub use runtime::{run, Ctx, Options};
pub use secret::Secret;
pub use service::EventService;
pub use stage::{InitError, Stage};
pub use state::{Env, MakeState, NoState};

/// Re-exported so HTTP handlers name the same types lambda-stage uses.
#[cfg(feature = "http")]
pub use lambda_http;
/// Re-exported so handlers name the same types lambda-stage uses.
pub use lambda_runtime;
