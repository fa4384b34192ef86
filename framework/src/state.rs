//! Per-environment state: what a function builds once per environment (AWS SDK clients,
//! connection pools, HTTP clients) from the environment's name and resolved config, and hands
//! to that environment's invocations only.
//!
//! When it is built:
//! - multi-stack: at init, for the one environment;
//! - single-stack: at init for every environment known then (`LAMBDA_STAGE_ENVS`, plus
//!   `LAMBDA_STAGE_DEFAULT_ENV`), whose secret references are resolved at init for it; any
//!   other environment on its first invocation.
//!
//! A constructor that fails (or panics) at init fails the cold start
//! (`LambdaStage.StateError`, posted to `/runtime/init/error`). On a first invocation it is that
//! invocation's error, and the next invocation of the environment tries again: a failure is never
//! cached. Invocations of one environment that arrive together wait for one construction.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use tokio::sync::OnceCell;

use crate::error::{panic_message, Error, InvocationError};

/// One environment as its invocations see it: its name, its config and its state.
///
/// A state constructor gets an `Env<Config>` (its state is `()`); an axum router built by
/// `lambda_stage::http::run_router` gets an `Env<Config, State>` as its axum state.
///
/// ```
/// # #[derive(serde::Deserialize)] struct Config { table: String }
/// /// What every invocation of one environment shares.
/// struct Tables { orders: String }
///
/// async fn tables(env: lambda_stage::Env<Config>) -> Result<Tables, lambda_stage::Error> {
///     Ok(Tables { orders: format!("{}-{}", env.config().table, env.name()) })
/// }
/// ```
pub struct Env<C, S = ()> {
    name: Arc<str>,
    config: Arc<C>,
    state: Arc<S>,
}

impl<C, S> Clone for Env<C, S> {
    fn clone(&self) -> Self {
        Env {
            name: self.name.clone(),
            config: self.config.clone(),
            state: self.state.clone(),
        }
    }
}

impl<C: fmt::Debug, S: fmt::Debug> fmt::Debug for Env<C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("state", &self.state)
            .finish()
    }
}

impl<C, S> Env<C, S> {
    pub(crate) fn new(name: Arc<str>, config: Arc<C>, state: Arc<S>) -> Self {
        Env {
            name,
            config,
            state,
        }
    }

    /// The environment's name (`staging`, `prod`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The environment's config.
    pub fn config(&self) -> &C {
        &self.config
    }

    /// The environment's state, built by the constructor given to [`crate::Options::state`].
    pub fn state(&self) -> &S {
        &self.state
    }
}

/// How an environment's state is built: implemented for every async function (or closure)
/// `Fn(Env<Config>) -> impl Future<Output = Result<State, Error>>`, and by [`NoState`].
pub trait MakeState<C>: Send + Sync + 'static {
    /// What the constructor builds.
    type State: Send + Sync + 'static;

    /// `true` only for [`NoState`]: there is nothing to build, so a single-stack cold start
    /// leaves every environment's secret references for its first invocation.
    const STATELESS: bool = false;

    /// Builds `env`'s state.
    fn make(&self, env: Env<C>) -> BoxFuture<'static, Result<Self::State, Error>>;
}

impl<C, S, F, Fut> MakeState<C> for F
where
    F: Fn(Env<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<S, Error>> + Send + 'static,
    S: Send + Sync + 'static,
{
    type State = S;

    fn make(&self, env: Env<C>) -> BoxFuture<'static, Result<S, Error>> {
        self(env).boxed()
    }
}

/// No per-environment state (the default): handlers get `()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoState;

impl<C> MakeState<C> for NoState {
    type State = ();
    const STATELESS: bool = true;

    fn make(&self, _: Env<C>) -> BoxFuture<'static, Result<(), Error>> {
        std::future::ready(Ok(())).boxed()
    }
}

/// A constructor that failed or panicked, for one environment.
#[derive(Debug)]
pub(crate) struct StateError {
    env: String,
    reason: String,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not build the state of environment `{}`: {}",
            self.env, self.reason
        )
    }
}

impl std::error::Error for StateError {}

