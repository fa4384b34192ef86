//! One execution environment: a bootstrap process, its Runtime API, and the driver that turns
//! what the runtime does into an [`Outcome`].

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Sleep;

use crate::delivery::Delivery;
use crate::log_stream::LogStream;
use crate::report::{PeakMemory, Report};
use crate::runtime_api::{self, ApiState, SandboxEvent};
use crate::{
    FunctionConfig, Logs, Outcome, HOST_PASSTHROUGH, INIT_TIMEOUT, MAX_RESPONSE_BYTES, VERSION,
};

pub(crate) const TIMEOUT_ERROR_TYPE: &str = "Sandbox.Timedout";
pub(crate) const EXIT_ERROR_TYPE: &str = "Runtime.ExitError";
const ENTRYPOINT_ERROR_TYPE: &str = "Runtime.InvalidEntrypoint";
const RESPONSE_TOO_LARGE_ERROR_TYPE: &str = "Function.ResponseSizeTooLarge";

pub(crate) enum SpawnError {
    Listen(std::io::Error),
    /// No pipe could be opened for the process's output.
    OutputPipe(std::io::Error),
    /// The binary could not be started: Lambda's `Runtime.InvalidEntrypoint` init error.
    Exec(Outcome),
}

pub(crate) enum Attempt {
    /// A warm process had exited before it took the event; try a fresh one.
    NotDelivered,
    Done {
        outcome: Outcome,
        reusable: bool,
        /// The end of the invocation's log (see [`crate::Emulator::invoke_with_log`]).
        log_tail: Bytes,
    },
}

pub(crate) struct Sandbox {
    generation: u64,
    deliveries: mpsc::Sender<Arc<Delivery>>,
    events: mpsc::UnboundedReceiver<SandboxEvent>,
    /// Dropping it kills the process.
    _kill: oneshot::Sender<()>,
    server: JoinHandle<()>,
    peak_memory: PeakMemory,
    spawned_at: Instant,
    /// The deadline of the invocation in flight (before the first, of init). One timer for the
    /// sandbox's life, moved for each invocation: moved later, as a deadline always is, it
    /// leaves the runtime asleep, while a new timer earlier than every other one wakes the
    /// runtime's driver up to re-arm (a syscall and a wake-up per invocation).
    deadline: Pin<Box<Sleep>>,
    /// Set once the runtime asked for its first event.
    init_duration: Option<Duration>,
    init_reported: bool,
    /// The process's output, when it is kept ([`Logs::Stderr`]).
    output: Option<Arc<LogStream>>,
    output_pump: Option<JoinHandle<()>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(pump) = &self.output_pump {
            pump.abort();
        }
    }
}

