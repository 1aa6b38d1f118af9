//! [`Mutex`]: mutual exclusion that parks the waiting coroutine instead of
//! blocking its worker thread.
//!
//! The lock word and its fairness rules are in `raw_mutex.rs`; this file
//! owns the data and the guard.
//!
//! # Field access
//!
//! * `data` is read or written only through a [`MutexGuard`], and a guard
//!   exists only while `raw` is locked by its creator; `get_mut` and
//!   `into_inner` use `&mut self` / `self` instead, which rule out guards.
//! * `data` is `ManuallyDrop` so that `into_inner` can move the value out
//!   (the shim's `UnsafeCell` has no `into_inner`); `Drop for Mutex` drops
//!   it otherwise.

use super::raw_mutex::RawMutex;
use super::wait::deadline_after;
use crate::loom::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

/// A mutual-exclusion lock whose [`lock`](Mutex::lock) parks the calling
/// coroutine (or thread) while another holds it.
///
/// Unlike `std::sync::Mutex`, a guard may be held across other suspending
/// calls (a channel receive, a socket read): the worker keeps running other
/// tasks meanwhile.
///
/// * **Fairness**: parked waiters queue in arrival order and each unlock
///   wakes the front one. A running task may take the just-released lock
///   before the woken waiter runs (that keeps lock/unlock cheap), but a
///   waiter that loses such a race goes back to the front of the queue and
///   is then handed the lock directly, without racing. Nobody starves.
/// * **Contention**: a locker spins briefly (a few dozen pause
///   instructions) while nobody is parked, then parks.
/// * **No poisoning**: if a task panics while holding the guard, the lock
///   is released as the guard drops and the next locker sees whatever state
///   the data was left in, as with `tokio::sync::Mutex`.
/// * **Not reentrant**: locking again from the holder deadlocks that task.
///
/// Like `std::sync::Mutex`, it is `Send` and `Sync` when `T: Send`:
///
/// ```compile_fail
/// fn shareable<T: Sync>() {}
/// shareable::<pinstack::sync::Mutex<std::rc::Rc<u8>>>();
/// ```
///
/// # Examples
///
/// ```
/// use pinstack::sync::Mutex;
/// use std::{sync::Arc, thread};
///
/// let counter = Arc::new(Mutex::new(0u64));
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let counter = counter.clone();
///         thread::spawn(move || {
///             for _ in 0..1000 {
///                 *counter.lock() += 1;
///             }
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert_eq!(*counter.lock(), 4000);
/// ```
pub struct Mutex<T> {
    raw: RawMutex,
    data: UnsafeCell<ManuallyDrop<T>>,
}

// SAFETY: the mutex owns a `T` and hands it to at most one thread at a time,
// so sending the mutex sends the `T`: `T: Send` suffices, as for
// `std::sync::Mutex`.
unsafe impl<T: Send> Send for Mutex<T> {}
// SAFETY: sharing `&Mutex<T>` lets each thread obtain `&mut T`, but only one
// at a time (the guard exists only while `raw` is held), which is moving the
// `T` between threads: `T: Send` suffices, as for `std::sync::Mutex`.
unsafe impl<T: Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// Creates an unlocked mutex holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = pinstack::sync::Mutex::new(vec![1, 2]);
    /// m.lock().push(3);
    /// assert_eq!(*m.lock(), [1, 2, 3]);
    /// ```
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            data: UnsafeCell::new(ManuallyDrop::new(value)),
        }
    }

    /// Takes the lock, parking the current coroutine (or thread) while it
    /// is held elsewhere.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = pinstack::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard::new(self)
    }

    /// Takes the lock if it is free right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = pinstack::sync::Mutex::new(());
    /// let g = m.lock();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert!(m.try_lock().is_some());
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        if self.raw.try_lock() {
            Some(MutexGuard::new(self))
        } else {
            None
        }
    }

    /// Takes the lock, parking for at most `timeout`; `None` if it could not
    /// be taken in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let m = pinstack::sync::Mutex::new(0);
    /// let held = m.lock();
    /// assert!(m.try_lock_for(Duration::from_millis(5)).is_none());
    /// drop(held);
    /// assert!(m.try_lock_for(Duration::from_millis(5)).is_some());
    /// ```
    pub fn try_lock_for(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        self.lock_until(deadline_after(timeout))
    }

    /// Takes the lock, parking at most until `deadline`; `None` if it could
    /// not be taken in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let m = pinstack::sync::Mutex::new(0);
    /// let g = m.try_lock_until(Instant::now() + Duration::from_secs(1));
    /// assert!(g.is_some());
    /// ```
    pub fn try_lock_until(&self, deadline: Instant) -> Option<MutexGuard<'_, T>> {
        self.lock_until(Some(deadline))
    }

    fn lock_until(&self, deadline: Option<Instant>) -> Option<MutexGuard<'_, T>> {
        if self.raw.lock_until(deadline) {
            Some(MutexGuard::new(self))
        } else {
            None
        }
    }

    /// Whether the lock is held right now. Only a snapshot: it may change
    /// before the caller acts on it.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = pinstack::sync::Mutex::new(());
    /// let g = m.lock();
    /// assert!(m.is_locked());
    /// drop(g);
    /// assert!(!m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// A mutable reference to the data; `&mut self` proves nobody holds the
    /// lock, so no locking happens.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut m = pinstack::sync::Mutex::new(1);
    /// *m.get_mut() = 5;
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self` excludes every guard (a guard borrows the
        // mutex) and every other access, so this is the only reference to
        // the data for the returned lifetime, which is tied to `&mut self`.
        self.data.with_mut(|p| unsafe { &mut **p })
    }

    /// Consumes the mutex and returns the data.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = pinstack::sync::Mutex::new(String::from("hi"));
    /// assert_eq!(m.into_inner(), "hi");
    /// ```
    pub fn into_inner(self) -> T {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: owning the mutex excludes every guard and every other
        // access. The value is read out exactly once: `this` is never
        // dropped (`ManuallyDrop`), so `Drop for Mutex` will not drop it
        // again.
        let value = this
            .data
            .with_mut(|p| unsafe { ManuallyDrop::take(&mut *p) });
        // SAFETY: [1] `this` is a valid, owned `Mutex` that will never be
        // used or dropped again (it is `ManuallyDrop` and goes out of scope
        // here); [2] each field is dropped exactly once; [3] dropping `data`
        // does not drop the value already taken, because it is wrapped in
        // `ManuallyDrop`.
        unsafe {
            std::ptr::drop_in_place(&mut this.raw);
            std::ptr::drop_in_place(&mut this.data);
        }
        value
    }
}

