//! `cargo xtask bench deploy`: how deploy time grows with the number of functions, 1 against 10
//! in the same run, on moto (127.0.0.1) as it is and behind a proxy that gives it AWS's timing.
//!
//! The app: N functions that all build from one package (`hello`, release, x86_64 musl, which
//! is what `cargo xtask deploy` builds by default), each with a managed role, one environment
//! (`staging`). The compiled `cargo xtask` running this benchmark deploys it as a user would
//! (`deploy --env staging --manifest <scratch manifest>`), with dummy credentials and
//! `AWS_ENDPOINT_URL` on moto or the proxy. Timed, each on an empty moto (`/moto-api/reset`):
//! - first deploy: role, function, version and alias for every function;
//! - unchanged redeploy: builds checked, AWS read, nothing written;
//! - one variable changed: the environment's `APP_GREETING`, which every function of the
//!   environment carries, so every function gets a configuration update and a new version: the
//!   change an environment-wide setting makes, and the one whose cost grows with N.
//!
//! The build is not timed: an untimed deploy of all functions builds the zips first (minutes
//! the first time, with LTO), and every timed deploy then finds them up to date (its cargo
//! calls, git and config checks are timed: they are part of every deploy).
//!
//! Two conditions, interleaved round by round so drift on a shared machine hits both alike:
//! plain moto, which answers at once and is always `Active`/`Successful`; and AWS-like timing
//! ([`latency_proxy`]): [`CALL_LATENCY`] on every call and [`SETTLE_TIME`] of `Pending` /
//! `InProgress` after each create or update.

mod latency_proxy;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use lambda_stage_xtask::workspace;

use super::moto::MotoServer;
use latency_proxy::{LatencyProxy, Timing};
use report::Machine;

/// Functions in the small and the large app.
const FUNCTION_COUNTS: [usize; 2] = [1, 10];
/// Deploys of each scenario per condition and app size; the median is reported.
const ROUNDS: usize = 3;
/// A Lambda or IAM control-plane call seen from a CI runner: an HTTPS round trip to the
/// region's endpoint plus the service's own work. An assumption (AWS publishes no figure and
/// this machine cannot reach AWS): 50 ms is a low estimate for a runner in the same region,
/// so the benchmark errs on the side of understating AWS.
const CALL_LATENCY: Duration = Duration::from_millis(50);
/// How long a zip function without a VPC stays `Pending` after `CreateFunction`, or
/// `InProgress` after an update: about a second, also an assumption (with a VPC it can be a
/// minute). The SDK's `function_updated_v2` / `function_active_v2` waiters poll once a second.
const SETTLE_TIME: Duration = Duration::from_millis(1000);
/// The target: 10 functions deploy in at most twice the time of one.
const TARGET_RATIO: f64 = 2.0;
const PACKAGE: &str = "hello";
const ENV: &str = "staging";
const GREETING: &str = "Hello";
const CHANGED_GREETING: &str = "Hello again";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Condition {
    PlainMoto,
    AwsTiming,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    First,
    Unchanged,
    VariableChanged,
}

const CONDITIONS: [Condition; 2] = [Condition::PlainMoto, Condition::AwsTiming];
const SCENARIOS: [Scenario; 3] = [
    Scenario::First,
    Scenario::Unchanged,
    Scenario::VariableChanged,
];

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::First => "first deploy",
            Scenario::Unchanged => "unchanged redeploy",
            Scenario::VariableChanged => "one variable changed",
        }
    }
}

/// Deploy times in seconds, by condition, function count and scenario.
type Samples = BTreeMap<(Condition, usize, Scenario), Vec<f64>>;
/// AWS calls one deploy makes, by function count and scenario (counted by the proxy).
type CallCounts = BTreeMap<(usize, Scenario), usize>;

