//! [`Condvar`]: wait for a condition guarded by a [`Mutex`], parking the
//! coroutine rather than the thread.
//!
//! # Protocol
//!
//! ```text
//!   wait(guard):   lock `waiters`, queue self, unlock `waiters`
//!                  release the Mutex            ◄── after queueing: a notifier that
//!                  park until notified              changed the condition under the
//!                  relock the Mutex                 Mutex cannot miss us
//!   notify_one:    lock `waiters`, notify the front waiter, unlock, wake it
//!   notify_all:    same for every queued waiter
//! ```
//!
//! A waiter notified by `notify_one` whose wait is unwound before it runs
//! passes the notification to the next waiter, so it is never lost. A
//! waiter whose timeout races a notification reports "not timed out": the
//! notification is consumed, not dropped.

use super::mutex::{Mutex, MutexGuard};
use super::wait::{self, deadline_after, expired, lock};
use super::wait_list::{Status, WaitKey, WaitList, WakeSet};
use crate::loom::sync::Mutex as InnerMutex;
use crate::park;
use std::fmt;
use std::time::{Duration, Instant};

/// Notification tags.
const ONE: u32 = 0;
const ALL: u32 = 1;

/// A condition variable for [`Mutex`]: `wait` releases the lock and parks
/// the current coroutine (or thread) until notified, then relocks.
///
/// `wait` returns only after a notification (or, for the timed forms, the
/// timeout), never spuriously; but another task may have changed the
/// condition again before the lock is retaken, so check it in a loop, or use
/// [`wait_while`](Condvar::wait_while).
///
/// # Examples
///
/// ```
/// use pinstack::sync::{Condvar, Mutex};
/// use std::{sync::Arc, thread};
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let pair2 = pair.clone();
/// thread::spawn(move || {
///     let (ready, cv) = &*pair2;
///     *ready.lock() = true;
///     cv.notify_one();
/// });
/// let (ready, cv) = &*pair;
/// let guard = cv.wait_while(ready.lock(), |ready| !*ready);
/// assert!(*guard);
/// ```
pub struct Condvar {
    waiters: InnerMutex<WaitList>,
}

/// Whether a timed [`Condvar`] wait returned because its timeout passed.
///
/// # Examples
///
/// ```
/// use pinstack::sync::{Condvar, Mutex};
/// use std::time::Duration;
///
/// let (m, cv) = (Mutex::new(()), Condvar::new());
/// let (_guard, res) = cv.wait_timeout(m.lock(), Duration::from_millis(5));
/// assert!(res.timed_out());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because the timeout passed (no notification
    /// was consumed).
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// Creates a condition variable with nobody waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let cv = pinstack::sync::Condvar::new();
    /// cv.notify_all(); // nobody waits: nothing happens, nothing is stored
    /// ```
    pub fn new() -> Condvar {
        Condvar {
            waiters: InnerMutex::new(WaitList::new()),
        }
    }

    /// Releases `guard`'s lock, parks until notified, relocks and returns
    /// the new guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::{Condvar, Mutex};
    /// use std::{sync::Arc, thread};
    ///
    /// let state = Arc::new((Mutex::new(0), Condvar::new()));
    /// let s2 = state.clone();
    /// let t = thread::spawn(move || {
    ///     let (m, cv) = &*s2;
    ///     let mut g = m.lock();
    ///     while *g == 0 {
    ///         g = cv.wait(g);
    ///     }
    ///     *g
    /// });
    /// let (m, cv) = &*state;
    /// *m.lock() = 7;
    /// cv.notify_all();
    /// assert_eq!(t.join().unwrap(), 7);
    /// ```
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_until_inner(guard, None).0
    }

    /// Waits while `condition` holds, relocking between checks.
    ///
    /// # Examples
    ///
    /// See [`Condvar`].
    pub fn wait_while<'a, T, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Like [`wait`](Self::wait), but gives up after `timeout`.
    ///
    /// # Examples
    ///
    /// See [`WaitTimeoutResult`].
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        self.wait_until_inner(guard, deadline_after(timeout))
    }

    /// Like [`wait_timeout`](Self::wait_timeout), with an absolute deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::{Condvar, Mutex};
    /// use std::time::Instant;
    ///
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_g, res) = cv.wait_until(m.lock(), Instant::now());
    /// assert!(res.timed_out());
    /// ```
    pub fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        self.wait_until_inner(guard, Some(deadline))
    }

    /// Like [`wait_while`](Self::wait_while), but gives up after `timeout`;
    /// the result says whether the condition still held at the timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::{Condvar, Mutex};
    /// use std::time::Duration;
    ///
    /// let (m, cv) = (Mutex::new(3), Condvar::new());
    /// let (g, res) = cv.wait_timeout_while(m.lock(), Duration::from_millis(5), |n| *n > 0);
    /// assert!(res.timed_out());
    /// assert_eq!(*g, 3);
    /// ```
    pub fn wait_timeout_while<'a, T, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: F,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult)
    where
        F: FnMut(&mut T) -> bool,
    {
        let deadline = deadline_after(timeout);
        while condition(&mut *guard) {
            if expired(deadline) {
                return (guard, WaitTimeoutResult(true));
            }
            guard = self.wait_until_inner(guard, deadline).0;
        }
        (guard, WaitTimeoutResult(false))
    }

    /// Wakes one waiter, if any (FIFO). Nothing is stored if nobody waits.
    ///
    /// # Examples
    ///
    /// See [`Condvar`].
    pub fn notify_one(&self) {
        let next = lock(&self.waiters).notify_front(ONE);
        if let Some(next) = next {
            next.unpark();
        }
    }

    /// Wakes every current waiter.
    ///
    /// # Examples
    ///
    /// See [`Condvar::wait`].
    pub fn notify_all(&self) {
        let mut wakes = WakeSet::new();
        lock(&self.waiters).notify_all(ALL, &mut wakes);
        wakes.wake_all();
    }

    fn wait_until_inner<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let key = lock(&self.waiters).push_back(park::current(), 0);
        let reg = Registration { cv: self, key };
        let mutex: &'a Mutex<T> = MutexGuard::unlock(guard);
        let timed_out = loop {
            wait::park_until(deadline);
            let mut q = lock(&self.waiters);
            match q.status(key) {
                Status::Notified(_) => {
                    q.remove(key);
                    break false;
                }
                Status::Waiting if expired(deadline) => {
                    q.remove(key);
                    break true;
                }
                Status::Waiting => {}
            }
        };
        std::mem::forget(reg);
        (mutex.lock(), WaitTimeoutResult(timed_out))
    }
}

#[cfg(all(test, not(pinstack_loom)))]
impl Condvar {
    /// Parked waiters (test probe).
    pub(crate) fn queued(&self) -> usize {
        lock(&self.waiters).len()
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

/// Removes a waiter's slot if its wait is unwound, passing on a
/// `notify_one` it did not get to use.
struct Registration<'a> {
    cv: &'a Condvar,
    key: WaitKey,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let status = lock(&self.cv.waiters).remove(self.key);
        if status == Status::Notified(ONE) {
            self.cv.notify_one();
        }
    }
}
