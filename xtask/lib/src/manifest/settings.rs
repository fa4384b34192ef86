//! What one function gets in one environment: its override section, its variables (a
//! single-stack function carries every environment's `APP_` variables, as `APP_<ENV>__<FIELD>`),
//! its triggers and schedule rule, its architecture, memory and timeout; and Lambda's rules for
//! variable names and sizes.

use std::collections::BTreeMap;

use super::triggers::{self, TriggerSpecs, Triggers};
use super::{
    FunctionOverride, Manifest, Strategy, DEFAULT_ARCH, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_SECS,
    FILE_NAME,
};
use crate::arch::Arch;
use lambda_stage_names::variables::{ENV as STAGE_ENV_VAR, ENVS as STAGE_ENVS_VAR};

/// The prefix of the app's own configuration variables.
pub const APP_PREFIX: &str = "APP_";

/// The environment's part of a single-stack variable name: `staging` → `STAGING`,
/// `eu-prod` → `EU_PROD` (the framework maps an alias the same way).
pub fn env_key(env: &str) -> String {
    env.to_ascii_uppercase().replace('-', "_")
}

/// Lambda's rule for variable names: `[a-zA-Z][a-zA-Z0-9_]+`.
pub fn is_legal_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The size Lambda counts against its 4 KB cap: every key and value, in bytes.
pub fn variables_size(vars: &BTreeMap<String, String>) -> usize {
    vars.iter()
        .map(|(key, value)| key.len() + value.len())
        .sum()
}

impl Manifest {
    /// `function`'s override section in `env`, if the manifest has one.
    pub fn function_override(&self, function: &str, env: &str) -> Option<&FunctionOverride> {
        self.environment(env)
            .and_then(|spec| spec.functions.get(function))
    }

    /// The configuration variables `function` gets in `env`, by their names as written (before
    /// single-stack scoping): the environment's `vars` and `secrets`, then the function's own
    /// for that environment, which win.
    pub fn env_function_vars(&self, function: &str, env: &str) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = self
            .environment(env)
            .map(|spec| {
                spec.all_vars()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(over) = self.function_override(function, env) {
            vars.extend(
                over.vars
                    .iter()
                    .chain(&over.secrets)
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
        vars
    }

    /// The variables `function` is deployed with when it serves `env` (and, for a
    /// single-stack app, every other environment too: a published version freezes its
    /// variables, so one version must carry all of them).
    ///
    /// - Multi-stack: `LAMBDA_STAGE_ENV=<env>` plus [`Manifest::env_function_vars`].
    /// - Single-stack: `LAMBDA_STAGE_ENVS=<all aliases>`, and each environment's
    ///   `APP_<FIELD>` stored as `APP_<ENV>__<FIELD>` (`<ENV>` from the alias name, which is
    ///   what the framework sees); other variables are shared and must agree.
    pub fn function_variables(
        &self,
        function: &str,
        env: &str,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let mut vars = BTreeMap::new();
        match self.strategy {
            Strategy::MultiStack => {
                self.require_environment(env)?;
                vars.extend(self.env_function_vars(function, env));
                vars.insert(STAGE_ENV_VAR.to_owned(), env.to_owned());
            }
            Strategy::SingleStack => {
                let names = self.environment_names(env);
                for name in &names {
                    for (key, value) in self.env_function_vars(function, name) {
                        let key = self.single_stack_key(&key, name);
                        if let Some(previous) = vars.insert(key.clone(), value.clone()) {
                            anyhow::ensure!(
                                previous == value,
                                "{FILE_NAME}: `{key}` differs between environments, but a \
                                 single-stack function shares it; prefix it with `{APP_PREFIX}` \
                                 to make it per-environment"
                            );
                        }
                    }
                }
                let aliases: Vec<String> = names.iter().map(|e| self.alias(e)).collect();
                vars.insert(STAGE_ENVS_VAR.to_owned(), aliases.join(","));
            }
        }
        Ok(vars)
    }

    /// The name a single-stack function is deployed with for `key` of environment `env`:
    /// `APP_<FIELD>` becomes `APP_<ENV>__<FIELD>` (`<ENV>` from the alias name); other names
    /// are shared and kept.
    pub(super) fn single_stack_key(&self, key: &str, env: &str) -> String {
        match key.strip_prefix(APP_PREFIX) {
            Some(field) => format!("{APP_PREFIX}{}__{field}", env_key(&self.alias(env))),
            None => key.to_owned(),
        }
    }

    /// What calls `function` in `env`: its triggers with the environment's overrides applied
    /// and `{app}`, `{env}`, `{function}` expanded.
    pub fn triggers(&self, function: &str, env: &str) -> anyhow::Result<Triggers> {
        let spec = self.require_function(function)?;
        let base = TriggerSpecs {
            http: spec.http.as_ref(),
            url: spec.url.as_ref(),
            sqs: spec.sqs.as_ref(),
            schedule: spec.schedule.as_ref(),
        };
        let over = self
            .function_override(function, env)
            .map(|o| TriggerSpecs {
                http: o.http.as_ref(),
                url: o.url.as_ref(),
                sqs: o.sqs.as_ref(),
                schedule: o.schedule.as_ref(),
            })
            .unwrap_or_default();
        triggers::resolve(&base, &over, |text| {
            text.replace("{app}", &self.app)
                .replace("{env}", env)
                .replace("{function}", function)
        })
        .map_err(|message| {
            anyhow::anyhow!("{FILE_NAME}: function `{function}` in `{env}`: {message}")
        })
    }

    /// The EventBridge rule that runs `function`'s schedule in `env`: `<function name>-<env>` in
    /// single-stack (one function, a rule per environment), the function's own name in
    /// multi-stack (it already carries the environment). EventBridge caps names at 64
    /// characters; a longer name keeps its head and ends in a hash of the whole.
    pub fn schedule_rule_name(&self, function: &str, env: &str) -> String {
        const MAX_RULE_NAME: usize = 64;
        let name = match self.strategy {
            Strategy::SingleStack => format!("{}-{env}", self.function_name(function, env)),
            Strategy::MultiStack => self.function_name(function, env),
        };
        if name.len() <= MAX_RULE_NAME {
            return name;
        }
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(name.as_bytes());
        let tail: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("{}-{tail}", &name[..MAX_RULE_NAME - tail.len() - 1])
    }

    /// The architecture `function` runs on in `env` (multi-stack may override it per
    /// environment).
    pub fn arch(&self, function: &str, env: &str) -> Arch {
        self.function_override(function, env)
            .and_then(|o| o.arch)
            .or_else(|| self.function(function).and_then(|f| f.arch))
            .unwrap_or(DEFAULT_ARCH)
    }

    pub fn memory_mb(&self, function: &str, env: &str) -> u32 {
        self.function_override(function, env)
            .and_then(|o| o.memory)
            .or_else(|| self.function(function).and_then(|f| f.memory))
            .unwrap_or(DEFAULT_MEMORY_MB)
    }

    pub fn timeout_secs(&self, function: &str, env: &str) -> u32 {
        self.function_override(function, env)
            .and_then(|o| o.timeout)
            .or_else(|| self.function(function).and_then(|f| f.timeout))
            .unwrap_or(DEFAULT_TIMEOUT_SECS)
    }
}
