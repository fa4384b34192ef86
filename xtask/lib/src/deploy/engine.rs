//! Plans and applies one environment's deploy: read what AWS has (no writes), print the plan,
//! then create/update the function, publish a version and, last, move the aliases, so a
//! failure at any earlier step leaves every alias where it was.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, FunctionConfiguration, Runtime,
};
use futures_util::future::try_join;

use super::artifact::Artifact;
use super::aws::{describe, error_code, is_conflict, is_not_found, EnvClients};
use super::history::{AliasHistory, Routing, VersionStamp};
use super::role::{
    check_role_exists, create_role, managed_policy, put_role_policy, role_arn, role_policy,
    ROLE_PROPAGATION_LIMIT,
};
use super::wait::{self, Change};
use crate::arch::Arch;
use crate::manifest::triggers::QueueRef;

/// Lambda's cap on a zip uploaded directly (not through S3).
const MAX_DIRECT_UPLOAD: u64 = 50 * 1024 * 1024;

/// What one function should look like in one environment.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The function's key in the manifest.
    pub function: String,
    /// Its Lambda name in this environment.
    pub name: String,
    pub alias: String,
    pub settings: Settings,
    pub tags: BTreeMap<String, String>,
    pub artifact: Artifact,
    pub stamp: VersionStamp,
}

/// The configuration a published version freezes, as the manifest wants it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub arch: Arch,
    pub memory_mb: i32,
    pub timeout_secs: i32,
    pub variables: BTreeMap<String, String>,
    pub role: RoleSpec,
    /// Queues the function consumes, in every environment its role serves: a managed role
    /// may read exactly these.
    pub queues: Vec<QueueRef>,
}

#[derive(Debug, Clone)]
pub enum RoleSpec {
    /// A role the manifest names.
    Existing(String),
    /// A least-privilege role deploy creates when it is missing.
    Managed { name: String },
}

/// Where an alias points: its primary version and any canary weights.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasState {
    pub version: String,
    pub weights: BTreeMap<String, f64>,
    pub revision_id: Option<String>,
    pub description: Option<String>,
}

impl AliasState {
    pub fn history(&self) -> AliasHistory {
        AliasHistory::parse(self.description.as_deref())
    }

    /// Where the alias sends its traffic.
    pub fn routing(&self) -> Routing {
        Routing {
            version: self.version.clone(),
            weights: self.weights.clone(),
        }
    }

    pub fn summary(&self) -> String {
        self.routing().summary()
    }
}

/// How the alias should move once the version exists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AliasTarget {
    /// All traffic to the new version.
    Full,
    /// The alias keeps its version and routes this share (0..1) to the new one.
    Canary(f64),
}

/// The plan for one function, computed from reads only.
#[derive(Debug, Clone)]
pub struct Plan {
    pub desired: Desired,
    pub create_role: bool,
    /// The managed role's policy differs from what the function needs now (new secret
    /// references, new queues).
    pub update_role_policy: bool,
    /// A named role that may not read the function's secret references, or could not be
    /// checked ([`super::role_access`]).
    pub role_warnings: Vec<String>,
    pub create_function: bool,
    pub upload_code: bool,
    pub config_changes: Vec<String>,
    pub update_tags: bool,
    /// A published version that already matches, so nothing is uploaded or published.
    pub reuse_version: Option<String>,
    pub alias_before: Option<AliasState>,
    pub alias_target: AliasTarget,
    latest_revision: Option<String>,
}

