//! `cargo xtask invoke <FUNCTION>`: build a function for this machine, run its real bootstrap on
//! the local Lambda emulator (`lambda-stage-emulator`) in one environment, deliver one event, and
//! print only the function's answer on stdout.
//!
//! - Variables: the environment's, exactly as deploy gives them ([`Manifest::function_variables`]),
//!   with the `APP_*` variables of the calling shell on top, for the invoked environment
//!   (single-stack: `APP_GREETING` from the shell replaces the manifest's `APP_<ENV>__GREETING`
//!   of the invoked environment, so the function reads, and a config error names, the variable
//!   the user set). With no manifest, or a function it does not list, the shell's `APP_*`
//!   variables are all the function gets. A shell `APP_*` variable that is not UTF-8 is refused
//!   by name before anything is built (Lambda's variables are text); its value is never shown.
//! - Environment: single-stack, the invoked ARN carries the environment's alias as qualifier;
//!   multi-stack, the function is deployed per environment with `LAMBDA_STAGE_ENV` (from the
//!   manifest's variables) and invoked through its alias.
//! - Event: `--data`, `--event` (a catalogue name, a file, `-`); with neither, what the
//!   function's own trigger in the environment sends ([`trigger_event`]), else `{}`.
//! - Exit code: 0 with the response on stdout; 1 with the error JSON on stdout for a function
//!   error (including a timeout or a crash); 2 with the error JSON on stdout for an init error;
//!   130 after Ctrl-C, which stops the function's process too.
//!   Build output, the function's logs and Lambda's `START`/`END`/`REPORT` lines go to stderr.
//! - `--remote`: the same event goes to the environment's deployed alias instead ([`remote`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use lambda_stage_emulator::{Emulator, FunctionConfig, Invocation, Logs, Outcome};
use lambda_stage_events::Overrides;
use tokio::signal::unix::{signal, SignalKind};

use crate::build;
use crate::deploy::ManifestArg;
use crate::manifest::{self, Manifest, Strategy, APP_PREFIX, FILE_NAME};
use crate::workspace;

mod payload;
pub mod remote;
pub mod trigger_event;

/// The environment `invoke` runs in when `--env` is not given.
pub const DEFAULT_ENV: &str = "dev";
/// The region when neither the manifest nor `AWS_REGION` names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Exit code of an invocation that answered with a function error.
pub const FUNCTION_ERROR_EXIT: u8 = 1;
/// Exit code of an invocation whose function failed to initialise.
pub const INIT_ERROR_EXIT: u8 = 2;
/// Exit code after Ctrl-C (128 + SIGINT), as a shell reports a program it interrupted.
pub const INTERRUPTED_EXIT: u8 = 130;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The function: a key of `[functions]` in lambda-stage.toml, or a workspace package.
    pub function: String,
    /// The environment to run in (its variables, its alias).
    #[arg(long, default_value = DEFAULT_ENV)]
    pub env: String,
    /// The event: a built-in event name (`cargo xtask events` lists them), a JSON file, or `-`
    /// for stdin. Default: what the function's trigger (http, sqs, schedule) in `--env` sends,
    /// else `{}`.
    #[arg(long, conflicts_with = "data")]
    pub event: Option<String>,
    /// The event as inline JSON.
    #[arg(long)]
    pub data: Option<String>,
    /// Build with the release profile (default: debug, faster to build).
    #[arg(long)]
    pub release: bool,
    /// Invoke the environment's deployed alias in AWS instead of the local emulator (nothing is
    /// built), with the same event.
    #[arg(long, conflicts_with = "release")]
    pub remote: bool,
    /// With --remote: print the invocation's last 4 KB of log on stderr.
    #[arg(long, requires = "remote")]
    pub log: bool,
    /// With --remote: do not ask for confirmation on a protected environment (for CI).
    #[arg(long, requires = "remote")]
    pub yes: bool,
    #[command(flatten)]
    pub manifest: ManifestArg,
    #[command(flatten)]
    pub overrides: Overrides,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.remote {
        return Ok(remote::run(&args));
    }
    let root = workspace::root()?;
    let manifest = match &args.manifest.manifest {
        Some(path) => Some(Manifest::load_file(path)?),
        None => Manifest::load(&root)?.map(|(_, manifest)| manifest),
    };
    require_function_or_package(&root, manifest.as_ref(), &args.function)?;
    let plan = Plan::new(
        manifest.as_ref(),
        &args.function,
        &args.env,
        shell_app_variables()?,
    )?;
    let account = manifest
        .as_ref()
        .and_then(|manifest| manifest.account_id(&args.env))
        .unwrap_or(trigger_event::PLACEHOLDER_ACCOUNT);
    let payload = payload::payload(&args, manifest.as_ref(), &plan.region, account)?;
    let binary = build::host::build_binary(&root, &plan.package, &plan.features, args.release)?;
    let invoked = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?
        .block_on(async {
            // The function runs in a process group of its own, so a terminal's Ctrl-C reaches
            // only us: stopping the invocation here stops (kills) its process too. SIGINT is
            // caught before the function starts: `ctrl_c()` catches it only from its first poll,
            // and a Ctrl-C before that ended us by default, with the function left running.
            let mut interrupt =
                signal(SignalKind::interrupt()).context("could not listen for Ctrl-C (SIGINT)")?;
            tokio::select! {
                outcome = plan.invoke(binary, payload) => outcome.map(Some),
                _ = interrupt.recv() => Ok(None),
            }
        })?;
    match invoked {
        Some(outcome) => report(&args.function, &args.env, &outcome),
        None => {
            eprintln!(
                "invoke: interrupted (Ctrl-C): `{}` was stopped",
                args.function
            );
            Ok(ExitCode::from(INTERRUPTED_EXIT))
        }
    }
}

