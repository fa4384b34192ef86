//! `cargo xtask finalize` and `cargo xtask rollback`: alias moves only, from the history each
//! alias keeps in AWS.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Args as ClapArgs;

use super::{
    aws, confirm, engine, load, move_aliases, print_header, runtime, select_functions, AliasMove,
    Loaded, ManifestArg,
};

/// `cargo xtask finalize --env prod` / `cargo xtask rollback --env prod`
#[derive(Debug, Clone, ClapArgs)]
pub struct AliasArgs {
    /// The environment whose aliases move (a key of [environments] in the manifest).
    #[arg(long)]
    pub env: String,
    /// Functions (default: all).
    pub functions: Vec<String>,
    /// Do not ask for confirmation on a protected environment (for CI).
    #[arg(long)]
    pub yes: bool,
    /// Print the plan and stop: nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub manifest: ManifestArg,
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
