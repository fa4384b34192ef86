//! `cargo xtask deploy | promote | finalize | rollback | status`: per-environment deploys
//! through the AWS SDK for Rust, with the only manual act the decision to touch production.
//!
//! Every command checks first (manifest, configuration, STS identity against the manifest's
//! account), prints what it will do, asks before touching a protected environment, and moves
//! aliases last, with the `RevisionId` it read, so a failure or a concurrent change never leaves
//! an alias half-moved. The alias history lives in the alias description, in AWS, so any
//! machine can roll back.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Args as ClapArgs;

use crate::manifest::{self, Manifest, Strategy};
use crate::workspace;

pub mod alias;
pub mod artifact;
pub mod aws;
pub mod destroy;
pub mod engine;
pub mod history;
pub mod previews;
pub mod role;
pub mod secrets;
pub mod status;
pub mod triggers;

use aws::EnvClients;
use engine::{AliasState, AliasTarget, Desired, Plan, RoleSpec, Settings};
use history::VersionStamp;

/// Options every deploy command shares.
#[derive(Debug, Clone, ClapArgs)]
pub struct ManifestArg {
    /// The manifest to use (default: lambda-stage.toml at the workspace root).
    #[arg(long, value_name = "PATH")]
    pub manifest: Option<PathBuf>,
}

/// `cargo xtask deploy --env <name> [FUNCTION...]`
#[derive(Debug, Clone, ClapArgs)]
pub struct DeployArgs {
    /// The environment to deploy to (a key of [environments] in the manifest).
    #[arg(long)]
    pub env: String,
    /// Functions to deploy (default: all of the manifest's functions).
    pub functions: Vec<String>,
    /// Do not ask for confirmation on a protected environment (for CI).
    #[arg(long)]
    pub yes: bool,
    /// Print the plan and stop: nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the alias on its version and route this percentage (1-99) to the new one.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub canary: Option<u8>,
    /// Cargo profile the zips are built with.
    #[arg(long, default_value = "release")]
    pub profile: String,
    #[command(flatten)]
    pub manifest: ManifestArg,
}

/// `cargo xtask promote --from staging --to prod`
#[derive(Debug, Clone, ClapArgs)]
pub struct PromoteArgs {
    #[arg(long)]
    pub from: String,
    #[arg(long)]
    pub to: String,
    /// Functions to promote (default: all).
    pub functions: Vec<String>,
    #[arg(long)]
    pub yes: bool,
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub manifest: ManifestArg,
}

/// `cargo xtask finalize --env prod` / `cargo xtask rollback --env prod`
#[derive(Debug, Clone, ClapArgs)]
pub struct AliasArgs {
    #[arg(long)]
    pub env: String,
    /// Functions (default: all).
    pub functions: Vec<String>,
    #[arg(long)]
    pub yes: bool,
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub manifest: ManifestArg,
}

struct Loaded {
    root: PathBuf,
    manifest: Manifest,
}