/// With a manifest, `function` must be one of its functions or a workspace package that builds a
/// binary (run with Lambda's defaults): a typo gets the manifest's list of functions
/// ([`Manifest::require_function`]) rather than cargo's "package not found".
pub fn require_function_or_package(
    root: &Path,
    manifest: Option<&Manifest>,
    function: &str,
) -> anyhow::Result<()> {
    let Some(manifest) = manifest else {
        return Ok(());
    };
    if manifest.function(function).is_some() {
        return Ok(());
    }
    let metadata = cargo_metadata::MetadataCommand::new()
        .cargo_path(workspace::cargo())
        .current_dir(root)
        .no_deps()
        .exec()
        .context("`cargo metadata` failed: is the workspace's Cargo.toml valid?")?;
    let is_binary_package = metadata.workspace_packages().iter().any(|package| {
        package.name.as_str() == function && package.targets.iter().any(|t| t.is_bin())
    });
    if is_binary_package {
        return Ok(());
    }
    manifest.require_function(function).map(|_| ())
}

/// What one local invocation runs: resolved from the manifest, the environment and the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The cargo package to build.
    pub package: String,
    /// The package's features to build with (the manifest's `features`).
    pub features: Vec<String>,
    /// The Lambda function name (`AWS_LAMBDA_FUNCTION_NAME`), as deployed to that environment.
    pub function_name: String,
    /// The qualifier of the invoked ARN (the environment's alias).
    pub qualifier: Option<String>,
    /// The function's configured variables.
    pub variables: BTreeMap<String, String>,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub region: String,
}

