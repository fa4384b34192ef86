//! A local AWS Lambda: the Runtime API, served on 127.0.0.1, driving a function's real
//! `bootstrap` binary the way Lambda's execution environments do.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use lambda_stage_emulator::{Emulator, FunctionConfig, Invocation, Outcome};
//!
//! let config = FunctionConfig::new("hello", "target/debug/hello");
//! let emulator = Emulator::start(config)?;
//! match emulator.invoke(Invocation::new(r#"{"name":"Ada"}"#)).await? {
//!     Outcome::Response(body) => println!("{}", String::from_utf8_lossy(&body)),
//!     failure => eprintln!("{}: {}", failure.error_type().unwrap_or_default(), String::from_utf8_lossy(failure.payload())),
//! }
//! emulator.shutdown();
//! # Ok(()) }
//! ```
//!
//! # What it reproduces
//!
//! - **Execution environments.** Each bootstrap process (a *sandbox*) gets its own Runtime API
//!   listener on an ephemeral 127.0.0.1 port (`AWS_LAMBDA_RUNTIME_API`), serving
//!   `GET /2018-06-01/runtime/invocation/next`, `POST .../invocation/{id}/response`,
//!   `POST .../invocation/{id}/error` and `POST .../runtime/init/error`.
//!   Sandboxes start on demand (a cold start on the first invocation) and are reused warm.
//! - **Environment.** The process starts with a clean environment holding what Lambda sets:
//!   `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_VERSION` (`$LATEST`),
//!   `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_RUNTIME_API`, `AWS_REGION`,
//!   `AWS_DEFAULT_REGION`, `AWS_LAMBDA_LOG_GROUP_NAME` (`/aws/lambda/<name>`),
//!   `AWS_LAMBDA_LOG_STREAM_NAME` (`YYYY/MM/DD/[$LATEST]<hex>`),
//!   `AWS_LAMBDA_INITIALIZATION_TYPE=on-demand`, `LAMBDA_TASK_ROOT` and `LAMBDA_RUNTIME_DIR`
//!   (the binary's directory, also the working directory, as `/var/task` is on Lambda),
//!   `_HANDLER=bootstrap`; `TZ=:UTC` and `LANG=en_US.UTF-8` unless the function's own variables
//!   ([`FunctionConfig::env`]) set them; then the function's own variables. `AWS_EXECUTION_ENV` is *not* set: Lambda does not set it for
//!   OS-only runtimes (`provided.al2023`), which is where a Rust bootstrap runs. From the host
//!   only [`HOST_PASSTHROUGH`] is passed on (`PATH`, credentials and endpoint overrides standing in
//!   for the execution role, log filters), byte for byte. Each process runs in its own process
//!   group, so a terminal's Ctrl-C goes to the program hosting the emulator, not to the function.
//! - **Headers.** Every event carries `Lambda-Runtime-Aws-Request-Id`,
//!   `Lambda-Runtime-Deadline-Ms` (now + the function timeout, epoch ms),
//!   `Lambda-Runtime-Invoked-Function-Arn`
//!   (`arn:aws:lambda:<region>:123456789012:function:<name>[:<qualifier>]`),
//!   `Lambda-Runtime-Trace-Id` (an X-Ray `Root=1-…;Parent=…;Sampled=0` id), and, when the caller
//!   gives them, `Lambda-Runtime-Client-Context` and `Lambda-Runtime-Cognito-Identity`.
//! - **Timeouts.** Past the deadline the invocation answers
//!   `{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: <id> Error: Task timed out after 3.00 seconds"}`,
//!   the process is killed, and the next invocation cold-starts a new one. Init has Lambda's
//!   10 s limit ([`INIT_TIMEOUT`]) and is not counted in the function timeout.
//! - **Payload limits.** A request over 6 MB ([`MAX_REQUEST_BYTES`]) is refused before it
//!   reaches the function ([`InvokeError::RequestTooLarge`], Lambda's
//!   `RequestEntityTooLargeException`). A response over [`MAX_RESPONSE_BYTES`] gets the runtime a
//!   `413 RequestEntityTooLarge` (the process keeps running, as on Lambda) and the invoker a
//!   `Function.ResponseSizeTooLarge` function error.
//! - **Crashes.** A process that exits during an invocation answers it with
//!   `Runtime.ExitError` (`Runtime exited with error: exit status 3`); a process that exits while
//!   idle is replaced transparently. Either way the next invocation starts a fresh one.
//! - **Init errors** are surfaced as [`Outcome::InitError`], never swallowed: the body a runtime
//!   posts to `/runtime/init/error` (with its `Lambda-Runtime-Function-Error-Type`), or
//!   `Runtime.ExitError` when the process exits before asking for its first event, or
//!   `Runtime.InvalidEntrypoint` when the binary cannot be started.
//! - **Function errors** come back in Lambda's shape: the error JSON the runtime posted plus its
//!   error type ([`Outcome::FunctionError`]: the JSON's `errorType`, else the
//!   `Lambda-Runtime-Function-Error-Type` header), never an HTTP 500 of the emulator's own.
//!
//! # Concurrency: several sandboxes, then a queue
//!
//! Like Lambda scaling out, concurrent invocations run in separate bootstrap processes, one
//! invocation per process at a time, up to [`FunctionConfig::max_concurrency`] processes (the
//! function's "reserved concurrency"). Beyond that, invocations wait in a FIFO queue for the next
//! free sandbox instead of being throttled (Lambda would answer `TooManyRequestsException`), so
//! local load tests never fail spuriously. Warm sandboxes are reused most-recently-used first. Each
//! invocation is delivered to exactly one sandbox and answered exactly once: a request id that
//! was already answered, or never delivered, gets `400 InvalidRequestID` from the Runtime API.
//!
//! # Not reproduced
//!
//! The memory size is passed to the function (and its peak RSS reported on the `REPORT` line)
//! but not enforced; there is no freeze/thaw between invocations, no extensions API, no
//! SnapStart, no response streaming.

