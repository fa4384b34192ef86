//! Alias moves: the last step of every command, with the `RevisionId` read before, so a
//! concurrent change is a conflict rather than an overwrite, and a failed command can put back
//! what it moved.

use std::collections::BTreeMap;

use aws_sdk_lambda::types::AliasRoutingConfiguration;

use super::aws::{describe, is_conflict, EnvClients};
use super::engine::{self, AliasState};
use super::fan_out;
use super::history::{next_step_number, AliasHistory, Step, StepKind};
use crate::manifest::Manifest;

/// The aliases of the environment's functions as a command read them: where each stood before
/// the command, and so the number of the command's step.
#[derive(Debug, Default)]
pub struct EnvAliases {
    /// By the function's name in AWS; `None`: it has no alias for the environment.
    states: BTreeMap<String, Option<AliasState>>,
}

impl EnvAliases {
    /// Reads, at once, the alias of every function of the manifest in `clients.env`, except the
    /// functions named in `already_read` (their plans read them; see [`EnvAliases::insert`]).
    pub async fn read(
        clients: &EnvClients,
        manifest: &Manifest,
        already_read: &[String],
    ) -> anyhow::Result<Self> {
        let alias = manifest.alias(&clients.env);
        let names: Vec<String> = manifest
            .functions
            .keys()
            .map(|function| manifest.function_name(function, &clients.env))
            .filter(|name| !already_read.contains(name))
            .collect();
        let states = fan_out::each(&names, |name| engine::get_alias(clients, name, &alias)).await;
        Ok(EnvAliases {
            states: names.into_iter().zip(fan_out::all_ok(states)?).collect(),
        })
    }

    /// Adds an alias that the command read itself.
    pub fn insert(&mut self, name: &str, state: Option<AliasState>) {
        self.states.insert(name.to_owned(), state);
    }

    /// Where the alias of the function called `name` stood.
    pub fn before(&self, name: &str) -> Option<&AliasState> {
        self.states.get(name).and_then(Option::as_ref)
    }

    /// The command's step: numbered one past the highest step recorded on any alias of the
    /// environment (every function of the manifest, not only the ones this command moves), so
    /// `rollback` can tell which command came last.
    pub fn next_step(&self, kind: StepKind) -> Step {
        let histories: Vec<AliasHistory> = self
            .states
            .values()
            .flatten()
            .map(AliasState::history)
            .collect();
        Step {
            number: next_step_number(&histories),
            kind,
        }
    }
}

/// The history an alias carries after `step` moves it away from `before` (`None`: the step
/// creates it).
pub fn history_after(before: Option<&AliasState>, step: Step) -> AliasHistory {
    match before {
        Some(before) => before.history().recorded(step, Some(before.routing())),
        None => AliasHistory::default().recorded(step, None),
    }
}

/// Moves one alias (or creates it) with the `RevisionId` read at plan time, so a concurrent
/// move is detected instead of overwritten. Returns the new state.
pub async fn move_alias(
    clients: &EnvClients,
    name: &str,
    alias: &str,
    before: Option<&AliasState>,
    version: &str,
    weights: BTreeMap<String, f64>,
    history: &AliasHistory,
) -> anyhow::Result<AliasState> {
    let routing = AliasRoutingConfiguration::builder()
        .set_additional_version_weights(Some(weights.clone().into_iter().collect()))
        .build();
    let description = history.to_description();
    let conflict = |err: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "conflict: alias `{alias}` of `{name}` changed while this command ran (another \
             deploy?), so it was left as the other change set it: {err}. Check `cargo xtask \
             status` and re-run if this deploy should still win"
        )
    };
    let revision_id = match before {
        None => clients
            .lambda
            .create_alias()
            .function_name(name)
            .name(alias)
            .function_version(version)
            .description(&description)
            .routing_config(routing)
            .send()
            .await
            .map_err(|err| {
                if is_conflict(&err) {
                    conflict(&describe(&err))
                } else {
                    anyhow::anyhow!(
                        "could not create alias `{alias}` of `{name}`: {}",
                        describe(&err)
                    )
                }
            })?
            .revision_id()
            .map(str::to_owned),
        Some(before) => clients
            .lambda
            .update_alias()
            .function_name(name)
            .name(alias)
            .function_version(version)
            .description(&description)
            .routing_config(routing)
            .set_revision_id(before.revision_id.clone())
            .send()
            .await
            .map_err(|err| {
                if is_conflict(&err) {
                    conflict(&describe(&err))
                } else {
                    anyhow::anyhow!(
                        "could not move alias `{alias}` of `{name}`: {}",
                        describe(&err)
                    )
                }
            })?
            .revision_id()
            .map(str::to_owned),
    };
    Ok(AliasState {
        version: version.to_owned(),
        weights,
        revision_id,
        description: Some(description),
    })
}

/// Puts an alias back where it was (or deletes it if this command created it), after a later
/// alias of the same command failed to move.
pub async fn restore_alias(
    clients: &EnvClients,
    name: &str,
    alias: &str,
    now: &AliasState,
    before: Option<&AliasState>,
) -> anyhow::Result<()> {
    match before {
        None => {
            clients
                .lambda
                .delete_alias()
                .function_name(name)
                .name(alias)
                .send()
                .await
                .map_err(|err| anyhow::anyhow!("{}", describe(&err)))?;
        }
        Some(before) => {
            clients
                .lambda
                .update_alias()
                .function_name(name)
                .name(alias)
                .function_version(&before.version)
                .description(before.description.clone().unwrap_or_default())
                .routing_config(
                    AliasRoutingConfiguration::builder()
                        .set_additional_version_weights(Some(
                            before.weights.clone().into_iter().collect(),
                        ))
                        .build(),
                )
                .set_revision_id(now.revision_id.clone())
                .send()
                .await
                .map_err(|err| anyhow::anyhow!("{}", describe(&err)))?;
        }
    }
    Ok(())
}
