//! `cargo xtask logs`: one environment's lines of a function's CloudWatch Logs, through the real
//! CLI against moto's server on 127.0.0.1 (with the recording proxy in between).
//!
//! moto's `Invoke` runs nothing and writes no logs, so the tests seed the log group the way
//! Lambda writes it: one stream per sandbox, named after its version (`2026/11/29/[2]…`),
//! with `START`/`END`/`REPORT` platform lines around lambda-stage's framework lines (Text and
//! the flat JSON shape). The single-stack app is really deployed, so the aliases the command
//! reads are deploy's own.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use lambda_stage_tests::deploy_stage::{assert_failed_with, assert_ok, Run, Stage};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const REGION: &str = "us-east-1";
const GROUP: &str = "/aws/lambda/demo-logfn";

fn single_stack(staging_greeting: &str) -> String {
    format!(
        r#"app = "demo"
region = "{REGION}"

[functions.logfn]
package = "bare-echo"
arch = "x86_64"
create-role = true

[environments.staging]
vars = {{ APP_GREETING = "{staging_greeting}" }}

[environments.prod]
vars = {{ APP_GREETING = "hi prod" }}
"#
    )
}

const MULTI_STACK: &str = r#"app = "demo"
strategy = "multi-stack"
region = "us-east-1"

[functions.logfn]
package = "bare-echo"
arch = "x86_64"
create-role = true

[environments.staging]
[environments.prod]
"#;

/// Writes log events straight into moto, as Lambda would.
struct Seeder {
    logs: aws_sdk_cloudwatchlogs::Client,
    /// The next event's timestamp: every line gets its own, in the order seeded.
    next_ms: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl Seeder {
    async fn new(stage: &Stage) -> Seeder {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(stage.moto.endpoint())
            .credentials_provider(aws_sdk_lambda::config::Credentials::for_tests())
            .load()
            .await;
        Seeder {
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            // Well inside the default `--since 10m`.
            next_ms: now_ms() - 5 * 60 * 1000,
        }
    }

    async fn group(&self, group: &str) {
        self.logs
            .create_log_group()
            .log_group_name(group)
            .send()
            .await
            .unwrap();
    }

    /// A new stream with these lines.
    async fn stream(&mut self, group: &str, stream: &str, lines: &[String]) {
        self.logs
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
            .unwrap();
        self.put(group, stream, lines).await;
    }

    /// More lines in an existing stream, each ending in a newline as Lambda writes them.
    async fn put(&mut self, group: &str, stream: &str, lines: &[String]) {
        let mut request = self
            .logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream);
        for line in lines {
            self.next_ms = self.next_ms.max(now_ms() - 5 * 60 * 1000) + 10;
            request = request.log_events(
                InputLogEvent::builder()
                    .timestamp(self.next_ms)
                    .message(format!("{line}\n"))
                    .build()
                    .unwrap(),
            );
        }
        request.send().await.unwrap();
    }
}

/// A lambda-stage line in Text format, as framework/src/logging.rs writes it.
fn text_line(request: &str, env: &str, message: &str) -> String {
    format!(
        r#" INFO Lambda runtime invoke{{requestId="{request}"}}:invocation{{env={env}}}: {message}"#
    )
}

/// A lambda-stage line in the flat JSON format.
fn json_line(request: &str, env: &str, message: &str) -> String {
    json!({
        "timestamp": "2026-11-29T10:00:00.000000Z",
        "level": "INFO",
        "message": message,
        "requestId": request,
        "env": env,
    })
    .to_string()
}

/// One request as Lambda logs it, with the lines the function wrote in between.
fn request(id: &str, version: &str, inside: &[String]) -> Vec<String> {
    let mut lines = vec![format!("START RequestId: {id} Version: {version}")];
    lines.extend(inside.iter().cloned());
    lines.push(format!("END RequestId: {id}"));
    lines.push(format!(
        "REPORT RequestId: {id}\tDuration: 1.52 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 17 MB"
    ));
    lines
}

const INIT: &str = "INIT_START Runtime Version: provided:al2023.v93";