mod clock;
mod delivery;
mod log_stream;
mod report;
mod runtime_api;
mod sandbox;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::delivery::Delivery;
use crate::sandbox::{Attempt, Sandbox};

/// Lambda's synchronous request payload limit (6 MB, as Lambda counts it).
pub const MAX_REQUEST_BYTES: usize = 6_291_456;
/// Lambda's synchronous response payload limit (as Lambda counts it: 6 MB + 100 bytes).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;
/// How much of an invocation's log Lambda returns for `LogType=Tail` (the last 4 KB).
pub const MAX_LOG_TAIL_BYTES: usize = 4096;
/// Lambda's limit on the init phase of an on-demand execution environment.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The account id in every ARN the emulator makes up.
pub const ACCOUNT_ID: &str = "123456789012";
/// The function version a local function runs as.
pub const VERSION: &str = "$LATEST";
/// Default of [`FunctionConfig::timeout`]: Lambda's default, 3 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default of [`FunctionConfig::memory_mb`]: Lambda's default, 128 MB.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Default of [`FunctionConfig::max_concurrency`].
pub const DEFAULT_MAX_CONCURRENCY: usize = 8;
/// Default of [`FunctionConfig::region`].
pub const DEFAULT_REGION: &str = "us-east-1";

/// Host variables passed on to the bootstrap (everything else is cleared, as on Lambda):
/// credentials and endpoints stand in for the execution role, the rest keeps local tools working.
/// `AWS_ENDPOINT_URL_<SERVICE>` variables are passed on too.
pub const HOST_PASSTHROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_LAMBDA_LOG_LEVEL",
    "AWS_LAMBDA_LOG_FORMAT",
    "RUST_LOG",
    "RUST_BACKTRACE",
];

/// Variables the emulator sets itself, as Lambda does; a function may not configure them
/// (`TZ` and `LANG` it sets too, but a function may override them, as on Lambda).
pub use lambda_stage_names::variables::RESERVED_BY_LAMBDA as RESERVED_VARIABLES;

