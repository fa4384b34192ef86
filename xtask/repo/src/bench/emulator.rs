//! `cargo xtask bench emulator`: the local Lambda's invoke round trip against cargo-lambda's
//! `watch` emulator, in the same run, on the same release build of `hello`.
//!
//! Besides the client's view (throughput, p50, p99), each server's own CPU time per invocation,
//! the function processes excluded: the round trip also contains the client, the function and the
//! kernel, which are the same for both servers. The total is the process's CPU clock
//! (`clock_gettime` on `clock_getcpuclockid(pid)`: nanoseconds, every thread's, including threads
//! that have exited, as cargo-lambda's do); the kernel's part of it comes from `/proc/<pid>/stat`,
//! which counts in 10 ms ticks, so it is the coarser figure.
//!
//! Each figure is the median of its rounds (each figure on its own), with the spread of the
//! server CPU printed beside it: on a shared machine the median moves less between runs than the
//! best round did.
//!
//! Both servers run as their own processes, their output and their functions' going to log files
//! in `target/bench-emulator/` (ours copies each function line through itself, for
//! `X-Amz-Log-Result`; cargo-lambda's functions write to the file directly). Both allow 8
//! concurrent function instances, and both are driven by the same keep-alive HTTP/1.1 client
//! through the Invoke API (`POST /2015-03-31/functions/hello/invocations`), with 1 and then 8
//! concurrent clients. Rounds alternate between the servers so drift on this shared machine hits
//! each.
//! `serve` is built in a cargo profile of its own with cargo-lambda's release settings
//! (`opt-level = 3`, no LTO, 16 codegen units, stripped: cargo's defaults plus `strip`), not with
//! the workspace's release profile, which is tuned for small Lambda binaries (`opt-level = "s"`).
//!
//! `BENCH_EMULATOR_BASELINE=<an xtask binary>` adds a third server to the same rounds: that
//! binary's `serve` (e.g. main's build, copied aside from `target/bench-emulator/xtask`), so a
//! change is measured against the code before it under the same load.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use lambda_stage_xtask::manifest::Manifest;
use lambda_stage_xtask::{tools, workspace};

/// Requests per measurement (after the warm-up), split across the clients.
const REQUESTS: usize = 3000;
const WARMUP: usize = 200;
/// Measurements per server and client count; each figure is the median of its rounds.
const ROUNDS: usize = 5;
const CLIENT_COUNTS: [usize; 2] = [1, 8];
const CONCURRENCY: &str = "8";
const CARGO_LAMBDA: &str = "cargo-lambda==1.9.2";
/// The function both servers run; `serve` builds it with its features in lambda-stage.toml.
const FUNCTION: &str = "hello";
const EVENT: &str = r#"{"name":"Ada"}"#;
const EXPECTED: &str = r#""message":"Hello, Ada!""#;
/// The first invocation of `cargo lambda watch` compiles the function.
const START_TIMEOUT: Duration = Duration::from_secs(900);
const PROFILE: &str = "bench-emulator";
/// The variable naming another `xtask` binary whose `serve` is measured too.
const BASELINE_VAR: &str = "BENCH_EMULATOR_BASELINE";

