//! `cargo xtask serve [FUNCTION...] [--port 9000] [--watch]`: a long-running local Lambda for the
//! workspace's functions, on 127.0.0.1.
//!
//! - **AWS Invoke API**: `POST /2015-03-31/functions/<name>[:<qualifier>]/invocations` (also
//!   `?Qualifier=`), answered as Lambda answers it: the payload with `X-Amz-Executed-Version`,
//!   `X-Amzn-RequestId`, `X-Amz-Function-Error: Unhandled` for a function error,
//!   `X-Amz-Log-Result` with `X-Amz-Log-Type: Tail`, `InvocationType` `Event` (202) and `DryRun`
//!   (204), and Lambda's error types (`ResourceNotFoundException`, `RequestTooLargeException`,
//!   `InvalidRequestContentException`...) in `X-Amzn-ErrorType`. So the AWS SDKs and
//!   `aws lambda invoke --endpoint-url http://127.0.0.1:9000` work against it. `<name>` is the
//!   manifest's function key, its deployed name, or an ARN; the qualifier is an environment's
//!   alias, which selects the environment as the deployed function sees it.
//! - **Request bodies** are read here, not by axum's extractors (whose 2 MiB default would answer
//!   `413 text/plain`): up to [`MAX_BODY_BYTES`] they reach the emulator, which refuses an event
//!   over Lambda's 6 MB with `RequestTooLargeException`; a larger body gets the same refusal
//!   (API Gateway's `413 {"message":"Request Entity Too Large"}` on the HTTP fronts). An
//!   oversize body is read to its end (up to [`MAX_DRAIN_BYTES`], else `Connection: close`), so
//!   a keep-alive client's next request on the connection is answered.
//! - **The app's HTTP API**: `<METHOD> /<env>/<path>?<query>` is the request
//!   `https://<api>/<env>/<path>` as deployed ([`app_api`]): matched against the `http` routes
//!   of the served functions in `<env>` ([`routes`](crate::routes) has API Gateway's precedence) and delivered
//!   to the winner in `<env>` (through its alias) with the event API Gateway sends: the route
//!   key, the path parameters, and the stage (single-stack: `<env>`, which stays in `rawPath`;
//!   multi-stack: `$default`, `rawPath` without it). No route: `404 {"message":"Not Found"}`.
//!   Every environment where a served function has a route is mounted.
//! - **Function front**: `<METHOD> /<name>/<path>?<query>` goes straight to one function as
//!   an HTTP API event for `<path>` on the `$default` stage and route, in `--env`. An environment
//!   shadows a function of the same name here; the function stays reachable by its deployed name
//!   (`/<app>-<function>/`).
//! - Both turn the function's response back into HTTP (status, headers, cookies, base64 bodies).
//!   A function error becomes API Gateway's `500 {"message":"Internal Server Error"}`; the reason
//!   is on stderr.
//! - **Environment**: unqualified invocations and the function front run in `--env` (through its
//!   alias); the Invoke API's qualifier and the app's API's `/<env>` choose any other. Each
//!   environment's variables are exactly `cargo xtask invoke`'s ([`invoke::Plan`]): the
//!   manifest's, with the shell's `APP_*` on top.
//! - **`/`** says what is served here (functions, environments, the URL forms, every route); a
//!   path that names no function or environment gets the same text with a 404.
//! - **`--watch`**: a change to a `.rs` or `Cargo.toml` file of a workspace member rebuilds the
//!   served functions; a function whose binary changed is restarted (its next invocation is a cold
//!   start of the new build), without restarting the server. A failed build keeps the old one.
//! - **Stopping** (SIGINT, SIGTERM): no new connections, the requests in flight finish within a
//!   bound, the ones cut off are answered with an error and named, exit 130 or 143
//!   ([`shutdown`]).
//!
//! One module per idea: `invoke_api` (Lambda's Invoke API), `http_front` (the app's API and
//! the function fronts), `body` (reading request bodies), `index` (what is served where),
//! `watch` (`--watch`), [`shutdown`] (signals, requests in flight, stopping); this one starts
//! the server and runs each function's emulators.
//!
//! The function's own log lines go to this process's stderr, as `invoke`'s do, and
//! `X-Amz-Log-Result` carries the invocation's last 4 KB of them, between Lambda's `START` and
//! `END`/`REPORT` lines.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _};
use axum::routing::{any, post};
use axum::Router;
use lambda_stage_emulator::{Emulator, FunctionConfig, Logs};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::app_api;
use crate::invoke::{self, Plan};
use crate::manifest::{Manifest, Strategy};
use crate::routes::RouteTable;
use crate::workspace;

