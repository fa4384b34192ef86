//! `cargo xtask invoke` end to end: the built xtask binary builds the function, runs it on the
//! emulator, prints only the answer's JSON on stdout and exits 0 (response), 1 (function
//! error) or 2 (init error).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use lambda_stage_tests::bins;
use serde_json::{json, Value};

fn xtask() -> PathBuf {
    bins::binary("xtask", "dev").expect("xtask builds")
}

/// Runs `cargo xtask invoke <args>` in the workspace with only `app_vars` as the shell's
/// `APP_*` variables.
fn invoke(args: &[&str], app_vars: &[(&str, &str)], stdin: Option<&str>) -> Output {
    invoke_with(args, app_vars, stdin, |_| {})
}

/// [`invoke`], with `adjust` changing the command (variables that are not UTF-8) before it runs.
fn invoke_with(
    args: &[&str],
    app_vars: &[(&str, &str)],
    stdin: Option<&str>,
    adjust: impl FnOnce(&mut Command),
) -> Output {
    let mut command = Command::new(xtask());
    command
        .current_dir(bins::workspace_root())
        .arg("invoke")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // `vars_os`: a variable of the test's own environment that is not UTF-8 must not panic here.
    for (key, _) in std::env::vars_os().filter(|(key, _)| {
        let key = key.to_string_lossy();
        key.starts_with("APP_") || key.starts_with("AWS_")
    }) {
        command.env_remove(key);
    }
    // A secret reference resolved through the AWS SDK stays on loopback (nothing listens there).
    command.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    command.envs(app_vars.iter().copied());
    adjust(&mut command);
    let mut child = command.spawn().expect("xtask starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().expect("xtask finishes")
}

/// stdout must be exactly one JSON document.
fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not only JSON ({err}):\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_response_is_the_only_thing_on_stdout() {
    let output = invoke(
        &["chaos-fn", "--data", r#"{"echo":"hi"}"#],
        &[("APP_GREETING", "Hi")],
        None,
    );
    assert_exit(&output, 0);
    let echo = stdout_json(&output);
    assert_eq!(echo["event"], json!({"echo": "hi"}));
    assert_eq!(echo["env"]["APP_GREETING"], "Hi");
    assert_eq!(echo["env"]["AWS_LAMBDA_FUNCTION_NAME"], "chaos-fn");
    let arn = echo["context"]["invoked_function_arn"].as_str().unwrap();
    assert!(arn.ends_with(":function:chaos-fn:dev"), "{arn}");
    // Lambda's log lines and the function's own output went to stderr.
    assert!(String::from_utf8_lossy(&output.stderr).contains("REPORT RequestId:"));
}

#[test]
fn the_environment_is_the_invoked_alias() {
    let output = invoke(&["chaos-fn", "--env", "staging"], &[], None);
    assert_exit(&output, 0);
    let echo = stdout_json(&output);
    assert_eq!(echo["event"], json!({}));
    let arn = echo["context"]["invoked_function_arn"].as_str().unwrap();
    assert!(arn.ends_with(":function:chaos-fn:staging"), "{arn}");
}

#[test]
fn events_come_from_the_catalogue_or_stdin() {
    let output = invoke(
        &["chaos-fn", "--event", "sqs", "--body", r#"{"order":7}"#],
        &[],
        None,
    );
    assert_exit(&output, 0);
    let event = &stdout_json(&output)["event"];
    assert_eq!(event["Records"][0]["eventSource"], "aws:sqs");
    assert_eq!(event["Records"][0]["body"], r#"{"order":7}"#);

    let output = invoke(
        &["chaos-fn", "--event", "-"],
        &[],
        Some(r#"{"from":"stdin"}"#),
    );
    assert_exit(&output, 0);
    assert_eq!(stdout_json(&output)["event"], json!({"from": "stdin"}));

    let output = invoke(&["chaos-fn", "--data", "not json"], &[], None);
    assert_exit(&output, 1);
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not valid JSON"));
}

#[test]
fn a_function_error_prints_its_json_and_exits_1() {
    let output = invoke(&["chaos-fn", "--data", r#"{"error":"boom"}"#], &[], None);
    assert_exit(&output, 1);
    assert_eq!(stdout_json(&output)["errorMessage"], "boom");
}

#[test]
fn an_init_error_prints_its_json_and_exits_2() {
    let output = invoke(&["chaos-fn"], &[("APP_CHAOS_INIT", "report")], None);
    assert_exit(&output, 2);
    let error = stdout_json(&output);
    assert_eq!(error["errorType"], "Chaos.InitFailed");
    assert!(String::from_utf8_lossy(&output.stderr).contains("failed to initialise"));
}

#[test]
fn hello_greets_with_the_shells_config_in_the_chosen_environment() {
    let output = invoke(
        &["hello", "--data", r#"{"name":"Ada"}"#],
        &[("APP_GREETING", "Hi"), ("APP_API_KEY", "local-key")],
        None,
    );
    assert_exit(&output, 0);
    assert_eq!(
        stdout_json(&output),
        json!({"message": "Hi, Ada!", "env": "dev"})
    );

    // The manifest's staging greeting, in staging.
    let output = invoke(
        &["hello", "--env", "staging", "--data", r#"{"name":"Ada"}"#],
        &[("APP_API_KEY", "local-key")],
        None,
    );
    assert_exit(&output, 0);
    assert_eq!(
        stdout_json(&output),
        json!({"message": "Hello from staging, Ada!", "env": "staging"})
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("local-key"));

    // Without its key in the shell, dev's reference (`ssm:...`) is resolved on the first
    // invocation, and with no AWS credentials that fails plainly, naming the variable, the
    // reference and what to do — no SDK debug dump.
    let output = invoke(&["hello", "--data", r#"{"name":"Ada"}"#], &[], None);
    assert_exit(&output, 1);
    let error = stdout_json(&output);
    assert_eq!(error["errorType"], "LambdaStage.SecretError", "{error}");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("APP_DEV__API_KEY = ssm:/lambda-stage-demo/dev/hello-api-key"),
        "{message}"
    );
    assert!(message.contains("plain value in your shell"), "{message}");
    assert!(!message.contains("DispatchFailure("), "{message}");
}

#[test]
fn sqs_batch_without_an_event_gets_a_message_from_the_environments_queue() {
    let output = invoke(&["sqs-batch", "--env", "staging"], &[], None);
    assert_exit(&output, 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "note: no --event or --data: sending what `sqs-batch`'s sqs trigger in `staging` \
             sends: an SQS message from \
             arn:aws:sqs:eu-west-1:123456789012:lambda-stage-demo-staging-jobs"
        ),
        "{stderr}"
    );
    // One record whose sample body is not JSON: sqs-batch read an SQS event and reports it.
    let failures = &stdout_json(&output)["batchItemFailures"];
    assert_eq!(failures.as_array().map(Vec::len), Some(1), "{failures}");

    // --body is the message; valid JSON, so nothing to retry.
    let output = invoke(
        &["sqs-batch", "--env", "staging", "--body", r#"{"order":7}"#],
        &[],
        None,
    );
    assert_exit(&output, 0);
    assert_eq!(stdout_json(&output), json!({"batchItemFailures": []}));
}

#[test]
fn a_misspelt_function_gets_the_manifests_list_not_cargos_error() {
    let output = invoke(&["helo"], &[], None);
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no function `helo` in lambda-stage.toml (it has: hello, "),
        "{stderr}"
    );
    assert!(!stderr.contains("cargo build"), "{stderr}");
    assert!(!stderr.contains("running package `helo`"), "{stderr}");

    // `serve` names it the same way, before building anything.
    let output = Command::new(xtask())
        .current_dir(bins::workspace_root())
        .args(["serve", "helo", "--port", "0"])
        .stdin(Stdio::null())
        .output()
        .expect("xtask finishes");
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no function `helo` in lambda-stage.toml (it has: hello, "),
        "{stderr}"
    );
}

#[test]
fn an_invalid_shell_variable_is_named_as_set_and_diagnosed_once_on_stderr() {
    let output = invoke(
        &["hello", "--data", r#"{"name":"Ada"}"#],
        &[("APP_SHOUT", "maybe"), ("APP_API_KEY", "local-key")],
        None,
    );
    assert_exit(&output, 2);
    let error = stdout_json(&output);
    let message = error["errorMessage"].as_str().unwrap();
    // The variable the user set, not `APP_DEV__SHOUT` derived from it.
    assert!(
        message.contains("APP_SHOUT: expected a boolean"),
        "{message}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!message.contains("APP_DEV__SHOUT"), "{message}");
    assert!(!stderr.contains("APP_DEV__SHOUT"), "{stderr}");
    // Once on stdout (the error JSON) and once on stderr (the function's log), not repeated by
    // invoke's own error line.
    assert_eq!(
        stderr
            .matches("invalid configuration for environment `dev`")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("`hello` failed to initialise in `dev`"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_event_is_summed_up_with_the_frameworks_error_type() {
    let output = invoke(
        &["hello", "--event", "sqs"],
        &[("APP_API_KEY", "local-key")],
        None,
    );
    assert_exit(&output, 1);
    assert_eq!(
        stdout_json(&output)["errorType"],
        "LambdaStage.InvalidEvent"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: `hello` answered with a function error (LambdaStage.InvalidEvent): the event is not a valid `hello::Request`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Error Type: LambdaStage.InvalidEvent"),
        "the REPORT line: {stderr}"
    );
}

#[test]
fn a_shell_variable_that_is_not_utf8_is_named_never_shown_and_others_do_not_matter() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;
    let bytes = |bytes: &'static [u8]| OsStr::from_bytes(bytes);

    // The app's variable: refused before anything is built, by name.
    let output = invoke_with(
        &["hello", "--data", r#"{"name":"Ada"}"#],
        &[],
        None,
        |command| {
            command.env("APP_API_KEY", bytes(b"CANARY\xff-secret"));
        },
    );
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`APP_API_KEY`: its value is not valid UTF-8"),
        "{stderr}"
    );
    assert!(stderr.contains("unset"), "says how to fix it: {stderr}");
    assert!(!stderr.contains("CANARY"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("CANARY"));
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Anyone else's variable, and one the emulator passes on to the function, are no obstacle.
    let output = invoke_with(
        &["hello", "--data", r#"{"name":"Ada"}"#],
        &[("APP_API_KEY", "local-key")],
        None,
        |command| {
            command
                .env("LESS_TERMCAP_XX", bytes(b"\xfe\xff"))
                .env("RUST_BACKTRACE", bytes(b"\xfe"));
        },
    );
    assert_exit(&output, 0);
    assert_eq!(
        stdout_json(&output),
        json!({"message": "Hello, Ada!", "env": "dev"})
    );
}

/// A terminal's Ctrl-C goes to the whole foreground group; the function runs in a group of its
/// own, so `invoke` itself must stop it.
#[test]
fn ctrl_c_stops_the_invocation_and_exits_130() {
    use std::io::{BufRead as _, BufReader};
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new(xtask())
        .current_dir(bins::workspace_root())
        .args(["invoke", "chaos-fn", "--data", r#"{"sleep_ms":2500}"#])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xtask starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("START RequestId") {
        assert_ne!(stderr.read_line(&mut seen).unwrap(), 0, "{seen}");
    }
    let group = format!("-{}", child.id());
    assert!(Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap()
        .success());
    let output = child.wait_with_output().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    assert_eq!(output.status.code(), Some(130), "{seen}");
    assert!(
        seen.contains("invoke: interrupted (Ctrl-C): `chaos-fn` was stopped"),
        "{seen}"
    );
    assert!(output.stdout.is_empty(), "no answer on stdout");
}
