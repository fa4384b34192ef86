//! A deploy stage for the tests that run the real `cargo xtask deploy | promote | ...` CLI:
//! moto's server on 127.0.0.1 with a fault-injecting proxy in front of it, a manifest in a temp
//! dir, and the CLI run as a subprocess with dummy credentials and `AWS_ENDPOINT_URL` (nothing
//! reaches past loopback).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::fault_proxy::FaultProxy;
use crate::moto::Moto;

/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

pub struct Stage {
    pub moto: Moto,
    pub proxy: FaultProxy,
    pub dir: tempfile::TempDir,
    /// The region the manifest deploys to, where the checks read.
    pub region: String,
}

pub struct Run {
    pub success: bool,
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "success: {} (exit code {:?})\n--- stdout\n{}\n--- stderr\n{}",
            self.success, self.code, self.stdout, self.stderr
        )
    }
}

fn xtask_binary() -> PathBuf {
    crate::bins::binary("xtask", "dev").expect("xtask builds")
}

impl Stage {
    /// A stage for manifests that deploy to us-east-1.
    pub async fn start() -> Stage {
        Stage::start_in("us-east-1").await
    }

    /// A stage for manifests that deploy to `region`.
    pub async fn start_in(region: &str) -> Stage {
        let moto = Moto::start().await.expect("moto starts");
        let proxy = FaultProxy::start(&moto.endpoint())
            .await
            .expect("proxy starts");
        Stage {
            moto,
            proxy,
            dir: tempfile::tempdir().unwrap(),
            region: region.to_owned(),
        }
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.dir.path().join("lambda-stage.toml")
    }

    pub fn write_manifest(&self, text: &str) {
        std::fs::write(self.manifest_path(), text).unwrap();
    }

    /// Runs `cargo xtask <args> --manifest <this stage's manifest>`.
    pub async fn xtask(&self, args: &[&str]) -> Run {
        self.xtask_env(args, &[]).await
    }

    /// Like [`Stage::xtask`], with environment changes (`None` removes a variable).
    pub async fn xtask_env(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
        let mut command = self.xtask_command(args, env).await;
        let output = tokio::time::timeout(Duration::from_secs(600), command.output())
            .await
            .expect("xtask finishes within 10 minutes")
            .expect("xtask runs");
        Run {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The `cargo xtask <args> --manifest <this stage's manifest>` command, not started
    /// (stdout and stderr piped, killed on drop): for commands that run until stopped.
    pub async fn xtask_command(
        &self,
        args: &[&str],
        env: &[(&str, Option<&str>)],
    ) -> tokio::process::Command {
        let binary = tokio::task::spawn_blocking(xtask_binary).await.unwrap();
        let mut command = tokio::process::Command::new(binary);
        command
            .current_dir(crate::bins::workspace_root())
            .args(args)
            .arg("--manifest")
            .arg(self.manifest_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        command
            .env("AWS_ENDPOINT_URL", self.proxy.endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.dir.path().join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("no-aws-credentials"),
            );
        for (key, value) in env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
    }

    /// The alias as moto has it, read directly (not through our code or the proxy).
    pub async fn alias(&self, function: &str, alias: &str) -> Option<Value> {
        let (status, body) = self
            .moto
            .get_json_in(
                &self.region,
                &format!("/2015-03-31/functions/{function}/aliases/{alias}"),
            )
            .await
            .unwrap();
        // moto answers some reads with 201.
        (200..300).contains(&status).then_some(body)
    }

    pub async fn alias_version(&self, function: &str, alias: &str) -> Option<String> {
        self.alias(function, alias)
            .await
            .and_then(|a| a["FunctionVersion"].as_str().map(str::to_owned))
    }

    /// A version's configuration as moto has it.
    pub async fn version(&self, function: &str, qualifier: &str) -> Value {
        let (status, body) = self
            .moto
            .get_json_in(
                &self.region,
                &format!("/2015-03-31/functions/{function}/configuration?Qualifier={qualifier}"),
            )
            .await
            .unwrap();
        assert!(
            (200..300).contains(&status),
            "{function}:{qualifier}: {body}"
        );
        body
    }
}

/// `cargo xtask deploy` with the profile the deploy tests use.
pub const DEPLOY: &[&str] = &["deploy", "--profile", "dev"];

/// A command's arguments: `base`, then `more`.
pub fn args<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(more).copied().collect()
}

/// A single-stack app (`demo`, us-east-1, moto's account) of one `bare-echo` function under the
/// key `function` with `memory` MB, served in `dev`, `staging` and a protected `prod` (which
/// also has an SSM reference, `/demo/prod/api-key`); each environment's `APP_GREETING` is
/// `greeting` followed by its name.
pub fn echo_app(function: &str, greeting: &str, memory: u32) -> String {
    format!(
        r#"app = "demo"
region = "us-east-1"
account-id = "{ACCOUNT}"

[functions.{function}]
package = "bare-echo"
arch = "x86_64"
memory = {memory}
create-role = true
required-vars = ["APP_GREETING"]
tags = {{ team = "payments" }}

[environments.dev]
vars = {{ APP_GREETING = "{greeting} dev" }}

[environments.staging]
vars = {{ APP_GREETING = "{greeting} staging" }}

[environments.prod]
protected = true
vars = {{ APP_GREETING = "{greeting} prod" }}
secrets = {{ APP_API_KEY = "ssm:/demo/prod/api-key" }}
"#
    )
}

pub fn variable(config: &Value, name: &str) -> Option<String> {
    config["Environment"]["Variables"][name]
        .as_str()
        .map(str::to_owned)
}

#[track_caller]
pub fn assert_ok(run: &Run) {
    assert!(run.success, "command failed:\n{run:?}");
}

#[track_caller]
pub fn assert_failed_with(run: &Run, needle: &str) {
    assert!(!run.success, "command should have failed:\n{run:?}");
    assert!(
        run.stderr.contains(needle),
        "stderr should mention `{needle}`:\n{run:?}"
    );
}

impl Stage {
    /// Creates an IAM role directly in moto (a role the manifest names must exist).
    pub async fn create_role(&self, name: &str) {
        let body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%7D"
        );
        let (status, text) =
            crate::moto::request_with("POST", &self.moto.endpoint(), &body, IAM_HEADERS)
                .await
                .unwrap();
        assert!((200..300).contains(&status), "{text}");
    }

    /// Seeds an SSM parameter in `region` directly in moto (secret references must exist).
    pub async fn put_parameter(&self, region: &str, name: &str) {
        let body = serde_json::json!({ "Name": name, "Value": "s3cr3t", "Type": "SecureString" });
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/ssm/aws4_request, SignedHeaders=host, Signature=x"
        );
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "AmazonSSM.PutParameter"),
            ("authorization", authorization.as_str()),
        ];
        let (status, text) =
            crate::moto::request_with("POST", &self.moto.endpoint(), &body.to_string(), &headers)
                .await
                .unwrap();
        assert!((200..300).contains(&status), "{text}");
    }
}

const IAM_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/x-www-form-urlencoded"),
    (
        "authorization",
        "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x",
    ),
];
