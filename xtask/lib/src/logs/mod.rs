//! `cargo xtask logs <FUNCTION> --env <name> [--since 10m] [--follow] [--filter PATTERN] [--json]`:
//! one environment's lines of a function's CloudWatch Logs group, `/aws/lambda/<function-name>`.
//!
//! Single-stack functions serve every environment from one log group; [`attribute`] tells
//! their lines apart. `--follow` polls `FilterLogEvents` as `sam logs --tail` does.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use clap::Args as ClapArgs;

use crate::deploy::aws::{self, EnvClients};
use crate::deploy::{load, runtime, Loaded, ManifestArg};
use crate::manifest::{Manifest, Strategy};

pub mod attribute;
pub mod line;
pub mod output;

use attribute::{Attributed, Attributor, LogEvent, Owner, Routing};

/// How often `--follow` asks for new lines.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// `--follow` re-reads this far behind the newest line it has seen, because CloudWatch may
/// ingest a line after a newer one (each line is printed once: event ids are remembered).
const LATE_ARRIVALS: Duration = Duration::from_secs(10);
/// `--follow` holds a request's lines until the request names its environment or ends; past
/// this, the stream's version decides.
const LONGEST_HOLD: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// The function (a key of `[functions]` in the manifest).
    pub function: String,
    /// The environment whose lines to show.
    #[arg(long)]
    pub env: String,
    /// How far back to start: a number and a unit, `30s`, `10m`, `2h` or `1d`.
    #[arg(long, default_value = "10m", value_parser = parse_since)]
    pub since: Duration,
    /// Keep printing new lines as they arrive (polls every second) until Ctrl-C.
    #[arg(long, short)]
    pub follow: bool,
    /// A CloudWatch Logs filter pattern, passed through: `ERROR`, `"Task timed out"`,
    /// `{ $.level = "ERROR" }` (JSON log format). Only matching lines are read, so in
    /// single-stack a matching platform line is attributed only if its version or its
    /// request's matching lines say whose it is.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// One JSON object per line: timestamp, env, requestId (when known), stream, message.
    #[arg(long)]
    pub json: bool,
    /// Single-stack: also show the lines no environment can be claimed for (init lines of a
    /// version several environments run, a version no alias runs any more), with env `?`.
    #[arg(long)]
    pub unattributed: bool,
    #[command(flatten)]
    pub manifest: ManifestArg,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Loaded { manifest, .. } = load(&args.manifest)?;
    manifest.require_environment(&args.env)?;
    manifest.require_function(&args.function)?;
    runtime()?.block_on(async {
        let clients = aws::connect(&manifest, &args.env).await?;
        let routing = routing(&clients, &manifest, &args.function, &args.env).await?;
        let mut reader = Reader {
            clients: &clients,
            function: &args.function,
            name: manifest.function_name(&args.function, &args.env),
            filter: args.filter.clone(),
            attributor: Attributor::new(routing),
            printer: Printer {
                env: args.env.clone(),
                json: args.json,
                unattributed: args.unattributed,
                printed: 0,
                hidden: 0,
            },
            seen: HashMap::new(),
        };
        let start = now_millis() - millis(args.since);
        let newest = reader.read_from(start).await?;
        if args.follow {
            reader.follow(newest.unwrap_or(start)).await?;
        } else {
            let rest = reader.attributor.flush();
            reader.printer.print(rest);
            reader.printer.summary(&args.since);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// What the aliases say about whose lines the function's log group holds.
async fn routing(
    clients: &EnvClients,
    manifest: &Manifest,
    function: &str,
    env: &str,
) -> anyhow::Result<Routing> {
    let name = manifest.function_name(function, env);
    // A name that changes with the environment is that environment's function alone.
    let per_environment =
        manifest.function_name(function, "a") != manifest.function_name(function, "b");
    if manifest.strategy == Strategy::MultiStack || per_environment {
        return Ok(Routing::Own(env.to_owned()));
    }
    // Every alias of the function, previews included; an alias the manifest does not rename
    // is its environment's name.
    let renamed: HashMap<String, &str> = manifest
        .environments
        .keys()
        .map(String::as_str)
        .chain([env])
        .map(|e| (manifest.alias(e), e))
        .collect();
    let mut aliases = Vec::new();
    let mut pages = clients
        .lambda
        .list_aliases()
        .function_name(&name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(err) if aws::is_not_found(&err) => break,
            Err(err) => bail!(
                "could not list the aliases of `{name}` to tell environments apart: {}",
                aws::describe(&err)
            ),
        };
        for alias in page.aliases() {
            let (Some(alias_name), Some(version)) = (alias.name(), alias.function_version()) else {
                continue;
            };
            let canaries = alias
                .routing_config()
                .and_then(|routing| routing.additional_version_weights())
                .into_iter()
                .flat_map(|weights| weights.keys().cloned());
            let versions = std::iter::once(version.to_owned())
                .chain(canaries)
                .collect();
            let alias_env = renamed.get(alias_name).map_or(alias_name, |e| e);
            aliases.push((alias_env.to_owned(), alias_name.to_owned(), versions));
        }
    }
    if !aliases.iter().any(|(alias_env, ..)| alias_env == env) {
        eprintln!(
            "note: `{name}` has no alias `{}` (is `{function}` deployed to `{env}`? \
             `cargo xtask status --env {env}`): only lines whose request names `{env}` can be \
             shown.",
            manifest.alias(env)
        );
    }
    Ok(Routing::shared(aliases))
}

/// Reads the log group, attributes its lines and prints the environment's.
struct Reader<'a> {
    clients: &'a EnvClients,
    function: &'a str,
    /// The Lambda function's name in this environment.
    name: String,
    filter: Option<String>,
    attributor: Attributor,
    printer: Printer,
    /// Event id → timestamp of the lines already read (re-reads overlap).
    seen: HashMap<String, i64>,
}

impl Reader<'_> {
    /// Reads every line from `start` (ms) on, page by page; returns the newest timestamp.
    async fn read_from(&mut self, start: i64) -> anyhow::Result<Option<i64>> {
        let group = format!("/aws/lambda/{}", self.name);
        let mut pages = self
            .clients
            .logs
            .filter_log_events()
            .log_group_name(&group)
            .start_time(start)
            .set_filter_pattern(self.filter.clone())
            .into_paginator()
            .send();
        let mut newest = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| self.read_error(&group, &err))?;
            let mut events: Vec<LogEvent> = page
                .events()
                .iter()
                .map(|e| LogEvent {
                    id: e.event_id().unwrap_or_default().to_owned(),
                    stream: e.log_stream_name().unwrap_or_default().to_owned(),
                    timestamp: e.timestamp().unwrap_or_default(),
                    message: e.message().unwrap_or_default().to_owned(),
                })
                .filter(|e| self.seen.insert(e.id.clone(), e.timestamp).is_none())
                .collect();
            events.sort_by_key(|e| e.timestamp);
            newest = events.iter().map(|e| e.timestamp).chain(newest).max();
            let decided = events
                .into_iter()
                .flat_map(|e| self.attributor.push(e))
                .collect();
            self.printer.print(decided);
        }
        Ok(newest)
    }

    /// Polls for new lines until Ctrl-C.
    async fn follow(&mut self, mut newest: i64) -> anyhow::Result<()> {
        // One listener for the whole run: a Ctrl-C during a read is not lost.
        let stop = tokio::signal::ctrl_c();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return Ok(()),
                polled = self.poll(newest) => newest = polled?,
            }
        }
    }

    /// Waits [`POLL_EVERY`], reads what is new since `newest`, and decides the lines held too
    /// long; returns the new newest timestamp.
    async fn poll(&mut self, newest: i64) -> anyhow::Result<i64> {
        tokio::time::sleep(POLL_EVERY).await;
        let from = newest - millis(LATE_ARRIVALS);
        let latest = self.read_from(from).await?;
        self.seen.retain(|_, timestamp| *timestamp >= from);
        let stale = self
            .attributor
            .flush_before(now_millis() - millis(LONGEST_HOLD));
        self.printer.print(stale);
        Ok(latest.map_or(newest, |latest| latest.max(newest)))
    }

    fn read_error<E, R>(&self, group: &str, err: &SdkError<E, R>) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let (env, region, account) = (
            &self.clients.env,
            &self.clients.region,
            &self.clients.account,
        );
        if aws::is_not_found(err) {
            return anyhow::anyhow!(
                "`{}` has not logged in `{env}` yet: its log group `{group}` does not exist in \
                 {region} (account {account}). Lambda creates it at the function's first \
                 invocation: invoke it, or check that it is deployed with \
                 `cargo xtask status --env {env}`.",
                self.function
            );
        }
        let hint = if self.filter.is_some()
            && aws::error_code(err) == Some("InvalidParameterException")
        {
            " If the filter pattern is the problem, see CloudWatch Logs' filter pattern syntax \
             (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html)."
        } else {
            ""
        };
        anyhow::anyhow!(
            "could not read log group `{group}` ({region}, account {account}): {}.{hint}",
            aws::describe(err)
        )
    }
}

