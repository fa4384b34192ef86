//! A role the manifest names is not deploy's to change, so when the function's variables hold
//! secret references, deploy asks IAM's policy simulator (`SimulatePrincipalPolicy`) whether
//! the role may make the very calls the framework makes at cold start: `ssm:GetParameters` on
//! each parameter, `secretsmanager:GetSecretValue` on each secret. When it may not, or the
//! simulation cannot be run (no `iam:SimulatePrincipalPolicy` for the deploy credentials, an
//! emulator without it), the plan says so plainly, naming the role and the references (never a
//! value). It only warns: what the simulation does not see (resource policies, organization
//! rules, KMS key policies) can still decide either way.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::retry::RetryConfig;
use aws_sdk_iam::types::PolicyEvaluationDecisionType;

use super::aws::{describe, EnvClients};
use super::secrets::{parameter_arn, references, Reference, Use};

const SSM_ACTION: &str = "ssm:GetParameters";
const SECRETS_MANAGER_ACTION: &str = "secretsmanager:GetSecretValue";

/// The plan's warnings about `role_arn` reading the references among `variables`; empty when
/// there are none, or the simulation allows every one.
pub async fn warnings(
    clients: &EnvClients,
    role_arn: &str,
    variables: &BTreeMap<String, String>,
) -> Vec<String> {
    let uses = references(variables);
    if uses.is_empty() {
        return Vec::new();
    }
    let mut denied = Vec::new();
    let mut unchecked = Vec::new();
    for (action, targets) in [
        (SSM_ACTION, parameters(clients, &uses)),
        (SECRETS_MANAGER_ACTION, secrets(clients, &uses).await),
    ] {
        let (resolved, unresolved): (Vec<_>, Vec<_>) =
            targets.into_iter().partition(|(_, arn)| arn.is_ok());
        unchecked.extend(
            unresolved
                .into_iter()
                .map(|(u, arn)| (u, arn.err().unwrap_or_default())),
        );
        if resolved.is_empty() {
            continue;
        }
        // Several variables may share one reference (single-stack: one per environment).
        let arns: Vec<String> = resolved
            .iter()
            .filter_map(|(_, arn)| arn.as_ref().ok().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        match simulate(clients, role_arn, action, &arns).await {
            Ok(decisions) => {
                for (u, arn) in resolved {
                    let arn = arn.unwrap_or_default();
                    match decisions.get(&arn) {
                        Some(decision) if *decision == PolicyEvaluationDecisionType::Allowed => {}
                        Some(decision) => {
                            denied.push(format!("{} ({action}: {})", listed(u), decision.as_str()))
                        }
                        None => unchecked.push((u, "the simulation did not answer for it".into())),
                    }
                }
            }
            Err(why) => unchecked.extend(resolved.into_iter().map(|(u, _)| (u, why.clone()))),
        }
    }
    let mut warnings = Vec::new();
    if !denied.is_empty() {
        warnings.push(format!(
            "WARNING: role `{role_arn}` may not read {}: every cold start would fail with \
             AccessDenied. Allow those actions on them in the role's policy (and kms:Decrypt \
             for their keys), or let deploy manage the role (`create-role = true`).",
            denied.join(", ")
        ));
    }
    if !unchecked.is_empty() {
        let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (u, why) in unchecked {
            by_reason.entry(why).or_default().push(listed(u));
        }
        for (why, listed) in by_reason {
            warnings.push(format!(
                "WARNING: could not check that role `{role_arn}` may read {} ({why}). If it may \
                 not, every cold start fails with AccessDenied: make sure its policy allows \
                 {SSM_ACTION} / {SECRETS_MANAGER_ACTION} on them (and kms:Decrypt for their \
                 keys), or let deploy manage the role (`create-role = true`).",
                listed.join(", ")
            ));
        }
    }
    warnings
}

/// `APP_API_KEY -> ssm:/app/prod/key`: the variable and its reference, never a value.
fn listed(u: &Use) -> String {
    format!("{} -> {}", u.variable, u.text)
}

type Target<'a> = (&'a Use, Result<String, String>);

/// The SSM references and their parameters' ARNs.
fn parameters<'a>(clients: &EnvClients, uses: &'a [Use]) -> Vec<Target<'a>> {
    uses.iter()
        .filter_map(|u| match &u.reference {
            Reference::Ssm { name } => Some((
                u,
                Ok(parameter_arn(name, &clients.region, &clients.account)),
            )),
            Reference::SecretsManager { .. } => None,
        })
        .collect()
}

/// The Secrets Manager references and their secrets' ARNs, which end in a suffix AWS chose:
/// looked up (`DescribeSecret`, no value is read) unless the reference is an ARN.
async fn secrets<'a>(clients: &EnvClients, uses: &'a [Use]) -> Vec<Target<'a>> {
    let mut targets = Vec::new();
    for u in uses {
        let Reference::SecretsManager { id, .. } = &u.reference else {
            continue;
        };
        let arn = if id.starts_with("arn:") {
            Ok(id.clone())
        } else {
            clients
                .secrets_manager
                .describe_secret()
                .secret_id(id)
                .send()
                .await
                .map_err(|err| format!("could not look up the secret: {}", describe(&err)))
                .and_then(|found| {
                    found
                        .arn()
                        .map(str::to_owned)
                        .ok_or_else(|| "Secrets Manager gave no ARN for the secret".to_owned())
                })
        };
        targets.push((u, arn));
    }
    targets
}

/// The simulator's decision for `action` on each of `arns`, or why there is none.
async fn simulate(
    clients: &EnvClients,
    role_arn: &str,
    action: &str,
    arns: &[String],
) -> Result<BTreeMap<String, PolicyEvaluationDecisionType>, String> {
    // Advisory: one retry, not the deploy's patient backoff, when the simulator fails.
    let iam = aws_sdk_iam::Client::from_conf(
        clients
            .iam
            .config()
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .build(),
    );
    let mut decisions = BTreeMap::new();
    let mut pages = iam
        .simulate_principal_policy()
        .policy_source_arn(role_arn)
        .action_names(action)
        .set_resource_arns(Some(arns.to_vec()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|err| format!("IAM policy simulation failed: {}", describe(&err)))?;
        for result in page.evaluation_results() {
            if result.resource_specific_results().is_empty() {
                if let Some(resource) = result.eval_resource_name() {
                    decisions.insert(resource.to_owned(), result.eval_decision().clone());
                }
            }
            for specific in result.resource_specific_results() {
                decisions.insert(
                    specific.eval_resource_name().to_owned(),
                    specific.eval_resource_decision().clone(),
                );
            }
        }
    }
    Ok(decisions)
}
