//! Shared harness for the cross-crate integration tests in `tests/tests/it/` (one binary).

pub mod bins;
pub mod build_once;
pub mod deploy_stage;
pub mod fault_proxy;
pub mod function;
pub mod moto;
pub mod moto_reads;
pub mod runtime_api;
pub mod scratch;
pub mod serve_cli;
