//! A function's log stream: its stdout and stderr on one pipe (one stream, as on Lambda),
//! forwarded to our stderr as it comes, between Lambda's `START` and `END`/`REPORT` lines; the
//! current invocation's end is kept for `LogType=Tail`.
//!
//! Every invocation costs as few syscalls as the stream allows, as `serve` pays them on each:
//! - Each forward and each group of Lambda's lines is one `write` to our stderr (stderr is
//!   unbuffered, and `eprintln!` would write a line and its newline separately). `START` goes out
//!   at once (whoever watches the log learns that the invocation began); the function output
//!   found at the invocation's end goes out with `END` and `REPORT`.
//! - A read that returns less than it asked for has emptied the pipe (a pipe read takes all there
//!   is, up to the buffer), so the stream stops there instead of reading again to hear `EAGAIN`.

use std::fs::File;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::fd::{AsFd as _, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::net::unix::pipe;

use crate::MAX_LOG_TAIL_BYTES;

/// How much one read takes from the pipe (its default capacity is 64 KiB).
const CHUNK_BYTES: usize = 16 * 1024;

pub(crate) struct LogStream {
    /// The pipe's read end as the runtime's driver watches it: whether it is readable.
    pipe: pipe::Receiver,
    /// The same read end (a duplicate descriptor) to read with: inside `try_io`, tokio wants the
    /// read done by something other than the `Receiver`, so that it alone decides on readiness.
    reader: File,
    log: Mutex<Log>,
    /// Where the log goes, one call per write: our stderr.
    sink: Sink,
}

type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

#[derive(Default)]
struct Log {
    /// The current invocation's log so far, at most [`MAX_LOG_TAIL_BYTES`] (its end).
    invocation: Vec<u8>,
    /// The function's output read at the invocation's end, not written yet: it goes out with
    /// `END` and `REPORT`.
    unwritten: Vec<u8>,
}

/// When [`LogStream::drain`] writes what it read.
#[derive(Clone, Copy)]
enum Forward {
    Now,
    /// With the lines of ours that follow (at the invocation's end: `END`, `REPORT`).
    WithNextLines,
}

/// What one read of the pipe found.
enum Read {
    /// `len` bytes; `emptied`: the pipe held no more.
    Data {
        len: usize,
        emptied: bool,
    },
    Empty,
    Closed,
}

impl LogStream {
    /// A pipe for a child's stdout and stderr (the two `Stdio`s) and the stream reading it.
    pub(crate) fn open() -> std::io::Result<(Stdio, Stdio, LogStream)> {
        let (write_end, stream) = LogStream::open_to(Box::new(write_stderr))?;
        let stdout = Stdio::from(write_end.try_clone()?);
        Ok((stdout, Stdio::from(write_end), stream))
    }

    /// A pipe's write end and the stream reading it into `sink`.
    fn open_to(sink: Sink) -> std::io::Result<(OwnedFd, LogStream)> {
        let (sender, receiver) = pipe::pipe()?;
        let write_end = sender.into_blocking_fd()?;
        let reader = File::from(receiver.as_fd().try_clone_to_owned()?);
        let stream = LogStream {
            pipe: receiver,
            reader,
            log: Mutex::default(),
            sink,
        };
        Ok((write_end, stream))
    }

    /// Forwards the function's output as it comes, until the pipe closes (the process and
    /// everything it started have exited).
    pub(crate) async fn pump(self: Arc<Self>) {
        while self.pipe.readable().await.is_ok() && self.drain(Forward::Now) {}
    }

    /// Forwards whatever the pipe holds now, without waiting. `false` once the pipe is closed.
    ///
    /// A runtime writes its log lines before it posts its response, so after the response
    /// arrived this finds all of them: the log tail needs no timing guesses. (The runtime's
    /// driver saw the pipe readable in the same poll as the response, or an earlier one.)
    fn drain(&self, forward: Forward) -> bool {
        let mut log = self.log.lock().expect("invocation log");
        let mut chunk = [0u8; CHUNK_BYTES];
        loop {
            match self.read(&mut chunk) {
                Ok(Read::Data { len, emptied }) => {
                    match forward {
                        Forward::Now => log.forward(&chunk[..len], &self.sink),
                        Forward::WithNextLines => log.queue(&chunk[..len]),
                    }
                    if emptied {
                        return true;
                    }
                }
                Ok(Read::Empty) => return true,
                Ok(Read::Closed) => return false,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// One read, when the runtime's driver has seen the pipe readable since the last read that
    /// emptied it (else no syscall at all).
    fn read(&self, chunk: &mut [u8]) -> std::io::Result<Read> {
        let mut short_read = 0;
        // A `WouldBlock` from the closure tells the driver that the pipe is empty, so that
        // `readable()` waits for the next write: said after a short read, it spares the read
        // that would only hear `EAGAIN`. (Data written since then is seen by the driver anew.)
        let read = self.pipe.try_io(|| {
            let len = (&self.reader).read(chunk)?;
            if len > 0 && len < chunk.len() {
                short_read = len;
                return Err(ErrorKind::WouldBlock.into());
            }
            Ok(len)
        });
        match read {
            Ok(0) => Ok(Read::Closed),
            Ok(len) => Ok(Read::Data {
                len,
                emptied: false,
            }),
            Err(err) if err.kind() == ErrorKind::WouldBlock => Ok(if short_read > 0 {
                Read::Data {
                    len: short_read,
                    emptied: true,
                }
            } else {
                Read::Empty
            }),
            Err(err) => Err(err),
        }
    }

    /// Begins an invocation's log with its `START` line. What came before (init, or output
    /// after the last invocation) is forwarded but is not this invocation's.
    pub(crate) fn start(&self, start_line: &str) {
        self.drain(Forward::Now);
        self.log.lock().expect("invocation log").invocation.clear();
        self.lines(&[start_line]);
    }

    /// Adds Lambda's own `lines` to the log, and writes them (after any output waiting) now.
    pub(crate) fn lines(&self, lines: &[&str]) {
        let mut log = self.log.lock().expect("invocation log");
        log.add_lines(lines);
        log.forward(&[], &self.sink);
    }

    /// Ends the invocation's log: the function's last output, then `closing_lines` (`END`,
    /// `REPORT`). Hands back the log's tail.
    pub(crate) fn finish(&self, closing_lines: &[&str]) -> Bytes {
        self.drain(Forward::WithNextLines);
        self.lines(closing_lines);
        Bytes::from(std::mem::take(
            &mut self.log.lock().expect("invocation log").invocation,
        ))
    }
}

impl Log {
    /// Queues our `lines` after any output waiting and adds them to the invocation's log.
    fn add_lines(&mut self, lines: &[&str]) {
        let start = self.unwritten.len();
        for line in lines {
            self.unwritten.extend_from_slice(line.as_bytes());
            self.unwritten.push(b'\n');
        }
        push_bounded(&mut self.invocation, &self.unwritten[start..]);
    }

    /// Queues the function's `output` for the next write and adds it to the invocation's log.
    fn queue(&mut self, output: &[u8]) {
        self.unwritten.extend_from_slice(output);
        push_bounded(&mut self.invocation, output);
    }

    /// Writes what waits and then `output` (the function's) in one write, and adds `output` to
    /// the invocation's log.
    fn forward(&mut self, output: &[u8], sink: &Sink) {
        if self.unwritten.is_empty() {
            if !output.is_empty() {
                sink(output);
            }
        } else {
            self.unwritten.extend_from_slice(output);
            sink(&self.unwritten);
            self.unwritten.clear();
        }
        push_bounded(&mut self.invocation, output);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A stream whose sink records each write, and the pipe's write end.
    fn recorded() -> (File, Arc<LogStream>, Arc<Mutex<Vec<String>>>) {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&writes);
        let sink: Sink = Box::new(move |bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes).into_owned();
            recorder.lock().unwrap().push(text);
        });
        let (write_end, stream) = LogStream::open_to(sink).expect("a pipe");
        (File::from(write_end), Arc::new(stream), writes)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn start_goes_out_at_once_and_the_last_output_with_end_and_report() {
        let (mut function, stream, writes) = recorded();
        let pump = tokio::spawn(Arc::clone(&stream).pump());
        stream.start("START RequestId: 1");
        assert_eq!(*writes.lock().unwrap(), ["START RequestId: 1\n"]);
        function.write_all(b"first line\n").unwrap();
        // The pump forwards the line as it comes, without waiting for the invocation's end.
        tokio::time::timeout(Duration::from_secs(10), async {
            while writes.lock().unwrap().len() < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the line forwarded");
        pump.abort();
        // The last line is read at the end (the runtime's driver has seen it, as it has by the
        // time the runtime's response arrives), and goes out with `END` and `REPORT`.
        function.write_all(b"last line\n").unwrap();
        stream.pipe.readable().await.unwrap();
        let tail = stream.finish(&["END RequestId: 1", "REPORT RequestId: 1"]);

        let expected =
            "START RequestId: 1\nfirst line\nlast line\nEND RequestId: 1\nREPORT RequestId: 1\n";
        assert_eq!(String::from_utf8_lossy(&tail), expected);
        let writes = writes.lock().unwrap().clone();
        assert_eq!(writes.concat(), expected, "{writes:?}");
        assert_eq!(
            writes[1..],
            [
                "first line\n",
                "last line\nEND RequestId: 1\nREPORT RequestId: 1\n"
            ],
            "the last output, END and REPORT in one write: {writes:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_invocation_without_output_is_start_then_end_and_report() {
        let (_function, stream, writes) = recorded();
        stream.start("START RequestId: 2");
        let tail = stream.finish(&["END RequestId: 2", "REPORT RequestId: 2"]);

        let expected = "START RequestId: 2\nEND RequestId: 2\nREPORT RequestId: 2\n";
        assert_eq!(String::from_utf8_lossy(&tail), expected);
        assert_eq!(
            *writes.lock().unwrap(),
            [
                "START RequestId: 2\n",
                "END RequestId: 2\nREPORT RequestId: 2\n"
            ]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn output_before_start_is_forwarded_but_not_in_the_tail() {
        let (mut function, stream, writes) = recorded();
        function.write_all(b"init line\n").unwrap();
        // The driver has to see the pipe readable once before a read is tried.
        stream.pipe.readable().await.unwrap();
        stream.start("START RequestId: 3");
        function.write_all(b"handler line\n").unwrap();
        stream.pipe.readable().await.unwrap();
        let tail = stream.finish(&["END RequestId: 3"]);

        let tail = String::from_utf8_lossy(&tail);
        assert_eq!(tail, "START RequestId: 3\nhandler line\nEND RequestId: 3\n");
        assert_eq!(
            *writes.lock().unwrap(),
            [
                "init line\n",
                "START RequestId: 3\n",
                "handler line\nEND RequestId: 3\n"
            ]
        );
    }
}
