//! Config values that are *references* to secrets, resolved before the config is deserialized.
//!
//! | value                                  | resolves to                                          |
//! |----------------------------------------|------------------------------------------------------|
//! | `ssm:/orders/prod/db-password`         | the SSM parameter's value (a SecureString decrypted)  |
//! | `ssm:/orders/prod/db-password:3`       | version 3 (or a label: `...:current`)                 |
//! | `secretsmanager:orders/prod/db`        | the secret's `SecretString` (or UTF-8 `SecretBinary`) |
//! | `secretsmanager:orders/prod/db#password` | the `password` key of a JSON secret                 |
//!
//! The config loader itself stays synchronous: resolution is an async step between reading the
//! variables and deserializing them. All references of one environment are fetched together
//! (SSM `GetParameters` in batches of 10, Secrets Manager `GetSecretValue`, all concurrently),
//! once per environment: a multi-stack function at init, a single-stack function on each
//! environment's first invocation (the init cannot know which alias the sandbox will serve, so
//! a sandbox serving `staging` never fetches `prod`'s references), except that a function with
//! per-environment state resolves every environment of `LAMBDA_STAGE_ENVS` at init, as its
//! state is built there ([`crate::state`]). Only the variables of fields the config type
//! declares are looked at. An environment without references makes no AWS call. With `LAMBDA_STAGE_SECRETS_TTL=<seconds>`, the first
//! invocation past the time-to-live starts a refresh in the background and is served the
//! cached values; later invocations get the new ones (a failed refresh keeps the old values).
//!
//! The AWS SDK is only compiled with the `secrets` cargo feature; without it a reference fails
//! the init with a message saying to enable it.

#[cfg(feature = "secrets")]
mod aws;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{self, Scope};
use crate::Secret;

pub use lambda_stage_names::reference::{SECRETS_MANAGER_PREFIX, SSM_PREFIX};
/// Seconds after which an environment's references are fetched again (unset: never).
pub const TTL_VAR: &str = lambda_stage_names::variables::SECRETS_TTL;

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// `ssm:<name>`, where `<name>` may end in a `:<version>` or `:<label>` selector.
    Ssm {
        /// The parameter's name, with its selector.
        name: String,
    },
    /// `secretsmanager:<name or ARN>[#<json key>]`.
    SecretsManager {
        /// The secret's name or ARN.
        id: String,
        /// The key of a JSON secret whose value is wanted, rather than the whole secret.
        key: Option<String>,
    },
}

impl Reference {
    /// `None` when `value` is not a reference at all; `Some(Err(why))` when it is a malformed one.
    pub fn parse(value: &str) -> Option<Result<Reference, String>> {
        if let Some(name) = value.strip_prefix(SSM_PREFIX) {
            return Some(if name.trim().is_empty() || name != name.trim() {
                Err("`ssm:` must be followed by a parameter name, e.g. `ssm:/orders/prod/db-password`".to_owned())
            } else {
                Ok(Reference::Ssm {
                    name: name.to_owned(),
                })
            });
        }
        let rest = value.strip_prefix(SECRETS_MANAGER_PREFIX)?;
        let (id, key) = match rest.rsplit_once('#') {
            Some((id, key)) => (id, Some(key)),
            None => (rest, None),
        };
        Some(if id.trim().is_empty() || id != id.trim() {
            Err("`secretsmanager:` must be followed by a secret name or ARN, e.g. `secretsmanager:orders/prod/db#password`".to_owned())
        } else if key.is_some_and(str::is_empty) {
            Err(
                "`#` must be followed by a JSON key, e.g. `secretsmanager:orders/prod/db#password`"
                    .to_owned(),
            )
        } else {
            Ok(Reference::SecretsManager {
                id: id.to_owned(),
                key: key.map(str::to_owned),
            })
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Ssm { name } => write!(f, "{SSM_PREFIX}{name}"),
            Reference::SecretsManager { id, key: None } => {
                write!(f, "{SECRETS_MANAGER_PREFIX}{id}")
            }
            Reference::SecretsManager { id, key: Some(key) } => {
                write!(f, "{SECRETS_MANAGER_PREFIX}{id}#{key}")
            }
        }
    }
}

/// A config variable whose value is a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The variable, e.g. `APP_PROD__API_KEY`.
    pub variable: String,
    /// What it refers to.
    pub reference: Reference,
}

