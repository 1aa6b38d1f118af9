//! `Stdio` (what a child's descriptor 0, 1 or 2 is) and the parent's ends of
//! piped ones: `ChildStdin`, `ChildStdout`, `ChildStderr`.
//!
//! A pipe is two open file descriptions. The child's end stays *blocking*
//! (programs expect blocking stdio); only the parent's end is made
//! `O_NONBLOCK`, and it carries a [`Registration`] so a read or write that
//! would block suspends the calling task until the poller reports the pipe
//! ready (or blocks a plain thread in `poll(2)`).
//!
//! ```text
//!   parent                                   child
//!   ChildStdin  { reg, file: write end } --> fd 0 (read end, blocking)
//!   ChildStdout { reg, file: read end  } <-- fd 1 (write end, blocking)
//!   ChildStderr { reg, file: read end  } <-- fd 2 (write end, blocking)
//! ```
//!
//! Field order matters: `reg` is declared before `file`, so the descriptor
//! is deregistered from its poller while still open, and only then closed
//! (a closed number may be reused at once by another thread's socket).

use super::sys;
use crate::net::source::{Direction, Limit, Registration};
use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// What a child's standard input, output or error is connected to.
///
/// [`inherit`](Stdio::inherit) (the parent's own descriptor),
/// [`piped`](Stdio::piped) (a new pipe whose parent end appears in
/// [`Child::stdin`](super::Child::stdin) and friends),
/// [`null`](Stdio::null) (`/dev/null`), or any descriptor via `From`: a
/// [`File`], an [`OwnedFd`], or another child's [`ChildStdout`] to build a
/// shell-style pipeline.
pub struct Stdio(pub(crate) Repr);

pub(crate) enum Repr {
    Inherit,
    Null,
    Piped,
    Fd(OwnedFd),
    /// A conversion that failed; reported by `spawn`.
    Failed(io::ErrorKind, String),
}

impl Stdio {
    /// The child uses the parent's descriptor.
    pub fn inherit() -> Stdio {
        Stdio(Repr::Inherit)
    }

    /// A new pipe between parent and child.
    pub fn piped() -> Stdio {
        Stdio(Repr::Piped)
    }

    /// `/dev/null`: reads see end of file, writes are discarded.
    pub fn null() -> Stdio {
        Stdio(Repr::Null)
    }
}

impl fmt::Debug for Stdio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Inherit => f.write_str("Stdio::inherit"),
            Repr::Null => f.write_str("Stdio::null"),
            Repr::Piped => f.write_str("Stdio::piped"),
            Repr::Fd(fd) => f.debug_tuple("Stdio::fd").field(&fd.as_raw_fd()).finish(),
            Repr::Failed(_, msg) => f.debug_tuple("Stdio::failed").field(msg).finish(),
        }
    }
}

impl From<OwnedFd> for Stdio {
    /// The child gets a copy of `fd` (the descriptor stays open in the
    /// `Command`, so it can spawn several children with it).
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(Repr::Fd(fd))
    }
}

impl From<File> for Stdio {
    fn from(file: File) -> Stdio {
        Stdio(Repr::Fd(file.into()))
    }
}

macro_rules! into_stdio {
    ($t:ty) => {
        impl From<$t> for Stdio {
            /// Hands this pipe end to another child (for example
            /// `a | b`: `b`'s stdin from `a`'s stdout). The end is made
            /// blocking again, as programs expect of their stdio.
            fn from(p: $t) -> Stdio {
                match p.pipe.into_blocking_fd() {
                    Ok(fd) => Stdio(Repr::Fd(fd)),
                    Err(e) => Stdio(Repr::Failed(
                        e.kind(),
                        format!("making a pipe end blocking for the next child: {e}"),
                    )),
                }
            }
        }
    };
}

into_stdio!(ChildStdin);
into_stdio!(ChildStdout);
into_stdio!(ChildStderr);

