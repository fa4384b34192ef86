//! `cargo xtask promote --from staging --to prod`: the target gets exactly what the source runs,
//! without a rebuild, and its triggers when it has none yet.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use aws_sdk_lambda::types::FunctionConfiguration;
use clap::Args as ClapArgs;

use super::alias::{history_after, EnvAliases};
use super::aws::{self, EnvClients};
use super::engine::{self, AliasState, AliasTarget, Desired};
use super::fan_out;
use super::history::{StepKind, VersionStamp};
use super::preflight::{check_config, settings, tags};
use super::{
    artifact, config_check, confirm, execute, load, move_and_wire, plan_triggers, print_header,
    runtime, secrets, select_functions, step_of, triggers, AliasMove, Loaded, ManifestArg,
};
use crate::build::BuildMemo;
use crate::manifest::{self, Manifest, Strategy};

/// `cargo xtask promote --from staging --to prod`
#[derive(Debug, Clone, ClapArgs)]
pub struct PromoteArgs {
    /// The environment whose deployed versions are copied (a key of `[environments]`).
    #[arg(long)]
    pub from: String,
    /// The environment that gets them (a key of `[environments]`).
    #[arg(long)]
    pub to: String,
    /// Functions to promote (default: all).
    pub functions: Vec<String>,
    /// Do not ask for confirmation when --to is a protected environment (for CI).
    #[arg(long)]
    pub yes: bool,
    /// Print the plan and stop: nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub manifest: ManifestArg,
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
        let sources = fan_out::each(&functions, |function| {
            let (from, args, manifest) = (&from, &args, &manifest);
            async move {
                let name = manifest.function_name(function, &args.from);
                let alias = manifest.alias(&args.from);
                let state = engine::get_alias(from, &name, &alias)
                    .await?
                    .with_context(|| {
                        format!(
                            "`{}` has no alias `{alias}`: nothing to promote from `{}`",
                            name, args.from
                        )
                    })?;
                if !state.weights.is_empty() {
                    bail!(
                        "`{}` is mid-canary in `{}` ({}): finalize or roll it back first, so \
                         there is one version to promote",
                        name,
                        args.from,
                        state.summary()
                    );
                }
                let version = engine::get_version(from, &name, &state.version).await?;
                Ok(Source {
                    function: function.clone(),
                    name,
                    version: state.version.clone(),
                    config: version,
                })
            }
        })
        .await;
        let sources = fan_out::all_ok(sources)?;
        match manifest.strategy {
            Strategy::SingleStack => promote_single(&root, &manifest, &to, &args, sources).await,
            Strategy::MultiStack => promote_multi(&root, &manifest, &to, &args, sources).await,
        }
    })
}

/// What the source environment runs of one function.
struct Source {
    /// The function's key in the manifest.
    function: String,
    /// Its Lambda name in the source environment.
    name: String,
    /// The version the source alias runs.
    version: String,
    /// That version's configuration.
    config: FunctionConfiguration,
}

impl Source {
    /// The config check of the version with the variables and memory it was published with,
    /// run with its own zip when this machine has it, else with the working tree's code.
    fn as_published(&self, root: &Path) -> config_check::Subject {
        let config = &self.config;
        let code = match artifact::find_by_code_sha(
            root,
            &self.function,
            config.code_sha256().unwrap_or_default(),
        ) {
            Some(artifact) => config_check::Code::Artifact(artifact),
            None => config_check::Code::WorkingTree {
                version: self.version.clone(),
                built_from: VersionStamp::parse(config.description()).git_commit,
            },
        };
        config_check::Subject {
            function: self.function.clone(),
            name: self.name.clone(),
            variables: engine::variables_of(config),
            memory_mb: config
                .memory_size()
                .and_then(|mb| u32::try_from(mb).ok())
                .unwrap_or(manifest::DEFAULT_MEMORY_MB),
            code,
        }
    }
}

/// Runs each function's code in check mode with the variables it gets in the target
/// environment (`config_check`), before anything is written.
fn check_code_in_target(
    root: &Path,
    manifest: &Manifest,
    clients: &EnvClients,
    args: &PromoteArgs,
    subjects: &[config_check::Subject],
) -> anyhow::Result<()> {
    // Promote builds nothing else, so the check's host builds are the only ones to share.
    let mut memo = BuildMemo::default();
    config_check::check(
        root,
        manifest,
        &args.to,
        &clients.region,
        subjects,
        &mut memo,
    )
}

/// Single-stack: the target alias moves to the very version the source alias runs.
async fn promote_single(
    root: &Path,
    manifest: &Manifest,
    clients: &EnvClients,
    args: &PromoteArgs,
    sources: Vec<Source>,
) -> anyhow::Result<ExitCode> {
    let alias = manifest.alias(&args.to);
    let functions: Vec<String> = sources.iter().map(|s| s.function.clone()).collect();
    // The version froze its variables: its cold start checks them all, and so does this.
    let subjects: Vec<_> = sources
        .iter()
        .map(|source| source.as_published(root))
        .collect();
    check_code_in_target(root, manifest, clients, args, &subjects)?;
    let wiring = plan_triggers(manifest, clients, &functions).await?;
    let aliases = EnvAliases::read(clients, manifest, &[]).await?;
    let step = aliases.next_step(StepKind::Promote);
    let mut moves = Vec::new();
    let mut problems = Vec::new();
    print_header(
        manifest,
        clients,
        &format!("Plan to promote `{}` to", args.from),
    );
    for Source {
        function,
        name,
        version,
        config,
    } in sources
    {
        // The version froze every environment's variables when it was published: it must
        // carry the target's configuration.
        let vars = engine::variables_of(&config);
        let served = vars
            .get(lambda_stage_names::variables::ENVS)
            .cloned()
            .unwrap_or_default();
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
        let before = aliases.before(&name).cloned();
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
        moves.push(AliasMove {
            history: history_after(before.as_ref(), step),
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
    sources: Vec<Source>,
) -> anyhow::Result<ExitCode> {
    let functions: Vec<String> = sources.iter().map(|s| s.function.clone()).collect();
    check_config(manifest, &args.to, &functions)?;
    let mut wanted = Vec::new();
    let mut subjects = Vec::new();
    for Source {
        function,
        name,
        version,
        config,
    } in sources
    {
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
        subjects.push(config_check::Subject {
            function,
            name: desired.name.clone(),
            variables: desired.settings.variables.clone(),
            memory_mb: manifest.memory_mb(&desired.function, &args.to),
            code: config_check::Code::Artifact(desired.artifact.clone()),
        });
        wanted.push(desired);
    }
    check_code_in_target(root, manifest, clients, args, &subjects)?;
    let plans = fan_out::each(wanted, |desired| {
        engine::plan(clients, desired, AliasTarget::Full)
    })
    .await;
    let plans = fan_out::all_ok(plans)?;
    let wiring = plan_triggers(manifest, clients, &functions).await?;
    let names: Vec<String> = plans.iter().map(|p| p.desired.name.clone()).collect();
    let step = step_of(
        &plans,
        EnvAliases::read(clients, manifest, &names).await?,
        StepKind::Promote,
    );
    execute(
        manifest,
        clients,
        &plans,
        &wiring,
        args.dry_run,
        args.yes,
        step,
    )
    .await
}
