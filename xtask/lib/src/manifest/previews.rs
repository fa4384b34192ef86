//! Preview environments: `[environments."pr-*"]` is a template, and `deploy --env pr-42`
//! creates an environment named `pr-42` from it (`destroy --env pr-42` removes it).
//!
//! A template's key holds one `*`, which stands for letters, digits, `-` and `_`. Names made
//! from it are checked against AWS's limits on the names they end up in (alias, stage, function,
//! queue, rule, role) before anything is written, and each problem says which limit it breaks.

use super::{EnvironmentSpec, Manifest, Strategy};

/// Lambda's cap on alias names, and API Gateway's on stage names.
const MAX_ALIAS: usize = 128;
/// Lambda's cap on function names.
const MAX_FUNCTION_NAME: usize = 64;

/// True when `pattern` (a template's key, one `*`) matches `name`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let Some((head, tail)) = pattern.split_once('*') else {
        return false;
    };
    name.len() > head.len() + tail.len()
        && name.starts_with(head)
        && name.ends_with(tail)
        && name[head.len()..name.len() - tail.len()]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Manifest {
    /// The template `name` is made from, when `name` is no environment of its own.
    pub fn preview_template(&self, name: &str) -> Option<(&str, &EnvironmentSpec)> {
        if self.environments.contains_key(name) {
            return None;
        }
        self.previews
            .iter()
            .find(|(pattern, _)| matches(pattern, name))
            .map(|(pattern, spec)| (pattern.as_str(), spec))
    }

    pub fn is_preview(&self, name: &str) -> bool {
        self.preview_template(name).is_some()
    }

    /// The environments a single-stack version must carry when it is deployed for `env`: every
    /// environment of the manifest, plus `env` itself when it is a preview. Other previews keep
    /// the versions they were deployed with, so their variables do not pile up in the function.
    pub fn environment_names(&self, env: &str) -> Vec<String> {
        let mut names: Vec<String> = self.environments.keys().cloned().collect();
        if self.is_preview(env) {
            names.push(env.to_owned());
            names.sort();
        }
        names
    }

    /// Every AWS limit a preview environment's name would break, as "what: why" lines; empty
    /// when the name fits everywhere it goes.
    pub fn preview_name_problems(&self, env: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let alias = self.alias(env);
        if alias.len() > MAX_ALIAS {
            problems.push(format!(
                "alias `{alias}`: Lambda allows at most {MAX_ALIAS} characters"
            ));
        }
        if alias.chars().all(|c| c.is_ascii_digit()) {
            problems.push(format!(
                "alias `{alias}`: Lambda refuses an alias of digits only (it reads as a version)"
            ));
        }
        if self.strategy == Strategy::SingleStack && env.len() > MAX_ALIAS {
            problems.push(format!(
                "stage `{env}`: API Gateway allows at most {MAX_ALIAS} characters"
            ));
        }
        for function in self.functions.keys() {
            let name = self.function_name(function, env);
            if name.len() > MAX_FUNCTION_NAME {
                problems.push(format!(
                    "function `{name}`: Lambda allows at most {MAX_FUNCTION_NAME} characters \
                     (shorten the environment's name or `function-name`)"
                ));
            }
            if let Ok(triggers) = self.triggers(function, env) {
                if let Some(sqs) = triggers.sqs {
                    if let Err(message) = super::triggers::check_queue_name(sqs.queue.name()) {
                        problems.push(format!("queue of `{function}`: {message}"));
                    }
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::matches;
    use crate::manifest::Manifest;

    #[test]
    fn a_template_matches_names_that_fill_its_star() {
        assert!(matches("pr-*", "pr-42"));
        assert!(matches("pr-*", "pr-feature_x"));
        assert!(!matches("pr-*", "pr-"));
        assert!(!matches("pr-*", "prod"));
        assert!(!matches("pr-*", "pr-4.2"));
        assert!(matches("*-preview", "alice-preview"));
    }

    fn manifest(strategy: &str, extra: &str) -> Result<Manifest, String> {
        Manifest::parse(
            Path::new("lambda-stage.toml"),
            &format!(
                "app = \"demo\"\nstrategy = \"{strategy}\"\nregion = \"eu-west-1\"\n\
                 [functions.api]\nsqs = {{ queue = \"{{app}}-{{env}}-jobs\", create = true }}\n\
                 [environments.staging]\nvars = {{ APP_GREETING = \"hi\" }}\n{extra}"
            ),
        )
        .map_err(|err| err.to_string())
    }

    #[test]
    fn a_preview_takes_its_template_and_joins_the_single_stack_variables() {
        let manifest = manifest(
            "single-stack",
            "[environments.\"pr-*\"]\nvars = { APP_GREETING = \"preview\" }\n",
        )
        .unwrap();
        assert!(manifest.environments.keys().all(|k| !k.contains('*')));
        manifest.require_environment("pr-42").unwrap();
        assert!(manifest.is_preview("pr-42") && !manifest.is_preview("staging"));
        assert_eq!(manifest.alias("pr-42"), "pr-42");
        let vars = manifest.function_variables("api", "pr-42").unwrap();
        assert_eq!(vars["APP_PR_42__GREETING"], "preview");
        assert_eq!(vars["LAMBDA_STAGE_ENVS"], "pr-42,staging");
        // Deploying staging does not carry any preview's variables.
        let vars = manifest.function_variables("api", "staging").unwrap();
        assert_eq!(vars["LAMBDA_STAGE_ENVS"], "staging");
        let err = manifest
            .require_environment("qa-1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pr-*"), "{err}");
    }

    #[test]
    fn a_template_is_never_protected_and_has_one_star() {
        let err = manifest(
            "single-stack",
            "[environments.\"pr-*\"]\nprotected = true\n",
        )
        .unwrap_err();
        assert!(
            err.contains("a preview environment is never protected"),
            "{err}"
        );
        let err = manifest("single-stack", "[environments.\"pr-*-*\"]\n").unwrap_err();
        assert!(err.contains("one `*`"), "{err}");
    }

    #[test]
    fn names_that_break_an_aws_limit_say_which() {
        let manifest = manifest("multi-stack", "[environments.\"pr-*\"]\n").unwrap();
        let long = format!("pr-{}", "x".repeat(70));
        let problems = manifest.preview_name_problems(&long).join("\n");
        assert!(
            problems.contains("Lambda allows at most 64 characters"),
            "{problems}"
        );
        assert!(
            problems.contains("not a legal SQS queue name"),
            "{problems}"
        );
        assert!(manifest.preview_name_problems("pr-42").is_empty());
    }
}
