//! Secret references, deploy side: the pre-flight check that every reference of an environment
//! exists (before any alias moves), and the execution-role statements that let the function read
//! exactly its references — and decrypt them — and nothing wider.
//!
//! The syntax is the framework's (`lambda_stage::secrets`): `ssm:<parameter name>[:<version or
//! label>]` and `secretsmanager:<name or ARN>[#<json key>]`, in any `APP_` variable (the
//! manifest's `secrets` table, or `vars`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ssm::error::ProvideErrorMetadata;
use futures_util::future::join_all;
use serde_json::{json, Value};

use super::aws::{describe, EnvClients};
use crate::manifest::{Manifest, APP_PREFIX};

/// SSM's cap on names per `GetParameters` call.
const SSM_BATCH: usize = 10;

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    Ssm { name: String },
    SecretsManager { id: String, key: Option<String> },
}

impl Reference {
    /// `None` when `value` is not a (well-formed) reference.
    pub fn parse(value: &str) -> Option<Reference> {
        if let Some(name) = value.strip_prefix("ssm:") {
            return (!name.trim().is_empty()).then(|| Reference::Ssm {
                name: name.to_owned(),
            });
        }
        let rest = value.strip_prefix("secretsmanager:")?;
        let (id, key) = match rest.rsplit_once('#') {
            Some((id, key)) => (id, Some(key.to_owned())),
            None => (rest, None),
        };
        (!id.trim().is_empty()).then(|| Reference::SecretsManager {
            id: id.to_owned(),
            key,
        })
    }
}

/// One variable whose value is a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub variable: String,
    /// As written, e.g. `ssm:/orders/prod/db-password`.
    pub text: String,
    pub reference: Reference,
}

/// The references among a function's variables (only `APP_` variables are resolved).
pub fn references<'a>(variables: impl IntoIterator<Item = (&'a String, &'a String)>) -> Vec<Use> {
    variables
        .into_iter()
        .filter(|(name, _)| name.starts_with(APP_PREFIX))
        .filter_map(|(name, value)| {
            Some(Use {
                variable: name.clone(),
                text: value.clone(),
                reference: Reference::parse(value)?,
            })
        })
        .collect()
}

/// The references environment `env` uses: its own `vars` and `secrets`, and those of its
/// per-function sections.
pub fn environment_references(manifest: &Manifest, env: &str) -> Vec<Use> {
    let mut uses: Vec<Use> = manifest
        .environment(env)
        .map(|spec| references(spec.all_vars()))
        .unwrap_or_default();
    // Plus the references one function alone uses there.
    for function in manifest.functions.keys() {
        for found in references(&manifest.env_function_vars(function, env)) {
            if !uses.contains(&found) {
                uses.push(found);
            }
        }
    }
    uses
}

/// For `status`: one line per reference of `env`, `APP_API_KEY -> ssm:/app/prod/key`.
pub fn describe_references(manifest: &Manifest, env: &str) -> Vec<String> {
    environment_references(manifest, env)
        .into_iter()
        .map(|u| format!("{} -> {}", u.variable, u.text))
        .collect()
}

/// Deploy pre-flight: fails, before anything is written, when a reference of the target
/// environment does not exist in its account and region.
pub async fn preflight(manifest: &Manifest, clients: &EnvClients) -> anyhow::Result<()> {
    let uses = environment_references(manifest, &clients.env);
    if uses.is_empty() {
        return Ok(());
    }
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(clients.region.clone()));
    if let Some(profile) = manifest.profile(&clients.env) {
        loader = loader.profile_name(profile);
    }
    let config = loader.load().await;
    let problems = missing(
        &aws_sdk_ssm::Client::new(&config),
        &aws_sdk_secretsmanager::Client::new(&config),
        &uses,
    )
    .await;
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "pre-flight failed for `{}`, nothing was written: {} secret reference(s) cannot be \
         read in account {} ({}):\n  {}\nCreate them (`aws ssm put-parameter --type \
         SecureString ...` / `aws secretsmanager create-secret ...`) or fix the references \
         in the manifest.",
        clients.env,
        problems.len(),
        clients.account,
        clients.region,
        problems.join("\n  ")
    )
}

