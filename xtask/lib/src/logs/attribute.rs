//! Which environment each log line belongs to.
//!
//! Multi-stack: the log group is the environment's own function's, so every line is its.
//!
//! Single-stack: one function, one log group, every environment. A line is attributed by the
//! best evidence there is, in this order:
//! 1. the line names its environment (lambda-stage's framework lines carry `env`);
//! 2. the line belongs to a request (its own `RequestId`, or the request its stream is running
//!    between `START` and `END`) whose framework lines named the environment;
//! 3. its stream's version (`2026/11/29/[7]…`) is served by exactly one environment's alias.
//!
//! Request evidence beats the version because aliases move: a version that served staging an
//! hour ago may serve only prod now. A request's lines wait until the request names its
//! environment or ends; then rule 3 decides. Lines with neither (init lines, a version two
//! environments share, a version no alias serves any more) stay unattributed.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::line::{LineFacts, Mark};

/// One event as CloudWatch Logs returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub id: String,
    pub stream: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub message: String,
}

/// Whose a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Env(String),
    /// The stream's version serves several environments and nothing links the line to one.
    Shared(BTreeSet<String>),
    /// No evidence at all: a version no alias serves, or a stream that names no version.
    Unknown,
}

/// A line and the environment it was attributed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributed {
    pub event: LogEvent,
    pub owner: Owner,
    pub request_id: Option<String>,
}

/// What the aliases say about the log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// Multi-stack: the function serves this environment alone.
    Own(String),
    /// Single-stack: which environments each version serves (primary and canary versions of
    /// each alias), and which environment each alias is (the framework writes the alias).
    Shared {
        versions: BTreeMap<String, BTreeSet<String>>,
        aliases: HashMap<String, String>,
    },
}

impl Routing {
    /// `aliases`: (environment, its alias, the versions it routes to).
    pub fn shared(aliases: Vec<(String, String, Vec<String>)>) -> Routing {
        let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut names = HashMap::new();
        for (env, alias, routed) in aliases {
            for version in routed {
                versions.entry(version).or_default().insert(env.clone());
            }
            names.insert(alias, env);
        }
        Routing::Shared {
            versions,
            aliases: names,
        }
    }

    /// The environment a framework line's `env` (an alias name in single-stack) stands for.
    fn env_named(&self, written: &str) -> String {
        match self {
            Routing::Own(env) => env.clone(),
            Routing::Shared { aliases, .. } => aliases
                .get(written)
                .cloned()
                .unwrap_or_else(|| written.to_owned()),
        }
    }

    /// Rule 3: who runs the stream's version.
    fn owner_of_stream(&self, stream: &str) -> Owner {
        match self {
            Routing::Own(env) => Owner::Env(env.clone()),
            Routing::Shared { versions, .. } => {
                match stream_version(stream).and_then(|v| versions.get(v)) {
                    Some(envs) if envs.len() > 1 => Owner::Shared(envs.clone()),
                    Some(envs) => envs
                        .first()
                        .map_or(Owner::Unknown, |env| Owner::Env(env.clone())),
                    None => Owner::Unknown,
                }
            }
        }
    }
}

/// The version in a Lambda log stream name: `2026/11/29/[7]0123abcd` → `7`,
/// `2026/11/29/[$LATEST]0123abcd` → `$LATEST`.
pub fn stream_version(stream: &str) -> Option<&str> {
    let open = stream.find('[')?;
    let close = open + stream[open..].find(']')?;
    Some(&stream[open + 1..close])
}

/// How many requests' environments are remembered (a `--follow` runs for hours).
const REMEMBERED_REQUESTS: usize = 10_000;

/// Attributes lines fed in stream order; stateful so `--follow` can feed them poll by poll.
pub struct Attributor {
    routing: Routing,
    /// Request id → environment, from the lines that named both.
    request_envs: HashMap<String, String>,
    remembered: VecDeque<String>,
    /// Stream → the request it is running (between `START` and `END`).
    open: HashMap<String, String>,
    /// Lines of requests whose environment is not known yet, in arrival order.
    waiting: Vec<(LogEvent, String)>,
}

