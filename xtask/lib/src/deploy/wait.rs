//! Waiting until Lambda has finished creating or updating a function, with the SDK's own
//! waiters (`function_active_v2`, `function_updated_v2`: `GetFunction` polled from at once,
//! then with a backoff from 1 s), before the next write: Lambda refuses a change or a publish
//! while the previous one is in progress.

use std::time::Duration;

use aws_sdk_lambda::client::Waiters as _;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::get_function::{GetFunctionError, GetFunctionOutput};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::waiters::error::WaiterError;
use aws_smithy_runtime_api::client::waiters::FinalPoll;

use super::aws::{describe, EnvClients};

/// How long to wait for one creation or update to finish.
const LIMIT: Duration = Duration::from_secs(300);

/// What the function went through last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `CreateFunction`: its `State` goes from `Pending` to `Active`.
    Created,
    /// An update of its code or configuration: its `LastUpdateStatus` goes from `InProgress` to
    /// `Successful`.
    Updated,
}

/// Waits until the function's last change finished successfully; returns its `RevisionId`
/// then. A failed change is an error naming the function and Lambda's reason.
pub async fn until_done(
    clients: &EnvClients,
    name: &str,
    change: Change,
) -> anyhow::Result<Option<String>> {
    let outcome = match change {
        Change::Created => {
            clients
                .lambda
                .wait_until_function_active_v2()
                .function_name(name)
                .wait(LIMIT)
                .await
        }
        Change::Updated => {
            clients
                .lambda
                .wait_until_function_updated_v2()
                .function_name(name)
                .wait(LIMIT)
                .await
        }
    };
    finished(outcome, name, change)
}

type Outcome = Result<
    FinalPoll<GetFunctionOutput, SdkError<GetFunctionError, HttpResponse>>,
    WaiterError<GetFunctionOutput, GetFunctionError>,
>;

/// The waiter's outcome in words.
fn finished(outcome: Outcome, name: &str, change: Change) -> anyhow::Result<Option<String>> {
    let what = match change {
        Change::Created => "the creation",
        Change::Updated => "the last update",
    };
    match outcome {
        Ok(poll) => Ok(poll
            .into_result()
            .ok()
            .and_then(|output| output.configuration()?.revision_id().map(str::to_owned))),
        Err(WaiterError::FailureState(failure)) => {
            let config = failure
                .final_poll()
                .as_result()
                .ok()
                .and_then(GetFunctionOutput::configuration);
            let reason = config
                .and_then(|c| c.last_update_status_reason().or(c.state_reason()))
                .unwrap_or("no reason given");
            anyhow::bail!("{what} of `{name}` failed: {reason}")
        }
        Err(WaiterError::ExceededMaxWait(_)) => anyhow::bail!(
            "`{name}` is still being changed after {LIMIT:?} ({what} has not finished): re-run \
             the deploy later"
        ),
        Err(WaiterError::OperationFailed(failed)) => {
            anyhow::bail!("could not read `{name}`: {}", describe(failed.error()))
        }
        Err(other) => anyhow::bail!("could not wait for {what} of `{name}`: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::types::{FunctionConfiguration, LastUpdateStatus, State};
    use aws_smithy_runtime_api::client::waiters::error::FailureState;

    use super::*;

    fn output(config: FunctionConfiguration) -> GetFunctionOutput {
        GetFunctionOutput::builder().configuration(config).build()
    }

    #[test]
    fn a_finished_change_gives_the_revision() {
        let done = output(
            FunctionConfiguration::builder()
                .last_update_status(LastUpdateStatus::Successful)
                .revision_id("rev-2")
                .build(),
        );
        let revision = finished(Ok(FinalPoll::new(Ok(done))), "demo-api", Change::Updated);
        assert_eq!(revision.unwrap().as_deref(), Some("rev-2"));
    }

    /// What `finished` says when the waiter stopped at `config`, a failure state, after `change`.
    fn failure(config: FunctionConfiguration, change: Change) -> String {
        let outcome = Err(WaiterError::FailureState(FailureState::new(
            FinalPoll::new(Ok(output(config))),
        )));
        finished(outcome, "demo-api", change)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_failed_change_names_the_function_and_lambdas_reason() {
        let failed_update = FunctionConfiguration::builder()
            .last_update_status(LastUpdateStatus::Failed)
            .last_update_status_reason("The runtime is not supported")
            .build();
        assert_eq!(
            failure(failed_update, Change::Updated),
            "the last update of `demo-api` failed: The runtime is not supported"
        );

        let failed_creation = FunctionConfiguration::builder()
            .state(State::Failed)
            .state_reason("The role cannot be assumed")
            .build();
        assert_eq!(
            failure(failed_creation, Change::Created),
            "the creation of `demo-api` failed: The role cannot be assumed"
        );
    }
}
