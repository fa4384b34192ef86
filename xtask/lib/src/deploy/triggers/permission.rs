//! Resource-based permissions on an alias (`lambda:AddPermission` with `Qualifier`): the
//! statement that lets API Gateway, EventBridge or a function URL's callers invoke it.
//!
//! Statement ids start with `lambda-stage-` and carry the environment, so deploy recognises its
//! own statements and leaves everyone else's alone.

use aws_sdk_lambda::types::FunctionUrlAuthType;
use serde_json::Value;

use super::{Converge, Target};
use crate::deploy::aws::{describe, failed, is_not_found, EnvClients};

/// One statement deploy keeps on an alias.
#[derive(Debug, Clone)]
pub struct Permission {
    pub sid: String,
    pub action: &'static str,
    /// A service principal (`apigateway.amazonaws.com`), or `*` for a public function URL.
    pub principal: &'static str,
    /// The one API stage or rule allowed to call.
    pub source_arn: Option<String>,
    /// For a public function URL: `FunctionUrlAuthType = NONE`.
    pub public_url: bool,
    /// `lambda:InvokeFunction` granted only through the function URL, which AWS asks of URLs
    /// besides `lambda:InvokeFunctionUrl`.
    pub via_function_url: bool,
}

/// One alias's statements, read at most once per converge pass of its function: the function's
/// API, URL and schedule each check their own statement on this policy. A write forgets them, so
/// the next check reads what AWS has after it.
#[derive(Debug, Default)]
pub struct AliasPolicy {
    statements: Option<Vec<Value>>,
}

impl AliasPolicy {
    async fn statements(
        &mut self,
        clients: &EnvClients,
        target: &Target,
    ) -> anyhow::Result<&[Value]> {
        if self.statements.is_none() {
            self.statements = Some(statements(clients, target).await?);
        }
        Ok(self.statements.as_deref().unwrap_or_default())
    }

    fn forget(&mut self) {
        self.statements = None;
    }
}

/// The alias's statements (Lambda answers 404 when the alias has no policy yet).
async fn statements(clients: &EnvClients, target: &Target) -> anyhow::Result<Vec<Value>> {
    let policy = match clients
        .lambda
        .get_policy()
        .function_name(&target.name)
        .qualifier(&target.alias)
        .send()
        .await
    {
        Ok(output) => output.policy().unwrap_or("{}").to_owned(),
        Err(err) if is_not_found(&err) => return Ok(Vec::new()),
        Err(err) => {
            return Err(anyhow::anyhow!(
                "could not read the policy of `{}:{}`: {}",
                target.name,
                target.alias,
                describe(&err)
            ))
        }
    };
    let policy: Value = serde_json::from_str(&policy).unwrap_or(Value::Null);
    // Only this alias's statements: some endpoints return the whole function's.
    let suffix = format!(":{}", target.alias);
    Ok(policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["Resource"].as_str().is_none_or(|r| r.ends_with(&suffix)))
        .cloned()
        .collect())
}

fn matches(statement: &Value, wanted: &Permission) -> bool {
    let text = statement.to_string();
    let action_ok = statement["Action"].as_str() == Some(wanted.action);
    let source_ok = wanted
        .source_arn
        .as_ref()
        .is_none_or(|arn| text.contains(arn.as_str()));
    action_ok && source_ok
}

/// Makes the alias carry exactly `wanted` under its statement id; `what` completes "allow ..."
/// in the plan (`API `demo` stage `prod` to invoke alias `prod``).
pub async fn converge(
    clients: &EnvClients,
    policy: &mut AliasPolicy,
    target: &Target,
    wanted: &Permission,
    what: &str,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let current_matches = policy
        .statements(clients, target)
        .await?
        .iter()
        .find(|s| s["Sid"].as_str() == Some(wanted.sid.as_str()))
        .map(|statement| matches(statement, wanted));
    match current_matches {
        Some(true) => return Ok(()),
        Some(false) => {
            if mode.change(format!(
                "{}: update the permission: allow {what}",
                target.function
            )) {
                policy.forget();
                remove(clients, target, &wanted.sid).await?;
                add(clients, target, wanted).await?;
            }
        }
        None => {
            if mode.change(format!("{}: allow {what}", target.function)) {
                policy.forget();
                add(clients, target, wanted).await?;
            }
        }
    }
    Ok(())
}

/// Removes deploy's statement `sid` from the alias, if it is there.
pub async fn revoke(
    clients: &EnvClients,
    policy: &mut AliasPolicy,
    target: &Target,
    sid: &str,
    what: &str,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let present = policy
        .statements(clients, target)
        .await?
        .iter()
        .any(|s| s["Sid"].as_str() == Some(sid));
    if present
        && mode.change(format!(
            "{}: remove the permission for {what} on alias `{}`",
            target.function, target.alias
        ))
    {
        policy.forget();
        remove(clients, target, sid).await?;
    }
    Ok(())
}

async fn add(clients: &EnvClients, target: &Target, wanted: &Permission) -> anyhow::Result<()> {
    let mut request = clients
        .lambda
        .add_permission()
        .function_name(&target.name)
        .qualifier(&target.alias)
        .statement_id(&wanted.sid)
        .action(wanted.action)
        .principal(wanted.principal)
        .set_source_arn(wanted.source_arn.clone());
    if wanted.principal != "*" {
        // Only this account's API or rule, even if another account reuses its name.
        request = request.source_account(&clients.account);
    }
    if wanted.public_url {
        request = request.function_url_auth_type(FunctionUrlAuthType::None);
    }
    if wanted.via_function_url {
        request = request.invoked_via_function_url(true);
    }
    request.send().await.map_err(failed(format!(
        "add permission `{}` to `{}:{}`",
        wanted.sid, target.name, target.alias
    )))?;
    Ok(())
}

async fn remove(clients: &EnvClients, target: &Target, sid: &str) -> anyhow::Result<()> {
    match clients
        .lambda
        .remove_permission()
        .function_name(&target.name)
        .qualifier(&target.alias)
        .statement_id(sid)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(anyhow::anyhow!(
            "could not remove permission `{sid}` from `{}:{}`: {}",
            target.name,
            target.alias,
            describe(&err)
        )),
    }
}
