//! [`Semaphore`]: a counted set of permits, handed out first come, first
//! served.
//!
//! # State (behind one internal mutex)
//!
//! ```text
//!   permits: usize      available now
//!   waiters: WaitList   parked acquirers, FIFO; `data` = permits wanted
//! ```
//!
//! Acquiring takes permits directly only when nobody is queued (so a large
//! request at the front is not starved by a stream of small ones). Releasing
//! adds permits, then grants the front waiters in order while their request
//! fits: each is notified `GRANTED` with its permits already deducted, so it
//! owns them when it wakes. A waiter whose timeout races a grant keeps the
//! permits (returns success); a wait unwound after a grant gives them back.

use super::wait::{self, deadline_after, expired, lock};
use super::wait_list::{Status, WaitKey, WaitList, WakeSet};
use crate::loom::sync::Mutex;
use crate::park;
use std::fmt;
use std::time::{Duration, Instant};

/// Notification tag: the permits are yours.
const GRANTED: u32 = 1;

/// A counting semaphore whose `acquire` parks the coroutine (or thread)
/// until enough permits are free; waiters are served in FIFO order.
///
/// # Examples
///
/// ```
/// use pinstack::sync::{Mutex, Semaphore};
/// use std::{sync::Arc, thread};
///
/// // At most two "connections" in use at once.
/// let sem = Arc::new(Semaphore::new(2));
/// let in_use = Arc::new(Mutex::new((0, 0))); // (now, peak)
/// let workers: Vec<_> = (0..6)
///     .map(|_| {
///         let (sem, in_use) = (sem.clone(), in_use.clone());
///         thread::spawn(move || {
///             let _permit = sem.acquire();
///             {
///                 let mut g = in_use.lock();
///                 g.0 += 1;
///                 g.1 = g.1.max(g.0);
///             }
///             thread::yield_now();
///             in_use.lock().0 -= 1;
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert!(in_use.lock().1 <= 2);
/// assert_eq!(sem.available_permits(), 2);
/// ```
pub struct Semaphore {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    permits: usize,
    waiters: WaitList,
}

impl State {
    /// Grants queued requests that now fit, in order, collecting wake-ups.
    fn grant(&mut self, wakes: &mut WakeSet) {
        while let Some(want) = self.waiters.front_data() {
            let want = want as usize;
            if want > self.permits {
                break;
            }
            self.permits -= want;
            wakes.push_opt(self.waiters.notify_front(GRANTED));
        }
    }

    /// Returns `n` permits and grants what now fits.
    ///
    /// # Panics
    ///
    /// On overflow of the permit count.
    fn release(&mut self, n: usize, wakes: &mut WakeSet) {
        self.permits = match self.permits.checked_add(n) {
            Some(p) => p,
            None => panic!(
                "Semaphore permit count overflows usize ({} + {n}): permits were added \
                 or released more often than acquired",
                self.permits
            ),
        };
        self.grant(wakes);
    }
}

impl Semaphore {
    /// Creates a semaphore with `permits` available.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = pinstack::sync::Semaphore::new(3);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Mutex::new(State {
                permits,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Permits available right now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = pinstack::sync::Semaphore::new(1);
    /// let _p = sem.acquire();
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn available_permits(&self) -> usize {
        lock(&self.state).permits
    }

    /// Adds `n` permits, waking waiters they satisfy.
    ///
    /// # Panics
    ///
    /// If the number of available permits would overflow `usize`.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = pinstack::sync::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert!(sem.try_acquire_many(2).is_some());
    /// ```
    pub fn add_permits(&self, n: usize) {
        let mut wakes = WakeSet::new();
        lock(&self.state).release(n, &mut wakes);
        wakes.wake_all();
    }

