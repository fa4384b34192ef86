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
//!   of the served functions in `<env>` ([`routes`] has API Gateway's precedence) and delivered
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
//!
//! The function's own log lines go to this process's stderr, as `invoke`'s do, and
//! `X-Amz-Log-Result` carries the invocation's last 4 KB of them, between Lambda's `START` and
//! `END`/`REPORT` lines.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use base64::Engine as _;
use http_body_util::BodyExt as _;
use lambda_stage_emulator::{
    Emulator, FunctionConfig, Invocation, InvokeError, Logs, Outcome, MAX_REQUEST_BYTES,
};
use lambda_stage_events::ApiRoute;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::app_api;
use crate::invoke::{self, Plan};
use crate::manifest::{Manifest, Strategy};
use crate::routes::RouteTable;
use crate::workspace;

/// The port `serve` listens on by default (the one cargo-lambda and SAM use too).
pub const DEFAULT_PORT: u16 = 9000;

/// The largest request body `serve` reads: Lambda's request limit plus 1 MiB, so that a body
/// just over the limit still reaches the emulator, which refuses it with its exact size. A larger
/// body gets the same refusal (Lambda's `RequestTooLargeException`) without being kept.
pub const MAX_BODY_BYTES: usize = MAX_REQUEST_BYTES + 1024 * 1024;

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
        app_variables: invoke::shell_app_variables(),
    };
    // One thread: every invocation hops between three connections (the caller's, the runtime's
    // `/next` and its answer) and the emulator's tasks, and on one thread a hop is a queue push,
    // not a futex wake-up of another worker (`cargo xtask bench emulator`: about a quarter less
    // CPU per invocation with one client). Builds run on the blocking pool, not on this thread.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?
        .block_on(async {
            let listener = TcpListener::bind(("127.0.0.1", args.port))
                .await
                .with_context(|| {
                    format!(
                        "could not listen on 127.0.0.1:{}; is another server using it? Pick another with --port",
                        args.port
                    )
                })?;
            let server = Server::start(listener, options).await?;
            println!("listening on http://{}", server.addr());
            for line in server.start_up_lines() {
                eprintln!("{line}");
            }
            tokio::signal::ctrl_c()
                .await
                .context("could not wait for Ctrl-C")?;
            server.shutdown();
            Ok(ExitCode::SUCCESS)
        })
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
        });
        let watcher = if options.watch {
            Some(watch(&options.root, options.release, Arc::clone(&shared))?)
        } else {
            None
        };
        let app = Router::new()
            .route(
                "/2015-03-31/functions/{function}/invocations",
                post(invoke_api),
            )
            .route("/", any(index))
            .route("/{function}", any(http_front))
            .route("/{function}/{*path}", any(http_front))
            .fallback(not_served)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(err) = axum::serve(listener, service).await {
                eprintln!("error: serve stopped: {err}");
            }
        });
        Ok(Server {
            addr,
            shared,
            task,
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

    /// Stops the server and every function process.
    pub fn shutdown(self) {
        self.task.abort();
        for function in &self.shared.functions {
            for (_, emulator) in function.emulators.lock().expect("emulators").values() {
                emulator.shutdown();
            }
        }
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
        invoke::build_host_binary(&root, &package, &features, release)
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
    /// What is served here and at which URLs: the answer to `GET /` and, after a line saying
    /// what was not found, to a path that is not served.
    fn index(&self) -> String {
        let addr = self.addr;
        let functions: Vec<&str> = self.functions.iter().map(|f| f.key.as_str()).collect();
        let mut text = format!(
            "cargo xtask serve: a local Lambda on http://{addr}\nfunctions: {}\n",
            functions.join(", ")
        );
        if let Some(manifest) = &self.manifest {
            let environments: Vec<&str> =
                manifest.environments.keys().map(String::as_str).collect();
            text.push_str(&format!(
                "environments: {} (default: {})\n",
                environments.join(", "),
                self.default_env
            ));
        }
        text.push_str(&format!(
            "URLs:\n  POST /2015-03-31/functions/<function>[:<env alias>]/invocations: the AWS Invoke API \
             (aws lambda invoke --endpoint-url http://{addr})\n  \
             <METHOD> /<function>/<path>: one function, sent an HTTP API event for /<path>, in `{}`\n",
            self.default_env
        ));
        let mounted: Vec<&str> = self.apis.keys().map(String::as_str).collect();
        match mounted.is_empty() {
            true => text.push_str("  (no /<env>/<route>: no served function has an http route)\n"),
            false => text.push_str(&format!(
                "  <METHOD> /<env>/<route>: the app's HTTP API as deployed, for {}\n",
                mounted.join(", ")
            )),
        }
        text.push_str("served:\n");
        for line in self.served_lines() {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// [`Server::start_up_lines`].
    fn served_lines(&self) -> Vec<String> {
        let addr = self.addr;
        let mut lines = Vec::new();
        for function in &self.functions {
            let name = &function.key;
            let front = match self.apis.contains_key(name) {
                false => format!("front http://{addr}/{name}/"),
                true => match self.deployed_name(name) {
                    Some(deployed) => format!(
                        "front http://{addr}/{deployed}/ (/{name}/ is environment `{name}`'s API)"
                    ),
                    None => format!("no front (/{name}/ is environment `{name}`'s API)"),
                },
            };
            lines.push(format!(
                "  {name}: POST http://{addr}/2015-03-31/functions/{name}/invocations, {front}"
            ));
        }
        for (env, api) in &self.apis {
            for (route, index) in api.routes.iter() {
                let (method, path) = route.display_parts();
                lines.push(format!(
                    "  {method} http://{addr}/{env}{path} -> {} ({env})",
                    self.functions[*index].key
                ));
            }
        }
        lines
    }

    /// The name `function` is deployed under in the default environment, if the manifest lists it.
    fn deployed_name(&self, function: &str) -> Option<String> {
        let manifest = self.manifest.as_ref()?;
        manifest.function(function)?;
        Some(manifest.function_name(function, &self.default_env))
    }

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

    fn region(&self, env: &str) -> String {
        self.manifest
            .as_ref()
            .and_then(|manifest| manifest.region(env))
            .map_or_else(|| invoke::DEFAULT_REGION.to_owned(), str::to_owned)
    }
}

/// `arn:aws:lambda:<region>:<account>:function:<name>[:<q>]`, `<account>:function:<name>[:<q>]`
/// or `<name>[:<q>]` → (name, qualifier).
fn parse_function_name(text: &str) -> (&str, Option<&str>) {
    let bare = match text.find("function:") {
        Some(at) => &text[at + "function:".len()..],
        None => text,
    };
    match bare.split_once(':') {
        Some((name, qualifier)) => (name, Some(qualifier)),
        None => (bare, None),
    }
}

/// An Invoke API error as Lambda sends it: the type in `X-Amzn-ErrorType`, the message in the body.
fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = json!({ "Type": "User", "message": message });
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(error_type) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

async fn invoke_api(
    State(shared): State<Arc<Shared>>,
    UrlPath(function): UrlPath<String>,
    Query(query): Query<BTreeMap<String, String>>,
    request: axum::extract::Request,
) -> Response {
    // The request taken apart rather than a `HeaderMap` extractor, which would copy the headers.
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let payload = match read_body(body).await {
        Ok(payload) => payload,
        Err(err) => {
            return err.answer(|read| {
                let size = content_length(&headers).unwrap_or(read);
                invoke_error(&InvokeError::RequestTooLarge { size })
            })
        }
    };
    let (name, name_qualifier) = parse_function_name(&function);
    let qualifier = query
        .get("Qualifier")
        .map(String::as_str)
        .or(name_qualifier);
    let Some((function, env)) = shared.resolve(name, qualifier) else {
        let arn = format!(
            "arn:aws:lambda:{}:{}:function:{}{}",
            shared.region(&shared.default_env),
            lambda_stage_emulator::ACCOUNT_ID,
            name,
            qualifier.map(|q| format!(":{q}")).unwrap_or_default()
        );
        return aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {arn}"),
        );
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let payload = if payload.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        payload
    };
    if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            &format!("Could not parse request body into json: {err}"),
        );
    }
    let client_context = match header("x-amz-client-context") {
        None => None,
        Some(encoded) => match base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
        {
            Some(context) => Some(context),
            None => {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    "Client context must be a valid Base64-encoded JSON object.",
                )
            }
        },
    };
    let (plan, emulator) = match shared.emulator(function, &env) {
        Ok(running) => running,
        Err(err) => {
            return aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                &format!("{err:#}"),
            )
        }
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let invocation = Invocation {
        qualifier: qualifier
            .filter(|q| *q != "$LATEST")
            .map(str::to_owned)
            .or(plan.qualifier.clone()),
        client_context,
        request_id: Some(request_id.clone()),
        ..Invocation::new(payload)
    };
    match header("x-amz-invocation-type").unwrap_or("RequestResponse") {
        "RequestResponse" => {}
        "Event" => {
            let name = function.key.clone();
            tokio::spawn(async move {
                if let Err(err) = emulator.invoke(invocation).await {
                    eprintln!("serve: asynchronous invocation of `{name}` failed: {err}");
                }
            });
            return (StatusCode::ACCEPTED, [("x-amzn-requestid", request_id)]).into_response();
        }
        "DryRun" => return StatusCode::NO_CONTENT.into_response(),
        other => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!(
                    "Unsupported invocation type {other}: use RequestResponse, Event or DryRun"
                ),
            )
        }
    }
    let (outcome, log_tail) = match emulator.invoke_with_log(invocation).await {
        Ok(invoked) => invoked,
        Err(err) => return invoke_error(&err),
    };
    let mut response = (StatusCode::OK, outcome.payload().clone()).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert("content-type", HeaderValue::from_static("application/json"));
    response_headers.insert(
        "x-amz-executed-version",
        HeaderValue::from_static(lambda_stage_emulator::VERSION),
    );
    if let Some(function_error) = outcome.function_error() {
        response_headers.insert(
            "x-amz-function-error",
            HeaderValue::from_static(function_error),
        );
    }
    if header("x-amz-log-type") == Some("Tail") {
        let tail = base64::engine::general_purpose::STANDARD.encode(log_tail);
        if let Ok(value) = HeaderValue::from_str(&tail) {
            response_headers.insert("x-amz-log-result", value);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response_headers.insert("x-amzn-requestid", value);
    }
    response
}

