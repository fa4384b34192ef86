//! AWS clients for one environment, the pre-flight identity check, and AWS errors turned into
//! messages that say what failed and what to do.

use std::time::Duration;

use anyhow::{bail, Context as _};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};

use crate::manifest::{is_plausible_region, Manifest, FILE_NAME};

/// Attempts per AWS call. This is the one place that decides about retries: every client of
/// [`EnvClients`] uses the SDK's standard retry strategy, which retries throttling (the error
/// codes of `aws_runtime::retries::classifiers::THROTTLING_ERRORS`: Lambda's
/// `TooManyRequestsException`, IAM's and STS's `Throttling`, `ThrottlingException`,
/// `RequestLimitExceeded`, ...) and transient errors (HTTP 500/502/503/504, timeouts, dropped
/// connections) with exponential backoff and full jitter: a random wait of up to 200 ms × 2ⁿ,
/// at most 20 s. Concurrent deploys of many functions lean on it (`fan_out`); nothing else
/// retries throttling. (Waits for IAM propagation are not throttling: `engine` and
/// `triggers::sqs` retry those themselves.) Not the adaptive mode: after one throttled call its
/// client-side rate limiter starts from the rate measured so far, which early in a command is
/// near zero, and a deploy throttled once at its start then crawled at half a call per second
/// (a test's 25 calls took 69 s instead of 18).
const MAX_ATTEMPTS: u32 = 6;
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);

fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
}

/// The clients and identity of one environment, checked before anything is written.
#[derive(Debug, Clone)]
pub struct EnvClients {
    pub env: String,
    pub region: String,
    pub account: String,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    /// Finds secrets' ARNs (never their values) for a named role's access check.
    pub secrets_manager: aws_sdk_secretsmanager::Client,
    /// The triggers: HTTP APIs, queues, schedules.
    pub apigw: aws_sdk_apigatewayv2::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    /// `logs`: the functions' CloudWatch Logs.
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

/// Loads the standard AWS chain (profile, SSO, env credentials, region, `AWS_ENDPOINT_URL`)
/// for `env`, and checks with STS who the credentials belong to before anything else happens.
pub async fn connect(manifest: &Manifest, env: &str) -> anyhow::Result<EnvClients> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(profile) = manifest.profile(env) {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = manifest.region(env) {
        loader = loader.region(Region::new(region.to_owned()));
    }
    let config = loader.load().await;
    let profile_hint = manifest
        .profile(env)
        .map_or_else(String::new, |p| format!(" (profile `{p}`)"));

    let region = match config.region() {
        Some(region) => region.to_string(),
        None => bail!(
            "no AWS region for environment `{env}`{profile_hint}: set `region` in {FILE_NAME} \
             (top level or [environments.{env}]), or AWS_REGION. Nothing was written."
        ),
    };
    if !is_plausible_region(&region) {
        bail!(
            "`{region}` (environment `{env}`) is not an AWS region name like `eu-west-1`: fix \
             `region` in {FILE_NAME}, AWS_REGION or the profile. Nothing was written."
        );
    }

    let sts = aws_sdk_sts::Client::new(&config);
    let identity = sts.get_caller_identity().send().await.map_err(|err| {
        let detail = describe(&err);
        let advice = if detail.to_ascii_lowercase().contains("credentials") {
            format!(
                "no usable AWS credentials for environment `{env}`{profile_hint}: log in \
                 (`aws sso login{}`), or set AWS_PROFILE / AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, then re-run",
                manifest
                    .profile(env)
                    .map_or_else(String::new, |p| format!(" --profile {p}"))
            )
        } else if matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
        ) {
            format!(
                "could not reach AWS STS in region `{region}` for environment `{env}`: check the \
                 region, the network and AWS_ENDPOINT_URL, then re-run"
            )
        } else {
            format!(
                "AWS STS did not confirm the credentials of environment `{env}`{profile_hint}: \
                 check or renew them, then re-run"
            )
        };
        anyhow::anyhow!("{advice}. Nothing was written.\nCause: {detail}")
    })?;
    let account = identity
        .account()
        .context("STS GetCallerIdentity returned no account")?
        .to_owned();
    if let Some(expected) = manifest.account_id(env) {
        if expected != account {
            bail!(
                "environment `{env}` belongs to account {expected} ({FILE_NAME}), but these \
                 credentials{profile_hint} are for account {account} ({}). Refusing to touch \
                 the wrong account: use the environment's own credentials (e.g. set `profile` \
                 in [environments.{env}]). Nothing was written.",
                identity.arn().unwrap_or("unknown principal")
            );
        }
    }
    Ok(EnvClients::new(env, &region, &account, &config))
}

impl EnvClients {
    /// Every client of one environment from one SDK configuration.
    pub fn new(env: &str, region: &str, account: &str, config: &aws_config::SdkConfig) -> Self {
        EnvClients {
            env: env.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            lambda: aws_sdk_lambda::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            secrets_manager: aws_sdk_secretsmanager::Client::new(config),
            apigw: aws_sdk_apigatewayv2::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            events: aws_sdk_eventbridge::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
        }
    }
}

/// An AWS error in words: the service's code and message when it answered, else the cause
/// chain ([`cause_chain`]). The SDK's `Debug` form (request ids, headers, bodies) only follows
/// with `--verbose`.
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let words = match err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => cause_chain(err),
            }
        }
        _ => cause_chain(err),
    };
    if crate::verbose() {
        format!("{words}\nSDK detail (--verbose): {err:?}")
    } else {
        words
    }
}

/// An error and its sources, each one's `Display` once, joined by `: `. A source whose text
/// an outer error already includes adds nothing and is left out.
pub fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut add = |text: String| {
        let text = text.trim();
        if !text.is_empty() && !parts.iter().any(|part| part.contains(text)) {
            parts.push(text.to_owned());
        }
    };
    add(err.to_string());
    let mut next = err.source();
    while let Some(current) = next {
        add(current.to_string());
        next = current.source();
    }
    parts.join(": ")
}

/// The service's error code, when the service answered.
pub fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// Lambda answers "not found" with this code for functions, versions and aliases (API Gateway
/// and EventBridge too, for their resources).
pub fn is_not_found<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(
        error_code(err),
        Some("ResourceNotFoundException" | "NotFoundException")
    )
}

/// An AWS call's error as `could not <action>: <code: message>`.
pub fn failed<E, R>(action: impl std::fmt::Display) -> impl FnOnce(SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    move |err| anyhow::anyhow!("could not {action}: {}", describe(&err))
}

/// A concurrent change: a stale `RevisionId`, or a resource someone else just created.
pub fn is_conflict<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(
        error_code(err),
        Some("PreconditionFailedException" | "ResourceConflictException" | "ConflictException")
    )
}

#[cfg(test)]
mod tests {
    use aws_config::retry::RetryMode;

    use super::*;

    #[test]
    fn throttling_is_retried_without_client_side_pacing() {
        let config = retry_config();
        assert_eq!(config.mode(), RetryMode::Standard);
        assert_eq!(config.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(config.initial_backoff(), INITIAL_BACKOFF);
    }

    /// An error with an optional source, for building chains.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn the_cause_chain_is_each_sources_words_once_and_no_debug_form() {
        let err = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "other",
                Some(Box::new(Layer(
                    "no credentials found in chain: IMDS disabled",
                    Some(Box::new(Layer("IMDS disabled", None))),
                ))),
            ))),
        );
        assert_eq!(
            cause_chain(&err),
            "dispatch failure: other: no credentials found in chain: IMDS disabled"
        );
        assert_eq!(cause_chain(&Layer("", None)), "");
    }
}
