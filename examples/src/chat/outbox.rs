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
