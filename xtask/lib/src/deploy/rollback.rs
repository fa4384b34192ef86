//! `cargo xtask rollback`: undoes the environment's most recent step (a deploy, promote or
//! finalize) on exactly the aliases that step changed, from the history each alias keeps in
//! AWS (see `history.rs`). Each rollback consumes the step it undid, so repeated rollbacks
//! walk further back.
//!
//! Exit status: 0 when a step was undone, even if the step also created aliases (they have
//! nothing earlier, so they are reported and stay); 1, with nothing written, when no alias
//! records anything to undo, or when an AWS call fails (the aliases already moved are then
//! put back).

use std::process::ExitCode;

use anyhow::{bail, Context as _};

use super::engine::{self, AliasState};
use super::history::{AliasHistory, Routing, Step};
use super::{
    aws, confirm, load, move_aliases, print_header, runtime, select_functions, AliasArgs,
    AliasMove, Loaded,
};

/// What rollback does to one function the undone step changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    /// The alias goes back to the routing it had before the step.
    Restore(Routing),
    /// The step created the alias: there is nothing earlier, so it stays where it is.
    NothingEarlier,
}

/// What one rollback undoes.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPlan {
    /// The step undone; `None` for a move recorded before steps were numbered.
    pub step: Option<Step>,
    /// Each function that step changed, and what happens to it; the others stay as they are.
    pub undo: Vec<(String, Undo)>,
}

impl RollbackPlan {
    /// The functions whose alias goes back (not the ones the step created).
    pub fn restored(&self) -> Vec<String> {
        self.undo
            .iter()
            .filter(|(_, undo)| matches!(undo, Undo::Restore(_)))
            .map(|(function, _)| function.clone())
            .collect()
    }
}

/// The most recent step that moved any of these aliases (function, history), and what undoing
/// it does to each of them. A step that only created aliases has nothing to undo, so it is
/// passed over; `None` when no alias records anything to undo.
pub fn what_rollback_undoes(aliases: &[(String, AliasHistory)]) -> Option<RollbackPlan> {
    // Numbered steps are more recent than unnumbered records (`None` sorts first).
    let target = aliases
        .iter()
        .filter_map(|(_, history)| history.latest())
        .filter(|record| record.before.is_some())
        .map(|record| record.step.map(|step| step.number))
        .max()?;
    let mut plan = RollbackPlan {
        step: None,
        undo: Vec::new(),
    };
    for (function, history) in aliases {
        let Some(record) = history.latest() else {
            continue;
        };
        if record.step.map(|step| step.number) != target {
            continue;
        }
        plan.step = plan.step.or(record.step);
        let undo = match &record.before {
            Some(before) => Undo::Restore(before.clone()),
            None => Undo::NothingEarlier,
        };
        plan.undo.push((function.clone(), undo));
    }
    Some(plan)
}