/// The references among the variables that feed `scope`'s config, for the fields the config
/// type `declared` (every variable when `None`, see [`config::declared`]); malformed ones as
/// `(variable, problem)`.
pub(crate) fn wanted(
    vars: &[(String, String)],
    prefix: &str,
    scope: Scope<'_>,
    declared: Option<&[&str]>,
) -> (Vec<Wanted>, Vec<(String, String)>) {
    let mut wanted = Vec::new();
    let mut malformed = Vec::new();
    let selected = config::select(vars, prefix, scope);
    let fields = selected
        .into_iter()
        .filter(|(field, _)| config::is_declared(declared, field));
    for (_, found) in fields {
        match Reference::parse(&found.value) {
            None => {}
            Some(Ok(reference)) => wanted.push(Wanted {
                variable: found.variable,
                reference,
            }),
            Some(Err(problem)) => malformed.push((found.variable, problem)),
        }
    }
    (wanted, malformed)
}

/// Every reference variable of a declared field (see [`wanted`]), for every environment: what a
/// function built without the `secrets` feature refuses at init.
pub(crate) fn unsupported(
    vars: &[(String, String)],
    prefix: &str,
    declared: Option<&[&str]>,
) -> Vec<(String, String)> {
    // `APP_<ENV>__<FIELD>` or `APP_<FIELD>`.
    let field = |name: &str| {
        let rest = name.strip_prefix(prefix)?;
        Some(
            rest.split_once("__")
                .map_or(rest, |(_, field)| field)
                .to_owned(),
        )
    };
    vars.iter()
        .filter(|(name, value)| {
            field(name).is_some_and(|field| config::is_declared(declared, &field))
                && Reference::parse(value).is_some()
        })
        .map(|(name, value)| {
            let kind = value.split(':').next().unwrap_or_default();
            (
                name.clone(),
                format!(
                    "is a `{kind}:` reference, but this function was built without \
                     lambda-stage's `secrets` feature, which resolves references: enable it \
                     (`lambda-stage = {{ version = \"...\", features = [\"secrets\"] }}`) or set \
                     the value itself"
                ),
            )
        })
        .collect()
}

/// One reference that could not be resolved: the variable, the reference, why (never a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretProblem {
    /// The variable that holds the reference.
    pub variable: String,
    /// The reference, as written (`ssm:/orders/prod/key`).
    pub reference: String,
    /// Why it could not be resolved, and what to do.
    pub problem: String,
}

/// Every reference of one environment that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretError {
    /// The environment whose references these are.
    pub env: String,
    /// One entry per reference that failed.
    pub problems: Vec<SecretProblem>,
}

impl SecretError {
    /// The `errorType` reported to the Runtime API.
    pub const ERROR_TYPE: &'static str = crate::error_type::SECRET;
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not resolve the secret references of environment `{}`:",
            self.env
        )?;
        for p in &self.problems {
            write!(f, "\n  {} = {}: {}", p.variable, p.reference, p.problem)?;
        }
        Ok(())
    }
}

impl std::error::Error for SecretError {}

/// Resolved values by variable name.
pub(crate) type Values = HashMap<String, Secret<String>>;

/// One environment's resolved references.
struct Entry {
    wanted: Arc<Vec<Wanted>>,
    values: Arc<Values>,
    fetched: Instant,
    /// Bumped by every fetch, so a config built from older values is rebuilt.
    generation: u64,
    refreshing: bool,
}

/// Each environment's resolved references, fetched once and cached (refreshed after the TTL).
pub(crate) struct Secrets {
    ttl: Option<Duration>,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    #[cfg(feature = "secrets")]
    fetcher: Arc<tokio::sync::OnceCell<aws::Fetcher>>,
}

/// `LAMBDA_STAGE_SECRETS_TTL`, or the `(variable, problem)` that makes it unusable.
pub(crate) fn ttl(vars: &[(String, String)]) -> Result<Option<Duration>, (String, String)> {
    let Some((_, value)) = vars.iter().find(|(name, _)| name == TTL_VAR) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(seconds) if seconds > 0 => Ok(Some(Duration::from_secs(seconds))),
        _ => Err((
            TTL_VAR.to_owned(),
            "expected a whole number of seconds above 0 (unset it to never refresh)".to_owned(),
        )),
    }
}

impl Secrets {
    pub(crate) fn new(ttl: Option<Duration>) -> Self {
        Secrets {
            ttl,
            entries: Arc::default(),
            #[cfg(feature = "secrets")]
            fetcher: Arc::default(),
        }
    }

