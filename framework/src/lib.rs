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
//! See the README for the variable rules ([`environment`] has the reference).

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
mod stage;
pub mod testing;

pub use error::{Error, HandlerError, InvocationError};
pub use runtime::{run, Ctx, Options};
pub use secret::Secret;
pub use stage::{InitError, Stage};

#[cfg(feature = "http")]
pub use lambda_http;
/// Re-exported so handlers name the same types lambda-stage uses.
pub use lambda_runtime;