impl Plan {
    /// Human-readable lines for the printed plan.
    pub fn describe(&self) -> String {
        let d = &self.desired;
        let mut out = format!(
            "  {} -> function `{}`, alias `{}`\n",
            d.function, d.name, d.alias
        );
        for warning in &self.role_warnings {
            let _ = writeln!(out, "    role:     {warning}");
        }
        if let RoleSpec::Managed { name } = &d.settings.role {
            if self.create_role {
                let _ = writeln!(out, "    role:     create `{name}` ({})", access_summary(d));
            } else if self.update_role_policy {
                let _ = writeln!(
                    out,
                    "    role:     update the policy of `{name}` ({})",
                    access_summary(d)
                );
            }
        }
        let code = if self.create_function {
            "create function".to_owned()
        } else if self.upload_code {
            format!(
                "upload ({} KB, sha256 {})",
                zip_kb(&d.artifact),
                short(&d.artifact.sha256_hex)
            )
        } else {
            "unchanged".to_owned()
        };
        let _ = writeln!(out, "    code:     {code}");
        let config = if self.create_function {
            format!(
                "{} MB, {} s, {}, {} variables",
                d.settings.memory_mb,
                d.settings.timeout_secs,
                d.settings.arch,
                d.settings.variables.len()
            )
        } else if self.config_changes.is_empty() {
            "unchanged".to_owned()
        } else {
            self.config_changes.join("; ")
        };
        let _ = writeln!(out, "    config:   {config}");
        let version = match &self.reuse_version {
            Some(v) => format!("reuse version {v} (same code and configuration)"),
            None => format!("publish new ({})", d.stamp.to_description()),
        };
        let _ = writeln!(out, "    version:  {version}");
        let before = self
            .alias_before
            .as_ref()
            .map_or_else(|| "(none)".to_owned(), AliasState::summary);
        let target = self.reuse_version.as_deref().unwrap_or("<new>");
        let after = match self.alias_target {
            AliasTarget::Full => format!("version {target}"),
            AliasTarget::Canary(weight) => format!(
                "version {} ({:.0}%) + version {target} ({:.0}%)",
                self.alias_before
                    .as_ref()
                    .map_or("?", |a| a.version.as_str()),
                (1.0 - weight) * 100.0,
                weight * 100.0
            ),
        };
        if self.alias_unchanged() {
            let _ = writeln!(out, "    alias:    unchanged ({before})");
        } else {
            let _ = writeln!(out, "    alias:    {before} -> {after}");
        }
        out
    }

    /// What [`prepare`] writes for this plan, in words; empty when an existing version is
    /// deployed as is.
    pub fn actions(&self) -> Vec<&'static str> {
        let mut actions = Vec::new();
        if self.create_role {
            actions.push("create role");
        } else if self.update_role_policy {
            actions.push("update role policy");
        }
        if self.create_function {
            actions.push("create function");
        } else {
            if self.upload_code {
                actions.push("upload code");
            }
            if !self.config_changes.is_empty() {
                actions.push("update configuration");
            }
        }
        if self.update_tags && !self.create_function {
            actions.push("tag");
        }
        if self.reuse_version.is_none() {
            actions.push("publish a version");
        }
        actions
    }

    /// True when applying the plan would write nothing.
    pub fn is_noop(&self) -> bool {
        !self.create_role
            && !self.update_role_policy
            && !self.create_function
            && !self.upload_code
            && self.config_changes.is_empty()
            && !self.update_tags
            && self.reuse_version.is_some()
            && self.alias_unchanged()
    }

    fn alias_unchanged(&self) -> bool {
        match (&self.alias_before, &self.reuse_version, self.alias_target) {
            (Some(alias), Some(version), AliasTarget::Full) => {
                alias.version == *version && alias.weights.is_empty()
            }
            (Some(alias), Some(version), AliasTarget::Canary(_)) => alias.version == *version,
            _ => false,
        }
    }
}

/// What a managed role may do, in a few words.
fn access_summary(d: &Desired) -> String {
    let mut parts = vec!["logs".to_owned()];
    let references = super::secrets::references(&d.settings.variables).len();
    if references > 0 {
        parts.push(format!("{references} secret reference(s)"));
    }
    if !d.settings.queues.is_empty() {
        parts.push(format!("{} queue(s)", d.settings.queues.len()));
    }
    parts.join(", ")
}

