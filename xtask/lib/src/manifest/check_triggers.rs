//! Validation of triggers and per-environment function overrides: what serde cannot see, each
//! problem with the manifest path it belongs to.

use std::collections::BTreeMap;

use super::triggers::{check_queue_name, check_route, check_schedule, QueueRef};
use super::{Manifest, Strategy};

/// SQS caps a batch at 10 messages unless the mapping also sets a batching window, which the
/// manifest does not offer.
const MAX_SQS_BATCH: u32 = 10;

impl Manifest {
    /// Every trigger and override problem, as (manifest path, message).
    pub(super) fn trigger_problems(&self) -> Vec<(Vec<String>, String)> {
        let mut problems = Vec::new();
        let mut problem = |path: &[&str], message: String| {
            problems.push((path.iter().map(|s| (*s).to_owned()).collect(), message));
        };
        // Keys that a single-stack app cannot vary per environment: one published version
        // (memory, timeout, arch) and one API (routes) serve every alias.
        let single_stack_fixed = [
            ("memory", "one published version serves every alias"),
            ("timeout", "one published version serves every alias"),
            ("arch", "one published version serves every alias"),
            (
                "http",
                "every stage of the app's one HTTP API has the same routes",
            ),
        ];
        for (env, spec) in self.environments.iter().chain(&self.previews) {
            for (function, over) in &spec.functions {
                let at = ["environments", env.as_str(), "functions", function.as_str()];
                if self.function(function).is_none() {
                    problem(
                        &at,
                        format!(
                            "no function `{function}` in [functions] (it has: {})",
                            self.functions
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    continue;
                }
                if self.strategy == Strategy::SingleStack {
                    let set = [
                        over.memory.is_some(),
                        over.timeout.is_some(),
                        over.arch.is_some(),
                        over.http.is_some(),
                    ];
                    for ((key, why), set) in single_stack_fixed.iter().zip(set) {
                        if set {
                            problem(
                                &[&at[..], &[key]].concat(),
                                format!(
                                    "single-stack: `{key}` cannot differ per environment ({why}); \
                                     set it in [functions.{function}], or use `strategy = \"multi-stack\"`"
                                ),
                            );
                        }
                    }
                }
                if let Some(memory) = over.memory.filter(|m| !(128..=10240).contains(m)) {
                    problem(
                        &[&at[..], &["memory"]].concat(),
                        format!("memory {memory} MB is outside Lambda's 128..=10240"),
                    );
                }
                if let Some(timeout) = over.timeout.filter(|t| !(1..=900).contains(t)) {
                    problem(
                        &[&at[..], &["timeout"]].concat(),
                        format!("timeout {timeout} s is outside Lambda's 1..=900"),
                    );
                }
            }
        }

        // Each environment's triggers, then what two functions or two environments may not share.
        let mut queue_users: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        // A preview template is checked through one name made from it.
        let previews = self
            .previews
            .keys()
            .map(|pattern| pattern.replace('*', "0"));
        for env in self.environments.keys().cloned().chain(previews) {
            let env = &env;
            let mut route_owners: BTreeMap<String, &str> = BTreeMap::new();
            for function in self.functions.keys() {
                let at_function = ["functions", function.as_str()];
                let triggers = match self.triggers(function, env) {
                    Ok(triggers) => triggers,
                    Err(err) => {
                        problem(
                            &["environments", env, "functions", function],
                            format!("{err:#}"),
                        );
                        continue;
                    }
                };
                for route in triggers.http.iter().flatten() {
                    if let Err(message) = check_route(route) {
                        problem(&[&at_function[..], &["http", "routes"]].concat(), message);
                    } else if let Some(other) = route_owners.insert(route.clone(), function) {
                        problem(
                            &[&at_function[..], &["http", "routes"]].concat(),
                            format!(
                                "route `{route}` is claimed by both `{other}` and `{function}` in \
                                 `{env}`: give each function its own routes"
                            ),
                        );
                    }
                }
                if let Some(schedule) = &triggers.schedule {
                    if let Err(message) = check_schedule(&schedule.expression) {
                        problem(
                            &[&at_function[..], &["schedule", "expression"]].concat(),
                            message,
                        );
                    }
                }
                if let Some(sqs) = &triggers.sqs {
                    let at = [&at_function[..], &["sqs"]].concat();
                    match &sqs.queue {
                        QueueRef::Name(name) => {
                            if let Err(message) = check_queue_name(name) {
                                problem(
                                    &[&at[..], &["queue"]].concat(),
                                    format!("in `{env}`: {message}"),
                                );
                            }
                        }
                        QueueRef::Arn(arn) => {
                            if arn.split(':').count() != 6
                                || !arn.starts_with("arn:aws")
                                || !arn.contains(":sqs:")
                            {
                                problem(&[&at[..], &["queue"]].concat(), format!("`{arn}` is not an SQS queue ARN (arn:aws:sqs:<region>:<account>:<name>)"));
                            } else if sqs.create {
                                problem(&[&at[..], &["create"]].concat(), "`create = true` needs a queue name, not an ARN: deploy creates queues in the environment's own account and region".to_owned());
                            }
                        }
                    }
                    if !(1..=MAX_SQS_BATCH).contains(&sqs.batch_size) {
                        problem(
                            &[&at[..], &["batch-size"]].concat(),
                            format!(
                                "batch-size {} is outside 1..={MAX_SQS_BATCH}",
                                sqs.batch_size
                            ),
                        );
                    }
                    queue_users
                        .entry(sqs.queue.name().to_owned())
                        .or_default()
                        .push((env.clone(), function.clone()));
                }
            }
        }
        for (queue, users) in queue_users {
            if users.len() > 1 {
                let (env, function) = &users[1];
                let who: Vec<String> = users
                    .iter()
                    .map(|(env, function)| format!("`{function}` in `{env}`"))
                    .collect();
                problem(
                    &["functions", function.as_str(), "sqs", "queue"],
                    format!(
                        "queue `{queue}` would feed {}: two consumers split its messages. Use one \
                         queue per environment and function (e.g. `{{app}}-{{env}}-jobs`){}",
                        who.join(" and "),
                        if users.iter().all(|(e, _)| e == env) {
                            ""
                        } else {
                            "; each environment needs its own"
                        }
                    ),
                );
            }
        }
        // A base table's problem shows in every environment: say it once.
        let mut seen = Vec::new();
        problems.retain(|problem| {
            let first = !seen.contains(problem);
            seen.push(problem.clone());
            first
        });
        problems
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::manifest::Manifest;

    fn errors(text: &str) -> String {
        Manifest::parse(Path::new("lambda-stage.toml"), text)
            .expect_err("manifest should be rejected")
            .to_string()
    }

    const HEAD: &str = "app = \"demo\"\nregion = \"eu-west-1\"\n";

    #[test]
    fn single_stack_refuses_per_environment_memory_and_routes() {
        let err = errors(&format!(
            "{HEAD}[functions.api]\nhttp = {{}}\n[environments.dev]\n[environments.dev.functions.api]\nmemory = 512\nhttp = {{ routes = [\"GET /x\"] }}\n"
        ));
        assert!(
            err.contains(
                "`environments.dev.functions.api.memory`: single-stack: `memory` cannot differ"
            ),
            "{err}"
        );
        assert!(err.contains("environments.dev.functions.api.http"), "{err}");
    }

    #[test]
    fn multi_stack_accepts_per_environment_memory() {
        Manifest::parse(
            Path::new("lambda-stage.toml"),
            &format!("strategy = \"multi-stack\"\n{HEAD}[functions.api]\n[environments.dev]\n[environments.dev.functions.api]\nmemory = 512\n"),
        )
        .unwrap();
    }

    #[test]
    fn an_override_of_an_unknown_function_is_located() {
        let err = errors(&format!(
            "{HEAD}[functions.api]\n[environments.dev]\n[environments.dev.functions.apii]\nvars = {{ APP_X = \"1\" }}\n"
        ));
        assert!(
            err.contains(":5:29: `environments.dev.functions.apii`: no function `apii`"),
            "{err}"
        );
    }

    #[test]
    fn two_functions_on_one_route_are_refused() {
        let err = errors(&format!(
            "{HEAD}[functions.a]\nhttp = {{}}\n[functions.b]\nhttp = {{}}\n[environments.dev]\n"
        ));
        assert!(
            err.contains("route `ANY /{proxy+}` is claimed by both `a` and `b`"),
            "{err}"
        );
    }

    #[test]
    fn a_queue_shared_by_environments_is_refused() {
        let err = errors(&format!(
            "{HEAD}[functions.worker]\nsqs = {{ queue = \"jobs\", create = true }}\n[environments.dev]\n[environments.prod]\n"
        ));
        assert!(
            err.contains("queue `jobs` would feed `worker` in `dev` and `worker` in `prod`"),
            "{err}"
        );
    }

    #[test]
    fn bad_schedule_route_and_batch_are_located() {
        let err = errors(&format!(
            "{HEAD}[functions.a]\nhttp = {{ routes = [\"GET hello\"] }}\nschedule = {{ expression = \"rate(1 hours)\" }}\nsqs = {{ queue = \"{{app}}-{{env}}-q\", batch-size = 50 }}\n[environments.dev]\n[environments.prod]\n"
        ));
        assert!(
            err.contains("`functions.a.http.routes`: the path of `GET hello`"),
            "{err}"
        );
        assert!(err.contains("`functions.a.schedule.expression`"), "{err}");
        assert!(err.contains("batch-size 50 is outside 1..=10"), "{err}");
        // Each environment sees the same base table: each problem is said once.
        assert_eq!(err.matches("schedule.expression").count(), 1, "{err}");
    }

    #[test]
    fn function_secrets_reach_only_that_function() {
        let manifest = Manifest::parse(
            Path::new("lambda-stage.toml"),
            &format!("{HEAD}[functions.hello]\n[functions.api]\n[environments.dev]\nvars = {{ APP_GREETING = \"hi\" }}\n[environments.dev.functions.hello]\nsecrets = {{ APP_API_KEY = \"ssm:/demo/dev/key\" }}\n"),
        )
        .unwrap();
        let hello = manifest.function_variables("hello", "dev").unwrap();
        let api = manifest.function_variables("api", "dev").unwrap();
        assert_eq!(hello["APP_DEV__API_KEY"], "ssm:/demo/dev/key");
        assert_eq!(hello["APP_DEV__GREETING"], "hi");
        assert!(!api.contains_key("APP_DEV__API_KEY"), "{api:?}");
        assert_eq!(api["APP_DEV__GREETING"], "hi");
    }
}
