//! `cargo xtask invoke <FUNCTION> --env <env> --remote`: the event a local invoke would deliver,
//! built by the same code, sent through Lambda's Invoke API to the function the environment
//! runs, on its alias (single-stack `<app>-<function>:<env>`, multi-stack
//! `<app>-<function>-<env>:live`, or the names the manifest sets). Nothing is built.
//!
//! - Output: the response on stdout, exit 0; a function error's JSON on stdout, exit 1, as a
//!   local invoke. Exit 2 with one line on stderr when the function was not invoked or AWS failed
//!   the call: the event could not be built, a protected environment was not confirmed, no
//!   alias, no permission...
//! - `--log` asks for `LogType=Tail` and prints the invocation's last 4 KB of log on stderr.
//! - The call is sent once: a retried invocation could run the function twice.

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use base64::Engine as _;
use bytes::Bytes;
use lambda_stage_emulator::Outcome;

use super::Args;
use crate::deploy::aws::{self, EnvClients};
use crate::deploy::{self, Loaded};

/// Exit code when the deployed function was not invoked, or AWS failed the call.
pub const NOT_INVOKED_EXIT: u8 = 2;

/// How long to wait for an answer beyond the function's own timeout: its init and the network.
const ANSWER_MARGIN: Duration = Duration::from_secs(60);

/// Invokes the deployed alias once and turns what happened into the exit code.
pub fn run(args: &Args) -> ExitCode {
    match invoke(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(NOT_INVOKED_EXIT)
        }
    }
}

/// The deployed function an environment runs, and the alias it runs it on.
struct Target {
    name: String,
    alias: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.alias)
    }
}

fn invoke(args: &Args) -> anyhow::Result<ExitCode> {
    let Loaded { manifest, .. } = deploy::load(&args.manifest)?;
    manifest.require_environment(&args.env)?;
    manifest.require_function(&args.function)?;
    let target = Target {
        name: manifest.function_name(&args.function, &args.env),
        alias: manifest.alias(&args.env),
    };
    let timeout = Duration::from_secs(manifest.timeout_secs(&args.function, &args.env).into())
        + ANSWER_MARGIN;
    deploy::runtime()?.block_on(async {
        let clients = aws::connect(&manifest, &args.env).await?;
        // Built where the function runs, so a trigger's event names the real region and account.
        let payload =
            super::payload::payload(args, Some(&manifest), &clients.region, &clients.account)?;
        deploy::confirm(
            &manifest,
            &args.env,
            args.yes,
            &format!("invoke `{target}`"),
        )?;
        let outcome = call(&clients, &target, payload, args.log, timeout).await?;
        super::report(&args.function, &args.env, &outcome)
    })
}

/// One synchronous invocation of `target`, the log tail (when asked for) on stderr.
async fn call(
    clients: &EnvClients,
    target: &Target,
    payload: Vec<u8>,
    log: bool,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let response = clients
        .lambda
        .invoke()
        .function_name(&target.name)
        .qualifier(&target.alias)
        .payload(Blob::new(payload))
        .set_log_type(log.then_some(LogType::Tail))
        .customize()
        .config_override(
            aws_sdk_lambda::Config::builder()
                .retry_config(RetryConfig::disabled())
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(5))
                        .operation_attempt_timeout(timeout)
                        .build(),
                ),
        )
        .send()
        .await
        .map_err(|err| failure(clients, target, timeout, &err))?;
    let version = response
        .executed_version()
        .map_or_else(String::new, |version| format!(" (version {version})"));
    eprintln!(
        "note: invoked `{target}`{version} in {}, account {}",
        clients.region, clients.account
    );
    if let Some(tail) = response.log_result() {
        print_log_tail(tail);
    }
    let function_error = response.function_error().map(str::to_owned);
    let payload = Bytes::from(response.payload.map(Blob::into_inner).unwrap_or_default());
    Ok(match function_error {
        None => Outcome::Response(payload),
        Some(kind) => Outcome::FunctionError {
            // Lambda's header only says `Unhandled`; the payload names the error.
            error_type: error_type(&payload).unwrap_or(kind),
            payload,
        },
    })
}

/// The `errorType` of a function error's JSON.
fn error_type(payload: &[u8]) -> Option<String> {
    let error = serde_json::from_slice::<serde_json::Value>(payload).ok()?;
    Some(error.get("errorType")?.as_str()?.to_owned())
}

/// Lambda returns the tail base64-encoded (`LogResult`).
fn print_log_tail(encoded: &str) {
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(tail) => {
            let tail = String::from_utf8_lossy(&tail);
            eprint!("{tail}");
            if !tail.ends_with('\n') {
                eprintln!();
            }
        }
        Err(err) => eprintln!("warning: the log tail Lambda returned is not base64 ({err})"),
    }
}

/// An Invoke that AWS refused or that got no answer, with what to do about it.
fn failure(
    clients: &EnvClients,
    target: &Target,
    timeout: Duration,
    err: &SdkError<InvokeError, aws_sdk_lambda::config::http::HttpResponse>,
) -> anyhow::Error {
    let env = &clients.env;
    let detail = aws::describe(err);
    if aws::is_not_found(err) {
        return anyhow!(
            "`{}` has no alias `{}`: deploy `{env}` first (`cargo xtask deploy --env {env}`). \
             Looked in {}, account {} ({detail})",
            target.name,
            target.alias,
            clients.region,
            clients.account
        );
    }
    if aws::error_code(err) == Some("AccessDeniedException") {
        return anyhow!(
            "the credentials of `{env}` may not invoke `{target}`: they need \
             `lambda:InvokeFunction` on arn:aws:lambda:{}:{}:function:{target} ({detail})",
            clients.region,
            clients.account
        );
    }
    if let SdkError::TimeoutError(_) = err {
        return anyhow!(
            "`{target}` did not answer within {} s (its timeout and a margin); it may still be \
             running: its logs are in CloudWatch Logs",
            timeout.as_secs()
        );
    }
    anyhow!("could not invoke `{target}`: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_errors_type_comes_from_its_payload() {
        let payload = br#"{"errorType":"HandlerError","errorMessage":"boom"}"#;
        assert_eq!(error_type(payload).as_deref(), Some("HandlerError"));
        assert_eq!(error_type(b"not json"), None);
        assert_eq!(error_type(br#"{"errorMessage":"boom"}"#), None);
    }
}
