//! Unix domain stream sockets: `UnixListener` and `UnixStream`, the local
//! IPC twins of the TCP types (tokio's `net::UnixStream`, Go's
//! `net.Listen("unix", path)`). Same accept loop (with the descriptor
//! back-off), same reads and writes, same timeouts as TCP.

use super::listener::{AcceptStats, Acceptor};
use super::stream::{stream_common, Conn};
use crate::loom::sync::Arc;
use socket2::{Domain, SockAddr, Socket, Type};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{self as unix, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// The listen backlog asked for (the kernel clamps it to `net.core.somaxconn`).
const BACKLOG: i32 = 4096;
/// Longest pause between connect attempts while the listener's backlog is
/// full (`EAGAIN`: a Unix socket connect does not wait for room itself).
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(50);

/// A Unix domain listening socket. [`accept`](UnixListener::accept)
/// suspends the calling task until a connection arrives; when descriptors
/// run out it backs off as [`TcpListener`](super::TcpListener) does.
///
/// # Examples
///
/// ```
/// use pinstack::net::{UnixListener, UnixStream};
/// use std::io::{Read, Write};
///
/// let dir = std::env::temp_dir().join(format!("pinstack-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("echo.sock");
/// let _ = std::fs::remove_file(&path);
/// let rt = pinstack::Runtime::new()?;
/// let listener = UnixListener::bind(&path)?;
/// let server = rt.spawn(move || -> std::io::Result<()> {
///     let (mut conn, _) = listener.accept()?;
///     let mut buf = [0u8; 5];
///     conn.read_exact(&mut buf)?;
///     conn.write_all(&buf)
/// });
/// let mut client = UnixStream::connect(&path)?;
/// client.write_all(b"hello")?;
/// let mut back = [0u8; 5];
/// client.read_exact(&mut back)?;
/// assert_eq!(&back, b"hello");
/// server.join()??;
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UnixListener {
    inner: Arc<Acceptor<unix::UnixListener>>,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.inner.sock.as_raw_fd())
            .field("local", &self.inner.sock.local_addr().ok())
            .finish()
    }
}

impl UnixListener {
    /// Creates the socket file at `path` and listens on it (backlog 4096).
    ///
    /// # Errors
    ///
    /// `AddrInUse` if `path` exists (remove a stale socket file first), or
    /// the socket's error.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let s = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        s.bind(&SockAddr::unix(path)?)?;
        s.listen(BACKLOG)?;
        UnixListener::from_std(s.into())
    }

    /// Wraps a bound std listener, making it non-blocking.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made non-blocking.
    pub fn from_std(sock: unix::UnixListener) -> io::Result<UnixListener> {
        sock.set_nonblocking(true)?;
        Ok(UnixListener {
            inner: Arc::new(Acceptor::new(sock)),
        })
    }

    /// Waits for a connection.
    ///
    /// # Errors
    ///
    /// Errors of `accept(2)` other than running out of descriptors (which
    /// backs off and retries).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, addr) = self.inner.accept(
            |l| l.accept(),
            |l| {
                l.local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                    .unwrap_or_else(|| "?".into())
            },
        )?;
        Ok((UnixStream::from_std(s)?, addr))
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
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            inner: self.inner.clone(),
        })
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.sock.as_raw_fd()
    }
}

/// A Unix domain stream connection. Reads and writes suspend the calling
/// task (or block a plain thread) until the socket is ready; it implements
/// [`Read`](std::io::Read) and [`Write`](std::io::Write) (also for
/// `&UnixStream`), and [`try_clone`](UnixStream::try_clone) gives a second
/// handle for a second task.
#[derive(Clone)]
pub struct UnixStream {
    inner: Arc<Conn<unix::UnixStream>>,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.inner.sock.as_raw_fd())
            .field("local", &self.inner.sock.local_addr().ok())
            .field("peer", &self.inner.sock.peer_addr().ok())
            .finish()
    }
}

impl UnixStream {
    /// Wraps a connected std stream, making it non-blocking.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made non-blocking.
    pub fn from_std(sock: unix::UnixStream) -> io::Result<UnixStream> {
        sock.set_nonblocking(true)?;
        Ok(UnixStream {
            inner: Arc::new(Conn::new(sock)),
        })
    }

    /// Connects to the socket at `path`. While the listener's backlog is
    /// full the attempt is repeated, the calling task sleeping in between
    /// (a Unix socket connect fails with `EAGAIN` then, instead of
    /// waiting).
    ///
    /// # Errors
    ///
    /// `NotFound` or `ConnectionRefused` if nothing listens at `path`, or
    /// the socket's error.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = SockAddr::unix(path)?;
        let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        sock.set_nonblocking(true)?;
        let mut pause = Duration::from_millis(1);
        loop {
            match sock.connect(&addr) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    crate::sleep(pause);
                    pause = (pause * 2).min(CONNECT_RETRY_MAX);
                }
                Err(e) => return Err(e),
            }
        }
        UnixStream::from_std(sock.into())
    }

    /// A connected pair (`socketpair(2)`), for talking between two tasks or
    /// with a child process.
    ///
    /// # Errors
    ///
    /// The `socketpair` error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    ///
    /// let (mut a, mut b) = pinstack::net::UnixStream::pair()?;
    /// a.write_all(b"ping")?;
    /// let mut buf = [0u8; 4];
    /// b.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"ping");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = unix::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }
}

stream_common!(UnixStream);
