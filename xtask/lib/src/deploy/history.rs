//! The deploy history of an alias, kept in AWS itself (the alias description) so that any
//! machine can roll back, and what a published version records about its build.
//!
//! Every command that moves aliases (deploy, promote, finalize) is one **step** of its
//! environment, numbered across the environment (1, 2, 3...). Each alias it changes records
//! the step and the routing the step replaced, so `rollback` can undo exactly the most recent
//! step, on exactly the aliases it changed:
//!
//! `lambda-stage at=<when> steps=5d:2+3@0.1,4f:1,1d:-`
//!
//! Records are most recent first: `<number><kind>:<before>`, with kind `d` (deploy), `p`
//! (promote) or `f` (finalize), and `before` the alias's routing before the step (`2`, or
//! `2+3@0.1` for version 2 with 10% to version 3), or `-` when the step created the alias.
//! Descriptions written before steps were numbered carry `previous=<v>,<v>` (the versions
//! before each move): they are read as unnumbered records older than any numbered one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use aws_sdk_lambda::primitives::{DateTime, DateTimeFormat};
use serde::Serialize;

const MARKER: &str = "lambda-stage";
/// Lambda's limit on an alias description.
const MAX_DESCRIPTION: usize = 256;

/// The kind of command a step was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Deploy,
    Promote,
    Finalize,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Deploy => "deploy",
            StepKind::Promote => "promote",
            StepKind::Finalize => "finalize",
        }
    }

    fn letter(self) -> char {
        match self {
            StepKind::Deploy => 'd',
            StepKind::Promote => 'p',
            StepKind::Finalize => 'f',
        }
    }

    fn from_letter(letter: char) -> Option<StepKind> {
        match letter {
            'd' => Some(StepKind::Deploy),
            'p' => Some(StepKind::Promote),
            'f' => Some(StepKind::Finalize),
            _ => None,
        }
    }
}

/// One command run that moved aliases of an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Increasing across the environment: the environment's highest recorded step, plus one.
    pub number: u32,
    pub kind: StepKind,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "step #{} ({})", self.number, self.kind.as_str())
    }
}

/// Where an alias sends its traffic: the primary version, and canary versions with their
/// share (0..1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Routing {
    pub version: String,
    pub weights: BTreeMap<String, f64>,
}

impl Routing {
    /// `version 1`, or `version 1 (90%) + version 2 (10%)` during a canary.
    pub fn summary(&self) -> String {
        let mut text = format!("version {}", self.version);
        for (version, weight) in &self.weights {
            let _ = write!(
                text,
                " ({:.0}%) + version {version} ({:.0}%)",
                (1.0 - weight) * 100.0,
                weight * 100.0
            );
        }
        text
    }

    fn encode(&self) -> String {
        let mut text = self.version.clone();
        for (version, weight) in &self.weights {
            let _ = write!(text, "+{version}@{weight}");
        }
        text
    }

    fn decode(text: &str) -> Option<Routing> {
        let mut parts = text.split('+');
        let version = parts.next().filter(|v| !v.is_empty())?.to_owned();
        let mut weights = BTreeMap::new();
        for canary in parts {
            let (canary, weight) = canary.split_once('@')?;
            weights.insert(canary.to_owned(), weight.parse().ok()?);
        }
        Some(Routing { version, weights })
    }
}

/// What one step changed on one alias.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    /// `None` for a move recorded before steps were numbered (`previous=`).
    pub step: Option<Step>,
    /// The routing the step replaced; `None` when the step created the alias.
    pub before: Option<Routing>,
}

impl StepRecord {
    /// How `status` and `rollback` describe it: `#5 deploy from version 2`.
    pub fn summary(&self) -> String {
        match (self.step, &self.before) {
            (Some(step), Some(before)) => format!(
                "#{} {} from {}",
                step.number,
                step.kind.as_str(),
                before.summary()
            ),
            (Some(step), None) => {
                format!("#{} {} created the alias", step.number, step.kind.as_str())
            }
            (None, Some(before)) => format!(
                "a move from {} (recorded before steps were numbered)",
                before.summary()
            ),
            (None, None) => "a move recorded before steps were numbered".to_owned(),
        }
    }

    fn encode(&self) -> Option<String> {
        let step = self.step?;
        let before = self.before.as_ref().map_or("-".to_owned(), Routing::encode);
        Some(format!("{}{}:{before}", step.number, step.kind.letter()))
    }

