//! [`Stage`]: the environment strategy plus each environment's config, loaded once and cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use secrecy::zeroize::Zeroize as _;
use serde::de::DeserializeOwned;

use crate::config::{self, ConfigError, Scope};
use crate::environment::{EnvironmentError, Strategy};
use crate::error::InvocationError;
use crate::secrets::{self, SecretError, Secrets};

/// What the function knows at cold start, shared by every invocation.
pub struct Stage<C> {
    strategy: Strategy,
    prefix: String,
    /// The fields `C` declares (see [`config::declared`]): only their references are resolved.
    declared: Option<&'static [&'static str]>,
    /// The process environment as it was at cold start.
    vars: Vec<(String, String)>,
    /// Each environment's config, with the generation of the secret values it was built from.
    configs: RwLock<HashMap<String, (u64, Arc<C>)>>,
    /// Each environment's resolved references (see [`crate::secrets`]).
    secrets: Secrets,
}

impl<C: DeserializeOwned> Stage<C> {
    /// Reads the strategy and loads the config of every environment known at init
    /// (`LAMBDA_STAGE_ENV`, or `LAMBDA_STAGE_ENVS` + `LAMBDA_STAGE_DEFAULT_ENV`), so a broken
    /// config fails the cold start rather than the first request. One error lists them all.
    ///
    /// Secret references are checked for shape here and resolved later (see [`crate::secrets`]).
    pub fn new(vars: Vec<(String, String)>, prefix: &str) -> Result<Self, InitError> {
        let mut failures = Vec::new();
        let ttl = secrets::ttl(&vars).unwrap_or_else(|problem| {
            failures.push(ConfigError {
                env: "*".to_owned(),
                problems: vec![problem],
            });
            None
        });
        let stage = Stage {
            strategy: Strategy::from_vars(&vars),
            prefix: prefix.to_owned(),
            declared: config::declared::<C>(),
            vars,
            configs: RwLock::default(),
            secrets: Secrets::new(ttl),
        };
        if !cfg!(feature = "secrets") {
            let problems = secrets::unsupported(&stage.vars, prefix, stage.declared);
            if !problems.is_empty() {
                failures.push(ConfigError {
                    env: "*".to_owned(),
                    problems,
                });
            }
        }
        for env in stage.strategy.known_environments() {
            if let Err(err) = stage.check(env) {
                failures.push(err);
            }
        }
        if failures.is_empty() {
            Ok(stage)
        } else {
            Err(InitError(failures))
        }
    }

    /// How this function learns each invocation's environment.
    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    /// The environment and its config for an invocation through `invoked_arn`. On the
    /// environment's first use its secret references are fetched (awaited: no thread blocks,
    /// so any tokio runtime flavour serves it).
    pub async fn resolve(&self, invoked_arn: &str) -> Result<(String, Arc<C>), InvocationError> {
        let env = self.environment(invoked_arn)?;
        let config = self.ready(env).await.map_err(|err| match err {
            NotReady::Secret(err) => InvocationError::secret(&err),
            NotReady::Config(err) => InvocationError::config(&err),
        })?;
        Ok((env.to_owned(), config))
    }

    /// `env`'s config with its secret references resolved (fetched on first use).
    pub(crate) async fn ready(&self, env: &str) -> Result<Arc<C>, NotReady> {
        self.prepare(env).await.map_err(NotReady::Secret)?;
        self.config(env).map_err(NotReady::Config)
    }

    fn environment<'a>(&'a self, invoked_arn: &'a str) -> Result<&'a str, InvocationError> {
        self.strategy
            .environment_for(invoked_arn)
            .map_err(|err: EnvironmentError| InvocationError::environment(&err))
    }

    /// Fetches `env`'s references on first use (no AWS call when it has none).
    async fn prepare(&self, env: &str) -> Result<(), SecretError> {
        let scope = self.scope(env);
        let wanted = || secrets::wanted(&self.vars, &self.prefix, scope, self.declared).0;
        self.secrets.prepare(env, wanted).await
    }