/// A fresh request id, as the emulator makes one when [`Invocation::request_id`] is `None`
/// (for a front end that reports the id before the invocation ends).
pub use delivery::new_request_id;

/// How one function runs: what Lambda's function configuration says.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// The function name (`AWS_LAMBDA_FUNCTION_NAME`, and the name in its ARN).
    pub name: String,
    /// The bootstrap executable (a host build of the function).
    pub binary: PathBuf,
    /// The function's configured environment variables (not the reserved ones Lambda sets).
    pub env: BTreeMap<String, String>,
    /// The function timeout; each invocation's deadline.
    pub timeout: Duration,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (reported, not enforced).
    pub memory_mb: u32,
    /// `AWS_REGION` / `AWS_DEFAULT_REGION`, and the region in the ARN.
    pub region: String,
    /// How many bootstrap processes may run at once (at least 1); further invocations queue.
    pub max_concurrency: usize,
    /// Where the function's output and the `START`/`END`/`REPORT` lines go.
    pub logs: Logs,
}

impl FunctionConfig {
    /// A function with Lambda's defaults: 3 s timeout, 128 MB, no variables.
    pub fn new(name: impl Into<String>, binary: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            binary: binary.into(),
            env: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
            memory_mb: DEFAULT_MEMORY_MB,
            region: DEFAULT_REGION.to_owned(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            logs: Logs::Stderr,
        }
    }

    /// The function's ARN, qualified when `qualifier` (an alias or version) is given.
    pub fn arn(&self, qualifier: Option<&str>) -> String {
        let base = format!(
            "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}",
            self.region, self.name
        );
        match qualifier {
            Some(qualifier) => format!("{base}:{qualifier}"),
            None => base,
        }
    }
}

/// Where a function's logs go (its stdout and stderr, and Lambda's `START`/`END`/`REPORT` lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Logs {
    /// To this process's stderr (never stdout, so a CLI's stdout stays the function's answer).
    #[default]
    Stderr,
    /// Nowhere (benchmarks).
    Discard,
}

/// One synchronous invocation (`InvocationType=RequestResponse`).
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// The event (JSON) the function receives.
    pub payload: Bytes,
    /// The alias or version the caller invoked (the ARN's qualifier), e.g. `staging`.
    pub qualifier: Option<String>,
    /// The client context as JSON (the Invoke API's `X-Amz-Client-Context` header, base64-decoded).
    pub client_context: Option<String>,
    /// The Cognito identity as JSON (`{"cognitoIdentityId":…,"cognitoIdentityPoolId":…}`).
    pub cognito_identity: Option<String>,
    /// The request id to use (for a front end that reports it); a fresh UUID when `None`.
    pub request_id: Option<String>,
    /// The X-Ray trace header to pass on; a fresh one when `None`.
    pub trace_id: Option<String>,
}

impl Invocation {
    /// An invocation of the unqualified function with this event.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Self {
            payload: payload.into(),
            ..Self::default()
        }
    }
}

/// How an invocation ended: what Lambda's Invoke API would report.
///
/// Every variant but [`Outcome::Response`] is what Lambda calls a function error: HTTP 200 with
/// `X-Amz-Function-Error: Unhandled` and [`Outcome::payload`] as the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The function's response, as it posted it.
    Response(Bytes),
    /// The function reported an error (`POST /invocation/{id}/error`), or its response was over
    /// [`MAX_RESPONSE_BYTES`] (`Function.ResponseSizeTooLarge`).
    FunctionError { error_type: String, payload: Bytes },
    /// The function ran past its timeout (`Sandbox.Timedout`); its process was killed.
    Timeout { timeout: Duration, payload: Bytes },
    /// The process exited or crashed while handling the invocation (`Runtime.ExitError`).
    RuntimeExit { status: String, payload: Bytes },
    /// The execution environment failed to initialise: the runtime posted `/runtime/init/error`,
    /// exited before asking for an event, could not be started, or took over [`INIT_TIMEOUT`].
    InitError { error_type: String, payload: Bytes },
}

