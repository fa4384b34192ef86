//! Execution roles: a role the manifest names must exist; a role deploy manages gets exactly
//! what its function needs (its logs, its secret references, its queues), converged on every
//! deploy.

use std::time::Duration;

use anyhow::bail;

use super::aws::{describe, error_code, EnvClients};
use super::engine::{Desired, RoleSpec};

/// How long a freshly created role may take before Lambda can assume it.
pub const ROLE_PROPAGATION_LIMIT: Duration = Duration::from_secs(60);
/// The inline policy deploy keeps on the roles it manages.
const ROLE_POLICY_NAME: &str = "lambda-stage-execution";

pub fn role_arn(role: &RoleSpec, clients: &EnvClients) -> String {
    match role {
        RoleSpec::Existing(arn) => arn.clone(),
        RoleSpec::Managed { name } => format!("arn:aws:iam::{}:role/{name}", clients.account),
    }
}

pub async fn check_role_exists(clients: &EnvClients, arn: &str) -> anyhow::Result<()> {
    let name = arn.rsplit('/').next().unwrap_or(arn);
    match clients.iam.get_role().role_name(name).send().await {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("NoSuchEntity") => bail!(
            "the execution role {arn} does not exist in account {}: create it, fix `role` in \
             lambda-stage.toml, or set `create-role = true`. Nothing was written.",
            clients.account
        ),
        // Deploy credentials that may not read IAM still may deploy; Lambda checks the role.
        Err(err) if error_code(&err) == Some("AccessDenied") => Ok(()),
        Err(err) => Err(anyhow::anyhow!(
            "could not check the execution role {arn}: {}",
            describe(&err)
        )),
    }
}

/// A managed role's policy: `None` when the role does not exist, `Some(None)` when it has no
/// lambda-stage policy (or one that is not JSON).
pub async fn role_policy(
    clients: &EnvClients,
    name: &str,
) -> anyhow::Result<Option<Option<serde_json::Value>>> {
    match clients.iam.get_role().role_name(name).send().await {
        Ok(_) => {}
        Err(err) if error_code(&err) == Some("NoSuchEntity") => return Ok(None),
        Err(err) => {
            return Err(anyhow::anyhow!(
                "could not look up the execution role `{name}`: {}",
                describe(&err)
            ))
        }
    }
    match clients
        .iam
        .get_role_policy()
        .role_name(name)
        .policy_name(ROLE_POLICY_NAME)
        .send()
        .await
    {
        // IAM returns the document URL-encoded.
        Ok(policy) => Ok(Some(
            percent_encoding::percent_decode_str(policy.policy_document())
                .decode_utf8()
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok()),
        )),
        Err(err) if error_code(&err) == Some("NoSuchEntity") => Ok(Some(None)),
        Err(err) => Err(anyhow::anyhow!(
            "could not read the policy of execution role `{name}`: {}",
            describe(&err)
        )),
    }
}

pub async fn create_role(clients: &EnvClients, name: &str, d: &Desired) -> anyhow::Result<()> {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "lambda.amazonaws.com" },
            "Action": "sts:AssumeRole"
        }]
    });
    let created = clients
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .description(format!(
            "Execution role of Lambda function {} (lambda-stage)",
            d.name
        ))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(err) if error_code(&err) == Some("EntityAlreadyExists") => {}
        Err(err) => bail!(
            "could not create the execution role `{name}`: {} (the deploy credentials need \
             iam:CreateRole and iam:PutRolePolicy, or name an existing `role`)",
            describe(&err)
        ),
    }
    put_role_policy(clients, name, d).await
}

/// The managed role's one policy: write its logs, read (and decrypt) exactly the version's
/// secret references, and consume exactly the function's queues.
pub fn managed_policy(clients: &EnvClients, d: &Desired) -> serde_json::Value {
    let mut policy = super::secrets::with_secret_access(
        execution_role_policy(clients, &d.name),
        &d.settings.variables,
        clients,
    );
    let queues = super::triggers::sqs::queue_arns(clients, d.settings.queues.iter().cloned());
    if !queues.is_empty() {
        if let Some(list) = policy
            .get_mut("Statement")
            .and_then(serde_json::Value::as_array_mut)
        {
            list.push(serde_json::json!({
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes"
                ],
                "Resource": queues
            }));
        }
    }
    policy
}

pub async fn put_role_policy(clients: &EnvClients, name: &str, d: &Desired) -> anyhow::Result<()> {
    clients
        .iam
        .put_role_policy()
        .role_name(name)
        .policy_name(ROLE_POLICY_NAME)
        .policy_document(managed_policy(clients, d).to_string())
        .send()
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "could not set the policy of role `{name}`: {}",
                describe(&err)
            )
        })?;
    Ok(())
}

/// Least privilege: the function may write its own log group, nothing else.
pub fn execution_role_policy(clients: &EnvClients, function_name: &str) -> serde_json::Value {
    let log_group = format!(
        "arn:aws:logs:{}:{}:log-group:/aws/lambda/{function_name}",
        clients.region, clients.account
    );
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "logs:CreateLogGroup",
                "Resource": log_group
            },
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": format!("{log_group}:*")
            }
        ]
    })
}

/// Deletes a role deploy created: its inline policy first, as IAM requires.
pub async fn delete_managed_role(clients: &EnvClients, name: &str) -> anyhow::Result<()> {
    match clients
        .iam
        .delete_role_policy()
        .role_name(name)
        .policy_name(ROLE_POLICY_NAME)
        .send()
        .await
    {
        Ok(_) => {}
        Err(err) if error_code(&err) == Some("NoSuchEntity") => {}
        Err(err) => bail!(
            "could not delete the policy of role `{name}`: {}",
            describe(&err)
        ),
    }
    match clients.iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("NoSuchEntity") => Ok(()),
        Err(err) => bail!("could not delete role `{name}`: {}", describe(&err)),
    }
}
