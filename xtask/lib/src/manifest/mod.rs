//! `lambda-stage.toml`: the one file that describes the app, its functions and environments.
//!
//! Loading validates it: a file that is not UTF-8 is refused at its first bad byte; serde catches
//! unknown keys, wrong types and unknown architectures; `problems` then checks what serde cannot
//! (strategy rules and settings in `check_settings`; variables, packages and features in
//! `check_values`; triggers in `check_triggers`). Every problem names the file, line, column
//! and key (`problem`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::arch::Arch;

mod check_settings;
mod check_triggers;
mod check_values;
pub mod previews;
mod problem;
mod settings;
pub mod triggers;

pub use check_settings::is_plausible_region;
use problem::{printable, utf8_text, Locator};
pub use problem::{ManifestError, Problem};
pub use settings::{env_key, is_legal_variable_name, variables_size, APP_PREFIX};
pub use triggers::Triggers;
use triggers::{HttpSpec, ScheduleSpec, SqsSpec, UrlSpec};

pub const FILE_NAME: &str = "lambda-stage.toml";

/// Default function timeout in seconds, as Lambda's.
pub const DEFAULT_TIMEOUT_SECS: u32 = 3;
/// Default memory in MB, as Lambda's.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Default architecture: arm64 is about 20% cheaper per GB-second.
pub const DEFAULT_ARCH: Arch = Arch::Arm64;
/// Multi-stack: every environment's function carries this alias unless the manifest says otherwise.
pub const DEFAULT_MULTI_STACK_ALIAS: &str = "live";
/// Function name templates; `{app}`, `{function}` and `{env}` are replaced.
pub const DEFAULT_SINGLE_STACK_NAME: &str = "{app}-{function}";
pub const DEFAULT_MULTI_STACK_NAME: &str = "{app}-{function}-{env}";
/// Lambda's cap on the total size of a function's environment variables (keys plus values).
pub const MAX_VARIABLES_BYTES: usize = 4096;

/// Names Lambda sets itself and refuses in a function's configuration (the emulator's list too).
pub use lambda_stage_names::variables::RESERVED_BY_LAMBDA as RESERVED_LAMBDA_VARIABLES;

/// Variables lambda-stage sets itself (see [`Manifest::function_variables`]); with the check
/// mode's, a deployed function would exit at every cold start.
pub use lambda_stage_names::variables::SET_BY_LAMBDA_STAGE as RESERVED_STAGE_VARIABLES;

/// Prefixes of a secret reference, resolved by the framework at cold start.
pub use lambda_stage_names::reference::PREFIXES as SECRET_REFERENCE_PREFIXES;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// The app's name: the prefix of every function name it deploys.
    pub app: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// Default AWS region for every environment.
    pub region: Option<String>,
    /// Default AWS profile for every environment (else the standard AWS chain decides).
    pub profile: Option<String>,
    /// Default AWS account every environment must deploy to (checked with STS before writing).
    pub account_id: Option<String>,
    /// Default function name template (`{app}`, `{function}`, `{env}`).
    pub function_name: Option<String>,
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionSpec>,
    /// The environments the manifest names (preview templates are in `previews`).
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentSpec>,
    /// Preview templates: `[environments."pr-*"]`, by pattern.
    #[serde(skip)]
    pub previews: BTreeMap<String, EnvironmentSpec>,
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

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::SingleStack => "single-stack",
            Strategy::MultiStack => "multi-stack",
        }
    }
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
    /// The execution role's ARN. Either this or `create-role = true`.
    pub role: Option<String>,
    /// Deploy creates a least-privilege execution role (logs only, plus the environment's
    /// secret references) when it is missing.
    #[serde(default)]
    pub create_role: bool,
    /// Tags set on the function.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Configuration variables every environment must provide (in `vars` or `secrets`):
    /// deploy refuses to ship a version that would fail its init in some environment.
    #[serde(default)]
    pub required_vars: Vec<String>,
    /// Cargo features of the package to build with, in every build of the function: its zips,
    /// `invoke` and `serve` (e.g. `["secrets"]` for secret references).
    #[serde(default)]
    pub features: Vec<String>,
    /// Routes on the app's HTTP API.
    pub http: Option<HttpSpec>,
    /// A function URL on each environment's alias.
    pub url: Option<UrlSpec>,
    /// An SQS queue whose messages the function receives.
    pub sqs: Option<SqsSpec>,
    /// An EventBridge schedule that invokes the function.
    pub schedule: Option<ScheduleSpec>,
}

