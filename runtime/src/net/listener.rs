//! `TcpListener`, and the accept loop every listener shares (`Acceptor`):
//! back-off when descriptors run out.

use super::source::{Direction, Limit, Registration};
use super::stream::{each_addr, TcpStream};
use crate::loom::sync::atomic::{AtomicU64, Ordering::Relaxed};
use crate::loom::sync::{Arc, Mutex};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// The listen backlog asked for (the kernel clamps it to `net.core.somaxconn`).
const BACKLOG: i32 = 4096;
/// First and longest back-off sleep after `EMFILE`/`ENFILE`.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_millis(200);

/// A TCP listening socket. [`accept`](TcpListener::accept) suspends the
/// calling task until a connection arrives.
///
/// When the process runs out of file descriptors (`EMFILE`, or `ENFILE` for
/// the whole system), `accept` does not fail and does not spin: it sleeps
/// with exponential back-off (5 ms to 200 ms) and tries again, while every
/// other task keeps serving the connections it has. Each such event is
/// counted in [`accept_stats`](TcpListener::accept_stats) and reported on
/// stderr at most once a second. Raise `ulimit -n` to avoid it.
pub struct TcpListener {
    inner: Arc<Acceptor<std::net::TcpListener>>,
}

/// A listening socket of either family, registered with the poller, with
/// the accept loop's back-off and counts.
pub(super) struct Acceptor<L> {
    // `reg` first: deregister before the descriptor is closed.
    reg: Registration,
    pub(super) sock: L,
    accepted: AtomicU64,
    attempts: AtomicU64,
    exhausted: AtomicU64,
    last_report: Mutex<Option<Instant>>,
}

impl<L: AsRawFd> Acceptor<L> {
    /// Registers `sock`, which the caller made non-blocking.
    pub(super) fn new(sock: L) -> Acceptor<L> {
        Acceptor {
            reg: Registration::new(sock.as_raw_fd()),
            sock,
            accepted: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
            last_report: Mutex::new(None),
        }
    }

    /// Runs `accept` (one `accept(2)`) until it gives a connection: waits
    /// for readiness on `WouldBlock`, skips connections that died in the
    /// backlog, and backs off while descriptors are exhausted (reporting it
    /// as `where_` names the socket).
    pub(super) fn accept<R>(
        &self,
        mut accept: impl FnMut(&L) -> io::Result<R>,
        where_: impl Fn(&L) -> String,
    ) -> io::Result<R> {
        let mut backoff = BACKOFF_MIN;
        loop {
            let r = self.reg.io(Direction::Read, Limit::Never, || {
                self.attempts.fetch_add(1, Relaxed);
                accept(&self.sock)
            });
            match r {
                Ok(conn) => {
                    self.accepted.fetch_add(1, Relaxed);
                    return Ok(conn);
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    self.exhausted.fetch_add(1, Relaxed);
                    self.report_exhausted(&e, backoff, &where_);
                    crate::sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn report_exhausted(&self, e: &io::Error, backoff: Duration, where_: &impl Fn(&L) -> String) {
        let mut last = self.last_report.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        *last = Some(now);
        eprintln!(
            "pinstack: accept on {}: {e}; backing off {} ms and serving existing connections \
             ({} times so far). Raise the descriptor limit (ulimit -n) to accept more.",
            where_(&self.sock),
            backoff.as_millis(),
            self.exhausted.load(Relaxed),
        );
    }

    /// What `accept` has done so far.
    pub(super) fn stats(&self) -> AcceptStats {
        AcceptStats {
            accepted: self.accepted.load(Relaxed),
            attempts: self.attempts.load(Relaxed),
            fd_exhausted: self.exhausted.load(Relaxed),
        }
    }
}

/// Counts of what [`TcpListener::accept`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcceptStats {
    /// Connections accepted.
    pub accepted: u64,
    /// `accept(2)` calls made (successful, `WouldBlock` or failed).
    pub attempts: u64,
    /// Times `accept(2)` failed for lack of descriptors (`EMFILE`/`ENFILE`),
    /// each followed by a back-off sleep.
    pub fd_exhausted: u64,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.inner.sock.as_raw_fd())
            .field("local", &self.inner.sock.local_addr().ok())
            .finish()
    }
}

impl TcpListener {
    /// Binds to the first address that works (`SO_REUSEADDR` set, backlog 4096).
    ///
    /// # Errors
    ///
    /// The last bind error, or `InvalidInput` if `addr` resolves to nothing.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let s = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
            s.set_reuse_address(true)?;
            s.bind(&SockAddr::from(a))?;
            s.listen(BACKLOG)?;
            TcpListener::from_std(s.into())
        })
    }

    /// Wraps a bound std listener, making it non-blocking.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made non-blocking.
    pub fn from_std(sock: std::net::TcpListener) -> io::Result<TcpListener> {
        sock.set_nonblocking(true)?;
        Ok(TcpListener {
            inner: Arc::new(Acceptor::new(sock)),
        })
    }

    /// Waits for a connection.
    ///
    /// # Errors
    ///
    /// Errors of `accept(2)` other than running out of descriptors (which
    /// backs off and retries, see the type's docs).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, addr) = self.inner.accept(
            |l| l.accept(),
            |l| {
                l.local_addr()
                    .map_or_else(|_| "?".into(), |a| a.to_string())
            },
        )?;
        Ok((TcpStream::from_std(s)?, addr))
    }

    /// An iterator over incoming connections (never ends by itself).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// What `accept` has done so far.
    pub fn accept_stats(&self) -> AcceptStats {
        self.inner.stats()
    }

    /// Another handle to the same listener (several acceptor tasks).
    ///
    /// # Errors
    ///
    /// Never; `io::Result` for parity with std.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: self.inner.clone(),
        })
    }
}

/// Errors `accept(2)` reports for a connection that died in the backlog:
/// skip it and accept the next.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::ENETDOWN | libc::ENOPROTOOPT)
    )
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.sock.as_raw_fd()
    }
}

/// Iterator returned by [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
