//! `sqs`: the environment's queue (created when `create = true` and missing) and one event
//! source mapping from it to the environment's alias.
//!
//! Mappings are listed by the alias ARN they were created with (AWS and moto both match that
//! exactly), so deploy never creates a second one. Mappings deploy created carry the app's tag;
//! only those are removed when the manifest stops naming their queue.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;

use super::{Converge, EnvTargets, Target, TriggerStatus};
use crate::deploy::aws::{describe, error_code, failed, is_not_found, EnvClients};
use crate::manifest::triggers::{QueueRef, Sqs};

/// SQS requires a queue's visibility timeout to be at least the function's timeout; AWS
/// recommends six times it, so a batch can be retried before the message reappears.
const VISIBILITY_PER_TIMEOUT: u32 = 6;
const MIN_VISIBILITY_SECS: u32 = 30;
/// A role policy that was just changed takes a few seconds before Lambda sees it.
const IAM_PROPAGATION_LIMIT: Duration = Duration::from_secs(60);

struct Queue {
    arn: String,
    visibility_secs: Option<u32>,
}

/// The queue's ARN and visibility timeout, or `None` when it does not exist.
async fn read_queue(clients: &EnvClients, queue: &QueueRef) -> anyhow::Result<Option<Queue>> {
    let mut lookup = clients.sqs.get_queue_url().queue_name(queue.name());
    if let QueueRef::Arn(arn) = queue {
        if let Some(owner) = arn.split(':').nth(4) {
            lookup = lookup.queue_owner_aws_account_id(owner);
        }
    }
    let url = match lookup.send().await {
        Ok(found) => found.queue_url().unwrap_or_default().to_owned(),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) =>
        {
            return Ok(None)
        }
        Err(err) => {
            return Err(anyhow::anyhow!(
                "could not look up queue `{}`: {}",
                queue.name(),
                describe(&err)
            ))
        }
    };
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(failed(format!(
            "read the attributes of queue `{}`",
            queue.name()
        )))?;
    let attributes = attributes.attributes();
    Ok(Some(Queue {
        arn: attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_else(|| queue.arn(&clients.region, &clients.account)),
        visibility_secs: attributes
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse().ok()),
    }))
}

/// One of the alias's event source mappings.
struct Mapping {
    uuid: String,
    arn: Option<String>,
    source: String,
    batch_size: Option<i32>,
    enabled: bool,
}

async fn mappings(clients: &EnvClients, target: &Target) -> anyhow::Result<Vec<Mapping>> {
    let mut found = Vec::new();
    let mut pages = clients
        .lambda
        .list_event_source_mappings()
        .function_name(target.alias_arn(clients))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(err) if is_not_found(&err) => break,
            Err(err) => {
                return Err(anyhow::anyhow!(
                    "could not list the event source mappings of `{}:{}`: {}",
                    target.name,
                    target.alias,
                    describe(&err)
                ))
            }
        };
        for mapping in page.event_source_mappings() {
            found.push(Mapping {
                uuid: mapping.uuid().unwrap_or_default().to_owned(),
                arn: mapping.event_source_mapping_arn().map(str::to_owned),
                source: mapping.event_source_arn().unwrap_or_default().to_owned(),
                batch_size: mapping.batch_size(),
                enabled: !mapping.state().unwrap_or_default().starts_with("Disabl"),
            });
        }
    }
    Ok(found)
}

async fn is_ours(
    clients: &EnvClients,
    targets: &EnvTargets,
    mapping: &Mapping,
) -> anyhow::Result<bool> {
    let arn = mapping.arn.clone().unwrap_or_else(|| {
        format!(
            "arn:aws:lambda:{}:{}:event-source-mapping:{}",
            clients.region, clients.account, mapping.uuid
        )
    });
    let tags = clients
        .lambda
        .list_tags()
        .resource(&arn)
        .send()
        .await
        .map_err(failed(format!("read the tags of mapping {}", mapping.uuid)))?;
    Ok(tags
        .tags()
        .and_then(|t| t.get("lambda-stage:app"))
        .is_some_and(|app| *app == targets.app))
}

pub async fn converge(
    clients: &EnvClients,
    targets: &EnvTargets,
    target: &Target,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let existing = mappings(clients, target).await?;
    let wanted_source = match &target.triggers.sqs {
        Some(sqs) => Some(converge_queue(clients, targets, target, sqs, mode).await?),
        None => None,
    };
    for mapping in &existing {
        if Some(&mapping.source) != wanted_source.as_ref()
            && mapping.source.contains(":sqs:")
            && is_ours(clients, targets, mapping).await?
            && mode.change(format!(
                "{}: remove the mapping from queue `{}` to alias `{}`",
                target.function,
                mapping.source.rsplit(':').next().unwrap_or_default(),
                target.alias
            ))
        {
            clients
                .lambda
                .delete_event_source_mapping()
                .uuid(&mapping.uuid)
                .send()
                .await
                .map_err(failed(format!("delete mapping {}", mapping.uuid)))?;
        }
    }
    let (Some(sqs), Some(source)) = (&target.triggers.sqs, wanted_source) else {
        return Ok(());
    };
    let batch_size = i32::try_from(sqs.batch_size)?;
    let queue = sqs.queue.name();
    match existing.iter().find(|m| m.source == source) {
        None => {
            if mode.change(format!(
                "{}: map queue `{queue}` to alias `{}` (batch {}, {})",
                target.function,
                target.alias,
                sqs.batch_size,
                if sqs.enabled { "enabled" } else { "disabled" }
            )) {
                create_mapping(clients, targets, target, &source, batch_size, sqs.enabled).await?;
            }
        }
        Some(mapping)
            if mapping.batch_size != Some(batch_size) || mapping.enabled != sqs.enabled =>
        {
            if mode.change(format!(
                "{}: mapping from `{queue}`: batch {} -> {}, {}",
                target.function,
                mapping.batch_size.unwrap_or_default(),
                sqs.batch_size,
                if sqs.enabled { "enabled" } else { "disabled" }
            )) {
                clients
                    .lambda
                    .update_event_source_mapping()
                    .uuid(&mapping.uuid)
                    .batch_size(batch_size)
                    .enabled(sqs.enabled)
                    .send()
                    .await
                    .map_err(failed(format!("update mapping {}", mapping.uuid)))?;
            }
        }
        Some(_) => {}
    }
    Ok(())
}