/// How much of an oversize body `serve` reads (and discards) so that the connection stays in
/// step and a keep-alive client's next request on it is answered. Past this, the refusal closes
/// the connection (`Connection: close`) instead.
pub const MAX_DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// Why a request body was not read.
enum BodyError {
    /// Over [`MAX_BODY_BYTES`]: `size` bytes read; `drained`: the whole body was read.
    TooLarge { size: usize, drained: bool },
    /// The body could not be read (the client went away, or sent a broken body).
    Unreadable,
}

impl BodyError {
    /// The answer to the request: `too_large` for an oversize body, else `400`. Unless the whole
    /// body was read, the answer says `Connection: close`, and the server closes the connection
    /// after it: the client must not send its next request there.
    fn answer(self, too_large: impl FnOnce(usize) -> Response) -> Response {
        match self {
            BodyError::TooLarge { size, drained } => {
                let mut response = too_large(size);
                if !drained {
                    response
                        .headers_mut()
                        .insert("connection", HeaderValue::from_static("close"));
                }
                response
            }
            BodyError::Unreadable => (
                StatusCode::BAD_REQUEST,
                [("connection", "close")],
                "could not read the request body\n",
            )
                .into_response(),
        }
    }
}

/// The request body, or [`BodyError::TooLarge`] past [`MAX_BODY_BYTES`] (axum's own limit would
/// answer `413 text/plain`, which no AWS client understands). An oversize body is read to its
/// end, up to [`MAX_DRAIN_BYTES`], without being kept: answering before the client has sent it
/// all would leave the rest of it where the connection's next request should be.
async fn read_body(mut body: Body) -> Result<Bytes, BodyError> {
    let mut payload = Vec::new();
    let mut size = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Unreadable)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        size += data.len();
        if size <= MAX_BODY_BYTES {
            payload.extend_from_slice(&data);
        } else if size > MAX_DRAIN_BYTES {
            return Err(BodyError::TooLarge {
                size,
                drained: false,
            });
        } else {
            payload = Vec::new();
        }
    }
    if size > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge {
            size,
            drained: true,
        });
    }
    Ok(Bytes::from(payload))
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers.get("content-length")?.to_str().ok()?.parse().ok()
}

