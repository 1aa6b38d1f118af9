//! Parking: the one primitive every suspending operation is built on.
//!
//! The contract is `std::thread::park`'s, extended to coroutines:
//!
//! * [`current()`] returns an [`Unparker`] for whoever is running: the current
//!   coroutine when called inside a task, else the current OS thread.
//! * [`park`] suspends the current coroutine (or blocks the current thread)
//!   until its unparker is used. Each unparker holds at most one *token*: an
//!   `unpark` that arrives before `park` makes the next `park` return at
//!   once, and several unparks before one park collapse into one.
//! * `park` may return spuriously. Every caller therefore parks in a loop:
//!   register the unparker where the waker will find it, re-check the
//!   condition, park, repeat.
//! * [`park_until`] also returns once `deadline` has passed.
//!
//! Sync primitives (`crate::sync`), joins, sleeps and I/O waits are written
//! against this module only, so they work the same from coroutines and from
//! plain threads, and the loom models exercise the same code.

use crate::loom::thread::{self, Thread};
use std::time::Instant;

/// Why a coroutine suspends; recorded in the runtime's metrics and traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // variants are used as the subsystems land
pub(crate) enum Reason {
    /// Waiting for socket or pipe readiness.
    Io,
    /// Sleeping or waiting for a deadline.
    Timer,
    /// Waiting on a channel, mutex, notify or wait group.
    Sync,
    /// Waiting for another task to finish.
    Join,
    /// Waiting for a future passed to `block_on`.
    Future,
}

/// A handle that wakes one parked coroutine or thread. Cheap to clone, `Send`
/// and `Sync`.
#[derive(Clone, Debug)]
pub(crate) struct Unparker {
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    Thread(Thread),
}

impl Unparker {
    /// Makes the target's next (or current) `park` return.
    pub(crate) fn unpark(&self) {
        match &self.inner {
            Inner::Thread(t) => t.unpark(),
        }
    }

    /// Whether both unparkers wake the same coroutine or thread.
    #[allow(dead_code)]
    pub(crate) fn same_target(&self, other: &Unparker) -> bool {
        match (&self.inner, &other.inner) {
            (Inner::Thread(a), Inner::Thread(b)) => a.id() == b.id(),
        }
    }
}

/// The unparker of the running coroutine, or of the current thread outside
/// any coroutine.
pub(crate) fn current() -> Unparker {
    Unparker {
        inner: Inner::Thread(thread::current()),
    }
}

/// Suspends the running coroutine (or blocks the thread) until unparked.
/// May return spuriously.
pub(crate) fn park(_reason: Reason) {
    thread::park();
}

/// Like [`park`], but also returns once `deadline` has passed.
pub(crate) fn park_until(_reason: Reason, deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        thread::park_timeout(deadline - now);
    }
}
