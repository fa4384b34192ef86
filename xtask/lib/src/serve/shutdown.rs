//! How `serve` stops. On SIGINT (Ctrl-C) or SIGTERM it:
//!
//! 1. stops accepting connections: the port closes at once, so a new connection is refused;
//!    idle keep-alive connections are closed, and each answer still to come says
//!    `Connection: close`;
//! 2. lets the requests in flight finish (and asynchronous invocations run) for up to a
//!    grace period: the longest timeout among the served functions plus a second for a cold start
//!    and the answer, at most [`MAX_GRACE`];
//! 3. answers each request still running after that with an error (the Invoke API's
//!    `ServiceException`, API Gateway's `503 {"message":"Service Unavailable"}` on the HTTP
//!    fronts), and names each one on stderr with how long it ran;
//! 4. stops every function process and exits with 130 (SIGINT) or 143 (SIGTERM), the codes a
//!    shell gives a program ended by that signal.
//!
//! A second signal while it waits ends the wait at once. Function processes run in their own
//! process group (see the emulator), so a terminal's Ctrl-C reaches `serve` alone and the
//! invocations it lets finish are not killed under it.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use super::invoke_api::aws_error;
use super::{Server, Shared};
use crate::manifest;

/// The longest `serve` waits for requests in flight once asked to stop: long enough for most
/// local invocations, short enough that stopping never feels like a hang.
pub const MAX_GRACE: Duration = Duration::from_secs(5);

/// How long the answers to cut-off requests get to be written before the connections close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A signal that stops `serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT: Ctrl-C on a terminal.
    Interrupt,
    /// SIGTERM: `kill`, process managers, CI runners.
    Terminate,
}

impl StopSignal {
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }

    /// 128 + the signal's number: what a shell reports for a program the signal ended.
    pub fn exit_code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
        }
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made (instead of ending the process).
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Starts catching SIGINT and SIGTERM. Must be called inside the tokio runtime.
    pub fn listen() -> anyhow::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next SIGINT or SIGTERM.
    pub async fn next(&mut self) -> StopSignal {
        tokio::select! {
            _ = self.interrupt.recv() => StopSignal::Interrupt,
            _ = self.terminate.recv() => StopSignal::Terminate,
        }
    }
}

/// How long a stop waits for the requests in flight: the longest timeout of the served
/// functions (in any environment) plus a second, at most [`MAX_GRACE`].
pub(super) fn grace(shared: &Shared) -> Duration {
    let longest_secs = shared
        .functions
        .iter()
        .flat_map(|function| {
            let listed = shared
                .manifest
                .as_ref()
                .filter(|manifest| manifest.function(&function.key).is_some());
            match listed {
                Some(manifest) => manifest
                    .environments
                    .keys()
                    .map(|env| manifest.timeout_secs(&function.key, env))
                    .collect(),
                None => vec![manifest::DEFAULT_TIMEOUT_SECS],
            }
        })
        .max()
        .unwrap_or(manifest::DEFAULT_TIMEOUT_SECS);
    (Duration::from_secs(longest_secs.into()) + Duration::from_secs(1)).min(MAX_GRACE)
}

/// The requests being answered now, and the asynchronous invocations running, so that a stop
/// can wait for them and name the ones it cuts off.
pub(super) struct InFlight {
    next_id: AtomicU64,
    running: Mutex<BTreeMap<u64, Running>>,
    /// How many are running; a stop waits for 0.
    count: watch::Sender<usize>,
    /// Set when a stop gives up waiting: why the ones still running are cut off.
    cut_off: watch::Sender<Option<String>>,
}

struct Running {
    what: String,
    since: Instant,
}

/// One running request or invocation; it is done when this is dropped.
pub(super) struct Tracked {
    in_flight: Arc<InFlight>,
    id: u64,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut running = self.in_flight.running.lock().expect("in-flight requests");
        running.remove(&self.id);
        self.in_flight.count.send_replace(running.len());
    }
}

impl InFlight {
    pub(super) fn new() -> Arc<InFlight> {
        Arc::new(InFlight {
            next_id: AtomicU64::new(0),
            running: Mutex::default(),
            count: watch::Sender::new(0),
            cut_off: watch::Sender::new(None),
        })
    }