impl Sandbox {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) async fn spawn(
        config: &FunctionConfig,
        generation: u64,
        request_id: &str,
    ) -> Result<Sandbox, SpawnError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(SpawnError::Listen)?;
        let address = listener.local_addr().map_err(SpawnError::Listen)?;
        let (delivery_tx, delivery_rx) = mpsc::channel(1);
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let state = Arc::new(ApiState::new(delivery_rx, event_tx.clone(), config.timeout));
        let server = tokio::spawn(runtime_api::serve(listener, state));

        let binary = std::path::absolute(&config.binary).unwrap_or_else(|_| config.binary.clone());
        let task_root = binary
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut command = tokio::process::Command::new(&binary);
        command
            .env_clear()
            .envs(host_variables())
            .envs(OVERRIDABLE_DEFAULTS.iter().copied())
            .envs(&config.env)
            .envs(lambda_variables(config, &address.to_string(), &task_root))
            .current_dir(&task_root)
            .stdin(Stdio::null())
            // Its own process group: a terminal's Ctrl-C (SIGINT to the foreground group) reaches
            // the program running the emulator, which decides how its invocations end (`serve`
            // lets them finish), instead of killing the function mid-invocation.
            .process_group(0)
            .kill_on_drop(true);
        let mut output = None;
        match config.logs {
            Logs::Stderr => {
                let (stdout, stderr, stream) = LogStream::open().map_err(SpawnError::OutputPipe)?;
                command.stdout(stdout).stderr(stderr);
                output = Some(Arc::new(stream));
            }
            Logs::Discard => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let spawned_at = Instant::now();
        let spawned = command.spawn();
        // Our copies of the pipe's write end go with the command: the child holds the only ones.
        drop(command);
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                server.abort();
                let message = format!(
                    "RequestId: {request_id} Error: fork/exec {}: {err}",
                    binary.display()
                );
                return Err(SpawnError::Exec(Outcome::InitError {
                    error_type: ENTRYPOINT_ERROR_TYPE.to_owned(),
                    payload: error_json(ENTRYPOINT_ERROR_TYPE, &message),
                }));
            }
        };
        let peak_memory = PeakMemory::of(child.id());
        let output_pump = output.clone().map(|output| tokio::spawn(output.pump()));
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            tokio::select! {
                status = child.wait() => {
                    let _ = event_tx.send(SandboxEvent::Exited(status.ok()));
                }
                _ = kill_rx => {
                    let _ = child.kill().await;
                }
            }
        });
        Ok(Sandbox {
            generation,
            deliveries: delivery_tx,
            events: event_rx,
            _kill: kill_tx,
            server,
            peak_memory,
            spawned_at,
            deadline: Box::pin(tokio::time::sleep_until((spawned_at + INIT_TIMEOUT).into())),
            init_duration: None,
            init_reported: false,
            output,
            output_pump,
        })
    }

    /// Runs one invocation to its end.
    pub(crate) async fn invoke(
        &mut self,
        config: &FunctionConfig,
        delivery: &Arc<Delivery>,
    ) -> Attempt {
        let warm = self.init_duration.is_some();
        let id = delivery.request_id.as_str();
        if self.deliveries.send(Arc::clone(delivery)).await.is_err() {
            return Attempt::NotDelivered;
        }
        let started = Instant::now();
        if let Some(output) = &self.output {
            output.start(&format!("START RequestId: {id} Version: {VERSION}"));
        }

        // Until the runtime takes the event: init (cold) or the way back to `/next` (warm).
        let take_by = if warm {
            started + config.timeout
        } else {
            self.spawned_at + INIT_TIMEOUT
        };
        // Moved to the function's deadline once the runtime has the event.
        self.deadline.as_mut().reset(take_by.into());
        loop {
            let event = tokio::select! {
                biased;
                event = self.events.recv() => event,
                () = self.deadline.as_mut() => {
                    if warm {
                        return self.finish(id, started, config, self.timed_out(id, config));
                    }
                    let message = format!(
                        "RequestId: {id} Error: Init phase timed out after {:.2} seconds",
                        INIT_TIMEOUT.as_secs_f64()
                    );
                    let outcome = Outcome::InitError {
                        error_type: TIMEOUT_ERROR_TYPE.to_owned(),
                        payload: error_json(TIMEOUT_ERROR_TYPE, &message),
                    };
                    return self.finish(id, started, config, (outcome, false));
                }
            };
            match event {
                Some(SandboxEvent::Initialized { at }) => {
                    self.init_duration = Some(at.duration_since(self.spawned_at));
                }
                Some(SandboxEvent::Taken {
                    request_id,
                    deadline,
                }) if request_id == id => {
                    self.deadline.as_mut().reset(deadline.into());
                    break;
                }
                Some(SandboxEvent::InitError { error_type, body }) => {
                    let outcome = Outcome::InitError {
                        error_type,
                        payload: body,
                    };
                    return self.finish(id, started, config, (outcome, false));
                }
                Some(SandboxEvent::Exited(_)) | None if warm => return Attempt::NotDelivered,
                Some(SandboxEvent::Exited(status)) => {
                    let message = format!(
                        "RequestId: {id} Error: Runtime exited with error: {}",
                        describe_exit(status)
                    );
                    let outcome = Outcome::InitError {
                        error_type: EXIT_ERROR_TYPE.to_owned(),
                        payload: error_json(EXIT_ERROR_TYPE, &message),
                    };
                    return self.finish(id, started, config, (outcome, false));
                }
                // Leftovers from an earlier invocation (already answered or abandoned).
                Some(_) => {}
                None => {
                    let outcome = runtime_exit(id, None);
                    return self.finish(id, started, config, (outcome, false));
                }
            }
        }

        let started = Instant::now();
        loop {
            let event = tokio::select! {
                biased;
                event = self.events.recv() => event,
                () = self.deadline.as_mut() => return self.finish(id, started, config, self.timed_out(id, config)),
            };
            let result = match event {
                Some(SandboxEvent::Response { request_id, body }) if request_id == id => {
                    (Outcome::Response(body), true)
                }
                Some(SandboxEvent::Error {
                    request_id,
                    error_type,
                    body,
                }) if request_id == id => (
                    Outcome::FunctionError {
                        error_type,
                        payload: body,
                    },
                    true,
                ),
                Some(SandboxEvent::ResponseTooLarge { request_id, size }) if request_id == id => {
                    let message = format!(
                        "Response payload size ({size} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                    );
                    let outcome = Outcome::FunctionError {
                        error_type: RESPONSE_TOO_LARGE_ERROR_TYPE.to_owned(),
                        payload: error_json(RESPONSE_TOO_LARGE_ERROR_TYPE, &message),
                    };
                    (outcome, true)
                }
                Some(SandboxEvent::Exited(status)) => (runtime_exit(id, status), false),
                None => (runtime_exit(id, None), false),
                Some(_) => continue,
            };
            return self.finish(id, started, config, result);
        }
    }

    fn timed_out(&self, id: &str, config: &FunctionConfig) -> (Outcome, bool) {
        let seconds = config.timeout.as_secs_f64();
        if let Some(output) = &self.output {
            output.lines(&[&format!(
                "{} {id} Task timed out after {seconds:.2} seconds",
                crate::clock::rfc3339_now()
            )]);
        }
        let message = format!("RequestId: {id} Error: Task timed out after {seconds:.2} seconds");
        let outcome = Outcome::Timeout {
            timeout: config.timeout,
            payload: error_json(TIMEOUT_ERROR_TYPE, &message),
        };
        (outcome, false)
    }

    /// Logs Lambda's `END` and `REPORT` lines and hands back the outcome and the log tail.
    fn finish(
        &mut self,
        id: &str,
        started: Instant,
        config: &FunctionConfig,
        (outcome, reusable): (Outcome, bool),
    ) -> Attempt {
        let mut log_tail = Bytes::new();
        if let Some(output) = &self.output {
            let report = Report {
                request_id: id,
                duration: started.elapsed(),
                memory_size_mb: config.memory_mb,
                max_memory_used_mb: self.peak_memory.mb(),
                init_duration: self.init_duration.filter(|_| !self.init_reported),
                error_type: outcome.error_type(),
            };
            log_tail = output.finish(&[&format!("END RequestId: {id}"), &report.to_string()]);
        }
        self.init_reported = true;
        Attempt::Done {
            outcome,
            reusable,
            log_tail,
        }
    }
}