impl Outcome {
    /// The body Lambda's Invoke API returns: the response, or the error JSON.
    pub fn payload(&self) -> &Bytes {
        match self {
            Outcome::Response(payload)
            | Outcome::FunctionError { payload, .. }
            | Outcome::Timeout { payload, .. }
            | Outcome::RuntimeExit { payload, .. }
            | Outcome::InitError { payload, .. } => payload,
        }
    }

    /// The error type (`Sandbox.Timedout`, `Runtime.ExitError`, the function's own…), or `None`
    /// for a response.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            Outcome::Response(_) => None,
            Outcome::FunctionError { error_type, .. } | Outcome::InitError { error_type, .. } => {
                Some(error_type)
            }
            Outcome::Timeout { .. } => Some(sandbox::TIMEOUT_ERROR_TYPE),
            Outcome::RuntimeExit { .. } => Some(sandbox::EXIT_ERROR_TYPE),
        }
    }

    /// The value of the Invoke API's `X-Amz-Function-Error` header: `Some("Unhandled")` for every
    /// failure, `None` for a response.
    pub fn function_error(&self) -> Option<&'static str> {
        match self {
            Outcome::Response(_) => None,
            _ => Some("Unhandled"),
        }
    }
}

/// Why an invocation did not reach the function at all (an Invoke API error, not a function error).
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// Lambda's `RequestEntityTooLargeException` (HTTP 413).
    #[error("Request must be smaller than {MAX_REQUEST_BYTES} bytes for the InvokeFunction operation (got {size} bytes)")]
    RequestTooLarge { size: usize },
    /// [`Emulator::shutdown`] was called.
    #[error("the emulator of function `{function}` was shut down")]
    ShutDown { function: String },
    /// The emulator could not open a pipe for the function's output (too many open files?).
    #[error("could not open a pipe for the output of function `{function}`: {source}")]
    OutputPipe {
        function: String,
        source: std::io::Error,
    },
    /// The emulator could not open a Runtime API listener on 127.0.0.1.
    #[error(
        "could not open a Runtime API listener on 127.0.0.1 for function `{function}`: {source}"
    )]
    Listen {
        function: String,
        source: std::io::Error,
    },
}

/// Why [`Emulator::start`] refused a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("function `{function}` sets `{variable}`, which Lambda reserves (the emulator sets it itself); remove it from the function's variables")]
    ReservedVariable { function: String, variable: String },
    #[error("function `{function}`: max_concurrency must be at least 1")]
    NoConcurrency { function: String },
    #[error("function `{function}`: the timeout must be at least 1 ms")]
    NoTimeout { function: String },
}

/// A function on the emulated Lambda. Cheap to clone; clones share the sandboxes.
///
/// Must be used inside a tokio runtime (it spawns the Runtime API servers and processes there).
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

