//! `cargo xtask serve` as a user runs it: the real CLI in a scratch workspace, on a free port.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::scratch::Scratch;

/// A running `cargo xtask serve`, stopped on drop with the function processes it started.
pub struct ServeCli {
    child: Child,
    stderr: Arc<Mutex<String>>,
    url: String,
}

impl Drop for ServeCli {
    fn drop(&mut self) {
        // The server's process group: the server and the function processes it started.
        // (Quietly: a server that already exited has no group left to kill.)
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl ServeCli {
    /// Runs `cargo xtask serve --port 0 <args>` in `scratch` with `envs` set, and returns once
    /// it listens (after building the functions).
    pub fn start(scratch: &Scratch, args: &[&str], envs: &[(&str, &str)]) -> ServeCli {
        let mut child = scratch
            .xtask(&[&["serve", "--port", "0"], args].concat())
            .expect("xtask builds")
            .envs(envs.iter().copied())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xtask serve starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = stderr.clone();
        let pipe = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut collected = collected.lock().unwrap();
                collected.push_str(&line);
                collected.push('\n');
            }
        });
        // The first build comes before the server listens.
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("`{line}`; stderr:\n{}", stderr.lock().unwrap()))
            .to_owned();
        ServeCli { child, stderr, url }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The server's process id, which is also its process group's (it leads its own group,
    /// as a shell's foreground job does).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `within` until the server's stderr contains `text`; fails with its stderr.
    pub fn wait_for_stderr(&self, text: &str, within: Duration) {
        let started = Instant::now();
        while !self.stderr().contains(text) {
            assert!(
                started.elapsed() < within,
                "`{text}` not on the server's stderr within {within:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `within` for the server to exit; fails with its stderr if it does not.
    pub fn wait_for_exit(&mut self, within: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the server's status") {
                return status;
            }
            assert!(
                started.elapsed() < within,
                "the server did not exit within {within:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server process is still the one that started.
    pub fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("the server's status")
            .is_none()
    }
}
