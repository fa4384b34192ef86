//! Check mode: started with `LAMBDA_STAGE_CHECK_CONFIG=1`, a function's binary loads the config
//! of every environment it would serve, with the very code of a cold start ([`Stage::new`]),
//! reports, and exits. It never contacts the Runtime API and never resolves a secret reference:
//! a reference counts as present, except in a binary built without the `secrets` feature, which
//! refuses references exactly as its cold start would. `cargo xtask deploy` and `promote` run
//! every function this way, with the variables they are about to deploy, before writing anything.
//!
//! The environments are those a cold start validates: multi-stack, `LAMBDA_STAGE_ENV`;
//! single-stack, every alias of `LAMBDA_STAGE_ENVS` (and `LAMBDA_STAGE_DEFAULT_ENV`).
//!
//! Output: the usual diagnosis (or one line saying the config is valid) on stderr, and one JSON
//! line on stdout for tools:
//! `{"lambdaStageCheck":{"ok":false,"environments":["prod","staging"],"secretsFeature":false,"errorType":"LambdaStage.ConfigError","message":"invalid configuration for environment `prod`:\n  APP_PROD__GREETING (or the shared APP_GREETING): missing"}}`.
//! Exit code 0 when every environment's config loads, 1 otherwise. Like every diagnosis of the
//! framework, the output names variables and references, never a value.

use serde::de::DeserializeOwned;
use serde_json::json;

use crate::environment::{Strategy, ENVS_VAR, ENV_VAR};
use crate::stage::{InitError, Stage};

/// The variable that starts a binary in check mode (`1`).
pub const CHECK_VAR: &str = lambda_stage_names::variables::CHECK_CONFIG;
/// The key of the JSON object the check prints on stdout.
pub const REPORT_KEY: &str = lambda_stage_names::variables::CHECK_REPORT_KEY;

/// Whether this process was started in check mode.
pub(crate) fn requested() -> bool {
    std::env::var_os(CHECK_VAR).is_some_and(|value| value == "1")
}

/// What the check found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) environments: Vec<String>,
    /// `None` when every environment's config loads; else the diagnosis.
    pub(crate) failure: Option<String>,
}

impl Report {
    fn json(&self) -> serde_json::Value {
        let mut report = json!({
            "ok": self.failure.is_none(),
            "environments": self.environments,
            "secretsFeature": cfg!(feature = "secrets"),
        });
        if let Some(message) = &self.failure {
            report["errorType"] = InitError::ERROR_TYPE.into();
            report["message"] = message.as_str().into();
        }
        json!({ REPORT_KEY: report })
    }
}

/// Loads every environment's config `C` from `vars` the way a cold start does.
pub(crate) fn check<C: DeserializeOwned>(vars: Vec<(String, String)>, prefix: &str) -> Report {
    let environments: Vec<String> = Strategy::from_vars(&vars)
        .known_environments()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let failure = if environments.is_empty() {
        // A cold start would check nothing here and fail on the first invocation instead.
        Some(format!(
            "no environment to check: set {ENV_VAR}=<env> (multi-stack) or \
             {ENVS_VAR}=<env>,<env> (single-stack), as deploy does"
        ))
    } else {
        Stage::<C>::new(vars, prefix)
            .err()
            .map(|err| err.to_string())
    };
    Report {
        environments,
        failure,
    }
}

/// Runs the check on this process's variables, prints its report and exits.
pub(crate) fn run<C: DeserializeOwned>(prefix: &str) -> ! {
    let report = check::<C>(crate::runtime::process_vars(), prefix);
    match &report.failure {
        None => eprintln!(
            "lambda-stage check: the config of {} is valid",
            report.environments.join(", ")
        ),
        Some(message) => eprintln!("lambda-stage check: {message}"),
    }
    println!("{}", report.json());
    std::process::exit(if report.failure.is_none() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // only loaded
    struct Config {
        greeting: String,
        api_key: crate::Secret<String>,
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_every_environment_and_variable_that_would_fail_the_cold_start() {
        let report = check::<Config>(
            vars(&[
                ("LAMBDA_STAGE_ENVS", "staging,prod"),
                ("APP_GREETING", "hi"),
                ("APP_STAGING__API_KEY", "canary-value"),
            ]),
            "APP_",
        );
        assert_eq!(report.environments, ["staging", "prod"]);
        let message = report.failure.as_deref().unwrap();
        assert!(message.contains("environment `prod`"), "{message}");
        assert!(message.contains("APP_PROD__API_KEY"), "{message}");
        assert!(!message.contains("`staging`"), "{message}");
        assert!(!message.contains("canary-value"), "{message}");
        let json = report.json();
        assert_eq!(json[REPORT_KEY]["ok"], false);
        assert_eq!(json[REPORT_KEY]["errorType"], "LambdaStage.ConfigError");
        assert_eq!(json[REPORT_KEY]["message"], message);
    }

    #[test]
    fn a_complete_config_passes_and_the_report_says_so() {
        let report = check::<Config>(
            vars(&[
                ("LAMBDA_STAGE_ENV", "prod"),
                ("APP_GREETING", "hi"),
                ("APP_API_KEY", "k"),
            ]),
            "APP_",
        );
        assert_eq!(report.failure, None);
        let json = report.json();
        assert_eq!(json[REPORT_KEY]["ok"], true);
        assert_eq!(json[REPORT_KEY]["environments"], json!(["prod"]));
        assert_eq!(
            json[REPORT_KEY]["secretsFeature"],
            cfg!(feature = "secrets")
        );
    }

    #[test]
    fn a_process_that_serves_no_known_environment_is_a_failure() {
        let report = check::<Config>(vars(&[("APP_GREETING", "hi")]), "APP_");
        assert!(report
            .failure
            .as_deref()
            .is_some_and(|m| m.contains("LAMBDA_STAGE_ENVS")));
    }

    /// References stand in for their values, or, without the feature, fail as at cold start.
    #[test]
    fn a_reference_counts_as_present_only_with_the_secrets_feature() {
        let report = check::<Config>(
            vars(&[
                ("LAMBDA_STAGE_ENVS", "prod"),
                ("APP_GREETING", "hi"),
                ("APP_PROD__API_KEY", "ssm:/app/prod/key"),
            ]),
            "APP_",
        );
        if cfg!(feature = "secrets") {
            assert_eq!(report.failure, None);
        } else {
            let message = report.failure.unwrap();
            assert!(
                message.contains("APP_PROD__API_KEY: is a `ssm:` reference"),
                "{message}"
            );
            assert!(message.contains("`secrets` feature"), "{message}");
        }
    }
}
