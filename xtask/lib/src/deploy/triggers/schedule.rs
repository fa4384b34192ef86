//! `schedule`: an EventBridge rule per environment whose one target is the environment's alias,
//! and the permission that lets that rule (and only it) invoke the alias.

use aws_sdk_eventbridge::types::{RuleState, Target as RuleTarget};
use serde_json::Value;

use super::permission::{self, AliasPolicy, Permission};
use super::{Converge, EnvTargets, Target, TriggerStatus};
use crate::deploy::aws::{describe, failed, is_not_found, EnvClients};

/// The id of deploy's target on its rules.
const TARGET_ID: &str = "lambda-stage";

fn rule_arn(clients: &EnvClients, name: &str) -> String {
    format!(
        "arn:aws:events:{}:{}:rule/{name}",
        clients.region, clients.account
    )
}

fn permission_id(targets: &EnvTargets) -> String {
    format!("lambda-stage-schedule-{}", targets.env)
}

struct Rule {
    expression: Option<String>,
    enabled: bool,
}

async fn read_rule(clients: &EnvClients, name: &str) -> anyhow::Result<Option<Rule>> {
    match clients.events.describe_rule().name(name).send().await {
        Ok(rule) => Ok(Some(Rule {
            expression: rule.schedule_expression().map(str::to_owned),
            enabled: rule.state() == Some(&RuleState::Enabled),
        })),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(anyhow::anyhow!(
            "could not read schedule rule `{name}`: {}",
            describe(&err)
        )),
    }
}

/// True when deploy created the rule for this app (its tags say so).
async fn is_ours(clients: &EnvClients, targets: &EnvTargets, name: &str) -> anyhow::Result<bool> {
    let tags = clients
        .events
        .list_tags_for_resource()
        .resource_arn(rule_arn(clients, name))
        .send()
        .await
        .map_err(failed(format!("read the tags of rule `{name}`")))?;
    Ok(tags
        .tags()
        .iter()
        .any(|t| t.key() == "lambda-stage:app" && t.value() == targets.app))
}

pub async fn converge(
    clients: &EnvClients,
    policy: &mut AliasPolicy,
    targets: &EnvTargets,
    target: &Target,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let name = target.rule_name.clone();
    let existing = read_rule(clients, &name).await?;
    let Some(schedule) = &target.triggers.schedule else {
        if existing.is_some() && is_ours(clients, targets, &name).await? {
            if mode.change(format!(
                "{}: remove schedule rule `{name}`",
                target.function
            )) {
                clients
                    .events
                    .remove_targets()
                    .rule(&name)
                    .ids(TARGET_ID)
                    .send()
                    .await
                    .map_err(failed(format!("remove the target of rule `{name}`")))?;
                clients
                    .events
                    .delete_rule()
                    .name(&name)
                    .send()
                    .await
                    .map_err(failed(format!("delete rule `{name}`")))?;
            }
            permission::revoke(
                clients,
                policy,
                target,
                &permission_id(targets),
                "its schedule",
                mode,
            )
            .await?;
        }
        return Ok(());
    };

    let state = if schedule.enabled {
        RuleState::Enabled
    } else {
        RuleState::Disabled
    };
    let summary = format!(
        "{} ({})",
        schedule.expression,
        if schedule.enabled {
            "enabled"
        } else {
            "disabled"
        }
    );
    let write_rule = match &existing {
        None => mode.change(format!(
            "{}: create schedule rule `{name}`: {summary}",
            target.function
        )),
        Some(rule)
            if rule.expression.as_deref() != Some(schedule.expression.as_str())
                || rule.enabled != schedule.enabled =>
        {
            mode.change(format!(
                "{}: update schedule rule `{name}`: {summary}",
                target.function
            ))
        }
        Some(_) => false,
    };
    if write_rule {
        let mut put = clients
            .events
            .put_rule()
            .name(&name)
            .schedule_expression(&schedule.expression)
            .state(state)
            .description(format!(
                "lambda-stage: invokes {} alias {}",
                target.name, target.alias
            ));
        if existing.is_none() {
            for (key, value) in targets.tags(Some(&target.function)) {
                put = put.tags(
                    aws_sdk_eventbridge::types::Tag::builder()
                        .key(key)
                        .value(value)
                        .build()
                        .map_err(|err| anyhow::anyhow!("tag of rule `{name}`: {err}"))?,
                );
            }
        }
        put.send()
            .await
            .map_err(failed(format!("write schedule rule `{name}`")))?;
    }

    let alias_arn = target.alias_arn(clients);
    let input = schedule.input.as_ref().map(Value::to_string);
    let current = if existing.is_some() {
        clients
            .events
            .list_targets_by_rule()
            .rule(&name)
            .send()
            .await
            .map_err(failed(format!("read the targets of rule `{name}`")))?
            .targets()
            .iter()
            .find(|t| t.id() == TARGET_ID)
            .cloned()
    } else {
        None
    };
    let same_input = |current: &RuleTarget| {
        let parse = |text: Option<&str>| text.and_then(|t| serde_json::from_str::<Value>(t).ok());
        parse(current.input()) == schedule.input
    };
    let target_ok = current
        .as_ref()
        .is_some_and(|c| c.arn() == alias_arn && same_input(c));
    if !target_ok
        && mode.change(format!(
            "{}: rule `{name}` invokes alias `{}`{}",
            target.function,
            target.alias,
            if input.is_some() {
                " with the manifest's input"
            } else {
                ""
            }
        ))
    {
        clients
            .events
            .put_targets()
            .rule(&name)
            .targets(
                RuleTarget::builder()
                    .id(TARGET_ID)
                    .arn(&alias_arn)
                    .set_input(input)
                    .build()
                    .map_err(|err| anyhow::anyhow!("target of rule `{name}`: {err}"))?,
            )
            .send()
            .await
            .map_err(failed(format!("point rule `{name}` at `{alias_arn}`")))?;
    }
    let wanted = Permission {
        sid: permission_id(targets),
        action: "lambda:InvokeFunction",
        principal: "events.amazonaws.com",
        source_arn: Some(rule_arn(clients, &name)),
        public_url: false,
        via_function_url: false,
    };
    let what = format!("rule `{name}` to invoke alias `{}`", target.alias);
    permission::converge(clients, policy, target, &wanted, &what, mode).await
}

pub async fn status(clients: &EnvClients, target: &Target) -> anyhow::Result<Vec<TriggerStatus>> {
    if target.triggers.schedule.is_none() {
        return Ok(Vec::new());
    }
    let name = target.rule_name.clone();
    let state = match read_rule(clients, &name).await? {
        None => "missing".to_owned(),
        Some(rule) => format!(
            "{} ({})",
            rule.expression.unwrap_or_default(),
            if rule.enabled { "enabled" } else { "disabled" }
        ),
    };
    Ok(vec![TriggerStatus {
        kind: "schedule",
        function: Some(target.function.clone()),
        target: name,
        state,
    }])
}