fn invoke_error(err: &InvokeError) -> Response {
    match err {
        InvokeError::RequestTooLarge { .. } => aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &err.to_string(),
        ),
        _ => aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            &err.to_string(),
        ),
    }
}

/// API Gateway's answer when the integration fails.
fn gateway_error(function: &str, reason: &str) -> Response {
    eprintln!("serve: `{function}` did not give an HTTP response: {reason}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({ "message": "Internal Server Error" })),
    )
        .into_response()
}

/// `/<env>/...` for the app's API of an environment, else `/<function>/...`.
async fn http_front(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(body).await {
        Ok(body) => body,
        // API Gateway's own answer to a body over its limit.
        Err(err) => {
            return err.answer(|_| {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    axum::Json(json!({ "message": "Request Entity Too Large" })),
                )
                    .into_response()
            })
        }
    };
    let path = uri.path().trim_start_matches('/');
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    let rest = format!("/{rest}");
    let path_and_query = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.clone(),
    };
    let source_ip = peer.ip().to_string();
    let request = |route: &ApiRoute| {
        lambda_stage_events::apigw_http_event(
            &method,
            &path_and_query,
            &headers,
            &body,
            &source_ip,
            route,
        )
    };
    if let Some(api) = shared.apis.get(first) {
        let Some(matched) = api.routes.find(method.as_str(), &rest) else {
            // API Gateway's own answer when no route matches.
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({ "message": "Not Found" })),
            )
                .into_response();
        };
        let route = ApiRoute {
            stage: api.stage.clone(),
            route_key: matched.route.key().to_owned(),
            path_parameters: matched.path_parameters,
        };
        let function = &shared.functions[*matched.target];
        return deliver(&shared, function, first, request(&route)).await;
    }
    let Some((function, env)) = shared.resolve(first, None) else {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "no function or environment `{first}` is served here\n\n{}",
                shared.index()
            ),
        )
            .into_response();
    };
    deliver(&shared, function, &env, request(&ApiRoute::default())).await
}