fn load(arg: &ManifestArg) -> anyhow::Result<Loaded> {
    let root = workspace::root()?;
    let path = arg
        .manifest
        .clone()
        .unwrap_or_else(|| root.join(manifest::FILE_NAME));
    let manifest = Manifest::load_file(&path)?;
    Ok(Loaded { root, manifest })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

/// The functions a command acts on: the ones named, or all.
fn select_functions(manifest: &Manifest, names: &[String]) -> anyhow::Result<Vec<String>> {
    if names.is_empty() {
        if manifest.functions.is_empty() {
            bail!("{} has no [functions.<name>]", manifest::FILE_NAME);
        }
        return Ok(manifest.functions.keys().cloned().collect());
    }
    for name in names {
        manifest.require_function(name)?;
    }
    Ok(names.to_vec())
}

/// Pre-flight on the manifest alone: the variables a version gets are legal and fit in 4 KB,
/// every function has a role, and every environment the version serves provides the
/// configuration the function requires.
pub fn check_config(manifest: &Manifest, env: &str, functions: &[String]) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let preview = manifest.is_preview(env);
    if preview {
        problems.extend(
            manifest
                .preview_name_problems(env)
                .into_iter()
                .map(|p| format!("the preview environment's name does not fit {p}")),
        );
    }
    for function in functions {
        let spec = manifest.require_function(function)?;
        let variables = manifest.function_variables(function, env)?;
        let size = manifest::variables_size(&variables);
        if size > manifest::MAX_VARIABLES_BYTES {
            let hint = if preview && manifest.strategy == Strategy::SingleStack {
                ": a single-stack preview adds its variables to the function every environment \
                 shares; use `strategy = \"multi-stack\"` for previews, or move values to \
                 `secrets`"
            } else {
                ": move large values to `secrets` (resolved at cold start)"
            };
            problems.push(format!(
                "the variables of `{function}` for `{env}` take {size} bytes, over Lambda's {} \
                 bytes{hint}",
                manifest::MAX_VARIABLES_BYTES
            ));
        }
        for key in variables.keys() {
            if !manifest::is_legal_variable_name(key)
                || manifest::RESERVED_LAMBDA_VARIABLES.contains(&key.as_str())
            {
                problems.push(format!("`{key}` cannot be a Lambda variable name"));
            }
        }
        if spec.role.is_none() && !spec.create_role {
            problems.push(format!(
                "function `{function}` has no execution role: set `role = \"arn:aws:iam::...\"` \
                 or `create-role = true` in [functions.{function}]"
            ));
        }
        for served in manifest.served_environments(env) {
            if manifest.environment(&served).is_none() {
                continue;
            }
            let provided = manifest.env_function_vars(function, &served);
            for required in &spec.required_vars {
                if !provided.contains_key(required) {
                    problems.push(format!(
                        "function `{function}` requires `{required}`, which environment \
                         `{served}` does not set: add it to [environments.{served}] (or \
                         [environments.{served}.functions.{function}]) `vars` or `secrets` (the \
                         version would fail its init there)"
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "pre-flight failed for `{env}`, nothing was written:\n  {}",
            problems.join("\n  ")
        )
    }
}

/// What the manifest wants `function` to look like in `env`.
fn settings(manifest: &Manifest, env: &str, function: &str) -> anyhow::Result<Settings> {
    let spec = manifest.require_function(function)?;
    let role = match &spec.role {
        Some(arn) => RoleSpec::Existing(arn.clone()),
        None => RoleSpec::Managed {
            name: managed_role_name(&manifest.function_name(function, env)),
        },
    };
    Ok(Settings {
        arch: manifest.arch(function, env),
        memory_mb: i32::try_from(manifest.memory_mb(function, env))?,
        timeout_secs: i32::try_from(manifest.timeout_secs(function, env))?,
        variables: manifest.function_variables(function, env)?,
        role,
        queues: role_queues(manifest, env, function)?,
    })
}

/// The queues `function` consumes in every environment its role serves (single-stack: one role
/// for every alias; multi-stack: a role per environment).
fn role_queues(
    manifest: &Manifest,
    env: &str,
    function: &str,
) -> anyhow::Result<Vec<manifest::triggers::QueueRef>> {
    let mut queues = Vec::new();
    for served in manifest.served_environments(env) {
        if let Some(sqs) = manifest.triggers(function, &served)?.sqs {
            queues.push(sqs.queue);
        }
    }
    Ok(queues)
}

/// IAM role names are at most 64 characters.
pub(crate) fn managed_role_name(function_name: &str) -> String {
    let mut name = format!("{function_name}-exec");
    if name.len() > 64 {
        name = format!("{}-exec", &function_name[..59]);
    }
    name
}

fn tags(manifest: &Manifest, env: &str, function: &str) -> BTreeMap<String, String> {
    let mut tags = manifest
        .function(function)
        .map(|spec| spec.tags.clone())
        .unwrap_or_default();
    tags.insert("lambda-stage:app".to_owned(), manifest.app.clone());
    tags.insert("lambda-stage:function".to_owned(), function.to_owned());
    if manifest.strategy == Strategy::MultiStack {
        tags.insert("lambda-stage:env".to_owned(), env.to_owned());
    }
    tags
}

/// A protected environment needs a yes from a person at a terminal, or `--yes`.
fn confirm(manifest: &Manifest, env: &str, yes: bool, action: &str) -> anyhow::Result<()> {
    let protected = manifest.environment(env).is_some_and(|spec| spec.protected);
    if !protected || yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "`{env}` is a protected environment and there is no terminal to confirm on, so \
             nothing was written. Re-run on a terminal to confirm, or pass --yes to {action} \
             without a prompt (CI)."
        );
    }
    eprint!("`{env}` is protected. Type `{env}` to {action}: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != env {
        bail!("not confirmed, nothing was written");
    }
    Ok(())
}

fn print_header(manifest: &Manifest, clients: &EnvClients, verb: &str) {
    println!(
        "{verb} `{}` ({}, account {}, {}):",
        clients.env,
        manifest.strategy.as_str(),
        clients.account,
        clients.region
    );
}

/// `cargo xtask deploy`
pub fn deploy(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let Loaded { root, manifest } = load(&args.manifest)?;
    manifest.require_environment(&args.env)?;
    let functions = select_functions(&manifest, &args.functions)?;
    check_config(&manifest, &args.env, &functions)?;
    let mut artifacts = Vec::new();
    for function in &functions {
        let arch = manifest.arch(function, &args.env);
        artifacts.push(
            artifact::build(&root, &manifest, function, arch, &args.profile)
                .with_context(|| format!("could not build `{function}` for {arch}"))?,
        );
    }
    let target = match args.canary {
        Some(percent) => AliasTarget::Canary(f64::from(percent) / 100.0),
        None => AliasTarget::Full,
    };
    runtime()?.block_on(async {
        let clients = aws::connect(&manifest, &args.env).await?;
        // Secrets engineer's hook: every secret reference of the environment exists.
        secrets::preflight(&manifest, &clients).await?;
        let mut plans = Vec::new();
        for (function, artifact) in functions.iter().zip(artifacts) {
            let stamp = VersionStamp {
                git_commit: artifact.git_label(),
                sha256: Some(artifact.sha256_hex.clone()),
                promoted_from: None,
            };
            let desired = Desired {
                function: function.clone(),
                name: manifest.function_name(function, &args.env),
                alias: manifest.alias(&args.env),
                settings: settings(&manifest, &args.env, function)?,
                tags: tags(&manifest, &args.env, function),
                artifact,
                stamp,
            };
            plans.push(
                engine::plan(&clients, desired, target)
                    .await
                    .with_context(|| {
                        format!(
                            "pre-flight failed for `{function}`, nothing was written; fix the \
                             cause and re-run"
                        )
                    })?,
            );
        }
        let wiring = plan_triggers(&manifest, &clients, &functions).await?;
        execute(
            &manifest,
            &clients,
            &plans,
            &wiring,
            args.dry_run,
            args.yes,
            "deploy",
        )
        .await
    })
}

/// The environment's triggers and what wiring them would change (reads only).
pub struct Wiring {
    pub targets: triggers::EnvTargets,
    pub plan: triggers::Converge,
}

/// Reads the environment's triggers and plans their changes; a trigger that cannot be wired
/// (a missing queue without `create`, ...) fails here, before anything is written.
async fn plan_triggers(
    manifest: &Manifest,
    clients: &EnvClients,
    functions: &[String],
) -> anyhow::Result<Wiring> {
    let targets = triggers::EnvTargets::new(manifest, &clients.env, functions)?;
    let mut plan = triggers::Converge::plan();
    triggers::converge(clients, &targets, &mut plan)
        .await
        .with_context(|| {
            format!(
                "pre-flight failed for the triggers of `{}`, nothing was written",
                clients.env
            )
        })?;
    Ok(Wiring { targets, plan })
}

/// Prints the plans, stops for `--dry-run` or a no-op, confirms, applies.
async fn execute(
    manifest: &Manifest,
    clients: &EnvClients,
    plans: &[Plan],
    wiring: &Wiring,
    dry_run: bool,
    yes: bool,
    verb: &str,
) -> anyhow::Result<ExitCode> {
    print_header(manifest, clients, &format!("Plan to {verb} to"));
    for plan in plans {
        print!("{}", plan.describe());
    }
    print!("{}", triggers::describe(&wiring.plan));
    if dry_run {
        println!("--dry-run: stopping here, nothing was written.");
        return Ok(ExitCode::SUCCESS);
    }
    if plans.iter().all(Plan::is_noop) && wiring.plan.changes().is_empty() {
        println!(
            "Nothing to do: `{}` already runs exactly this.",
            clients.env
        );
        return Ok(ExitCode::SUCCESS);
    }
    confirm(manifest, &clients.env, yes, verb)?;
    apply(clients, plans, wiring).await?;
    Ok(ExitCode::SUCCESS)
}

/// Prepares every function's version, wires the triggers, then moves every alias; on any
/// failure the aliases already moved by this command are put back, so every alias ends where
/// it was.
async fn apply(clients: &EnvClients, plans: &[Plan], wiring: &Wiring) -> anyhow::Result<()> {
    let mut versions = Vec::new();
    for plan in plans {
        match engine::prepare(clients, plan).await {
            Ok(version) => {
                println!("  {}: version {version} ready", plan.desired.function);
                versions.push(version);
            }
            Err(err) => return Err(failure(clients, &plan_refs(plans), err).await),
        }
    }
    let mut moves = Vec::new();
    for (plan, version) in plans.iter().zip(&versions) {
        let before = plan.alias_before.as_ref();
        let (primary, weights, history) = match (plan.alias_target, before) {
            (AliasTarget::Canary(weight), Some(before)) => {
                if before.version == *version {
                    continue;
                }
                (
                    before.version.clone(),
                    BTreeMap::from([(version.clone(), weight)]),
                    before.history().moved_from(None),
                )
            }
            _ => {
                if before.is_some_and(|b| b.version == *version && b.weights.is_empty()) {
                    continue;
                }
                let from = before.map(|b| b.version.as_str()).filter(|v| v != version);
                let history = before.map(AliasState::history).unwrap_or_default();
                (version.clone(), BTreeMap::new(), history.moved_from(from))
            }
        };
        moves.push(AliasMove {
            name: plan.desired.name.clone(),
            alias: plan.desired.alias.clone(),
            label: plan.desired.function.clone(),
            before: plan.alias_before.clone(),
            version: primary,
            weights,
            history,
        });
    }
    move_and_wire(clients, moves, wiring).await
}

/// Triggers point at aliases, so an alias that does not exist yet is created first (nothing
/// reaches it before its triggers do), then the triggers are wired, and only then do existing
/// aliases move: a wiring failure leaves every existing alias where it was.
async fn move_and_wire(
    clients: &EnvClients,
    moves: Vec<AliasMove>,
    wiring: &Wiring,
) -> anyhow::Result<()> {
    let (fresh, existing): (Vec<AliasMove>, Vec<AliasMove>) =
        moves.into_iter().partition(|m| m.before.is_none());
    move_aliases(clients, &fresh).await?;
    if !wiring.plan.changes().is_empty() {
        println!("  wiring triggers:");
        triggers::wire(clients, &wiring.targets, &wiring.plan).await?;
    }
    move_aliases(clients, &existing).await?;
    if fresh.is_empty() && existing.is_empty() {
        println!("  aliases already in place");
    }
    Ok(())
}

/// One alias move of a command.
struct AliasMove {
    name: String,
    alias: String,
    /// The function's manifest key, for messages.
    label: String,
    before: Option<AliasState>,
    version: String,
    weights: BTreeMap<String, f64>,
    history: history::AliasHistory,
}

async fn move_aliases(clients: &EnvClients, moves: &[AliasMove]) -> anyhow::Result<()> {
    let mut done: Vec<(&AliasMove, AliasState)> = Vec::new();
    for m in moves {
        match alias::move_alias(
            clients,
            &m.name,
            &m.alias,
            m.before.as_ref(),
            &m.version,
            m.weights.clone(),
            &m.history,
        )
        .await
        {
            Ok(state) => {
                println!("  {}: alias `{}` -> {}", m.label, m.alias, state.summary());
                done.push((m, state));
            }
            Err(err) => {
                let mut restore_errors = Vec::new();
                for (moved, now) in done.iter().rev() {
                    if let Err(restore) = alias::restore_alias(
                        clients,
                        &moved.name,
                        &moved.alias,
                        now,
                        moved.before.as_ref(),
                    )
                    .await
                    {
                        restore_errors.push(format!(
                            "could NOT put alias `{}` of `{}` back to {} ({restore:#}): fix it \
                             with `cargo xtask rollback --env {}`",
                            moved.alias,
                            moved.name,
                            moved
                                .before
                                .as_ref()
                                .map_or("(no alias)".to_owned(), AliasState::summary),
                            clients.env
                        ));
                    }
                }
                let err = if restore_errors.is_empty() {
                    err
                } else {
                    err.context(restore_errors.join("\n"))
                };
                let refs: Vec<AliasRef<'_>> = moves
                    .iter()
                    .map(|m| AliasRef {
                        label: &m.label,
                        name: &m.name,
                        alias: &m.alias,
                    })
                    .collect();
                return Err(failure(clients, &refs, err).await);
            }
        }
    }
    Ok(())
}

/// Names one alias, for failure reports.
struct AliasRef<'a> {
    label: &'a str,
    name: &'a str,
    alias: &'a str,
}

fn plan_refs(plans: &[Plan]) -> Vec<AliasRef<'_>> {
    plans
        .iter()
        .map(|p| AliasRef {
            label: &p.desired.function,
            name: &p.desired.name,
            alias: &p.desired.alias,
        })
        .collect()
}