impl Plan {
    /// Resolves `function` in `env`; `shell` are the calling shell's `APP_*` variables.
    pub fn new(
        manifest: Option<&Manifest>,
        function: &str,
        env: &str,
        shell: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Plan> {
        let region = std::env::var("AWS_REGION").ok();
        let listed = manifest.and_then(|manifest| Some((manifest, manifest.function(function)?)));
        let Some((manifest, spec)) = listed else {
            if manifest.is_some() {
                eprintln!(
                    "note: `{function}` is not a function of {FILE_NAME}: running package \
                     `{function}` with Lambda's defaults and only the shell's {APP_PREFIX}* variables"
                );
            }
            return Ok(Plan {
                package: function.to_owned(),
                features: Vec::new(),
                function_name: function.to_owned(),
                qualifier: Some(env.to_owned()),
                variables: shell.into_iter().collect(),
                timeout: Duration::from_secs(manifest::DEFAULT_TIMEOUT_SECS.into()),
                memory_mb: manifest::DEFAULT_MEMORY_MB,
                region: region.unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            });
        };
        manifest.require_environment(env)?;
        let alias = manifest.alias(env);
        let mut variables = manifest.function_variables(function, env)?;
        let shell: Vec<(String, String)> = shell.into_iter().collect();
        for (key, _) in &shell {
            // Single-stack: the shell's plain `APP_<FIELD>` beats the manifest's value for the
            // invoked environment, so that value (`APP_<ENV>__<FIELD>`) is dropped and the
            // function reads the very variable the user set (and names it in a config error);
            // the plain name is also the fallback every environment shares.
            if let (Strategy::SingleStack, Some(field)) =
                (manifest.strategy, key.strip_prefix(APP_PREFIX))
            {
                if !field.contains("__") {
                    variables.remove(&format!(
                        "{APP_PREFIX}{}__{field}",
                        manifest::env_key(&alias)
                    ));
                }
            }
        }
        variables.extend(shell);
        Ok(Plan {
            package: spec.package_name(function).to_owned(),
            features: spec.features.clone(),
            function_name: manifest.function_name(function, env),
            qualifier: Some(alias),
            variables,
            timeout: Duration::from_secs(manifest.timeout_secs(function, env).into()),
            memory_mb: manifest.memory_mb(function, env),
            region: manifest
                .region(env)
                .map(str::to_owned)
                .or(region)
                .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
        })
    }

    /// Runs `binary` on a fresh emulator, delivers `payload` once, and shuts the emulator down.
    pub async fn invoke(&self, binary: PathBuf, payload: Vec<u8>) -> anyhow::Result<Outcome> {
        let config = FunctionConfig {
            env: self.variables.clone(),
            timeout: self.timeout,
            memory_mb: self.memory_mb,
            region: self.region.clone(),
            max_concurrency: 1,
            logs: Logs::Stderr,
            ..FunctionConfig::new(&self.function_name, binary)
        };
        let emulator = Emulator::start(config)?;
        let invocation = Invocation {
            qualifier: self.qualifier.clone(),
            ..Invocation::new(payload)
        };
        let outcome = emulator.invoke(invocation).await;
        emulator.shutdown();
        Ok(outcome?)
    }
}

/// The calling shell's `APP_*` variables, or an error naming each one that is not UTF-8.
pub fn shell_app_variables() -> anyhow::Result<Vec<(String, String)>> {
    app_variables(std::env::vars_os())
}

/// The `APP_*` variables among `vars`. Lambda's variables are UTF-8 text, so a name or value
/// that is not cannot reach the function: each such variable is named in the error (its name
/// lossily decoded when the name itself is the bad part), and its value is never shown, as it
/// may be a secret.
fn app_variables(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut app = Vec::new();
    let mut not_utf8 = Vec::new();
    for (key, value) in vars {
        if !key.to_string_lossy().starts_with(APP_PREFIX) {
            continue;
        }
        match (key.into_string(), value.into_string()) {
            (Ok(key), Ok(value)) => app.push((key, value)),
            (Ok(key), Err(_)) => not_utf8.push(format!("`{key}`: its value is not valid UTF-8")),
            (Err(key), _) => not_utf8.push(format!(
                "`{}`: its name is not valid UTF-8 (its bad bytes shown as U+FFFD)",
                key.to_string_lossy()
            )),
        }
    }
    if !not_utf8.is_empty() {
        bail!(
            "the shell's {APP_PREFIX}* variables reach the function as Lambda variables, which are \
             UTF-8 text, but:\n  {}\nset each to UTF-8 text, or remove it from the environment \
             (`unset <NAME>`, or `env -u <NAME> cargo xtask ...`)",
            not_utf8.join("\n  ")
        );
    }
    Ok(app)
}

/// Prints the answer on stdout and turns the outcome into the exit code.
fn report(function: &str, env: &str, outcome: &Outcome) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(outcome.payload())?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    let Some(error_type) = outcome.error_type() else {
        return Ok(ExitCode::SUCCESS);
    };
    let message = serde_json::from_slice::<serde_json::Value>(outcome.payload())
        .ok()
        .and_then(|error| error.get("errorMessage")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    if let Outcome::InitError { .. } = outcome {
        // The diagnosis itself is already on stdout (the error JSON) and, from a lambda-stage
        // function, in its log above: a third copy here only buried it.
        eprintln!(
            "error: `{function}` failed to initialise in `{env}` ({error_type}): the function \
             never ran; its error is the JSON on stdout, and its logs are above. A missing or \
             invalid APP_* variable is the usual cause: set it in [environments.{env}] of \
             {FILE_NAME}, or in this shell."
        );
        Ok(ExitCode::from(INIT_ERROR_EXIT))
    } else {
        eprintln!("error: `{function}` answered with a function error ({error_type}): {message}");
        Ok(ExitCode::from(FUNCTION_ERROR_EXIT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(Path::new(FILE_NAME), text).expect("valid manifest")
    }

    fn shell(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    const SINGLE_STACK: &str = r#"
app = "demo"
region = "eu-west-1"
[functions.hello]
timeout = 7
memory = 256
[environments.dev]
vars = { APP_GREETING = "Hello" }
[environments.staging]
vars = { APP_GREETING = "Hello from staging" }
"#;

    #[test]
    fn without_a_manifest_the_shell_configures_the_function() {
        let plan = Plan::new(None, "hello", "dev", shell(&[("APP_GREETING", "Hi")])).unwrap();
        assert_eq!(plan.package, "hello");
        assert_eq!(plan.qualifier.as_deref(), Some("dev"));
        assert_eq!(
            plan.variables.get("APP_GREETING").map(String::as_str),
            Some("Hi")
        );
        assert_eq!(plan.timeout, Duration::from_secs(3));
        assert_eq!(plan.memory_mb, 128);
    }

    #[test]
    fn single_stack_shell_overrides_only_the_invoked_environment() {
        let manifest = manifest(SINGLE_STACK);
        let plan = Plan::new(
            Some(&manifest),
            "hello",
            "dev",
            shell(&[("APP_GREETING", "Hi")]),
        )
        .unwrap();
        assert_eq!(plan.function_name, "demo-hello");
        assert_eq!(plan.qualifier.as_deref(), Some("dev"));
        // The shell's variable itself, not one derived from it: a config error names what the
        // user set.
        assert!(
            !plan.variables.contains_key("APP_DEV__GREETING"),
            "{plan:?}"
        );
        assert_eq!(plan.variables["APP_GREETING"], "Hi");
        assert_eq!(
            plan.variables["APP_STAGING__GREETING"],
            "Hello from staging"
        );
        assert_eq!(plan.variables["LAMBDA_STAGE_ENVS"], "dev,staging");
        assert_eq!(plan.timeout, Duration::from_secs(7));
        assert_eq!(plan.memory_mb, 256);
        assert_eq!(plan.region, "eu-west-1");
    }

    #[test]
    fn multi_stack_sets_the_environment_and_takes_the_shell_as_is() {
        let manifest = manifest(&format!("strategy = \"multi-stack\"\n{SINGLE_STACK}"));
        let plan = Plan::new(
            Some(&manifest),
            "hello",
            "staging",
            shell(&[("APP_SHOUT", "true")]),
        )
        .unwrap();
        assert_eq!(plan.function_name, "demo-hello-staging");
        assert_eq!(plan.variables["LAMBDA_STAGE_ENV"], "staging");
        assert_eq!(plan.variables["APP_GREETING"], "Hello from staging");
        assert_eq!(plan.variables["APP_SHOUT"], "true");
    }

    #[test]
    fn shell_variables_that_are_not_utf8_are_named_and_their_values_never_shown() {
        use std::os::unix::ffi::OsStringExt as _;
        let os = |bytes: &[u8]| OsString::from_vec(bytes.to_vec());
        let vars = vec![
            (os(b"APP_GREETING"), os(b"Hi")),
            (os(b"APP_API_KEY"), os(b"CANARY\xff")),
            (os(b"APP_\xffODD"), os(b"CANARY-TOO")),
            // Not the app's: none of invoke's business, whatever its bytes.
            (os(b"LESSOPEN"), os(b"\xfe")),
        ];
        let message = format!("{:#}", app_variables(vars).unwrap_err());
        assert!(
            message.contains("`APP_API_KEY`: its value is not valid UTF-8"),
            "{message}"
        );
        assert!(message.contains("`APP_\u{FFFD}ODD`: its name"), "{message}");
        assert!(!message.contains("CANARY"), "{message}");
        assert!(!message.contains("LESSOPEN"), "{message}");
        assert!(message.contains("unset"), "says how to fix it: {message}");

        let fine = vec![
            (os(b"APP_GREETING"), os(b"Hi")),
            (os(b"LESSOPEN"), os(b"\xfe")),
        ];
        assert_eq!(
            app_variables(fine).unwrap(),
            shell(&[("APP_GREETING", "Hi")])
        );
    }

    #[test]
    fn an_unknown_environment_names_the_known_ones() {
        let manifest = manifest(SINGLE_STACK);
        let err = Plan::new(Some(&manifest), "hello", "qa", shell(&[])).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("qa") && message.contains("dev, staging"),
            "{message}"
        );
    }
}