/// `/`: what is served here.
async fn index(State(shared): State<Arc<Shared>>) -> String {
    shared.index()
}

/// A path nothing is served at.
async fn not_served(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("nothing is served at {}\n\n{}", uri.path(), shared.index()),
    )
        .into_response()
}

/// Invokes `function` in `env` with an HTTP API `event` and turns its answer into API Gateway's
/// HTTP response.
async fn deliver(shared: &Shared, function: &Function, env: &str, event: Value) -> Response {
    let (plan, emulator) = match shared.emulator(function, env) {
        Ok(running) => running,
        Err(err) => return gateway_error(&function.key, &format!("{err:#}")),
    };
    let invocation = Invocation {
        qualifier: plan.qualifier.clone(),
        ..Invocation::new(event.to_string())
    };
    let outcome = match emulator.invoke(invocation).await {
        Ok(outcome) => outcome,
        Err(err) => return gateway_error(&function.key, &err.to_string()),
    };
    let Outcome::Response(payload) = outcome else {
        let error_type = outcome.error_type().unwrap_or_default().to_owned();
        let detail = String::from_utf8_lossy(outcome.payload()).into_owned();
        return gateway_error(&function.key, &format!("{error_type}: {detail}"));
    };
    match lambda_stage_events::apigw_http_response(&payload) {
        Ok(response) => response.map(Body::from),
        Err(err) => gateway_error(&function.key, &err.to_string()),
    }
}

/// Watches the workspace members' sources and rebuilds the served functions on a change.
fn watch(
    root: &Path,
    release: bool,
    shared: Arc<Shared>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let metadata = cargo_metadata::MetadataCommand::new()
        .cargo_path(workspace::cargo())
        .current_dir(root)
        .no_deps()
        .exec()
        .context("could not read the workspace's members (cargo metadata)")?;
    let (sender, receiver) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher =
        notify::recommended_watcher(sender).context("could not start watching files")?;
    let target = workspace::target_dir(root);
    for package in metadata.workspace_packages() {
        let dir = package
            .manifest_path
            .parent()
            .context("a package manifest has no directory")?
            .as_std_path();
        // The root package's directory holds `target/`: watch only its manifest then.
        let (path, mode) = if target.starts_with(dir) {
            (
                package.manifest_path.as_std_path(),
                notify::RecursiveMode::NonRecursive,
            )
        } else {
            (dir, notify::RecursiveMode::Recursive)
        };
        watcher
            .watch(path, mode)
            .with_context(|| format!("could not watch {}", path.display()))?;
    }
    let root = root.to_owned();
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let relevant = |event: &notify::Event| {
            !event.kind.is_access()
                && event.paths.iter().any(|path| {
                    !path.starts_with(&target)
                        && (path.extension().is_some_and(|ext| ext == "rs")
                            || path.file_name().is_some_and(|name| name == "Cargo.toml"))
                })
        };
        while let Ok(first) = receiver.recv() {
            if !first.as_ref().is_ok_and(relevant) {
                continue;
            }
            // Editors save in bursts: wait for quiet before building.
            while receiver.recv_timeout(Duration::from_millis(300)).is_ok() {}
            for function in &shared.functions {
                let before = modified(&function.binary);
                match handle.block_on(build(&root, &function.package, &function.features, release))
                {
                    Ok(_) if modified(&function.binary) != before => {
                        for (_, emulator) in function.emulators.lock().expect("emulators").values()
                        {
                            emulator.restart();
                        }
                        eprintln!(
                            "serve: rebuilt `{}`; its next invocation runs the new build",
                            function.key
                        );
                    }
                    Ok(_) => {}
                    Err(err) => eprintln!(
                        "serve: `{}` did not build ({err:#}); still serving the previous build",
                        function.key
                    ),
                }
            }
        }
    });
    Ok(watcher)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