/// `cargo xtask rollback --env prod [FUNCTION...]`
pub fn rollback(args: AliasArgs) -> anyhow::Result<ExitCode> {
    let Loaded { manifest, .. } = load(&args.manifest)?;
    manifest.require_environment(&args.env)?;
    let functions = select_functions(&manifest, &args.functions)?;
    runtime()?.block_on(async {
        let clients = aws::connect(&manifest, &args.env).await?;
        print_header(&manifest, &clients, "Plan to roll back");
        let alias = manifest.alias(&args.env);
        let mut found: Vec<(String, String, AliasState)> = Vec::new();
        for function in &functions {
            let name = manifest.function_name(function, &args.env);
            match engine::get_alias(&clients, &name, &alias).await? {
                Some(state) => found.push((function.clone(), name, state)),
                None => {
                    println!("  {function}: `{name}` has no alias `{alias}`: nothing to roll back")
                }
            }
        }
        let histories: Vec<(String, AliasHistory)> = found
            .iter()
            .map(|(function, _, state)| (function.clone(), state.history()))
            .collect();
        let Some(plan) = what_rollback_undoes(&histories) else {
            bail!(
                "nothing to roll back in `{}`, nothing was written: no alias records an earlier \
                 version{}\nDeploy or promote the version you want instead.",
                args.env,
                found
                    .iter()
                    .map(|(function, _, state)| format!(
                        "\n  {function}: alias `{alias}` on {}, {}",
                        state.summary(),
                        state.history().summary()
                    ))
                    .collect::<String>()
            );
        };
        println!("  undo {}", step_text(plan.step));
        let mut moves = Vec::new();
        for (function, name, state) in found {
            match plan
                .undo
                .iter()
                .find(|(f, _)| *f == function)
                .map(|(_, u)| u)
            {
                Some(Undo::Restore(routing)) => {
                    for version in std::iter::once(&routing.version).chain(routing.weights.keys()) {
                        engine::get_version(&clients, &name, version)
                            .await
                            .with_context(|| {
                                format!(
                                    "cannot roll `{name}` back to {}, nothing was written",
                                    routing.summary()
                                )
                            })?;
                    }
                    println!(
                        "  {function}: alias `{alias}` {} -> {}",
                        state.summary(),
                        routing.summary()
                    );
                    moves.push(AliasMove {
                        name,
                        alias: alias.clone(),
                        label: function,
                        version: routing.version.clone(),
                        weights: routing.weights.clone(),
                        history: state.history().undone(),
                        before: Some(state),
                    });
                }
                Some(Undo::NothingEarlier) => println!(
                    "  {function}: alias `{alias}` was created by this step, nothing earlier to \
                     return to: stays on {}",
                    state.summary()
                ),
                None => println!(
                    "  {function}: not changed by this step: stays on {}",
                    state.summary()
                ),
            }
        }
        if args.dry_run {
            println!("--dry-run: stopping here, nothing was written.");
            return Ok(ExitCode::SUCCESS);
        }
        confirm(&manifest, &args.env, args.yes, "roll back")?;
        move_aliases(&clients, &moves).await?;
        let after: Vec<(String, AliasHistory)> = histories
            .into_iter()
            .map(|(function, history)| {
                let moved = moves.iter().any(|m| m.label == function);
                (function, if moved { history.undone() } else { history })
            })
            .collect();
        match what_rollback_undoes(&after) {
            Some(next) => println!(
                "Rolled back. The next `rollback` would undo {} on {}.",
                step_text(next.step),
                next.restored().join(", ")
            ),
            None => println!("Rolled back. Nothing earlier is recorded to undo."),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `step #3 (deploy)`, or what an unnumbered record is.
pub fn step_text(step: Option<Step>) -> String {
    step.map_or_else(
        || "the last move recorded before steps were numbered".to_owned(),
        |step| step.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::deploy::history::StepKind;

    fn version(v: &str) -> Option<Routing> {
        Some(Routing {
            version: v.to_owned(),
            weights: BTreeMap::new(),
        })
    }

    fn deploy(number: u32) -> Step {
        Step {
            number,
            kind: StepKind::Deploy,
        }
    }

    /// Applies a plan to the histories, as the command does.
    fn after(
        aliases: &[(String, AliasHistory)],
        plan: &RollbackPlan,
    ) -> Vec<(String, AliasHistory)> {
        aliases
            .iter()
            .map(|(function, history)| {
                let restored = plan
                    .undo
                    .iter()
                    .any(|(f, undo)| f == function && matches!(undo, Undo::Restore(_)));
                let history = if restored {
                    history.undone()
                } else {
                    history.clone()
                };
                (function.clone(), history)
            })
            .collect()
    }

    /// The scenario: both functions deployed twice, then a canary of `hello` alone.
    /// Rollback drops the canary and leaves `hello2`; the next one undoes the second deploy of
    /// both; then only creations remain, which have nothing earlier.
    #[test]
    fn rollback_undoes_the_latest_step_on_the_aliases_it_changed_then_walks_back() {
        let both_twice = AliasHistory::default()
            .recorded(deploy(1), None)
            .recorded(deploy(2), version("1"));
        let hello = both_twice.recorded(deploy(3), version("2"));
        let aliases = vec![
            ("hello".to_owned(), hello),
            ("hello2".to_owned(), both_twice),
        ];

        let first = what_rollback_undoes(&aliases).unwrap();
        assert_eq!(
            first,
            RollbackPlan {
                step: Some(deploy(3)),
                undo: vec![("hello".to_owned(), Undo::Restore(version("2").unwrap()))],
            }
        );

        let aliases = after(&aliases, &first);
        let second = what_rollback_undoes(&aliases).unwrap();
        assert_eq!(second.step, Some(deploy(2)));
        assert_eq!(
            second.undo,
            [
                ("hello".to_owned(), Undo::Restore(version("1").unwrap())),
                ("hello2".to_owned(), Undo::Restore(version("1").unwrap())),
            ]
        );

        let aliases = after(&aliases, &second);
        assert_eq!(what_rollback_undoes(&aliases), None);
    }

    /// A step that moved one alias and created another: the moved one goes back, the created
    /// one is reported with nothing earlier. A later step that only created an alias is passed
    /// over, and the canary a finalize replaced comes back.
    #[test]
    fn created_aliases_have_nothing_earlier_and_finalize_brings_the_canary_back() {
        let finalize = Step {
            number: 2,
            kind: StepKind::Finalize,
        };
        let canary = Routing {
            version: "1".to_owned(),
            weights: BTreeMap::from([("2".to_owned(), 0.1)]),
        };
        let aliases = vec![
            (
                "api".to_owned(),
                AliasHistory::default()
                    .recorded(deploy(1), None)
                    .recorded(finalize, Some(canary.clone())),
            ),
            (
                "new".to_owned(),
                AliasHistory::default().recorded(finalize, None),
            ),
            (
                "later".to_owned(),
                AliasHistory::default().recorded(deploy(3), None),
            ),
        ];
        let plan = what_rollback_undoes(&aliases).unwrap();
        assert_eq!(plan.step, Some(finalize));
        assert_eq!(
            plan.undo,
            [
                ("api".to_owned(), Undo::Restore(canary)),
                ("new".to_owned(), Undo::NothingEarlier),
            ]
        );
    }

    /// Aliases deployed before steps were numbered: their last recorded move is undone on each
    /// of them, as rollback did then, and only once the numbered steps are all undone.
    #[test]
    fn unnumbered_records_come_after_every_numbered_step() {
        let old = AliasHistory::parse(Some("lambda-stage previous=2,1"));
        let aliases = vec![
            ("a".to_owned(), old.recorded(deploy(1), version("3"))),
            ("b".to_owned(), old.clone()),
            ("c".to_owned(), AliasHistory::parse(Some("made by hand"))),
        ];
        let plan = what_rollback_undoes(&aliases).unwrap();
        assert_eq!(plan.step, Some(deploy(1)));
        assert_eq!(
            plan.undo,
            [("a".to_owned(), Undo::Restore(version("3").unwrap()))]
        );

        let plan = what_rollback_undoes(&after(&aliases, &plan)).unwrap();
        assert_eq!(plan.step, None);
        assert_eq!(
            plan.undo,
            [
                ("a".to_owned(), Undo::Restore(version("2").unwrap())),
                ("b".to_owned(), Undo::Restore(version("2").unwrap())),
            ]
        );
    }
}