    fn decode(text: &str) -> Option<StepRecord> {
        let (step, before) = text.split_once(':')?;
        let kind = StepKind::from_letter(step.chars().last()?)?;
        let number = step[..step.len() - 1].parse().ok()?;
        let before = match before {
            "-" => None,
            routing => Some(Routing::decode(routing)?),
        };
        Some(StepRecord {
            step: Some(Step { number, kind }),
            before,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AliasHistory {
    /// When lambda-stage last changed the alias (RFC 3339).
    pub moved_at: Option<String>,
    /// What each step changed on the alias, most recent first; numbered records come before
    /// unnumbered (older) ones.
    pub records: Vec<StepRecord>,
}

impl AliasHistory {
    /// Reads a description written by [`AliasHistory::to_description`] (or by a version of
    /// lambda-stage before steps, `previous=`); anything else (an alias made by hand) has no
    /// history. Records that cannot be read are skipped.
    pub fn parse(description: Option<&str>) -> AliasHistory {
        let mut history = AliasHistory::default();
        let Some(rest) = description.and_then(|d| d.strip_prefix(MARKER)) else {
            return history;
        };
        let mut legacy = Vec::new();
        for field in rest.split_whitespace() {
            match field.split_once('=') {
                Some(("at", when)) => history.moved_at = Some(when.to_owned()),
                Some(("steps", records)) => history
                    .records
                    .extend(records.split(',').filter_map(StepRecord::decode)),
                Some(("previous", versions)) => {
                    legacy.extend(versions.split(',').filter(|v| !v.is_empty()).map(|v| {
                        StepRecord {
                            step: None,
                            before: Some(Routing {
                                version: v.to_owned(),
                                weights: BTreeMap::new(),
                            }),
                        }
                    }))
                }
                _ => {}
            }
        }
        history.records.extend(legacy);
        history
    }

    /// The history in words: `history: #3 deploy from version 2, #1 deploy created the
    /// alias`, or `history: none` (never an empty list).
    pub fn summary(&self) -> String {
        if self.records.is_empty() {
            return "history: none".to_owned();
        }
        let records: Vec<String> = self.records.iter().map(StepRecord::summary).collect();
        format!("history: {}", records.join(", "))
    }

    /// The most recent record.
    pub fn latest(&self) -> Option<&StepRecord> {
        self.records.first()
    }

    /// The history after `step` changes the alias from `before` (`None`: it creates it).
    pub fn recorded(&self, step: Step, before: Option<Routing>) -> AliasHistory {
        let mut records = vec![StepRecord {
            step: Some(step),
            before,
        }];
        records.extend(self.records.iter().cloned());
        AliasHistory {
            moved_at: Some(now_rfc3339()),
            records,
        }
    }

    /// The history after rollback undid the most recent record.
    pub fn undone(&self) -> AliasHistory {
        AliasHistory {
            moved_at: Some(now_rfc3339()),
            records: self.records.iter().skip(1).cloned().collect(),
        }
    }

    /// The description to store, dropping the oldest records to fit Lambda's 256 characters.
    pub fn to_description(&self) -> String {
        let mut records = self.records.clone();
        loop {
            let mut text = MARKER.to_owned();
            if let Some(at) = &self.moved_at {
                let _ = write!(text, " at={at}");
            }
            let numbered: Vec<String> = records.iter().filter_map(StepRecord::encode).collect();
            if !numbered.is_empty() {
                let _ = write!(text, " steps={}", numbered.join(","));
            }
            let legacy: Vec<&str> = records
                .iter()
                .filter(|r| r.step.is_none())
                .filter_map(|r| r.before.as_ref().map(|b| b.version.as_str()))
                .collect();
            if !legacy.is_empty() {
                let _ = write!(text, " previous={}", legacy.join(","));
            }
            if text.len() <= MAX_DESCRIPTION || records.is_empty() {
                return text;
            }
            records.pop();
        }
    }
}

/// The number of the next step in an environment whose aliases have these histories.
pub fn next_step_number<'a>(histories: impl IntoIterator<Item = &'a AliasHistory>) -> u32 {
    histories
        .into_iter()
        .filter_map(|h| h.records.iter().find_map(|r| r.step))
        .map(|step| step.number)
        .max()
        .unwrap_or(0)
        + 1
}

/// Now, to the second (the fraction would only take room from the history).
pub fn now_rfc3339() -> String {
    DateTime::from_secs(DateTime::from(SystemTime::now()).secs())
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default()
}

/// What a published version's description records: the git commit and the zip's sha256.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionStamp {
    pub git_commit: Option<String>,
    pub sha256: Option<String>,
    pub promoted_from: Option<String>,
}

impl VersionStamp {
    pub fn to_description(&self) -> String {
        let mut text = MARKER.to_owned();
        if let Some(commit) = &self.git_commit {
            text.push_str(&format!(" git={commit}"));
        }
        if let Some(sha) = &self.sha256 {
            text.push_str(&format!(" sha256={sha}"));
        }
        if let Some(from) = &self.promoted_from {
            text.push_str(&format!(" promoted-from={from}"));
        }
        text
    }

    pub fn parse(description: Option<&str>) -> VersionStamp {
        let mut stamp = VersionStamp::default();
        let Some(rest) = description.and_then(|d| d.strip_prefix(MARKER)) else {
            return stamp;
        };
        for field in rest.split_whitespace() {
            match field.split_once('=') {
                Some(("git", commit)) => stamp.git_commit = Some(commit.to_owned()),
                Some(("sha256", sha)) => stamp.sha256 = Some(sha.to_owned()),
                Some(("promoted-from", from)) => stamp.promoted_from = Some(from.to_owned()),
                _ => {}
            }
        }
        stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(version: &str, canary: Option<(&str, f64)>) -> Routing {
        Routing {
            version: version.to_owned(),
            weights: canary
                .map(|(v, w)| BTreeMap::from([(v.to_owned(), w)]))
                .unwrap_or_default(),
        }
    }

    fn step(number: u32, kind: StepKind) -> Step {
        Step { number, kind }
    }

    #[test]
    fn history_round_trips_and_undoes_the_latest_record() {
        let history = AliasHistory::default()
            .recorded(step(1, StepKind::Deploy), None)
            .recorded(step(2, StepKind::Deploy), Some(routing("1", None)))
            .recorded(
                step(4, StepKind::Finalize),
                Some(routing("2", Some(("3", 0.1)))),
            );
        let description = history.to_description();
        assert!(
            description.ends_with(" steps=4f:2+3@0.1,2d:1,1d:-"),
            "{description}"
        );
        let parsed = AliasHistory::parse(Some(&description));
        assert_eq!(parsed, history);
        assert_eq!(
            parsed.latest().unwrap().summary(),
            "#4 finalize from version 2 (90%) + version 3 (10%)"
        );
        assert_eq!(parsed.undone().records, history.records[1..]);
        assert_eq!(
            AliasHistory::parse(Some("made by hand")),
            AliasHistory::default()
        );
    }

    /// Aliases deployed before steps were numbered keep their `previous=` versions, as older
    /// records without a step, below the numbered ones.
    #[test]
    fn previous_versions_of_older_descriptions_are_unnumbered_records() {
        let old = AliasHistory::parse(Some("lambda-stage at=2025-01-01T00:00:00Z previous=2,1"));
        assert_eq!(old.records.len(), 2);
        assert_eq!(old.records[0].step, None);
        assert_eq!(old.records[0].before, Some(routing("2", None)));
        assert_eq!(
            old.records[0].summary(),
            "a move from version 2 (recorded before steps were numbered)"
        );
        let new = old.recorded(step(1, StepKind::Deploy), Some(routing("3", None)));
        let description = new.to_description();
        assert!(
            description.ends_with(" steps=1d:3 previous=2,1"),
            "{description}"
        );
        assert_eq!(AliasHistory::parse(Some(&description)), new);
    }

    #[test]
    fn summary_says_none_for_an_empty_history() {
        assert_eq!(AliasHistory::default().summary(), "history: none");
        let history = AliasHistory::default()
            .recorded(step(1, StepKind::Deploy), None)
            .recorded(step(4, StepKind::Promote), Some(routing("1", None)));
        assert_eq!(
            history.summary(),
            "history: #4 promote from version 1, #1 deploy created the alias"
        );
    }

    #[test]
    fn long_history_fits_the_description_limit() {
        let mut history = AliasHistory::default();
        for number in 1..200 {
            history = history.recorded(
                step(number, StepKind::Deploy),
                Some(routing(&number.to_string(), Some(("1000", 0.25)))),
            );
        }
        let description = history.to_description();
        assert!(description.len() <= MAX_DESCRIPTION);
        let parsed = AliasHistory::parse(Some(&description));
        // The worst case (three-digit steps, every one a canary) still keeps ten steps.
        assert!(parsed.records.len() >= 10, "{description}");
        assert_eq!(parsed.records[..], history.records[..parsed.records.len()]);
    }

    #[test]
    fn the_next_step_follows_the_highest_in_the_environment() {
        let a = AliasHistory::default()
            .recorded(step(1, StepKind::Deploy), None)
            .recorded(step(3, StepKind::Deploy), Some(routing("1", None)));
        let b = AliasHistory::default().recorded(step(2, StepKind::Deploy), None);
        let legacy = AliasHistory::parse(Some("lambda-stage previous=4"));
        assert_eq!(next_step_number([&a, &b, &legacy]), 4);
        assert_eq!(next_step_number([&legacy]), 1);
        assert_eq!(next_step_number([]), 1);
    }

    #[test]
    fn version_stamp_round_trips() {
        let stamp = VersionStamp {
            git_commit: Some("abc123-dirty".into()),
            sha256: Some("ff00".into()),
            promoted_from: None,
        };
        assert_eq!(VersionStamp::parse(Some(&stamp.to_description())), stamp);
    }
}
