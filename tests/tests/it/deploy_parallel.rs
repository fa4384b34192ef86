//! Apps of many functions (issue 15, Deploy): functions that share a package are built once
//! per deploy, with the facts of the run (installed Rust targets, git) read once; functions
//! are planned, prepared and wired to their triggers concurrently, throttling is retried, the
//! aliases move only after every function of the environment has its version, and the output
//! lists the functions in the manifest's order.
//!
//! Each test runs the real CLI against moto behind the fault proxy (`deploy_stage`). Functions
//! are `bare-echo` and `hello` (x86_64 musl, dev profile), under keys of this module's own.

use std::path::{Path, PathBuf};

use lambda_stage_tests::deploy_stage::{assert_ok, variable, Run, Stage};
use lambda_stage_tests::fault_proxy::{FaultKind, RecordedRequest};

const DEPLOY_DEV: &[&str] = &["deploy", "--profile", "dev", "--env", "dev"];

/// `functions` (keys) all built from `package`, single-stack, one environment `dev`.
fn app(functions: &[&str], package: &str, greeting: &str) -> String {
    let mut manifest = "app = \"par\"\nregion = \"us-east-1\"\n\n".to_owned();
    for function in functions {
        manifest.push_str(&format!(
            "[functions.{function}]\npackage = \"{package}\"\narch = \"x86_64\"\n\
             create-role = true\n\n"
        ));
    }
    // `hello` also needs its API key to start (its config check runs it).
    manifest.push_str(&format!(
        "[environments.dev]\nvars = {{ APP_GREETING = \"{greeting}\", APP_API_KEY = \"test-key\" }}\n"
    ));
    manifest
}

/// The stderr lines a step starts with (`    Building ...`, `   Deploying ...`).
fn step_lines(run: &Run, verb: &str) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|line| line.trim_start().starts_with(verb))
        .map(str::to_owned)
        .collect()
}

/// Deploys to `dev` with every `operation` call held until `count` of them arrived, and checks
/// that they did: the calls were in flight together, not one after another.
async fn deploy_holding(stage: &Stage, operation: &str, count: usize) -> Run {
    stage.proxy.hold(operation, count);
    let run = stage.xtask(DEPLOY_DEV).await;
    assert_ok(&run);
    assert!(
        !stage.proxy.hold_timed_out(operation),
        "the {count} `{operation}` calls were in flight together: {run:?}"
    );
    stage.proxy.release(operation);
    run
}

/// A deploy lists each trigger change twice, in the plan and as made, both times in the
/// manifest's order.
fn assert_planned_then_made(listed: &[impl AsRef<str>], expected: &[String], run: &Run) {
    let listed: Vec<&str> = listed.iter().map(AsRef::as_ref).collect();
    assert_eq!(listed.len(), 2 * expected.len(), "{run:?}");
    assert_eq!(listed[..expected.len()], expected[..], "the plan: {run:?}");
    assert_eq!(listed[expected.len()..], expected[..], "as made: {run:?}");
}

