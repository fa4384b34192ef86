//! [`Serving`]: everything a function's invocations share once its cold start is over: the
//! [`Stage`] (strategy, configs, secrets) and each environment's state. Every runner and every
//! tower service of the framework goes through it, and so does [`crate::testing`].

use std::fmt;
use std::sync::Arc;

use futures_util::future::join_all;
use serde::de::DeserializeOwned;

use crate::config::ConfigError;
use crate::environment::Strategy;
use crate::error::InvocationError;
use crate::error_type;
use crate::secrets::SecretError;
use crate::stage::{InitError, NotReady, Stage};
use crate::state::{Env, MakeState, StateError, States};

/// A function's shared state after its cold start.
pub(crate) struct Serving<C, M: MakeState<C>> {
    stage: Stage<C>,
    states: States<C, M>,
}

impl<C, M> Serving<C, M>
where
    C: DeserializeOwned + Send + Sync + 'static,
    M: MakeState<C>,
{
    /// The cold start's work, before the first `/next`: every environment known at init has
    /// its config checked ([`Stage::new`]); the environments served from init on (see
    /// [`crate::state`]) also have their secret references resolved and their state built.
    /// Every environment's failure is reported at once.
    pub(crate) async fn start(
        vars: Vec<(String, String)>,
        prefix: &str,
        make_state: M,
    ) -> Result<Self, StartError> {
        let stage = Stage::<C>::new(vars, prefix).map_err(StartError::Config)?;
        let serving = Serving {
            states: States::new(make_state),
            stage,
        };
        let envs: Vec<Arc<str>> = match serving.stage.strategy() {
            Strategy::MultiStack { env } => vec![env.as_str().into()],
            Strategy::SingleStack { .. } if M::STATELESS => Vec::new(),
            strategy @ Strategy::SingleStack { .. } => strategy
                .known_environments()
                .into_iter()
                .map(Into::into)
                .collect(),
        };

        // Each environment's references, then its state; all environments at once.
        let prepared = join_all(envs.iter().map(|env| serving.prepare(env))).await;
        let (mut secret_errors, mut config_errors, mut state_errors) =
            (Vec::new(), Vec::new(), Vec::new());
        for failure in prepared.into_iter().filter_map(Result::err) {
            match failure {
                NotPrepared::Secret(err) => secret_errors.push(err),
                NotPrepared::Config(err) => config_errors.push(err),
                NotPrepared::State(err) => state_errors.push(err),
            }
        }
        if !secret_errors.is_empty() {
            return Err(StartError::Secret(secret_errors));
        }
        if !config_errors.is_empty() {
            return Err(StartError::Config(InitError(config_errors)));
        }
        if !state_errors.is_empty() {
            return Err(StartError::State(state_errors));
        }
        Ok(serving)
    }

    /// `env`'s config with its references resolved, and its state built.
    async fn prepare(&self, env: &Arc<str>) -> Result<(), NotPrepared> {
        let config = self.stage.ready(env).await.map_err(|err| match err {
            NotReady::Secret(err) => NotPrepared::Secret(err),
            NotReady::Config(err) => NotPrepared::Config(err),
        })?;
        self.states
            .get(env, &config)
            .await
            .map_err(NotPrepared::State)?;
        Ok(())
    }

    /// The environment of an invocation through `invoked_arn`, with its config and its state
    /// (resolved and built on the environment's first invocation when init did not).
    pub(crate) async fn env(&self, invoked_arn: &str) -> Result<Env<C, M::State>, InvocationError> {
        let (name, config) = self.stage.resolve(invoked_arn).await?;
        let name: Arc<str> = name.into();
        let state = self.states.get(&name, &config).await?;
        Ok(Env::new(name, config, state))
    }
}

/// Why one environment was not ready at init.
enum NotPrepared {
    Secret(SecretError),
    Config(ConfigError),
    State(StateError),
}

/// Why a cold start failed: configs, secret references, or state constructors.
#[derive(Debug)]
pub(crate) enum StartError {
    Config(InitError),
    Secret(Vec<SecretError>),
    State(Vec<StateError>),
}

impl StartError {
    /// The `errorType` posted to `/runtime/init/error`.
    pub(crate) fn error_type(&self) -> &'static str {
        match self {
            StartError::Config(_) => error_type::CONFIG,
            StartError::Secret(_) => error_type::SECRET,
            StartError::State(_) => error_type::STATE,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn lines<E: fmt::Display>(f: &mut fmt::Formatter<'_>, errors: &[E]) -> fmt::Result {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            f.write_str(&lines.join("\n"))
        }
        match self {
            StartError::Config(err) => err.fmt(f),
            StartError::Secret(errors) => lines(f, errors),
            StartError::State(errors) => lines(f, errors),
        }
    }
}

impl std::error::Error for StartError {}

impl From<StartError> for InvocationError {
    fn from(err: StartError) -> Self {
        InvocationError {
            error_type: err.error_type().to_owned(),
            message: err.to_string(),
        }
    }
}