/// The variables Lambda sets in every execution environment of an OS-only runtime.
fn lambda_variables(
    config: &FunctionConfig,
    runtime_api: &str,
    task_root: &Path,
) -> Vec<(&'static str, String)> {
    let task_root = task_root.display().to_string();
    let stream = format!(
        "{}/[{VERSION}]{}",
        crate::clock::utc_date_path(),
        uuid::Uuid::new_v4().simple()
    );
    vec![
        ("AWS_LAMBDA_FUNCTION_NAME", config.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", VERSION.to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            config.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_REGION", config.region.clone()),
        ("AWS_DEFAULT_REGION", config.region.clone()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", config.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("LAMBDA_TASK_ROOT", task_root.clone()),
        ("LAMBDA_RUNTIME_DIR", task_root),
        ("_HANDLER", "bootstrap".to_owned()),
        // Lambda has no instance metadata service: an AWS SDK without credentials must fail at
        // once instead of probing 169.254.169.254 from a developer's machine.
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// What Lambda sets but lets a function's own variables override.
const OVERRIDABLE_DEFAULTS: &[(&str, &str)] = &[("TZ", ":UTC"), ("LANG", "en_US.UTF-8")];

/// The host's variables in [`HOST_PASSTHROUGH`], values as they are: read with `vars_os`, as a
/// host variable that is not UTF-8 (a `PATH` entry, or any other variable) must not stop the
/// function from starting.
fn host_variables() -> impl Iterator<Item = (OsString, OsString)> {
    std::env::vars_os().filter(|(key, _)| {
        key.to_str().is_some_and(|key| {
            HOST_PASSTHROUGH.contains(&key) || key.starts_with("AWS_ENDPOINT_URL_")
        })
    })
}

fn runtime_exit(id: &str, status: Option<std::process::ExitStatus>) -> Outcome {
    let status = describe_exit(status);
    let message = format!("RequestId: {id} Error: Runtime exited with error: {status}");
    Outcome::RuntimeExit {
        payload: error_json(EXIT_ERROR_TYPE, &message),
        status,
    }
}

/// An exit status the way Lambda words it (`exit status 3`, `signal: aborted`).
fn describe_exit(status: Option<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    let Some(status) = status else {
        return "unknown exit status".to_owned();
    };
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(6) => "signal: aborted".to_owned(),
        Some(9) => "signal: killed".to_owned(),
        Some(11) => "signal: segmentation fault".to_owned(),
        Some(15) => "signal: terminated".to_owned(),
        Some(signal) => format!("signal: {signal}"),
        None => "unknown exit status".to_owned(),
    }
}

fn error_json(error_type: &str, message: &str) -> Bytes {
    Bytes::from(json!({"errorType": error_type, "errorMessage": message}).to_string())
}