mod body;
mod http_front;
mod index;
mod invoke_api;
pub mod shutdown;
mod watch;

pub use body::{MAX_BODY_BYTES, MAX_DRAIN_BYTES};
use shutdown::{InFlight, Signals};

/// The port `serve` listens on by default (the one cargo-lambda and SAM use too).
pub const DEFAULT_PORT: u16 = 9000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The functions to serve (keys of `[functions]` in lambda-stage.toml, or packages);
    /// default: every function of the manifest.
    pub functions: Vec<String>,
    /// The port to listen on, on 127.0.0.1 (`0`: any free port, printed at start).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// The environment of unqualified invocations and of the `/<function>/` front (the app's
    /// API at `/<env>/` serves every environment).
    #[arg(long, default_value = invoke::DEFAULT_ENV)]
    pub env: String,
    /// Build with the release profile (default: debug, faster to build).
    #[arg(long)]
    pub release: bool,
    /// Rebuild and restart a function when its sources change.
    #[arg(long)]
    pub watch: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = workspace::root()?;
    let options = Options {
        root,
        functions: args.functions,
        env: args.env,
        release: args.release,
        watch: args.watch,
        app_variables: invoke::shell_app_variables()?,
    };
    // One thread: every invocation hops between three connections (the caller's, the runtime's
    // `/next` and its answer) and the emulator's tasks, and on one thread a hop is a queue push,
    // not a futex wake-up of another worker (`cargo xtask bench emulator`: about a quarter less
    // CPU per invocation with one client). Builds run on the blocking pool, not on this thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let code = runtime.block_on(async {
        // Caught from here on, so a signal during the first build stops it too.
        let mut signals = Signals::listen().context("could not listen for SIGINT and SIGTERM")?;
        let listener = TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| {
                format!(
                    "could not listen on 127.0.0.1:{}; is another server using it? Pick another with --port",
                    args.port
                )
            })?;
        let server = tokio::select! {
            server = Server::start(listener, options) => server?,
            signal = signals.next() => {
                eprintln!("serve: {}: stopped before serving anything", signal.name());
                return Ok(ExitCode::from(signal.exit_code()));
            }
        };
        println!("listening on http://{}", server.addr());
        for line in server.start_up_lines() {
            eprintln!("{line}");
        }
        let signal = signals.next().await;
        anyhow::Ok(server.stop(signal, &mut signals).await)
    });
    // A build cut short by a signal may still be running on a blocking thread: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// What to serve.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workspace root (holds lambda-stage.toml, if any).
    pub root: PathBuf,
    /// Function keys or packages; empty: every function of the manifest.
    pub functions: Vec<String>,
    /// The environment of unqualified invocations and of the `/<function>/` front.
    pub env: String,
    pub release: bool,
    pub watch: bool,
    /// `APP_*` variables set on top of the manifest's, as the shell's are for `invoke`.
    pub app_variables: Vec<(String, String)>,
}

/// A running `serve`: the HTTP server and the functions' emulators.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    /// Sent (or dropped) to stop accepting connections and close them once answered.
    stop_accepting: Option<oneshot::Sender<()>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

