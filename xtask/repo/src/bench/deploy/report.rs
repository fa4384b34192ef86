//! The deploy benchmark's output: the machine it ran on, then a table per condition.

use std::path::Path;
use std::process::Command;

use lambda_stage_xtask::build::BuildMemo;

use super::{
    CallCounts, Condition, Samples, CALL_LATENCY, CONDITIONS, FUNCTION_COUNTS, PACKAGE, ROUNDS,
    SCENARIOS, SETTLE_TIME, TARGET_RATIO,
};
use crate::bench::median;

/// What the figures depend on besides the code: when, how busy, which commit.
pub struct Machine {
    date: String,
    cores: usize,
    load_average: String,
    commit: String,
}

impl Machine {
    pub fn now(root: &Path) -> Machine {
        Machine {
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"], root)
                .unwrap_or_else(|| "(date unknown)".to_owned()),
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            load_average: std::fs::read_to_string("/proc/loadavg")
                .map(|text| {
                    text.split_whitespace()
                        .take(3)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|_| "(unknown)".to_owned()),
            commit: commit(root),
        }
    }
}

/// The first line `program args` prints, if it runs and succeeds.
fn command_line(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    output
        .status
        .success()
        .then(|| text.lines().next().unwrap_or_default().trim().to_owned())
}

/// `HEAD`'s short hash, `+ uncommitted changes` when tracked files differ from it (what a
/// deploy records, read the same way).
fn commit(root: &Path) -> String {
    let git = BuildMemo::default().git_state(root);
    match git.commit {
        None => "(not a git checkout)".to_owned(),
        Some(hash) if git.dirty => format!("{} + uncommitted changes", &hash[..hash.len().min(7)]),
        Some(hash) => hash[..hash.len().min(7)].to_owned(),
    }
}

/// `settling_answers`: how many of the proxy's answers said `Pending` / `InProgress`.
/// `calls`: AWS calls per deploy under AWS-like timing.
pub fn print(
    before: &Machine,
    after: &Machine,
    samples: &Samples,
    calls: &CallCounts,
    settling_answers: usize,
) {
    println!(
        "cargo xtask bench deploy: {}, {} cores, load average {} at the start, {} at the end; \
         commit {}",
        before.date, before.cores, before.load_average, after.load_average, before.commit
    );
    println!(
        "{PACKAGE} (release, x86_64 musl, built before timing) deployed to a fresh moto by \
         `cargo xtask deploy`; median of {ROUNDS} rounds"
    );
    let [small, large] = FUNCTION_COUNTS;
    for condition in CONDITIONS {
        println!();
        println!("{}", heading(condition));
        println!(
            "  {:<22} {:>9} {:>9} {:>7}   target <= {TARGET_RATIO:.1}",
            "scenario",
            format!("{small} fn"),
            format!("{large} fns"),
            format!("{large}/{small}")
        );
        for scenario in SCENARIOS {
            let one = median(samples[&(condition, small, scenario)].iter().copied());
            let many = median(samples[&(condition, large, scenario)].iter().copied());
            let ratio = many / one;
            let verdict = if ratio <= TARGET_RATIO {
                "met"
            } else {
                "not met"
            };
            println!(
                "  {:<22} {:>7.2} s {:>7.2} s {ratio:>7.2}   {verdict}",
                scenario.label(),
                one,
                many
            );
        }
        for scenario in SCENARIOS {
            println!(
                "    {} samples: {small} fn {} | {large} fns {}",
                scenario.label(),
                seconds(&samples[&(condition, small, scenario)]),
                seconds(&samples[&(condition, large, scenario)])
            );
        }
    }
    for scenario in SCENARIOS {
        println!(
            "    {} AWS calls: {small} fn {} | {large} fns {}",
            scenario.label(),
            calls[&(small, scenario)],
            calls[&(large, scenario)]
        );
    }
    println!(
        "  (the proxy answered {settling_answers} calls with Pending / InProgress, which the \
         deploys waited out)"
    );
}

fn heading(condition: Condition) -> String {
    match condition {
        Condition::PlainMoto => "plain moto (every call answered at once, always Active)".into(),
        Condition::AwsTiming => format!(
            "AWS-like timing (+{} ms per call; Pending / InProgress for {:.1} s after each \
             create or update; updates while busy refused with 409)",
            CALL_LATENCY.as_millis(),
            SETTLE_TIME.as_secs_f64()
        ),
    }
}

fn seconds(samples: &[f64]) -> String {
    samples
        .iter()
        .map(|s| format!("{s:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}
