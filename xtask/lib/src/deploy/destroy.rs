//! `cargo xtask destroy --env <env>`: removes exactly what one environment owns, and nothing of
//! any other environment.
//!
//! - Single-stack: the environment's triggers (its stage, permissions, function URL, mappings,
//!   rules) and its alias. The function stays while another environment's alias exists (its
//!   `APP_<ENV>__*` variables leave it on the next deploy); with the last alias gone, the
//!   function and the role deploy made for it go too.
//! - Multi-stack: the environment's triggers and API, its functions and the roles deploy made.
//! - Queues deploy created for the environment only with `--delete-queues`: they may hold
//!   messages.
//!
//! What to remove is found from names and tags in AWS, never from local state, so any machine
//! can destroy; every step checks before it deletes, so a re-run after a failure converges.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args as ClapArgs;

use super::aws::{describe, error_code, failed, is_not_found, EnvClients};
use super::triggers::{self, Converge, EnvTargets, Target};
use super::{confirm, load, managed_role_name, print_header, runtime, ManifestArg};
use crate::manifest::{Manifest, Strategy};

/// `cargo xtask destroy --env <name>`
#[derive(Debug, Clone, ClapArgs)]
pub struct DestroyArgs {
    /// The environment to remove (a key of `[environments]` in the manifest).
    #[arg(long)]
    pub env: String,
    /// Do not ask for confirmation on a protected environment (for CI).
    #[arg(long)]
    pub yes: bool,
    /// Print the plan and stop: nothing is deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete the queues deploy created for the environment (they may hold messages).
    #[arg(long)]
    pub delete_queues: bool,
    #[command(flatten)]
    pub manifest: ManifestArg,
}

pub fn run(args: DestroyArgs) -> anyhow::Result<ExitCode> {
    let super::Loaded { manifest, .. } = load(&args.manifest)?;
    manifest.require_environment(&args.env)?;
    runtime()?.block_on(async {
        let clients = super::aws::connect(&manifest, &args.env).await?;
        let functions: Vec<String> = manifest.functions.keys().cloned().collect();
        let targets = EnvTargets::new(&manifest, &args.env, &functions)?;
        print_header(&manifest, &clients, "Plan to destroy");
        let mut plan = Converge::plan();
        remove_everything(&manifest, &clients, &targets, args.delete_queues, &mut plan)
            .await
            .context("could not read what the environment owns; nothing was deleted")?;
        print!("{}", plan_lines(&plan));
        if plan.changes().is_empty() {
            println!("Nothing to destroy: `{}` owns nothing in AWS.", args.env);
            return Ok(ExitCode::SUCCESS);
        }
        if args.dry_run {
            println!("--dry-run: stopping here, nothing was deleted.");
            return Ok(ExitCode::SUCCESS);
        }
        confirm(&manifest, &args.env, args.yes, "destroy it")?;
        let mut apply = Converge::apply();
        remove_everything(
            &manifest,
            &clients,
            &targets,
            args.delete_queues,
            &mut apply,
        )
        .await
        .with_context(|| {
            format!(
                "destroying `{}` stopped; what is listed above was removed. Fix the cause \
                     and re-run the same command: it removes what is left",
                args.env
            )
        })?;
        println!("`{}` is destroyed.", args.env);
        Ok(ExitCode::SUCCESS)
    })
}

fn plan_lines(plan: &Converge) -> String {
    plan.changes()
        .iter()
        .map(|change| format!("  {change}\n"))
        .collect()
}

/// Reads (and with [`Converge::apply`], deletes) everything the environment owns: its
/// triggers first, so nothing calls what goes next, then aliases, functions, roles, queues.
async fn remove_everything(
    manifest: &Manifest,
    clients: &EnvClients,
    targets: &EnvTargets,
    delete_queues: bool,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    triggers::converge(clients, &targets.clone().without_triggers(), mode).await?;
    for target in &targets.all {
        let remove_function = match manifest.strategy {
            Strategy::MultiStack => true,
            Strategy::SingleStack => {
                remove_alias(clients, target, mode).await?;
                // The function serves other environments while they have aliases.
                other_aliases(clients, target).await?.is_empty()
            }
        };
        if remove_function {
            remove_function_and_role(manifest, clients, targets, target, mode).await?;
        }
        if let Some(sqs) = &target.triggers.sqs {
            remove_queue(
                clients,
                targets,
                target,
                sqs.queue.name(),
                delete_queues,
                mode,
            )
            .await?;
        }
    }
    Ok(())
}

