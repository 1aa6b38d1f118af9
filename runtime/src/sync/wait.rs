//! How every waiter in [`crate::sync`] takes its internal lock, computes a
//! deadline and parks.
//!
//! The shape of every wait in this module tree is the one `crate::park`
//! demands:
//!
//! ```text
//!   lock ─► condition true? ──yes──► update state, collect wake-ups, unlock, wake, return
//!             │ no
//!             ▼
//!           deadline passed? ──yes──► deregister, unlock, return timeout
//!             │ no
//!             ▼
//!           register park::current() (once), unlock, park / park_until, relock, loop
//! ```
//!
//! No internal lock is ever held across a park, no user code ever runs under
//! one (values are dropped after unlocking), and wake-ups happen after the
//! lock is released so the woken task does not immediately block on it.

use crate::loom::sync::{Mutex, MutexGuard};
use crate::park::{self, Reason};
use std::time::{Duration, Instant};

/// Locks an internal mutex.
///
/// Internal mutexes never run user code while held, and every critical
/// section leaves the state consistent at each point where it could panic
/// (only allocation can), so a poisoned lock still guards valid state and
/// is used as is.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The deadline `timeout` from now; `None` (wait forever) when it is too
/// far away to represent.
#[inline]
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Whether `deadline` has passed. `None` never passes.
#[inline]
pub(crate) fn expired(deadline: Option<Instant>) -> bool {
    match deadline {
        None => false,
        Some(d) => Instant::now() >= d,
    }
}

/// Parks the current coroutine or thread until unparked, or until
/// `deadline` if there is one. May return spuriously.
#[inline]
pub(crate) fn park_until(deadline: Option<Instant>) {
    match deadline {
        None => park::park(Reason::Sync),
        Some(d) => park::park_until(Reason::Sync, d),
    }
}