/// The parent's end of one pipe: non-blocking, registered lazily.
pub(crate) struct Pipe {
    // Declared first: dropped (deregistered) before `file` closes.
    reg: Registration,
    file: File,
}

impl Pipe {
    /// Makes `fd` non-blocking. Done before the child is spawned, so that
    /// once a child exists nothing can fail any more.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Pipe> {
        sys::set_nonblocking(fd.as_fd(), true)?;
        let reg = Registration::new(fd.as_raw_fd());
        Ok(Pipe {
            reg,
            file: File::from(fd),
        })
    }

    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_within(buf, Limit::Never)
    }

    fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.reg.io(Direction::Read, Limit::Never, || {
            (&self.file).read_vectored(bufs)
        })
    }

    /// [`read`](Pipe::read) that waits at most as long as `limit` allows
    /// (then `TimedOut`).
    pub(crate) fn read_within(&self, buf: &mut [u8], limit: Limit) -> io::Result<usize> {
        self.reg
            .io(Direction::Read, limit, || (&self.file).read(buf))
    }

    /// One non-blocking read attempt: `WouldBlock` if the pipe is empty.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.reg
            .io(Direction::Write, Limit::Never, || (&self.file).write(buf))
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.reg.io(Direction::Write, Limit::Never, || {
            (&self.file).write_vectored(bufs)
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Deregisters, then hands the descriptor out in blocking mode.
    fn into_blocking_fd(self) -> io::Result<OwnedFd> {
        let Pipe { reg, file } = self;
        drop(reg);
        let fd = OwnedFd::from(file);
        sys::set_nonblocking(fd.as_fd(), false)?;
        Ok(fd)
    }
}

macro_rules! pipe_common {
    ($t:ident, $what:literal) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("fd", &self.pipe.fd().as_raw_fd())
                    .finish()
            }
        }

        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.pipe.fd()
            }
        }

        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.pipe.fd().as_raw_fd()
            }
        }

        impl $t {
            pub(crate) fn new(fd: OwnedFd) -> io::Result<$t> {
                Pipe::new(fd).map(|pipe| $t { pipe }).map_err(|e| {
                    io::Error::new(e.kind(), format!("setting up the {} pipe: {e}", $what))
                })
            }
        }
    };
}

macro_rules! pipe_read {
    ($t:ident) => {
        impl Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.pipe.read(buf)
            }
            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                self.pipe.read_vectored(bufs)
            }
        }

        impl Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.pipe.read(buf)
            }
            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                self.pipe.read_vectored(bufs)
            }
        }
    };
}

/// The parent's end of a child's piped standard input.
///
/// Writes suspend the calling task while the pipe is full (64 KiB by
/// default on Linux); on a plain thread they block it. Drop it (or call
/// [`Child::wait`](super::Child::wait), which drops it) to give the child
/// end of file. Writing after the child closed its end fails with
/// `BrokenPipe`.
pub struct ChildStdin {
    pipe: Pipe,
}

/// The parent's end of a child's piped standard output. Reads suspend the
/// calling task until data or end of file arrives; `Ok(0)` means the child
/// (and every process it passed the descriptor to) closed it.
pub struct ChildStdout {
    pipe: Pipe,
}

/// The parent's end of a child's piped standard error; as [`ChildStdout`].
pub struct ChildStderr {
    pipe: Pipe,
}

impl ChildStdout {
    pub(crate) fn pipe(&self) -> &Pipe {
        &self.pipe
    }
}

impl ChildStderr {
    pub(crate) fn pipe(&self) -> &Pipe {
        &self.pipe
    }
}

pipe_common!(ChildStdin, "stdin");
pipe_common!(ChildStdout, "stdout");
pipe_common!(ChildStderr, "stderr");
pipe_read!(ChildStdout);
pipe_read!(ChildStderr);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pipe.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.pipe.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pipe.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.pipe.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
