//! `invoke`'s default event: with neither `--event` nor `--data`, a function with a trigger in
//! the environment gets what that trigger would send it there.
//!
//! - `http`: the HTTP API event for `--path`/`--method` (default: the first route, its path
//!   variables filled with their own names, `ANY` as `GET`), with the route that path matches
//!   among the function's routes and the environment's stage ([`app_api`]), as `serve` sends it.
//! - `sqs`: an SQS message from the environment's queue (its ARN in the environment's region and
//!   account); `--body` is the message.
//! - `schedule`: its `input` exactly, when set; else EventBridge's scheduled event from the
//!   rule `arn:aws:events:<region>:<account>:rule/<function-name>-<env>` (as deploy names it); `--body` is
//!   its `detail`.
//!
//! With several triggers, the first of http, sqs, schedule gives the event. A disabled trigger
//! still does: the event is what it sends once enabled.

use anyhow::{bail, Context as _};
use lambda_stage_events::{ApiRoute, Overrides};
use serde_json::Value;

use crate::app_api;
use crate::manifest::triggers::{Schedule, Sqs};
use crate::manifest::Manifest;

/// The account in ARNs when the manifest names none: the one AWS's documentation and moto use.
pub const PLACEHOLDER_ACCOUNT: &str = "123456789012";

/// The event a trigger sends, and a line saying which.
#[derive(Debug)]
pub struct TriggerEvent {
    pub payload: Value,
    pub note: String,
}

/// The event of `function`'s trigger in `env` (`region` and `account`: where it runs, as the
/// event's ARNs name them), or `None` when it has none there.
pub fn build(
    manifest: &Manifest,
    function: &str,
    env: &str,
    region: &str,
    account: &str,
    overrides: &Overrides,
) -> anyhow::Result<Option<TriggerEvent>> {
    let triggers = manifest.triggers(function, env)?;
    let (kind, enabled, (payload, what)) = if triggers.http.is_some() {
        ("http", true, http(manifest, function, env, overrides)?)
    } else if let Some(sqs) = &triggers.sqs {
        (
            "sqs",
            sqs.enabled,
            self::sqs(sqs, region, account, overrides)?,
        )
    } else if let Some(schedule) = &triggers.schedule {
        let rule = format!(
            "arn:aws:events:{region}:{account}:rule/{}",
            manifest.schedule_rule_name(function, env)
        );
        let built = self::schedule(schedule, &rule, overrides)?;
        ("schedule", schedule.enabled, built)
    } else {
        return Ok(None);
    };
    let mut note = format!(
        "no --event or --data: sending what `{function}`'s {kind} trigger in `{env}` sends: {what}"
    );
    if !enabled {
        note.push_str(&format!(" (the trigger is disabled in `{env}`)"));
    }
    let unused: Vec<&str> = [
        (triggers.sqs.is_some(), "sqs"),
        (triggers.schedule.is_some(), "schedule"),
    ]
    .into_iter()
    .filter(|(present, other)| *present && *other != kind)
    .map(|(_, other)| other)
    .collect();
    if !unused.is_empty() {
        note.push_str(&format!(
            "; not its {} trigger (--event or --data give any other event)",
            unused.join(" or ")
        ));
    }
    Ok(Some(TriggerEvent { payload, note }))
}

