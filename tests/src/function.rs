//! Runs a compiled function binary against a Runtime API, as Lambda would start it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};

/// A running bootstrap process whose output is captured.
pub struct Function {
    child: Child,
}

/// Everything the process wrote, once it has stopped.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Function {
    /// Starts `binary` with only Lambda's variables plus `vars` (nothing leaks in from the
    /// test's own environment).
    pub fn start(binary: &Path, runtime_api: &str, vars: &[(&str, &str)]) -> anyhow::Result<Self> {
        let child = Command::new(binary)
            .env_clear()
            .envs([
                ("AWS_LAMBDA_RUNTIME_API", runtime_api),
                ("AWS_LAMBDA_FUNCTION_NAME", "probe"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
                ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/probe"),
                (
                    "AWS_LAMBDA_LOG_STREAM_NAME",
                    "2026/11/26/[$LATEST]0123456789abcdef",
                ),
                ("AWS_REGION", "eu-west-1"),
            ])
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        Ok(Function { child })
    }

    /// Waits for the process to exit by itself (up to `timeout`).
    pub async fn wait_exit(mut self, timeout: Duration) -> anyhow::Result<Output> {
        let status = tokio::time::timeout(timeout, self.child.wait()).await??;
        self.collect(status.success()).await
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process and returns what it wrote.
    pub async fn stop(mut self) -> anyhow::Result<Output> {
        self.child.kill().await?;
        self.collect(false).await
    }

    async fn collect(&mut self, success: bool) -> anyhow::Result<Output> {
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).await?;
        }
        if let Some(mut err) = self.child.stderr.take() {
            err.read_to_string(&mut stderr).await?;
        }
        Ok(Output {
            success,
            stdout,
            stderr,
        })
    }
}
