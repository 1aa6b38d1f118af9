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
//! For a coroutine the token is the task's `NOTIFIED` bit and parking is a
//! suspension (`task/state.rs`); an unpark from another thread queues the
//! task on its home worker. Sync primitives (`crate::sync`), joins, sleeps
//! and I/O waits are written against this module only, so they work the
//! same from coroutines and from plain threads.

use crate::loom::thread::{self, Thread};
use crate::scheduler;
use crate::task::{Header, Suspend, TaskRef, Unpark};
use std::time::Instant;

/// Why a coroutine suspends; recorded in the runtime's metrics and traces.
///
/// The discriminants index the per-reason counters in `metrics.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // `Io` is used by the net module
pub(crate) enum Reason {
    /// Waiting for socket or pipe readiness.
    Io = 0,
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
#[derive(Clone)]
pub(crate) struct Unparker {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Thread(Thread),
    Task(TaskRef),
}

impl std::fmt::Debug for Unparker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Thread(t) => f.debug_tuple("Unparker::Thread").field(&t.id()).finish(),
            Inner::Task(t) => f.debug_tuple("Unparker::Task").field(t.header()).finish(),
        }
    }
}

impl Unparker {
    /// Makes the target's next (or current) `park` return. Consumes the
    /// unparker: a task that must be queued is queued with this reference,
    /// so waking costs no reference-count traffic (see [`unpark_by_ref`]).
    ///
    /// [`unpark_by_ref`]: Unparker::unpark_by_ref
    pub(crate) fn unpark(self) {
        match self.inner {
            Inner::Thread(t) => t.unpark(),
            Inner::Task(t) => {
                if t.header().state.unpark() == Unpark::Schedule {
                    crate::metrics::probe::on_wake(t.header());
                    scheduler::schedule_started(t);
                }
            }
        }
    }

    /// As [`unpark`](Unparker::unpark), for an unparker that is kept: the
    /// task reference is cloned only if the task must be queued.
    pub(crate) fn unpark_by_ref(&self) {
        match &self.inner {
            Inner::Thread(t) => t.unpark(),
            Inner::Task(t) => {
                if t.header().state.unpark() == Unpark::Schedule {
                    crate::metrics::probe::on_wake(t.header());
                    scheduler::schedule_started(t.clone());
                }
            }
        }
    }

    /// Whether both unparkers wake the same coroutine or thread.
    #[allow(dead_code)]
    pub(crate) fn same_target(&self, other: &Unparker) -> bool {
        match (&self.inner, &other.inner) {
            (Inner::Thread(a), Inner::Thread(b)) => a.id() == b.id(),
            (Inner::Task(a), Inner::Task(b)) => std::ptr::eq(a.header(), b.header()),
            _ => false,
        }
    }

    /// Whether this unparker wakes the task with header `h`.
    pub(crate) fn is_task(&self, h: &Header) -> bool {
        matches!(&self.inner, Inner::Task(t) if std::ptr::eq(t.header(), h))
    }
}

/// The unparker of the running coroutine, or of the current thread outside
/// any coroutine. A coroutine's unparker takes the task's spare reference
/// when it has one (`TaskRef::keep_as_spare`): in a steady park-and-wake
/// cycle no reference count changes.
pub(crate) fn current() -> Unparker {
    let inner = match scheduler::current_task() {
        Some(t) => Inner::Task(t),
        None => Inner::Thread(thread::current()),
    };
    Unparker { inner }
}

/// Suspends the running coroutine (or blocks the thread) until unparked.
/// May return spuriously.
pub(crate) fn park(reason: Reason) {
    match scheduler::token_or_yielder() {
        // The token was there: return without suspending.
        Some(None) => {}
        // SAFETY: the yielder belongs to the running coroutine of this thread
        // and lives on that coroutine's stack while it runs.
        Some(Some(y)) => unsafe {
            (*y).suspend(Suspend::Park(reason));
        },
        None => thread::park(),
    }
}

/// Like [`park`], but also returns once `deadline` has passed.
pub(crate) fn park_until(reason: Reason, deadline: Instant) {
    if Instant::now() >= deadline {
        return;
    }
    match scheduler::arm_timer(deadline) {
        Some(key) => {
            park(reason);
            scheduler::cancel_timer(key);
        }
        None => {
            let now = Instant::now();
            if deadline > now {
                thread::park_timeout(deadline - now);
            }
        }
    }
}
