//! What serde cannot check about the app and its environments: the app's name, the strategy's
//! rules, and settings that end up in AWS calls (region, account id, function-name template).

use std::collections::BTreeMap;

use super::problem::{Locator, Problem};
use super::{Manifest, Strategy};

impl Manifest {
    /// Everything serde cannot check, each problem located in the file.
    pub(super) fn problems(&self, at: &Locator) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem =
            |path: &[&str], message: String| problems.push(at.problem(path, &message));

        if self.app.is_empty()
            || !self
                .app
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problem(
                &["app"],
                format!(
                    "`{}` is not a usable app name: use letters, digits, `-` and `_`",
                    self.app
                ),
            );
        }
        if self.environments.is_empty() {
            problem(
                &["environments"],
                "no environments: add at least one, e.g. `[environments.dev]`".to_owned(),
            );
        }
        for (key, value) in [
            ("region", &self.region),
            ("account-id", &self.account_id),
            ("function-name", &self.function_name),
        ] {
            if let Some(value) = value {
                if let Err(message) = check_setting(key, value) {
                    problem(&[key], message);
                }
            }
        }

        for (name, function) in &self.functions {
            let path = |key: &'static str| ["functions", name.as_str(), key];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                problem(
                    &["functions", name],
                    format!(
                        "`{name}` is not a usable function name: use letters, digits, `-` and `_`"
                    ),
                );
            }
            if let Some(memory) = function.memory {
                if !(128..=10240).contains(&memory) {
                    problem(
                        &path("memory"),
                        format!("memory {memory} MB is outside Lambda's 128..=10240"),
                    );
                }
            }
            if let Some(timeout) = function.timeout {
                if !(1..=900).contains(&timeout) {
                    problem(
                        &path("timeout"),
                        format!("timeout {timeout} s is outside Lambda's 1..=900"),
                    );
                }
            }
            match (&function.role, function.create_role) {
                (Some(_), true) => problem(
                    &path("create-role"),
                    "set either `role` or `create-role = true`, not both".to_owned(),
                ),
                (Some(role), false) if !role.starts_with("arn:") => problem(
                    &path("role"),
                    format!("`{role}` is not a role ARN (arn:aws:iam::<account>:role/<name>)"),
                ),
                _ => {}
            }
        }

        let mut regions = BTreeMap::new();
        let mut accounts = BTreeMap::new();
        let mut aliases = BTreeMap::new();
        for (env, spec) in self.environments.iter().chain(&self.previews) {
            let template = env.contains('*');
            let name_chars = env.replace('*', "");
            if env.is_empty()
                || !name_chars
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                problem(&["environments", env], format!("`{env}` is not a usable environment name: use letters, digits, `-` and `_`"));
            }
            if template {
                if env.matches('*').count() != 1 {
                    problem(
                        &["environments", env],
                        format!("`{env}`: a preview template has exactly one `*` (like `pr-*`)"),
                    );
                }
                if spec.protected {
                    problem(&["environments", env, "protected"], "a preview environment is never protected: protect the environments it leads to instead".to_owned());
                }
                if spec.alias.is_some() {
                    problem(
                        &["environments", env, "alias"],
                        "a preview environment's alias is its own name: remove `alias`".to_owned(),
                    );
                }
                if self.strategy == Strategy::MultiStack
                    && !self.function_name_template(env).contains("{env}")
                {
                    problem(&["environments", env], "multi-stack previews need `{env}` in `function-name`, or every preview would deploy to the same functions".to_owned());
                }
            }
            for (key, value) in [
                ("region", &spec.region),
                ("account-id", &spec.account_id),
                ("function-name", &spec.function_name),
            ] {
                if let Some(value) = value {
                    if let Err(message) = check_setting(key, value) {
                        problem(&["environments", env, key], message);
                    }
                }
            }
            let alias = self.alias(env);
            if !template
                && (alias.is_empty()
                    || alias.len() > 128
                    || alias.chars().all(|c| c.is_ascii_digit())
                    || !alias
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            {
                problem(&["environments", env, "alias"], format!("`{alias}` is not a legal alias name (letters, digits, `-`, `_`; not only digits)"));
            }
            match self.strategy {
                Strategy::SingleStack => {
                    if spec.function_name.is_some() {
                        problem(&["environments", env, "function-name"], "single-stack: all environments share one function; set `function-name` at the top level, or use `strategy = \"multi-stack\"`".to_owned());
                    }
                    regions
                        .entry(self.region(env).map(str::to_owned))
                        .or_insert_with(Vec::new)
                        .push(env.as_str());
                    accounts
                        .entry(self.account_id(env).map(str::to_owned))
                        .or_insert_with(Vec::new)
                        .push(env.as_str());
                }
                Strategy::MultiStack if template => {}
                Strategy::MultiStack => {
                    for function in self.functions.keys() {
                        let name = self.function_name(function, env);
                        let place = (
                            self.account_id(env).map(str::to_owned),
                            self.region(env).map(str::to_owned),
                            name.clone(),
                        );
                        if let Some(other) = aliases.insert(place, env.clone()) {
                            problem(&["environments", env], format!("function `{function}` would be named `{name}` in both `{other}` and `{env}`: include `{{env}}` in `function-name`"));
                        }
                    }
                }
            }
            if self.strategy == Strategy::SingleStack && !template {
                let mut seen = self
                    .environments
                    .keys()
                    .filter(|other| *other != env && self.alias(other) == alias);
                if let Some(other) = seen.next() {
                    if other < env {
                        problem(
                            &["environments", env, "alias"],
                            format!("alias `{alias}` is also used by environment `{other}`"),
                        );
                    }
                }
            }
        }
        if regions.len() > 1 {
            problem(&["region"], "single-stack: one function serves every environment, so they must share one region; remove the per-environment `region`s or use `strategy = \"multi-stack\"`".to_owned());
        }
        if accounts.len() > 1 {
            problem(&["account-id"], "single-stack: one function serves every environment, so they must share one account; use `strategy = \"multi-stack\"` for an account per environment".to_owned());
        }

        for (path, message) in self.value_problems() {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            problem(&path, message);
        }
        for (path, message) in self.trigger_problems() {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            problem(&path, message);
        }
        problems
    }
}

/// Shape checks for settings that end up in AWS calls, so typos fail before any call.
fn check_setting(key: &str, value: &str) -> Result<(), String> {
    match key {
        "region" if !is_plausible_region(value) => Err(format!(
            "`{value}` is not an AWS region name (like `eu-west-1` or `us-gov-west-1`)"
        )),
        "account-id" if value.len() != 12 || !value.chars().all(|c| c.is_ascii_digit()) => {
            Err(format!("`{value}` is not an AWS account id (12 digits)"))
        }
        "function-name" => {
            let unknown: Vec<&str> = value
                .split('{')
                .skip(1)
                .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
                .filter(|name| !["app", "function", "env"].contains(name))
                .collect();
            if unknown.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "unknown placeholder(s) {}: use {{app}}, {{function}} and {{env}}",
                    unknown
                        .iter()
                        .map(|n| format!("{{{n}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        _ => Ok(()),
    }
}

/// `<area>-<direction>-<digit>` with an optional partition part (`us-gov-west-1`,
/// `cn-north-1`, `us-isob-east-1`).
pub fn is_plausible_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[0].len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_lowercase()))
}
