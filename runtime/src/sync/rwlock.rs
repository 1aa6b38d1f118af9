//! [`RwLock`]: many readers or one writer, parking the waiting coroutine
//! instead of blocking its worker thread.
//!
//! # Design (tokio's)
//!
//! ```text
//!   sem: Semaphore(MAX_READS)      read  = 1 permit
//!                                  write = MAX_READS permits (all of them)
//!   data: UnsafeCell<T>            touched only through a guard, which
//!                                  holds its permits
//! ```
//!
//! The semaphore serves waiters first come, first served and grants only
//! the front of its queue: a writer waiting for the readers to leave holds
//! back the readers that come after it, and a stream of readers cannot
//! starve it (write-preferring, as tokio and Go's `sync.RWMutex`).
//!
//! # Field access
//!
//! A read guard exists only while its permit is held, so while any read
//! guard lives no write guard can (a writer needs every permit); a write
//! guard holds every permit, so it excludes all other guards. `get_mut`
//! takes `&mut self`, which excludes guards (they borrow the lock).

use super::semaphore::{Semaphore, SemaphorePermit};
use crate::loom::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// Readers at most at once: the permits a writer takes.
const MAX_READS: u32 = u32::MAX >> 3;

/// A reader-writer lock whose [`read`](RwLock::read) and
/// [`write`](RwLock::write) park the calling coroutine (or thread) while
/// the lock is taken the other way. Go's `sync.RWMutex`, tokio's `RwLock`.
///
/// Waiters are served in arrival order: a waiting writer goes before the
/// readers that arrive after it, so writers are never starved. Like
/// pinstack's [`Mutex`](super::Mutex) it never poisons, and a guard may be
/// held across other suspending calls.
///
/// Every `read` and `write` takes the lock's internal semaphore mutex once
/// (and once more to release): a lock for data read often and written
/// rarely, not for the hottest counters (use atomics there).
///
/// Shared between threads only if `T` is `Send` and `Sync` (readers on
/// several threads see the same `T`):
///
/// ```compile_fail
/// fn is_sync<T: Sync>() {}
/// is_sync::<pinstack::sync::RwLock<std::cell::Cell<u8>>>();
/// ```
///
/// # Examples
///
/// ```
/// use pinstack::sync::RwLock;
/// use std::collections::HashMap;
/// use std::sync::Arc;
///
/// let rt = pinstack::Runtime::new()?;
/// let rooms = Arc::new(RwLock::new(HashMap::<String, u32>::new()));
/// let writer = rooms.clone();
/// rt.spawn(move || {
///     writer.write().insert("#rust".into(), 1);
/// })
/// .join()?;
/// let readers: Vec<_> = (0..4)
///     .map(|_| {
///         let rooms = rooms.clone();
///         rt.spawn(move || rooms.read().get("#rust").copied())
///     })
///     .collect();
/// for r in readers {
///     assert_eq!(r.join()?, Some(1));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RwLock<T> {
    sem: Semaphore,
    data: UnsafeCell<T>,
}

// SAFETY: moving the lock moves the `T` it owns: `T: Send` suffices.
unsafe impl<T: Send> Send for RwLock<T> {}
// SAFETY: shared, the lock hands out `&T` to several threads at once (read
// guards: `T: Sync`) and `&mut T` to one at a time, possibly another thread
// than the one that created it (write guards: `T: Send`); the permits keep
// the two apart (module docs).
unsafe impl<T: Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// A lock holding `value`.
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            sem: Semaphore::new(MAX_READS as usize),
            data: UnsafeCell::new(value),
        }
    }

    /// Takes the lock for reading, parking while a writer holds it or
    /// waits for it.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            lock: self,
            _permit: self.sem.acquire(),
        }
    }

    /// Takes the lock for writing, parking while anyone holds it.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            lock: self,
            _permit: self.sem.acquire_many(MAX_READS),
        }
    }

    /// Takes the lock for reading if that is possible right now (no writer
    /// holds it or waits for it).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = pinstack::sync::RwLock::new(1);
    /// let r1 = lock.read();
    /// assert!(lock.try_read().is_some());
    /// assert!(lock.try_write().is_none());
    /// drop(r1);
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        Some(RwLockReadGuard {
            lock: self,
            _permit: self.sem.try_acquire()?,
        })
    }

    /// Takes the lock for writing if nobody holds it or waits for it.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        Some(RwLockWriteGuard {
            lock: self,
            _permit: self.sem.try_acquire_many(MAX_READS)?,
        })
    }

    /// Like [`read`](RwLock::read), giving up after `timeout`.
    pub fn read_timeout(&self, timeout: Duration) -> Option<RwLockReadGuard<'_, T>> {
        Some(RwLockReadGuard {
            lock: self,
            _permit: self.sem.acquire_timeout(timeout)?,
        })
    }

    /// Like [`write`](RwLock::write), giving up after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = pinstack::sync::RwLock::new(0);
    /// let reading = lock.read();
    /// assert!(lock.write_timeout(Duration::from_millis(5)).is_none());
    /// drop(reading);
    /// *lock.write_timeout(Duration::from_millis(5)).unwrap() += 1;
    /// assert_eq!(*lock.read(), 1);
    /// ```
    pub fn write_timeout(&self, timeout: Duration) -> Option<RwLockWriteGuard<'_, T>> {
        Some(RwLockWriteGuard {
            lock: self,
            _permit: self.sem.acquire_many_timeout(MAX_READS, timeout)?,
        })
    }

    /// A mutable reference to the data; `&mut self` proves nobody holds
    /// the lock, so no locking happens.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut lock = pinstack::sync::RwLock::new(1);
    /// *lock.get_mut() = 5;
    /// assert_eq!(*lock.read(), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self` excludes every guard (a guard borrows the
        // lock) and every other access, for the returned lifetime.
        self.data.with_mut(|p| unsafe { &mut *p })
    }
}

#[cfg(all(test, not(pinstack_loom)))]
impl<T> RwLock<T> {
    /// Parked readers and writers (test probe).
    pub(crate) fn queued(&self) -> usize {
        self.sem.queued()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Shared access to an [`RwLock`]'s data; the lock is released when this
/// is dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T> {
    lock: &'a RwLock<T>,
    _permit: SemaphorePermit<'a>,
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds a read permit, so no write guard exists
        // while the returned reference (tied to `&self`) lives.
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Exclusive access to an [`RwLock`]'s data; the lock is released when
/// this is dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T> {
    lock: &'a RwLock<T>,
    _permit: SemaphorePermit<'a>,
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds every permit: no other guard exists.
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard holds every permit, so no other guard exists,
        // and `&mut self` makes this the only reference through it.
        self.lock.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