/// One line per reference that does not exist or cannot be checked; no values are read
/// (`GetParameters` without decryption, `DescribeSecret`).
pub async fn missing(
    ssm: &aws_sdk_ssm::Client,
    secrets_manager: &aws_sdk_secretsmanager::Client,
    uses: &[Use],
) -> Vec<String> {
    let names: Vec<String> = uses
        .iter()
        .filter_map(|u| match &u.reference {
            Reference::Ssm { name } => Some(name.clone()),
            Reference::SecretsManager { .. } => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let ids: Vec<&str> = uses
        .iter()
        .filter_map(|u| match &u.reference {
            Reference::SecretsManager { id, .. } => Some(id.as_str()),
            Reference::Ssm { .. } => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let parameter_checks = names.chunks(SSM_BATCH).map(|batch| async move {
        match ssm
            .get_parameters()
            .set_names(Some(batch.to_vec()))
            .with_decryption(false)
            .send()
            .await
        {
            Ok(output) => output
                .invalid_parameters()
                .iter()
                .map(|name| (name.clone(), "no such SSM parameter".to_owned()))
                .collect::<Vec<_>>(),
            Err(err) => batch
                .iter()
                .map(|name| (name.clone(), format!("could not check: {}", describe(&err))))
                .collect(),
        }
    });
    let secret_checks = ids.iter().map(|id| async move {
        match secrets_manager
            .describe_secret()
            .secret_id(*id)
            .send()
            .await
        {
            Ok(_) => None,
            Err(err) => Some((
                (*id).to_owned(),
                if err.as_service_error().and_then(ProvideErrorMetadata::code)
                    == Some("ResourceNotFoundException")
                {
                    "no such secret".to_owned()
                } else {
                    format!("could not check: {}", describe(&err))
                },
            )),
        }
    });
    let (parameters, secrets) = tokio::join!(join_all(parameter_checks), join_all(secret_checks));
    let failed: BTreeMap<String, String> = parameters
        .into_iter()
        .flatten()
        .chain(secrets.into_iter().flatten())
        .collect();
    uses.iter()
        .filter_map(|u| {
            let target = match &u.reference {
                Reference::Ssm { name } => name,
                Reference::SecretsManager { id, .. } => id,
            };
            let problem = failed.get(target)?;
            Some(format!("{} = {}: {problem}", u.variable, u.text))
        })
        .collect()
}

/// The partition of a region's ARNs.
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The ARN of an SSM parameter reference, without its `:version`/`:label` selector.
pub(crate) fn parameter_arn(name: &str, region: &str, account: &str) -> String {
    if name.starts_with("arn:") {
        return match name.split_once(":parameter/") {
            Some((head, tail)) => format!("{head}:parameter/{}", strip_selector(tail)),
            None => name.to_owned(),
        };
    }
    let name = strip_selector(name);
    format!(
        "arn:{}:ssm:{region}:{account}:parameter/{}",
        partition(region),
        name.trim_start_matches('/')
    )
}

fn strip_selector(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

/// The ARN pattern of a Secrets Manager reference: AWS appends `-` and six random characters
/// to a secret's name in its ARN.
fn secret_arn(id: &str, region: &str, account: &str) -> String {
    if id.starts_with("arn:") {
        id.to_owned()
    } else {
        format!(
            "arn:{}:secretsmanager:{region}:{account}:secret:{id}-??????",
            partition(region)
        )
    }
}

/// Policy statements that let a function read exactly the references among `uses`, and decrypt
/// them only through SSM / Secrets Manager for those very parameters and secrets (KMS
/// encryption context). Empty when there are no references.
pub fn role_statements(uses: &[Use], region: &str, account: &str) -> Vec<Value> {
    let parameters: BTreeSet<String> = uses
        .iter()
        .filter_map(|u| match &u.reference {
            Reference::Ssm { name } => Some(parameter_arn(name, region, account)),
            Reference::SecretsManager { .. } => None,
        })
        .collect();
    let secrets: BTreeSet<String> = uses
        .iter()
        .filter_map(|u| match &u.reference {
            Reference::SecretsManager { id, .. } => Some(secret_arn(id, region, account)),
            Reference::Ssm { .. } => None,
        })
        .collect();
    let keys = format!("arn:{}:kms:{region}:{account}:key/*", partition(region));
    let mut statements = Vec::new();
    if !parameters.is_empty() {
        statements.push(json!({
            "Sid": "ReadSsmParameters",
            "Effect": "Allow",
            "Action": "ssm:GetParameters",
            "Resource": parameters,
        }));
        statements.push(json!({
            "Sid": "DecryptSsmParameters",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": keys,
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": format!("ssm.{region}.amazonaws.com"),
                    "kms:EncryptionContext:PARAMETER_ARN": parameters,
                }
            }
        }));
    }
    if !secrets.is_empty() {
        statements.push(json!({
            "Sid": "ReadSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": secrets,
        }));
        statements.push(json!({
            "Sid": "DecryptSecrets",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": keys,
            "Condition": {
                "StringEquals": { "kms:ViaService": format!("secretsmanager.{region}.amazonaws.com") },
                "StringLike": { "kms:EncryptionContext:SecretARN": secrets },
            }
        }));
    }
    statements
}

/// `policy` (an execution-role policy document) plus the statements for the references among
/// the function's deployed `variables` (single-stack: every environment's, since one role
/// serves every alias; multi-stack: the one environment's).
pub fn with_secret_access(
    mut policy: Value,
    variables: &BTreeMap<String, String>,
    clients: &EnvClients,
) -> Value {
    let statements = role_statements(&references(variables), &clients.region, &clients.account);
    if let Some(list) = policy.get_mut("Statement").and_then(Value::as_array_mut) {
        list.extend(statements);
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(pairs: &[(&str, &str)]) -> Vec<Use> {
        let vars: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        references(&vars)
    }

    #[test]
    fn finds_references_in_app_variables_only() {
        let found = uses(&[
            ("APP_API_KEY", "ssm:/app/prod/key"),
            ("APP_DB", "secretsmanager:app/prod/db#password"),
            ("APP_GREETING", "hi"),
            ("OTHER", "ssm:/not/resolved"),
        ]);
        let names: Vec<&str> = found.iter().map(|u| u.variable.as_str()).collect();
        assert_eq!(names, ["APP_API_KEY", "APP_DB"]);
        assert_eq!(
            found[1].reference,
            Reference::SecretsManager {
                id: "app/prod/db".into(),
                key: Some("password".into())
            }
        );
    }

    #[test]
    fn statements_name_exactly_the_references() {
        let statements = role_statements(
            &uses(&[
                ("APP_PROD__KEY", "ssm:/app/prod/key:3"),
                ("APP_STAGING__KEY", "ssm:plain-name"),
                ("APP_DB", "secretsmanager:app/db#password"),
                ("APP_DB_USER", "secretsmanager:app/db#user"),
            ]),
            "eu-west-1",
            "123456789012",
        );
        assert_eq!(statements.len(), 4);
        for statement in &statements {
            assert_ne!(statement["Resource"], "*", "{statement}");
        }
        assert_eq!(
            statements[0]["Resource"],
            json!([
                "arn:aws:ssm:eu-west-1:123456789012:parameter/app/prod/key",
                "arn:aws:ssm:eu-west-1:123456789012:parameter/plain-name"
            ])
        );
        assert_eq!(
            statements[2]["Resource"],
            json!(["arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-??????"])
        );
        assert_eq!(
            statements[3]["Condition"]["StringEquals"]["kms:ViaService"],
            "secretsmanager.eu-west-1.amazonaws.com"
        );
        assert!(role_statements(&uses(&[("APP_X", "plain")]), "eu-west-1", "1").is_empty());
        assert!(parameter_arn("/x", "cn-north-1", "1").starts_with("arn:aws-cn:ssm:"));
    }
}