/// `<ISO timestamp> <env> <message>` lines as (env, message); checks the timestamp's shape.
#[track_caller]
fn shown(run: &Run) -> Vec<(String, String)> {
    assert_ok(run);
    run.stdout
        .lines()
        .map(|line| {
            let (timestamp, rest) = line.split_once(' ').expect("timestamp, env, message");
            assert!(
                timestamp.len() == 24 && timestamp.ends_with('Z') && &timestamp[10..11] == "T",
                "ISO timestamp with milliseconds: {line}"
            );
            let (env, message) = rest.split_once(' ').expect("env, message");
            (env.to_owned(), message.to_owned())
        })
        .collect()
}

fn all_as(env: &str, lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|line| (env.to_owned(), line.clone()))
        .collect()
}

fn concat(parts: &[&[String]]) -> Vec<String> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn single_stack_shows_each_environment_its_own_lines_by_version_then_by_request() {
    let stage = Stage::start().await;
    // staging and prod on version 1, then staging alone on version 2.
    stage.write_manifest(&single_stack("hi staging"));
    for env in ["staging", "prod"] {
        assert_ok(
            &stage
                .xtask(&["deploy", "--profile", "dev", "--env", env, "--yes"])
                .await,
        );
    }
    stage.write_manifest(&single_stack("hey staging"));
    assert_ok(
        &stage
            .xtask(&["deploy", "--profile", "dev", "--env", "staging"])
            .await,
    );
    assert_eq!(
        stage
            .alias_version("demo-logfn", "staging")
            .await
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        stage.alias_version("demo-logfn", "prod").await.as_deref(),
        Some("1")
    );

    let mut seeder = Seeder::new(&stage).await;
    seeder.group(GROUP).await;
    let staging_1 = request(
        "s-1",
        "2",
        &[text_line("s-1", "staging", "staging says hi")],
    );
    let prod_1 = request("p-1", "1", &[json_line("p-1", "prod", "prod says hi")]);
    let v2_init = [INIT.to_owned()];
    let v1_init = [INIT.to_owned()];
    seeder
        .stream(
            GROUP,
            "2026/11/29/[2]aaaa",
            &concat(&[&v2_init, &staging_1]),
        )
        .await;
    seeder
        .stream(
            GROUP,
            "2026/11/29/[1]bbbb",
            &concat(&[&[INIT.to_owned()], &prod_1]),
        )
        .await;

    // Each version runs in one environment: every line of its streams is that environment's.
    let staging = stage.xtask(&["logs", "logfn", "--env", "staging"]).await;
    assert_eq!(
        shown(&staging),
        all_as("staging", &concat(&[&v2_init, &staging_1])),
        "{staging:?}"
    );
    let prod = stage.xtask(&["logs", "logfn", "--env", "prod"]).await;
    assert_eq!(
        shown(&prod),
        all_as("prod", &concat(&[&v1_init, &prod_1])),
        "{prod:?}"
    );

    // --json: one object per line with the documented keys.
    let run = stage
        .xtask(&["logs", "logfn", "--env", "staging", "--json"])
        .await;
    assert_ok(&run);
    let objects: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 5, "{run:?}");
    let init = objects[0].as_object().unwrap();
    let mut keys: Vec<&String> = init.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["env", "message", "stream", "timestamp"],
        "no requestId on an init line: {run:?}"
    );
    assert_eq!(init["message"], INIT, "trailing newline trimmed");
    let framework = &objects[2];
    assert_eq!(framework["env"], "staging");
    assert_eq!(framework["requestId"], "s-1");
    assert_eq!(framework["stream"], "2026/11/29/[2]aaaa");
    assert_eq!(
        framework["message"],
        text_line("s-1", "staging", "staging says hi")
    );
    assert!(
        objects.iter().skip(1).all(|o| o["requestId"] == "s-1"),
        "{run:?}"
    );

    // After a promote both environments run version 2: a stream's lines follow their request.
    assert_ok(
        &stage
            .xtask(&["promote", "--from", "staging", "--to", "prod", "--yes"])
            .await,
    );
    assert_eq!(
        stage.alias_version("demo-logfn", "prod").await.as_deref(),
        Some("2")
    );
    let staging_2 = request(
        "s-2",
        "2",
        &[text_line("s-2", "staging", "staging says hi again")],
    );
    let prod_2 = request(
        "p-2",
        "2",
        &[
            json_line("p-2", "prod", "prod says hi again"),
            "a println in prod's request".to_owned(),
        ],
    );
    // A request that wrote nothing through lambda-stage cannot be told apart.
    let silent = request("q-2", "2", &[]);
    let v2_shared_init = [INIT.to_owned()];
    seeder
        .stream(
            GROUP,
            "2026/11/29/[2]cccc",
            &concat(&[&v2_shared_init, &staging_2, &prod_2, &silent]),
        )
        .await;

    let staging = stage.xtask(&["logs", "logfn", "--env", "staging"]).await;
    assert_eq!(
        shown(&staging),
        all_as("staging", &concat(&[&staging_1, &staging_2])),
        "{staging:?}"
    );
    // The init lines of version 2 (shared) and of version 1 (no alias runs it any more),
    // and the silent request's three lines.
    assert!(
        staging.stderr.contains("6 line(s) could not be attributed"),
        "{staging:?}"
    );
    // prod's version-1 lines: no alias runs version 1 now, but the request named prod.
    let prod = stage.xtask(&["logs", "logfn", "--env", "prod"]).await;
    assert_eq!(
        shown(&prod),
        all_as("prod", &concat(&[&prod_1, &prod_2])),
        "{prod:?}"
    );
    assert!(
        prod.stderr.contains("6 line(s) could not be attributed"),
        "{prod:?}"
    );

    // --unattributed adds them, marked `?`, in time order.
    let run = stage
        .xtask(&["logs", "logfn", "--env", "staging", "--unattributed"])
        .await;
    let expected: Vec<(String, String)> = [
        all_as("?", &v2_init),
        all_as("staging", &staging_1),
        all_as("?", &v1_init),
        all_as("?", &v2_shared_init),
        all_as("staging", &staging_2),
        all_as("?", &silent),
    ]
    .concat();
    assert_eq!(shown(&run), expected, "{run:?}");

    // --filter is CloudWatch's, passed through; what matches is still attributed.
    stage.proxy.reset_counts();
    let run = stage
        .xtask(&[
            "logs",
            "logfn",
            "--env",
            "staging",
            "--filter",
            "\"says hi\"",
        ])
        .await;
    assert_eq!(
        shown(&run),
        all_as(
            "staging",
            &[
                text_line("s-1", "staging", "staging says hi"),
                text_line("s-2", "staging", "staging says hi again"),
            ]
        ),
        "{run:?}"
    );
    let sent = stage.proxy.requests_of("FilterLogEvents");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].json()["filterPattern"], "\"says hi\"");
    assert_eq!(sent[0].json()["logGroupName"], GROUP);

    // --follow: the existing lines, then a request put after the command started, and
    // nothing of prod's request put just before it; Ctrl-C stops it.
    let mut command = stage
        .xtask_command(&["logs", "logfn", "--env", "staging", "--follow"], &[])
        .await;
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
        .await
        .expect("--follow prints the existing lines within a minute")
        .unwrap()
        .expect("a line");
    assert!(first.ends_with(&staging_1[0]), "{first}");
    let prod_3 = request("p-3", "2", &[text_line("p-3", "prod", "prod, later")]);
    let staging_3 = request("s-3", "2", &[text_line("s-3", "staging", "staging, later")]);
    let started = Instant::now();
    seeder
        .put(GROUP, "2026/11/29/[2]cccc", &concat(&[&prod_3, &staging_3]))
        .await;
    let mut later = Vec::new();
    let last = staging_3.last().unwrap().clone();
    while !later.iter().any(|l: &String| l.ends_with(&last)) {
        let line = tokio::time::timeout(Duration::from_secs(15), stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("no new line within 15 s; had {later:?}"))
            .unwrap()
            .expect("--follow keeps running");
        later.push(line);
    }
    let waited = started.elapsed();
    // Ctrl-C (SIGINT) ends it, successfully.
    let pid = child.id().unwrap().to_string();
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("--follow stops within 5 s of Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status}");
    let messages: Vec<&str> = later
        .iter()
        .map(|l| l.splitn(3, ' ').nth(2).unwrap())
        .collect();
    assert!(
        messages.ends_with(&staging_3.iter().map(String::as_str).collect::<Vec<_>>()),
        "{later:?}"
    );
    assert!(
        !later.iter().any(|l| l.contains("p-3")),
        "prod's lines are not staging's: {later:?}"
    );
    assert!(later.iter().all(|l| l.split(' ').nth(1) == Some("staging")));
    eprintln!("--follow showed a new request after {waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preview_environment_s_lines_are_told_apart_by_its_own_alias() {
    let stage = Stage::start().await;
    let template = "\n[environments.\"pr-*\"]\nvars = { APP_GREETING = \"hi preview\" }\n";
    stage.write_manifest(&(single_stack("hi staging") + template));
    for env in ["staging", "pr-7"] {
        assert_ok(
            &stage
                .xtask(&["deploy", "--profile", "dev", "--env", env])
                .await,
        );
    }
    // The preview's version carries its own variables: staging 1, pr-7 2.
    assert_eq!(
        stage.alias_version("demo-logfn", "pr-7").await.as_deref(),
        Some("2")
    );
    let mut seeder = Seeder::new(&stage).await;
    seeder.group(GROUP).await;
    // No framework lines: only the versions, from the aliases listed in AWS, tell them apart.
    let staging = request("s-1", "1", &[]);
    let preview = request("r-1", "2", &[]);
    seeder.stream(GROUP, "2026/11/29/[1]ffff", &staging).await;
    seeder.stream(GROUP, "2026/11/29/[2]gggg", &preview).await;
    let run = stage.xtask(&["logs", "logfn", "--env", "pr-7"]).await;
    assert_eq!(shown(&run), all_as("pr-7", &preview), "{run:?}");
    let run = stage.xtask(&["logs", "logfn", "--env", "staging"]).await;
    assert_eq!(shown(&run), all_as("staging", &staging), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_stack_shows_every_line_of_the_environment_s_own_function() {
    let stage = Stage::start().await;
    stage.write_manifest(MULTI_STACK);
    let mut seeder = Seeder::new(&stage).await;
    let group = "/aws/lambda/demo-logfn-staging";
    seeder.group(group).await;
    // Whatever the version, and whatever a line says: the function is staging's alone.
    let lines = concat(&[
        &[INIT.to_owned()],
        &request("m-1", "3", &[text_line("m-1", "live", "hi")]),
        &request("m-2", "$LATEST", &["plain text".to_owned()]),
    ]);
    seeder
        .stream(group, "2026/11/29/[3]dddd", &lines[..5])
        .await;
    seeder
        .stream(group, "2026/11/29/[$LATEST]eeee", &lines[5..])
        .await;
    let run = stage.xtask(&["logs", "logfn", "--env", "staging"]).await;
    assert_eq!(shown(&run), all_as("staging", &lines), "{run:?}");
    assert!(!run.stderr.contains("could not be attributed"), "{run:?}");
    // prod's function has its own group, which does not exist.
    let run = stage.xtask(&["logs", "logfn", "--env", "prod"]).await;
    assert_failed_with(&run, "/aws/lambda/demo-logfn-prod");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_that_never_logged_is_a_clear_message() {
    let stage = Stage::start().await;
    stage.write_manifest(&single_stack("hi staging"));
    let run = stage
        .xtask(&["logs", "logfn", "--env", "staging", "--since", "1h"])
        .await;
    assert_failed_with(
        &run,
        "`logfn` has not logged in `staging` yet: its log group `/aws/lambda/demo-logfn` does \
         not exist",
    );
    assert!(
        run.stderr.contains("cargo xtask status --env staging"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    // A bad --since is refused before anything is read.
    let run = stage
        .xtask(&["logs", "logfn", "--env", "staging", "--since", "10x"])
        .await;
    assert_failed_with(&run, "30s, 10m, 2h or 1d");
}
