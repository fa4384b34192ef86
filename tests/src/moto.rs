//! moto's servers on free 127.0.0.1 ports, as the local AWS API for the deploy tests.
//!
//! Starting moto costs about a second of CPU, so servers are pooled for the whole test process:
//! [`Moto::start`] leases an idle server (starting one only when every server is in use, so there
//! are at most as many as tests run at once) and resets it, so each test sees an empty AWS. The
//! lease goes back to the pool when dropped. Lambda's Docker mode is off on every server (moto
//! keeps Docker-mode functions in another store). A server exits when the test process does: it
//! watches its stdin, whose other end only this process holds.

use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long moto may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// moto's server, run so that it exits when its stdin closes (this process ended).
const SERVER_SCRIPT: &str = "\
import os, sys, threading
def exit_with_the_tests():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=exit_with_the_tests, daemon=True).start()
from moto.server import main
main(sys.argv[1:])
";

/// Servers no test holds right now.
static IDLE: Mutex<Vec<Server>> = Mutex::new(Vec::new());

/// One running moto server.
struct Server {
    child: Child,
    /// Held open for the server's lifetime: its end of file tells the server to exit.
    _lifeline: ChildStdin,
    port: u16,
}

/// A moto server leased to one test: empty when leased, back in the pool when dropped.
pub struct Moto {
    server: Option<Server>,
    port: u16,
}

impl Moto {
    /// Leases an idle server, or starts one (installing moto in the project venv if
    /// `cargo xtask test` has not), with every resource forgotten.
    pub async fn start() -> anyhow::Result<Moto> {
        let idle = IDLE
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .pop();
        if let Some(mut server) = idle {
            if server.child.try_wait()?.is_none() {
                let moto = Moto {
                    port: server.port,
                    server: Some(server),
                };
                moto.reset()
                    .await
                    .context("could not reset a pooled moto")?;
                return Ok(moto);
            }
        }
        let server = Server::start().await?;
        let mut moto = Moto {
            port: server.port,
            server: Some(server),
        };
        moto.wait_ready().await?;
        moto.post("/moto-api/config", r#"{"lambda":{"use_docker":false}}"#)
            .await
            .context("could not turn moto's Lambda Docker mode off")?;
        Ok(moto)
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forgets every resource (Docker mode stays off).
    pub async fn reset(&self) -> anyhow::Result<()> {
        self.post("/moto-api/reset", "").await?;
        self.post("/moto-api/config", r#"{"lambda":{"use_docker":false}}"#)
            .await?;
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let server = self
                .server
                .as_mut()
                .context("a leased moto has its server")?;
            if let Some(status) = server.child.try_wait()? {
                bail!("moto_server exited during start-up ({status})");
            }
            if request(
                "GET",
                &format!("{}/moto-api/data.json", self.endpoint()),
                "",
            )
            .await
            .is_ok_and(|(status, _)| status == 200)
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "moto_server did not answer on port {} within {START_TIMEOUT:?}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn post(&self, path: &str, body: &str) -> anyhow::Result<String> {
        let (status, body) = request("POST", &format!("{}{path}", self.endpoint()), body).await?;
        if !(200..300).contains(&status) {
            bail!("moto answered {status} to POST {path}: {body}");
        }
        Ok(body)
    }

    /// A raw GET against moto's Lambda in us-east-1, bypassing the SDK (and any proxy): for
    /// independent checks.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        self.get_json_in("us-east-1", path).await
    }

    /// [`Moto::get_json`] in `region`.
    pub async fn get_json_in(
        &self,
        region: &str,
        path: &str,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        // moto routes a request to a service and region by the credential scope of its signature.
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/lambda/aws4_request, \
             SignedHeaders=host, Signature=unsigned"
        );
        let (status, body) = request_with(
            "GET",
            &format!("{}{path}", self.endpoint()),
            "",
            &[("authorization", authorization.as_str())],
        )
        .await?;
        Ok((
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        ))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            IDLE.lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .push(server);
        }
    }
}

impl Server {
    async fn start() -> anyhow::Result<Server> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("tests/ has a parent")?
            .to_path_buf();
        let python = tokio::task::spawn_blocking(move || {
            lambda_stage_xtask::tools::venv_bin(
                &root,
                lambda_stage_repo_xtask::setup::MOTO_REQUIREMENT,
                "moto_server",
            )
            .map(|server| server.with_file_name("python"))
        })
        .await??;
        let port = free_port()?;
        let mut child = Command::new(&python)
            .args([
                "-c",
                SERVER_SCRIPT,
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start moto's server with {}", python.display()))?;
        let lifeline = child.stdin.take().context("moto's stdin is piped")?;
        Ok(Server {
            child,
            _lifeline: lifeline,
            port,
        })
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One plain HTTP request with a JSON content type; returns status and body.
pub async fn request(method: &str, url: &str, body: &str) -> anyhow::Result<(u16, String)> {
    request_with(method, url, body, &[("content-type", "application/json")]).await
}

/// One plain HTTP request with the given headers; returns status and body.
pub async fn request_with(
    method: &str,
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body.to_owned())))?;
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
