//! TCP, UDP and Unix domain sockets whose blocking calls suspend only the
//! calling task.
//!
//! Handlers read like blocking code (`stream.read(&mut buf)?`) and scale like
//! epoll: each call tries the syscall on a non-blocking socket, and on
//! `WouldBlock` suspends the calling coroutine until the socket's poller
//! reports readiness (see `source.rs`). From a plain thread the same types
//! block the thread in `poll(2)`.
//!
//! ```
//! use pinstack::net::{TcpListener, TcpStream};
//! use std::io::{Read, Write};
//!
//! let rt = pinstack::Runtime::new()?;
//! rt.block_on(|| -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = pinstack::spawn(move || -> std::io::Result<()> {
//!         let (mut s, _) = listener.accept()?;
//!         let mut buf = [0u8; 5];
//!         s.read_exact(&mut buf)?;
//!         s.write_all(&buf)
//!     });
//!     let mut c = TcpStream::connect(addr)?;
//!     c.write_all(b"hello")?;
//!     let mut back = [0u8; 5];
//!     c.read_exact(&mut back)?;
//!     assert_eq!(&back, b"hello");
//!     server.join().unwrap()
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod listener;
pub(crate) mod source;
mod stream;
mod udp;
mod unix;

pub use listener::{Incoming, TcpListener};
pub use stream::TcpStream;
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

/// Accept back-off statistics (see [`TcpListener::accept`]).
pub use listener::AcceptStats;
