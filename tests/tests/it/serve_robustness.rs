//! `cargo xtask serve` under load and when it stops: the real CLI serves the chaos function
//! (`tests/functions/chaos`, copied into a throwaway workspace whose manifest sets its timeout).
//!
//! - A bounded soak: 8 keep-alive clients send a mix of small events, 2–6 MB events, oversize
//!   events, handler errors, timeouts and crashes; every request gets exactly one answer, in the
//!   shape Lambda's Invoke API gives it, and no connection is dropped.
//! - SIGTERM and SIGINT: no new connections, the invocation in flight is answered, one still
//!   running after the bound is answered with an error and named, exit 143 / 130.
//! - A shell variable that is not UTF-8 is refused by name at start, never shown.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use lambda_stage_tests::bins::workspace_root;
use lambda_stage_tests::scratch::Scratch;
use lambda_stage_tests::serve_cli::ServeCli;
use serde_json::{json, Value};

const CHAOS_TOML: &str = r#"[package]
name = "chaos-fn"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
lambda_runtime = "1.5"
serde_json.workspace = true
tokio = { workspace = true, features = ["time"] }
"#;

/// A workspace whose one function, `chaos`, is the chaos function with `timeout` seconds.
fn chaos_workspace(timeout: u32) -> Scratch {
    let scratch = Scratch::new(&["chaos"]).unwrap();
    let source =
        std::fs::read_to_string(workspace_root().join("tests/functions/chaos/src/main.rs"))
            .unwrap();
    scratch.write("chaos/Cargo.toml", CHAOS_TOML).unwrap();
    scratch.write("chaos/src/main.rs", &source).unwrap();
    scratch
        .write(
            "lambda-stage.toml",
            &format!(
                "app = \"soak\"\n[functions.chaos]\npackage = \"chaos-fn\"\ntimeout = {timeout}\n[environments.dev]\n"
            ),
        )
        .unwrap();
    scratch
}

const INVOKE_PATH: &str = "/2015-03-31/functions/chaos/invocations";

fn addr(serve: &ServeCli) -> SocketAddr {
    serve
        .url()
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap()
}

/// One keep-alive HTTP/1.1 connection to the server.
async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// An answer as the client saw it.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }
}

/// Sends one Invoke API request on `sender`'s connection.
async fn invoke(sender: &mut SendRequest<Full<Bytes>>, event: Vec<u8>) -> hyper::Result<Answer> {
    sender.ready().await?;
    let request = http::Request::post(INVOKE_PATH)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(event)))
        .unwrap();
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes().to_vec();
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// What a soak request asks of the function, and so which answer it must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A small event the function answers.
    Small,
    /// An event of 2–6 MB the function answers (over axum's 2 MiB default, under Lambda's 6 MB).
    Large,
    /// An event over Lambda's 6 MB: `413 RequestTooLargeException`, the function never sees it.
    Oversize,
    /// The handler returns an error.
    HandlerError,
    /// The handler sleeps past the function's 1 s timeout.
    Timeout,
    /// The process exits mid-invocation.
    Crash,
}

/// How many times each client sends [`MIX`].
const ROUNDS: usize = 2;

/// One client's requests per round: 30, in an order of its own (rotated by `client`).
const MIX: [Kind; 30] = {
    use Kind::*;
    [
        Small,
        Large,
        Small,
        HandlerError,
        Small,
        Crash,
        Oversize,
        Small,
        Timeout,
        Small,
        HandlerError,
        Small,
        Large,
        Crash,
        Small,
        Small,
        HandlerError,
        Oversize,
        Small,
        Crash,
        Small,
        Large,
        Small,
        HandlerError,
        Timeout,
        Small,
        Crash,
        Small,
        Small,
        Crash,
    ]
};