/// The HTTP API event for the request `--path`/`--method` (or the first route's sample).
fn http(
    manifest: &Manifest,
    function: &str,
    env: &str,
    overrides: &Overrides,
) -> anyhow::Result<(Value, String)> {
    let table = app_api::routes(manifest, env, [(function, ())])?;
    let (sample_method, sample_path) = table
        .iter()
        .next()
        .map(|(route, ())| route.sample_request())
        .context("an `http` trigger without routes")?;
    let method = overrides
        .method
        .as_deref()
        .map_or(sample_method, str::to_ascii_uppercase);
    let path_and_query = overrides.path.clone().unwrap_or(sample_path);
    let path = path_and_query.split('?').next().unwrap_or_default();
    let Some(matched) = table.find(&method, path) else {
        let routes: Vec<&str> = table.iter().map(|(route, ())| route.key()).collect();
        bail!(
            "`{method} {path}` matches none of `{function}`'s routes in `{env}` ({}): API \
             Gateway would answer 404 without invoking it. Give a --path (and --method) that one \
             of them matches, or --event apigw-http for a plain `$default` event",
            routes.join(", ")
        );
    };
    let route = ApiRoute {
        stage: app_api::stage(manifest, env),
        route_key: matched.route.key().to_owned(),
        path_parameters: matched.path_parameters,
    };
    let request = Overrides {
        method: Some(method.clone()),
        path: Some(path_and_query.clone()),
        ..overrides.clone()
    };
    let event = lambda_stage_events::apigw_http_on_route(&route, &request)?;
    let what = format!(
        "`{method} {}` on stage `{}`, route `{}`{}",
        event["rawPath"].as_str().unwrap_or(path),
        route.stage,
        route.route_key,
        if overrides.path.is_none() {
            " (path variables hold their own names; --path sets real ones)"
        } else {
            ""
        }
    );
    Ok((event, what))
}

fn sqs(
    sqs: &Sqs,
    region: &str,
    account: &str,
    overrides: &Overrides,
) -> anyhow::Result<(Value, String)> {
    let queue = sqs.queue.arn(region, account);
    let event = lambda_stage_events::sqs_from_queue(&queue, overrides)?;
    Ok((event, format!("an SQS message from {queue}")))
}

