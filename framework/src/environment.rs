//! Which environment an invocation belongs to, for both stack strategies.
//!
//! | variable                   | meaning                                                        |
//! |----------------------------|----------------------------------------------------------------|
//! | `LAMBDA_STAGE_ENV`         | multi-stack: this function serves exactly this environment     |
//! | `LAMBDA_STAGE_ENVS`        | single-stack: the aliases (environments) allowed, comma list   |
//! | `LAMBDA_STAGE_DEFAULT_ENV` | single-stack: the environment for unqualified invocations      |
//!
//! Without `LAMBDA_STAGE_ENV` the function is single-stack: each invocation's environment is
//! the alias in its invoked function ARN (`arn:aws:lambda:…:function:orders:staging`).

use std::fmt;

use lambda_stage_names::variables;

/// Multi-stack: the one environment this function serves.
pub const ENV_VAR: &str = variables::ENV;
/// Single-stack: the aliases (environments) allowed, comma-separated.
pub const ENVS_VAR: &str = variables::ENVS;
/// Single-stack: the environment of invocations whose ARN names no alias.
pub const DEFAULT_ENV_VAR: &str = variables::DEFAULT_ENV;

/// How this function learns its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// One function per environment.
    MultiStack {
        /// `LAMBDA_STAGE_ENV`: the environment every invocation belongs to.
        env: String,
    },
    /// One function, one alias per environment.
    SingleStack {
        /// `LAMBDA_STAGE_ENVS`, when set: every other alias is refused.
        allowed: Option<Vec<String>>,
        /// `LAMBDA_STAGE_DEFAULT_ENV`: used when the ARN names no alias.
        default: Option<String>,
    },
}

impl Strategy {
    /// Reads the strategy from the function's variables.
    pub fn from_vars(vars: &[(String, String)]) -> Strategy {
        let get = |name: &str| {
            vars.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        if let Some(env) = get(ENV_VAR) {
            return Strategy::MultiStack { env };
        }
        Strategy::SingleStack {
            allowed: get(ENVS_VAR).map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
            default: get(DEFAULT_ENV_VAR),
        }
    }

    /// The environments whose config must be valid before the first invocation.
    pub fn known_environments(&self) -> Vec<&str> {
        match self {
            Strategy::MultiStack { env } => vec![env.as_str()],
            Strategy::SingleStack { allowed, default } => {
                let mut envs: Vec<&str> = allowed.iter().flatten().map(String::as_str).collect();
                if let Some(default) = default {
                    if !envs.contains(&default.as_str()) {
                        envs.push(default);
                    }
                }
                envs
            }
        }
    }

    /// The environment of an invocation through `invoked_arn`.
    pub fn environment_for<'a>(
        &'a self,
        invoked_arn: &'a str,
    ) -> Result<&'a str, EnvironmentError> {
        let (allowed, default) = match self {
            Strategy::MultiStack { env } => return Ok(env),
            Strategy::SingleStack { allowed, default } => (allowed, default),
        };
        let refusal = match qualifier(invoked_arn) {
            Qualifier::Alias(alias) => {
                return match allowed {
                    Some(list) if !list.iter().any(|env| env == alias) => {
                        Err(EnvironmentError::UnknownAlias {
                            alias: alias.to_owned(),
                            allowed: list.clone(),
                        })
                    }
                    _ => Ok(alias),
                };
            }
            Qualifier::Latest => Refusal::Latest,
            Qualifier::Version(version) => Refusal::Version(version.to_owned()),
            Qualifier::Unqualified => Refusal::Unqualified,
            Qualifier::NotAnArn => Refusal::NotAnArn,
        };
        match default {
            Some(env) => Ok(env),
            None => Err(EnvironmentError::NoAlias {
                refusal,
                arn: invoked_arn.to_owned(),
            }),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Qualifier<'a> {
    Alias(&'a str),
    Latest,
    Version(&'a str),
    Unqualified,
    NotAnArn,
}

/// `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`
fn qualifier(arn: &str) -> Qualifier<'_> {
    let parts: Vec<&str> = arn.split(':').collect();
    let is_function_arn = parts.len() >= 7
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && parts[5] == "function"
        && !parts[6].is_empty();
    match parts.as_slice() {
        _ if !is_function_arn => Qualifier::NotAnArn,
        [_, _, _, _, _, _, _] => Qualifier::Unqualified,
        [_, _, _, _, _, _, _, "$LATEST"] => Qualifier::Latest,
        [_, _, _, _, _, _, _, q] if q.bytes().all(|b| b.is_ascii_digit()) => Qualifier::Version(q),
        [_, _, _, _, _, _, _, alias] if !alias.is_empty() => Qualifier::Alias(alias),
        _ => Qualifier::NotAnArn,
    }
}

/// Why an invocation's ARN names no environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Invoked through `$LATEST`.
    Latest,
    /// Invoked through a bare version number.
    Version(String),
    /// Invoked through the function's ARN without a qualifier.
    Unqualified,
    /// The invoked ARN is not a Lambda function ARN.
    NotAnArn,
}

/// An invocation that cannot be served because its environment is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentError {
    /// The ARN names no alias and no `LAMBDA_STAGE_DEFAULT_ENV` is set.
    NoAlias {
        /// What the ARN names instead.
        refusal: Refusal,
        /// The invoked ARN.
        arn: String,
    },
    /// The alias is not one of `LAMBDA_STAGE_ENVS`.
    UnknownAlias {
        /// The alias invoked.
        alias: String,
        /// `LAMBDA_STAGE_ENVS`.
        allowed: Vec<String>,
    },
}

