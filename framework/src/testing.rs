//! Test kit: call handlers in-process, in a chosen environment, with a realistic `Context`,
//! through the code a deployed function runs: the cold start of [`crate::run`] (the strategy,
//! `LAMBDA_STAGE_ENVS`, every environment's config checked, references refused or resolved,
//! states built) and the same invocation service (environment from the invoked ARN, event
//! parsing, handler errors and panics). Only lambda_runtime's polling loop is left out.
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
//!
//! // A multi-stack function reads the shared `APP_<FIELD>` only.
//! let err = TestInvocation::new("prod")
//!     .multi_stack()
//!     .config_vars(&[("APP_PROD__GREETING", "Hej")])
//!     .invoke(handler, serde_json::json!({ "name": "Ada" }))
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.error_type, lambda_stage::error_type::CONFIG);
//! # });
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{LambdaEvent, Service as _};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::environment::ENV_VAR;
use crate::error::{Error, InvocationError};
use crate::runtime::{Ctx, Options};
use crate::service::EventService;
use crate::serving::Serving;
use crate::state::{Env, MakeState, NoState};

/// The function name of the emulated context.
pub const FUNCTION_NAME: &str = "test-function";
/// The region in the emulated invoked ARN.
pub const REGION: &str = "us-east-1";
/// The account in the emulated invoked ARN.
pub const ACCOUNT_ID: &str = "123456789012";

/// One emulated invocation of a handler in an environment.
#[derive(Debug, Clone)]
pub struct TestInvocation {
    env: String,
    vars: Vec<(String, String)>,
    prefix: String,
    timeout: Duration,
    multi_stack: bool,
}

impl TestInvocation {
    /// A single-stack invocation through `env`'s alias, with no config variables yet.
    pub fn new(env: &str) -> Self {
        TestInvocation {
            env: env.to_owned(),
            vars: Vec::new(),
            prefix: "APP_".to_owned(),
            timeout: Duration::from_secs(3),
            multi_stack: false,
        }
    }