pub fn run() -> anyhow::Result<()> {
    let root = workspace::root()?;
    let features = manifest_features(&root)?;
    let xtask = build_optimised_xtask(&root)?;
    let cargo_lambda = tools::venv_bin(&root, CARGO_LAMBDA, "cargo-lambda")?;
    let logs = workspace::target_dir(&root).join(PROFILE);
    std::fs::create_dir_all(&logs)?;

    let ours = Server::serve("lambda-stage serve", &xtask, &root, &logs.join("serve.log"))?;
    let baseline = match std::env::var_os(BASELINE_VAR) {
        Some(binary) => Some(Server::serve(
            "baseline serve",
            Path::new(&binary),
            &root,
            &logs.join("baseline-serve.log"),
        )?),
        None => None,
    };
    let theirs_port = free_port()?;
    // The same build of hello as `serve`'s (its manifest features), in a target directory of its
    // own: in the shared one, each tool's build would replace the other's `target/release/hello`,
    // and a server's next cold start would run the other's binary.
    let their_target = workspace::target_dir(&root)
        .join(PROFILE)
        .join("cargo-lambda");
    let theirs = Server::spawn(
        "cargo lambda watch",
        theirs_port,
        Command::new(&cargo_lambda)
            .current_dir(root.join("examples").join(FUNCTION))
            .args([
                "lambda",
                "watch",
                "--release",
                "--quiet",
                "--ignore-changes",
            ])
            .args(["--package", FUNCTION, "--features", &features])
            // Not `--target-dir`: cargo-lambda 1.9.2 passes it on to `cargo metadata`, which
            // refuses it.
            .env("CARGO_TARGET_DIR", &their_target)
            .args(["--invoke-address", "127.0.0.1"])
            .args([
                "--invoke-port",
                &theirs_port.to_string(),
                "--concurrency",
                CONCURRENCY,
            ])
            .args([
                "--env-var",
                "LAMBDA_STAGE_ENV=dev,APP_GREETING=Hello,APP_API_KEY=bench-key",
            ]),
        &logs.join("cargo-lambda.log"),
    )?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Ours first, cargo-lambda second, then the baseline if there is one.
    let servers: Vec<&Server> = [Some(&ours), Some(&theirs), baseline.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    runtime.block_on(async {
        for server in &servers {
            eprintln!(
                "waiting for {} on port {} (cargo lambda compiles on first invoke)...",
                server.name, server.port
            );
            wait_ready(server.port).await.with_context(|| {
                format!("{} never answered; its log is in {}", server.name, logs.display())
            })?;
        }
        println!(
            "invoke round trip, release hello, {REQUESTS} requests per round, median of {ROUNDS} rounds, keep-alive HTTP/1.1"
        );
        for clients in CLIENT_COUNTS {
            let mut rounds: Vec<Vec<Figures>> = servers.iter().map(|_| Vec::new()).collect();
            for _ in 0..ROUNDS {
                for (server, rounds) in servers.iter().zip(&mut rounds) {
                    rounds.push(measure(server.port, server.child.id(), clients).await?);
                }
            }
            println!("{clients} client(s):");
            let medians: Vec<Figures> = rounds.iter().map(|rounds| Figures::median(rounds)).collect();
            for ((server, figures), rounds) in servers.iter().zip(&medians).zip(&rounds) {
                let (lowest, highest) = cpu_spread(rounds);
                println!(
                    "  {:<20} {:>8.0} inv/s  p50 {:>7.3} ms  p99 {:>7.3} ms  server CPU {:>6.1} us/inv (rounds {lowest:.1}-{highest:.1}; {:.0} in the kernel)",
                    server.name, figures.throughput, figures.p50_ms, figures.p99_ms, figures.server_cpu_us, figures.server_system_us
                );
            }
            let (ours, theirs) = (&medians[0], &medians[1]);
            println!(
                "  ratios: throughput ours/theirs {:.2} (target >= 2)  p50 ours/theirs {:.2} (target <= 0.5)  p99 ours/theirs {:.2}  server CPU ours/theirs {:.2} (target <= 0.5)",
                ours.throughput / theirs.throughput,
                ours.p50_ms / theirs.p50_ms,
                ours.p99_ms / theirs.p99_ms,
                ours.server_cpu_us / theirs.server_cpu_us
            );
            if let Some(baseline) = medians.get(2) {
                println!(
                    "  vs baseline: throughput {:.2}  p50 {:.2}  server CPU {:.2} (ours / baseline serve)",
                    ours.throughput / baseline.throughput,
                    ours.p50_ms / baseline.p50_ms,
                    ours.server_cpu_us / baseline.server_cpu_us
                );
            }
        }
        anyhow::Ok(())
    })?;
    drop((ours, theirs, baseline));
    Ok(())
}

/// The cargo features lambda-stage.toml builds [`FUNCTION`] with, for cargo-lambda to build the
/// same binary as `serve`.
fn manifest_features(root: &Path) -> anyhow::Result<String> {
    let (path, manifest) =
        Manifest::load(root)?.context("the bench needs this repository's lambda-stage.toml")?;
    let function = manifest
        .function(FUNCTION)
        .with_context(|| format!("{} declares no function `{FUNCTION}`", path.display()))?;
    Ok(function.features.join(","))
}

/// `cargo xtask` runs a debug build; the server under test is built the way cargo-lambda builds
/// its releases (see the module doc).
fn build_optimised_xtask(root: &Path) -> anyhow::Result<PathBuf> {
    eprintln!(
        "building an optimised `cargo xtask serve` (profile {PROFILE}; slow the first time)..."
    );
    let status = Command::new(workspace::cargo())
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "--package",
            "xtask",
            "--profile",
            PROFILE,
        ])
        .args([
            "--config",
            &format!("profile.{PROFILE}.inherits=\"release\""),
        ])
        .args(["--config", &format!("profile.{PROFILE}.opt-level=3")])
        .args(["--config", &format!("profile.{PROFILE}.lto=false")])
        .args(["--config", &format!("profile.{PROFILE}.codegen-units=16")])
        .status()
        .context("could not run cargo build")?;
    ensure!(
        status.success(),
        "building xtask with profile {PROFILE} failed (cargo's output is above)"
    );
    Ok(workspace::target_dir(root).join(PROFILE).join("xtask"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A server process in its own process group, stopped (with its function processes) on drop.
struct Server {
    name: &'static str,
    port: u16,
    child: Child,
}

impl Server {
    /// `<xtask> serve hello --release` on a free port.
    fn serve(name: &'static str, xtask: &Path, root: &Path, log: &Path) -> anyhow::Result<Server> {
        let port = free_port()?;
        Server::spawn(
            name,
            port,
            Command::new(xtask)
                .current_dir(root)
                .args(["serve", FUNCTION, "--release", "--port", &port.to_string()])
                .env("APP_API_KEY", "bench-key"),
            log,
        )
    }

    fn spawn(
        name: &'static str,
        port: u16,
        command: &mut Command,
        log: &Path,
    ) -> anyhow::Result<Server> {
        use std::os::unix::process::CommandExt as _;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("could not create {}", log.display()))?;
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| {
                format!(
                    "could not start {name} ({})",
                    command.get_program().to_string_lossy()
                )
            })?;
        Ok(Server { name, port, child })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The group id is the child's pid: this stops the server and the functions it started.
        let group = format!("-{}", self.child.id());
        for signal in ["-INT", "-KILL"] {
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = self.child.wait();
    }
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<bytes::Bytes>>;

/// One invocation: `Err` when it got no HTTP 200 answer, `Ok(Err(_))` for a function error
/// (HTTP 200 with `X-Amz-Function-Error`), else the function's response.
async fn invoke(client: &HttpClient, port: u16) -> anyhow::Result<Result<Vec<u8>, String>> {
    let request = http::Request::post(format!(
        "http://127.0.0.1:{port}/2015-03-31/functions/{FUNCTION}/invocations"
    ))
    .header("content-type", "application/json")
    .body(Full::new(bytes::Bytes::from_static(EVENT.as_bytes())))?;
    let response = client.request(request).await?;
    let status = response.status();
    let function_error = response.headers().get("x-amz-function-error").cloned();
    let body = response.into_body().collect().await?.to_bytes().to_vec();
    let text = || String::from_utf8_lossy(&body).into_owned();
    ensure!(status == 200, "HTTP {status}: {}", text());
    Ok(match function_error {
        Some(kind) => Err(format!("function error ({kind:?}): {}", text())),
        None => Ok(body),
    })
}

/// One invocation that must succeed: a failed cold start measured as an answer would flatter
/// the server that fails.
async fn invoke_ok(client: &HttpClient, port: u16) -> anyhow::Result<()> {
    invoke(client, port).await?.map_err(anyhow::Error::msg)?;
    Ok(())
}

async fn wait_ready(port: u16) -> anyhow::Result<()> {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let started = Instant::now();
    let mut last_error = String::new();
    while started.elapsed() < START_TIMEOUT {
        match invoke(&client, port).await {
            Ok(answer) => {
                let body = answer.map_err(anyhow::Error::msg)?;
                let text = String::from_utf8_lossy(&body);
                ensure!(
                    text.contains(EXPECTED),
                    "unexpected answer from {FUNCTION}: {text}"
                );
                return Ok(());
            }
            Err(err) => last_error = format!("{err:#}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("no answer within {START_TIMEOUT:?}: {last_error}")
}

struct Figures {
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// The server process's CPU time per invocation, in microseconds (user + system).
    server_cpu_us: f64,
    /// Of which in the kernel.
    server_system_us: f64,
}

impl Figures {
    /// Each figure's median over `rounds` (an odd number of them).
    fn median(rounds: &[Figures]) -> Figures {
        let median = |figure: fn(&Figures) -> f64| super::median(rounds.iter().map(figure));
        Figures {
            throughput: median(|f| f.throughput),
            p50_ms: median(|f| f.p50_ms),
            p99_ms: median(|f| f.p99_ms),
            server_cpu_us: median(|f| f.server_cpu_us),
            server_system_us: median(|f| f.server_system_us),
        }
    }
}

/// The lowest and the highest server CPU per invocation of `rounds`.
fn cpu_spread(rounds: &[Figures]) -> (f64, f64) {
    rounds
        .iter()
        .map(|f| f.server_cpu_us)
        .fold((f64::INFINITY, 0.0), |(low, high), cpu| {
            (low.min(cpu), high.max(cpu))
        })
}

/// The CPU time process `pid` has used so far.
#[derive(Clone, Copy)]
struct CpuTime {
    /// All of it, to the nanosecond: the process's CPU clock.
    total: Duration,
    /// The kernel's part, in 10 ms ticks (`/proc/<pid>/stat`).
    system: Duration,
}

impl CpuTime {
    fn of(pid: u32) -> anyhow::Result<CpuTime> {
        Ok(CpuTime {
            total: process_cpu_clock(pid)?,
            system: system_ticks(pid)?,
        })
    }

    /// The time used since `earlier`, per invocation, in microseconds: (total, system).
    fn per_invocation_since(self, earlier: CpuTime, invocations: usize) -> (f64, f64) {
        let per = |now: Duration, then: Duration| {
            now.saturating_sub(then).as_secs_f64() * 1e6 / invocations as f64
        };
        (
            per(self.total, earlier.total),
            per(self.system, earlier.system),
        )
    }
}

/// Process `pid`'s CPU clock: the run time of all its threads, those that have exited included.
fn process_cpu_clock(pid: u32) -> anyhow::Result<Duration> {
    let pid = libc::pid_t::try_from(pid)?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid place for the id; the call only writes it.
    let error = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
    ensure!(
        error == 0,
        "no CPU clock for process {pid}: {}",
        std::io::Error::from_raw_os_error(error)
    );
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        let error = std::io::Error::last_os_error();
        bail!("could not read process {pid}'s CPU clock: {error}");
    }
    Ok(Duration::new(
        u64::try_from(now.tv_sec)?,
        u32::try_from(now.tv_nsec)?,
    ))
}

/// Process `pid`'s system time so far, from `/proc/<pid>/stat`, in 10 ms ticks.
fn system_ticks(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("could not read /proc/{pid}/stat"))?;
    // Field 2, the command name, may hold spaces: count from its closing parenthesis.
    let after_name = stat
        .rfind(')')
        .map(|end| &stat[end + 1..])
        .context("/proc/<pid>/stat has no command name")?;
    // stime is field 15 of the line, the 13th after the name, in USER_HZ, which Linux fixes
    // at 100 for user space.
    let ticks: u64 = after_name
        .split_whitespace()
        .nth(12)
        .with_context(|| format!("/proc/{pid}/stat has no stime"))?
        .parse()?;
    Ok(Duration::from_millis(ticks * 10))
}

async fn measure(port: u16, server_pid: u32, clients: usize) -> anyhow::Result<Figures> {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(clients)
        .build_http();
    for _ in 0..WARMUP {
        invoke_ok(&client, port).await?;
    }
    let per_client = REQUESTS / clients;
    let cpu_before = CpuTime::of(server_pid)?;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let sent = Instant::now();
                    invoke_ok(&client, port).await?;
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(REQUESTS);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (server_cpu_us, server_system_us) =
        CpuTime::of(server_pid)?.per_invocation_since(cpu_before, latencies.len());
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    Ok(Figures {
        throughput: latencies.len() as f64 / elapsed,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        server_cpu_us,
        server_system_us,
    })
}
