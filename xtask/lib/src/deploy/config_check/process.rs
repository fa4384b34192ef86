//! Runs one binary in the framework's check mode and reads its verdict: a Runtime API that
//! never answers catches a runtime that skipped the check, a time limit catches one that hangs,
//! and the framework's JSON report among its stdout lines is the verdict.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use super::CHECK_VAR;

/// The key of the framework's JSON report (`lambda_stage::check::REPORT_KEY`).
const REPORT_KEY: &str = lambda_stage_names::variables::CHECK_REPORT_KEY;
/// A check loads config and exits at once: a binary still running after this is stuck.
const TIME_LIMIT: Duration = Duration::from_secs(30);
/// Lines of a binary's own output shown when it ended without a report.
const OUTPUT_TAIL_LINES: usize = 12;

/// What the check of one function found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Valid {
        environments: Vec<String>,
    },
    Invalid {
        message: String,
        secrets_feature: bool,
    },
    /// The binary went to the Runtime API without checking anything.
    NotLambdaStage,
    /// It exited or hung without a report.
    NoReport {
        why: String,
        output: String,
    },
}

/// Runs `binary` in check mode with exactly `variables` (plus a Runtime API that never
/// answers) and reads its verdict.
pub(super) fn run(binary: &Path, variables: Vec<(String, String)>) -> anyhow::Result<Verdict> {
    let runtime_api = TcpListener::bind("127.0.0.1:0").context("could not listen on 127.0.0.1")?;
    runtime_api.set_nonblocking(true)?;
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(variables)
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            runtime_api.local_addr()?.to_string(),
        )
        .env(CHECK_VAR, "1")
        .current_dir(binary.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(&mut command, binary)?;
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let ended = wait(&mut child, &runtime_api)?;
    let until = Instant::now() + Duration::from_secs(2);
    let stdout = collected(&stdout, until);
    let stderr = collected(&stderr, until);
    Ok(match (ended, report(&stdout)) {
        (Ended::ReachedRuntimeApi, _) => Verdict::NotLambdaStage,
        (_, Some(verdict)) => verdict,
        (Ended::Exited(status), None) => Verdict::NoReport {
            why: format!("exited ({status})"),
            output: tail(&stderr, &stdout),
        },
        (Ended::TimedOut, None) => Verdict::NoReport {
            why: format!("was still running after {} s", TIME_LIMIT.as_secs()),
            output: tail(&stderr, &stdout),
        },
    })
}

/// Starts `command`, retrying while the binary is busy: a file just written may still be open
/// in a child another thread forked meanwhile (`ETXTBSY`).
fn spawn(command: &mut Command, binary: &Path) -> anyhow::Result<Child> {
    const ETXTBSY: i32 = 26;
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(err) if err.raw_os_error() == Some(ETXTBSY) && attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other.with_context(|| format!("could not run {}", binary.display())),
        }
    }
}

/// Reads a pipe to its end on a thread of its own, so neither pipe can fill up and stall the
/// binary.
fn read_in_background(pipe: Option<impl std::io::Read + Send + 'static>) -> Receiver<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = sender.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receiver
}

/// What a pipe carried, once the binary has ended. A process it started may still hold the
/// pipe open: its output is not waited for past `until`.
fn collected(pipe: &Receiver<String>, until: Instant) -> String {
    pipe.recv_timeout(until.saturating_duration_since(Instant::now()))
        .unwrap_or_default()
}

enum Ended {
    Exited(ExitStatus),
    ReachedRuntimeApi,
    TimedOut,
}

fn wait(child: &mut Child, runtime_api: &TcpListener) -> anyhow::Result<Ended> {
    let deadline = Instant::now() + TIME_LIMIT;
    let ended = loop {
        // A connection is a runtime asking for its first event: the check was skipped.
        if runtime_api.accept().is_ok() {
            break Ended::ReachedRuntimeApi;
        }
        if let Some(status) = child.try_wait()? {
            return Ok(match runtime_api.accept() {
                Ok(_) => Ended::ReachedRuntimeApi,
                Err(_) => Ended::Exited(status),
            });
        }
        if Instant::now() >= deadline {
            break Ended::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = child.kill();
    let _ = child.wait();
    Ok(ended)
}

/// The framework's report among the binary's stdout lines.
fn report(stdout: &str) -> Option<Verdict> {
    let report = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find_map(|value| value.get(REPORT_KEY).cloned())?;
    let secrets_feature = report["secretsFeature"].as_bool().unwrap_or(false);
    if report["ok"].as_bool() == Some(true) {
        let environments = report["environments"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        return Some(Verdict::Valid { environments });
    }
    Some(Verdict::Invalid {
        message: report["message"]
            .as_str()
            .unwrap_or("the config check failed without a message")
            .to_owned(),
        secrets_feature,
    })
}

/// The last lines the binary wrote, indented.
fn tail(stderr: &str, stdout: &str) -> String {
    let lines: Vec<&str> = stderr.lines().chain(stdout.lines()).collect();
    let start = lines.len().saturating_sub(OUTPUT_TAIL_LINES);
    if lines.is_empty() {
        return "  (nothing)".to_owned();
    }
    lines[start..]
        .iter()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_frameworks_report_among_other_lines() {
        let ok = "hello from main\n{\"lambdaStageCheck\":{\"ok\":true,\"environments\":[\"dev\",\"prod\"],\"secretsFeature\":true}}\n";
        assert_eq!(
            report(ok),
            Some(Verdict::Valid {
                environments: vec!["dev".into(), "prod".into()]
            })
        );
        let failed = "{\"lambdaStageCheck\":{\"ok\":false,\"environments\":[\"prod\"],\"secretsFeature\":false,\"errorType\":\"LambdaStage.ConfigError\",\"message\":\"invalid configuration for environment `prod`:\\n  APP_PROD__KEY: missing\"}}";
        assert_eq!(
            report(failed),
            Some(Verdict::Invalid {
                message: "invalid configuration for environment `prod`:\n  APP_PROD__KEY: missing"
                    .into(),
                secrets_feature: false
            })
        );
        assert_eq!(report("{\"other\":1}\nplain text"), None);
    }

    #[test]
    fn a_binary_that_goes_straight_to_the_runtime_api_was_not_checked() {
        // `sh` stands in for a runtime: it connects to the Runtime API and waits for an event.
        let script =
            "exec 3<>/dev/tcp/${AWS_LAMBDA_RUNTIME_API%:*}/${AWS_LAMBDA_RUNTIME_API#*:}; sleep 30";
        let verdict = run_script(script);
        assert_eq!(verdict, Verdict::NotLambdaStage);
    }

    #[test]
    fn a_binary_that_dies_without_a_report_is_named_with_its_last_output() {
        let verdict = run_script("echo \"reading $APP_MODE\" >&2; exit 3");
        match verdict {
            Verdict::NoReport { why, output } => {
                assert!(why.contains("exit status: 3"), "{why}");
                assert!(output.contains("reading debug"), "{output}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Runs `bash -c <script>` through [`run`], with `APP_MODE=debug`.
    fn run_script(script: &str) -> Verdict {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootstrap");
        std::fs::write(&path, format!("#!/bin/bash\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let variables = vec![
            ("APP_MODE".to_owned(), "debug".to_owned()),
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
        ];
        run(&path, variables).unwrap()
    }
}
