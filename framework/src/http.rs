//! HTTP handlers through `lambda_http`: API Gateway REST (v1), HTTP API (v2) and ALB events,
//! either as a plain handler ([`run_http`]) or as an axum [`Router`] ([`run_router`]).
//! Both see the path without a named API Gateway stage's `/<stage>` prefix, and both are
//! [`HttpService`]s underneath, for apps that compose their own runtime.

mod stage_path;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use lambda_http::{Body, IntoResponse, Request, RequestExt as _, Response};
use lambda_runtime::tower::ServiceExt as _;
use lambda_runtime::Service;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use crate::error::{Error, InvocationError};
use crate::runtime::{Ctx, Options};
use crate::service::catch_failures;
use crate::serving::Serving;
use crate::state::MakeState;
use stage_path::strip_stage_prefix;

/// An environment, its config and its state: the axum state of a router built by
/// [`run_router`] (the same type as [`crate::Env`]).
pub use crate::state::Env;

/// A handler with its response converted to `lambda_http`'s and its future boxed.
type BoxedHandler<C, S> = Arc<
    dyn Fn(Request, Ctx<C, S>) -> BoxFuture<'static, Result<Response<Body>, Error>> + Send + Sync,
>;

/// HTTP invocations as a tower [`Service`] of `lambda_http` requests: give it to
/// `lambda_http::run_concurrent`, or to `lambda_runtime::Runtime::new` through
/// `lambda_http::Adapter` (see [`Options::http_service`]). Cloning it is cheap.
pub struct HttpService<C, M: MakeState<C>> {
    serving: Arc<Serving<C, M>>,
    handler: BoxedHandler<C, M::State>,
}

impl<C, M: MakeState<C>> Clone for HttpService<C, M> {
    fn clone(&self) -> Self {
        HttpService {
            serving: self.serving.clone(),
            handler: self.handler.clone(),
        }
    }
}

impl<C, M> Service<Request> for HttpService<C, M>
where
    C: DeserializeOwned + Send + Sync + 'static,
    M: MakeState<C>,
{
    type Response = Response<Body>;
    type Error = InvocationError;
    type Future = BoxFuture<'static, Result<Response<Body>, InvocationError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), InvocationError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let (serving, handler) = (self.serving.clone(), self.handler.clone());
        let request = strip_stage_prefix(request);
        async move {
            let arn = request
                .lambda_context_ref()
                .map(|ctx| ctx.invoked_function_arn.clone())
                .unwrap_or_default();
            let env = serving.env(&arn).await?;
            let span = tracing::info_span!("invocation", env = %env.name());
            let ctx = Ctx::new(env, request.lambda_context());
            catch_failures(handler(request, ctx)).instrument(span).await
        }
        .boxed()
    }
}

impl<M> Options<M> {
    /// Starts the function (see [`run_http`]) and returns its handling as an [`HttpService`].
    pub async fn http_service<C, R, H, Fut>(self, handler: H) -> Result<HttpService<C, M>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        M: MakeState<C>,
        R: IntoResponse + Send + 'static,
        H: Fn(Request, Ctx<C, M::State>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
    {
        let handler: BoxedHandler<C, M::State> = Arc::new(move |request, ctx| {
            let handling = handler(request, ctx);
            // lambda_http's response, whose body is `Sync` as `run_concurrent` requires.
            async move { Ok(handling.await?.into_response().await) }.boxed()
        });
        Ok(HttpService {
            serving: self.start().await?,
            handler,
        })
    }

    /// Starts the function (see [`run_router`]) and returns its handling as an
    /// [`HttpService`].
    pub async fn router_service<C, F>(self, make_router: F) -> Result<HttpService<C, M>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        M: MakeState<C>,
        F: Fn(Env<C, M::State>) -> Router + Send + Sync + 'static,
    {
        // One router per environment, built on its first request: its state is that
        // environment's, so handlers cannot reach another environment's values.
        let routers: Arc<Mutex<HashMap<String, Router>>> = Arc::default();
        let handler: BoxedHandler<C, M::State> = Arc::new(move |request, ctx| {
            let router = {
                let mut routers = routers.lock().unwrap_or_else(|e| e.into_inner());
                routers
                    .entry(ctx.env().to_owned())
                    .or_insert_with(|| make_router(ctx.environment().clone()))
                    .clone()
            };
            async move {
                let response = router.oneshot(request).await?;
                Ok(response.into_response().await)
            }
            .boxed()
        });
        Ok(HttpService {
            serving: self.start().await?,
            handler,
        })
    }

    /// [`run_http`] with these options.
    pub async fn run_http<C, R, H, Fut>(self, handler: H) -> Result<(), Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        M: MakeState<C>,
        R: IntoResponse + Send + 'static,
        H: Fn(Request, Ctx<C, M::State>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
    {
        lambda_http::run_concurrent(self.http_service(handler).await?).await
    }

    /// [`run_router`] with these options.
    pub async fn run_router<C, F>(self, make_router: F) -> Result<(), Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        M: MakeState<C>,
        F: Fn(Env<C, M::State>) -> Router + Send + Sync + 'static,
    {
        lambda_http::run_concurrent(self.router_service(make_router).await?).await
    }
}

/// Runs an HTTP handler: `async fn(lambda_http::Request, Ctx<Config>) -> Result<impl IntoResponse, Error>`.
///
/// Under a named API Gateway stage, the request's path has no `/<stage>` prefix. With
/// `AWS_LAMBDA_MAX_CONCURRENCY` above 1, that many requests are served at once.
pub async fn run_http<C, R, H, Fut>(handler: H) -> Result<(), Error>
where
    C: DeserializeOwned + Send + Sync + 'static,
    R: IntoResponse + Send + 'static,
    H: Fn(Request, Ctx<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Error>> + Send + 'static,
{
    Options::default().run_http(handler).await
}

/// Runs an axum router built per environment by `make_router`, whose state is that
/// environment's [`Env`] (name, config and state). Under a named API Gateway stage, routes match
/// the path without its `/<stage>` prefix: `/hello/{name}` answers `/staging/hello/Ada`.
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
    F: Fn(Env<C>) -> Router + Send + Sync + 'static,
{
    Options::default().run_router(make_router).await
}