impl From<StateError> for InvocationError {
    fn from(err: StateError) -> Self {
        InvocationError {
            error_type: crate::error_type::STATE.to_owned(),
            message: format!("{err} (the next invocation of `{}` tries again)", err.env),
        }
    }
}

/// One environment's state: empty until its construction succeeds.
type Slot<S> = Arc<OnceCell<Arc<S>>>;

/// Each environment's state, built once by `M` and shared by that environment's invocations.
pub(crate) struct States<C, M: MakeState<C>> {
    make: M,
    built: Mutex<HashMap<Arc<str>, Slot<M::State>>>,
    _config: std::marker::PhantomData<fn(C)>,
}

impl<C, M: MakeState<C>> States<C, M> {
    pub(crate) fn new(make: M) -> Self {
        States {
            make,
            built: Mutex::default(),
            _config: std::marker::PhantomData,
        }
    }

    /// `env`'s state, built from `config` by the first caller; callers that arrive during the
    /// construction wait for it, and a failure leaves the next caller to try again.
    pub(crate) async fn get(
        &self,
        env: &Arc<str>,
        config: &Arc<C>,
    ) -> Result<Arc<M::State>, StateError> {
        let cell = {
            // Entries are only ever added: a panic elsewhere cannot leave the map half-written.
            let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
            built.entry(env.clone()).or_default().clone()
        };
        let state = cell
            .get_or_try_init(|| async {
                let input = Env::new(env.clone(), config.clone(), Arc::new(()));
                match AssertUnwindSafe(self.make.make(input)).catch_unwind().await {
                    Ok(Ok(state)) => Ok(Arc::new(state)),
                    Ok(Err(err)) => Err(StateError {
                        env: env.to_string(),
                        reason: err.to_string(),
                    }),
                    Err(panic) => Err(StateError {
                        env: env.to_string(),
                        reason: format!("the constructor panicked: {}", panic_message(&*panic)),
                    }),
                }
            })
            .await?;
        Ok(state.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A constructor that fails its first `failures` calls and counts every call.
    fn flaky(failures: usize, calls: Arc<AtomicUsize>) -> impl MakeState<u8, State = String> {
        move |env: Env<u8>| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                // Let other callers arrive while this construction is under way.
                tokio::task::yield_now().await;
                if call < failures {
                    return Err(format!("attempt {call} failed").into());
                }
                Ok(format!("{} with config {}", env.name(), env.config()))
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failure_is_never_cached_and_a_success_is_built_once() {
        let calls = Arc::new(AtomicUsize::new(0));
        let states = States::new(flaky(1, calls.clone()));
        let (prod, config): (Arc<str>, _) = ("prod".into(), Arc::new(7));
        let err = states.get(&prod, &config).await.unwrap_err();
        assert_eq!(
            InvocationError::from(err).message,
            "could not build the state of environment `prod`: attempt 0 failed (the next \
             invocation of `prod` tries again)"
        );
        let first = states.get(&prod, &config).await.unwrap();
        assert_eq!(*first, "prod with config 7");
        let again = states.get(&prod, &config).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_environment_gets_its_own_state_and_concurrent_callers_share_one_build() {
        let calls = Arc::new(AtomicUsize::new(0));
        let states = States::new(flaky(0, calls.clone()));
        let (staging, prod): (Arc<str>, Arc<str>) = ("staging".into(), "prod".into());
        let (one, two) = (Arc::new(1), Arc::new(2));
        let (one, two, three) = tokio::join!(
            states.get(&staging, &one),
            states.get(&staging, &one),
            states.get(&prod, &two),
        );
        assert_eq!(*one.unwrap(), "staging with config 1");
        assert_eq!(*two.unwrap(), "staging with config 1");
        assert_eq!(*three.unwrap(), "prod with config 2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_constructor_is_an_error_naming_the_environment() {
        let states = States::new(|_: Env<u8>| async {
            if true {
                panic!("no table name");
            }
            Ok(())
        });
        let err = states.get(&"qa".into(), &Arc::new(0)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not build the state of environment `qa`: the constructor panicked: no table name"
        );
    }
}
