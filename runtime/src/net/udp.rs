//! `UdpSocket`.

use super::source::{Direction, Registration, Timeout};
use super::stream::each_addr;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// A UDP socket whose sends and receives suspend the calling task.
///
/// # Examples
///
/// ```
/// use pinstack::net::UdpSocket;
/// let rt = pinstack::Runtime::new()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let a = UdpSocket::bind("127.0.0.1:0")?;
///     let b = UdpSocket::bind("127.0.0.1:0")?;
///     a.send_to(b"ping", b.local_addr()?)?;
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf)?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    // `reg` first: deregister before the descriptor is closed.
    reg: Registration,
    sock: std::net::UdpSocket,
    read_timeout: Timeout,
    write_timeout: Timeout,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("fd", &self.sock.as_raw_fd())
            .field("local", &self.sock.local_addr().ok())
            .finish()
    }
}

impl UdpSocket {
    /// Binds to the first address that works.
    ///
    /// # Errors
    ///
    /// The last bind error.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        each_addr(addr, |a| UdpSocket::from_std(std::net::UdpSocket::bind(a)?))
    }

    /// Wraps a bound std socket, making it non-blocking.
    ///
    /// # Errors
    ///
    /// If the socket cannot be made non-blocking.
    pub fn from_std(sock: std::net::UdpSocket) -> io::Result<UdpSocket> {
        sock.set_nonblocking(true)?;
        let reg = Registration::new(sock.as_raw_fd());
        Ok(UdpSocket {
            sock,
            reg,
            read_timeout: Timeout::default(),
            write_timeout: Timeout::default(),
        })
    }

    /// Sends a datagram to `addr`.
    ///
    /// # Errors
    ///
    /// `TimedOut` after the write timeout, or the socket's error.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let addr = each_addr(addr, Ok)?;
        self.reg
            .io(Direction::Write, self.write_timeout.limit(), || {
                self.sock.send_to(buf, addr)
            })
    }

    /// Receives a datagram and its sender's address.
    ///
    /// # Errors
    ///
    /// `TimedOut` after the read timeout, or the socket's error.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.reg.io(Direction::Read, self.read_timeout.limit(), || {
            self.sock.recv_from(buf)
        })
    }

    /// Sets the default peer for [`send`](UdpSocket::send) and [`recv`](UdpSocket::recv).
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.sock.connect(addr)
    }

    /// Sends to the connected peer.
    ///
    /// # Errors
    ///
    /// As [`send_to`](UdpSocket::send_to).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.reg
            .io(Direction::Write, self.write_timeout.limit(), || {
                self.sock.send(buf)
            })
    }

    /// Receives from the connected peer.
    ///
    /// # Errors
    ///
    /// As [`recv_from`](UdpSocket::recv_from).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.reg.io(Direction::Read, self.read_timeout.limit(), || {
            self.sock.recv(buf)
        })
    }

    /// Sets the receive timeout (`None`: wait forever).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(d)
    }

    /// Sets the send timeout (`None`: wait forever).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(d)
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}
