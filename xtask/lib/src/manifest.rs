//! `lambda-stage.toml`: the one file that describes the app, its functions and environments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::arch::Arch;

pub const FILE_NAME: &str = "lambda-stage.toml";

/// Default function timeout in seconds, as Lambda's.
pub const DEFAULT_TIMEOUT_SECS: u32 = 3;
/// Default memory in MB, as Lambda's.
pub const DEFAULT_MEMORY_MB: u32 = 128;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// The app's name: the prefix of every function name it deploys.
    pub app: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// Default AWS region for every environment.
    pub region: Option<String>,
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionSpec>,
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentSpec>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// One function, one alias per environment; the environment comes from the invoked alias.
    #[default]
    SingleStack,
    /// One function per environment, with `LAMBDA_STAGE_ENV` set on it.
    MultiStack,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FunctionSpec {
    /// The cargo package that builds this function (defaults to the function's key).
    pub package: Option<String>,
    pub memory: Option<u32>,
    /// Seconds.
    pub timeout: Option<u32>,
    pub arch: Option<Arch>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnvironmentSpec {
    /// Deploys to it need confirmation (or `--yes`).
    #[serde(default)]
    pub protected: bool,
    /// The app's non-secret variables for this environment, by their full name (`APP_GREETING`).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads and parses `lambda-stage.toml` in `root`; `Ok(None)` when there is none.
    pub fn load(root: &Path) -> anyhow::Result<Option<(PathBuf, Manifest)>> {
        let path = root.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("could not read {}", path.display())),
        };
        let manifest = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid manifest", path.display()))?;
        Ok(Some((path, manifest)))
    }

    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.get(name)
    }

    pub fn environment(&self, name: &str) -> Option<&EnvironmentSpec> {
        self.environments.get(name)
    }
}

impl FunctionSpec {
    pub fn timeout_secs(&self) -> u32 {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS)
    }

    pub fn memory_mb(&self) -> u32 {
        self.memory.unwrap_or(DEFAULT_MEMORY_MB)
    }
}

/// The prefix of the app's own configuration variables.
pub const APP_PREFIX: &str = "APP_";

/// The environment's part of a single-stack variable name: `staging` → `STAGING`,
/// `eu-prod` → `EU_PROD` (the framework maps an alias the same way).
pub fn env_key(env: &str) -> String {
    env.to_ascii_uppercase().replace('-', "_")
}

impl Manifest {
    /// The variables the function is deployed with when it serves `env` (and, for a
    /// single-stack app, every other environment too: a published version freezes its
    /// variables, so one version must carry all of them).
    ///
    /// - Multi-stack: `LAMBDA_STAGE_ENV=<env>` plus that environment's `vars` as written.
    /// - Single-stack: `LAMBDA_STAGE_ENVS=<all environments>`, and each environment's
    ///   `APP_<FIELD>` stored as `APP_<ENV>__<FIELD>`; other variables are shared and must agree.
    pub fn function_variables(&self, env: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let mut vars = BTreeMap::new();
        match self.strategy {
            Strategy::MultiStack => {
                let spec = self
                    .environment(env)
                    .with_context(|| format!("no environment `{env}` in {FILE_NAME}"))?;
                vars.extend(spec.vars.clone());
                vars.insert("LAMBDA_STAGE_ENV".to_owned(), env.to_owned());
            }
            Strategy::SingleStack => {
                for (name, spec) in &self.environments {
                    for (key, value) in &spec.vars {
                        let key = match key.strip_prefix(APP_PREFIX) {
                            Some(field) => format!("{APP_PREFIX}{}__{field}", env_key(name)),
                            None => key.clone(),
                        };
                        if let Some(previous) = vars.insert(key.clone(), value.clone()) {
                            anyhow::ensure!(
                                previous == *value,
                                "{FILE_NAME}: `{key}` differs between environments, but a \
                                 single-stack function shares it; prefix it with `{APP_PREFIX}` \
                                 to make it per-environment"
                            );
                        }
                    }
                }
                let names: Vec<&str> = self.environments.keys().map(String::as_str).collect();
                vars.insert("LAMBDA_STAGE_ENVS".to_owned(), names.join(","));
            }
        }
        Ok(vars)
    }
}