    fn scope<'a>(&self, env: &'a str) -> Scope<'a> {
        match self.strategy {
            Strategy::MultiStack { .. } => Scope::Shared,
            Strategy::SingleStack { .. } => Scope::Environment(env),
        }
    }

    /// Init-time check of `env`'s config. A reference stands in for its value until it is
    /// resolved, so only the other variables' problems (and malformed references) count.
    fn check(&self, env: &str) -> Result<(), ConfigError> {
        let scope = self.scope(env);
        let (wanted, malformed) = secrets::wanted(&self.vars, &self.prefix, scope, self.declared);
        if wanted.is_empty() && malformed.is_empty() {
            return self.config(env).map(drop);
        }
        let mut problems = match config::load::<C>(&self.vars, &self.prefix, scope, env) {
            Ok(_) => Vec::new(),
            Err(err) => err.problems,
        };
        problems.retain(|(variable, _)| {
            !wanted.iter().any(|w| &w.variable == variable)
                && !malformed.iter().any(|(m, _)| m == variable)
        });
        problems.extend(malformed);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                env: env.to_owned(),
                problems,
            })
        }
    }

    /// The config of `env`, loaded on first use (and again after its secrets were refreshed).
    pub fn config(&self, env: &str) -> Result<Arc<C>, ConfigError> {
        let resolved = self.secrets.values(env);
        let generation = resolved.as_ref().map_or(0, |(generation, _)| *generation);
        if let Some((built, config)) = self.read_cache().get(env) {
            if *built == generation {
                return Ok(config.clone());
            }
        }
        let scope = self.scope(env);
        let config = match resolved {
            Some((_, values)) if !values.is_empty() => {
                let mut vars = secrets::substitute(&self.vars, &values);
                let loaded = config::load::<C>(&vars, &self.prefix, scope, env);
                vars.iter_mut().for_each(|(_, value)| value.zeroize());
                loaded?
            }
            _ => {
                // A reference must never reach the app as if it were the value.
                let (wanted, _) = secrets::wanted(&self.vars, &self.prefix, scope, self.declared);
                if !wanted.is_empty() {
                    return Err(ConfigError {
                        env: env.to_owned(),
                        problems: wanted
                            .into_iter()
                            .map(|w| {
                                let problem = format!("`{}` is not resolved yet", w.reference);
                                (w.variable, problem)
                            })
                            .collect(),
                    });
                }
                config::load::<C>(&self.vars, &self.prefix, scope, env)?
            }
        };
        let mut cache = self.configs.write().unwrap_or_else(|e| e.into_inner());
        match cache.get(env) {
            // Another thread built the same generation first: everyone shares one config.
            Some((built, existing)) if *built == generation => Ok(existing.clone()),
            _ => {
                let config = Arc::new(config);
                cache.insert(env.to_owned(), (generation, config.clone()));
                Ok(config)
            }
        }
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, (u64, Arc<C>)>> {
        // A panic while holding the lock cannot leave the map half-written: recover it.
        self.configs.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The configs that failed at cold start.
#[derive(Debug)]
pub struct InitError(pub Vec<ConfigError>);

impl InitError {
    /// The `errorType` posted to `/runtime/init/error`.
    pub const ERROR_TYPE: &'static str = crate::error_type::CONFIG;
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let messages: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&messages.join("\n"))
    }
}

impl std::error::Error for InitError {}

/// Why an environment's config is not ready.
#[derive(Debug)]
pub(crate) enum NotReady {
    Secret(SecretError),
    Config(ConfigError),
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Config {
        greeting: String,
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn init_validates_every_listed_environment_at_once() {
        let err = Stage::<Config>::new(
            vars(&[
                ("LAMBDA_STAGE_ENVS", "staging,prod"),
                ("APP_STAGING__GREETING", "hi"),
            ]),
            "APP_",
        )
        .err()
        .unwrap();
        let text = err.to_string();
        assert!(text.contains("APP_PROD__GREETING"), "{text}");
        assert!(!text.contains("`staging`"), "{text}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn caches_one_config_per_environment() {
        let stage = Stage::<Config>::new(
            vars(&[("APP_STAGING__GREETING", "s"), ("APP_PROD__GREETING", "p")]),
            "APP_",
        )
        .unwrap();
        let arn = "arn:aws:lambda:eu-west-1:1:function:f";
        let (env, staging) = stage.resolve(&format!("{arn}:staging")).await.unwrap();
        assert_eq!((env.as_str(), staging.greeting.as_str()), ("staging", "s"));
        let (_, prod) = stage.resolve(&format!("{arn}:prod")).await.unwrap();
        assert_eq!(prod.greeting, "p");
        let (_, again) = stage.resolve(&format!("{arn}:staging")).await.unwrap();
        assert!(Arc::ptr_eq(&staging, &again));
        let err = stage.resolve(&format!("{arn}:qa")).await.unwrap_err();
        assert_eq!(err.error_type, "LambdaStage.ConfigError");
    }
}