/// The event for request `n` of kind `kind`.
fn event(kind: Kind, n: usize) -> Vec<u8> {
    let padded = |size: usize| {
        let pad = "x".repeat(size - r#"{"sleep_ms":0,"pad":""}"#.len());
        let event = format!(r#"{{"sleep_ms":0,"pad":"{pad}"}}"#).into_bytes();
        assert_eq!(event.len(), size);
        event
    };
    match kind {
        Kind::Small => json!({ "sleep_ms": n % 20 }).to_string().into_bytes(),
        Kind::Large => padded(2_000_000 + (n * 1_337_017) % 4_000_001),
        Kind::Oversize => padded(6_400_000 + (n * 977_371) % 2_600_000),
        Kind::HandlerError => json!({ "error": format!("boom {n}") })
            .to_string()
            .into_bytes(),
        Kind::Timeout => json!({ "sleep_ms": 1_500 }).to_string().into_bytes(),
        Kind::Crash => json!({ "exit": 3 }).to_string().into_bytes(),
    }
}

/// Which kind of answer `answer` is, if it is one Lambda's Invoke API gives: a response, a
/// function error (HTTP 200, `X-Amz-Function-Error: Unhandled`, the error JSON) of a known type,
/// or `RequestTooLargeException` (HTTP 413, JSON, `X-Amzn-ErrorType`). `n` numbers the request.
fn classify(answer: &Answer, n: usize) -> Result<Kind, String> {
    let describe = || {
        format!(
            "{} {:?} {}",
            answer.status,
            answer.headers,
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
        )
    };
    if answer.status == 413 {
        let body = answer.json();
        return (answer.header("x-amzn-errortype") == Some("RequestTooLargeException")
            && answer.header("content-type") == Some("application/json")
            && body["Type"] == "User"
            && body["message"]
                .as_str()
                .is_some_and(|m| m.contains("6291456")))
        .then_some(Kind::Oversize)
        .ok_or_else(describe);
    }
    if answer.status != 200
        || answer.header("content-type") != Some("application/json")
        || answer.header("x-amz-executed-version") != Some("$LATEST")
        || answer.header("x-amzn-requestid").is_none()
    {
        return Err(describe());
    }
    let body = answer.json();
    if answer.header("x-amz-function-error").is_none() {
        // Small and large events both answer `{"slept_ms": …}`; the caller knows which it sent.
        return match body["slept_ms"].is_u64() {
            true => Ok(Kind::Small),
            false => Err(describe()),
        };
    }
    if answer.header("x-amz-function-error") != Some("Unhandled") {
        return Err(describe());
    }
    match body["errorType"].as_str() {
        Some("Sandbox.Timedout") => Ok(Kind::Timeout),
        Some("Runtime.ExitError") => Ok(Kind::Crash),
        Some(_) if body["errorMessage"] == format!("boom {n}") => Ok(Kind::HandlerError),
        _ => Err(describe()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn soak_every_request_from_eight_keep_alive_clients_gets_exactly_one_lambda_answer() {
    const CLIENTS: usize = 8;
    let scratch = chaos_workspace(1);
    let mut serve = ServeCli::start(&scratch, &[], &[]);
    let addr = addr(&serve);
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            tokio::spawn(async move {
                let mut sender = connect(addr).await;
                let mut sent = BTreeMap::<Kind, usize>::new();
                let mut answered = BTreeMap::<Kind, usize>::new();
                let mut wrong = Vec::new();
                for j in 0..ROUNDS * MIX.len() {
                    let kind = MIX[(j + 7 * client) % MIX.len()];
                    let n = client * ROUNDS * MIX.len() + j;
                    *sent.entry(kind).or_default() += 1;
                    // On one keep-alive connection for the whole run: an error here is a lost
                    // request (the connection closed or garbled under it), and the soak fails.
                    let answer = invoke(&mut sender, event(kind, n))
                        .await
                        .unwrap_or_else(|err| panic!("request {n} ({kind:?}) lost: {err}"));
                    match classify(&answer, n) {
                        // A large event's answer looks like a small one's.
                        Ok(Kind::Small) if kind == Kind::Large => {
                            *answered.entry(Kind::Large).or_default() += 1
                        }
                        Ok(got) if got == kind => *answered.entry(got).or_default() += 1,
                        Ok(got) => wrong.push(format!("request {n}: sent {kind:?}, got {got:?}")),
                        Err(answer) => wrong.push(format!("request {n} ({kind:?}): {answer}")),
                    }
                }
                (sent, answered, wrong)
            })
        })
        .collect();
    let mut sent = BTreeMap::<Kind, usize>::new();
    let mut answered = BTreeMap::<Kind, usize>::new();
    let mut wrong = Vec::new();
    for client in clients {
        let (client_sent, client_answered, client_wrong) = client.await.unwrap();
        for (kind, count) in client_sent {
            *sent.entry(kind).or_default() += count;
        }
        for (kind, count) in client_answered {
            *answered.entry(kind).or_default() += count;
        }
        wrong.extend(client_wrong);
    }
    let total: usize = sent.values().sum();
    let total_answered: usize = answered.values().sum();
    // Straight to stderr, not through the test harness's capture: the counts show in every run.
    writeln!(
        std::io::stderr(),
        "soak: {total} requests from {CLIENTS} keep-alive clients in {:.1} s; sent {sent:?}; \
         answered as sent {answered:?}; wrong answers {}",
        started.elapsed().as_secs_f64(),
        wrong.len()
    )
    .unwrap();
    assert!(wrong.is_empty(), "{wrong:#?}\nstderr:\n{}", serve.stderr());
    assert_eq!(answered, sent);
    assert_eq!(total_answered, CLIENTS * ROUNDS * MIX.len());
    assert!(serve.is_running(), "{}", serve.stderr());
}

/// Starts an invocation of the chaos function with `event` on a connection of its own.
fn invoke_in_background(
    addr: SocketAddr,
    event: Value,
) -> tokio::task::JoinHandle<hyper::Result<Answer>> {
    tokio::spawn(async move {
        let mut sender = connect(addr).await;
        invoke(&mut sender, event.to_string().into_bytes()).await
    })
}

/// Sends `signal` (`-TERM`, `-INT`) to `target` (a pid, or `-<pgid>` for a process group).
fn kill(signal: &str, target: &str) {
    let status = Command::new("kill")
        .args([signal, "--", target])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {target}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_answers_the_invocation_in_flight_refuses_new_connections_and_exits_143() {
    let scratch = chaos_workspace(10);
    let mut serve = ServeCli::start(&scratch, &[], &[]);
    let addr = addr(&serve);
    let in_flight = invoke_in_background(addr, json!({ "sleep_ms": 2_000 }));
    serve.wait_for_stderr("START RequestId", Duration::from_secs(30));

    kill("-TERM", &serve.pid().to_string());
    serve.wait_for_stderr("serve: SIGTERM", Duration::from_secs(5));
    // The port closes as the server task sees the stop: a connection is refused within moments.
    let asked = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "new connections still accepted 2 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let answer = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(answer.status, 200, "{}", serve.stderr());
    assert_eq!(answer.header("x-amz-function-error"), None);
    assert_eq!(answer.json()["slept_ms"], 2_000);

    let status = serve.wait_for_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(143), "{}", serve.stderr());
    serve.wait_for_stderr("serve: stopped (SIGTERM)", Duration::from_secs(5));
    let stderr = serve.stderr();
    assert!(
        stderr.contains("waiting up to 5 s for 1 request(s) in flight"),
        "{stderr}"
    );
    assert!(
        stderr.contains("every request in flight was answered"),
        "{stderr}"
    );
}

/// A terminal's Ctrl-C signals the whole foreground process group: the server, and (unless they
/// are in groups of their own) the function processes it started.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_answers_what_finishes_in_time_cuts_off_the_rest_with_an_error_and_exits_130() {
    // A 30 s timeout: the wait is capped at 5 s, so a 20 s invocation is cut off.
    let scratch = chaos_workspace(30);
    let mut serve = ServeCli::start(&scratch, &[], &[]);
    let addr = addr(&serve);
    let quick = invoke_in_background(addr, json!({ "sleep_ms": 1_500 }));
    let slow = invoke_in_background(addr, json!({ "sleep_ms": 20_000 }));
    let started = Instant::now();
    while serve.stderr().matches("START RequestId").count() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            serve.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    kill("-INT", &format!("-{}", serve.pid()));
    let answer = quick.await.unwrap().expect("the quick request is answered");
    assert_eq!(answer.status, 200, "{}", serve.stderr());
    assert_eq!(
        answer.header("x-amz-function-error"),
        None,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["slept_ms"], 1_500);

    let answer = slow
        .await
        .unwrap()
        .expect("the slow request is answered too");
    assert_eq!(answer.status, 500, "{}", serve.stderr());
    assert_eq!(answer.header("x-amzn-errortype"), Some("ServiceException"));
    let message = answer.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("SIGINT") && message.contains("cut off"),
        "{message}"
    );

    let status = serve.wait_for_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{}", serve.stderr());
    serve.wait_for_stderr("serve: stopped (SIGINT)", Duration::from_secs(5));
    let stderr = serve.stderr();
    let waited: f64 = stderr
        .split("cut off 1 request(s) still running after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("says how many were cut off after how long: {stderr}"));
    assert!((5.0..7.0).contains(&waited), "the wait is 5 s: {stderr}");
    assert!(
        stderr.contains(&format!("  POST {INVOKE_PATH} (running for ")),
        "names what was cut off: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_stops_waiting_at_once() {
    let scratch = chaos_workspace(30);
    let mut serve = ServeCli::start(&scratch, &[], &[]);
    let slow = invoke_in_background(addr(&serve), json!({ "sleep_ms": 20_000 }));
    serve.wait_for_stderr("START RequestId", Duration::from_secs(30));

    let pid = serve.pid().to_string();
    kill("-TERM", &pid);
    serve.wait_for_stderr("waiting up to 5 s", Duration::from_secs(5));
    let second = Instant::now();
    kill("-INT", &pid);
    let answer = slow.await.unwrap().expect("the slow request is answered");
    assert_eq!(answer.header("x-amzn-errortype"), Some("ServiceException"));
    let status = serve.wait_for_exit(Duration::from_secs(10));
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "stopped {:?} after the second signal",
        second.elapsed()
    );
    // The exit code is the first signal's.
    assert_eq!(status.code(), Some(143), "{}", serve.stderr());
    serve.wait_for_stderr("serve: stopped (SIGTERM)", Duration::from_secs(5));
    assert!(
        serve
            .stderr()
            .contains("serve: SIGINT: not waiting any longer"),
        "{}",
        serve.stderr()
    );
}

#[test]
fn a_shell_variable_that_is_not_utf8_is_named_at_start_and_its_value_never_shown() {
    use std::os::unix::ffi::OsStrExt as _;
    let scratch = chaos_workspace(3);
    let output = scratch
        .xtask(&["serve", "--port", "0"])
        .unwrap()
        .env(
            "APP_API_KEY",
            std::ffi::OsStr::from_bytes(b"CANARY\xff-secret"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("`APP_API_KEY`: its value is not valid UTF-8"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("CANARY") && !stdout.contains("CANARY"),
        "{stdout}{stderr}"
    );
}
