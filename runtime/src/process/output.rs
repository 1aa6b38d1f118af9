//! Reading a child's stdout and stderr to their ends at the same time.
//!
//! Reading one pipe to its end before the other deadlocks as soon as the
//! child fills the other pipe (64 KiB) and blocks writing to it. Two ways
//! around it:
//!
//! * In a task: a helper task reads stderr while the calling task reads
//!   stdout. Both suspend on their own pipe; neither blocks the worker.
//! * On a plain thread (or if the helper task cannot be spawned, because
//!   the runtime is at its live-task limit or shutting down): one loop reads
//!   both non-blocking pipes until `WouldBlock`, then waits in `poll(2)` on
//!   the ones still open. In a task this fallback blocks the worker thread
//!   until the child closes its pipes; it is never taken while spawning
//!   works.

use super::stdio::{ChildStderr, ChildStdout, Pipe};
use super::sys;
use crate::loom::sync::Arc;
use crate::scheduler;
use crate::task;
use std::io::{self, Read};
use std::os::fd::BorrowedFd;

/// `(stdout, stderr)` read to their ends; a missing stream reads as empty.
pub(crate) fn read_both(
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    match (out, err) {
        (None, None) => Ok((Vec::new(), Vec::new())),
        (Some(o), None) => Ok((read_all(&o)?, Vec::new())),
        (None, Some(e)) => Ok((Vec::new(), read_all(&e)?)),
        (Some(o), Some(e)) => {
            let e = Arc::new(e);
            if scheduler::in_worker_task() {
                let e2 = e.clone();
                let helper = task::Builder::new()
                    .name("pinstack-process-stderr")
                    .spawn(move || read_all(&*e2));
                // On a spawn error the closure, and with it `e2`, is dropped.
                if let Ok(h) = helper {
                    let out = read_all(&o)?;
                    let err = h.join().map_err(|je| {
                        io::Error::other(format!(
                            "the task reading the child's stderr failed: {je}"
                        ))
                    })??;
                    return Ok((out, err));
                }
            }
            poll_both(o.pipe(), e.pipe())
        }
    }
}

fn read_all(mut r: impl Read) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

/// The `poll(2)` loop over two pipes (see the module docs).
fn poll_both(o: &Pipe, e: &Pipe) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let pipes = [o, e];
    let mut bufs = [Vec::new(), Vec::new()];
    let mut open = [true, true];
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        for i in 0..2 {
            while open[i] {
                match pipes[i].try_read(&mut chunk) {
                    Ok(0) => open[i] = false,
                    Ok(n) => bufs[i].extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let waiting: Vec<BorrowedFd<'_>> =
            (0..2).filter(|&i| open[i]).map(|i| pipes[i].fd()).collect();
        if waiting.is_empty() {
            let [out, err] = bufs;
            return Ok((out, err));
        }
        sys::poll_readable(&waiting)?;
    }
}