fn schedule(
    schedule: &Schedule,
    rule: &str,
    overrides: &Overrides,
) -> anyhow::Result<(Value, String)> {
    match &schedule.input {
        Some(input) => {
            if *overrides != Overrides::default() {
                bail!(
                    "the schedule sends its `input` from the manifest as is, so --path, --method, \
                     --query, --header and --body do not apply; give the whole event with --data"
                );
            }
            Ok((input.clone(), "its `input` from the manifest".to_owned()))
        }
        None => {
            let event = lambda_stage_events::scheduled_from_rule(rule, overrides)?;
            Ok((event, format!("EventBridge's scheduled event from {rule}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    const APP: &str = r#"
app = "shop"
region = "eu-west-1"
[functions.web]
http = { routes = ["GET /hello/{name}", "ANY /files/{path+}"] }
[functions.jobs]
sqs = { queue = "{app}-{env}-jobs" }
[functions.tick]
schedule = { expression = "rate(1 hour)", input = { name = "scheduler" } }
[functions.plain-tick]
schedule = { expression = "rate(5 minutes)" }
[functions.quiet]
[environments.dev]
[environments.dev.functions.tick]
schedule = { enabled = false }
[environments.staging]
"#;

    /// `APP` with one API, function and account per environment.
    fn multi_stack() -> Manifest {
        manifest(&format!(
            "strategy = \"multi-stack\"\n{APP}account-id = \"111122223333\"\n"
        ))
    }

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(Path::new("lambda-stage.toml"), text).unwrap()
    }

    fn event(
        manifest: &Manifest,
        function: &str,
        env: &str,
        overrides: &Overrides,
    ) -> TriggerEvent {
        let account = manifest.account_id(env).unwrap_or(PLACEHOLDER_ACCOUNT);
        build(manifest, function, env, "eu-west-1", account, overrides)
            .unwrap()
            .expect("a trigger")
    }

    #[test]
    fn sqs_records_come_from_the_environments_queue() {
        let (single, multi) = (manifest(APP), multi_stack());
        for (manifest, env, account) in [
            (&single, "dev", PLACEHOLDER_ACCOUNT),
            (&single, "staging", PLACEHOLDER_ACCOUNT),
            (&multi, "staging", "111122223333"),
        ] {
            let built = event(manifest, "jobs", env, &Overrides::default());
            let record = &built.payload["Records"][0];
            let queue = format!("arn:aws:sqs:eu-west-1:{account}:shop-{env}-jobs");
            assert_eq!(record["eventSourceARN"], queue.as_str());
            assert_eq!(record["awsRegion"], "eu-west-1");
            assert!(built.note.contains(&queue), "{}", built.note);
        }
        let body = Overrides {
            body: Some(r#"{"order":7}"#.into()),
            ..Overrides::default()
        };
        let built = event(&single, "jobs", "dev", &body);
        assert_eq!(built.payload["Records"][0]["body"], r#"{"order":7}"#);
    }

    #[test]
    fn a_schedule_sends_its_input_exactly_else_the_scheduled_event_of_its_rule() {
        let manifest = manifest(APP);
        let built = event(&manifest, "tick", "dev", &Overrides::default());
        assert_eq!(built.payload, json!({ "name": "scheduler" }));
        assert!(built.note.contains("disabled in `dev`"), "{}", built.note);
        let body = Overrides {
            body: Some("{}".into()),
            ..Overrides::default()
        };
        let err = build(
            &manifest,
            "tick",
            "dev",
            "eu-west-1",
            PLACEHOLDER_ACCOUNT,
            &body,
        )
        .unwrap_err();
        assert!(format!("{err}").contains("--data"), "{err}");

        let built = event(&manifest, "plain-tick", "staging", &Overrides::default());
        assert_eq!(built.payload["detail-type"], "Scheduled Event");
        assert_eq!(
            built.payload["resources"],
            json!(["arn:aws:events:eu-west-1:123456789012:rule/shop-plain-tick-staging"])
        );
        assert_eq!(built.payload["account"], PLACEHOLDER_ACCOUNT);
        assert_eq!(built.payload["region"], "eu-west-1");
    }

    #[test]
    fn http_single_stack_keeps_the_stage_in_the_raw_path() {
        let manifest = manifest(APP);
        let built = event(&manifest, "web", "staging", &Overrides::default());
        let event = &built.payload;
        assert_eq!(event["rawPath"], "/staging/hello/name");
        assert_eq!(
            event["requestContext"]["http"]["path"],
            "/staging/hello/name"
        );
        assert_eq!(event["requestContext"]["stage"], "staging");
        assert_eq!(event["routeKey"], "GET /hello/{name}");
        assert_eq!(event["pathParameters"], json!({ "name": "name" }));
        assert!(built.note.contains("--path"), "{}", built.note);
    }

    #[test]
    fn http_multi_stack_is_on_the_default_stage_without_a_prefix() {
        let manifest = multi_stack();
        let request = Overrides {
            path: Some("/files/a/b.txt?v=2".into()),
            method: Some("put".into()),
            body: Some("data".into()),
            ..Overrides::default()
        };
        let event = event(&manifest, "web", "staging", &request).payload;
        assert_eq!(event["rawPath"], "/files/a/b.txt");
        assert_eq!(event["rawQueryString"], "v=2");
        assert_eq!(event["requestContext"]["stage"], "$default");
        assert_eq!(event["requestContext"]["http"]["method"], "PUT");
        assert_eq!(event["routeKey"], "ANY /files/{path+}");
        assert_eq!(event["pathParameters"], json!({ "path": "a/b.txt" }));
        assert_eq!(event["body"], "data");
    }

    #[test]
    fn an_http_path_no_route_matches_is_refused() {
        let manifest = manifest(APP);
        let request = Overrides {
            path: Some("/nowhere".into()),
            ..Overrides::default()
        };
        let err = build(
            &manifest,
            "web",
            "dev",
            "eu-west-1",
            PLACEHOLDER_ACCOUNT,
            &request,
        )
        .unwrap_err();
        let message = format!("{err}");
        assert!(
            message.contains("GET /nowhere") && message.contains("GET /hello/{name}"),
            "{message}"
        );
    }

    #[test]
    fn a_function_without_triggers_has_no_default_event() {
        let manifest = manifest(APP);
        let none = build(
            &manifest,
            "quiet",
            "dev",
            "eu-west-1",
            PLACEHOLDER_ACCOUNT,
            &Overrides::default(),
        )
        .unwrap();
        assert!(none.is_none());
    }
}
