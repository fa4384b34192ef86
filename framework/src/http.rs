//! HTTP handlers through `lambda_http`: API Gateway REST (v1), HTTP API (v2) and ALB events,
//! either as a plain handler ([`run_http`]) or as an axum [`Router`] ([`run_router`]).
//! Both see the path without a named API Gateway stage's `/<stage>` prefix.

mod stage_path;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use lambda_http::{IntoResponse, Request, RequestExt as _};
use serde::de::DeserializeOwned;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use crate::error::{Error, InvocationError};
use crate::runtime::{catch_failures, Ctx, Options};
use crate::stage::Stage;
use stage_path::strip_stage_prefix;

/// An environment and its config: the state of an axum router built by [`run_router`].
///
/// ```
/// # use axum::extract::State;
/// # #[derive(serde::Deserialize)] struct Config { greeting: String }
/// async fn hello(State(env): State<lambda_stage::http::Env<Config>>) -> String {
///     format!("{} from {}", env.config().greeting, env.name())
/// }
/// ```
#[derive(Debug)]
pub struct Env<C> {
    name: Arc<str>,
    config: Arc<C>,
}

impl<C> Clone for Env<C> {
    fn clone(&self) -> Self {
        Env {
            name: self.name.clone(),
            config: self.config.clone(),
        }
    }
}

impl<C> Env<C> {
    pub(crate) fn new(name: String, config: C) -> Self {
        Env {
            name: name.into(),
            config: Arc::new(config),
        }
    }

    /// The environment's name (`staging`, `prod`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &C {
        &self.config
    }
}

impl Options {
    /// [`run_http`] with these options.
    pub async fn run_http<C, R, H, Fut>(self, handler: H) -> Result<(), Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        R: IntoResponse,
        H: Fn(Request, Ctx<C>) -> Fut,
        Fut: Future<Output = Result<R, Error>> + Send,
    {
        let stage = self.start::<C>().await?;
        let handler = &handler;
        lambda_http::run(lambda_http::service_fn(move |request: Request| {
            let request = strip_stage_prefix(request);
            let resolved = resolve(&stage, &request);
            let handling = resolved.map(|(env, config)| {
                let span = tracing::info_span!("invocation", env = %env);
                let ctx = Ctx::new(env, config, request.lambda_context());
                (handler(request, ctx), span)
            });
            async move {
                let (handling, span) = handling?;
                catch_failures(handling).instrument(span).await
            }
        }))
        .await
    }

    /// [`run_router`] with these options.
    pub async fn run_router<C, F>(self, make_router: F) -> Result<(), Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        F: Fn(Env<C>) -> Router,
    {
        let stage = self.start::<C>().await?;
        // One router per environment, built on its first request: its state is that
        // environment's config, so handlers cannot reach another environment's values.
        let routers: Mutex<HashMap<String, Router>> = Mutex::default();
        let (routers, make_router) = (&routers, &make_router);
        lambda_http::run(lambda_http::service_fn(move |request: Request| {
            let request = strip_stage_prefix(request);
            let router = resolve(&stage, &request).map(|(env, config)| {
                let span = tracing::info_span!("invocation", env = %env);
                let mut routers = routers.lock().unwrap_or_else(|e| e.into_inner());
                let router = routers.entry(env.clone()).or_insert_with(|| {
                    make_router(Env {
                        name: env.into(),
                        config,
                    })
                });
                (router.clone(), span)
            });
            async move {
                let (router, span) = router?;
                catch_failures(async { Ok(router.oneshot(request).await?) })
                    .instrument(span)
                    .await
            }
        }))
        .await
    }
}

fn resolve<C: DeserializeOwned>(
    stage: &Stage<C>,
    request: &Request,
) -> Result<(String, Arc<C>), InvocationError> {
    let arn = request
        .lambda_context_ref()
        .map(|ctx| ctx.invoked_function_arn.as_str())
        .unwrap_or_default();
    stage.resolve(arn)
}

/// Runs an HTTP handler: `async fn(lambda_http::Request, Ctx<Config>) -> Result<impl IntoResponse, Error>`.
///
/// Under a named API Gateway stage, the request's path has no `/<stage>` prefix.
pub async fn run_http<C, R, H, Fut>(handler: H) -> Result<(), Error>
where
    C: DeserializeOwned + Send + Sync + 'static,
    R: IntoResponse,
    H: Fn(Request, Ctx<C>) -> Fut,
    Fut: Future<Output = Result<R, Error>> + Send,
{
    Options::default().run_http(handler).await
}

/// Runs an axum router built per environment by `make_router`, whose state is that
/// environment's [`Env`] (name + config). Under a named API Gateway stage, routes match the
/// path without its `/<stage>` prefix: `/hello/{name}` answers `/staging/hello/Ada`.
///
/// ```no_run
/// use axum::{extract::{Path, State}, routing::get, Json, Router};
/// use lambda_stage::http::Env;
///
/// #[derive(serde::Deserialize)]
/// struct Config { greeting: String }
///
/// async fn hello(State(env): State<Env<Config>>, Path(name): Path<String>) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "message": format!("{}, {name}!", env.config().greeting) }))
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), lambda_stage::Error> {
///     lambda_stage::http::run_router(|env| Router::new().route("/hello/{name}", get(hello)).with_state(env)).await
/// }
/// ```
pub async fn run_router<C, F>(make_router: F) -> Result<(), Error>
where
    C: DeserializeOwned + Send + Sync + 'static,
    F: Fn(Env<C>) -> Router,
{
    Options::default().run_router(make_router).await
}
