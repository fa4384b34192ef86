//! [`run`]: cold start (logging, environment, config) and the invocation loop for event handlers.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt as _;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use tracing::Instrument as _;

use crate::error::{Error, InvocationError};
use crate::stage::Stage;
use crate::{check, init_error, logging};

/// What a handler knows about its invocation besides the event.
#[derive(Debug, Clone)]
pub struct Ctx<C> {
    env: String,
    config: Arc<C>,
    lambda: lambda_runtime::Context,
}

impl<C> Ctx<C> {
    pub(crate) fn new(env: String, config: Arc<C>, lambda: lambda_runtime::Context) -> Self {
        Ctx {
            env,
            config,
            lambda,
        }
    }

    /// The config of this invocation's environment.
    pub fn config(&self) -> &C {
        &self.config
    }

    /// The environment's name (`staging`, `prod`, ...).
    pub fn env(&self) -> &str {
        &self.env
    }

    /// lambda_runtime's context: request id, deadline, invoked ARN, trace id, ...
    pub fn lambda(&self) -> &lambda_runtime::Context {
        &self.lambda
    }
}

/// How the app reads its config. `Options::default()` is what [`run`] uses.
#[derive(Debug, Clone)]
pub struct Options {
    prefix: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: "APP_".to_owned(),
        }
    }
}

impl Options {
    /// The prefix of the app's config variables (default `APP_`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Cold start: logging, the environment strategy and the config of every environment
    /// known at init (multi-stack: with its secret references resolved). A config or secret
    /// error is reported to `/runtime/init/error` and returned, so the process exits non-zero.
    ///
    /// In check mode ([`crate::check`]) the process checks its config, reports and exits here.
    pub(crate) async fn start<C: DeserializeOwned>(&self) -> Result<Arc<Stage<C>>, Error> {
        if check::requested() {
            check::run::<C>(&self.prefix);
        }
        logging::init();
        match Stage::start(process_vars(), &self.prefix).await {
            Ok(stage) => Ok(Arc::new(stage)),
            Err(err) => {
                tracing::error!(error_type = err.error_type(), "{err}");
                init_error::report(err.error_type(), &err.to_string()).await;
                Err(err.into())
            }
        }
    }

    /// [`run`] with these options.
    pub async fn run<C, E, R, H, Fut>(self, handler: H) -> Result<(), Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        E: DeserializeOwned,
        R: Serialize,
        H: Fn(E, Ctx<C>) -> Fut,
        Fut: Future<Output = Result<R, Error>>,
    {
        let stage = self.start::<C>().await?;
        let handler = &handler;
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
            let stage = stage.clone();
            async move { invoke(&stage, handler, event).await }
        }))
        .await
    }
}

/// The process's variables that are valid UTF-8, as a cold start reads them.
pub(crate) fn process_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// Runs an event handler: `async fn(Event, Ctx<Config>) -> Result<Response, Error>`.
///
/// `Event` is any deserializable type (an `aws_lambda_events` type, your own struct,
/// `serde_json::Value`), `Config` is loaded from `APP_*` variables for the invocation's
/// environment, `Response` is any serializable type.
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Deserialize)]
/// struct Config { greeting: String }
/// #[derive(Deserialize)]
/// struct Request { name: String }
/// #[derive(Serialize)]
/// struct Response { message: String }
///
/// async fn handler(event: Request, ctx: lambda_stage::Ctx<Config>) -> Result<Response, lambda_stage::Error> {
///     Ok(Response { message: format!("{}, {}!", ctx.config().greeting, event.name) })
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), lambda_stage::Error> {
///     lambda_stage::run(handler).await
/// }
/// ```
pub async fn run<C, E, R, H, Fut>(handler: H) -> Result<(), Error>
where
    C: DeserializeOwned + Send + Sync + 'static,
    E: DeserializeOwned,
    R: Serialize,
    H: Fn(E, Ctx<C>) -> Fut,
    Fut: Future<Output = Result<R, Error>>,
{
    Options::default().run(handler).await
}

/// One invocation: environment, event, handler; every failure becomes an invocation error.
pub(crate) async fn invoke<C, E, R, H, Fut>(
    stage: &Stage<C>,
    handler: &H,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<R, InvocationError>
where
    C: DeserializeOwned,
    E: DeserializeOwned,
    H: Fn(E, Ctx<C>) -> Fut,
    Fut: Future<Output = Result<R, Error>>,
{
    let (env, config) = stage
        .resolve_async(&event.context.invoked_function_arn)
        .await?;
    let payload: E = parse_event(event.payload.get())?;
    let span = tracing::info_span!("invocation", env = %env);
    let ctx = Ctx::new(env, config, event.context);
    catch_failures(handler(payload, ctx)).instrument(span).await
}

pub(crate) fn parse_event<E: DeserializeOwned>(json: &str) -> Result<E, InvocationError> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(json))
        .map_err(|err| InvocationError::invalid_event::<E>(&err))
}

/// Awaits a handler, turning its `Err` and its panics into invocation errors.
pub(crate) async fn catch_failures<R>(
    handling: impl Future<Output = Result<R, Error>>,
) -> Result<R, InvocationError> {
    match AssertUnwindSafe(handling).catch_unwind().await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(err)) => Err(InvocationError::handler(err)),
        Err(panic) => Err(InvocationError::panic(panic.as_ref())),
    }
}
