//! The seam between the runtime-agnostic chat core and a runtime: each
//! client's bounded outbound queue.
//!
//! The core formats a line once into a shared [`Line`] and pushes clones of
//! the pointer into every recipient's [`Outbox`], so a room fan-out costs one
//! allocation, not one per member. A runtime implements `Outbox` over its own
//! bounded channel, drained by a writer task that owns the socket's write
//! half. `try_push` must never block or wait: the core calls it while
//! holding a room's lock.

use std::fmt;
use std::io::IoSlice;
use std::sync::Arc;

/// One formatted protocol line, CRLF included, shared between recipients.
pub type Line = Arc<[u8]>;

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue is full: the client reads too slowly. The core then calls
    /// [`Outbox::close`] with `ERROR :SendQ exceeded`.
    Full,
    /// The client is already closed or gone; the line is dropped.
    Closed,
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full => "client send queue is full",
            PushError::Closed => "client is closed",
        })
    }
}

impl std::error::Error for PushError {}

/// A client's outbound queue, as the runtime provides it.
pub trait Outbox: Clone + Send + Sync + 'static {
    /// Queues `line` for the client without blocking.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] when the bounded queue is full,
    /// [`PushError::Closed`] after [`Outbox::close`] or once the client is
    /// gone.
    fn try_push(&self, line: Line) -> Result<(), PushError>;

    /// Aborts the client: discard what is queued, write `farewell` if the
    /// socket takes it within a short grace time, close the connection, and
    /// make the client's reader stop (it then removes the session from the
    /// hub). Idempotent; later pushes fail with [`PushError::Closed`].
    fn close(&self, farewell: Line);
}

/// Lines a writer has taken off a client's queue and not yet fully written:
/// what it hands to one vectored write, and the bookkeeping after a write
/// that took only part of it. I/O-free; both twins' writers use it.
///
/// ```
/// use pinstack_examples::chat::outbox::{Line, WriteBatch};
/// use std::io::IoSlice;
///
/// let mut batch = WriteBatch::new();
/// batch.push(Line::from(&b"PING :a\r\n"[..]));
/// batch.push(Line::from(&b"PING :b\r\n"[..]));
/// let mut iov = [IoSlice::new(&[]); WriteBatch::MAX];
/// assert_eq!(batch.io_slices(&mut iov).len(), 2);
/// batch.advance(12); // the socket took the first line and 3 bytes more
/// assert_eq!(batch.len(), 1);
/// assert_eq!(batch.unwritten_tail(), b"G :b\r\n");
/// ```
#[derive(Debug, Default)]
pub struct WriteBatch {
    lines: Vec<Line>,
    /// Bytes of `lines[0]` already written.
    offset: usize,
}

impl WriteBatch {
    /// Most lines handed to one vectored write.
    pub const MAX: usize = 16;

    /// An empty batch (it allocates on its first line).
    pub fn new() -> Self {
        Self::default()
    }

    /// Lines not yet fully written.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether everything taken has been written.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Whether the batch holds [`WriteBatch::MAX`] lines.
    pub fn is_full(&self) -> bool {
        self.lines.len() >= Self::MAX
    }

    /// Adds a line at the end (the caller stops at [`WriteBatch::is_full`]).
    pub fn push(&mut self, line: Line) {
        debug_assert!(!self.is_full(), "WriteBatch::push past MAX");
        self.lines.push(line);
    }

    /// Tops the batch up to [`WriteBatch::MAX`] lines from `next` (a
    /// non-blocking receive) until it returns `None`.
    pub fn fill(&mut self, mut next: impl FnMut() -> Option<Line>) {
        while !self.is_full() {
            match next() {
                Some(l) => self.lines.push(l),
                None => break,
            }
        }
    }

    /// The unwritten bytes as slices for one vectored write, in `iov`.
    pub fn io_slices<'a>(&'a self, iov: &'a mut [IoSlice<'a>; Self::MAX]) -> &'a [IoSlice<'a>] {
        for (k, (slot, l)) in iov.iter_mut().zip(&self.lines).enumerate() {
            *slot = IoSlice::new(if k == 0 { &l[self.offset..] } else { l });
        }
        &iov[..self.lines.len()]
    }

    /// The socket took `n` bytes: drops the lines written whole and
    /// remembers how much of the next one went out.
    pub fn advance(&mut self, mut n: usize) {
        let mut done = 0;
        for l in &self.lines {
            let left = l.len() - if done == 0 { self.offset } else { 0 };
            if n < left {
                break;
            }
            n -= left;
            done += 1;
            self.offset = 0;
        }
        self.lines.drain(..done);
        self.offset += n;
        debug_assert!(self
            .lines
            .first()
            .map_or(self.offset == 0, |l| self.offset < l.len()));
    }

    /// The unwritten rest of the first line (empty when the batch is):
    /// what goes out before a farewell, so the farewell starts a line.
    pub fn unwritten_tail(&self) -> &[u8] {
        self.lines.first().map_or(&[], |l| &l[self.offset..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Line {
        Line::from(s.as_bytes())
    }

    fn written(b: &WriteBatch) -> Vec<u8> {
        let mut iov = [IoSlice::new(&[]); WriteBatch::MAX];
        b.io_slices(&mut iov)
            .iter()
            .flat_map(|s| s.to_vec())
            .collect()
    }

    #[test]
    fn partial_writes_keep_every_byte_in_order() {
        let mut b = WriteBatch::new();
        b.fill({
            let mut src = ["ab\r\n", "cde\r\n", "f\r\n"].into_iter().map(line);
            move || src.next()
        });
        assert_eq!(b.len(), 3);
        let all = written(&b);
        assert_eq!(all, b"ab\r\ncde\r\nf\r\n");
        let mut out = Vec::new();
        for step in [1, 0, 4, 2, 100] {
            let chunk = written(&b);
            let n = step.min(chunk.len());
            out.extend_from_slice(&chunk[..n]);
            b.advance(n);
        }
        assert_eq!(out, all);
        assert!(b.is_empty());
        assert_eq!(b.unwritten_tail(), b"");
    }

    #[test]
    fn fill_stops_at_max_and_tail_is_the_line_in_flight() {
        let mut b = WriteBatch::new();
        let mut k = 0;
        b.fill(|| {
            k += 1;
            Some(line("xy\r\n"))
        });
        assert_eq!(b.len(), WriteBatch::MAX);
        assert_eq!(k, WriteBatch::MAX);
        assert!(b.is_full());
        b.advance(5);
        assert_eq!(b.len(), WriteBatch::MAX - 1);
        assert_eq!(b.unwritten_tail(), b"y\r\n");
        b.advance(3);
        assert_eq!(b.unwritten_tail(), b"xy\r\n");
    }
}
