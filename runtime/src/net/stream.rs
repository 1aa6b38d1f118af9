//! `TcpStream`, and what every stream type shares (`Conn`, `stream_common!`).

use super::source::{Direction, Registration, Timeout};
use crate::loom::sync::Arc;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// A TCP connection. Reads and writes suspend the calling task (or block a
/// plain thread) until the socket is ready.
///
/// It implements [`Read`] and [`Write`] (also for `&TcpStream`), so
/// `BufReader`, `BufWriter`, `read_exact` and `write_all` work as with std.
/// [`try_clone`](TcpStream::try_clone) gives a second handle to the same
/// connection: one task may read while another, on any worker, writes.
#[derive(Clone)]
pub struct TcpStream {
    inner: Arc<Conn<std::net::TcpStream>>,
}

/// A connected stream socket of either family, registered with the poller.
pub(super) struct Conn<S> {
    // `reg` first: fields drop in order, and the socket must leave the
    // poller before its descriptor is closed (and its number reused).
    pub(super) reg: Registration,
    pub(super) sock: S,
    /// Timeouts in nanoseconds; 0 means none.
    pub(super) read_timeout: Timeout,
    pub(super) write_timeout: Timeout,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.inner.sock.as_raw_fd())
            .field("local", &self.inner.sock.local_addr().ok())
            .field("peer", &self.inner.sock.peer_addr().ok())
            .finish()
    }
}

impl<S: AsRawFd> Conn<S> {
    /// Registers `sock`, which the caller made non-blocking.
    pub(super) fn new(sock: S) -> Conn<S> {
        Conn {
            reg: Registration::new(sock.as_raw_fd()),
            sock,
            read_timeout: Timeout::default(),
            write_timeout: Timeout::default(),
        }
    }
}

impl<S> Conn<S>
where
    for<'a> &'a S: Read + Write,
{
    /// A read or write of `want` bytes through the registration, under the
    /// direction's timeout (see `Registration::io_transfer`).
    fn transfer(
        &self,
        dir: Direction,
        want: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        let timeout = match dir {
            Direction::Read => &self.read_timeout,
            Direction::Write => &self.write_timeout,
        };
        self.reg.io_transfer(dir, timeout.limit(), want, op)
    }

    pub(super) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.transfer(Direction::Read, buf.len(), || (&self.sock).read(buf))
    }

    pub(super) fn readable(&self) -> io::Result<()> {
        self.reg.readable(self.read_timeout.limit())
    }

    pub(super) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.reg
            .try_transfer(Direction::Read, buf.len(), || (&self.sock).read(buf))
    }

    pub(super) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.transfer(Direction::Write, buf.len(), || (&self.sock).write(buf))
    }

    pub(super) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let want = bufs.iter().map(|b| b.len()).sum();
        self.transfer(Direction::Write, want, || (&self.sock).write_vectored(bufs))
    }

    pub(super) fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let want = bufs.iter().map(|b| b.len()).sum();
        self.transfer(Direction::Read, want, || (&self.sock).read_vectored(bufs))
    }
}