struct Inner {
    config: FunctionConfig,
    /// One permit per sandbox that may run: waiting on it is the invocation queue.
    slots: Semaphore,
    /// Warm sandboxes waiting for an invocation, most recently used last.
    idle: Mutex<Vec<Sandbox>>,
    /// Bumped by [`Emulator::restart`]: sandboxes of an older generation are not reused.
    generation: AtomicU64,
    shut_down: AtomicBool,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("function", &self.inner.config.name)
            .field("binary", &self.inner.config.binary)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Checks the configuration and gets ready to invoke. No process starts until the first
    /// invocation (an on-demand cold start, as on Lambda).
    pub fn start(config: FunctionConfig) -> Result<Emulator, ConfigError> {
        if let Some(variable) = config
            .env
            .keys()
            .find(|key| RESERVED_VARIABLES.contains(&key.as_str()))
        {
            return Err(ConfigError::ReservedVariable {
                function: config.name.clone(),
                variable: variable.clone(),
            });
        }
        if config.max_concurrency == 0 {
            return Err(ConfigError::NoConcurrency {
                function: config.name,
            });
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::NoTimeout {
                function: config.name,
            });
        }
        Ok(Emulator {
            inner: Arc::new(Inner {
                slots: Semaphore::new(config.max_concurrency),
                config,
                idle: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
                shut_down: AtomicBool::new(false),
            }),
        })
    }

    /// The configuration this emulator runs.
    pub fn config(&self) -> &FunctionConfig {
        &self.inner.config
    }

    /// Invokes the function synchronously and waits for its outcome (at most the init time plus
    /// the function timeout, after a possible wait in the queue).
    pub async fn invoke(&self, invocation: Invocation) -> Result<Outcome, InvokeError> {
        Ok(self.invoke_with_log(invocation).await?.0)
    }

    /// Like [`Emulator::invoke`], with the end of the invocation's log, as Lambda's
    /// `LogType=Tail` returns it: the last [`MAX_LOG_TAIL_BYTES`] of `START`, the function's
    /// stdout and stderr while it handled the event, `END` and `REPORT`. Empty with
    /// [`Logs::Discard`].
    pub async fn invoke_with_log(
        &self,
        invocation: Invocation,
    ) -> Result<(Outcome, Bytes), InvokeError> {
        let inner = &self.inner;
        if invocation.payload.len() > MAX_REQUEST_BYTES {
            return Err(InvokeError::RequestTooLarge {
                size: invocation.payload.len(),
            });
        }
        let _slot = inner
            .slots
            .acquire()
            .await
            .map_err(|_| InvokeError::ShutDown {
                function: inner.config.name.clone(),
            })?;
        let delivery = Arc::new(Delivery::new(&inner.config, invocation));
        loop {
            let generation = inner.generation.load(Ordering::SeqCst);
            let warm = inner.idle.lock().expect("idle sandboxes").pop();
            let mut sandbox = match warm {
                Some(sandbox) => sandbox,
                None => match Sandbox::spawn(&inner.config, generation, &delivery.request_id).await
                {
                    Ok(sandbox) => sandbox,
                    Err(sandbox::SpawnError::Listen(source)) => {
                        return Err(InvokeError::Listen {
                            function: inner.config.name.clone(),
                            source,
                        })
                    }
                    Err(sandbox::SpawnError::OutputPipe(source)) => {
                        return Err(InvokeError::OutputPipe {
                            function: inner.config.name.clone(),
                            source,
                        })
                    }
                    Err(sandbox::SpawnError::Exec(outcome)) => return Ok((outcome, Bytes::new())),
                },
            };
            match sandbox.invoke(&inner.config, &delivery).await {
                // The warm process died while idle: Lambda would have replaced it unseen.
                Attempt::NotDelivered => continue,
                Attempt::Done {
                    outcome,
                    reusable,
                    log_tail,
                } => {
                    if reusable {
                        self.put_back(sandbox);
                    }
                    return Ok((outcome, log_tail));
                }
            }
        }
    }

    /// Makes every later invocation start a fresh process (a cold start), e.g. after a rebuild.
    /// Idle processes stop now; busy ones finish their invocation first.
    pub fn restart(&self) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        let stale = std::mem::take(&mut *self.inner.idle.lock().expect("idle sandboxes"));
        drop(stale);
    }

    /// Stops every process; later invocations fail with [`InvokeError::ShutDown`]. Dropping
    /// the last clone of the emulator stops the processes too.
    pub fn shutdown(&self) {
        self.inner.shut_down.store(true, Ordering::SeqCst);
        self.inner.slots.close();
        let idle = std::mem::take(&mut *self.inner.idle.lock().expect("idle sandboxes"));
        drop(idle);
    }

    fn put_back(&self, sandbox: Sandbox) {
        let inner = &self.inner;
        if inner.shut_down.load(Ordering::SeqCst)
            || sandbox.generation() != inner.generation.load(Ordering::SeqCst)
        {
            return;
        }
        inner.idle.lock().expect("idle sandboxes").push(sandbox);
    }
}