/// Prints the lines of one environment.
struct Printer {
    env: String,
    json: bool,
    unattributed: bool,
    printed: usize,
    /// Lines that may be the environment's but could not be attributed (not printed).
    hidden: usize,
}

impl Printer {
    fn print(&mut self, mut lines: Vec<Attributed>) {
        // Stable: lines of one timestamp keep the order they were decided in.
        lines.sort_by_key(|line| line.event.timestamp);
        for line in lines {
            let shown = match &line.owner {
                Owner::Env(env) => *env == self.env,
                Owner::Shared(envs) if !envs.contains(&self.env) => false,
                // May be this environment's line: nothing says whose it is.
                Owner::Shared(_) | Owner::Unknown => {
                    self.hidden += usize::from(!self.unattributed);
                    self.unattributed
                }
            };
            if shown {
                println!("{}", output::render(&line, self.json));
                self.printed += 1;
            }
        }
    }

    /// After a one-shot read: say why nothing, or not everything, was printed.
    fn summary(&self, since: &Duration) {
        if self.printed == 0 {
            eprintln!(
                "note: no log lines of `{}` in the last {}.",
                self.env,
                humanize(*since)
            );
        }
        if self.hidden > 0 {
            eprintln!(
                "note: {} line(s) could not be attributed to an environment (init lines, or \
                 requests that wrote no lambda-stage line, of a version several environments \
                 run or no alias runs any more); `--unattributed` shows them.",
                self.hidden
            );
        }
    }
}

/// `30s`, `10m`, `2h`, `1d`.
fn parse_since(text: &str) -> Result<Duration, String> {
    let invalid = || format!("`{text}`: expected a number and a unit, like 30s, 10m, 2h or 1d");
    let unit_at = text
        .len()
        .checked_sub(1)
        .filter(|&i| text.is_char_boundary(i));
    let Some(unit_at) = unit_at else {
        return Err(invalid());
    };
    let count: u64 = text[..unit_at].parse().map_err(|_| invalid())?;
    let unit = match &text[unit_at..] {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    if count == 0 {
        return Err(invalid());
    }
    Ok(Duration::from_secs(count.saturating_mul(unit)))
}

fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_number_and_a_unit() {
        assert_eq!(parse_since("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_since("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_since("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_since("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "m", "10", "10x", "0m", "-1m", "1.5h", "10 m", "1é"] {
            let err = parse_since(bad).unwrap_err();
            assert!(err.contains("30s, 10m, 2h or 1d"), "{bad}: {err}");
        }
        assert_eq!(humanize(Duration::from_secs(600)), "10m");
        assert_eq!(humanize(Duration::from_secs(90)), "90s");
    }
}