impl fmt::Display for EnvironmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvironmentError::NoAlias { refusal, arn } => {
                let how = match refusal {
                    Refusal::Latest => "through `$LATEST`".to_owned(),
                    Refusal::Version(v) => format!("through the bare version `{v}`"),
                    Refusal::Unqualified => "through an unqualified function ARN".to_owned(),
                    Refusal::NotAnArn => {
                        "with an invoked ARN that is not a Lambda function ARN".to_owned()
                    }
                };
                write!(
                    f,
                    "this single-stack function was invoked {how} (`{arn}`), so it cannot tell \
                     which environment to serve; invoke it through an environment alias \
                     (`…:function:<name>:<env>`), or set {DEFAULT_ENV_VAR} to the environment \
                     that such invocations should use"
                )
            }
            EnvironmentError::UnknownAlias { alias, allowed } => write!(
                f,
                "alias `{alias}` is not one of this function's environments ({ENVS_VAR}={}); \
                 invoke one of those aliases, or add `{alias}` to {ENVS_VAR} with its config",
                allowed.join(",")
            ),
        }
    }
}

impl std::error::Error for EnvironmentError {}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:orders";

    fn single(allowed: Option<&[&str]>, default: Option<&str>) -> Strategy {
        Strategy::SingleStack {
            allowed: allowed.map(|l| l.iter().map(|s| s.to_string()).collect()),
            default: default.map(str::to_owned),
        }
    }

    #[test]
    fn reads_strategy_from_variables() {
        let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            Strategy::from_vars(&vars(&[(ENV_VAR, "prod"), (ENVS_VAR, "a,b")])),
            Strategy::MultiStack { env: "prod".into() }
        );
        assert_eq!(
            Strategy::from_vars(&vars(&[
                (ENVS_VAR, "staging, prod,"),
                (DEFAULT_ENV_VAR, "dev")
            ])),
            single(Some(&["staging", "prod"]), Some("dev"))
        );
        assert_eq!(
            single(Some(&["staging", "prod"]), Some("dev")).known_environments(),
            ["staging", "prod", "dev"]
        );
    }

    #[test]
    fn alias_names_the_environment() {
        let strategy = single(Some(&["staging", "prod"]), None);
        assert_eq!(strategy.environment_for(&format!("{ARN}:prod")), Ok("prod"));
        assert_eq!(
            strategy.environment_for(&format!("{ARN}:qa")),
            Err(EnvironmentError::UnknownAlias {
                alias: "qa".into(),
                allowed: vec!["staging".into(), "prod".into()]
            })
        );
        assert_eq!(
            single(None, None).environment_for(&format!("{ARN}:qa")),
            Ok("qa")
        );
    }

    #[test]
    fn refuses_what_names_no_alias_unless_a_default_is_set() {
        let strict = single(None, None);
        for arn in [
            format!("{ARN}:$LATEST"),
            format!("{ARN}:7"),
            ARN.to_owned(),
            "function-arn".to_owned(),
        ] {
            let err = strict.environment_for(&arn).unwrap_err();
            assert!(err.to_string().contains(DEFAULT_ENV_VAR), "{err}");
            assert_eq!(single(None, Some("dev")).environment_for(&arn), Ok("dev"));
        }
    }

    #[test]
    fn multi_stack_ignores_the_arn() {
        let strategy = Strategy::MultiStack { env: "prod".into() };
        assert_eq!(strategy.environment_for("function-arn"), Ok("prod"));
    }
}