#[cfg(all(test, not(pinstack_loom)))]
impl<T> Mutex<T> {
    /// Parked lockers (test probe).
    pub(crate) fn queued(&self) -> usize {
        self.raw.queued()
    }
}

impl<T> Drop for Mutex<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self` in `drop` excludes all other access, and this
        // is the value's only drop: `into_inner` never runs this `Drop`.
        self.data
            .with_mut(|p| unsafe { ManuallyDrop::drop(&mut *p) });
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Proof of holding a [`Mutex`]: derefs to the data, and unlocks when
/// dropped.
///
/// Unlike std's, this guard may be sent to another thread (when `T: Send`):
/// the lock does not belong to a thread. Sharing it needs `T: Sync`:
///
/// ```compile_fail
/// fn shareable<T: Sync>() {}
/// shareable::<pinstack::sync::MutexGuard<'static, std::cell::Cell<u8>>>();
/// ```
///
/// # Examples
///
/// ```
/// let m = pinstack::sync::Mutex::new(String::new());
/// let mut g = m.lock();
/// g.push_str("held");
/// drop(g);
/// assert_eq!(&*m.lock(), "held");
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
    /// Opt out of the auto traits; the right ones are implemented below.
    _not_auto: PhantomData<*mut T>,
}

// SAFETY: a guard is exclusive access to the `T` (like `&mut T`), and the
// lock can be released from any thread, so moving the guard moves that
// access: `T: Send` suffices, as for `&mut T`.
unsafe impl<T: Send> Send for MutexGuard<'_, T> {}
// SAFETY: `&MutexGuard` only yields `&T`, so sharing it is sharing `&T`,
// which needs `T: Sync`.
unsafe impl<T: Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T> MutexGuard<'a, T> {
    /// Wraps a lock the caller has just taken.
    #[inline]
    fn new(mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
        MutexGuard {
            mutex,
            _not_auto: PhantomData,
        }
    }

    /// Releases the lock and returns the mutex (for `Condvar`, which
    /// relocks it after waiting).
    pub(crate) fn unlock(guard: MutexGuard<'a, T>) -> &'a Mutex<T> {
        let mutex = guard.mutex;
        std::mem::forget(guard);
        mutex.raw.unlock();
        mutex
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its creator holds the lock,
        // so no `&mut T` exists elsewhere; the returned `&T` borrows the
        // guard, so it cannot outlive the lock.
        self.mutex.data.with(|p| unsafe { &**p })
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while its creator holds the lock
        // and `&mut self` makes this the only borrow of the guard, so this
        // is the only reference to the data; it cannot outlive the guard.
        self.mutex.data.with_mut(|p| unsafe { &mut **p })
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.raw.unlock();
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
