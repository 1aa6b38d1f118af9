//! Where a session formats its replies: per-message scratch memory.
//!
//! The core formats every outgoing line into a buffer of at most
//! [`MAX_LINE`](super::proto::MAX_LINE) bytes, then copies it into the shared
//! [`Line`] the recipients' queues hold. The buffer lives only while one
//! message is handled, so the runtime chooses where it comes from:
//!
//! * [`Heap`]: a [`LineBuf`] on the caller's stack, as any Rust code would
//!   (the tokio twin).
//! * The pinstack server opens a per-request arena (`pinstack::arena`) for
//!   each message and implements `Scratch` over it: the buffers are bump
//!   allocations, reset in one step when the message is done, and the
//!   reader's coroutine stack stays small.

use super::outbox::Line;
use super::proto::LineBuf;

/// Scratch memory for the lines of one message.
pub trait Scratch {
    /// Formats one line as [`LineBuf::format`] does (cutting what does not
    /// fit) and returns it as a shared [`Line`].
    fn line(
        &self,
        prefix: Option<&str>,
        cmd: &str,
        middle: &[&str],
        trailing: Option<&str>,
    ) -> Line;
}

/// Formats on the stack; the line itself goes to the global allocator.
///
/// ```
/// use pinstack_examples::chat::scratch::{Heap, Scratch};
/// let l = Heap.line(Some("srv"), "PONG", &["srv"], Some("x"));
/// assert_eq!(&l[..], b":srv PONG srv :x\r\n");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Heap;

impl Scratch for Heap {
    fn line(
        &self,
        prefix: Option<&str>,
        cmd: &str,
        middle: &[&str],
        trailing: Option<&str>,
    ) -> Line {
        let mut buf = LineBuf::new();
        Line::from(buf.format(prefix, cmd, middle, trailing))
    }
}
