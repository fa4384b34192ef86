//! `cargo xtask status [--env <name>] [--json]`: what each environment runs, read from AWS.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args as ClapArgs;
use serde::Serialize;

use super::artifact;
use super::aws;
use super::engine;
use super::fan_out;
use super::history::{AliasHistory, Step, StepRecord, VersionStamp};
use super::previews;
use super::rollback::{step_text, what_rollback_undoes};
use super::triggers;
use super::{load, runtime, settings, ManifestArg};
use crate::manifest::Manifest;

#[derive(Debug, Clone, ClapArgs)]
pub struct StatusArgs {
    /// One environment (default: all).
    #[arg(long)]
    pub env: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub manifest: ManifestArg,
}

#[derive(Debug, Serialize)]
pub struct EnvironmentStatus {
    pub env: String,
    pub strategy: &'static str,
    pub protected: bool,
    pub account: Option<String>,
    pub region: Option<String>,
    /// Set when the environment could not be read (credentials, network...).
    pub error: Option<String>,
    /// Secret references the environment's functions resolve at cold start (names only).
    pub secrets: BTreeMap<String, String>,
    pub functions: Vec<FunctionStatus>,
    /// What calls the environment: HTTP API invoke URL and routes, function URLs, queues,
    /// schedules, each with its state.
    pub triggers: Vec<triggers::TriggerStatus>,
    /// Set for a preview environment: its template and age.
    pub preview: Option<previews::Preview>,
    /// What `rollback --env <env>` would undo now; `None` when nothing is recorded to undo.
    pub next_rollback: Option<NextRollback>,
}