/// The methods and trait impls every stream type shares (`TcpStream`,
/// `UnixStream`), over its `inner: Arc<Conn<_>>` and the std type's
/// `shutdown` and `take_error`.
macro_rules! stream_common {
    ($t:ident) => {
        impl $t {
            /// Reads into `buf`, suspending until data arrives. `Ok(0)`
            /// means the peer closed its side.
            ///
            /// # Errors
            ///
            /// `TimedOut` after the read timeout, or the socket's error.
            pub fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.inner.read(buf)
            }

            /// Suspends until a read would not block (data, the end of the
            /// stream, or an error is there), without reading: tokio's
            /// `readable`. With [`try_read`](Self::try_read) it lets a task
            /// wait for input without holding a buffer, and borrow one only
            /// once there is something to read, which is how a server with
            /// many idle connections keeps their buffers out of memory.
            ///
            /// The answer may be stale (the poller's word is taken): the
            /// next `try_read` can still return `WouldBlock`; wait again.
            ///
            /// # Errors
            ///
            /// `TimedOut` after the read timeout, or the socket's error.
            pub fn readable(&self) -> std::io::Result<()> {
                self.inner.readable()
            }

            /// Reads what is there into `buf` without waiting: `WouldBlock`
            /// if nothing is, `Ok(0)` at the end of the stream. See
            /// [`readable`](Self::readable).
            ///
            /// # Errors
            ///
            /// `WouldBlock`, or the socket's error.
            pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.inner.try_read(buf)
            }

            /// Writes some of `buf`, suspending while the socket buffer is
            /// full.
            ///
            /// # Errors
            ///
            /// `TimedOut` after the write timeout, or the socket's error.
            pub fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
                self.inner.write(buf)
            }

            /// Vectored write.
            ///
            /// # Errors
            ///
            /// As `write`.
            pub fn write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.inner.write_vectored(bufs)
            }

            /// Vectored read.
            ///
            /// # Errors
            ///
            /// As `read`.
            pub fn read_vectored(
                &self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.inner.read_vectored(bufs)
            }

            /// Sets the read timeout; `None` means reads wait forever.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for a zero duration (as std).
            pub fn set_read_timeout(&self, d: Option<std::time::Duration>) -> std::io::Result<()> {
                self.inner.read_timeout.set(d)
            }

            /// Sets the write timeout; `None` means writes wait forever.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for a zero duration (as std).
            pub fn set_write_timeout(&self, d: Option<std::time::Duration>) -> std::io::Result<()> {
                self.inner.write_timeout.set(d)
            }

            /// The read timeout.
            ///
            /// # Errors
            ///
            /// Never; `io::Result` for parity with std.
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.inner.read_timeout.get())
            }

            /// The write timeout.
            ///
            /// # Errors
            ///
            /// Never; `io::Result` for parity with std.
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.inner.write_timeout.get())
            }

            /// Shuts down the read, write or both halves.
            ///
            /// # Errors
            ///
            /// The socket's error (for example `NotConnected`).
            pub fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                self.inner.sock.shutdown(how)
            }

            /// Takes the socket's pending error (`SO_ERROR`).
            ///
            /// # Errors
            ///
            /// The `getsockopt` error.
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.inner.sock.take_error()
            }

            /// Another handle to the same connection, for a second task:
            /// one reads while the other writes. The socket closes when the
            /// last handle drops.
            ///
            /// # Errors
            ///
            /// Never (the handles share one descriptor); `io::Result` for
            /// parity with std.
            pub fn try_clone(&self) -> std::io::Result<$t> {
                Ok(self.clone())
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.inner.sock.as_raw_fd()
            }
        }

        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                $t::read(self, buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                $t::read_vectored(self, bufs)
            }
        }

        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                $t::read(self, buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                $t::read_vectored(self, bufs)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                $t::write(self, buf)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                $t::write_vectored(self, bufs)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                $t::write(self, buf)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                $t::write_vectored(self, bufs)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}
pub(super) use stream_common;

stream_common!(TcpStream);

impl TcpStream {
    /// Wraps a connected std stream, making it non-blocking.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made non-blocking.
    pub fn from_std(sock: std::net::TcpStream) -> io::Result<TcpStream> {
        sock.set_nonblocking(true)?;
        Ok(TcpStream {
            inner: Arc::new(Conn::new(sock)),
        })
    }

    /// Opens a connection, trying each address in turn.
    ///
    /// # Errors
    ///
    /// The last connection error, or `InvalidInput` if `addr` resolves to nothing.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_addr(a, None))
    }

    /// Opens a connection to `addr`, failing with `TimedOut` after `timeout`.
    ///
    /// # Errors
    ///
    /// `TimedOut`, or the connection error.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        TcpStream::connect_addr(*addr, Some(Instant::now() + timeout))
    }

    fn connect_addr(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_nonblocking(true)?;
        let in_progress = match sock.connect(&SockAddr::from(addr)) {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => true,
            Err(e) => return Err(e),
        };
        let stream = TcpStream::from_std(sock.into())?;
        if in_progress {
            let inner = &stream.inner;
            inner
                .reg
                .io(Direction::Write, deadline.into(), || {
                    if let Some(e) = inner.sock.take_error()? {
                        return Err(e);
                    }
                    match inner.sock.peer_addr() {
                        Ok(_) => Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                            Err(io::ErrorKind::WouldBlock.into())
                        }
                        Err(e) => Err(e),
                    }
                })
                .map_err(|e| {
                    if e.kind() == io::ErrorKind::TimedOut {
                        io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("connect to {addr} timed out"),
                        )
                    } else {
                        e
                    }
                })?;
        }
        Ok(stream)
    }

    /// Reads without removing the data from the socket's queue.
    ///
    /// # Errors
    ///
    /// As [`read`](TcpStream::read).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let inner = &*self.inner;
        inner
            .reg
            .io(Direction::Read, inner.read_timeout.limit(), || {
                inner.sock.peek(buf)
            })
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.sock.set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.sock.nodelay()
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// `NotConnected` once the connection is gone.
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

/// Tries `f` on each address `addr` resolves to; returns the first success
/// or the last error.
pub(super) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match f(a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}
