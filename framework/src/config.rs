//! Typed configuration from environment variables, loaded with `envy`.
//!
//! The happy path is one `envy` call. When it fails, `load` works out *every* missing or
//! unparsable variable (envy stops at the first) and reports them all in one
//! [`ConfigError`], by their exact variable names and without any value.

mod fields;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;

pub(crate) use fields::{declared, is_declared};

/// Which variables feed a config.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// `<PREFIX><FIELD>` only (multi-stack: the function serves one environment).
    Shared,
    /// `<PREFIX><ENV>__<FIELD>`, falling back to the shared `<PREFIX><FIELD>` (single-stack).
    Environment(&'a str),
}

/// The part of a single-stack variable name that names the environment:
/// `staging` → `STAGING`, `eu-prod` → `EU_PROD`.
pub fn env_key(env: &str) -> String {
    env.to_ascii_uppercase().replace('-', "_")
}

/// One config field's variable as found in the environment.
pub(crate) struct Found {
    pub(crate) variable: String,
    pub(crate) value: String,
}

/// Every problem with one environment's config, by variable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment the config was loaded for.
    pub env: String,
    /// `(variable, problem)` pairs, e.g. `("APP_SHOUT", "expected a boolean (true or false)")`.
    pub problems: Vec<(String, String)>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration for environment `{}`:", self.env)?;
        for (variable, problem) in &self.problems {
            write!(f, "\n  {variable}: {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Loads `C` from `vars` for the environment `env`.
pub(crate) fn load<C: DeserializeOwned>(
    vars: &[(String, String)],
    prefix: &str,
    scope: Scope<'_>,
    env: &str,
) -> Result<C, ConfigError> {
    let found = select(vars, prefix, scope);
    let fields = found
        .iter()
        .map(|(field, found)| (field.clone(), found.value.clone()));
    match envy::from_iter::<_, C>(fields) {
        Ok(config) => Ok(config),
        Err(_) => Err(ConfigError {
            env: env.to_owned(),
            problems: diagnose::<C>(&found, prefix, scope),
        }),
    }
}

/// Field name (upper case, as in the variable) → where its value came from.
pub(crate) fn select(
    vars: &[(String, String)],
    prefix: &str,
    scope: Scope<'_>,
) -> BTreeMap<String, Found> {
    let env_prefix = match scope {
        Scope::Environment(env) => Some(format!("{}__", env_key(env))),
        Scope::Shared => None,
    };
    let mut shared = BTreeMap::new();
    let mut specific = BTreeMap::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let found = Found {
            variable: name.clone(),
            value: value.clone(),
        };
        match env_prefix.as_deref().and_then(|p| rest.strip_prefix(p)) {
            Some(field) => {
                specific.insert(field.to_owned(), found);
            }
            // `__` marks another environment's variable: never let it leak into this one.
            None if !rest.contains("__") => {
                shared.insert(rest.to_owned(), found);
            }
            None => {}
        }
    }
    shared.extend(specific);
    shared
}

/// The variable a missing field should be set in, as the user would write it.
fn variable_for(field: &str, prefix: &str, scope: Scope<'_>) -> String {
    let field = field.to_ascii_uppercase();
    match scope {
        Scope::Shared => format!("{prefix}{field}"),
        Scope::Environment(env) => format!(
            "{prefix}{}__{field} (or the shared {prefix}{field})",
            env_key(env)
        ),
    }
}

/// Values tried in place of a missing or invalid variable, so that diagnosis can go on to
/// the next field. One of them parses as almost any field type envy supports.
const STAND_INS: [&str; 4] = ["0", "false", "x", ""];

/// Finds every problem, given that loading failed.
fn diagnose<C: DeserializeOwned>(
    found: &BTreeMap<String, Found>,
    prefix: &str,
    scope: Scope<'_>,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut stand_ins: BTreeMap<String, usize> = BTreeMap::new();

    // A value that fails on its own, with no other field present, cannot parse: envy checks
    // a present field's value before it looks for missing ones.
    for (field, found) in found {
        let alone = std::iter::once((field.clone(), found.value.clone()));
        if let Err(envy::Error::Custom(message)) = envy::from_iter::<_, C>(alone) {
            problems.push((found.variable.clone(), describe(&message, &found.value)));
            stand_ins.insert(field.clone(), 0);
        }
    }

    // Missing fields, one per attempt: fill each with a stand-in and try again.
    for _ in 0..64 {
        let vars = found
            .iter()
            .filter(|(field, _)| !stand_ins.contains_key(*field))
            .map(|(field, found)| (field.clone(), found.value.clone()))
            .chain(
                stand_ins
                    .iter()
                    .map(|(field, &i)| (field.clone(), STAND_INS[i].to_owned())),
            );
        match envy::from_iter::<_, C>(vars) {
            Ok(_) => break,
            Err(envy::Error::MissingValue(field)) => {
                let key = field.to_ascii_uppercase();
                if stand_ins.contains_key(&key) {
                    break;
                }
                problems.push((variable_for(field, prefix, scope), "missing".to_owned()));
                stand_ins.insert(key, 0);
            }
            Err(envy::Error::Custom(message)) => {
                // A stand-in did not fit its field's type: try the next one for that field.
                let Some(field) = message.rsplit("provided by ").next() else {
                    break;
                };
                match stand_ins.get_mut(&field.to_ascii_uppercase()) {
                    Some(i) if *i + 1 < STAND_INS.len() => *i += 1,
                    _ => break,
                }
            }
        }
    }
    if problems.is_empty() {
        problems.push((
            format!("{prefix}*"),
            "the configuration could not be loaded (a field type envy cannot read from a string)"
                .to_owned(),
        ));
    }
    problems
}

/// Turns envy's message into one that names the expected type and never shows the value.
fn describe(message: &str, value: &str) -> String {
    // envy appends "while parsing value '<value>' provided by <NAME>": drop it.
    let reason = message
        .split(" while parsing value")
        .next()
        .unwrap_or(message);
    let reason = if value.len() >= 3 {
        reason.replace(value, "<value>")
    } else {
        reason.to_owned()
    };
    if reason.contains("`true` or `false`") {
        "expected a boolean (true or false)".to_owned()
    } else if reason.contains("digit")
        || reason.contains("number")
        || reason.contains("empty string")
    {
        format!("expected a whole number ({reason})")
    } else if reason.contains("float") {
        format!("expected a number ({reason})")
    } else {
        format!("could not parse: {reason}")
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::Secret;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // fields are read through Debug only
    struct Config {
        greeting: String,
        #[serde(default)]
        shout: bool,
        retries: u32,
        api_key: Secret<String>,
        region: Option<String>,
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn loads_shared_variables() {
        let vars = vars(&[
            ("APP_GREETING", "Hi"),
            ("APP_RETRIES", "3"),
            ("APP_API_KEY", "k"),
            ("PATH", "/bin"),
        ]);
        let config: Config = load(&vars, "APP_", Scope::Shared, "dev").unwrap();
        assert_eq!(config.greeting, "Hi");
        assert_eq!(config.retries, 3);
        assert!(!config.shout);
        assert_eq!(config.region, None);
    }

    #[test]
    fn environment_values_win_and_other_environments_never_leak() {
        let vars = vars(&[
            ("APP_GREETING", "shared"),
            ("APP_STAGING__GREETING", "staging"),
            ("APP_PROD__RETRIES", "9"),
            ("APP_RETRIES", "1"),
            ("APP_PROD__API_KEY", "prod-key"),
            ("APP_STAGING__API_KEY", "staging-key"),
        ]);
        let staging: Config =
            load(&vars, "APP_", Scope::Environment("staging"), "staging").unwrap();
        assert_eq!(staging.greeting, "staging");
        assert_eq!(staging.retries, 1);
        assert_eq!(staging.api_key.expose(), "staging-key");
        let prod: Config = load(&vars, "APP_", Scope::Environment("prod"), "prod").unwrap();
        assert_eq!(prod.greeting, "shared");
        assert_eq!(prod.retries, 9);
        assert_eq!(prod.api_key.expose(), "prod-key");
    }

    #[test]
    fn dashes_in_aliases_map_to_underscores() {
        let vars = vars(&[
            ("APP_EU_PROD__GREETING", "hallo"),
            ("APP_RETRIES", "1"),
            ("APP_API_KEY", "k"),
        ]);
        let config: Config = load(&vars, "APP_", Scope::Environment("eu-prod"), "eu-prod").unwrap();
        assert_eq!(config.greeting, "hallo");
    }

    #[test]
    fn every_problem_is_listed_without_values() {
        let vars = vars(&[("APP_SHOUT", "loud-secret"), ("APP_RETRIES", "many-secret")]);
        let err = load::<Config>(&vars, "APP_", Scope::Shared, "prod").unwrap_err();
        let names: Vec<&str> = err.problems.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(
            names,
            ["APP_RETRIES", "APP_SHOUT", "APP_GREETING", "APP_API_KEY"]
        );
        let text = err.to_string();
        assert!(text.contains("environment `prod`"), "{text}");
        assert!(text.contains("APP_SHOUT: expected a boolean"), "{text}");
        assert!(
            text.contains("APP_RETRIES: expected a whole number"),
            "{text}"
        );
        assert!(text.contains("APP_GREETING: missing"), "{text}");
        assert!(!text.contains("secret"), "a value leaked: {text}");
    }

    #[test]
    fn single_stack_errors_name_both_variables() {
        let err =
            load::<Config>(&[], "APP_", Scope::Environment("staging"), "staging").unwrap_err();
        assert!(err
            .to_string()
            .contains("APP_STAGING__GREETING (or the shared APP_GREETING): missing"));
    }
}