    /// Takes one permit, parking until one is free.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = pinstack::sync::Semaphore::new(1);
    /// let permit = sem.acquire();
    /// assert_eq!(permit.num_permits(), 1);
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_many(1)
    }

    /// Takes `n` permits at once, parking until they are free. Asking for
    /// more than will ever be available waits forever; use
    /// [`acquire_many_timeout`](Self::acquire_many_timeout) if that can
    /// happen.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = pinstack::sync::Semaphore::new(4);
    /// let p = sem.acquire_many(3);
    /// assert_eq!(sem.available_permits(), 1);
    /// drop(p);
    /// assert_eq!(sem.available_permits(), 4);
    /// ```
    pub fn acquire_many(&self, n: u32) -> SemaphorePermit<'_> {
        // Without a deadline the wait only ends with a grant.
        let _granted = self.acquire_until(n, None);
        self.permit(n)
    }

    /// Takes one permit if one is free and nobody is queued ahead.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = pinstack::sync::Semaphore::new(1);
    /// let p = sem.try_acquire();
    /// assert!(p.is_some());
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody is queued ahead.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = pinstack::sync::Semaphore::new(2);
    /// assert!(sem.try_acquire_many(3).is_none());
    /// assert!(sem.try_acquire_many(2).is_some());
    /// ```
    pub fn try_acquire_many(&self, n: u32) -> Option<SemaphorePermit<'_>> {
        let mut st = lock(&self.state);
        if st.waiters.is_empty() && st.permits >= n as usize {
            st.permits -= n as usize;
            Some(self.permit(n))
        } else {
            None
        }
    }

    /// Takes one permit, parking for at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sem = pinstack::sync::Semaphore::new(0);
    /// assert!(sem.acquire_timeout(Duration::from_millis(5)).is_none());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.acquire_many_timeout(1, timeout)
    }

    /// Takes `n` permits, parking for at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sem = pinstack::sync::Semaphore::new(2);
    /// assert!(sem.acquire_many_timeout(2, Duration::from_millis(5)).is_some());
    /// ```
    pub fn acquire_many_timeout(&self, n: u32, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        if self.acquire_until(n, deadline_after(timeout)) {
            Some(self.permit(n))
        } else {
            None
        }
    }

    fn permit(&self, n: u32) -> SemaphorePermit<'_> {
        SemaphorePermit { sem: self, n }
    }

    /// Waits for `n` permits and deducts them; returns whether it got them.
    fn acquire_until(&self, n: u32, deadline: Option<Instant>) -> bool {
        let mut st = lock(&self.state);
        if st.waiters.is_empty() && st.permits >= n as usize {
            st.permits -= n as usize;
            return true;
        }
        if expired(deadline) {
            return false;
        }
        let key = st.waiters.push_back(park::current(), n);
        let reg = Registration { sem: self, key, n };
        drop(st);
        let granted = loop {
            wait::park_until(deadline);
            let mut st = lock(&self.state);
            match st.waiters.status(key) {
                Status::Notified(_) => {
                    st.waiters.remove(key);
                    break true;
                }
                Status::Waiting if expired(deadline) => {
                    st.waiters.remove(key);
                    // Leaving the front may let smaller requests behind us
                    // proceed.
                    let mut wakes = WakeSet::new();
                    st.grant(&mut wakes);
                    drop(st);
                    wakes.wake_all();
                    break false;
                }
                Status::Waiting => {}
            }
        };
        std::mem::forget(reg);
        granted
    }
}

#[cfg(all(test, not(pinstack_loom)))]
impl Semaphore {
    /// Parked waiters (test probe).
    pub(crate) fn queued(&self) -> usize {
        lock(&self.state).waiters.len()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .finish_non_exhaustive()
    }
}

/// Permits taken from a [`Semaphore`]; they go back when this is dropped.
///
/// # Examples
///
/// ```
/// let sem = pinstack::sync::Semaphore::new(1);
/// {
///     let _p = sem.acquire();
///     assert_eq!(sem.available_permits(), 0);
/// }
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "the permits are released as soon as this is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    n: u32,
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = pinstack::sync::Semaphore::new(5);
    /// assert_eq!(sem.acquire_many(2).num_permits(), 2);
    /// ```
    pub fn num_permits(&self) -> u32 {
        self.n
    }

    /// Keeps the permits out of the semaphore for good (it shrinks).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = pinstack::sync::Semaphore::new(2);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.n = 0;
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.n > 0 {
            self.sem.add_permits(self.n as usize);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.n)
            .finish()
    }
}

/// Removes an acquirer's slot if its wait is unwound, giving back permits
/// granted to it.
struct Registration<'a> {
    sem: &'a Semaphore,
    key: WaitKey,
    n: u32,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut st = lock(&self.sem.state);
        let mut wakes = WakeSet::new();
        match st.waiters.remove(self.key) {
            Status::Notified(_) => st.release(self.n as usize, &mut wakes),
            Status::Waiting => st.grant(&mut wakes),
        }
        drop(st);
        wakes.wake_all();
    }
}