pub fn run() -> anyhow::Result<()> {
    let root = workspace::root()?;
    let machine_before = Machine::now(&root);
    let moto = MotoServer::start(&root)?;
    // The proxy's own threads, so the deploys (child processes) never wait on this one.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let timing = Timing {
        call_latency: CALL_LATENCY,
        settle: SETTLE_TIME,
    };
    let proxy = runtime.block_on(LatencyProxy::start(&moto.endpoint(), timing))?;
    let app = ScratchApp::new(&root)?;
    let largest = FUNCTION_COUNTS.iter().copied().max().unwrap_or(1);

    eprintln!(
        "building {PACKAGE} (release, x86_64 musl) for {largest} functions through an untimed \
         deploy on plain moto (minutes the first time)..."
    );
    app.write_manifest(largest, GREETING)?;
    let build_started = Instant::now();
    app.deploy(&moto.endpoint(), Output::ShowBuild)?;
    let build_time = build_started.elapsed();

    let timed_started = Instant::now();
    let mut samples = Samples::new();
    let mut calls = CallCounts::new();
    for round in 1..=ROUNDS {
        eprintln!("round {round}/{ROUNDS}...");
        for condition in CONDITIONS {
            let endpoint = match condition {
                Condition::PlainMoto => moto.endpoint(),
                Condition::AwsTiming => proxy.endpoint(),
            };
            for functions in FUNCTION_COUNTS {
                moto.reset()?;
                for measured in app.scenarios(&endpoint, functions, &|| proxy.calls())? {
                    samples
                        .entry((condition, functions, measured.scenario))
                        .or_default()
                        .push(measured.seconds);
                    if condition == Condition::AwsTiming {
                        calls.insert((functions, measured.scenario), measured.calls);
                    }
                }
            }
        }
    }
    let settling_answers = proxy.settling_answers();
    drop(proxy);

    let machine_after = Machine::now(&root);
    report::print(
        &machine_before,
        &machine_after,
        &samples,
        &calls,
        settling_answers,
    );
    println!(
        "(this run: {:.0} s for the untimed build and deploy, {:.0} s for the timed rounds)",
        build_time.as_secs_f64(),
        timed_started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Whether a deploy's output is shown (the untimed build) or kept for its checks.
#[derive(PartialEq, Eq)]
enum Output {
    ShowBuild,
    Captured,
}

/// A manifest in a temp dir whose functions build from this workspace's `hello`, deployed by
/// this very `cargo xtask` binary.
struct ScratchApp {
    dir: tempfile::TempDir,
    root: PathBuf,
    xtask: PathBuf,
}

impl ScratchApp {
    fn new(root: &Path) -> anyhow::Result<ScratchApp> {
        Ok(ScratchApp {
            dir: tempfile::Builder::new()
                .prefix("lambda-stage-bench-deploy")
                .tempdir()?,
            root: root.to_owned(),
            xtask: std::env::current_exe()
                .context("could not find the running `cargo xtask` binary")?,
        })
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.path().join("lambda-stage.toml")
    }

    fn write_manifest(&self, functions: usize, greeting: &str) -> anyhow::Result<()> {
        let path = self.manifest_path();
        std::fs::write(&path, manifest(functions, greeting))
            .with_context(|| format!("could not write {}", path.display()))
    }

    /// The three timed deploys of an app of `functions` functions, on an empty AWS;
    /// `proxy_calls` reads the proxy's call count (unchanged when the deploys bypass it).
    fn scenarios(
        &self,
        endpoint: &str,
        functions: usize,
        proxy_calls: &dyn Fn() -> usize,
    ) -> anyhow::Result<[Measured; 3]> {
        let measure = |scenario: Scenario| {
            let before = proxy_calls();
            let deployed = self.deploy(endpoint, Output::Captured)?;
            let measured = Measured {
                scenario,
                seconds: deployed.seconds,
                calls: proxy_calls() - before,
            };
            anyhow::Ok((measured, deployed.stdout))
        };
        self.write_manifest(functions, GREETING)?;
        let (first, _) = measure(Scenario::First)?;
        let (unchanged, plan) = measure(Scenario::Unchanged)?;
        if !plan.contains("Nothing to do") {
            bail!(
                "the redeploy of an unchanged app of {functions} function(s) planned changes, \
                 so it would not measure an unchanged redeploy; its plan:\n{plan}"
            );
        }
        self.write_manifest(functions, CHANGED_GREETING)?;
        let (changed, plan) = measure(Scenario::VariableChanged)?;
        if plan.contains("Nothing to do") {
            bail!(
                "changing APP_GREETING changed nothing for an app of {functions} function(s); \
                 its plan:\n{plan}"
            );
        }
        Ok([first, unchanged, changed])
    }

    /// `cargo xtask deploy --env staging --manifest <scratch>` against `endpoint`, timed.
    fn deploy(&self, endpoint: &str, output: Output) -> anyhow::Result<Deployed> {
        let mut command = Command::new(&self.xtask);
        command
            .current_dir(&self.root)
            .args(["deploy", "--env", ENV, "--manifest"])
            .arg(self.manifest_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(match output {
                Output::ShowBuild => Stdio::inherit(),
                Output::Captured => Stdio::piped(),
            });
        // Only loopback and dummy credentials: no profile, config file or instance metadata
        // of this machine may send a call elsewhere.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        command
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.dir.path().join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("no-aws-credentials"),
            );
        let started = Instant::now();
        let finished = command
            .output()
            .with_context(|| format!("could not run {}", self.xtask.display()))?;
        let seconds = started.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&finished.stdout).into_owned();
        if !finished.status.success() {
            let stderr = match output {
                Output::ShowBuild => "(printed above)".into(),
                Output::Captured => String::from_utf8_lossy(&finished.stderr),
            };
            bail!(
                "`cargo xtask deploy --env {ENV}` of the benchmark app ({}) failed ({}); fix \
                 what its output says, then re-run the benchmark\n--- stdout\n{stdout}--- \
                 stderr\n{stderr}",
                self.manifest_path().display(),
                finished.status,
            );
        }
        Ok(Deployed { seconds, stdout })
    }
}

