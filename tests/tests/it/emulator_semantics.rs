//! The emulator reproduces Lambda's semantics with real bootstrap binaries: `chaos-fn` (a stock
//! lambda_runtime function that misbehaves on request) and `bare-echo`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_stage_emulator::{
    ConfigError, Emulator, FunctionConfig, Invocation, InvokeError, Logs, Outcome,
    MAX_REQUEST_BYTES,
};
use lambda_stage_tests::bins;
use serde_json::{json, Value};

fn chaos_binary() -> PathBuf {
    bins::binary("chaos-fn", "dev").expect("chaos-fn builds")
}

fn chaos(configure: impl FnOnce(&mut FunctionConfig)) -> Emulator {
    let mut config = FunctionConfig::new("chaos", chaos_binary());
    config.logs = Logs::Discard;
    configure(&mut config);
    Emulator::start(config).expect("valid config")
}

async fn invoke(emulator: &Emulator, event: Value) -> Outcome {
    emulator
        .invoke(Invocation::new(event.to_string()))
        .await
        .expect("the invocation reaches the function")
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|err| {
        panic!(
            "not JSON ({err}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        )
    })
}

/// The response's JSON; panics with the failure otherwise.
fn response(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Response(body) => json_of(&body),
        failure => panic!(
            "expected a response, got {failure:?}: {}",
            String::from_utf8_lossy(failure.payload())
        ),
    }
}

