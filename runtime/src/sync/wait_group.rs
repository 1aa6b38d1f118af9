//! [`WaitGroup`]: wait for a counter of outstanding jobs to reach zero, as
//! Go's `sync.WaitGroup`.
//!
//! # State
//!
//! ```text
//!   Arc<Inner> ─┬─ count: AtomicUsize      add/done without a lock
//!               └─ waiters: Mutex<WaitList>
//! ```
//!
//! `done` decrements with a CAS (so the counter never wraps below zero);
//! the call that takes it to zero locks `waiters` and wakes every queued
//! waiter. A waiter loads `count` with `waiters` locked before queueing, so
//! either it sees zero, or it is queued before the zeroing `done` takes the
//! lock and is woken by it. The `AcqRel` decrements form one release
//! sequence, so a waiter that sees zero also sees everything the workers
//! did before their `done`.

use super::wait::{self, deadline_after, expired, lock};
use super::wait_list::{Status, WaitKey, WaitList, WakeSet};
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::park;
use std::fmt;
use std::time::{Duration, Instant};

/// Waits for a set of jobs to finish: [`add`](WaitGroup::add) before
/// starting jobs, [`done`](WaitGroup::done) as each finishes,
/// [`wait`](WaitGroup::wait) parks until the count is back to zero.
///
/// Cloning gives another handle to the same counter (it does not add to
/// it). A group can be reused once the count is back to zero, as long as
/// the next `add` happens after the previous waits returned (Go's rule).
///
/// # Examples
///
/// ```
/// use pinstack::sync::{Mutex, WaitGroup};
/// use std::{sync::Arc, thread};
///
/// let wg = WaitGroup::new();
/// let results = Arc::new(Mutex::new(Vec::new()));
/// for i in 0..4 {
///     wg.add(1);
///     let (wg, results) = (wg.clone(), results.clone());
///     thread::spawn(move || {
///         results.lock().push(i * i);
///         wg.done();
///     });
/// }
/// wg.wait();
/// let mut r = results.lock().clone();
/// r.sort();
/// assert_eq!(r, [0, 1, 4, 9]);
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

struct Inner {
    count: AtomicUsize,
    waiters: Mutex<WaitList>,
}

impl WaitGroup {
    /// A group with a count of zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = pinstack::sync::WaitGroup::new();
    /// wg.wait(); // zero already: returns at once
    /// ```
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(Inner {
                count: AtomicUsize::new(0),
                waiters: Mutex::new(WaitList::new()),
            }),
        }
    }

    /// Adds `n` outstanding jobs.
    ///
    /// # Panics
    ///
    /// If the count would overflow `usize` (more jobs than fit in memory:
    /// a bug in the caller's bookkeeping).
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = pinstack::sync::WaitGroup::new();
    /// wg.add(2);
    /// assert_eq!(wg.count(), 2);
    /// ```
    pub fn add(&self, n: usize) {
        let mut c = self.inner.count.load(Ordering::Relaxed);
        loop {
            let Some(next) = c.checked_add(n) else {
                panic!("WaitGroup::add({n}) overflows the counter (currently {c})");
            };
            match self.inner.count.compare_exchange_weak(
                c,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => c = now,
            }
        }
    }

    /// Marks one job finished; the call that brings the count to zero wakes
    /// every waiter.
    ///
    /// # Panics
    ///
    /// If the count is already zero: `done` was called more times than
    /// `add` counted, a bug in the caller (Go panics the same way). The
    /// count is left at zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = pinstack::sync::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// assert_eq!(wg.count(), 0);
    /// ```
    ///
    /// ```should_panic
    /// pinstack::sync::WaitGroup::new().done(); // never added: panics
    /// ```
    pub fn done(&self) {
        let mut c = self.inner.count.load(Ordering::Relaxed);
        loop {
            if c == 0 {
                panic!(
                    "WaitGroup::done called more times than add counted \
                     (the count is already zero): every done needs a matching add"
                );
            }
            match self.inner.count.compare_exchange_weak(
                c,
                c - 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        if c == 1 {
            let mut wakes = WakeSet::new();
            lock(&self.inner.waiters).notify_all(0, &mut wakes);
            wakes.wake_all();
        }
    }

    /// The current count (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = pinstack::sync::WaitGroup::new();
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// Parks until the count is zero.
    ///
    /// # Examples
    ///
    /// See [`WaitGroup`].
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Parks until the count is zero or `timeout` has passed; returns
    /// whether the count reached zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let wg = pinstack::sync::WaitGroup::new();
    /// wg.add(1);
    /// assert!(!wg.wait_timeout(Duration::from_millis(5)));
    /// wg.done();
    /// assert!(wg.wait_timeout(Duration::from_millis(5)));
    /// ```
    #[must_use = "false means the jobs had not all finished"]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(deadline_after(timeout))
    }

    /// Like [`wait_timeout`](Self::wait_timeout), with an absolute deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// let wg = pinstack::sync::WaitGroup::new();
    /// assert!(wg.wait_deadline(Instant::now()));
    /// ```
    #[must_use = "false means the jobs had not all finished"]
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.inner.count.load(Ordering::Acquire) == 0 {
            return true;
        }
        let mut q = lock(&self.inner.waiters);
        if self.inner.count.load(Ordering::Acquire) == 0 {
            return true;
        }
        if expired(deadline) {
            return false;
        }
        let key = q.push_back(park::current(), 0);
        let reg = Registration { wg: self, key };
        drop(q);
        let reached = loop {
            wait::park_until(deadline);
            let mut q = lock(&self.inner.waiters);
            match q.status(key) {
                Status::Notified(_) => {
                    q.remove(key);
                    break true;
                }
                Status::Waiting if expired(deadline) => {
                    q.remove(key);
                    break false;
                }
                Status::Waiting => {}
            }
        };
        std::mem::forget(reg);
        reached
    }
}

#[cfg(all(test, not(pinstack_loom)))]
impl WaitGroup {
    /// Parked waiters (test probe).
    pub(crate) fn queued(&self) -> usize {
        lock(&self.inner.waiters).len()
    }
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

/// Removes a waiter's slot if its wait is unwound.
struct Registration<'a> {
    wg: &'a WaitGroup,
    key: WaitKey,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(&self.wg.inner.waiters).remove(self.key);
    }
}
