//! Every cross-crate integration test, in one binary: the xtask library and its AWS SDKs are
//! linked once, and the harness's shared state (moto servers, builds done once per run) is
//! shared by all of them. Each module is one area; its own doc says what it proves.
//!
//! Run one area with `cargo test --workspace --test it <module>::` (`--workspace`, so cargo
//! resolves features as the full run does and reuses its builds).

mod adoption_workspace;
mod build_artifacts;
mod build_reproducible;
mod deploy_destroy;
mod deploy_failures;
mod deploy_lifecycle;
mod deploy_parallel;
mod deploy_preflight;
mod deploy_rollback;
mod deploy_triggers;
mod emulator_invoke;
mod emulator_semantics;
mod events_catalogue;
mod framework_runtime;
mod framework_state;
mod local_as_deployed;
mod logs;
mod new_scaffold;
mod pipeline_generate;
mod recreate_app;
mod remote_invoke;
mod secrets_deploy;
mod secrets_resolve;
mod serve_invoke;
mod serve_robustness;
mod serve_watch;
mod workspace_features;