/// The error a failed command reports: what failed, where every alias is, what to do.
async fn failure(
    clients: &EnvClients,
    targets: &[AliasRef<'_>],
    err: anyhow::Error,
) -> anyhow::Error {
    let mut places = Vec::new();
    for target in targets {
        let now = engine::get_alias(clients, target.name, target.alias)
            .await
            .ok()
            .flatten();
        places.push(format!(
            "{}: `{}` alias `{}` {}",
            target.label,
            target.name,
            target.alias,
            now.as_ref()
                .map_or("does not exist".to_owned(), |a| format!(
                    "is on {}",
                    a.summary()
                ))
        ));
    }
    anyhow::anyhow!(
        "{err:#}\nWhere the aliases are now (none was moved by this run):\n  {}\nFix the cause and \
         re-run the same command: finished steps are skipped, so it converges.",
        places.join("\n  ")
    )
}

/// `cargo xtask promote --from staging --to prod`: the target gets exactly what the source
/// runs, without a rebuild.
pub fn promote(args: PromoteArgs) -> anyhow::Result<ExitCode> {
    let Loaded { root, manifest } = load(&args.manifest)?;
    manifest.require_environment(&args.from)?;
    manifest.require_environment(&args.to)?;
    if args.from == args.to {
        bail!("--from and --to are both `{}`", args.to);
    }
    let functions = select_functions(&manifest, &args.functions)?;
    runtime()?.block_on(async {
        let to = aws::connect(&manifest, &args.to).await?;
        // Secrets engineer's hook: every secret reference of the target environment exists.
        secrets::preflight(&manifest, &to).await?;
        let from = match manifest.strategy {
            Strategy::SingleStack => to.clone(),
            Strategy::MultiStack => aws::connect(&manifest, &args.from).await?,
        };
        let mut sources = Vec::new();
        for function in &functions {
            let name = manifest.function_name(function, &args.from);
            let alias = manifest.alias(&args.from);
            let state = engine::get_alias(&from, &name, &alias)
                .await?
                .with_context(|| {
                    format!(
                        "`{}` has no alias `{alias}`: nothing to promote from `{}`",
                        name, args.from
                    )
                })?;
            if !state.weights.is_empty() {
                bail!(
                    "`{}` is mid-canary in `{}` ({}): finalize or roll it back first, so there \
                     is one version to promote",
                    name,
                    args.from,
                    state.summary()
                );
            }
            let version = engine::get_version(&from, &name, &state.version).await?;
            sources.push((function.clone(), name, state.version.clone(), version));
        }
        match manifest.strategy {
            Strategy::SingleStack => promote_single(&manifest, &to, &args, sources).await,
            Strategy::MultiStack => promote_multi(&root, &manifest, &to, &args, sources).await,
        }
    })
}

/// Single-stack: the target alias moves to the very version the source alias runs.
async fn promote_single(
    manifest: &Manifest,
    clients: &EnvClients,
    args: &PromoteArgs,
    sources: Vec<(
        String,
        String,
        String,
        aws_sdk_lambda::types::FunctionConfiguration,
    )>,
) -> anyhow::Result<ExitCode> {
    let alias = manifest.alias(&args.to);
    let functions: Vec<String> = sources.iter().map(|s| s.0.clone()).collect();
    let wiring = plan_triggers(manifest, clients, &functions).await?;
    let mut moves = Vec::new();
    let mut problems = Vec::new();
    print_header(
        manifest,
        clients,
        &format!("Plan to promote `{}` to", args.from),
    );
    for (function, name, version, config) in sources {
        // The version froze every environment's variables when it was published: it must
        // carry the target's configuration.
        let vars = engine::variables_of(&config);
        let served = vars.get("LAMBDA_STAGE_ENVS").cloned().unwrap_or_default();
        if !served.split(',').any(|a| a == alias) {
            problems.push(format!(
                "version {version} of `{name}` was published without environment `{}` \
                 (it serves: {served}): redeploy `{}` first so its version carries `{}`'s variables",
                args.to, args.from, args.to
            ));
        }
        let spec = manifest.require_function(&function)?;
        for required in &spec.required_vars {
            let key = match required.strip_prefix(manifest::APP_PREFIX) {
                Some(field) => format!(
                    "{}{}__{field}",
                    manifest::APP_PREFIX,
                    manifest::env_key(&alias)
                ),
                None => required.clone(),
            };
            if !vars.contains_key(&key) {
                problems.push(format!(
                    "version {version} of `{name}` lacks `{key}`, which `{}` requires",
                    args.to
                ));
            }
        }
        let before = engine::get_alias(clients, &name, &alias).await?;
        let summary = before
            .as_ref()
            .map_or("(none)".to_owned(), AliasState::summary);
        if before
            .as_ref()
            .is_some_and(|b| b.version == version && b.weights.is_empty())
        {
            println!("  {function} -> `{name}` alias `{alias}`: already on version {version}");
            continue;
        }
        println!("  {function} -> `{name}` alias `{alias}`: {summary} -> version {version}");
        let history = before.as_ref().map(AliasState::history).unwrap_or_default();
        let from = before
            .as_ref()
            .map(|b| b.version.as_str())
            .filter(|v| *v != version);
        moves.push(AliasMove {
            history: history.moved_from(from),
            name,
            alias: alias.clone(),
            label: function,
            before,
            version,
            weights: BTreeMap::new(),
        });
    }
    print!("{}", triggers::describe(&wiring.plan));
    if !problems.is_empty() {
        bail!(
            "pre-flight failed, nothing was written:\n  {}",
            problems.join("\n  ")
        );
    }
    if args.dry_run {
        println!("--dry-run: stopping here, nothing was written.");
        return Ok(ExitCode::SUCCESS);
    }
    if moves.is_empty() && wiring.plan.changes().is_empty() {
        println!(
            "Nothing to do: `{}` already runs what `{}` runs.",
            args.to, args.from
        );
        return Ok(ExitCode::SUCCESS);
    }
    confirm(manifest, &args.to, args.yes, "promote")?;
    move_and_wire(clients, moves, &wiring).await?;
    Ok(ExitCode::SUCCESS)
}

/// Multi-stack: the target function gets the source's zip (found locally by its `CodeSha256`)
/// with the target's configuration; the published version's `CodeSha256` must match.
async fn promote_multi(
    root: &Path,
    manifest: &Manifest,
    clients: &EnvClients,
    args: &PromoteArgs,
    sources: Vec<(
        String,
        String,
        String,
        aws_sdk_lambda::types::FunctionConfiguration,
    )>,
) -> anyhow::Result<ExitCode> {
    let functions: Vec<String> = sources.iter().map(|s| s.0.clone()).collect();
    check_config(manifest, &args.to, &functions)?;
    let mut plans = Vec::new();
    for (function, name, version, config) in sources {
        let code_sha = config.code_sha256().unwrap_or_default().to_owned();
        let artifact =
            artifact::find_by_code_sha(root, &function, &code_sha).with_context(|| {
                let stamp = VersionStamp::parse(config.description());
                format!(
                    "version {version} of `{name}` runs a zip (CodeSha256 {code_sha}) that this \
                 machine has no build of{}: build that commit here (`cargo xtask build`), then \
                 promote again",
                    stamp
                        .git_commit
                        .map_or_else(String::new, |c| format!(" (git {c})"))
                )
            })?;
        if artifact.arch != manifest.arch(&function, &args.to) {
            bail!(
                "`{name}` runs {} code but the manifest wants {} for `{}`",
                artifact.arch,
                manifest.arch(&function, &args.to),
                args.to
            );
        }
        let stamp = VersionStamp {
            promoted_from: Some(format!("{}:{version}", args.from)),
            ..VersionStamp::parse(config.description())
        };
        let desired = Desired {
            function: function.clone(),
            name: manifest.function_name(&function, &args.to),
            alias: manifest.alias(&args.to),
            settings: settings(manifest, &args.to, &function)?,
            tags: tags(manifest, &args.to, &function),
            artifact,
            stamp,
        };
        plans.push(engine::plan(clients, desired, AliasTarget::Full).await?);
    }
    let wiring = plan_triggers(manifest, clients, &functions).await?;
    execute(
        manifest,
        clients,
        &plans,
        &wiring,
        args.dry_run,
        args.yes,
        "promote",
    )
    .await
}

/// `cargo xtask finalize --env prod`: a canary's new version gets all the traffic.
pub fn finalize(args: AliasArgs) -> anyhow::Result<ExitCode> {
    alias_command(args, AliasAction::Finalize)
}

/// `cargo xtask rollback --env prod`: a canary is dropped; otherwise the alias returns to the
/// version it pointed at before the last move.
pub fn rollback(args: AliasArgs) -> anyhow::Result<ExitCode> {
    alias_command(args, AliasAction::Rollback)
}

#[derive(Clone, Copy, PartialEq)]
enum AliasAction {
    Finalize,
    Rollback,
}

fn alias_command(args: AliasArgs, action: AliasAction) -> anyhow::Result<ExitCode> {
    let Loaded { manifest, .. } = load(&args.manifest)?;
    manifest.require_environment(&args.env)?;
    let functions = select_functions(&manifest, &args.functions)?;
    let verb = match action {
        AliasAction::Finalize => "finalize",
        AliasAction::Rollback => "roll back",
    };
    runtime()?.block_on(async {
        let clients = aws::connect(&manifest, &args.env).await?;
        print_header(&manifest, &clients, &format!("Plan to {verb}"));
        let alias = manifest.alias(&args.env);
        let mut moves = Vec::new();
        for function in &functions {
            let name = manifest.function_name(function, &args.env);
            let Some(before) = engine::get_alias(&clients, &name, &alias).await? else {
                println!("  {function}: `{name}` has no alias `{alias}`: nothing to {verb}");
                continue;
            };
            let history = before.history();
            let canary = before.weights.keys().next().cloned();
            let (version, history) = match (action, canary) {
                (AliasAction::Finalize, Some(canary)) => {
                    (canary, history.moved_from(Some(&before.version)))
                }
                (AliasAction::Finalize, None) => {
                    println!(
                        "  {function}: no canary running ({}), nothing to finalize",
                        before.summary()
                    );
                    continue;
                }
                // Dropping a canary: the primary version keeps all the traffic.
                (AliasAction::Rollback, Some(_)) => {
                    (before.version.clone(), history.moved_from(None))
                }
                (AliasAction::Rollback, None) => match history.previous.first() {
                    Some(previous) => {
                        engine::get_version(&clients, &name, previous)
                            .await
                            .with_context(|| {
                                format!("cannot roll `{name}` back to version {previous}")
                            })?;
                        (previous.clone(), history.rolled_back())
                    }
                    None => bail!(
                        "alias `{alias}` of `{name}` records no earlier version ({}): nothing \
                         to roll back to; deploy the version you want instead",
                        before.summary()
                    ),
                },
            };
            println!(
                "  {function}: alias `{alias}` {} -> version {version}",
                before.summary()
            );
            moves.push(AliasMove {
                name,
                alias: alias.clone(),
                label: function.clone(),
                before: Some(before),
                version,
                weights: BTreeMap::new(),
                history,
            });
        }
        if args.dry_run {
            println!("--dry-run: stopping here, nothing was written.");
            return Ok(ExitCode::SUCCESS);
        }
        if moves.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        confirm(&manifest, &args.env, args.yes, verb)?;
        move_aliases(&clients, &moves).await?;
        Ok(ExitCode::SUCCESS)
    })
}