/// One timed deploy.
struct Measured {
    scenario: Scenario,
    seconds: f64,
    /// The AWS calls it made through the proxy.
    calls: usize,
}

struct Deployed {
    seconds: f64,
    stdout: String,
}

/// The benchmark app: `functions` functions of one package, one environment whose
/// `APP_GREETING` is `greeting`.
fn manifest(functions: usize, greeting: &str) -> String {
    let mut text = format!(
        "app = \"bench\"\nregion = \"us-east-1\"\n# moto's account\naccount-id = \"123456789012\"\n\n\
         [environments.{ENV}]\n\
         # APP_API_KEY: hello's config requires one; a placeholder, no secret is deployed.\n\
         vars = {{ APP_GREETING = \"{greeting}\", APP_API_KEY = \"bench-placeholder\" }}\n"
    );
    for index in 1..=functions {
        text.push_str(&format!(
            "\n[functions.{}]\npackage = \"{PACKAGE}\"\narch = \"x86_64\"\ncreate-role = true\n",
            function_key(index)
        ));
    }
    text
}

/// Keys of their own, so the zips never share `target/lambda/<key>/` with other manifests.
fn function_key(index: usize) -> String {
    format!("deploybench-{index:02}")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use lambda_stage_xtask::manifest::Manifest;

    use super::*;

    #[test]
    fn the_app_is_n_functions_of_one_package_in_one_environment() {
        let text = manifest(10, "Hi");
        let app = Manifest::parse(Path::new("lambda-stage.toml"), &text).unwrap();
        assert_eq!(app.functions.len(), 10);
        assert!(app
            .functions
            .keys()
            .all(|key| key.starts_with("deploybench-")));
        let variables = app.function_variables("deploybench-07", ENV).unwrap();
        assert!(
            variables.values().any(|value| value == "Hi"),
            "{variables:?}"
        );
    }
}
