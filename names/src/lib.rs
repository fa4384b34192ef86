//! The names that lambda-stage's framework, `cargo xtask` and the emulator must agree on, kept in
//! one place: the variables Lambda reserves, the variables lambda-stage reads, the prefixes of a
//! secret reference, and the `errorType`s the framework reports. No dependencies, so the emulator
//! and `cargo xtask` use them without compiling the framework.

#![warn(missing_docs)]

/// Environment variables: Lambda's reserved names and lambda-stage's own.
pub mod variables {
    /// Multi-stack: the one environment this function serves.
    pub const ENV: &str = "LAMBDA_STAGE_ENV";
    /// Single-stack: the aliases (environments) this function serves, comma-separated.
    pub const ENVS: &str = "LAMBDA_STAGE_ENVS";
    /// Single-stack: the environment of an invocation whose ARN names no alias.
    pub const DEFAULT_ENV: &str = "LAMBDA_STAGE_DEFAULT_ENV";
    /// Seconds after which an environment's secret references are fetched again.
    pub const SECRETS_TTL: &str = "LAMBDA_STAGE_SECRETS_TTL";
    /// `1`: the binary checks every environment's config, prints a report and exits (the
    /// framework's check mode, which `cargo xtask deploy` runs before writing anything).
    pub const CHECK_CONFIG: &str = "LAMBDA_STAGE_CHECK_CONFIG";
    /// The key of the JSON object the check mode prints on stdout.
    pub const CHECK_REPORT_KEY: &str = "lambdaStageCheck";

    /// What `cargo xtask` sets itself (from the manifest's strategy and environments, or to run
    /// the config check), so a manifest may not: a deployed `LAMBDA_STAGE_CHECK_CONFIG` would
    /// make every cold start exit.
    pub const SET_BY_LAMBDA_STAGE: &[&str] = &[ENV, ENVS, CHECK_CONFIG];

    /// The names Lambda sets itself and refuses in a function's configuration
    /// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-runtime.html>).
    /// `TZ`, `LANG` and `PATH` are set by Lambda too, but a function may override them.
    pub const RESERVED_BY_LAMBDA: &[&str] = &[
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    ];
}

/// A config value that starts with one of these is a reference to a secret, resolved at cold
/// start, never the value itself.
pub mod reference {
    /// `ssm:<parameter name>[:<version or label>]`
    pub const SSM_PREFIX: &str = "ssm:";
    /// `secretsmanager:<name or ARN>[#<json key>]`
    pub const SECRETS_MANAGER_PREFIX: &str = "secretsmanager:";
    /// Both prefixes.
    pub const PREFIXES: &[&str] = &[SSM_PREFIX, SECRETS_MANAGER_PREFIX];
}

/// The `errorType` of each failure the framework reports to the Runtime API: public API, as
/// alarms, retries and tests match on them.
pub mod error_type {
    /// A config that does not load (missing or unparsable variables): at init, or on the first
    /// invocation of an environment not validated at init.
    pub const CONFIG: &str = "LambdaStage.ConfigError";
    /// A secret reference that could not be resolved.
    pub const SECRET: &str = "LambdaStage.SecretError";
    /// An environment's state constructor failed (or panicked).
    pub const STATE: &str = "LambdaStage.StateError";
    /// An invocation whose environment is unknown (no alias, or one not in `LAMBDA_STAGE_ENVS`).
    pub const UNKNOWN_ENVIRONMENT: &str = "LambdaStage.UnknownEnvironment";
    /// An event that does not deserialize into the handler's event type.
    pub const INVALID_EVENT: &str = "LambdaStage.InvalidEvent";
    /// A handler that panicked.
    pub const PANIC: &str = "LambdaStage.Panic";
    /// A handler's `Err` that names no type of its own.
    pub const HANDLER: &str = "HandlerError";
}
