//! Lambda's `REPORT` line, and the peak memory it reports.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::time::Duration;

/// `REPORT RequestId: <id>\tDuration: … ms\tBilled Duration: … ms\tMemory Size: … MB…`, as
/// Lambda ends an invocation's log.
pub(crate) struct Report<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) duration: Duration,
    pub(crate) memory_size_mb: u32,
    pub(crate) max_memory_used_mb: Option<u64>,
    /// Only on the first invocation of an execution environment.
    pub(crate) init_duration: Option<Duration>,
    pub(crate) error_type: Option<&'a str>,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let duration_ms = self.duration.as_secs_f64() * 1000.0;
        write!(
            f,
            "REPORT RequestId: {}\tDuration: {duration_ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB",
            self.request_id,
            duration_ms.ceil() as u64,
            self.memory_size_mb
        )?;
        if let Some(peak) = self.max_memory_used_mb {
            write!(f, "\tMax Memory Used: {peak} MB")?;
        }
        if let Some(init) = self.init_duration {
            write!(f, "\tInit Duration: {:.2} ms", init.as_secs_f64() * 1000.0)?;
        }
        if let Some(error_type) = self.error_type {
            write!(f, "\tStatus: error\tError Type: {error_type}")?;
        }
        Ok(())
    }
}

/// A process's peak resident memory (Linux `VmHWM`).
///
/// `/proc/<pid>/status` is opened once per process and read again from its start for each
/// `REPORT` (the kernel writes it afresh on every read from offset 0): opening it by path each
/// time cost about as much again as reading it. The open file also stays bound to this process,
/// never to a later one that reuses its pid.
pub(crate) struct PeakMemory {
    status: Option<File>,
}

impl PeakMemory {
    /// The probe of process `pid`; it reports nothing when `/proc` cannot be read.
    pub(crate) fn of(pid: Option<u32>) -> Self {
        let status = pid.and_then(|pid| File::open(format!("/proc/{pid}/status")).ok());
        Self { status }
    }

    /// The peak so far, in MB rounded up, as Lambda's `Max Memory Used`.
    pub(crate) fn mb(&self) -> Option<u64> {
        // `VmHWM` comes within the first kilobyte or so; the rest is not needed.
        let mut buffer = [0u8; 4096];
        let read = self.status.as_ref()?.read_at(&mut buffer, 0).ok()?;
        // By bytes: the `Name:` line is the process's name, which need not be UTF-8.
        let line = buffer[..read]
            .split(|byte| *byte == b'\n')
            .find_map(|line| line.strip_prefix(b"VmHWM:"))?;
        let kb: u64 = std::str::from_utf8(line)
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kb.div_ceil(1024))
    }
}
