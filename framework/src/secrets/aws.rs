//! Fetches references through the AWS SDK: SSM `GetParameters` (10 names a call, decrypted)
//! and Secrets Manager `GetSecretValue`, all calls of one environment concurrently.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata};
use futures_util::future::join_all;

use super::{Reference, SecretError, SecretProblem, Values, Wanted};
use crate::Secret;

/// SSM's cap on names per `GetParameters` call.
const SSM_BATCH: usize = 10;

pub(crate) struct Fetcher {
    ssm: aws_sdk_ssm::Client,
    secrets_manager: aws_sdk_secretsmanager::Client,
}

/// What one distinct reference fetched to: the value, or why not.
type Fetched = HashMap<Reference, Result<Secret<String>, String>>;

impl Fetcher {
    /// The standard AWS chain: in Lambda, the region and the execution role's credentials from
    /// the environment; `AWS_ENDPOINT_URL` for tests and local runs. Timeouts keep a stuck
    /// endpoint well inside Lambda's 10 s init.
    pub(crate) async fn connect() -> Fetcher {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(3))
                    .build(),
            )
            .load()
            .await;
        Fetcher {
            ssm: aws_sdk_ssm::Client::new(&config),
            secrets_manager: aws_sdk_secretsmanager::Client::new(&config),
        }
    }

    /// Every value of `wanted`, or every reference that failed.
    pub(crate) async fn fetch(&self, env: &str, wanted: &[Wanted]) -> Result<Values, SecretError> {
        let started = Instant::now();
        let references = distinct(wanted);
        let ssm_names: Vec<String> = references
            .iter()
            .filter_map(|r| match r {
                Reference::Ssm { name } => Some(name.clone()),
                Reference::SecretsManager { .. } => None,
            })
            .collect();
        let mut secret_ids: Vec<&str> = references
            .iter()
            .filter_map(|r| match r {
                Reference::SecretsManager { id, .. } => Some(id.as_str()),
                Reference::Ssm { .. } => None,
            })
            .collect();
        secret_ids.dedup();

        let batches: Vec<&[String]> = ssm_names.chunks(SSM_BATCH).collect();
        let (parameters, secrets) = tokio::join!(
            join_all(batches.iter().map(|names| self.parameters(names))),
            join_all(secret_ids.iter().map(|id| self.secret(id))),
        );
        let mut fetched = Fetched::new();
        for batch in parameters {
            fetched.extend(batch);
        }
        let secrets: HashMap<&str, Result<String, String>> =
            secret_ids.iter().copied().zip(secrets).collect();
        for reference in &references {
            if let Reference::SecretsManager { id, key } = reference {
                let value = match &secrets[id.as_str()] {
                    Ok(text) => pick(text, key.as_deref()),
                    Err(problem) => Err(problem.clone()),
                };
                fetched.insert((*reference).clone(), value);
            }
        }

        let mut values = Values::new();
        let mut problems = Vec::new();
        for w in wanted {
            match fetched.get(&w.reference) {
                Some(Ok(value)) => {
                    values.insert(w.variable.clone(), value.clone());
                }
                Some(Err(problem)) => problems.push(SecretProblem {
                    variable: w.variable.clone(),
                    reference: w.reference.to_string(),
                    problem: problem.clone(),
                }),
                None => problems.push(SecretProblem {
                    variable: w.variable.clone(),
                    reference: w.reference.to_string(),
                    problem: "SSM returned neither the parameter nor an error for it".to_owned(),
                }),
            }
        }
        if !problems.is_empty() {
            return Err(SecretError {
                env: env.to_owned(),
                problems,
            });
        }
        tracing::info!(
            env = %env,
            references = wanted.len(),
            ssm_calls = batches.len(),
            secrets_manager_calls = secret_ids.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "resolved secret references"
        );
        Ok(values)
    }

    /// One `GetParameters` call for up to 10 names.
    async fn parameters(&self, names: &[String]) -> Fetched {
        let answer = self
            .ssm
            .get_parameters()
            .set_names(Some(names.to_vec()))
            .with_decryption(true)
            .send()
            .await;
        let reference = |name: &str| Reference::Ssm {
            name: name.to_owned(),
        };
        let mut fetched = Fetched::new();
        match answer {
            Ok(output) => {
                for parameter in output.parameters() {
                    let name = format!(
                        "{}{}",
                        parameter.name().unwrap_or_default(),
                        parameter.selector().unwrap_or_default()
                    );
                    let value = parameter
                        .value()
                        .map(|v| Secret::new(v.to_owned()))
                        .ok_or_else(|| "SSM returned the parameter without a value".to_owned());
                    fetched.insert(reference(&name), value);
                }
                for name in output.invalid_parameters() {
                    fetched.insert(
                        reference(name),
                        Err(
                            "no such SSM parameter (or version/label) in this account and \
                             region: create it, or fix the reference"
                                .to_owned(),
                        ),
                    );
                }
            }
            Err(err) => {
                let problem = format!(
                    "SSM GetParameters failed: {}{}",
                    describe(&err),
                    permission_hint(&err, "ssm:GetParameters (and kms:Decrypt for its key)")
                );
                for name in names {
                    fetched.insert(reference(name), Err(problem.clone()));
                }
            }
        }
        fetched
    }

    /// One `GetSecretValue` call: the secret's text, or why not.
    async fn secret(&self, id: &str) -> Result<String, String> {
        let output = self
            .secrets_manager
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|err| {
                let code = err.as_service_error().and_then(ProvideErrorMetadata::code);
                if code == Some("ResourceNotFoundException") {
                    "no such secret in this account and region: create it, or fix the reference"
                        .to_owned()
                } else {
                    format!(
                        "Secrets Manager GetSecretValue failed: {}{}",
                        describe(&err),
                        permission_hint(
                            &err,
                            "secretsmanager:GetSecretValue (and kms:Decrypt for its key)"
                        )
                    )
                }
            })?;
        if let Some(text) = output.secret_string() {
            return Ok(text.to_owned());
        }
        let binary = output
            .secret_binary()
            .ok_or("the secret has neither a SecretString nor a SecretBinary")?;
        String::from_utf8(binary.as_ref().to_vec())
            .map_err(|_| "the secret is binary and not UTF-8 text".to_owned())
    }
}