struct Shared {
    addr: SocketAddr,
    manifest: Option<Manifest>,
    default_env: String,
    shell: Vec<(String, String)>,
    functions: Vec<Function>,
    /// Every name a caller may use for a function → (index in `functions`, the environment the
    /// name itself fixes: a multi-stack function has one deployed name per environment).
    names: HashMap<String, (usize, Option<String>)>,
    /// The app's HTTP API of each environment where a served function has a route.
    apis: BTreeMap<String, EnvironmentApi>,
    /// The requests and asynchronous invocations running now.
    in_flight: Arc<InFlight>,
}

/// One environment's stage of the app's HTTP API.
struct EnvironmentApi {
    stage: String,
    /// Each route leads to an index in `Shared::functions`.
    routes: RouteTable<usize>,
}

struct Function {
    key: String,
    package: String,
    features: Vec<String>,
    binary: PathBuf,
    /// One emulator per environment, started on first use.
    emulators: Mutex<HashMap<String, (Arc<Plan>, Emulator)>>,
}

impl Server {
    /// Builds the functions (host builds, as `invoke` does) and serves them on `listener`.
    pub async fn start(listener: TcpListener, options: Options) -> anyhow::Result<Server> {
        let addr = listener.local_addr()?;
        let manifest = Manifest::load(&options.root)?.map(|(_, manifest)| manifest);
        let keys = match (&options.functions[..], &manifest) {
            ([], Some(manifest)) => manifest.functions.keys().cloned().collect(),
            ([], None) => bail!(
                "no lambda-stage.toml in {}: name the functions (packages) to serve, e.g. `cargo xtask serve hello`",
                options.root.display()
            ),
            (keys, _) => keys.to_vec(),
        };
        let mut functions = Vec::new();
        let mut names = HashMap::new();
        for key in &keys {
            invoke::require_function_or_package(&options.root, manifest.as_ref(), key)?;
        }
        for key in keys {
            let Plan {
                package, features, ..
            } = Plan::new(manifest.as_ref(), &key, &options.env, Vec::new())?;
            let binary = build(&options.root, &package, &features, options.release).await?;
            let index = functions.len();
            names.insert(key.clone(), (index, None));
            if let Some(manifest) = manifest.as_ref().filter(|m| m.function(&key).is_some()) {
                for env in manifest.environments.keys() {
                    let fixed = (manifest.strategy == Strategy::MultiStack).then(|| env.clone());
                    names.insert(manifest.function_name(&key, env), (index, fixed));
                }
            }
            functions.push(Function {
                key,
                package,
                features,
                binary,
                emulators: Mutex::default(),
            });
        }
        let apis = match &manifest {
            Some(manifest) => environment_apis(manifest, &functions)?,
            None => BTreeMap::new(),
        };
        let shared = Arc::new(Shared {
            addr,
            manifest,
            default_env: options.env.clone(),
            shell: options.app_variables.clone(),
            functions,
            names,
            apis,
            in_flight: InFlight::new(),
        });
        let watcher = if options.watch {
            Some(watch::watch(
                &options.root,
                options.release,
                Arc::clone(&shared),
            )?)
        } else {
            None
        };
        let app = Router::new()
            .route(
                "/2015-03-31/functions/{function}/invocations",
                post(invoke_api::invoke_api),
            )
            .route("/", any(index::index))
            .route("/{function}", any(http_front::http_front))
            .route("/{function}/{*path}", any(http_front::http_front))
            .fallback(index::not_served)
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&shared.in_flight),
                shutdown::track,
            ))
            .with_state(Arc::clone(&shared));
        let (stop_accepting, stop_requested) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let stop = async {
                let _ = stop_requested.await;
            };
            if let Err(err) = axum::serve(listener, service)
                .with_graceful_shutdown(stop)
                .await
            {
                eprintln!("error: serve stopped: {err}");
            }
        });
        Ok(Server {
            addr,
            shared,
            task,
            stop_accepting: Some(stop_accepting),
            _watcher: watcher,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The served functions, by manifest key (or package).
    pub fn function_keys(&self) -> impl Iterator<Item = &str> {
        self.shared.functions.iter().map(|f| f.key.as_str())
    }

    /// What is served where, one line each: every function's Invoke API and front, every route
    /// of the app's API per environment, and any function front an environment shadows.
    pub fn start_up_lines(&self) -> Vec<String> {
        self.shared.served_lines()
    }

    /// Stops the server and every function process at once (see [`Server::stop`] for a
    /// graceful stop).
    pub fn shutdown(self) {
        self.task.abort();
        self.shared.stop_functions();
    }
}

async fn build(
    root: &Path,
    package: &str,
    features: &[String],
    release: bool,
) -> anyhow::Result<PathBuf> {
    let (root, package, features) = (root.to_owned(), package.to_owned(), features.to_vec());
    tokio::task::spawn_blocking(move || {
        crate::build::host::build_binary(&root, &package, &features, release)
    })
    .await
    .context("the build task panicked")?
}

/// The app's HTTP API of each environment in which a served function has a route.
fn environment_apis(
    manifest: &Manifest,
    functions: &[Function],
) -> anyhow::Result<BTreeMap<String, EnvironmentApi>> {
    let mut apis = BTreeMap::new();
    for env in manifest.environments.keys() {
        let listed = functions
            .iter()
            .enumerate()
            .filter(|(_, function)| manifest.function(&function.key).is_some())
            .map(|(index, function)| (function.key.as_str(), index));
        let routes = app_api::routes(manifest, env, listed)?;
        if !routes.is_empty() {
            let stage = app_api::stage(manifest, env);
            apis.insert(env.clone(), EnvironmentApi { stage, routes });
        }
    }
    Ok(apis)
}

impl Shared {
    /// The function and environment a caller means by `name` and `qualifier`, or `None` when
    /// Lambda would answer `ResourceNotFoundException`.
    fn resolve(&self, name: &str, qualifier: Option<&str>) -> Option<(&Function, String)> {
        let (index, fixed) = self.names.get(name)?;
        let function = &self.functions[*index];
        let listed = self
            .manifest
            .as_ref()
            .filter(|manifest| manifest.function(&function.key).is_some());
        let env = match (qualifier.filter(|q| *q != "$LATEST"), listed) {
            (None, _) => fixed.clone().unwrap_or_else(|| self.default_env.clone()),
            (Some(qualifier), None) => qualifier.to_owned(),
            (Some(qualifier), Some(manifest)) => manifest
                .environments
                .keys()
                .filter(|env| fixed.as_ref().is_none_or(|fixed| fixed == *env))
                .find(|env| *env == qualifier || manifest.alias(env) == qualifier)?
                .clone(),
        };
        Some((function, env))
    }

    /// The emulator running `function` in `env`, started on first use.
    fn emulator(&self, function: &Function, env: &str) -> anyhow::Result<(Arc<Plan>, Emulator)> {
        let mut emulators = function.emulators.lock().expect("emulators");
        if let Some(running) = emulators.get(env) {
            return Ok(running.clone());
        }
        let plan = Arc::new(Plan::new(
            self.manifest.as_ref(),
            &function.key,
            env,
            self.shell.clone(),
        )?);
        let config = FunctionConfig {
            env: plan.variables.clone(),
            timeout: plan.timeout,
            memory_mb: plan.memory_mb,
            region: plan.region.clone(),
            logs: Logs::Stderr,
            ..FunctionConfig::new(&plan.function_name, &function.binary)
        };
        let emulator = Emulator::start(config)?;
        emulators.insert(env.to_owned(), (Arc::clone(&plan), emulator.clone()));
        Ok((plan, emulator))
    }

    /// Stops every function process; later invocations fail.
    fn stop_functions(&self) {
        for function in &self.functions {
            for (_, emulator) in function.emulators.lock().expect("emulators").values() {
                emulator.shutdown();
            }
        }
    }

    fn region(&self, env: &str) -> String {
        self.manifest
            .as_ref()
            .and_then(|manifest| manifest.region(env))
            .map_or_else(|| invoke::DEFAULT_REGION.to_owned(), str::to_owned)
    }
}