/// Makes sure the queue exists (creating it when the manifest allows) and returns its ARN.
async fn converge_queue(
    clients: &EnvClients,
    targets: &EnvTargets,
    target: &Target,
    sqs: &Sqs,
    mode: &mut Converge,
) -> anyhow::Result<String> {
    let name = sqs.queue.name();
    let needed_visibility = target.timeout_secs;
    match read_queue(clients, &sqs.queue).await? {
        Some(queue) => {
            if let Some(visibility) = queue.visibility_secs.filter(|v| *v < needed_visibility) {
                anyhow::bail!(
                    "queue `{name}` has a visibility timeout of {visibility} s, below `{}`'s \
                     timeout of {needed_visibility} s, so Lambda refuses to map it: raise the \
                     queue's VisibilityTimeout (AWS recommends {} s) or lower the function's \
                     `timeout`. Nothing was written.",
                    target.function,
                    needed_visibility * VISIBILITY_PER_TIMEOUT
                );
            }
            Ok(queue.arn)
        }
        None if !sqs.create => anyhow::bail!(
            "queue `{name}` (function `{}`, environment `{}`) does not exist in account {} ({}): \
             create it, or set `create = true` in its `sqs` table so deploy creates it. Nothing \
             was written.",
            target.function,
            targets.env,
            clients.account,
            clients.region
        ),
        None => {
            let visibility = (needed_visibility * VISIBILITY_PER_TIMEOUT).max(MIN_VISIBILITY_SECS);
            if mode.change(format!(
                "{}: create queue `{name}` (visibility timeout {visibility} s)",
                target.function
            )) {
                let mut create = clients
                    .sqs
                    .create_queue()
                    .queue_name(name)
                    .attributes(
                        QueueAttributeName::VisibilityTimeout,
                        visibility.to_string(),
                    )
                    .set_tags(Some(targets.tags(Some(&target.function))));
                if name.ends_with(".fifo") {
                    create = create.attributes(QueueAttributeName::FifoQueue, "true");
                }
                create
                    .send()
                    .await
                    .map_err(failed(format!("create queue `{name}`")))?;
            }
            Ok(sqs.queue.arn(&clients.region, &clients.account))
        }
    }
}

async fn create_mapping(
    clients: &EnvClients,
    targets: &EnvTargets,
    target: &Target,
    source: &str,
    batch_size: i32,
    enabled: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let attempt = clients
            .lambda
            .create_event_source_mapping()
            .function_name(target.alias_arn(clients))
            .event_source_arn(source)
            .batch_size(batch_size)
            .enabled(enabled)
            .set_tags(Some(targets.tags(Some(&target.function))))
            .send()
            .await;
        match attempt {
            Ok(_) => return Ok(()),
            // The role's new queue permissions take a moment to reach Lambda.
            Err(err)
                if error_code(&err) == Some("InvalidParameterValueException")
                    && started.elapsed() < IAM_PROPAGATION_LIMIT =>
            {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            Err(err) => {
                return Err(anyhow::anyhow!(
                    "could not map `{source}` to `{}:{}`: {}",
                    target.name,
                    target.alias,
                    describe(&err)
                ))
            }
        }
    }
}

/// The queues a managed execution role must be able to read: the function's queue in every
/// environment its role serves.
pub fn queue_arns(clients: &EnvClients, queues: impl IntoIterator<Item = QueueRef>) -> Vec<String> {
    let mut arns: Vec<String> = queues
        .into_iter()
        .map(|q| q.arn(&clients.region, &clients.account))
        .collect();
    arns.sort();
    arns.dedup();
    arns
}

pub async fn status(clients: &EnvClients, target: &Target) -> anyhow::Result<Vec<TriggerStatus>> {
    let Some(sqs) = &target.triggers.sqs else {
        return Ok(Vec::new());
    };
    let queue_arn = sqs.queue.arn(&clients.region, &clients.account);
    let state = match read_queue(clients, &sqs.queue).await? {
        None => "queue missing".to_owned(),
        Some(queue) => match mappings(clients, target)
            .await?
            .into_iter()
            .find(|m| m.source == queue.arn)
        {
            None => "not mapped".to_owned(),
            Some(m) => format!(
                "mapped to alias `{}`, batch {}, {}",
                target.alias,
                m.batch_size.unwrap_or_default(),
                if m.enabled { "enabled" } else { "disabled" }
            ),
        },
    };
    Ok(vec![TriggerStatus {
        kind: "sqs",
        function: Some(target.function.clone()),
        target: queue_arn,
        state,
    }])
}