    /// Counts `what` (`POST /2015-03-31/...`) as running until the returned value is dropped.
    pub(super) fn track(self: &Arc<Self>, what: String) -> Tracked {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut running = self.running.lock().expect("in-flight requests");
        running.insert(
            id,
            Running {
                what,
                since: Instant::now(),
            },
        );
        self.count.send_replace(running.len());
        Tracked {
            in_flight: Arc::clone(self),
            id,
        }
    }

    /// Resolves once a stop has cut off what is still running, with the reason.
    pub(super) async fn cut_off_reason(&self) -> String {
        let mut receiver = self.cut_off.subscribe();
        let reason = match receiver.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            // The sender lives as long as `self`: this cannot end otherwise.
            Err(_) => None,
        };
        reason.unwrap_or_default()
    }

    fn len(&self) -> usize {
        *self.count.borrow()
    }

    async fn all_done(&self) {
        let mut receiver = self.count.subscribe();
        let _ = receiver.wait_for(|count| *count == 0).await;
    }

    /// Cuts off everything still running (each gets its error answer) and says what it was:
    /// (what, how long it ran), oldest first.
    fn cut_off(&self, reason: String) -> Vec<(String, Duration)> {
        let running = self.running.lock().expect("in-flight requests");
        let cut: Vec<(String, Duration)> = running
            .values()
            .map(|running| (running.what.clone(), running.since.elapsed()))
            .collect();
        self.cut_off.send_replace(Some(reason));
        cut
    }
}

/// Middleware for every request: counted while it runs, and answered with an error if a stop
/// cuts it off.
pub(super) async fn track(
    State(in_flight): State<Arc<InFlight>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let _tracked = in_flight.track(format!("{} {path}", request.method()));
    tokio::select! {
        response = next.run(request) => response,
        reason = in_flight.cut_off_reason() => cut_off_answer(&path, &reason),
    }
}

/// The answer to a request cut off by a stop, in the shape its caller expects.
fn cut_off_answer(path: &str, reason: &str) -> Response {
    if path.starts_with("/2015-03-31/") {
        aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            reason,
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "message": "Service Unavailable" })),
        )
            .into_response()
    }
}

impl Server {
    /// Stops after `signal` as the module doc says, and returns the exit code; a further signal
    /// from `signals` ends the wait for requests in flight at once.
    pub async fn stop(mut self, signal: StopSignal, signals: &mut Signals) -> ExitCode {
        let in_flight = Arc::clone(&self.shared.in_flight);
        let grace = grace(&self.shared);
        if let Some(stop_accepting) = self.stop_accepting.take() {
            let _ = stop_accepting.send(());
        }
        let waiting = in_flight.len();
        if waiting == 0 {
            eprintln!("serve: {}: stopping (nothing in flight)", signal.name());
        } else {
            eprintln!(
                "serve: {}: no new connections; waiting up to {} s for {waiting} request(s) in \
                 flight (signal again to stop now)",
                signal.name(),
                grace.as_secs()
            );
        }
        let started = Instant::now();
        let finished = tokio::select! {
            () = in_flight.all_done() => true,
            () = tokio::time::sleep(grace) => false,
            second = signals.next() => {
                eprintln!("serve: {}: not waiting any longer", second.name());
                false
            }
        };
        if finished {
            if waiting > 0 {
                eprintln!("serve: every request in flight was answered");
            }
        } else {
            let waited = started.elapsed().as_secs_f64();
            let cut = in_flight.cut_off(format!(
                "cargo xtask serve stopped ({}) while this invocation was running: it was cut \
                 off after waiting {waited:.1} s for it",
                signal.name()
            ));
            eprintln!(
                "serve: cut off {} request(s) still running after {waited:.1} s; each was \
                 answered with an error:",
                cut.len()
            );
            for (what, ran) in &cut {
                eprintln!("  {what} (running for {:.1} s)", ran.as_secs_f64());
            }
        }
        // The last answers are written and the connections closed (the server task ends when
        // the last one is).
        if tokio::time::timeout(CLOSE_WAIT, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
        self.shared.stop_functions();
        eprintln!("serve: stopped ({})", signal.name());
        ExitCode::from(signal.exit_code())
    }
}
