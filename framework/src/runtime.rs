//! [`run`] and [`Options`]: the cold start (logging, environments, configs, states) and the
//! runners built on it. A runner is [`Options::start`] plus a tower service handed to
//! `lambda_runtime`; the services are public ([`Options::service`]) for apps that compose their
//! own `lambda_runtime::Runtime` (layers, SnapStart resources).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::service::EventService;
use crate::serving::{Serving, StartError};
use crate::state::{Env, MakeState, NoState};
use crate::{check, init_error, logging};

/// What a handler knows about its invocation besides the event.
pub struct Ctx<C, S = ()> {
    env: Env<C, S>,
    lambda: lambda_runtime::Context,
}

impl<C, S> Clone for Ctx<C, S> {
    fn clone(&self) -> Self {
        Ctx {
            env: self.env.clone(),
            lambda: self.lambda.clone(),
        }
    }
}

impl<C: fmt::Debug, S: fmt::Debug> fmt::Debug for Ctx<C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("env", &self.env)
            .field("lambda", &self.lambda)
            .finish()
    }
}

impl<C, S> Ctx<C, S> {
    pub(crate) fn new(env: Env<C, S>, lambda: lambda_runtime::Context) -> Self {
        Ctx { env, lambda }
    }

    /// The config of this invocation's environment.
    pub fn config(&self) -> &C {
        self.env.config()
    }

    /// The environment's name (`staging`, `prod`, ...).
    pub fn env(&self) -> &str {
        self.env.name()
    }

    /// The state of this invocation's environment, built once per environment by the
    /// constructor given to [`Options::state`] (`()` without one).
    pub fn state(&self) -> &S {
        self.env.state()
    }

    /// lambda_runtime's context: request id, deadline, invoked ARN, trace id, ...
    pub fn lambda(&self) -> &lambda_runtime::Context {
        &self.lambda
    }

    /// This invocation's environment (name, config and state) as one value, to pass on.
    pub fn environment(&self) -> &Env<C, S> {
        &self.env
    }
}

/// How the app starts: the prefix of its config variables and its per-environment state.
/// `Options::default()` is what [`run`] uses.
///
/// ```no_run
/// use lambda_stage::{Ctx, Env, Error, Options};
///
/// #[derive(serde::Deserialize)]
/// struct Config { table: String }
///
/// /// Built once per environment, from that environment's config.
/// struct Clients { table: String }
///
/// async fn clients(env: Env<Config>) -> Result<Clients, Error> {
///     Ok(Clients { table: format!("{}-{}", env.config().table, env.name()) })
/// }
///
/// async fn handler(event: serde_json::Value, ctx: Ctx<Config, Clients>) -> Result<String, Error> {
///     Ok(ctx.state().table.clone())
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Error> {
///     Options::default().prefix("ORDERS_").state(clients).run(handler).await
/// }
/// ```
#[derive(Clone)]
pub struct Options<M = NoState> {
    prefix: String,
    make_state: M,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: "APP_".to_owned(),
            make_state: NoState,
        }
    }
}

impl<M> fmt::Debug for Options<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl<M> Options<M> {
    /// The prefix of the app's config variables (default `APP_`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Builds each environment's state with `make_state`, an async function of the
    /// environment's name and resolved config (an [`Env<Config>`]), run once per environment:
    /// see [`crate::state`] for when, and for what a failure does. Handlers read it with
    /// [`Ctx::state`], axum handlers with [`Env::state`].
    pub fn state<C, S, F, Fut>(self, make_state: F) -> Options<F>
    where
        F: Fn(Env<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, Error>> + Send + 'static,
        S: Send + Sync + 'static,
    {
        self.with_state(make_state)
    }

    pub(crate) fn with_state<N>(self, make_state: N) -> Options<N> {
        Options {
            prefix: self.prefix,
            make_state,
        }
    }

    /// The cold start's work on `vars`, without logging or reporting (see [`Serving::start`]).
    pub(crate) async fn serve<C>(
        self,
        vars: Vec<(String, String)>,
    ) -> Result<Serving<C, M>, StartError>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        M: MakeState<C>,
    {
        Serving::start(vars, &self.prefix, self.make_state).await
    }

    /// The cold start, the one place every runner and service starts from: logging, the
    /// environment strategy, the config of every environment known at init, and what
    /// [`crate::state`] says is ready before the first invocation. A failure is logged, posted
    /// to `/runtime/init/error` and returned, so the process exits non-zero.
    ///
    /// In check mode ([`crate::check`]) the process checks its config, reports and exits here,
    /// before any state constructor runs.
    pub(crate) async fn start<C>(self) -> Result<Arc<Serving<C, M>>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        M: MakeState<C>,
    {
        if check::requested() {
            check::run::<C>(&self.prefix);
        }
        logging::init();
        match self.serve(process_vars()).await {
            Ok(serving) => Ok(Arc::new(serving)),
            Err(err) => {
                tracing::error!(error_type = err.error_type(), "{err}");
                init_error::report(err.error_type(), &err.to_string()).await;
                Err(err.into())
            }
        }
    }

    /// Starts the function (see [`run`]) and returns its invocation handling as a tower
    /// service, for a `lambda_runtime::Runtime` of your own: to add layers, SnapStart resources
    /// or a graceful-shutdown handler. lambda_runtime's own `run` adds its `TracingLayer`
    /// (request ids on every log line); add it yourself here.
    ///
    /// ```no_run
    /// use lambda_stage::lambda_runtime::{layers::TracingLayer, Runtime};
    ///
    /// # async fn handler(event: serde_json::Value, ctx: lambda_stage::Ctx<()>) -> Result<serde_json::Value, lambda_stage::Error> { Ok(event) }
    /// #[tokio::main]
    /// async fn main() -> Result<(), lambda_stage::Error> {
    ///     let service = lambda_stage::Options::default().service(handler).await?;
    ///     Runtime::new(service).layer(TracingLayer::new()).run_concurrent().await
    /// }
    /// ```
    pub async fn service<C, E, R, H, Fut>(
        self,
        handler: H,
    ) -> Result<EventService<C, M, E, R>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        M: MakeState<C>,
        E: DeserializeOwned + 'static,
        R: Serialize + Send + 'static,
        H: Fn(E, Ctx<C, M::State>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
    {
        Ok(EventService::new(self.start().await?, handler))
    }

    /// [`run`] with these options.
    pub async fn run<C, E, R, H, Fut>(self, handler: H) -> Result<(), Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        M: MakeState<C>,
        E: DeserializeOwned + 'static,
        R: Serialize + Send + 'static,
        H: Fn(E, Ctx<C, M::State>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
    {
        lambda_runtime::run_concurrent(self.service(handler).await?).await
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
/// environment, `Response` is any serializable type. With `AWS_LAMBDA_MAX_CONCURRENCY` above 1
/// (Lambda Managed Instances) that many invocations are served at once; otherwise one at a time.
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
    E: DeserializeOwned + 'static,
    R: Serialize + Send + 'static,
    H: Fn(E, Ctx<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Error>> + Send + 'static,
{
    Options::default().run(handler).await
}
