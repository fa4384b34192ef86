//! moto's server on a free 127.0.0.1 port, for the benchmarks that need an AWS API (`secrets`,
//! `deploy`). Lambda's Docker mode is off (moto keeps Docker-mode functions in another store,
//! and nothing here runs code in moto).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use lambda_stage_xtask::tools;

/// How long moto may take to start answering (a second or two unloaded).
const START_TIMEOUT: Duration = Duration::from_secs(60);
const NO_DOCKER: &str = r#"{"lambda":{"use_docker":false}}"#;

/// moto's server, stopped on drop.
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Starts `moto_server` from the project venv (installing moto there first if need be).
    pub fn start(root: &Path) -> anyhow::Result<MotoServer> {
        let server = tools::venv_bin(root, crate::setup::MOTO_REQUIREMENT, "moto_server")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start {}", server.display()))?;
        let moto = MotoServer { child, port };
        let started = Instant::now();
        while !moto.answers() {
            if started.elapsed() > START_TIMEOUT {
                bail!("moto_server did not answer on port {port} within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        moto.post("/moto-api/config", NO_DOCKER)
            .context("could not turn moto's Lambda Docker mode off")?;
        Ok(moto)
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forgets every resource (Docker mode stays off).
    pub fn reset(&self) -> anyhow::Result<()> {
        self.post("/moto-api/reset", "")
            .context("could not reset moto")?;
        self.post("/moto-api/config", NO_DOCKER)
            .context("could not turn moto's Lambda Docker mode off after a reset")
    }

    fn answers(&self) -> bool {
        self.request("GET", "/moto-api/data.json", "")
            .is_ok_and(|status| status == 200)
    }

    fn post(&self, path: &str, body: &str) -> anyhow::Result<()> {
        let status = self.request("POST", path, body)?;
        if !(200..300).contains(&status) {
            bail!("moto answered HTTP {status} to POST {path}");
        }
        Ok(())
    }

    /// One HTTP/1.1 request on a fresh connection; returns the status code.
    fn request(&self, method: &str, path: &str, body: &str) -> anyhow::Result<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(START_TIMEOUT))?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes())?;
        // "HTTP/1.1 200"
        let mut status_line = [0u8; 12];
        stream.read_exact(&mut status_line)?;
        let status = std::str::from_utf8(&status_line[9..])?.parse()?;
        Ok(status)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
