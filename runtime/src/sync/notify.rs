//! [`Notify`]: wake one task or all waiting tasks, with tokio's permit
//! semantics.
//!
//! # State (behind one internal mutex)
//!
//! ```text
//!   permit: bool        stored by notify_one when nobody waits; consumed by the next wait
//!   waiters: WaitList   parked waiters, FIFO
//! ```
//!
//! * `notify_one`: notify the front waiter (tag `ONE`), or store the permit.
//! * `notify_waiters`: notify every queued waiter (tag `ALL`); no permit.
//! * a wait: consume the permit if stored, else queue and park until its
//!   slot is notified.
//!
//! A wait whose timeout races a notification returns "notified": the
//! notification is consumed, not dropped. A wait unwound after being picked
//! by `notify_one` re-issues it, so a `notify_one` is never lost.

use super::wait::{self, deadline_after, expired, lock};
use super::wait_list::{Status, WaitKey, WaitList, WakeSet};
use crate::loom::sync::Mutex;
use crate::park;
use std::fmt;
use std::time::{Duration, Instant};

/// Notification tags.
const ONE: u32 = 0;
const ALL: u32 = 1;

/// Notifies one task or all waiting tasks; like `tokio::sync::Notify`, but
/// the waits park the coroutine (or thread) directly.
///
/// * [`notify_one`](Notify::notify_one) wakes the longest-waiting task, or,
///   if nobody waits, stores one *permit* so that the next wait returns at
///   once (several calls store still one permit).
/// * [`notify_waiters`](Notify::notify_waiters) wakes every task waiting
///   right now and stores nothing.
///
/// Use `notify_one` to signal "something changed, come and look": the
/// permit makes a signal sent before the consumer starts waiting count.
/// `notify_waiters` cannot be used that way (a task that has checked its
/// condition but not yet started waiting misses it); pair it with a
/// [`Mutex`](super::Mutex) and [`Condvar`](super::Condvar) when every
/// waiter must see a change.
///
/// # Examples
///
/// ```
/// use pinstack::sync::Notify;
/// use std::{sync::Arc, thread};
///
/// let notify = Arc::new(Notify::new());
/// let n2 = notify.clone();
/// let waiter = thread::spawn(move || {
///     n2.notified(); // returns once notify_one has run, before or after
///     "woken"
/// });
/// notify.notify_one();
/// assert_eq!(waiter.join().unwrap(), "woken");
/// ```
pub struct Notify {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    permit: bool,
    waiters: WaitList,
}

impl Notify {
    /// Creates a `Notify` with no permit and nobody waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = pinstack::sync::Notify::new();
    /// assert!(!n.try_notified());
    /// ```
    pub fn new() -> Notify {
        Notify {
            state: Mutex::new(State {
                permit: false,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Wakes the longest-waiting task, or stores the permit if nobody
    /// waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = pinstack::sync::Notify::new();
    /// n.notify_one();
    /// n.notify_one(); // still one permit
    /// assert!(n.try_notified());
    /// assert!(!n.try_notified());
    /// ```
    pub fn notify_one(&self) {
        let mut st = lock(&self.state);
        let next = st.waiters.notify_front(ONE);
        if next.is_none() {
            st.permit = true;
        }
        drop(st);
        if let Some(next) = next {
            next.unpark();
        }
    }

    /// Wakes every task waiting right now; stores no permit.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::Notify;
    /// use std::{sync::Arc, thread, time::Duration};
    ///
    /// let n = Arc::new(Notify::new());
    /// let waiters: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let n = n.clone();
    ///         thread::spawn(move || n.notified_timeout(Duration::from_secs(30)))
    ///     })
    ///     .collect();
    /// // Keep waking until all three were waiting and got it.
    /// while !waiters.iter().all(|w| w.is_finished()) {
    ///     n.notify_waiters();
    ///     thread::sleep(Duration::from_millis(1));
    /// }
    /// assert!(waiters.into_iter().all(|w| w.join().unwrap()));
    /// assert!(!n.try_notified()); // no permit was stored
    /// ```
    pub fn notify_waiters(&self) {
        let mut wakes = WakeSet::new();
        lock(&self.state).waiters.notify_all(ALL, &mut wakes);
        wakes.wake_all();
    }

    /// Waits for a notification: returns at once if a permit is stored
    /// (consuming it), else parks until `notify_one` or `notify_waiters`.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = pinstack::sync::Notify::new();
    /// n.notify_one();
    /// n.notified(); // the stored permit: returns at once
    /// ```
    pub fn notified(&self) {
        self.wait(None);
    }

    /// Like [`notified`](Self::notified), but gives up after `timeout`.
    /// Returns whether a notification (or permit) was consumed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let n = pinstack::sync::Notify::new();
    /// assert!(!n.notified_timeout(Duration::from_millis(5)));
    /// n.notify_one();
    /// assert!(n.notified_timeout(Duration::from_millis(5)));
    /// ```
    #[must_use = "false means the wait timed out without a notification"]
    pub fn notified_timeout(&self, timeout: Duration) -> bool {
        self.wait(deadline_after(timeout))
    }

    /// Like [`notified_timeout`](Self::notified_timeout), with an absolute
    /// deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// let n = pinstack::sync::Notify::new();
    /// assert!(!n.notified_deadline(Instant::now()));
    /// ```
    #[must_use = "false means the wait timed out without a notification"]
    pub fn notified_deadline(&self, deadline: Instant) -> bool {
        self.wait(Some(deadline))
    }

    /// Consumes the stored permit if there is one; never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = pinstack::sync::Notify::new();
    /// n.notify_one();
    /// assert!(n.try_notified());
    /// ```
    pub fn try_notified(&self) -> bool {
        std::mem::take(&mut lock(&self.state).permit)
    }

    fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut st = lock(&self.state);
        if std::mem::take(&mut st.permit) {
            return true;
        }
        if expired(deadline) {
            return false;
        }
        let key = st.waiters.push_back(park::current(), 0);
        let reg = Registration { notify: self, key };
        drop(st);
        let notified = loop {
            wait::park_until(deadline);
            let mut st = lock(&self.state);
            match st.waiters.status(key) {
                Status::Notified(_) => {
                    st.waiters.remove(key);
                    break true;
                }
                Status::Waiting if expired(deadline) => {
                    st.waiters.remove(key);
                    break false;
                }
                Status::Waiting => {}
            }
        };
        std::mem::forget(reg);
        notified
    }
}

#[cfg(all(test, not(pinstack_loom)))]
impl Notify {
    /// Parked waiters (test probe).
    pub(crate) fn queued(&self) -> usize {
        lock(&self.state).waiters.len()
    }
}

impl Default for Notify {
    fn default() -> Notify {
        Notify::new()
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify").finish_non_exhaustive()
    }
}

/// Removes a waiter's slot if its wait is unwound, re-issuing a
/// `notify_one` it did not get to use.
struct Registration<'a> {
    notify: &'a Notify,
    key: WaitKey,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let status = lock(&self.notify.state).waiters.remove(self.key);
        if status == Status::Notified(ONE) {
            self.notify.notify_one();
        }
    }
}
