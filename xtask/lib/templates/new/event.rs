//! `{{name}}`: handles {{description}} (`{{type}}`).

use aws_lambda_events::event::{{type_path}};
use lambda_stage::{Ctx, Error};
use serde::{Deserialize, Serialize};

/// The function's configuration, loaded once per cold start from `APP_<FIELD>` variables
/// (set per environment in lambda-stage.toml, `[environments.<env>] vars`). A missing or
/// malformed value fails the cold start with a message naming the variable.
#[derive(Deserialize)]
struct Config {
    /// `APP_DRY_RUN`: look at the event, change nothing (default: false).
    #[serde(default)]
    dry_run: bool,
}

/// What one invocation did.
#[derive(Debug, PartialEq, Serialize)]
struct Summary {
    event: String,
    records: usize,
    dry_run: bool,
    env: String,
}

async fn handler({{param}}: {{type}}, ctx: Ctx<Config>) -> Result<Summary, Error> {
    Ok(Summary {
        event: "{{event}}".to_owned(),
        records: {{records}},
        dry_run: ctx.config().dry_run,
        env: ctx.env().to_owned(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_stage::run(handler).await
}

#[cfg(test)]
mod tests {
    use lambda_stage::testing::TestInvocation;

    use super::*;

    #[tokio::test]
    async fn summarises_the_event_in_its_environment() {
        {{sample}}
        let summary = TestInvocation::new("staging")
            .config_vars(&[("APP_STAGING__DRY_RUN", "true")])
            .invoke(handler, serde_json::to_value(event).unwrap())
            .await
            .unwrap();
        assert_eq!(
            summary,
            Summary {
                event: "{{event}}".into(),
                records: 1,
                dry_run: true,
                env: "staging".into()
            }
        );
    }
}