impl Attributor {
    pub fn new(routing: Routing) -> Attributor {
        Attributor {
            routing,
            request_envs: HashMap::new(),
            remembered: VecDeque::new(),
            open: HashMap::new(),
            waiting: Vec::new(),
        }
    }

    /// Feeds one line; returns the lines now decided (this one, and any that waited for it).
    pub fn push(&mut self, event: LogEvent) -> Vec<Attributed> {
        let facts = LineFacts::of(&event.message);
        let request = facts
            .request_id
            .clone()
            .or_else(|| self.open.get(&event.stream).cloned());
        match facts.mark {
            Mark::Start => {
                if let Some(id) = &facts.request_id {
                    self.open.insert(event.stream.clone(), id.clone());
                }
            }
            Mark::End => {
                self.open.remove(&event.stream);
            }
            Mark::None => {}
        }
        if let Routing::Own(env) = &self.routing {
            return vec![decided(event, Owner::Env(env.clone()), request)];
        }

        if let Some(written) = &facts.env {
            let env = self.routing.env_named(written);
            let mut out = Vec::new();
            if let Some(id) = &request {
                self.remember(id, &env);
                for (waiting, id) in self.take_waiting(id) {
                    out.push(decided(waiting, Owner::Env(env.clone()), Some(id)));
                }
            }
            out.push(decided(event, Owner::Env(env), request));
            return out;
        }
        let Some(id) = request else {
            let owner = self.routing.owner_of_stream(&event.stream);
            return vec![decided(event, owner, None)];
        };
        if let Some(env) = self.request_envs.get(&id) {
            let owner = Owner::Env(env.clone());
            return vec![decided(event, owner, Some(id))];
        }
        self.waiting.push((event, id.clone()));
        if facts.mark == Mark::End {
            // The request said nothing about its environment: its version decides.
            let lines = self.take_waiting(&id);
            return self.by_version(lines);
        }
        Vec::new()
    }

    /// Decides every waiting line whose timestamp is before `cutoff` (ms) by its version: for
    /// `--follow`, so a request whose `END` never comes is not held forever.
    pub fn flush_before(&mut self, cutoff: i64) -> Vec<Attributed> {
        let (old, young): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(event, _)| event.timestamp < cutoff);
        self.waiting = young;
        self.by_version(old)
    }

    /// Decides every waiting line: the end of a one-shot read.
    pub fn flush(&mut self) -> Vec<Attributed> {
        self.flush_before(i64::MAX)
    }

    fn remember(&mut self, id: &str, env: &str) {
        if self
            .request_envs
            .insert(id.to_owned(), env.to_owned())
            .is_none()
        {
            self.remembered.push_back(id.to_owned());
            if self.remembered.len() > REMEMBERED_REQUESTS {
                if let Some(oldest) = self.remembered.pop_front() {
                    self.request_envs.remove(&oldest);
                }
            }
        }
    }

    /// Removes the waiting lines of request `id`, in arrival order.
    fn take_waiting(&mut self, id: &str) -> Vec<(LogEvent, String)> {
        let (mine, others) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, waiting_for)| waiting_for == id);
        self.waiting = others;
        mine
    }

    /// Rule 3 for lines whose request named no environment.
    fn by_version(&self, lines: Vec<(LogEvent, String)>) -> Vec<Attributed> {
        lines
            .into_iter()
            .map(|(event, id)| {
                let owner = self.routing.owner_of_stream(&event.stream);
                decided(event, owner, Some(id))
            })
            .collect()
    }
}