/// `[environments.<env>.functions.<fn>]`: what differs for one function in one environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FunctionOverride {
    /// Multi-stack only: a single-stack version serves every alias with one configuration.
    pub memory: Option<u32>,
    /// Multi-stack only.
    pub timeout: Option<u32>,
    /// Multi-stack only.
    pub arch: Option<Arch>,
    /// Variables of this function alone in this environment (over the environment's).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Secret references of this function alone in this environment.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Multi-stack only: single-stack environments share the app's API and its routes.
    pub http: Option<HttpSpec>,
    pub url: Option<UrlSpec>,
    pub sqs: Option<SqsSpec>,
    pub schedule: Option<ScheduleSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnvironmentSpec {
    /// Deploys to it need confirmation (or `--yes`).
    #[serde(default)]
    pub protected: bool,
    /// Overrides the top-level `region`.
    pub region: Option<String>,
    /// Overrides the top-level `profile`.
    pub profile: Option<String>,
    /// Overrides the top-level `account-id`.
    pub account_id: Option<String>,
    /// The alias this environment runs (single-stack: the environment's name; multi-stack: `live`).
    pub alias: Option<String>,
    /// Multi-stack: this environment's function name template.
    pub function_name: Option<String>,
    /// The app's non-secret variables for this environment, by their full name (`APP_GREETING`).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Secret references by variable name (`APP_API_KEY = "ssm:/app/prod/api-key"`); the
    /// framework resolves them at cold start, so only the reference is deployed.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Per-function overrides in this environment.
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionOverride>,
}

impl Manifest {
    /// Reads and validates `lambda-stage.toml` in `root`; `Ok(None)` when there is none.
    pub fn load(root: &Path) -> anyhow::Result<Option<(PathBuf, Manifest)>> {
        let path = root.join(FILE_NAME);
        match std::fs::metadata(&path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => Ok(Some((path.clone(), Manifest::load_file(&path)?))),
        }
    }

    /// Reads and validates the manifest at `path`.
    pub fn load_file(path: &Path) -> anyhow::Result<Manifest> {
        let bytes =
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
        let text = utf8_text(path, &bytes)?;
        Manifest::parse(path, text).map_err(anyhow::Error::from)
    }

