//! A stock `lambda_runtime` function (no lambda-stage) that misbehaves on request, to prove the
//! emulator reproduces Lambda's semantics.
//!
//! Init, chosen by `APP_CHAOS_INIT`: `exit` exits with status 4 before asking for an event;
//! `report` posts `{"errorType":"Chaos.InitFailed",…}` to `/runtime/init/error`, then exits 1.
//!
//! Invocation, chosen by the event's one key:
//! `{"sleep_ms": N}` sleeps then answers `{"slept_ms": N, "pid": …}`;
//! `{"panic": "msg"}` panics; `{"exit": N}` exits with status N; `{"error": "msg"}` returns an
//! error; `{"huge": N}` answers a JSON string of N bytes; `{"answer_twice": true}` posts
//! `{"answer":"first"}` by hand, then returns `{"answer":"second"}` through lambda_runtime
//! (which the Runtime API must refuse); `{"echo": …}` (or anything else) answers
//! `{"event", "context", "env", "pid"}`: what the function received from the Runtime API.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return Ok(
            json!({"slept_ms": ms, "pid": std::process::id(), "request_id": context.request_id}),
        );
    }
    if let Some(message) = payload.get("panic").and_then(Value::as_str) {
        panic!("{message}");
    }
    if let Some(code) = payload.get("exit").and_then(Value::as_i64) {
        std::process::exit(code as i32);
    }
    if let Some(message) = payload.get("error").and_then(Value::as_str) {
        return Err(message.into());
    }
    if payload.get("answer_twice").is_some() {
        let path = format!(
            "/2018-06-01/runtime/invocation/{}/response",
            context.request_id
        );
        post(&path, "", r#"{"answer":"first"}"#)?;
        return Ok(json!({"answer": "second"}));
    }
    if let Some(size) = payload.get("huge").and_then(Value::as_u64) {
        return Ok(Value::String("x".repeat(size as usize)));
    }
    // Lossy: a variable that is not UTF-8 must not panic the probe that reports it.
    let env: serde_json::Map<String, Value> = std::env::vars_os()
        .map(|(key, value)| {
            (
                key.to_string_lossy().into_owned(),
                Value::String(value.to_string_lossy().into_owned()),
            )
        })
        .collect();
    Ok(json!({
        "event": payload,
        "context": context,
        "env": env,
        "pid": std::process::id(),
    }))
}

/// Posts to the Runtime API with a raw HTTP/1.1 request (no client library needed); returns
/// the response's status line.
fn post(path: &str, extra_headers: &str, body: &str) -> std::io::Result<String> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(std::io::Error::other)?;
    let mut stream = TcpStream::connect(&api)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {api}\r\n{extra_headers}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.lines().next().unwrap_or_default().to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    match std::env::var("APP_CHAOS_INIT").as_deref() {
        Ok("exit") => {
            eprintln!("chaos: exiting during init");
            std::process::exit(4);
        }
        Ok("report") => {
            // Stock lambda_runtime reports init errors only for SnapStart; do it by hand.
            post(
                "/2018-06-01/runtime/init/error",
                "Lambda-Runtime-Function-Error-Type: Chaos.InitFailed\r\n",
                r#"{"errorType":"Chaos.InitFailed","errorMessage":"chaos: configuration is missing"}"#,
            )?;
            std::process::exit(1);
        }
        _ => {}
    }
    lambda_runtime::run(service_fn(handle)).await
}
