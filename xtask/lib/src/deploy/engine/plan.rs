//! A function's plan: what AWS has, against what the deploy wants (reads only).

use std::collections::BTreeMap;

use anyhow::{bail, Context as _};
use aws_sdk_lambda::types::{
    Architecture, FunctionConfiguration, LastUpdateStatus, Runtime, State,
};
use futures_util::future::try_join;

use super::reads::{get_alias, get_function, list_versions};
use super::{AliasTarget, Desired, Plan, RoleSpec, Settings, MAX_DIRECT_UPLOAD};
use crate::arch::Arch;
use crate::deploy::aws::EnvClients;
use crate::deploy::role::{check_role_exists, managed_policy, role_arn, role_policy};

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
                    crate::deploy::role_access::warnings(clients, arn, &desired.settings.variables)
                        .await;
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
        latest_busy: latest.as_ref().is_some_and(|(config, _)| is_busy(config)),
    })
}

/// Whether a creation or an update of the function is still in progress.
fn is_busy(config: &FunctionConfiguration) -> bool {
    config.state() == Some(&State::Pending)
        || config.last_update_status() == Some(&LastUpdateStatus::InProgress)
}

fn architecture_of(config: &FunctionConfiguration) -> Option<Arch> {
    match config.architectures().first() {
        Some(Architecture::Arm64) => Some(Arch::Arm64),
        Some(Architecture::X8664) | None => Some(Arch::X86_64),
        Some(_) => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_is_busy_while_created_or_updated() {
        let config = |state: State, update: LastUpdateStatus| {
            FunctionConfiguration::builder()
                .state(state)
                .last_update_status(update)
                .build()
        };
        assert!(is_busy(&config(
            State::Pending,
            LastUpdateStatus::InProgress
        )));
        assert!(is_busy(&config(
            State::Active,
            LastUpdateStatus::InProgress
        )));
        assert!(!is_busy(&config(
            State::Active,
            LastUpdateStatus::Successful
        )));
        assert!(!is_busy(&config(State::Active, LastUpdateStatus::Failed)));
    }
}