    /// Parses and validates manifest text; `path` only names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let locator = Locator::new(path, text);
        let mut manifest: Manifest = toml::from_str(text).map_err(|err| ManifestError {
            problems: vec![locator.problem_at(err.span(), None, err.message().trim())],
        })?;
        let templates: Vec<String> = manifest
            .environments
            .keys()
            .filter(|key| key.contains('*'))
            .cloned()
            .collect();
        for key in templates {
            if let Some(spec) = manifest.environments.remove(&key) {
                manifest.previews.insert(key, spec);
            }
        }
        let problems = manifest.problems(&locator);
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(ManifestError { problems })
        }
    }

    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.get(name)
    }

    /// The environment `name`: one the manifest names, a preview template by its pattern, or
    /// the template a preview environment (`pr-42`) is made from.
    pub fn environment(&self, name: &str) -> Option<&EnvironmentSpec> {
        self.environments
            .get(name)
            .or_else(|| self.previews.get(name))
            .or_else(|| self.preview_template(name).map(|(_, spec)| spec))
    }

    /// The environment, or an error listing the ones that exist.
    pub fn require_environment(&self, name: &str) -> anyhow::Result<&EnvironmentSpec> {
        self.environment(name).with_context(|| {
            format!(
                "no environment `{name}` in {FILE_NAME} (it has: {})",
                self.environments
                    .keys()
                    .chain(self.previews.keys())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// The function, or an error listing the ones that exist.
    pub fn require_function(&self, name: &str) -> anyhow::Result<&FunctionSpec> {
        self.function(name).with_context(|| {
            format!(
                "no function `{name}` in {FILE_NAME} (it has: {})",
                self.functions
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// The region `env` deploys to, if the manifest names one (else the AWS chain decides).
    pub fn region(&self, env: &str) -> Option<&str> {
        self.environment(env)
            .and_then(|spec| spec.region.as_deref())
            .or(self.region.as_deref())
    }

    pub fn profile(&self, env: &str) -> Option<&str> {
        self.environment(env)
            .and_then(|spec| spec.profile.as_deref())
            .or(self.profile.as_deref())
    }

    pub fn account_id(&self, env: &str) -> Option<&str> {
        self.environment(env)
            .and_then(|spec| spec.account_id.as_deref())
            .or(self.account_id.as_deref())
    }

    /// The alias that `env` runs.
    pub fn alias(&self, env: &str) -> String {
        match self.environment(env).and_then(|spec| spec.alias.clone()) {
            Some(alias) => alias,
            None => match self.strategy {
                Strategy::SingleStack => env.to_owned(),
                Strategy::MultiStack => DEFAULT_MULTI_STACK_ALIAS.to_owned(),
            },
        }
    }

    /// The Lambda function name of `function` in `env`.
    pub fn function_name(&self, function: &str, env: &str) -> String {
        self.function_name_template(env)
            .replace("{app}", &self.app)
            .replace("{function}", function)
            .replace("{env}", env)
    }

    /// The function name template `env` uses (`{app}`, `{function}`, `{env}` unexpanded).
    fn function_name_template(&self, env: &str) -> &str {
        self.environment(env)
            .and_then(|spec| spec.function_name.as_deref())
            .or(self.function_name.as_deref())
            .unwrap_or(match self.strategy {
                Strategy::SingleStack => DEFAULT_SINGLE_STACK_NAME,
                Strategy::MultiStack => DEFAULT_MULTI_STACK_NAME,
            })
    }

    /// The environments one deployed version serves: single-stack, all of them (a version
    /// freezes the variables of every alias) and `env` when it is a preview; multi-stack, just
    /// `env`.
    pub fn served_environments(&self, env: &str) -> Vec<String> {
        match self.strategy {
            Strategy::SingleStack => self.environment_names(env),
            Strategy::MultiStack => vec![env.to_owned()],
        }
    }
}

impl FunctionSpec {
    /// The cargo package that builds the function named `key`.
    pub fn package_name<'a>(&'a self, key: &'a str) -> &'a str {
        self.package.as_deref().unwrap_or(key)
    }
}

impl EnvironmentSpec {
    /// `vars` and `secrets` together: every configuration variable this environment sets.
    pub fn all_vars(&self) -> impl Iterator<Item = (&String, &String)> {
        self.vars.iter().chain(self.secrets.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("lambda-stage.toml"), text)
    }

    fn errors(text: &str) -> String {
        parse(text)
            .expect_err("manifest should be rejected")
            .to_string()
    }

    const BASE: &str = "app = \"demo\"\nregion = \"eu-west-1\"\n[functions.hello]\n";

    #[test]
    fn the_repository_manifest_is_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let (_, manifest) = Manifest::load(&root)
            .unwrap()
            .expect("lambda-stage.toml exists");
        assert!(manifest.environments.contains_key("prod"));
    }

    #[test]
    fn unknown_key_is_located() {
        let err = errors(&format!("{BASE}memroy = 256\n[environments.dev]\n"));
        assert!(err.contains("lambda-stage.toml:4:1"), "{err}");
        assert!(err.contains("memroy"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_at_its_first_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(
            &path,
            b"app = \"demo\"\n[environments.d\xc3\xa9v]\nvars = { APP_A = \"caf\xe9\" }\n",
        )
        .unwrap();
        let err = format!("{:#}", Manifest::load_file(&path).unwrap_err());
        // Line 3, after `vars = { APP_A = "caf`: the 22nd character.
        let expected = format!("{}:3:22: byte 0xE9 is not valid UTF-8", path.display());
        assert!(err.contains(&expected), "{err}");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let err = errors(&format!(
            "{BASE}[environments.dev]\nvars = {{ \"APP_É\" = \"x\", \"1ST\" = \"y\" }}\n"
        ));
        // `vars = { "APP_É" = "x", ` is 24 characters (25 bytes).
        assert!(err.contains(":5:25: `environments.dev.vars.1ST`"), "{err}");
    }

    #[test]
    fn unknown_arch_is_located() {
        let err = errors(&format!("{BASE}arch = \"sparc\"\n[environments.dev]\n"));
        assert!(err.contains(":4:"), "{err}");
        assert!(err.contains("sparc"), "{err}");
    }

    #[test]
    fn illegal_and_reserved_variable_names_are_located() {
        let err = errors(&format!(
            "{BASE}[environments.dev]\nvars = {{ \"1ST\" = \"x\" }}\n[environments.prod]\n[environments.prod.vars]\nAWS_REGION = \"us-east-1\"\n"
        ));
        assert!(
            err.contains(":5:") && err.contains("environments.dev.vars.1ST"),
            "{err}"
        );
        assert!(
            err.contains(":8:1: `environments.prod.vars.AWS_REGION`: `AWS_REGION` is reserved"),
            "{err}"
        );
    }

    /// The manifest refuses exactly what Lambda (and so the emulator) refuses: one list.
    #[test]
    fn every_name_lambda_reserves_is_refused_and_tz_is_not() {
        for name in lambda_stage_names::variables::RESERVED_BY_LAMBDA {
            let err = errors(&format!(
                "{BASE}[environments.dev]\nvars = {{ {name} = \"x\" }}\n"
            ));
            // `_HANDLER` and `_X_AMZN_TRACE_ID` are not even legal names for a function to set.
            let why = if name.starts_with('_') {
                "is not a legal variable name"
            } else {
                "is reserved by Lambda"
            };
            assert!(err.contains(&format!("`{name}` {why}")), "{name}: {err}");
        }
        for name in lambda_stage_names::variables::SET_BY_LAMBDA_STAGE {
            let err = errors(&format!(
                "{BASE}[environments.dev]\nvars = {{ {name} = \"x\" }}\n"
            ));
            assert!(
                err.contains(&format!("`{name}` is set by lambda-stage itself")),
                "{name}: {err}"
            );
        }
        parse(&format!(
            "{BASE}[environments.dev]\nvars = {{ TZ = \"Europe/Paris\", LANG = \"C\" }}\n"
        ))
        .expect("Lambda lets a function set TZ and LANG");
    }

    #[test]
    fn the_config_check_variable_cannot_be_deployed() {
        let err = errors(&format!(
            "{BASE}[environments.dev]\nvars = {{ LAMBDA_STAGE_CHECK_CONFIG = \"1\" }}\n"
        ));
        assert!(
            err.contains("`LAMBDA_STAGE_CHECK_CONFIG` is set by lambda-stage itself"),
            "{err}"
        );
    }

    #[test]
    fn an_illegal_variable_name_is_reported_once_at_its_own_key() {
        for strategy in ["single-stack", "multi-stack"] {
            let err = errors(&format!(
                "strategy = \"{strategy}\"\n{BASE}[environments.dev]\nvars = {{ \"bad-name\" = \"x\", \"APP_bad-field\" = \"y\", _HANDLER = \"z\" }}\n"
            ));
            for name in ["bad-name", "APP_bad-field", "_HANDLER"] {
                assert_eq!(
                    err.matches(&format!("`{name}` is not a legal variable name"))
                        .count(),
                    1,
                    "{strategy}: {err}"
                );
            }
            assert!(err.contains("environments.dev.vars.bad-name"), "{err}");
            assert!(!err.contains("deployed variable"), "{strategy}: {err}");
            assert!(!err.contains("APP_<ENV>"), "{strategy}: {err}");
        }
    }

    #[test]
    fn variables_over_four_kilobytes_are_refused() {
        let big = "x".repeat(3000);
        let err = errors(&format!(
            "{BASE}[environments.dev]\nvars = {{ APP_A = \"{big}\" }}\n[environments.prod]\nvars = {{ APP_A = \"{big}\" }}\n"
        ));
        assert!(err.contains("over Lambda's 4096-byte limit"), "{err}");
    }

    #[test]
    fn secrets_must_be_references() {
        let err = errors(&format!(
            "{BASE}[environments.dev]\nsecrets = {{ APP_KEY = \"hunter2\" }}\n"
        ));
        assert!(err.contains("environments.dev.secrets.APP_KEY"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "a secret value must not be echoed: {err}"
        );
    }

    #[test]
    fn single_stack_variables_are_per_alias() {
        let manifest = parse(&format!(
            "{BASE}[environments.dev]\nvars = {{ APP_GREETING = \"hi\", RUST_LOG = \"info\" }}\n[environments.eu-prod]\nsecrets = {{ APP_KEY = \"ssm:/demo/key\" }}\nvars = {{ RUST_LOG = \"info\" }}\n"
        ))
        .unwrap();
        let vars = manifest.function_variables("hello", "dev").unwrap();
        assert_eq!(vars["APP_DEV__GREETING"], "hi");
        assert_eq!(vars["APP_EU_PROD__KEY"], "ssm:/demo/key");
        assert_eq!(vars["RUST_LOG"], "info");
        assert_eq!(vars["LAMBDA_STAGE_ENVS"], "dev,eu-prod");
        assert_eq!(manifest.function_name("hello", "dev"), "demo-hello");
        assert_eq!(manifest.alias("eu-prod"), "eu-prod");
    }

    #[test]
    fn multi_stack_names_and_aliases() {
        let manifest = parse(&format!(
            "strategy = \"multi-stack\"\n{BASE}[environments.dev]\nvars = {{ APP_GREETING = \"hi\" }}\n[environments.prod]\naccount-id = \"123456789012\"\nfunction-name = \"{{app}}-prod-{{function}}\"\n"
        ))
        .unwrap();
        assert_eq!(manifest.function_name("hello", "dev"), "demo-hello-dev");
        assert_eq!(manifest.function_name("hello", "prod"), "demo-prod-hello");
        assert_eq!(manifest.alias("prod"), "live");
        let vars = manifest.function_variables("hello", "dev").unwrap();
        assert_eq!(vars["APP_GREETING"], "hi");
        assert_eq!(vars["LAMBDA_STAGE_ENV"], "dev");
    }

    #[test]
    fn single_stack_refuses_split_accounts_and_bad_settings() {
        let err = errors(&format!(
            "{BASE}[environments.dev]\naccount-id = \"111111111111\"\n[environments.prod]\naccount-id = \"22\"\nregion = \"moon\"\n"
        ));
        assert!(
            err.contains("`environments.prod.account-id`: `22` is not an AWS account id"),
            "{err}"
        );
        assert!(
            err.contains("`environments.prod.region`: `moon` is not an AWS region"),
            "{err}"
        );
        assert!(err.contains("must share one account"), "{err}");
    }
}