    fn lock(
        entries: &Mutex<HashMap<String, Entry>>,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // Entries are replaced whole: a panic elsewhere cannot leave one half-written.
        entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The resolved values of `env` and their generation, once [`Secrets::prepare`] succeeded.
    pub(crate) fn values(&self, env: &str) -> Option<(u64, Arc<Values>)> {
        Self::lock(&self.entries)
            .get(env)
            .map(|entry| (entry.generation, entry.values.clone()))
    }

    /// Resolves `wanted` (the references of `env`) on first use; afterwards returns at once,
    /// starting a background refresh when the TTL has passed.
    pub(crate) async fn prepare(
        &self,
        env: &str,
        wanted: impl FnOnce() -> Vec<Wanted>,
    ) -> Result<(), SecretError> {
        {
            let mut entries = Self::lock(&self.entries);
            if let Some(entry) = entries.get_mut(env) {
                let stale = self.ttl.is_some_and(|ttl| entry.fetched.elapsed() >= ttl);
                if stale && !entry.refreshing && !entry.wanted.is_empty() {
                    entry.refreshing = true;
                    self.spawn_refresh(env.to_owned(), entry.wanted.clone());
                }
                return Ok(());
            }
        }
        let wanted = wanted();
        // Generation 0 marks "no references", so the config checked at init stays valid.
        let generation = u64::from(!wanted.is_empty());
        let values = if wanted.is_empty() {
            Values::new()
        } else {
            self.fetch(env, &wanted).await?
        };
        Self::lock(&self.entries)
            .entry(env.to_owned())
            .or_insert_with(|| Entry {
                wanted: Arc::new(wanted),
                values: Arc::new(values),
                fetched: Instant::now(),
                generation,
                refreshing: false,
            });
        Ok(())
    }

    #[cfg(feature = "secrets")]
    async fn fetch(&self, env: &str, wanted: &[Wanted]) -> Result<Values, SecretError> {
        let fetcher = self.fetcher.get_or_init(aws::Fetcher::connect).await;
        fetcher.fetch(env, wanted).await
    }

    /// Unreachable in practice: the init already refused references (see [`unsupported`]).
    #[cfg(not(feature = "secrets"))]
    async fn fetch(&self, env: &str, wanted: &[Wanted]) -> Result<Values, SecretError> {
        Err(SecretError {
            env: env.to_owned(),
            problems: wanted
                .iter()
                .map(|w| SecretProblem {
                    variable: w.variable.clone(),
                    reference: w.reference.to_string(),
                    problem: "lambda-stage was built without its `secrets` feature: enable it"
                        .to_owned(),
                })
                .collect(),
        })
    }

    #[cfg(feature = "secrets")]
    fn spawn_refresh(&self, env: String, wanted: Arc<Vec<Wanted>>) {
        let entries = self.entries.clone();
        let fetcher = self.fetcher.clone();
        tokio::spawn(async move {
            let fetcher = fetcher.get_or_init(aws::Fetcher::connect).await;
            let fetched = fetcher.fetch(&env, &wanted).await;
            let mut entries = Self::lock(&entries);
            let Some(entry) = entries.get_mut(&env) else {
                return;
            };
            entry.refreshing = false;
            match fetched {
                Ok(values) => {
                    entry.values = Arc::new(values);
                    entry.fetched = Instant::now();
                    entry.generation += 1;
                    tracing::info!(env = %env, "refreshed {} secret reference(s)", wanted.len());
                }
                // Keep serving the values we have; the next invocation past the TTL retries.
                Err(err) => {
                    tracing::warn!(env = %env, "secret refresh failed, keeping the cached values: {err}")
                }
            }
        });
    }

    #[cfg(not(feature = "secrets"))]
    fn spawn_refresh(&self, _env: String, _wanted: Arc<Vec<Wanted>>) {}
}

/// `vars` with each resolved variable's value replaced.
pub(crate) fn substitute(vars: &[(String, String)], values: &Values) -> Vec<(String, String)> {
    vars.iter()
        .map(|(name, value)| match values.get(name) {
            Some(secret) => (name.clone(), secret.expose().clone()),
            None => (name.clone(), value.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_refuses_malformed_ones() {
        assert_eq!(Reference::parse("plain"), None);
        assert_eq!(
            Reference::parse("ssm:/orders/prod/db-password"),
            Some(Ok(Reference::Ssm {
                name: "/orders/prod/db-password".into()
            }))
        );
        assert_eq!(
            Reference::parse("secretsmanager:orders/prod/db#password"),
            Some(Ok(Reference::SecretsManager {
                id: "orders/prod/db".into(),
                key: Some("password".into())
            }))
        );
        let arn = "secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf";
        assert_eq!(
            Reference::parse(arn).unwrap().unwrap().to_string(),
            arn,
            "ARNs keep their colons"
        );
        for bad in ["ssm:", "ssm: /x", "secretsmanager:", "secretsmanager:db#"] {
            assert!(matches!(Reference::parse(bad), Some(Err(_))), "{bad}");
        }
    }

    #[test]
    fn only_the_environments_own_references_are_wanted() {
        let vars: Vec<(String, String)> = [
            ("APP_STAGING__API_KEY", "ssm:/app/staging/key"),
            ("APP_PROD__API_KEY", "ssm:/app/prod/key"),
            ("APP_DB", "secretsmanager:app/db#url"),
            ("APP_GREETING", "hi"),
            ("APP_BROKEN", "ssm:"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (wanted, malformed) = wanted(&vars, "APP_", Scope::Environment("staging"), None);
        let mut names: Vec<String> = wanted.iter().map(|w| w.reference.to_string()).collect();
        names.sort();
        assert_eq!(names, ["secretsmanager:app/db#url", "ssm:/app/staging/key"]);
        assert_eq!(malformed.len(), 1);
        assert_eq!(malformed[0].0, "APP_BROKEN");
    }

    #[test]
    fn ttl_must_be_a_positive_number() {
        let vars = |v: &str| vec![(TTL_VAR.to_owned(), v.to_owned())];
        assert_eq!(ttl(&vars("300")), Ok(Some(Duration::from_secs(300))));
        assert!(ttl(&vars("0")).is_err());
        assert!(ttl(&vars("5m")).is_err());
        assert_eq!(ttl(&[]), Ok(None));
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read through Debug only
    struct Config {
        port: u16,
        api_key: Secret<String>,
    }

    fn stage(pairs: &[(&str, &str)]) -> Result<crate::Stage<Config>, crate::InitError> {
        let vars = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crate::Stage::new(vars, "APP_")
    }

    #[cfg(feature = "secrets")]
    #[test]
    fn init_lets_references_stand_in_but_never_hands_one_out() {
        let stage = stage(&[
            ("LAMBDA_STAGE_ENVS", "staging"),
            ("APP_PORT", "ssm:/app/port"),
            ("APP_API_KEY", "secretsmanager:app/key#api"),
        ])
        .unwrap();
        let err = stage.config("staging").unwrap_err().to_string();
        assert!(
            err.contains("APP_API_KEY: `secretsmanager:app/key#api` is not resolved yet"),
            "{err}"
        );
        assert!(
            err.contains("APP_PORT: `ssm:/app/port` is not resolved yet"),
            "{err}"
        );
    }

    #[cfg(feature = "secrets")]
    #[test]
    fn init_still_reports_malformed_references_and_other_variables() {
        let err = stage(&[("LAMBDA_STAGE_ENVS", "staging"), ("APP_API_KEY", "ssm:")])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("APP_API_KEY: `ssm:` must be followed by a parameter name"),
            "{err}"
        );
        assert!(err.contains("APP_PORT"), "{err}");
        let err = stage(&[(TTL_VAR, "soon"), ("APP_PORT", "1"), ("APP_API_KEY", "k")])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(TTL_VAR), "{err}");
    }

    #[cfg(not(feature = "secrets"))]
    #[test]
    fn without_the_feature_a_reference_fails_the_init() {
        let err = stage(&[
            ("APP_PORT", "1"),
            ("APP_PROD__API_KEY", "ssm:/app/prod/key"),
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("APP_PROD__API_KEY: is a `ssm:` reference"),
            "{err}"
        );
        assert!(err.contains("`secrets` feature"), "{err}");
    }

    /// A reference in a variable no field reads is not the config's business: it is neither
    /// fetched nor refused, with or without the `secrets` feature.
    #[test]
    fn only_references_of_declared_fields_are_wanted() {
        let stage = stage(&[
            ("LAMBDA_STAGE_ENVS", "staging"),
            ("APP_PORT", "1"),
            ("APP_API_KEY", "k"),
            ("APP_UNRELATED", "ssm:/someone/elses"),
            ("APP_STAGING__OTHER", "secretsmanager:not/ours"),
        ])
        .expect("an undeclared reference fails nothing");
        let config = stage.config("staging").expect("nothing to resolve");
        assert_eq!(config.port, 1);
        let vars: Vec<(String, String)> =
            [("APP_API_KEY", "ssm:/ours"), ("APP_UNRELATED", "ssm:/x")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let declared = crate::config::declared::<Config>();
        let (wanted, _) = wanted(&vars, "APP_", Scope::Shared, declared);
        assert_eq!(wanted.len(), 1, "{wanted:?}");
        assert_eq!(wanted[0].variable, "APP_API_KEY");
    }

    #[test]
    fn errors_name_variable_and_reference() {
        let err = SecretError {
            env: "prod".into(),
            problems: vec![SecretProblem {
                variable: "APP_API_KEY".into(),
                reference: "ssm:/app/prod/key".into(),
                problem: "no such parameter".into(),
            }],
        };
        assert_eq!(
            err.to_string(),
            "could not resolve the secret references of environment `prod`:\n  APP_API_KEY = ssm:/app/prod/key: no such parameter"
        );
    }
}