fn decided(event: LogEvent, owner: Owner, request_id: Option<String>) -> Attributed {
    Attributed {
        event,
        owner,
        request_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stream: &str, timestamp: i64, message: &str) -> LogEvent {
        LogEvent {
            id: format!("{stream}/{timestamp}"),
            stream: stream.to_owned(),
            timestamp,
            message: format!("{message}\n"),
        }
    }

    fn framework(request: &str, alias: &str, text: &str) -> String {
        format!(
            r#" INFO Lambda runtime invoke{{requestId="{request}"}}:invocation{{env={alias}}}: {text}"#
        )
    }

    fn routing(aliases: &[(&str, &str, &[&str])]) -> Routing {
        Routing::shared(
            aliases
                .iter()
                .map(|(env, alias, versions)| {
                    let versions = versions.iter().map(|v| (*v).to_owned()).collect();
                    ((*env).to_owned(), (*alias).to_owned(), versions)
                })
                .collect(),
        )
    }

    /// Feeds every event, flushes, and returns (message, owner) in the order decided.
    fn attribute(routing: Routing, events: Vec<LogEvent>) -> Vec<(String, Owner)> {
        let mut attributor = Attributor::new(routing);
        let mut out: Vec<Attributed> = events
            .into_iter()
            .flat_map(|e| attributor.push(e))
            .collect();
        out.extend(attributor.flush());
        out.into_iter()
            .map(|a| (a.event.message.trim_end().to_owned(), a.owner))
            .collect()
    }

    fn env(name: &str) -> Owner {
        Owner::Env(name.to_owned())
    }

    fn shared(names: &[&str]) -> Owner {
        Owner::Shared(names.iter().map(|n| (*n).to_owned()).collect())
    }

    const V7: &str = "2026/11/29/[7]0123abcd";
    const V6: &str = "2026/11/29/[6]4567ef01";

    #[test]
    fn stream_names_carry_the_version() {
        assert_eq!(stream_version(V7), Some("7"));
        assert_eq!(stream_version("2026/11/29/[$LATEST]ab"), Some("$LATEST"));
        assert_eq!(stream_version("my-own-stream"), None);
    }

    #[test]
    fn versions_served_by_one_environment_attribute_every_line_of_their_streams() {
        let routing = routing(&[("staging", "staging", &["7"]), ("prod", "prod", &["6"])]);
        let lines = attribute(
            routing,
            vec![
                event(V7, 1, "INIT_START Runtime Version: provided:al2023"),
                event(V7, 2, "START RequestId: s-1 Version: 7"),
                event(V7, 3, "END RequestId: s-1"),
                event(V6, 4, "START RequestId: p-1 Version: 6"),
                event(V6, 5, "REPORT RequestId: p-1\tDuration: 1 ms"),
                event("2026/11/29/[5]old", 6, "START RequestId: o-1 Version: 5"),
            ],
        );
        assert_eq!(
            lines,
            vec![
                (
                    "INIT_START Runtime Version: provided:al2023".into(),
                    env("staging")
                ),
                ("START RequestId: s-1 Version: 7".into(), env("staging")),
                ("END RequestId: s-1".into(), env("staging")),
                ("START RequestId: p-1 Version: 6".into(), env("prod")),
                ("REPORT RequestId: p-1\tDuration: 1 ms".into(), env("prod")),
                ("START RequestId: o-1 Version: 5".into(), Owner::Unknown),
            ]
        );
    }

    #[test]
    fn a_shared_version_s_lines_follow_their_request_s_framework_line() {
        let routing = routing(&[("staging", "staging", &["7"]), ("prod", "prod", &["7"])]);
        let s = framework("s-1", "staging", "greeting");
        let p = framework("p-1", "prod", "greeting");
        let lines = attribute(
            routing,
            vec![
                event(V7, 1, "INIT_START Runtime Version: provided:al2023"),
                event(V7, 2, "START RequestId: s-1 Version: 7"),
                event(V7, 3, &s),
                event(V7, 4, "a println inside the request"),
                event(V7, 5, "END RequestId: s-1"),
                event(V7, 6, "REPORT RequestId: s-1\tDuration: 1 ms"),
                event(V7, 7, "START RequestId: p-1 Version: 7"),
                event(V7, 8, &p),
                event(V7, 9, "END RequestId: p-1"),
                event(V7, 10, "START RequestId: q-1 Version: 7"),
                event(V7, 11, "END RequestId: q-1"),
            ],
        );
        assert_eq!(
            lines,
            vec![
                (
                    "INIT_START Runtime Version: provided:al2023".into(),
                    shared(&["prod", "staging"])
                ),
                ("START RequestId: s-1 Version: 7".into(), env("staging")),
                (s.clone(), env("staging")),
                ("a println inside the request".into(), env("staging")),
                ("END RequestId: s-1".into(), env("staging")),
                (
                    "REPORT RequestId: s-1\tDuration: 1 ms".into(),
                    env("staging")
                ),
                ("START RequestId: p-1 Version: 7".into(), env("prod")),
                (p.clone(), env("prod")),
                ("END RequestId: p-1".into(), env("prod")),
                // A request that never logged through the framework: the version is shared.
                (
                    "START RequestId: q-1 Version: 7".into(),
                    shared(&["prod", "staging"])
                ),
                ("END RequestId: q-1".into(), shared(&["prod", "staging"])),
            ]
        );
    }

    #[test]
    fn a_request_s_own_environment_beats_the_version_s_current_owner() {
        // Version 7 served staging when these lines were written; only prod runs it now.
        let routing = routing(&[("staging", "staging", &["8"]), ("prod", "prod", &["7"])]);
        let s = framework("s-1", "staging", "old staging request");
        let lines = attribute(
            routing,
            vec![
                event(V7, 1, "START RequestId: s-1 Version: 7"),
                event(V7, 2, &s),
                event(V7, 3, "END RequestId: s-1"),
            ],
        );
        assert!(
            lines.iter().all(|(_, owner)| *owner == env("staging")),
            "{lines:?}"
        );
    }

    #[test]
    fn framework_lines_name_the_alias_and_a_renamed_alias_maps_back_to_its_environment() {
        let routing = routing(&[
            ("production", "live", &["7"]),
            ("staging", "staging", &["7"]),
        ]);
        let line = framework("p-1", "live", "hi");
        assert_eq!(
            attribute(routing, vec![event(V7, 1, &line)]),
            vec![(line, env("production"))]
        );
    }

    #[test]
    fn lines_wait_for_their_request_s_evidence_and_a_stale_wait_is_decided_by_the_version() {
        let routing = routing(&[("staging", "staging", &["7"]), ("prod", "prod", &["7"])]);
        let mut attributor = Attributor::new(routing);
        assert_eq!(
            attributor.push(event(V7, 1_000, "START RequestId: s-1 Version: 7")),
            vec![]
        );
        let released = attributor.push(event(V7, 1_001, &framework("s-1", "staging", "hi")));
        let owners: Vec<(i64, &Owner)> = released
            .iter()
            .map(|a| (a.event.timestamp, &a.owner))
            .collect();
        assert_eq!(
            owners,
            vec![(1_000, &env("staging")), (1_001, &env("staging"))]
        );
        assert_eq!(released[0].request_id.as_deref(), Some("s-1"));

        // A request whose END has not come (yet): held, until the wait is too old.
        assert_eq!(
            attributor.push(event(V6, 2_000, "START RequestId: x-1 Version: 6")),
            vec![]
        );
        assert_eq!(attributor.flush_before(2_000), vec![]);
        let flushed = attributor.flush_before(2_001);
        assert_eq!(flushed.len(), 1);
        assert_eq!(
            flushed[0].owner,
            Owner::Unknown,
            "no alias serves version 6"
        );
        assert_eq!(attributor.flush(), vec![]);
    }

    #[test]
    fn a_function_of_its_own_environment_owns_every_line() {
        let lines = attribute(
            Routing::Own("prod".into()),
            vec![
                event("any", 1, "INIT_START Runtime Version: x"),
                event(V6, 2, &framework("p-1", "live", "hi")),
            ],
        );
        assert!(
            lines.iter().all(|(_, owner)| *owner == env("prod")),
            "{lines:?}"
        );
    }
}
