//! A function's log stream: its stdout and stderr on one pipe (one stream, as on Lambda),
//! forwarded to our stderr as it comes, between Lambda's `START` and `END`/`REPORT` lines; the
//! current invocation's end is kept for `LogType=Tail`.
//!
//! Every forward and every platform line is one `write` to our stderr (the function's lines as
//! they arrive, `START` alone, `END` and `REPORT` together): stderr is unbuffered, and `eprintln!`
//! would write a line and its newline separately.

use std::io::Write as _;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::net::unix::pipe;

use crate::MAX_LOG_TAIL_BYTES;

/// How much one read takes from the pipe (its default capacity is 64 KiB).
const CHUNK_BYTES: usize = 16 * 1024;

pub(crate) struct LogStream {
    pipe: pipe::Receiver,
    /// The current invocation's log so far, at most [`MAX_LOG_TAIL_BYTES`] (its end).
    invocation_log: Mutex<Vec<u8>>,
}

impl LogStream {
    /// A pipe for a child's stdout and stderr (the two `Stdio`s) and the stream reading it.
    pub(crate) fn open() -> std::io::Result<(Stdio, Stdio, LogStream)> {
        let (sender, receiver) = pipe::pipe()?;
        let write_end = sender.into_blocking_fd()?;
        let stdout = Stdio::from(write_end.try_clone()?);
        let stream = LogStream {
            pipe: receiver,
            invocation_log: Mutex::default(),
        };
        Ok((stdout, Stdio::from(write_end), stream))
    }

    /// Forwards the function's output as it comes, until the pipe closes (the process and
    /// everything it started have exited).
    pub(crate) async fn pump(self: Arc<Self>) {
        while self.pipe.readable().await.is_ok() && self.drain() {}
    }

    /// Forwards whatever the pipe holds now, without waiting. `false` once the pipe is closed.
    ///
    /// A runtime writes its log lines before it posts its response, so after the response
    /// arrived this finds all of them: the log tail needs no timing guesses.
    fn drain(&self) -> bool {
        let mut log = self.invocation_log.lock().expect("invocation log");
        let mut chunk = [0u8; CHUNK_BYTES];
        loop {
            match self.pipe.try_read(&mut chunk) {
                Ok(0) => return false,
                Ok(read) => {
                    write_stderr(&chunk[..read]);
                    push_bounded(&mut log, &chunk[..read]);
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Begins an invocation's log with its `START` line. What came before (init, or output
    /// after the last invocation) is forwarded but is not this invocation's.
    pub(crate) fn start(&self, start_line: &str) {
        self.drain();
        self.invocation_log.lock().expect("invocation log").clear();
        self.lines(&[start_line]);
    }

    /// Adds Lambda's own `lines` to the log (one write).
    pub(crate) fn lines(&self, lines: &[&str]) {
        let mut text = Vec::with_capacity(lines.iter().map(|line| line.len() + 1).sum());
        for line in lines {
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        write_stderr(&text);
        push_bounded(
            &mut self.invocation_log.lock().expect("invocation log"),
            &text,
        );
    }

    /// Ends the invocation's log: the function's last output, then `closing_lines` (`END`,
    /// `REPORT`). Hands back the log's tail.
    pub(crate) fn finish(&self, closing_lines: &[&str]) -> Bytes {
        self.drain();
        self.lines(closing_lines);
        Bytes::from(std::mem::take(
            &mut *self.invocation_log.lock().expect("invocation log"),
        ))
    }
}

/// One `write` to our stderr (unbuffered, so the bytes go out at once).
fn write_stderr(bytes: &[u8]) {
    // Nobody to tell when our own stderr is gone.
    let _ = std::io::stderr().lock().write_all(bytes);
}

/// Appends `bytes`, keeping only the last [`MAX_LOG_TAIL_BYTES`].
fn push_bounded(log: &mut Vec<u8>, bytes: &[u8]) {
    log.extend_from_slice(bytes);
    if log.len() > MAX_LOG_TAIL_BYTES {
        log.drain(..log.len() - MAX_LOG_TAIL_BYTES);
    }
}
