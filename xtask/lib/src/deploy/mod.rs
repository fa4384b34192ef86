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
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Args as ClapArgs;

use crate::arch::Arch;
use crate::build::BuildMemo;
use crate::manifest::{self, Manifest};
use crate::{progress, workspace};

pub mod alias;
pub mod artifact;
pub mod aws;
pub mod config_check;
pub mod destroy;
pub mod engine;
mod fan_out;
pub mod finalize;
pub mod history;
mod preflight;
pub mod previews;
pub mod promote;
pub mod role;
pub mod role_access;
mod rollback;
pub mod secrets;
pub mod status;
pub mod triggers;
mod wait;

use alias::EnvAliases;
use aws::EnvClients;
use engine::{AliasState, AliasTarget, Desired, Plan};
use history::{StepKind, VersionStamp};

pub use finalize::{finalize, AliasArgs};
pub use preflight::check_config;
pub(crate) use preflight::managed_role_name;
use preflight::{settings, tags};
pub use promote::{promote, PromoteArgs};
pub use rollback::rollback;

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
    /// The environment to deploy to (a key of `[environments]` in the manifest).
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

pub(crate) struct Loaded {
    pub root: PathBuf,
    pub manifest: Manifest,
}

pub(crate) fn load(arg: &ManifestArg) -> anyhow::Result<Loaded> {
    let root = workspace::root()?;
    let path = arg
        .manifest
        .clone()
        .unwrap_or_else(|| root.join(manifest::FILE_NAME));
    let manifest = Manifest::load_file(&path)?;
    Ok(Loaded { root, manifest })
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
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

/// A protected environment needs a yes from a person at a terminal, or `--yes`.
pub(crate) fn confirm(
    manifest: &Manifest,
    env: &str,
    yes: bool,
    action: &str,
) -> anyhow::Result<()> {
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
    let runtime = runtime()?;
    // Credentials before the build: a missing login costs seconds, not a release build.
    let clients = runtime.block_on(aws::connect(&manifest, &args.env))?;
    // What the builds and the config check learn once (git, Rust targets, host builds).
    let mut memo = BuildMemo::default();
    let wanted: Vec<(String, Arch)> = functions
        .iter()
        .map(|function| (function.clone(), manifest.arch(function, &args.env)))
        .collect();
    let artifacts = artifact::build_all(&root, &manifest, &wanted, &args.profile, &mut memo)?;
    let subjects = functions
        .iter()
        .zip(&artifacts)
        .map(|(function, artifact)| {
            Ok(config_check::Subject {
                function: function.clone(),
                name: manifest.function_name(function, &args.env),
                variables: manifest.function_variables(function, &args.env)?,
                memory_mb: manifest.memory_mb(function, &args.env),
                code: config_check::Code::Artifact(artifact.clone()),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    config_check::check(
        &root,
        &manifest,
        &args.env,
        &clients.region,
        &subjects,
        &mut memo,
    )?;
    let target = match args.canary {
        Some(percent) => AliasTarget::Canary(f64::from(percent) / 100.0),
        None => AliasTarget::Full,
    };
    runtime.block_on(async {
        // Secrets engineer's hook: every secret reference of the environment exists.
        secrets::preflight(&manifest, &clients).await?;
        let mut wanted = Vec::new();
        for (function, artifact) in functions.iter().zip(artifacts) {
            let stamp = VersionStamp {
                git_commit: artifact.git_label(),
                sha256: Some(artifact.sha256_hex.clone()),
                promoted_from: None,
            };
            wanted.push(Desired {
                function: function.clone(),
                name: manifest.function_name(function, &args.env),
                alias: manifest.alias(&args.env),
                settings: settings(&manifest, &args.env, function)?,
                tags: tags(&manifest, &args.env, function),
                artifact,
                stamp,
            });
        }
        // Reads only: every function's plan and the triggers' at once.
        let plan_functions = fan_out::each(wanted, |desired| {
            let function = desired.function.clone();
            let clients = &clients;
            async move {
                engine::plan(clients, desired, target)
                    .await
                    .with_context(|| {
                        format!(
                            "pre-flight failed for `{function}`, nothing was written; fix the \
                             cause and re-run"
                        )
                    })
            }
        });
        let in_scope: Vec<String> = functions
            .iter()
            .map(|function| manifest.function_name(function, &args.env))
            .collect();
        let (plans, wiring, other_aliases) = futures_util::future::join3(
            plan_functions,
            plan_triggers(&manifest, &clients, &functions),
            EnvAliases::read(&clients, &manifest, &in_scope),
        )
        .await;
        let plans = fan_out::all_ok(plans)?;
        let step = step_of(&plans, other_aliases?, StepKind::Deploy);
        execute(
            &manifest,
            &clients,
            &plans,
            &wiring?,
            args.dry_run,
            args.yes,
            step,
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

/// The step of a command that plans `plans` (each read its function's alias); `others` are the
/// aliases of the environment's other functions, which the step's number counts too.
fn step_of(plans: &[Plan], mut others: EnvAliases, kind: StepKind) -> history::Step {
    for plan in plans {
        others.insert(&plan.desired.name, plan.alias_before.clone());
    }
    others.next_step(kind)
}

/// Prints the plans, stops for `--dry-run` or a no-op, confirms, applies as `step` of the
/// environment's history.
async fn execute(
    manifest: &Manifest,
    clients: &EnvClients,
    plans: &[Plan],
    wiring: &Wiring,
    dry_run: bool,
    yes: bool,
    step: history::Step,
) -> anyhow::Result<ExitCode> {
    let verb = step.kind.as_str();
    print_header(manifest, clients, &format!("Plan to {verb} to"));
    for plan in plans {
        print!("{}", plan.describe());
    }
    print!("{}", triggers::describe(&wiring.plan));
    if dry_run {
        println!("--dry-run: stopping here, nothing was written.");
        return Ok(ExitCode::SUCCESS);
    }
    let wired = if plans.iter().all(Plan::is_noop) && wiring.plan.changes().is_empty() {
        println!(
            "Nothing to do: `{}` already runs exactly this.",
            clients.env
        );
        None
    } else {
        confirm(manifest, &clients.env, yes, verb)?;
        apply(clients, plans, wiring, step).await?
    };
    // Unless the triggers were just wired (which may have created the API or a URL), the
    // plan's reads already found every address.
    print_reachable(wired.as_deref().unwrap_or(wiring.plan.reachable()));
    Ok(ExitCode::SUCCESS)
}

/// Where clients call the environment now: its HTTP API routes and function URLs.
fn print_reachable(reachable: &[String]) {
    if !reachable.is_empty() {
        println!("  reachable at:");
        for line in reachable {
            println!("    {line}");
        }
    }
}

/// Prepares every function's version (concurrently), wires the triggers, then moves every
/// alias, recording `step` on each alias it changes. No alias moves until every function has
/// its version, so the environment never runs a mix of old and new versions; on any failure
/// the aliases already moved by this command are put back, so every alias ends where it was.
/// Returns where clients reach the environment when it wired the triggers.
async fn apply(
    clients: &EnvClients,
    plans: &[Plan],
    wiring: &Wiring,
    step: history::Step,
) -> anyhow::Result<Option<Vec<String>>> {
    let steps = progress::Steps::new();
    let prepared = fan_out::each(plans, |plan| {
        let steps = &steps;
        async move {
            let actions = plan.actions();
            let _shown = if actions.is_empty() {
                progress::silent()
            } else {
                let subject = format!("{} ({})", plan.desired.function, actions.join(", "));
                steps.step("Deploying", &subject)
            };
            engine::prepare(clients, plan).await
        }
    })
    .await;
    for (plan, version) in plans.iter().zip(&prepared) {
        if let Ok(version) = version {
            println!("  {}: version {version} ready", plan.desired.function);
        }
    }
    let versions = match fan_out::all_ok(prepared) {
        Ok(versions) => versions,
        Err(err) => return Err(failure(clients, &plan_refs(plans), err).await),
    };
    let mut moves = Vec::new();
    for (plan, version) in plans.iter().zip(&versions) {
        let before = plan.alias_before.as_ref();
        let (primary, weights) = match (plan.alias_target, before) {
            (AliasTarget::Canary(weight), Some(before)) => {
                if before.version == *version {
                    continue;
                }
                (
                    before.version.clone(),
                    BTreeMap::from([(version.clone(), weight)]),
                )
            }
            _ => {
                if before.is_some_and(|b| b.version == *version && b.weights.is_empty()) {
                    continue;
                }
                (version.clone(), BTreeMap::new())
            }
        };
        let history = alias::history_after(before, step);
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
/// aliases move: a wiring failure leaves every existing alias where it was. Returns where
/// clients reach the environment when it wired the triggers.
async fn move_and_wire(
    clients: &EnvClients,
    moves: Vec<AliasMove>,
    wiring: &Wiring,
) -> anyhow::Result<Option<Vec<String>>> {
    let (fresh, existing): (Vec<AliasMove>, Vec<AliasMove>) =
        moves.into_iter().partition(|m| m.before.is_none());
    move_aliases(clients, &fresh).await?;
    let mut wired = None;
    if !wiring.plan.changes().is_empty() {
        println!("  wiring triggers:");
        wired = Some(triggers::wire(clients, &wiring.targets, &wiring.plan).await?);
    }
    move_aliases(clients, &existing).await?;
    if fresh.is_empty() && existing.is_empty() {
        println!("  aliases already in place");
    }
    Ok(wired)
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

/// Moves the aliases (concurrently, so the environment switches versions within moments) and
/// prints each in the given order; when any move fails, puts back every one that moved.
async fn move_aliases(clients: &EnvClients, moves: &[AliasMove]) -> anyhow::Result<()> {
    let results = fan_out::each(moves, |m| {
        alias::move_alias(
            clients,
            &m.name,
            &m.alias,
            m.before.as_ref(),
            &m.version,
            m.weights.clone(),
            &m.history,
        )
    })
    .await;
    let mut moved: Vec<(&AliasMove, AliasState)> = Vec::new();
    let mut errors = Vec::new();
    for (m, result) in moves.iter().zip(results) {
        match result {
            Ok(state) => {
                println!("  {}: alias `{}` -> {}", m.label, m.alias, state.summary());
                moved.push((m, state));
            }
            Err(err) => errors.push(err),
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    let err = fan_out::combined(errors);
    let mut restore_errors = Vec::new();
    for (moved, now) in moved.iter().rev() {
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
                "could NOT put alias `{}` of `{}` back to {} ({restore:#}): fix it with `cargo \
                 xtask rollback --env {}`",
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
    Err(failure(clients, &refs, err).await)
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
    let now = fan_out::each(targets, |target| async move {
        engine::get_alias(clients, target.name, target.alias)
            .await
            .ok()
            .flatten()
    })
    .await;
    let mut places = Vec::new();
    for (target, now) in targets.iter().zip(now) {
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
