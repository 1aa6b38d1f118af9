//! `Child`: a running (or exited, not yet reaped) child process, held by
//! its pidfd.
//!
//! ```text
//!   spawned ──try_wait/wait sees exit──▶ reaped (status cached; pidfd kept
//!      │                                  open until drop, harmless)
//!      └──dropped un-waited──▶ [kill_on_drop: SIGKILL] ──▶ reaper (reaper.rs)
//! ```
//!
//! The pidfd names this process only, even after its pid is reused, so
//! `kill` and the reap (`waitid(P_PIDFD)`) can never hit a stranger. It is
//! readable once the child has exited: `wait` retries
//! `waitid(WEXITED | WNOHANG)` and treats "still running" as `WouldBlock`,
//! so the shared readiness loop (`net/source.rs`) suspends the task until the
//! worker's poller reports the exit, or blocks a plain thread in `poll(2)`.
//!
//! Only the owner (`&mut self`) reaps, and the status is cached, so a child
//! is reaped exactly once. A dropped child's pidfd moves to the reaper; its
//! registration with a worker's poller is dropped first, while the
//! descriptor is still open.

use super::output;
use super::reaper;
use super::stdio::{ChildStderr, ChildStdin, ChildStdout};
use super::sys;
use crate::net::source::{Direction, Registration};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Output};
use std::time::{Duration, Instant};

/// A child process started by [`Command`](super::Command).
///
/// Waiting suspends the calling task, not its worker thread; from a plain
/// thread it blocks the thread. Dropping a `Child` without waiting does not
/// leave a zombie: the child keeps running (or is killed, with
/// [`Command::kill_on_drop`](super::Command::kill_on_drop)) and is reaped by
/// the process-wide reaper thread when it exits.
pub struct Child {
    pid: u32,
    pidfd: Option<PidFd>,
    status: Option<ExitStatus>,
    kill_on_drop: bool,
    /// The parent's end of the child's stdin, if piped. Taken (dropped) by
    /// [`wait`](Child::wait) so the child sees end of file.
    pub stdin: Option<ChildStdin>,
    /// The parent's end of the child's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The parent's end of the child's stderr, if piped.
    pub stderr: Option<ChildStderr>,
}

struct PidFd {
    // Declared first: deregistered before the descriptor is closed or moved.
    reg: Registration,
    fd: OwnedFd,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("pidfd", &self.pidfd.as_ref().map(|p| p.fd.as_raw_fd()))
            .field("status", &self.status)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

impl Child {
    pub(crate) fn new(
        pid: u32,
        pidfd: OwnedFd,
        kill_on_drop: bool,
        stdin: Option<ChildStdin>,
        stdout: Option<ChildStdout>,
        stderr: Option<ChildStderr>,
    ) -> Child {
        Child {
            pid,
            pidfd: Some(PidFd {
                reg: Registration::new(pidfd.as_raw_fd()),
                fd: pidfd,
            }),
            status: None,
            kill_on_drop,
            stdin,
            stdout,
            stderr,
        }
    }

    /// The child's process id. After the child is reaped the id may be
    /// reused by an unrelated process.
    pub fn id(&self) -> u32 {
        self.pid
    }

    fn pidfd(&self) -> io::Result<&PidFd> {
        // `pidfd` is `None` only inside `drop`.
        self.pidfd
            .as_ref()
            .ok_or_else(|| io::Error::other("the child's pidfd is gone"))
    }

    /// Sends `SIGKILL`. Returns `Ok` if the child has already exited.
    ///
    /// # Errors
    ///
    /// The `pidfd_send_signal` error (for example `EPERM` if the child
    /// changed its credentials).
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        match sys::pidfd_send_signal(self.pidfd()?.fd.as_fd(), libc::SIGKILL) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r,
        }
    }

    /// Reaps the child if it has exited, without waiting.
    ///
    /// # Errors
    ///
    /// `NotFound` if someone else reaped it (`SIGCHLD` ignored, or a
    /// `waitpid(-1)` elsewhere in the process), or the `waitid` error.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let raw = sys::pidfd_try_wait(self.pidfd()?.fd.as_fd())?;
        let status = raw.map(ExitStatus::from_raw);
        self.status = status;
        Ok(status)
    }

    /// Waits for the child to exit and reaps it. Closes [`stdin`](Child::stdin)
    /// first, so a child reading its input to the end can finish.
    ///
    /// Suspends the calling task until the worker's poller reports the exit;
    /// other tasks keep running. On a plain thread, blocks it.
    ///
    /// # Errors
    ///
    /// As [`try_wait`](Child::try_wait).
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        self.wait_until(None)
    }

    /// Like [`wait`](Child::wait), but gives up after `timeout`: `Ok(None)`
    /// if the child is still running then (it is neither killed nor reaped).
    ///
    /// # Errors
    ///
    /// As [`try_wait`](Child::try_wait).
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        drop(self.stdin.take());
        match self.wait_until(Some(Instant::now() + timeout)) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let p = self.pidfd()?;
        let raw = p.reg.io(
            Direction::Read,
            deadline.into(),
            || match sys::pidfd_try_wait(p.fd.as_fd())? {
                Some(raw) => Ok(raw),
                None => Err(io::ErrorKind::WouldBlock.into()),
            },
        )?;
        let status = ExitStatus::from_raw(raw);
        self.status = Some(status);
        Ok(status)
    }

    /// Closes stdin, reads stdout and stderr to their ends (both at once, so
    /// a child filling one pipe while the parent reads the other cannot
    /// deadlock), then waits for the exit.
    ///
    /// In a task, stderr is read by a helper task while this one reads
    /// stdout; on a plain thread, one `poll(2)` loop serves both (see
    /// `output.rs`). Streams that were not piped come back empty.
    ///
    /// # Errors
    ///
    /// A read error, or as [`wait`](Child::wait).
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = output::read_both(self.stdout.take(), self.stderr.take())?;
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let Some(PidFd { reg, fd }) = self.pidfd.take() else {
            return;
        };
        drop(reg);
        if self.status.is_some() {
            return;
        }
        if self.kill_on_drop {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        }
        reaper::adopt(fd);
    }
}