/// A `tool` on PATH that logs each call's arguments to `log`, then runs the real one.
fn logging_wrapper(bin: &Path, tool: &str, log: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{tool}` is on PATH"));
    let script = bin.join(tool);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn logged(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Six functions of one package: one build step naming all six, one `rustup target list`, one
/// read of the git commit and one of the dirty flag, for the whole deploy.
#[tokio::test(flavor = "multi_thread")]
async fn functions_that_share_a_package_are_built_once_per_deploy() {
    let stage = Stage::start().await;
    let functions = [
        "par-once-a",
        "par-once-b",
        "par-once-c",
        "par-once-d",
        "par-once-e",
        "par-once-f",
    ];
    stage.write_manifest(&app(&functions, "bare-echo", "Hi"));
    let bin = stage.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let rustup_log = stage.dir.path().join("rustup.log");
    let git_log = stage.dir.path().join("git.log");
    logging_wrapper(&bin, "rustup", &rustup_log);
    logging_wrapper(&bin, "git", &git_log);
    let path: PathBuf = bin;
    let path = std::env::join_paths(
        std::iter::once(path).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();

    let run = stage
        .xtask_env(DEPLOY_DEV, &[("PATH", path.to_str())])
        .await;
    assert_ok(&run);
    assert_eq!(
        step_lines(&run, "Building"),
        [format!(
            "    Building {} (x86_64, dev)",
            functions.join(", ")
        )],
        "{run:?}"
    );
    assert_eq!(logged(&rustup_log), ["target list --installed"], "{run:?}");
    assert_eq!(
        logged(&git_log),
        ["rev-parse HEAD", "status --porcelain --untracked-files=no"],
        "{run:?}"
    );
    // Each function still has its own zip and version, all recording the one commit.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(lambda_stage_tests::bins::workspace_root())
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    for function in functions {
        let version = stage.version(&format!("par-{function}"), "1").await;
        let description = version["Description"].as_str().unwrap();
        assert!(
            description.contains(&format!("git={}", &head[..12])),
            "{function}: {description}"
        );
    }
}

/// Six functions deployed at once, twice. Created: every `PublishVersion` is held until all six
/// arrived, so they were in flight together, while `CreateFunction` and `CreateAlias` are
/// throttled. Then new code and configuration, with `UpdateFunctionCode`, `PublishVersion` and
/// `UpdateAlias` throttled. Both converge; no alias is written before the last version is
/// published; every step lists the functions in the manifest's order.
#[tokio::test(flavor = "multi_thread")]
async fn many_functions_deploy_at_once_and_move_their_aliases_last() {
    let stage = Stage::start().await;
    let functions = [
        "par-many-a",
        "par-many-b",
        "par-many-c",
        "par-many-d",
        "par-many-e",
        "par-many-f",
    ];
    let throttled = |operation: &str, nth: usize| {
        stage.proxy.inject(operation, nth, 2, FaultKind::Throttle);
    };

    stage.write_manifest(&app(&functions, "bare-echo", "one"));
    throttled("CreateFunction", 2);
    throttled("CreateAlias", 3);
    let run = deploy_holding(&stage, "PublishVersion", functions.len()).await;
    assert_eq!(stage.proxy.calls("CreateFunction"), 8, "two retried");
    assert_eq!(stage.proxy.calls("CreateAlias"), 8, "two retried");
    assert_converged(&stage, &functions, "1", "one").await;
    assert_aliases_written_last(&stage.proxy.requests());
    assert_listed_in_order(&run, &functions, "1");
    let first_code = stage.version("par-par-many-a", "1").await["CodeSha256"].clone();

    // New code (another package) and configuration for all six.
    stage.proxy.reset_counts();
    stage.write_manifest(&app(&functions, "hello", "two"));
    throttled("UpdateFunctionCode", 1);
    throttled("PublishVersion", 4);
    throttled("UpdateAlias", 2);
    let run = stage.xtask(DEPLOY_DEV).await;
    assert_ok(&run);
    for operation in ["UpdateFunctionCode", "PublishVersion", "UpdateAlias"] {
        assert_eq!(stage.proxy.calls(operation), 8, "{operation}: two retried");
    }
    assert_converged(&stage, &functions, "2", "two").await;
    assert_ne!(
        stage.version("par-par-many-a", "2").await["CodeSha256"],
        first_code,
        "the new code"
    );
    assert_aliases_written_last(&stage.proxy.requests());
    assert_listed_in_order(&run, &functions, "2");
}

/// Every function's alias `dev` is on `version`, which carries `greeting`.
async fn assert_converged(stage: &Stage, functions: &[&str], version: &str, greeting: &str) {
    for function in functions {
        let name = format!("par-{function}");
        assert_eq!(
            stage.alias_version(&name, "dev").await.as_deref(),
            Some(version),
            "{name}"
        );
        let config = stage.version(&name, version).await;
        assert_eq!(
            variable(&config, "APP_DEV__GREETING").as_deref(),
            Some(greeting),
            "{name}"
        );
    }
}

/// No alias write reached AWS before the last `PublishVersion` (retries included).
#[track_caller]
fn assert_aliases_written_last(requests: &[RecordedRequest]) {
    let operations: Vec<&str> = requests.iter().map(|r| r.operation.as_str()).collect();
    let last_publish = operations
        .iter()
        .rposition(|op| *op == "PublishVersion")
        .expect("versions were published");
    let first_alias_write = operations
        .iter()
        .position(|op| matches!(*op, "CreateAlias" | "UpdateAlias"))
        .expect("aliases were written");
    assert!(
        last_publish < first_alias_write,
        "an alias was written before every version existed: {operations:?}"
    );
}

/// The steps' lines (stderr) and the outcome's (stdout) name the functions in `functions`'
/// order, whatever order they finished in.
#[track_caller]
fn assert_listed_in_order(run: &Run, functions: &[&str], version: &str) {
    let named = |lines: Vec<&str>, prefix: &str, suffix: &str| -> Vec<String> {
        lines
            .into_iter()
            .filter_map(|line| line.strip_prefix(prefix)?.split_once(suffix))
            .map(|(function, _)| function.to_owned())
            .collect()
    };
    let expected: Vec<String> = functions.iter().map(|f| f.to_string()).collect();
    let stdout: Vec<&str> = run.stdout.lines().collect();
    let stderr: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(named(stderr, "   Deploying ", " ("), expected, "{run:?}");
    assert_eq!(
        named(stdout.clone(), "  ", &format!(": version {version} ready")),
        expected,
        "{run:?}"
    );
    assert_eq!(
        named(stdout, "  ", &format!(": alias `dev` -> version {version}")),
        expected,
        "{run:?}"
    );
}

/// Four scheduled functions: their triggers are wired at once (every `PutRule` is held until
/// all four arrived) and listed in the manifest's order. When one function's write fails, the
/// others' still finish, the error says which change was in progress and which were done, and
/// a re-run converges.
#[tokio::test(flavor = "multi_thread")]
async fn every_functions_triggers_are_wired_at_once_and_a_failure_lets_the_others_finish() {
    let stage = Stage::start().await;
    let functions = ["par-wire-a", "par-wire-b", "par-wire-c", "par-wire-d"];
    let scheduled = |expression: &str| {
        app(&functions, "bare-echo", "Hi").replace(
            "create-role = true\n",
            &format!("create-role = true\nschedule = {{ expression = \"{expression}\" }}\n"),
        )
    };
    let rule_lines = |run: &Run, what: &str| -> Vec<String> {
        run.stdout
            .lines()
            .chain(run.stderr.lines())
            .filter(|line| line.contains(&format!(": {what} schedule rule `")))
            .map(|line| line.trim().to_owned())
            .collect()
    };

    stage.write_manifest(&scheduled("rate(1 hour)"));
    let run = deploy_holding(&stage, "PutRule", functions.len()).await;
    let created: Vec<String> = functions
        .iter()
        .map(|f| format!("{f}: create schedule rule `par-{f}-dev`: rate(1 hour) (enabled)"))
        .collect();
    assert_planned_then_made(&rule_lines(&run, "create"), &created, &run);

    stage.proxy.reset_counts();
    stage.write_manifest(&scheduled("rate(2 hours)"));
    stage.proxy.inject("PutRule", 3, 1, FaultKind::Fail);
    let run = stage.xtask(DEPLOY_DEV).await;
    assert!(!run.success, "{run:?}");
    let report: Vec<&str> = run
        .stderr
        .lines()
        .map(str::trim)
        .filter(|line| line.contains("update schedule rule"))
        .collect();
    let count = |state: &str| report.iter().filter(|l| l.starts_with(state)).count();
    assert_eq!(count("done: "), 3, "{run:?}");
    assert_eq!(count("in progress when it failed: "), 1, "{run:?}");
    assert_eq!(count("not done: "), 0, "{run:?}");
    assert_eq!(stage.proxy.calls("PutRule"), 4, "every function tried");

    let run = stage.xtask(DEPLOY_DEV).await;
    assert_ok(&run);
    assert_eq!(
        rule_lines(&run, "update").len(),
        2,
        "only the failed one: {run:?}"
    );
}