/// The distinct references among `wanted`, in a stable order.
fn distinct(wanted: &[Wanted]) -> BTreeSet<&Reference> {
    wanted.iter().map(|w| &w.reference).collect()
}

/// The whole secret, or one key of a JSON object. The error never quotes the secret.
fn pick(text: &str, key: Option<&str>) -> Result<Secret<String>, String> {
    let Some(key) = key else {
        return Ok(Secret::new(text.to_owned()));
    };
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|_| format!("`#{key}` picks a JSON key, but the secret is not a JSON object"))?;
    match object.get(key) {
        Some(serde_json::Value::String(value)) => Ok(Secret::new(value.clone())),
        Some(serde_json::Value::Null) | None => {
            Err(format!("the secret's JSON object has no key `{key}`"))
        }
        Some(other) => Ok(Secret::new(other.to_string())),
    }
}

/// An SDK error as one line: the service's code and message, or the cause chain's messages
/// (not their debug dumps), with what to do when there are no credentials at all.
fn describe<E, R>(err: &aws_sdk_ssm::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(service) => match (service.code(), service.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => DisplayErrorContext(err).to_string(),
        },
        None => {
            let mut parts = vec![err.to_string()];
            let mut cause = std::error::Error::source(err);
            while let Some(inner) = cause {
                let text = inner.to_string();
                if !parts.iter().any(|part| part.contains(&text)) {
                    parts.push(text);
                }
                cause = inner.source();
            }
            let mut line = parts.join(": ");
            if line.contains("no credentials") {
                line.push_str(
                    " (no AWS credentials here: log in to the account that holds the secret, \
                     or, for a local run, give the variable a plain value in your shell)",
                );
            }
            line
        }
    }
}

/// Says which permission the execution role lacks when AWS refused access.
fn permission_hint<E: ProvideErrorMetadata, R>(
    err: &aws_sdk_ssm::error::SdkError<E, R>,
    permission: &str,
) -> String {
    let code = err.as_service_error().and_then(ProvideErrorMetadata::code);
    if code.is_some_and(|c| c.contains("AccessDenied")) {
        format!(" (the execution role needs {permission} on it)")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_json_keys_without_quoting_the_secret() {
        let text = r#"{"user":"app","password":"canary-pw","port":5432}"#;
        assert_eq!(pick(text, Some("password")).unwrap().expose(), "canary-pw");
        assert_eq!(pick(text, Some("port")).unwrap().expose(), "5432");
        assert_eq!(pick(text, None).unwrap().expose(), text);
        let missing = pick(text, Some("host")).unwrap_err();
        assert!(
            missing.contains("`host`") && !missing.contains("canary"),
            "{missing}"
        );
        let not_json = pick("canary-plain", Some("password")).unwrap_err();
        assert!(!not_json.contains("canary"), "{not_json}");
    }
}
