//! `cargo xtask finalize`: a canary's version gets all the traffic, as one step of the
//! environment's history (so `rollback` can bring the canary back).

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args as ClapArgs;

use super::alias::{history_after, EnvAliases};
use super::history::StepKind;
use super::{
    aws, confirm, load, move_aliases, print_header, runtime, select_functions, AliasMove, Loaded,
    ManifestArg,
};

/// `cargo xtask finalize --env prod` / `cargo xtask rollback --env prod`
#[derive(Debug, Clone, ClapArgs)]
pub struct AliasArgs {
    /// The environment whose aliases move (a key of `[environments]` in the manifest).
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
    let Loaded { manifest, .. } = load(&args.manifest)?;
    manifest.require_environment(&args.env)?;
    let functions = select_functions(&manifest, &args.functions)?;
    runtime()?.block_on(async {
        let clients = aws::connect(&manifest, &args.env).await?;
        print_header(&manifest, &clients, "Plan to finalize");
        let aliases = EnvAliases::read(&clients, &manifest, &[]).await?;
        let step = aliases.next_step(StepKind::Finalize);
        let alias = manifest.alias(&args.env);
        let mut moves = Vec::new();
        for function in &functions {
            let name = manifest.function_name(function, &args.env);
            let Some(before) = aliases.before(&name).cloned() else {
                println!("  {function}: `{name}` has no alias `{alias}`: nothing to finalize");
                continue;
            };
            let Some(canary) = before.weights.keys().next().cloned() else {
                println!(
                    "  {function}: no canary running ({}), nothing to finalize",
                    before.summary()
                );
                continue;
            };
            println!(
                "  {function}: alias `{alias}` {} -> version {canary}",
                before.summary()
            );
            moves.push(AliasMove {
                name,
                alias: alias.clone(),
                label: function.clone(),
                history: history_after(Some(&before), step),
                before: Some(before),
                version: canary,
                weights: BTreeMap::new(),
            });
        }
        if args.dry_run {
            println!("--dry-run: stopping here, nothing was written.");
            return Ok(ExitCode::SUCCESS);
        }
        if moves.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        confirm(&manifest, &args.env, args.yes, "finalize")?;
        move_aliases(&clients, &moves).await?;
        Ok(ExitCode::SUCCESS)
    })
}
