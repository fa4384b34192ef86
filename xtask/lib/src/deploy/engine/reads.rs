//! Reads of a function, its versions and aliases, with "does not exist" as `None`.

use std::collections::HashMap;

use aws_sdk_lambda::types::FunctionConfiguration;

use super::AliasState;
use crate::deploy::aws::{describe, is_not_found, EnvClients};

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

pub(super) async fn list_versions(
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