fn zip_kb(artifact: &Artifact) -> u64 {
    std::fs::metadata(&artifact.zip_path).map_or(0, |m| m.len()) / 1024
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// Reads what AWS has for `desired` and works out what has to change. No writes.
pub async fn plan(
    clients: &EnvClients,
    desired: Desired,
    alias_target: AliasTarget,
) -> anyhow::Result<Plan> {
    let zip_size = std::fs::metadata(&desired.artifact.zip_path)
        .with_context(|| format!("the zip {} is missing", desired.artifact.zip_path.display()))?
        .len();
    if zip_size > MAX_DIRECT_UPLOAD {
        bail!(
            "{} is {} MB, over Lambda's 50 MB direct-upload limit: make the function smaller",
            desired.artifact.zip_path.display(),
            zip_size / (1024 * 1024)
        );
    }
    // The role, the function and its alias are read at once: on AWS each read is a round trip,
    // and a function's plan would otherwise wait for them one after another.
    let role = async {
        anyhow::Ok(match &desired.settings.role {
            RoleSpec::Existing(arn) => {
                check_role_exists(clients, arn).await?;
                let warnings =
                    super::role_access::warnings(clients, arn, &desired.settings.variables).await;
                (false, false, warnings)
            }
            RoleSpec::Managed { name } => match role_policy(clients, name).await? {
                None => (true, false, Vec::new()),
                Some(current) => (
                    false,
                    current != Some(managed_policy(clients, &desired)),
                    Vec::new(),
                ),
            },
        })
    };
    let (((create_role, update_role_policy, role_warnings), latest), alias_before) = try_join(
        try_join(role, get_function(clients, &desired.name)),
        get_alias(clients, &desired.name, &desired.alias),
    )
    .await?;
    if let AliasTarget::Canary(_) = alias_target {
        if alias_before.is_none() {
            bail!(
                "`{}` has no alias `{}` yet, so there is no version to keep while the canary \
                 runs: deploy once without --canary",
                desired.name,
                desired.alias
            );
        }
    }
    let (create_function, upload_code, config_changes, update_tags, latest_revision) = match &latest
    {
        None => (true, true, Vec::new(), false, None),
        Some((config, tags)) => (
            false,
            config.code_sha256() != Some(desired.artifact.code_sha256.as_str())
                || architecture_of(config) != Some(desired.settings.arch),
            config_diff(config, &desired.settings, clients),
            desired
                .tags
                .iter()
                .any(|(k, v)| tags.get(k).map(String::as_str) != Some(v.as_str())),
            config.revision_id().map(str::to_owned),
        ),
    };
    // A published version that already has this code and configuration is deployed as is:
    // an unchanged redeploy uploads nothing and publishes nothing.
    let reuse_version = if create_function {
        None
    } else {
        let versions = list_versions(clients, &desired.name).await?;
        let preferred = alias_before.as_ref().map(|a| a.version.clone());
        let mut matching: Vec<&FunctionConfiguration> = versions
            .iter()
            .filter(|v| v.version() != Some("$LATEST"))
            .filter(|v| v.code_sha256() == Some(desired.artifact.code_sha256.as_str()))
            .filter(|v| architecture_of(v) == Some(desired.settings.arch))
            .filter(|v| config_diff(v, &desired.settings, clients).is_empty())
            .collect();
        matching.sort_by_key(|v| v.version().and_then(|n| n.parse::<u64>().ok()));
        matching
            .iter()
            .find(|v| v.version().map(str::to_owned) == preferred)
            .or(matching.last())
            .and_then(|v| v.version().map(str::to_owned))
    };
    let (upload_code, config_changes) = if reuse_version.is_some() {
        (false, Vec::new())
    } else {
        (upload_code, config_changes)
    };
    Ok(Plan {
        desired,
        create_role,
        update_role_policy,
        role_warnings,
        create_function,
        upload_code,
        config_changes,
        update_tags,
        reuse_version,
        alias_before,
        alias_target,
        latest_revision,
    })
}

fn architecture_of(config: &FunctionConfiguration) -> Option<Arch> {
    match config.architectures().first() {
        Some(Architecture::Arm64) => Some(Arch::Arm64),
        Some(Architecture::X8664) | None => Some(Arch::X86_64),
        Some(_) => None,
    }
}

fn lambda_arch(arch: Arch) -> Architecture {
    match arch {
        Arch::Arm64 => Architecture::Arm64,
        Arch::X86_64 => Architecture::X8664,
    }
}

/// The configuration differences, as short lines (variable names only: values stay out of
/// logs).
pub fn config_diff(
    config: &FunctionConfiguration,
    desired: &Settings,
    clients: &EnvClients,
) -> Vec<String> {
    let mut changes = Vec::new();
    if config.memory_size() != Some(desired.memory_mb) {
        changes.push(format!(
            "memory {} -> {} MB",
            config.memory_size().unwrap_or_default(),
            desired.memory_mb
        ));
    }
    if config.timeout() != Some(desired.timeout_secs) {
        changes.push(format!(
            "timeout {} -> {} s",
            config.timeout().unwrap_or_default(),
            desired.timeout_secs
        ));
    }
    if let Some(arch) = architecture_of(config).filter(|arch| *arch != desired.arch) {
        changes.push(format!("architecture {arch} -> {}", desired.arch));
    }
    let role = role_arn(&desired.role, clients);
    if config.role() != Some(role.as_str()) {
        changes.push(format!(
            "role {} -> {role}",
            config.role().unwrap_or("(none)")
        ));
    }
    if config.runtime() != Some(&Runtime::Providedal2023) {
        changes.push("runtime -> provided.al2023".to_owned());
    }
    let current = variables_of(config);
    let mut vars = Vec::new();
    for (key, value) in &desired.variables {
        match current.get(key) {
            None => vars.push(format!("+{key}")),
            Some(old) if old != value => vars.push(format!("~{key}")),
            Some(_) => {}
        }
    }
    vars.extend(
        current
            .keys()
            .filter(|key| !desired.variables.contains_key(*key))
            .map(|key| format!("-{key}")),
    );
    if !vars.is_empty() {
        changes.push(format!("variables {}", vars.join(" ")));
    }
    changes
}

pub fn variables_of(config: &FunctionConfiguration) -> BTreeMap<String, String> {
    config
        .environment()
        .and_then(|env| env.variables())
        .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// `$LATEST`'s configuration and the function's tags, or `None` when it does not exist.
pub async fn get_function(
    clients: &EnvClients,
    name: &str,
) -> anyhow::Result<Option<(FunctionConfiguration, HashMap<String, String>)>> {
    match clients
        .lambda
        .get_function()
        .function_name(name)
        .send()
        .await
    {
        Ok(output) => Ok(output
            .configuration()
            .cloned()
            .map(|config| (config, output.tags().cloned().unwrap_or_default()))),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(anyhow::anyhow!(
            "could not read function `{name}`: {}",
            describe(&err)
        )),
    }
}

pub async fn get_version(
    clients: &EnvClients,
    name: &str,
    version: &str,
) -> anyhow::Result<FunctionConfiguration> {
    clients
        .lambda
        .get_function_configuration()
        .function_name(name)
        .qualifier(version)
        .send()
        .await
        .map(|output| {
            FunctionConfiguration::builder()
                .set_code_sha256(output.code_sha256().map(str::to_owned))
                .set_description(output.description().map(str::to_owned))
                .set_memory_size(output.memory_size())
                .set_timeout(output.timeout())
                .set_environment(output.environment().cloned())
                .set_architectures(Some(output.architectures().to_vec()))
                .set_role(output.role().map(str::to_owned))
                .set_runtime(output.runtime().cloned())
                .set_version(output.version().map(str::to_owned))
                .set_last_modified(output.last_modified().map(str::to_owned))
                .build()
        })
        .map_err(|err| {
            anyhow::anyhow!(
                "could not read version {version} of `{name}`: {}",
                describe(&err)
            )
        })
}

pub async fn get_alias(
    clients: &EnvClients,
    name: &str,
    alias: &str,
) -> anyhow::Result<Option<AliasState>> {
    match clients
        .lambda
        .get_alias()
        .function_name(name)
        .name(alias)
        .send()
        .await
    {
        Ok(output) => Ok(Some(AliasState {
            version: output.function_version().unwrap_or_default().to_owned(),
            weights: output
                .routing_config()
                .and_then(|r| r.additional_version_weights())
                .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default(),
            revision_id: output.revision_id().map(str::to_owned),
            description: output.description().map(str::to_owned),
        })),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(anyhow::anyhow!(
            "could not read alias `{alias}` of `{name}`: {}",
            describe(&err)
        )),
    }
}

async fn list_versions(
    clients: &EnvClients,
    name: &str,
) -> anyhow::Result<Vec<FunctionConfiguration>> {
    let mut versions = Vec::new();
    let mut pages = clients
        .lambda
        .list_versions_by_function()
        .function_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            anyhow::anyhow!(
                "could not list the versions of `{name}`: {}",
                describe(&err)
            )
        })?;
        versions.extend(page.versions().iter().cloned());
    }
    Ok(versions)
}

