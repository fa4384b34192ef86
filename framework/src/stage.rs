//! [`Stage`]: the environment strategy plus each environment's config, loaded once and cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::de::DeserializeOwned;

use crate::config::{self, ConfigError, Scope};
use crate::environment::{EnvironmentError, Strategy};
use crate::error::InvocationError;

/// What the function knows at cold start, shared by every invocation.
pub struct Stage<C> {
    strategy: Strategy,
    prefix: String,
    /// The process environment as it was at cold start.
    vars: Vec<(String, String)>,
    configs: RwLock<HashMap<String, Arc<C>>>,
}

impl<C: DeserializeOwned> Stage<C> {
    /// Reads the strategy and loads the config of every environment known at init
    /// (`LAMBDA_STAGE_ENV`, or `LAMBDA_STAGE_ENVS` + `LAMBDA_STAGE_DEFAULT_ENV`), so a broken
    /// config fails the cold start rather than the first request. One error lists them all.
    pub fn new(vars: Vec<(String, String)>, prefix: &str) -> Result<Self, InitError> {
        let stage = Stage {
            strategy: Strategy::from_vars(&vars),
            prefix: prefix.to_owned(),
            vars,
            configs: RwLock::default(),
        };
        let mut failures = Vec::new();
        for env in stage.strategy.known_environments() {
            if let Err(err) = stage.config(env) {
                failures.push(err);
            }
        }
        if failures.is_empty() {
            Ok(stage)
        } else {
            Err(InitError(failures))
        }
    }

    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    /// The environment and its config for an invocation through `invoked_arn`.
    pub fn resolve(&self, invoked_arn: &str) -> Result<(String, Arc<C>), InvocationError> {
        let env = self
            .strategy
            .environment_for(invoked_arn)
            .map_err(|err: EnvironmentError| InvocationError::environment(&err))?;
        let config = self
            .config(env)
            .map_err(|err| InvocationError::config(&err))?;
        Ok((env.to_owned(), config))
    }

    /// The config of `env`, loaded on first use.
    pub fn config(&self, env: &str) -> Result<Arc<C>, ConfigError> {
        if let Some(config) = self.read_cache().get(env) {
            return Ok(config.clone());
        }
        let scope = match self.strategy {
            Strategy::MultiStack { .. } => Scope::Shared,
            Strategy::SingleStack { .. } => Scope::Environment(env),
        };
        let config = Arc::new(config::load::<C>(&self.vars, &self.prefix, scope, env)?);
        let mut cache = self.configs.write().unwrap_or_else(|e| e.into_inner());
        Ok(cache.entry(env.to_owned()).or_insert(config).clone())
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<C>>> {
        // A panic while holding the lock cannot leave the map half-written: recover it.
        self.configs.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The configs that failed at cold start.
#[derive(Debug)]
pub struct InitError(pub Vec<ConfigError>);

impl InitError {
    pub const ERROR_TYPE: &'static str = "LambdaStage.ConfigError";
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let messages: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&messages.join("\n"))
    }
}

impl std::error::Error for InitError {}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Config {
        greeting: String,
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn init_validates_every_listed_environment_at_once() {
        let err = Stage::<Config>::new(
            vars(&[("LAMBDA_STAGE_ENVS", "staging,prod"), ("APP_STAGING__GREETING", "hi")]),
            "APP_",
        )
        .err()
        .unwrap();
        let text = err.to_string();
        assert!(text.contains("APP_PROD__GREETING"), "{text}");
        assert!(!text.contains("`staging`"), "{text}");
    }

    #[test]
    fn caches_one_config_per_environment() {
        let stage = Stage::<Config>::new(
            vars(&[("APP_STAGING__GREETING", "s"), ("APP_PROD__GREETING", "p")]),
            "APP_",
        )
        .unwrap();
        let arn = "arn:aws:lambda:eu-west-1:1:function:f";
        let (env, staging) = stage.resolve(&format!("{arn}:staging")).unwrap();
        assert_eq!((env.as_str(), staging.greeting.as_str()), ("staging", "s"));
        let (_, prod) = stage.resolve(&format!("{arn}:prod")).unwrap();
        assert_eq!(prod.greeting, "p");
        let (_, again) = stage.resolve(&format!("{arn}:staging")).unwrap();
        assert!(Arc::ptr_eq(&staging, &again));
        let err = stage.resolve(&format!("{arn}:qa")).unwrap_err();
        assert_eq!(err.error_type, "LambdaStage.ConfigError");
    }
}
