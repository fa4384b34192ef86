//! The deploy history of an alias, kept in AWS itself (the alias description) so that any
//! machine can roll back: `lambda-stage at=<when> previous=<v>,<v>,...`.

use std::time::SystemTime;

use aws_sdk_lambda::primitives::{DateTime, DateTimeFormat};

const MARKER: &str = "lambda-stage";
/// Lambda's limit on an alias description.
const MAX_DESCRIPTION: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasHistory {
    /// When the alias last moved (RFC 3339), as recorded by lambda-stage.
    pub moved_at: Option<String>,
    /// The versions the alias pointed at before, most recent first.
    pub previous: Vec<String>,
}

impl AliasHistory {
    /// Reads a description written by [`AliasHistory::to_description`]; anything else (an alias
    /// made by hand) has no history.
    pub fn parse(description: Option<&str>) -> AliasHistory {
        let mut history = AliasHistory::default();
        let Some(rest) = description.and_then(|d| d.strip_prefix(MARKER)) else {
            return history;
        };
        for field in rest.split_whitespace() {
            match field.split_once('=') {
                Some(("at", when)) => history.moved_at = Some(when.to_owned()),
                Some(("previous", versions)) => {
                    history.previous = versions
                        .split(',')
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                _ => {}
            }
        }
        history
    }

    /// The history after the alias moves away from `from` (now).
    pub fn moved_from(&self, from: Option<&str>) -> AliasHistory {
        let mut previous = self.previous.clone();
        if let Some(from) = from {
            if previous.first().map(String::as_str) != Some(from) {
                previous.insert(0, from.to_owned());
            }
        }
        AliasHistory {
            moved_at: Some(now_rfc3339()),
            previous,
        }
    }

    /// The history after rolling back to `previous[0]`.
    pub fn rolled_back(&self) -> AliasHistory {
        AliasHistory {
            moved_at: Some(now_rfc3339()),
            previous: self.previous.iter().skip(1).cloned().collect(),
        }
    }

    /// The description to store, dropping the oldest versions to fit Lambda's 256 characters.
    pub fn to_description(&self) -> String {
        let mut previous = self.previous.clone();
        loop {
            let mut text = MARKER.to_owned();
            if let Some(at) = &self.moved_at {
                text.push_str(&format!(" at={at}"));
            }
            if !previous.is_empty() {
                text.push_str(&format!(" previous={}", previous.join(",")));
            }
            if text.len() <= MAX_DESCRIPTION || previous.is_empty() {
                return text;
            }
            previous.pop();
        }
    }
}

pub fn now_rfc3339() -> String {
    DateTime::from(SystemTime::now())
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

    #[test]
    fn history_round_trips_and_rolls_back() {
        let history = AliasHistory::default()
            .moved_from(Some("1"))
            .moved_from(Some("2"));
        let parsed = AliasHistory::parse(Some(&history.to_description()));
        assert_eq!(parsed.previous, ["2", "1"]);
        assert!(parsed.moved_at.is_some());
        assert_eq!(parsed.rolled_back().previous, ["1"]);
        assert_eq!(
            AliasHistory::parse(Some("made by hand")),
            AliasHistory::default()
        );
    }

    #[test]
    fn long_history_fits_the_description_limit() {
        let mut history = AliasHistory::default();
        for version in 1..200 {
            history = history.moved_from(Some(&version.to_string()));
        }
        let description = history.to_description();
        assert!(description.len() <= MAX_DESCRIPTION);
        assert!(AliasHistory::parse(Some(&description))
            .previous
            .starts_with(&["199".to_owned()]));
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
