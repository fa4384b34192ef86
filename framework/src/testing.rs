//! Test kit: call handlers in-process, in a chosen environment, with a realistic `Context`.
//!
//! ```
//! use lambda_stage::testing::TestInvocation;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { greeting: String }
//!
//! async fn handler(event: serde_json::Value, ctx: lambda_stage::Ctx<Config>) -> Result<String, lambda_stage::Error> {
//!     Ok(format!("{} {} from {}", ctx.config().greeting, event["name"], ctx.env()))
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let reply = TestInvocation::new("staging")
//!     .config_vars(&[("APP_GREETING", "Hi")])
//!     .invoke(handler, serde_json::json!({ "name": "Ada" }))
//!     .await
//!     .unwrap();
//! assert_eq!(reply, r#"Hi "Ada" from staging"#);
//! # });
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{self, ConfigError, Scope};
use crate::error::{Error, InvocationError};
use crate::runtime::{catch_failures, parse_event, Ctx};

/// The function name, region and account of the emulated context.
pub const FUNCTION_NAME: &str = "test-function";
pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";

/// One emulated invocation of a handler in an environment.
#[derive(Debug, Clone)]
pub struct TestInvocation {
    env: String,
    vars: Vec<(String, String)>,
    prefix: String,
    timeout: Duration,
}

impl TestInvocation {
    pub fn new(env: &str) -> Self {
        TestInvocation {
            env: env.to_owned(),
            vars: Vec::new(),
            prefix: "APP_".to_owned(),
            timeout: Duration::from_secs(3),
        }
    }

    /// The variables the config is loaded from (`APP_GREETING`, or `APP_STAGING__GREETING`).
    pub fn config_vars(mut self, vars: &[(&str, &str)]) -> Self {
        self.vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// The function timeout the deadline is computed from (default 3 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Loads the config exactly as a single-stack function does for this environment
    /// (`APP_<ENV>__<FIELD>`, then `APP_<FIELD>`).
    pub fn load_config<C: DeserializeOwned>(&self) -> Result<C, ConfigError> {
        config::load(
            &self.vars,
            &self.prefix,
            Scope::Environment(&self.env),
            &self.env,
        )
    }

    /// A `Ctx` with `config`, for calling a handler directly.
    pub fn ctx<C>(&self, config: C) -> Ctx<C> {
        Ctx::new(self.env.clone(), Arc::new(config), self.lambda_context())
    }

    /// A context like Lambda's for an invocation through this environment's alias.
    pub fn lambda_context(&self) -> lambda_runtime::Context {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let env_config = lambda_runtime::Config {
            function_name: FUNCTION_NAME.to_owned(),
            memory: 128,
            version: "1".to_owned(),
            log_group: format!("/aws/lambda/{FUNCTION_NAME}"),
            log_stream: "2026/01/01/[1]00000000000000000000000000000000".to_owned(),
        };
        let mut context = lambda_runtime::Context::default();
        context.request_id = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            now.subsec_nanos(),
            now.as_millis()
        );
        context.deadline = (now + self.timeout).as_millis() as u64;
        context.invoked_function_arn = format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION_NAME}:{}",
            self.env
        );
        context.xray_trace_id = Some(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".to_owned(),
        );
        context.env_config = Arc::new(env_config);
        context
    }

    /// Loads the config, deserializes `event` and calls `handler` the way the runtime does:
    /// a handler `Err`, a panic or an event of the wrong shape come back as the
    /// [`InvocationError`] Lambda would report.
    pub async fn invoke<C, E, R, H, Fut>(
        &self,
        handler: H,
        event: serde_json::Value,
    ) -> Result<R, InvocationError>
    where
        C: DeserializeOwned,
        E: DeserializeOwned,
        R: Serialize,
        H: Fn(E, Ctx<C>) -> Fut,
        Fut: Future<Output = Result<R, Error>>,
    {
        let config = self
            .load_config::<C>()
            .map_err(|err| InvocationError::config(&err))?;
        let payload: E = parse_event(&event.to_string())?;
        catch_failures(handler(payload, self.ctx(config))).await
    }
}

/// The state an axum router built for [`crate::http::run_router`] gets in this environment.
#[cfg(feature = "http")]
pub fn env<C: DeserializeOwned>(test: &TestInvocation) -> Result<crate::http::Env<C>, ConfigError> {
    Ok(crate::http::Env::new(test.env.clone(), test.load_config()?))
}
