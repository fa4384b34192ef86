//! Pre-flight on the manifest alone, and what the manifest wants each function to be in an
//! environment: its settings, role, queues and tags.

use std::collections::BTreeMap;

use anyhow::bail;

use super::engine::{RoleSpec, Settings};
use crate::manifest::{self, Manifest, Strategy};

/// Pre-flight on the manifest alone: the variables a version gets are legal and fit in 4 KB,
/// every function has a role, and every environment the version serves provides the
/// configuration the function requires.
pub fn check_config(manifest: &Manifest, env: &str, functions: &[String]) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let preview = manifest.is_preview(env);
    if preview {
        problems.extend(
            manifest
                .preview_name_problems(env)
                .into_iter()
                .map(|p| format!("the preview environment's name does not fit {p}")),
        );
    }
    for function in functions {
        let spec = manifest.require_function(function)?;
        let variables = manifest.function_variables(function, env)?;
        let size = manifest::variables_size(&variables);
        if size > manifest::MAX_VARIABLES_BYTES {
            let hint = if preview && manifest.strategy == Strategy::SingleStack {
                ": a single-stack preview adds its variables to the function every environment \
                 shares; use `strategy = \"multi-stack\"` for previews, or move values to \
                 `secrets`"
            } else {
                ": move large values to `secrets` (resolved at cold start)"
            };
            problems.push(format!(
                "the variables of `{function}` for `{env}` take {size} bytes, over Lambda's {} \
                 bytes{hint}",
                manifest::MAX_VARIABLES_BYTES
            ));
        }
        for key in variables.keys() {
            if !manifest::is_legal_variable_name(key)
                || manifest::RESERVED_LAMBDA_VARIABLES.contains(&key.as_str())
            {
                problems.push(format!("`{key}` cannot be a Lambda variable name"));
            }
        }
        if spec.role.is_none() && !spec.create_role {
            problems.push(format!(
                "function `{function}` has no execution role: set `role = \"arn:aws:iam::...\"` \
                 or `create-role = true` in [functions.{function}]"
            ));
        }
        for served in manifest.served_environments(env) {
            if manifest.environment(&served).is_none() {
                continue;
            }
            let provided = manifest.env_function_vars(function, &served);
            for required in &spec.required_vars {
                if !provided.contains_key(required) {
                    problems.push(format!(
                        "function `{function}` requires `{required}`, which environment \
                         `{served}` does not set: add it to [environments.{served}] (or \
                         [environments.{served}.functions.{function}]) `vars` or `secrets` (the \
                         version would fail its init there)"
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "pre-flight failed for `{env}`, nothing was written:\n  {}",
            problems.join("\n  ")
        )
    }
}

/// What the manifest wants `function` to look like in `env`.
pub(super) fn settings(manifest: &Manifest, env: &str, function: &str) -> anyhow::Result<Settings> {
    let spec = manifest.require_function(function)?;
    let role = match &spec.role {
        Some(arn) => RoleSpec::Existing(arn.clone()),
        None => RoleSpec::Managed {
            name: managed_role_name(&manifest.function_name(function, env)),
        },
    };
    Ok(Settings {
        arch: manifest.arch(function, env),
        memory_mb: i32::try_from(manifest.memory_mb(function, env))?,
        timeout_secs: i32::try_from(manifest.timeout_secs(function, env))?,
        variables: manifest.function_variables(function, env)?,
        role,
        queues: role_queues(manifest, env, function)?,
    })
}

/// The queues `function` consumes in every environment its role serves (single-stack: one role
/// for every alias; multi-stack: a role per environment).
fn role_queues(
    manifest: &Manifest,
    env: &str,
    function: &str,
) -> anyhow::Result<Vec<manifest::triggers::QueueRef>> {
    let mut queues = Vec::new();
    for served in manifest.served_environments(env) {
        if let Some(sqs) = manifest.triggers(function, &served)?.sqs {
            queues.push(sqs.queue);
        }
    }
    Ok(queues)
}

/// IAM role names are at most 64 characters.
pub(crate) fn managed_role_name(function_name: &str) -> String {
    let mut name = format!("{function_name}-exec");
    if name.len() > 64 {
        name = format!("{}-exec", &function_name[..59]);
    }
    name
}

pub(super) fn tags(manifest: &Manifest, env: &str, function: &str) -> BTreeMap<String, String> {
    let mut tags = manifest
        .function(function)
        .map(|spec| spec.tags.clone())
        .unwrap_or_default();
    tags.insert("lambda-stage:app".to_owned(), manifest.app.clone());
    tags.insert("lambda-stage:function".to_owned(), function.to_owned());
    if manifest.strategy == Strategy::MultiStack {
        tags.insert("lambda-stage:env".to_owned(), env.to_owned());
    }
    tags
}