/// Everything up to (not including) the alias move: role, function, code, configuration,
/// tags, version. Returns the version the alias should get.
pub async fn prepare(clients: &EnvClients, plan: &Plan) -> anyhow::Result<String> {
    let d = &plan.desired;
    if let RoleSpec::Managed { name } = &d.settings.role {
        if plan.create_role {
            create_role(clients, name, d).await?;
        } else if plan.update_role_policy {
            put_role_policy(clients, name, d).await?;
        }
    }
    if let Some(version) = &plan.reuse_version {
        if plan.update_tags {
            tag_function(clients, d).await?;
        }
        return Ok(version.clone());
    }
    let role = role_arn(&d.settings.role, clients);
    let mut revision = plan.latest_revision.clone();
    if plan.create_function {
        let zip = d.artifact.read_zip().await?;
        let started = Instant::now();
        let created = loop {
            let attempt = clients
                .lambda
                .create_function()
                .function_name(&d.name)
                .runtime(Runtime::Providedal2023)
                .handler("bootstrap")
                .role(&role)
                .code(
                    FunctionCode::builder()
                        .zip_file(Blob::new(zip.clone()))
                        .build(),
                )
                .architectures(lambda_arch(d.settings.arch))
                .memory_size(d.settings.memory_mb)
                .timeout(d.settings.timeout_secs)
                .environment(environment(d))
                .set_tags(Some(d.tags.clone().into_iter().collect()))
                .publish(false)
                .send()
                .await;
            match attempt {
                // A new role takes a few seconds before Lambda may assume it.
                Err(err)
                    if plan.create_role
                        && error_code(&err) == Some("InvalidParameterValueException")
                        && started.elapsed() < ROLE_PROPAGATION_LIMIT =>
                {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                Err(err) if is_conflict(&err) => bail!(
                    "function `{}` was created by someone else while this deploy ran \
                     (concurrent deploy?): {}",
                    d.name,
                    describe(&err)
                ),
                other => {
                    break other.map_err(|err| {
                        anyhow::anyhow!(
                            "could not create function `{}`: {}",
                            d.name,
                            describe(&err)
                        )
                    })?
                }
            }
        };
        revision = created.revision_id().map(str::to_owned);
        revision = wait::until_done(clients, &d.name, Change::Created)
            .await?
            .or(revision);
    } else {
        // An update still in progress (another deploy's, or the console's) refuses ours.
        wait::until_done(clients, &d.name, Change::Updated).await?;
        if plan.upload_code {
            let zip = d.artifact.read_zip().await?;
            let updated = clients
                .lambda
                .update_function_code()
                .function_name(&d.name)
                .zip_file(Blob::new(zip))
                .architectures(lambda_arch(d.settings.arch))
                .set_revision_id(revision.clone())
                .publish(false)
                .send()
                .await
                .map_err(|err| conflict_or(err, &d.name, "upload the code of"))?;
            revision = updated.revision_id().map(str::to_owned);
            revision = wait::until_done(clients, &d.name, Change::Updated)
                .await?
                .or(revision);
        }
        if !plan.config_changes.is_empty() {
            let updated = clients
                .lambda
                .update_function_configuration()
                .function_name(&d.name)
                .runtime(Runtime::Providedal2023)
                .handler("bootstrap")
                .role(&role)
                .memory_size(d.settings.memory_mb)
                .timeout(d.settings.timeout_secs)
                .environment(environment(d))
                .set_revision_id(revision.clone())
                .send()
                .await
                .map_err(|err| conflict_or(err, &d.name, "update the configuration of"))?;
            revision = updated.revision_id().map(str::to_owned);
            revision = wait::until_done(clients, &d.name, Change::Updated)
                .await?
                .or(revision);
        }
        if plan.update_tags {
            tag_function(clients, d).await?;
        }
    }
    // The CodeSha256 and RevisionId preconditions make AWS refuse to publish anything but
    // what this deploy uploaded and configured.
    let published = clients
        .lambda
        .publish_version()
        .function_name(&d.name)
        .code_sha256(&d.artifact.code_sha256)
        .description(d.stamp.to_description())
        .set_revision_id(revision)
        .send()
        .await
        .map_err(|err| conflict_or(err, &d.name, "publish a version of"))?;
    let version = published
        .version()
        .context("PublishVersion returned no version number")?
        .to_owned();
    if published.code_sha256() != Some(d.artifact.code_sha256.as_str()) {
        bail!(
            "version {version} of `{}` has CodeSha256 {:?}, not the uploaded {}: someone \
             changed the function concurrently",
            d.name,
            published.code_sha256(),
            d.artifact.code_sha256
        );
    }
    Ok(version)
}

fn conflict_or(
    err: aws_sdk_lambda::error::SdkError<
        impl aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + 'static,
        impl std::fmt::Debug,
    >,
    name: &str,
    action: &str,
) -> anyhow::Error {
    if is_conflict(&err) {
        anyhow::anyhow!(
            "conflict: `{name}` changed while this deploy ran (another deploy?), so it did not \
             {action} it: {}",
            describe(&err)
        )
    } else {
        anyhow::anyhow!("could not {action} `{name}`: {}", describe(&err))
    }
}

fn environment(d: &Desired) -> Environment {
    Environment::builder()
        .set_variables(Some(d.settings.variables.clone().into_iter().collect()))
        .build()
}

async fn tag_function(clients: &EnvClients, d: &Desired) -> anyhow::Result<()> {
    let arn = format!(
        "arn:aws:lambda:{}:{}:function:{}",
        clients.region, clients.account, d.name
    );
    clients
        .lambda
        .tag_resource()
        .resource(arn)
        .set_tags(Some(d.tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("could not tag `{}`: {}", d.name, describe(&err)))?;
    Ok(())
}

/// The names of the function's aliases (none when the function does not exist).
pub async fn alias_names(clients: &EnvClients, function: &str) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut pages = clients
        .lambda
        .list_aliases()
        .function_name(function)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => names.extend(
                page.aliases()
                    .iter()
                    .filter_map(|a| a.name().map(str::to_owned)),
            ),
            Err(err) if is_not_found(&err) => break,
            Err(err) => anyhow::bail!(
                "could not list the aliases of `{function}`: {}",
                describe(&err)
            ),
        }
    }
    Ok(names)
}
