//! Waiting for Unix signals from a coroutine: `SIGTERM` for a graceful
//! shutdown, `SIGHUP` for a reload (tokio's `signal::unix`, Go's
//! `signal.Notify`).
//!
//! ```text
//!   signal handler (any thread, async-signal-safe):
//!       write(pipe, [signal number])      non-blocking; a full pipe drops it
//!   Signals::recv (a coroutine):
//!       read(pipe) ── empty ──▶ suspend until the worker's poller sees the
//!                               pipe readable (as a socket read would)
//! ```
//!
//! Handlers are installed through `signal-hook-registry`, which chains
//! them with any others and keeps `errno` intact. As in tokio, once a
//! handler was installed for a signal the signal's default action (ending
//! the process, for `SIGINT` and `SIGTERM`) does not come back, not even
//! after the [`Signals`] is dropped: deliveries are then ignored.

use crate::net::source::Limit;
use crate::process::stdio::Pipe;
use signal_hook_registry::SigId;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

/// A set of signals to wait for; each delivery is received once.
///
/// Deliveries that come faster than they are received queue up (up to the
/// capacity of a pipe, some 65,000; beyond that they are dropped, as the
/// kernel merges pending signals too). Each `Signals` gets every delivery
/// of its signals, whatever others exist.
///
/// # Examples
///
/// A task that waits for `SIGUSR1` (here sent by the program itself; a
/// server would wait for `SIGTERM` and `SIGINT` the same way):
///
/// ```
/// use pinstack::signal::{Signals, SIGUSR1};
///
/// let rt = pinstack::Runtime::new()?;
/// let signals = Signals::new(&[SIGUSR1])?;
/// let server = rt.spawn(move || signals.recv());
/// // SAFETY: `kill` of our own process with a signal now handled.
/// unsafe { libc::kill(libc::getpid(), SIGUSR1) };
/// assert_eq!(server.join()??, SIGUSR1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Signals {
    pipe: Pipe,
    ids: Vec<SigId>,
}

/// `SIGINT`: Ctrl-C.
pub const SIGINT: i32 = libc::SIGINT;
/// `SIGTERM`: the polite request to stop (`kill`, systemd, Kubernetes).
pub const SIGTERM: i32 = libc::SIGTERM;
/// `SIGHUP`: by convention, reload the configuration.
pub const SIGHUP: i32 = libc::SIGHUP;
/// `SIGUSR1`: for the application.
pub const SIGUSR1: i32 = libc::SIGUSR1;
/// `SIGUSR2`: for the application.
pub const SIGUSR2: i32 = libc::SIGUSR2;

impl Signals {
    /// Starts catching `signals`. Their handlers are installed before this
    /// returns, so a signal sent afterwards is received.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a signal that cannot be caught or must not be
    /// (`SIGKILL`, `SIGSTOP`, `SIGSEGV`, `SIGILL`, `SIGFPE`) or is not a
    /// signal number, or for an empty list; an OS error if the pipe or a
    /// handler cannot be set up (nothing stays installed then).
    pub fn new(signals: &[i32]) -> io::Result<Signals> {
        if signals.is_empty() {
            return Err(invalid("Signals::new(&[]): give at least one signal"));
        }
        for &s in signals {
            if signal_hook_registry::FORBIDDEN.contains(&s) || !(1..=64).contains(&s) {
                return Err(invalid(&format!(
                    "Signals::new: signal {s} cannot be caught here (SIGKILL, SIGSTOP, \
                     SIGSEGV, SIGILL and SIGFPE are refused, as are numbers outside 1..=64)"
                )));
            }
        }
        let (read, write) = crate::process::sys::pipe()?;
        crate::process::sys::set_nonblocking(write.as_fd(), true)?;
        let pipe = Pipe::new(read)?;
        // Owned by every handler: the write end closes once the registry
        // has dropped the last one (after they are unregistered and no
        // handler runs them any more).
        let write = std::sync::Arc::new(write);
        let mut ids = Vec::with_capacity(signals.len());
        for &s in signals {
            let w = write.clone();
            let byte = s as u8; // 1..=64
            let action = move || {
                // A full pipe (`EAGAIN`) drops this delivery, as documented.
                // SAFETY: one byte from a live local to a descriptor this
                // closure keeps open (`w`); `write(2)` is async-signal-safe.
                let _ = unsafe { libc::write(w.as_raw_fd(), (&byte as *const u8).cast(), 1) };
            };
            // SAFETY: the action only calls `write(2)` on a descriptor it
            // owns (async-signal-safe: no allocation, no lock).
            match unsafe { signal_hook_registry::register(s, action) } {
                Ok(id) => ids.push(id),
                Err(e) => {
                    for id in ids {
                        signal_hook_registry::unregister(id);
                    }
                    return Err(io::Error::new(
                        e.kind(),
                        format!("installing a handler for signal {s}: {e}"),
                    ));
                }
            }
        }
        Ok(Signals { pipe, ids })
    }

    /// Waits for the next delivery of one of the signals and returns its
    /// number. A coroutine suspends; a plain thread blocks.
    ///
    /// # Errors
    ///
    /// An OS error reading the pipe (not expected).
    pub fn recv(&self) -> io::Result<i32> {
        self.recv_within(Limit::Never)
    }

    /// Like [`recv`](Signals::recv), giving up after `timeout` with
    /// `ErrorKind::TimedOut`.
    ///
    /// # Errors
    ///
    /// `TimedOut`, or as `recv`.
    pub fn recv_timeout(&self, timeout: Duration) -> io::Result<i32> {
        self.recv_within(Limit::After(timeout))
    }

    /// The next delivery if one is waiting; never waits.
    ///
    /// # Errors
    ///
    /// As `recv`.
    pub fn try_recv(&self) -> io::Result<Option<i32>> {
        let mut b = [0u8; 1];
        match self.pipe.try_read(&mut b) {
            Ok(1) => Ok(Some(i32::from(b[0]))),
            Ok(_) => Err(closed()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn recv_within(&self, limit: Limit) -> io::Result<i32> {
        let mut b = [0u8; 1];
        match self.pipe.read_within(&mut b, limit)? {
            1 => Ok(i32::from(b[0])),
            _ => Err(closed()),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("handlers", &self.ids.len())
            .finish_non_exhaustive()
    }
}

/// Waits for Ctrl-C (`SIGINT`): installs a handler, then waits for the
/// next delivery. A coroutine suspends; a plain thread blocks.
///
/// # Errors
///
/// As [`Signals::new`] and [`Signals::recv`].
pub fn ctrl_c() -> io::Result<()> {
    Signals::new(&[SIGINT])?.recv().map(drop)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the signal pipe's write end closed while its handlers were installed",
    )
}
