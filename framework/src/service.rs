//! [`EventService`]: an event handler's invocations as a tower service of lambda_runtime's
//! events: environment, config and state, then the event, then the handler inside a span
//! carrying `env`, every failure turned into an [`InvocationError`].

use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use lambda_runtime::{LambdaEvent, Service};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tracing::Instrument as _;

use crate::error::{Error, InvocationError};
use crate::runtime::Ctx;
use crate::serving::Serving;
use crate::state::MakeState;

/// A handler with its future boxed, so that a service can name its type.
type BoxedHandler<E, C, S, R> =
    Arc<dyn Fn(E, Ctx<C, S>) -> BoxFuture<'static, Result<R, Error>> + Send + Sync>;

/// An event handler's invocations as a tower [`Service`]: give it to
/// `lambda_runtime::Runtime::new` (see [`crate::Options::service`]). Cloning it is cheap; every
/// clone serves the same environments, so `run_concurrent` can use it.
pub struct EventService<C, M: MakeState<C>, E, R> {
    serving: Arc<Serving<C, M>>,
    handler: BoxedHandler<E, C, M::State, R>,
    _event: PhantomData<fn(E)>,
}

impl<C, M: MakeState<C>, E, R> Clone for EventService<C, M, E, R> {
    fn clone(&self) -> Self {
        EventService {
            serving: self.serving.clone(),
            handler: self.handler.clone(),
            _event: PhantomData,
        }
    }
}

impl<C, M, E, R> EventService<C, M, E, R>
where
    C: DeserializeOwned + Send + Sync + 'static,
    M: MakeState<C>,
    E: DeserializeOwned + 'static,
    R: 'static,
{
    pub(crate) fn new<H, Fut>(serving: Arc<Serving<C, M>>, handler: H) -> Self
    where
        H: Fn(E, Ctx<C, M::State>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
    {
        EventService {
            serving,
            handler: Arc::new(move |event, ctx| handler(event, ctx).boxed()),
            _event: PhantomData,
        }
    }
}

impl<C, M, E, R> Service<LambdaEvent<Box<RawValue>>> for EventService<C, M, E, R>
where
    C: DeserializeOwned + Send + Sync + 'static,
    M: MakeState<C>,
    E: DeserializeOwned + 'static,
    R: Send + 'static,
{
    type Response = R;
    type Error = InvocationError;
    type Future = BoxFuture<'static, Result<R, InvocationError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), InvocationError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<Box<RawValue>>) -> Self::Future {
        let (serving, handler) = (self.serving.clone(), self.handler.clone());
        async move {
            let env = serving.env(&event.context.invoked_function_arn).await?;
            let payload: E = parse_event(event.payload.get())?;
            let span = tracing::info_span!("invocation", env = %env.name());
            let ctx = Ctx::new(env, event.context);
            catch_failures(handler(payload, ctx)).instrument(span).await
        }
        .boxed()
    }
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