/// The step `rollback` would undo, and the functions it would move back.
#[derive(Debug, Serialize)]
pub struct NextRollback {
    /// `None` for a move recorded before steps were numbered.
    pub step: Option<Step>,
    pub functions: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FunctionStatus {
    pub function: String,
    pub name: String,
    pub alias: String,
    /// False when the function or alias does not exist yet.
    pub deployed: bool,
    pub version: Option<String>,
    /// Canary: version -> share of traffic (0..1) routed away from `version`.
    pub weights: BTreeMap<String, f64>,
    pub code_sha256: Option<String>,
    pub git_commit: Option<String>,
    pub deployed_at: Option<String>,
    /// What each recorded step changed on the alias, most recent first: the step, and the
    /// routing before it (`null` when the step created the alias).
    pub history: Vec<StepRecord>,
    /// Differences between the manifest and the deployed version.
    pub drift: Vec<String>,
}

pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let super::Loaded { root, manifest } = load(&args.manifest)?;
    let envs: Vec<String> = match &args.env {
        Some(env) => {
            manifest.require_environment(env)?;
            vec![env.clone()]
        }
        None => manifest.environments.keys().cloned().collect(),
    };
    let statuses = runtime()?.block_on(async {
        let mut statuses = Vec::new();
        for env in &envs {
            let mut status = environment_status(&root, &manifest, env).await;
            if manifest.is_preview(env) {
                status.preview = find_previews(&manifest, env)
                    .await
                    .into_iter()
                    .find(|p| p.env == *env);
            }
            statuses.push(status);
        }
        if args.env.is_none() {
            // The preview environments that exist, found in the templates' account and region.
            for template in manifest.previews.keys() {
                for preview in find_previews(&manifest, template).await {
                    if preview.template == *template {
                        let mut status = environment_status(&root, &manifest, &preview.env).await;
                        status.preview = Some(preview);
                        statuses.push(status);
                    }
                }
            }
        }
        statuses
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
    } else {
        for status in &statuses {
            print_status(status);
        }
    }
    let failed = statuses.iter().any(|s| s.error.is_some());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The previews deployed where `env` (a template or a preview) deploys; none when that account
/// cannot be read (the environments' own statuses say why).
async fn find_previews(manifest: &Manifest, env: &str) -> Vec<previews::Preview> {
    match aws::connect(manifest, env).await {
        Ok(clients) => previews::existing(manifest, &clients)
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

async fn environment_status(
    root: &std::path::Path,
    manifest: &Manifest,
    env: &str,
) -> EnvironmentStatus {
    let spec = manifest.environment(env).cloned().unwrap_or_default();
    let mut status = EnvironmentStatus {
        env: env.to_owned(),
        strategy: manifest.strategy.as_str(),
        protected: spec.protected,
        account: None,
        region: None,
        error: None,
        secrets: spec.secrets.clone(),
        functions: Vec::new(),
        triggers: Vec::new(),
        preview: None,
        next_rollback: None,
    };
    let clients = match aws::connect(manifest, env).await {
        Ok(clients) => clients,
        Err(err) => {
            status.error = Some(format!("{err:#}"));
            return status;
        }
    };
    status.account = Some(clients.account.clone());
    status.region = Some(clients.region.clone());
    // Every function's at once; listed in the manifest's order, up to the first that fails.
    let read = fan_out::each(manifest.functions.keys(), |function| {
        let clients = &clients;
        async move {
            function_status(root, manifest, env, function, clients)
                .await
                .with_context(|| function.clone())
        }
    })
    .await;
    for function_status in read {
        match function_status {
            Ok(function_status) => status.functions.push(function_status),
            Err(err) => {
                status.error = Some(format!("{err:#}"));
                return status;
            }
        }
    }
    status.next_rollback = next_rollback(&status.functions);
    let functions: Vec<String> = manifest.functions.keys().cloned().collect();
    let wired = match triggers::EnvTargets::new(manifest, env, &functions) {
        Ok(targets) => triggers::status(&clients, &targets).await,
        Err(err) => Err(err),
    };
    match wired {
        Ok(triggers) => status.triggers = triggers,
        Err(err) => status.error = Some(format!("triggers: {err:#}")),
    }
    status
}

async fn function_status(
    root: &std::path::Path,
    manifest: &Manifest,
    env: &str,
    function: &str,
    clients: &aws::EnvClients,
) -> anyhow::Result<FunctionStatus> {
    let name = manifest.function_name(function, env);
    let alias = manifest.alias(env);
    let mut status = FunctionStatus {
        function: function.to_owned(),
        name: name.clone(),
        alias: alias.clone(),
        deployed: false,
        version: None,
        weights: BTreeMap::new(),
        code_sha256: None,
        git_commit: None,
        deployed_at: None,
        history: Vec::new(),
        drift: Vec::new(),
    };
    let Some(state) = engine::get_alias(clients, &name, &alias).await? else {
        return Ok(status);
    };
    let version = engine::get_version(clients, &name, &state.version).await?;
    let history = state.history();
    let stamp = VersionStamp::parse(version.description());
    status.deployed = true;
    status.drift = engine::config_diff(&version, &settings(manifest, env, function)?, clients);
    let arch = manifest.arch(function, env);
    if let Ok(local) = std::fs::read_to_string(artifact::record_path(root, function, arch)) {
        if let Ok(local) = serde_json::from_str::<artifact::Artifact>(&local) {
            if Some(local.code_sha256.as_str()) != version.code_sha256() {
                status
                    .drift
                    .push("code: the local build differs from the deployed zip".to_owned());
            }
        }
    }
    status.version = Some(state.version.clone());
    status.weights = state.weights.clone();
    status.code_sha256 = version.code_sha256().map(str::to_owned);
    status.git_commit = stamp.git_commit;
    status.deployed_at = history.moved_at;
    status.history = history.records;
    Ok(status)
}

fn print_status(status: &EnvironmentStatus) {
    let place = match (&status.account, &status.region) {
        (Some(account), Some(region)) => format!("account {account}, {region}"),
        _ => "not reachable".to_owned(),
    };
    let preview = status.preview.as_ref().map_or_else(String::new, |p| {
        format!(
            ", preview of `{}`, last deployed {}",
            p.template,
            p.age
                .as_deref()
                .map_or("at an unknown time".to_owned(), |age| format!("{age} ago"))
        )
    });
    println!(
        "{} ({}{}{preview}, {place})",
        status.env,
        status.strategy,
        if status.protected { ", protected" } else { "" }
    );
    if let Some(error) = &status.error {
        println!("  error: {error}");
    }
    for (var, reference) in &status.secrets {
        println!("  secret {var} <- {reference}");
    }
    for f in &status.functions {
        if !f.deployed {
            println!(
                "  {}: `{}` alias `{}`: not deployed",
                f.function, f.name, f.alias
            );
            continue;
        }
        let mut routing = format!("version {}", f.version.as_deref().unwrap_or("?"));
        for (version, weight) in &f.weights {
            routing = format!(
                "{routing} ({:.0}%) + version {version} ({:.0}%, canary)",
                (1.0 - weight) * 100.0,
                weight * 100.0
            );
        }
        println!(
            "  {}: `{}` alias `{}` -> {routing}",
            f.function, f.name, f.alias
        );
        println!(
            "    code sha256 {}, git {}, deployed {}",
            f.code_sha256.as_deref().unwrap_or("?"),
            f.git_commit.as_deref().unwrap_or("unknown"),
            f.deployed_at.as_deref().unwrap_or("unknown"),
        );
        let history = AliasHistory {
            moved_at: None,
            records: f.history.clone(),
        };
        println!("    {}", history.summary());
        if f.drift.is_empty() {
            println!("    drift: none");
        } else {
            println!("    drift: {}", f.drift.join("; "));
        }
    }
    if status.error.is_none() && status.functions.iter().any(|f| f.deployed) {
        match &status.next_rollback {
            Some(next) => println!(
                "  rollback would undo {} on {}",
                step_text(next.step),
                next.functions.join(", ")
            ),
            None => println!("  rollback: nothing recorded to undo"),
        }
    }
    for t in &status.triggers {
        let who = t
            .function
            .as_deref()
            .map_or_else(String::new, |f| format!(" {f}"));
        let target = if t.target.is_empty() {
            "-"
        } else {
            t.target.as_str()
        };
        println!("  {}{who}: {target} ({})", t.kind, t.state);
    }
}

/// What `rollback` would undo, from the deployed functions' histories.
fn next_rollback(functions: &[FunctionStatus]) -> Option<NextRollback> {
    let histories: Vec<(String, AliasHistory)> = functions
        .iter()
        .filter(|f| f.deployed)
        .map(|f| {
            let history = AliasHistory {
                moved_at: None,
                records: f.history.clone(),
            };
            (f.function.clone(), history)
        })
        .collect();
    let plan = what_rollback_undoes(&histories)?;
    Some(NextRollback {
        step: plan.step,
        functions: plan.restored(),
    })
}