    /// The function's variables besides Lambda's: config (`APP_GREETING`,
    /// `APP_STAGING__GREETING`) and lambda-stage's own (`LAMBDA_STAGE_ENVS`, ...).
    pub fn config_vars(mut self, vars: &[(&str, &str)]) -> Self {
        self.vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    /// A multi-stack function: it serves only this environment (`LAMBDA_STAGE_ENV`), and its
    /// config comes from the shared `APP_<FIELD>` variables.
    pub fn multi_stack(mut self) -> Self {
        self.multi_stack = true;
        self
    }

    /// The prefix of the config variables (default `APP_`), as [`Options::prefix`].
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// The function timeout the deadline is computed from (default 3 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
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
        let alias = if self.multi_stack { "live" } else { &self.env };
        context.invoked_function_arn =
            format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION_NAME}:{alias}");
        context.xray_trace_id = Some(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".to_owned(),
        );
        context.env_config = Arc::new(env_config);
        context
    }

    /// Cold-starts the function as [`crate::run`] does, then delivers `event` to `handler` through
    /// the runtime's invocation service. A cold start that fails (config, secret reference,
    /// state) and a handler `Err`, panic or event of the wrong shape come back as the
    /// [`InvocationError`] Lambda would report, with the same `errorType`.
    pub async fn invoke<C, E, R, H, Fut>(
        &self,
        handler: H,
        event: serde_json::Value,
    ) -> Result<R, InvocationError>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        E: DeserializeOwned + 'static,
        R: Serialize + Send + 'static,
        H: Fn(E, Ctx<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
    {
        self.invoke_with(NoState, handler, event).await
    }

    /// [`TestInvocation::invoke`] for a function with per-environment state built by
    /// `make_state`, as [`Options::state`].
    pub async fn invoke_with_state<C, S, E, R, H, Fut, F, StateFut>(
        &self,
        make_state: F,
        handler: H,
        event: serde_json::Value,
    ) -> Result<R, InvocationError>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        S: Send + Sync + 'static,
        E: DeserializeOwned + 'static,
        R: Serialize + Send + 'static,
        H: Fn(E, Ctx<C, S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
        F: Fn(Env<C>) -> StateFut + Send + Sync + 'static,
        StateFut: Future<Output = Result<S, Error>> + Send + 'static,
    {
        self.invoke_with(make_state, handler, event).await
    }

    async fn invoke_with<C, M, E, R, H, Fut>(
        &self,
        make_state: M,
        handler: H,
        event: serde_json::Value,
    ) -> Result<R, InvocationError>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        M: MakeState<C>,
        E: DeserializeOwned + 'static,
        R: Serialize + Send + 'static,
        H: Fn(E, Ctx<C, M::State>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
    {
        let serving = self.cold_start(make_state).await?;
        let payload = RawValue::from_string(event.to_string())
            .expect("a serde_json::Value serializes to valid JSON");
        EventService::new(Arc::new(serving), handler)
            .call(LambdaEvent::new(payload, self.lambda_context()))
            .await
    }

    /// This environment as the function sees it after its cold start: the state of an axum
    /// router built for [`crate::http::run_router`].
    pub async fn env<C>(&self) -> Result<Env<C>, InvocationError>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let serving = self.cold_start(NoState).await?;
        serving
            .env(&self.lambda_context().invoked_function_arn)
            .await
    }

    /// [`TestInvocation::env`] for a function with per-environment state built by `make_state`.
    pub async fn env_with_state<C, S, F, Fut>(
        &self,
        make_state: F,
    ) -> Result<Env<C, S>, InvocationError>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        S: Send + Sync + 'static,
        F: Fn(Env<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, Error>> + Send + 'static,
    {
        let serving = self.cold_start(make_state).await?;
        serving
            .env(&self.lambda_context().invoked_function_arn)
            .await
    }

    async fn cold_start<C, M>(&self, make_state: M) -> Result<Serving<C, M>, InvocationError>
    where
        C: DeserializeOwned + Send + Sync + 'static,
        M: MakeState<C>,
    {
        let mut vars = self.vars.clone();
        if self.multi_stack {
            vars.push((ENV_VAR.to_owned(), self.env.clone()));
        }
        let options = Options::default().prefix(self.prefix.as_str());
        Ok(options.with_state(make_state).serve(vars).await?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(serde::Deserialize)]
    struct Config {
        greeting: String,
    }

    async fn greet(event: serde_json::Value, ctx: Ctx<Config>) -> Result<String, Error> {
        Ok(format!(
            "{} {} ({})",
            ctx.config().greeting,
            event["name"],
            ctx.env()
        ))
    }

    /// The cold start's checks apply: `LAMBDA_STAGE_ENVS` refuses other aliases, and every
    /// listed environment's config must load.
    #[tokio::test(flavor = "current_thread")]
    async fn invocations_go_through_the_functions_cold_start() {
        let listed = |env: &str| {
            TestInvocation::new(env).config_vars(&[
                ("LAMBDA_STAGE_ENVS", "staging,prod"),
                ("APP_GREETING", "Hi"),
            ])
        };
        let reply = listed("prod").invoke(greet, json!({"name": "Ada"})).await;
        assert_eq!(reply.unwrap(), r#"Hi "Ada" (prod)"#);
        let err = listed("qa")
            .invoke(greet, json!({"name": "Ada"}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, crate::error_type::UNKNOWN_ENVIRONMENT);

        let err = TestInvocation::new("staging")
            .config_vars(&[
                ("LAMBDA_STAGE_ENVS", "staging,prod"),
                ("APP_STAGING__GREETING", "Hi"),
            ])
            .invoke(greet, json!({"name": "Ada"}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, crate::error_type::CONFIG);
        assert!(
            err.message.contains("APP_PROD__GREETING"),
            "{}",
            err.message
        );
    }

    /// A reference is never handed to the handler as if it were the value: without the
    /// `secrets` feature it fails the cold start, as in a deployed function.
    #[cfg(not(feature = "secrets"))]
    #[tokio::test(flavor = "current_thread")]
    async fn a_reference_is_refused_as_in_production() {
        let err = TestInvocation::new("staging")
            .config_vars(&[("APP_GREETING", "ssm:/app/greeting")])
            .invoke(greet, json!({"name": "Ada"}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, crate::error_type::CONFIG);
        assert!(
            err.message.contains("APP_GREETING: is a `ssm:` reference"),
            "{}",
            err.message
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn multi_stack_reads_the_shared_variables_only() {
        let vars = [("APP_GREETING", "Hi"), ("APP_PROD__GREETING", "Hej")];
        let single = TestInvocation::new("prod").config_vars(&vars);
        let multi = single.clone().multi_stack();
        let event = json!({"name": "Ada"});
        assert_eq!(
            single.invoke(greet, event.clone()).await.unwrap(),
            r#"Hej "Ada" (prod)"#
        );
        assert_eq!(
            multi.invoke(greet, event).await.unwrap(),
            r#"Hi "Ada" (prod)"#
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn state_is_built_from_the_environment_s_config() {
        async fn table(env: Env<Config>) -> Result<String, Error> {
            Ok(format!("{}-{}", env.config().greeting, env.name()))
        }
        async fn handler(_: serde_json::Value, ctx: Ctx<Config, String>) -> Result<String, Error> {
            Ok(ctx.state().clone())
        }
        let test = TestInvocation::new("staging").config_vars(&[("APP_GREETING", "orders")]);
        let reply = test.invoke_with_state(table, handler, json!({})).await;
        assert_eq!(reply.unwrap(), "orders-staging");
        let env = test.env_with_state(table).await.unwrap();
        assert_eq!(env.state(), "orders-staging");

        let failing = |_: Env<Config>| async { Err::<String, Error>("no table".into()) };
        let err = test
            .invoke_with_state(failing, handler, json!({}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, crate::error_type::STATE);
    }
}