async fn remove_alias(
    clients: &EnvClients,
    target: &Target,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    if super::engine::get_alias(clients, &target.name, &target.alias)
        .await?
        .is_some()
        && mode.change(format!(
            "{}: delete alias `{}` of `{}`",
            target.function, target.alias, target.name
        ))
    {
        match clients
            .lambda
            .delete_alias()
            .function_name(&target.name)
            .name(&target.alias)
            .send()
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => anyhow::bail!(
                "could not delete alias `{}` of `{}`: {}",
                target.alias,
                target.name,
                describe(&err)
            ),
        }
    }
    Ok(())
}

/// The function's aliases other than this environment's (none when the function is gone).
async fn other_aliases(clients: &EnvClients, target: &Target) -> anyhow::Result<Vec<String>> {
    let mut names = super::engine::alias_names(clients, &target.name).await?;
    names.retain(|name| *name != target.alias);
    Ok(names)
}

async fn remove_function_and_role(
    manifest: &Manifest,
    clients: &EnvClients,
    targets: &EnvTargets,
    target: &Target,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let why = match manifest.strategy {
        Strategy::MultiStack => format!("`{}`'s own function", targets.env),
        Strategy::SingleStack => "no other environment's alias is left on it".to_owned(),
    };
    if super::engine::get_function(clients, &target.name)
        .await?
        .is_some()
        && mode.change(format!(
            "{}: delete function `{}` ({why})",
            target.function, target.name
        ))
    {
        match clients
            .lambda
            .delete_function()
            .function_name(&target.name)
            .send()
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => anyhow::bail!(
                "could not delete function `{}`: {}",
                target.name,
                describe(&err)
            ),
        }
    }
    let spec = manifest.require_function(&target.function)?;
    if spec.role.is_some() {
        // A role the manifest names is the user's.
        return Ok(());
    }
    let role = managed_role_name(&target.name);
    let exists = match clients.iam.get_role().role_name(&role).send().await {
        Ok(found) => found
            .role()
            .and_then(|r| r.description())
            .is_some_and(|d| d.contains("lambda-stage")),
        Err(err) if error_code(&err) == Some("NoSuchEntity") => false,
        Err(err) => anyhow::bail!("could not read role `{role}`: {}", describe(&err)),
    };
    if exists
        && mode.change(format!(
            "{}: delete execution role `{role}` (deploy created it)",
            target.function
        ))
    {
        super::role::delete_managed_role(clients, &role).await?;
    }
    Ok(())
}

async fn remove_queue(
    clients: &EnvClients,
    targets: &EnvTargets,
    target: &Target,
    name: &str,
    delete_queues: bool,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let url = match clients.sqs.get_queue_url().queue_name(name).send().await {
        Ok(found) => found.queue_url().unwrap_or_default().to_owned(),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) =>
        {
            return Ok(())
        }
        Err(err) => anyhow::bail!("could not look up queue `{name}`: {}", describe(&err)),
    };
    let tags = clients
        .sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .map_err(failed(format!("read the tags of queue `{name}`")))?;
    let tag = |key: &str| tags.tags().and_then(|t| t.get(key)).map(String::as_str);
    let created_here = tag("lambda-stage:app") == Some(targets.app.as_str())
        && tag("lambda-stage:env") == Some(targets.env.as_str());
    if !created_here {
        return Ok(());
    }
    if !delete_queues {
        if !mode.is_apply() {
            println!(
                "  {}: keeps queue `{name}` (it may hold messages; --delete-queues deletes it)",
                target.function
            );
        }
        return Ok(());
    }
    if mode.change(format!("{}: delete queue `{name}`", target.function)) {
        clients
            .sqs
            .delete_queue()
            .queue_url(&url)
            .send()
            .await
            .map_err(failed(format!("delete queue `{name}`")))?;
    }
    Ok(())
}