async fn pid(emulator: &Emulator) -> u64 {
    response(invoke(emulator, json!({"echo": true})).await)["pid"]
        .as_u64()
        .expect("pid")
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_gets_lambdas_variables_and_every_runtime_api_header() {
    let emulator = chaos(|config| {
        config.name = "orders".into();
        config.region = "eu-west-1".into();
        config.memory_mb = 256;
        config.timeout = Duration::from_secs(5);
        config.env = BTreeMap::from([("APP_COLOUR".into(), "blue".into())]);
    });
    let client_context = json!({
        "client": {"installation_id": "i-1", "app_title": "app", "app_version_name": "1.0",
                   "app_version_code": "1", "app_package_name": "com.example"},
        "custom": {"tenant": "acme"},
        "env": {"platform": "test"}
    });
    let identity =
        json!({"cognitoIdentityId": "eu-west-1:abc", "cognitoIdentityPoolId": "eu-west-1:pool"});
    let before = epoch_ms();
    let outcome = emulator
        .invoke(Invocation {
            qualifier: Some("staging".into()),
            client_context: Some(client_context.to_string()),
            cognito_identity: Some(identity.to_string()),
            request_id: Some("11111111-2222-3333-4444-555555555555".into()),
            ..Invocation::new(json!({"echo": "hi"}).to_string())
        })
        .await
        .unwrap();
    let echo = response(outcome);
    assert_eq!(echo["event"], json!({"echo": "hi"}));

    let context = &echo["context"];
    assert_eq!(
        context["request_id"],
        "11111111-2222-3333-4444-555555555555"
    );
    assert_eq!(
        context["invoked_function_arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:orders:staging"
    );
    let trace = context["xray_trace_id"].as_str().expect("trace id");
    assert!(
        trace.starts_with("Root=1-") && trace.contains(";Parent="),
        "{trace}"
    );
    let deadline = context["deadline"].as_u64().expect("deadline") as u128;
    assert!(
        deadline >= before + 5_000 && deadline <= epoch_ms() + 5_000,
        "deadline {deadline} is not now + 5 s (invoked at {before})"
    );
    assert_eq!(context["client_context"]["custom"]["tenant"], "acme");
    // lambda_runtime parsed the identity header (and serializes it in camelCase).
    assert_eq!(context["identity"]["identityId"], "eu-west-1:abc");
    assert_eq!(context["identity"]["identityPoolId"], "eu-west-1:pool");

    let env = &echo["env"];
    let binary_dir = chaos_binary().parent().unwrap().display().to_string();
    for (name, expected) in [
        ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/orders"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("LAMBDA_TASK_ROOT", binary_dir.as_str()),
        ("_HANDLER", "bootstrap"),
        ("TZ", ":UTC"),
        ("APP_COLOUR", "blue"),
    ] {
        assert_eq!(env[name], expected, "{name}");
    }
    let runtime_api = env["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap();
    assert!(runtime_api.starts_with("127.0.0.1:"), "{runtime_api}");
    let stream = env["AWS_LAMBDA_LOG_STREAM_NAME"].as_str().unwrap();
    assert!(
        stream.contains("/[$LATEST]") && stream.len() > 25,
        "{stream}"
    );
    // Lambda does not set AWS_EXECUTION_ENV for OS-only runtimes, and the host's own
    // variables stay out (only the documented pass-through list gets in).
    assert!(env.get("AWS_EXECUTION_ENV").is_none());
    assert!(env.get("CARGO_MANIFEST_DIR").is_none());
    emulator.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn function_errors_and_panics_come_back_in_lambdas_shape_and_keep_the_process() {
    let emulator = chaos(|_| {});
    let warm = pid(&emulator).await;

    let outcome = invoke(&emulator, json!({"error": "boom"})).await;
    let Outcome::FunctionError {
        error_type,
        payload,
    } = &outcome
    else {
        panic!("expected a function error, got {outcome:?}");
    };
    assert_eq!(outcome.function_error(), Some("Unhandled"));
    let error = json_of(payload);
    assert_eq!(error["errorMessage"], "boom");
    // The type is the one in the error the function posted (lambda_runtime's
    // Lambda-Runtime-Function-Error-Type header says `unhandled` for every error).
    assert_eq!(error_type, error["errorType"].as_str().unwrap(), "{error}");
    assert_ne!(error_type, "unhandled");

    let outcome = invoke(&emulator, json!({"panic": "kaboom"})).await;
    let Outcome::FunctionError { payload, .. } = &outcome else {
        panic!("expected a function error for a panic, got {outcome:?}");
    };
    assert!(
        json_of(payload)["errorMessage"]
            .as_str()
            .unwrap()
            .contains("kaboom"),
        "{}",
        String::from_utf8_lossy(payload)
    );
    assert_eq!(
        pid(&emulator).await,
        warm,
        "a handled error must not restart the process"
    );
    emulator.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_answers_like_lambda_and_the_next_invocation_cold_starts() {
    let emulator = chaos(|config| config.timeout = Duration::from_secs(1));
    let first = pid(&emulator).await;

    let outcome = invoke(&emulator, json!({"sleep_ms": 2500})).await;
    let Outcome::Timeout { timeout, payload } = &outcome else {
        panic!("expected a timeout, got {outcome:?}");
    };
    assert_eq!(*timeout, Duration::from_secs(1));
    let error = json_of(payload);
    assert_eq!(error["errorType"], "Sandbox.Timedout");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.ends_with("Task timed out after 1.00 seconds"),
        "{message}"
    );

    let second = pid(&emulator).await;
    assert_ne!(first, second, "the timed-out process must be replaced");
    // The old process is gone, not left running.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!std::path::Path::new(&format!("/proc/{first}")).exists());
    emulator.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_fails_its_invocation_and_the_next_one_reinitialises() {
    let emulator = chaos(|_| {});
    let first = pid(&emulator).await;

    let outcome = invoke(&emulator, json!({"exit": 3})).await;
    let Outcome::RuntimeExit { status, payload } = &outcome else {
        panic!("expected a runtime exit, got {outcome:?}");
    };
    assert_eq!(status, "exit status 3");
    let error = json_of(payload);
    assert_eq!(error["errorType"], "Runtime.ExitError");
    assert!(error["errorMessage"]
        .as_str()
        .unwrap()
        .ends_with("Runtime exited with error: exit status 3"));

    assert_ne!(pid(&emulator).await, first);
    emulator.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn init_errors_are_surfaced_with_their_type_and_message() {
    let exits = chaos(|config| {
        config.env.insert("APP_CHAOS_INIT".into(), "exit".into());
    });
    let outcome = invoke(&exits, json!({})).await;
    let Outcome::InitError {
        error_type,
        payload,
    } = &outcome
    else {
        panic!("expected an init error, got {outcome:?}");
    };
    assert_eq!(error_type, "Runtime.ExitError");
    assert!(json_of(payload)["errorMessage"]
        .as_str()
        .unwrap()
        .ends_with("exit status 4"));
    // Not swallowed on later attempts either: each invocation retries the init.
    assert!(matches!(
        invoke(&exits, json!({})).await,
        Outcome::InitError { .. }
    ));

    let reports = chaos(|config| {
        config.env.insert("APP_CHAOS_INIT".into(), "report".into());
    });
    let outcome = invoke(&reports, json!({})).await;
    let Outcome::InitError {
        error_type,
        payload,
    } = &outcome
    else {
        panic!("expected an init error, got {outcome:?}");
    };
    assert_eq!(error_type, "Chaos.InitFailed");
    assert_eq!(
        json_of(payload)["errorMessage"],
        "chaos: configuration is missing"
    );

    let missing = Emulator::start(FunctionConfig {
        logs: Logs::Discard,
        ..FunctionConfig::new("ghost", "/nonexistent/bootstrap")
    })
    .unwrap();
    let outcome = invoke(&missing, json!({})).await;
    assert_eq!(outcome.error_type(), Some("Runtime.InvalidEntrypoint"));
    assert!(String::from_utf8_lossy(outcome.payload()).contains("/nonexistent/bootstrap"));
}

#[tokio::test(flavor = "multi_thread")]
async fn payloads_over_six_megabytes_get_lambdas_errors_and_nothing_crashes() {
    let emulator = chaos(|_| {});
    let warm = pid(&emulator).await;

    let too_big = vec![b' '; MAX_REQUEST_BYTES + 1];
    match emulator.invoke(Invocation::new(too_big)).await {
        Err(InvokeError::RequestTooLarge { size }) => assert_eq!(size, MAX_REQUEST_BYTES + 1),
        other => panic!("expected RequestTooLarge, got {other:?}"),
    }

    let outcome = invoke(&emulator, json!({"huge": 7_000_000})).await;
    let Outcome::FunctionError {
        error_type,
        payload,
    } = &outcome
    else {
        panic!("expected a function error, got {outcome:?}");
    };
    assert_eq!(error_type, "Function.ResponseSizeTooLarge");
    assert!(json_of(payload)["errorMessage"]
        .as_str()
        .unwrap()
        .contains("exceeded maximum allowed payload size (6291556 bytes)"));

    let big = response(invoke(&emulator, json!({"huge": 6_000_000})).await);
    assert_eq!(big.as_str().map(str::len), Some(6_000_000));
    assert_eq!(
        pid(&emulator).await,
        warm,
        "the process survives both limits"
    );
    emulator.shutdown();
}

/// One invocation with its log tail (`LogType=Tail`).
async fn invoke_with_log(emulator: &Emulator, event: Value) -> (Outcome, String) {
    let (outcome, tail) = emulator
        .invoke_with_log(Invocation::new(event.to_string()))
        .await
        .expect("the invocation reaches the function");
    (
        outcome,
        String::from_utf8(tail.to_vec()).expect("a UTF-8 log"),
    )
}

/// The fields of the tail's `REPORT` line, by name (`Max Memory Used` → `40 MB`).
fn report_fields(tail: &str) -> BTreeMap<String, String> {
    let report = tail
        .lines()
        .find(|line| line.starts_with("REPORT RequestId: "))
        .unwrap_or_else(|| panic!("no REPORT line in the tail:\n{tail}"));
    report
        .split('\t')
        .filter_map(|field| field.split_once(": "))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fn megabytes(fields: &BTreeMap<String, String>, name: &str) -> u64 {
    let value = fields
        .get(name)
        .unwrap_or_else(|| panic!("no `{name}` in the REPORT line: {fields:?}"));
    value
        .strip_suffix(" MB")
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("`{name}: {value}` is not in MB"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_line_gives_each_invocations_duration_and_the_peak_memory_so_far() {
    let emulator = chaos(|config| config.logs = Logs::Stderr);

    let (_, cold) = invoke_with_log(&emulator, json!({"echo": true})).await;
    assert!(cold.starts_with("START RequestId: "), "{cold}");
    assert!(cold.contains("\nEND RequestId: "), "{cold}");
    let cold = report_fields(&cold);
    assert!(
        cold.contains_key("Init Duration"),
        "a cold start reports its init: {cold:?}"
    );
    assert!(cold["Duration"].ends_with(" ms"), "{cold:?}");
    assert_eq!(megabytes(&cold, "Memory Size"), 128);
    let at_start = megabytes(&cold, "Max Memory Used");
    assert!(
        (1..128).contains(&at_start),
        "an idle chaos-fn uses a few MB: {cold:?}"
    );

    // A 20 MB answer: the string, then its JSON, are in memory at once (Lambda refuses to return
    // it, and the process stays up).
    let (outcome, grown) = invoke_with_log(&emulator, json!({"huge": 20_000_000})).await;
    assert_eq!(outcome.error_type(), Some("Function.ResponseSizeTooLarge"));
    let grown = report_fields(&grown);
    assert!(!grown.contains_key("Init Duration"), "{grown:?}");
    let peak = megabytes(&grown, "Max Memory Used");
    assert!(
        peak >= at_start + 20,
        "the peak grows with the invocation that used the memory: {at_start} MB, then {peak} MB"
    );

    // The memory is freed, the peak stays: it is the process's high-water mark.
    let (_, after) = invoke_with_log(&emulator, json!({"echo": true})).await;
    assert!(megabytes(&report_fields(&after), "Max Memory Used") >= peak);
    emulator.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invocation_is_answered_once() {
    let emulator = chaos(|_| {});
    let warm = pid(&emulator).await;
    // The function posts a first answer by hand, then lambda_runtime posts a second one.
    let answer = response(invoke(&emulator, json!({"answer_twice": true})).await);
    assert_eq!(answer, json!({"answer": "first"}));
    assert_eq!(pid(&emulator).await, warm);
    emulator.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_invocations_scale_to_max_concurrency_then_queue() {
    let emulator = chaos(|config| config.max_concurrency = 2);
    let calls = (0..6).map(|n| {
        let emulator = emulator.clone();
        tokio::spawn(async move {
            let outcome = emulator
                .invoke(Invocation {
                    request_id: Some(format!("request-{n}")),
                    ..Invocation::new(json!({"sleep_ms": 300}).to_string())
                })
                .await
                .unwrap();
            (n, response(outcome))
        })
    });
    let mut pids = BTreeSet::new();
    let mut answered = BTreeSet::new();
    for call in calls.collect::<Vec<_>>() {
        let (n, answer) = call.await.unwrap();
        assert_eq!(
            answer["request_id"],
            format!("request-{n}"),
            "answered to the wrong caller"
        );
        assert!(answered.insert(n));
        pids.insert(answer["pid"].as_u64().unwrap());
    }
    assert_eq!(answered.len(), 6);
    assert_eq!(
        pids.len(),
        2,
        "two processes serve six concurrent calls: {pids:?}"
    );
    emulator.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_cold_starts_and_shutdown_stops() {
    let emulator = chaos(|_| {});
    let first = pid(&emulator).await;
    emulator.restart();
    assert_ne!(pid(&emulator).await, first);
    emulator.shutdown();
    assert!(matches!(
        emulator.invoke(Invocation::new("{}")).await,
        Err(InvokeError::ShutDown { .. })
    ));
}

/// Lambda sets `TZ` and `LANG` but lets a function override them.
#[tokio::test(flavor = "multi_thread")]
async fn a_function_may_set_its_own_time_zone_and_locale() {
    let emulator = chaos(|config| {
        config.env = BTreeMap::from([
            ("TZ".into(), "Europe/Paris".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ]);
    });
    let env = &response(invoke(&emulator, json!({"echo": true})).await)["env"];
    assert_eq!(env["TZ"], "Europe/Paris");
    assert_eq!(env["LANG"], "C.UTF-8");
    emulator.shutdown();
}

/// The emulator refuses exactly what Lambda (and so the manifest) refuses: one list.
#[test]
fn reserved_variables_are_refused() {
    for name in lambda_stage_names::variables::RESERVED_BY_LAMBDA {
        let mut config = FunctionConfig::new("chaos", "/bin/true");
        config.env.insert((*name).into(), "x".into());
        let err = Emulator::start(config).unwrap_err();
        assert!(
            matches!(err, ConfigError::ReservedVariable { ref variable, .. } if variable == name),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stock_lambda_runtime_function_runs_on_the_emulator() {
    let binary = bins::binary("bare-echo", "dev").expect("bare-echo builds");
    let emulator = Emulator::start(FunctionConfig {
        logs: Logs::Discard,
        ..FunctionConfig::new("bare-echo", binary)
    })
    .unwrap();
    let event = json!({"hello": ["stock", "lambda_runtime"], "n": 1});
    for _ in 0..3 {
        assert_eq!(response(invoke(&emulator, event.clone()).await), event);
    }
    emulator.shutdown();
}