/// Each function's permission for the app's HTTP API is granted in that function's own trigger
/// pass, so the grants of all functions are in flight together (every `AddPermission` is held
/// until all three arrived), and listed in the manifest's order.
#[tokio::test(flavor = "multi_thread")]
async fn every_functions_api_permission_is_granted_at_once() {
    let stage = Stage::start().await;
    let functions = ["par-api-a", "par-api-b", "par-api-c"];
    let manifest = functions
        .iter()
        .fold(app(&functions, "bare-echo", "Hi"), |manifest, f| {
            manifest.replace(
                &format!("[functions.{f}]\n"),
                &format!("[functions.{f}]\nhttp = {{ routes = [\"GET /{f}\"] }}\n"),
            )
        });
    stage.write_manifest(&manifest);
    let run = deploy_holding(&stage, "AddPermission", functions.len()).await;
    assert_eq!(stage.proxy.calls("AddPermission"), functions.len());
    let granted: Vec<&str> = run
        .stdout
        .lines()
        .map(str::trim)
        .filter(|line| line.ends_with("allow API `par` stage `dev` to invoke alias `dev`"))
        .collect();
    let expected: Vec<String> = functions
        .iter()
        .map(|f| format!("{f}: allow API `par` stage `dev` to invoke alias `dev`"))
        .collect();
    assert_planned_then_made(&granted, &expected, &run);
}
