//! Measurements in a fresh child process, and the process's memory figures.
//!
//! A figure that depends on process-wide state (peak RSS, the number of
//! memory mappings, address space) is measured in a child so one runtime's
//! run does not pollute the other's. The child is the current executable
//! re-run with a hidden first argument:
//!
//! ```text
//! compare --pinstack-bench-child <workload>.<child> [args...]
//!   └─ workloads::run_child looks the child up in the registry, runs it,
//!      prints its result as the last stdout line, exits 0 (1 on error).
//! ```
//!
//! `std::process::Command` starts it with `posix_spawn` where it can (no
//! fork of a large address space).
//!
//! A *server* child ([`ServerChild`]) lives while the parent drives load at
//! it: its first stdout line says where it listens, and it stops when the
//! parent closes its stdin:
//!
//! ```text
//! parent                                   child (stdin, stdout piped; stderr inherited)
//!   ServerChild::start ───────────────────▶ serves; prints "listening on ADDR"
//!   first_line() ◀──────────────────────────┘
//!   ... drive load ...
//!   stop(): close stdin ──────────────────▶ stop_on_stdin_eof fires: shut down, exit 0
//!           wait (bounded; kill on timeout)
//! ```

use std::io::{BufRead, BufReader, Read};
use std::process::{Child as Process, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// The hidden first argument that makes a binary run as a measurement child.
pub const CHILD_ARG: &str = "--pinstack-bench-child";

/// Runs child `name` (`workload.child`) of the registry in a fresh process
/// and returns the last line it printed on stdout.
///
/// # Errors
///
/// When the child cannot be started, fails, or prints nothing; the error
/// carries the child's stderr.
pub fn run_in_child(name: &str, args: &[&str]) -> Result<String> {
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe)
        .arg(CHILD_ARG)
        .arg(name)
        .args(args)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("child {name} failed ({}): {}", out.status, stderr.trim()).into());
    }
    stdout
        .lines()
        .last()
        .map(|l| l.trim().to_string())
        .ok_or_else(|| format!("child {name} printed nothing; stderr: {}", stderr.trim()).into())
}

/// Runs a child and parses its output line as a number.
///
/// # Errors
///
/// As [`run_in_child`], or when the line is not a number.
pub fn run_in_child_f64(name: &str, args: &[&str]) -> Result<f64> {
    let line = run_in_child(name, args)?;
    line.parse()
        .map_err(|e| format!("child {name} printed {line:?}, not a number: {e}").into())
}

/// A long-lived child process (a server) running registry child `name`.
#[derive(Debug)]
pub struct ServerChild {
    name: String,
    process: Process,
    stdout: BufReader<ChildStdout>,
    first_line: String,
}

impl ServerChild {
    /// Starts child `name` (`workload.child`) with `args` and waits for the
    /// first line it prints on stdout (its readiness).
    ///
    /// # Errors
    ///
    /// When it cannot be started, or exits before printing a line.
    pub fn start(name: &str, args: &[&str]) -> Result<ServerChild> {
        ServerChild::start_exe(&std::env::current_exe()?, name, args)
    }

    /// [`start`](ServerChild::start) with an explicit executable (one whose
    /// `main` dispatches [`CHILD_ARG`] like `compare` does; tests use it).
    ///
    /// # Errors
    ///
    /// As [`start`](ServerChild::start).
    pub fn start_exe(exe: &std::path::Path, name: &str, args: &[&str]) -> Result<ServerChild> {
        let mut process = Command::new(exe)
            .arg(CHILD_ARG)
            .arg(name)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let Some(out) = process.stdout.take() else {
            let _ = process.kill();
            let _ = process.wait();
            return Err(format!("child {name}: no stdout pipe").into());
        };
        let mut server = ServerChild {
            name: name.to_string(),
            process,
            stdout: BufReader::new(out),
            first_line: String::new(),
        };
        let mut line = String::new();
        if server.stdout.read_line(&mut line)? == 0 {
            let status = server.process.wait()?;
            return Err(format!(
                "child {name} exited ({status}) before saying it was ready (see its stderr above)"
            )
            .into());
        }
        server.first_line = line.trim().to_string();
        Ok(server)
    }

    /// The first line the child printed.
    pub fn first_line(&self) -> &str {
        &self.first_line
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Closes the child's stdin (its stop signal), waits up to `timeout` for
    /// it to exit, and returns the last line it printed after the first.
    ///
    /// # Errors
    ///
    /// When it does not exit in time (it is killed then) or exits with a
    /// failure.
    pub fn stop(mut self, timeout: Duration) -> Result<String> {
        drop(self.process.stdin.take());
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.process.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.process.kill();
                let _ = self.process.wait();
                return Err(format!(
                    "child {} did not stop within {timeout:?} of its stdin closing; killed it",
                    self.name
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest)?;
        if !status.success() {
            return Err(format!("child {} failed ({status})", self.name).into());
        }
        Ok(rest.lines().last().unwrap_or("").trim().to_string())
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        // Not stopped through `stop` (an error path): do not leave it running.
        if let Ok(None) = self.process.try_wait() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// In a server child: runs `stop` on a new thread once stdin reaches end of
/// file (the parent closed it, or died).
///
/// # Errors
///
/// When the thread cannot be started.
pub fn stop_on_stdin_eof(stop: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            stop();
        })?;
    Ok(())
}

/// Reads a `kB` field such as `VmHWM` (peak RSS) or `VmRSS` (current RSS)
/// from `/proc/self/status`, in KiB.
///
/// # Errors
///
/// When the file cannot be read or lacks the field.
pub fn status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    parse_status_kib(&status, field)
        .ok_or_else(|| format!("no {field} in /proc/self/status").into())
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Peak resident set size of this process, in KiB (`VmHWM`).
///
/// # Errors
///
/// As [`status_kib`].
pub fn peak_rss_kib() -> Result<u64> {
    status_kib("VmHWM")
}

/// Current resident set size of this process, in KiB (`VmRSS`).
///
/// # Errors
///
/// As [`status_kib`].
pub fn rss_kib() -> Result<u64> {
    status_kib("VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse_and_are_plausible() {
        let text = "Name:\tx\nVmHWM:\t  1234 kB\nVmRSS:\t   99 kB\n";
        assert_eq!(parse_status_kib(text, "VmHWM"), Some(1234));
        assert_eq!(parse_status_kib(text, "VmRSS"), Some(99));
        assert_eq!(parse_status_kib(text, "VmSwap"), None);
        let rss = rss_kib().unwrap();
        let hwm = peak_rss_kib().unwrap();
        assert!(rss > 0 && hwm >= rss, "rss {rss} hwm {hwm}");
        // Touching 32 MiB raises the peak by about that much.
        let v = vec![1u8; 32 << 20];
        std::hint::black_box(&v);
        assert!(peak_rss_kib().unwrap() >= hwm.max(32 << 10));
    }
}
