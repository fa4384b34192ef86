//! The preview environments that exist in AWS, found from names (never from local state):
//! single-stack, the aliases of the app's functions that a template (`pr-*`) matches;
//! multi-stack, the functions whose names a template's environment fills.

use std::time::SystemTime;

use aws_sdk_lambda::primitives::{DateTime, DateTimeFormat};
use serde::Serialize;

use super::aws::{describe, EnvClients};
use super::history::AliasHistory;
use crate::manifest::{previews, Manifest, Strategy};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Preview {
    pub env: String,
    /// The template it was made from (`pr-*`).
    pub template: String,
    /// When an alias of it last moved (RFC 3339), as its alias history records.
    pub last_deployed: Option<String>,
    /// Time since then, e.g. `3h` or `2d`.
    pub age: Option<String>,
}

/// The template `name` fills, unless the manifest names `name` itself.
fn template_of(manifest: &Manifest, name: &str) -> Option<String> {
    if manifest.environments.contains_key(name) {
        return None;
    }
    manifest
        .previews
        .keys()
        .find(|pattern| previews::matches(pattern, name))
        .cloned()
}

/// Every preview environment deployed in the account and region `clients` reach.
pub async fn existing(manifest: &Manifest, clients: &EnvClients) -> anyhow::Result<Vec<Preview>> {
    let mut found: Vec<Preview> = Vec::new();
    if manifest.previews.is_empty() {
        return Ok(found);
    }
    // (environment, function name, alias) of every candidate.
    let mut candidates: Vec<(String, String, String)> = Vec::new();
    match manifest.strategy {
        Strategy::SingleStack => {
            for function in manifest.functions.keys() {
                let name = manifest.function_name(function, "");
                for alias in super::engine::alias_names(clients, &name).await? {
                    candidates.push((alias.clone(), name.clone(), alias));
                }
            }
        }
        Strategy::MultiStack => {
            let names = function_names(clients).await?;
            for pattern in manifest.previews.keys() {
                for function in manifest.functions.keys() {
                    // The name a preview's function gets, split around its environment.
                    let marker = "\u{1}";
                    let template = manifest.function_name(function, marker);
                    let Some((head, tail)) = template.split_once(marker) else {
                        continue;
                    };
                    for name in &names {
                        let Some(env) = name
                            .strip_prefix(head)
                            .and_then(|rest| rest.strip_suffix(tail))
                        else {
                            continue;
                        };
                        if previews::matches(pattern, env) {
                            candidates.push((env.to_owned(), name.clone(), manifest.alias(env)));
                        }
                    }
                }
            }
        }
    }
    for (env, function, alias) in candidates {
        let Some(template) = template_of(manifest, &env) else {
            continue;
        };
        let moved_at = super::engine::get_alias(clients, &function, &alias)
            .await?
            .and_then(|state| AliasHistory::parse(state.description.as_deref()).moved_at);
        match found.iter_mut().find(|p| p.env == env) {
            Some(preview) => {
                if moved_at > preview.last_deployed {
                    preview.last_deployed = moved_at;
                }
            }
            None => found.push(Preview {
                env,
                template,
                last_deployed: moved_at,
                age: None,
            }),
        }
    }
    for preview in &mut found {
        preview.age = preview.last_deployed.as_deref().and_then(age);
    }
    found.sort_by(|a, b| a.env.cmp(&b.env));
    Ok(found)
}

async fn function_names(clients: &EnvClients) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut pages = clients.lambda.list_functions().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|err| anyhow::anyhow!("could not list functions: {}", describe(&err)))?;
        names.extend(
            page.functions()
                .iter()
                .filter_map(|f| f.function_name().map(str::to_owned)),
        );
    }
    Ok(names)
}

/// `3h`, `2d`: the time since an RFC 3339 instant.
fn age(instant: &str) -> Option<String> {
    let then = DateTime::from_str(instant, DateTimeFormat::DateTime).ok()?;
    let now = DateTime::from(SystemTime::now());
    let seconds = now.secs().saturating_sub(then.secs()).max(0);
    Some(match seconds {
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    })
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages_read_as_minutes_hours_days() {
        let now = aws_sdk_lambda::primitives::DateTime::from(std::time::SystemTime::now());
        let ago = |secs: i64| {
            aws_sdk_lambda::primitives::DateTime::from_secs(now.secs() - secs)
                .fmt(aws_sdk_lambda::primitives::DateTimeFormat::DateTime)
                .unwrap()
        };
        assert_eq!(age(&ago(120)).as_deref(), Some("2m"));
        assert_eq!(age(&ago(3 * 3600 + 5)).as_deref(), Some("3h"));
        assert_eq!(age(&ago(2 * 86_400)).as_deref(), Some("2d"));
        assert_eq!(age("not a time"), None);
    }
}
