//! [`OnceCell`]: a value set once, whose initialiser may suspend; callers
//! that arrive meanwhile park instead of blocking their worker.
//!
//! Why not `std::sync::OnceLock`: a second caller blocks its *thread* on a
//! futex until the first finishes. If the first is a coroutine that
//! suspends inside its initialiser (a connect, a sleep) and the second runs
//! on the same worker, the worker is blocked and the first never resumes:
//! a deadlock. Here the second caller parks its coroutine.
//!
//! # State
//!
//! ```text
//!   EMPTY ──CAS (one caller wins)──▶ RUNNING ──value written──▶ DONE (final)
//!     ▲                                 │
//!     └──── the initialiser panicked ───┘   (or returned an error)
//! ```
//!
//! * `value` is written only by the caller that won the CAS, before it
//!   stores `DONE` (Release); it is read only after loading `DONE`
//!   (Acquire). `DONE` is never left, except through `&mut self`.
//! * `waiters` holds the callers that found `RUNNING`. They register under
//!   the list's lock after re-checking the state there; the initialiser
//!   stores the new state *before* taking that lock to wake them all, so a
//!   caller either sees the new state or is registered when the wake-up
//!   comes. After a failed initialisation every waiter retries the CAS.

use super::wait::lock;
use super::wait_list::{Registered, WaitList, WakeSet};
use crate::loom::sync::atomic::{AtomicU8, Ordering::*};
use crate::loom::sync::Mutex;
use crate::loom::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;

const EMPTY: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// A cell written once, by the first caller of
/// [`get_or_init`](OnceCell::get_or_init); later callers get the same
/// value. Callers that arrive while the initialiser runs park (a coroutine
/// suspends, a thread blocks) until it is done: the initialiser itself may
/// suspend, for I/O say, which `std::sync::OnceLock` does not allow on a
/// coroutine runtime (see the module source for the deadlock). Go's
/// `sync.Once`, tokio's `OnceCell`.
///
/// If the initialiser panics (or [`get_or_try_init`](OnceCell::get_or_try_init)'s
/// returns an error) the cell stays empty and the next caller runs its own.
/// An initialiser that calls `get_or_init` on its own cell waits for
/// itself forever, as with `std::sync::OnceLock`.
///
/// Shared only if `T` is `Send` and `Sync`:
///
/// ```compile_fail
/// fn is_sync<T: Sync>() {}
/// is_sync::<pinstack::sync::OnceCell<std::cell::Cell<u8>>>();
/// ```
///
/// # Examples
///
/// ```
/// use pinstack::sync::OnceCell;
///
/// static CONFIG: OnceCell<String> = OnceCell::new();
///
/// let rt = pinstack::Runtime::new()?;
/// let readers: Vec<_> = (0..4)
///     .map(|_| {
///         rt.spawn(|| {
///             CONFIG
///                 .get_or_init(|| {
///                     // May suspend: other callers park meanwhile.
///                     pinstack::sleep(std::time::Duration::from_millis(1));
///                     "loaded".to_string()
///                 })
///                 .len()
///         })
///     })
///     .collect();
/// for r in readers {
///     assert_eq!(r.join()?, 6);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OnceCell<T> {
    state: AtomicU8,
    waiters: Mutex<WaitList>,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: moving the cell moves the `T` it may own.
unsafe impl<T: Send> Send for OnceCell<T> {}
// SAFETY: shared, the cell hands `&T` to every thread (`T: Sync`) and the
// value may be created on another thread than the one that drops it
// (`T: Send`); the state protocol orders the write before every read.
unsafe impl<T: Send + Sync> Sync for OnceCell<T> {}

impl<T> OnceCell<T> {
    /// An empty cell; `const`, so it can be a `static`.
    #[cfg(not(pinstack_loom))]
    pub const fn new() -> OnceCell<T> {
        OnceCell {
            state: AtomicU8::new(EMPTY),
            waiters: Mutex::new(WaitList::new()),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// An empty cell (loom's atomics are not `const`).
    #[cfg(pinstack_loom)]
    pub fn new() -> OnceCell<T> {
        OnceCell {
            state: AtomicU8::new(EMPTY),
            waiters: Mutex::new(WaitList::new()),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The value, if it is set.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Acquire) == DONE {
            // SAFETY: DONE (read with Acquire) was stored after the value
            // was written, and the value is never changed or dropped while
            // `&self` lives (state rules in the module docs).
            Some(self.value.with(|p| unsafe { (*p).assume_init_ref() }))
        } else {
            None
        }
    }

    /// The value, if it is set; `&mut self` rules out every other access.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        if self.state.load(Relaxed) == DONE {
            // SAFETY: DONE means the value was written; `&mut self` makes
            // this the only access for the returned lifetime.
            Some(self.value.with_mut(|p| unsafe { (*p).assume_init_mut() }))
        } else {
            None
        }
    }

    /// The value, running `init` to make it if the cell is empty. Callers
    /// that arrive while another caller's `init` runs park until it
    /// finishes.
    ///
    /// # Panics
    ///
    /// If `init` panics (the panic propagates; the cell stays empty).
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        match self.get_or_try_init(|| Ok::<T, std::convert::Infallible>(init())) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    /// Like [`get_or_init`](OnceCell::get_or_init), for an initialiser that
    /// can fail: an error leaves the cell empty and is returned.
    ///
    /// # Errors
    ///
    /// `init`'s error, when this call ran `init` and it failed.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = pinstack::sync::OnceCell::new();
    /// assert_eq!(cell.get_or_try_init(|| "1x".parse::<u8>()).ok(), None);
    /// assert_eq!(cell.get_or_try_init(|| "12".parse::<u8>()), Ok(&12));
    /// ```
    pub fn get_or_try_init<E>(&self, init: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        if let Some(v) = self.get() {
            return Ok(v);
        }
        loop {
            match self
                .state
                .compare_exchange(EMPTY, RUNNING, Acquire, Acquire)
            {
                Ok(_) => return self.run(init),
                Err(DONE) => return Ok(self.done()),
                Err(_) => self.wait_while_running(),
            }
        }
    }

    /// Sets the value if the cell is empty and nobody is setting it.
    ///
    /// # Errors
    ///
    /// Gives `value` back if the cell holds a value or one is being made.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = pinstack::sync::OnceCell::new();
    /// assert_eq!(cell.set(1), Ok(()));
    /// assert_eq!(cell.set(2), Err(2));
    /// assert_eq!(cell.get(), Some(&1));
    /// ```
    pub fn set(&self, value: T) -> Result<(), T> {
        if self
            .state
            .compare_exchange(EMPTY, RUNNING, Acquire, Relaxed)
            .is_err()
        {
            return Err(value);
        }
        self.publish(value);
        Ok(())
    }

    /// The value, taken out of the cell.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = pinstack::sync::OnceCell::new();
    /// cell.set(String::from("x")).unwrap();
    /// assert_eq!(cell.into_inner().as_deref(), Some("x"));
    /// ```
    pub fn into_inner(self) -> Option<T> {
        if self.state.load(Relaxed) != DONE {
            return None;
        }
        // Not DONE any more: `Drop` will not drop the value again.
        self.state.store(EMPTY, Relaxed);
        // SAFETY: the state was DONE, so the value is initialised; owning
        // the cell rules out every other access, and the state change
        // above makes this the value's only read-out.
        Some(self.value.with_mut(|p| unsafe { (*p).assume_init_read() }))
    }

    /// The caller won the CAS to `RUNNING`: runs `init` and publishes its
    /// value, or gives the cell back empty on an error or a panic.
    fn run<E>(&self, init: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        let failed = GiveBack(self);
        let result = init();
        std::mem::forget(failed);
        match result {
            Ok(value) => {
                self.publish(value);
                Ok(self.done())
            }
            Err(e) => {
                self.give_back();
                Err(e)
            }
        }
    }

    /// Writes the value (the caller moved the state to `RUNNING`), marks
    /// the cell `DONE` and wakes the waiters.
    fn publish(&self, value: T) {
        // SAFETY: RUNNING was set by the caller's CAS: no one else writes
        // the value, and no one reads it before DONE.
        self.value.with_mut(|p| unsafe { (*p).write(value) });
        self.state.store(DONE, Release);
        self.wake_all();
    }

    /// The initialisation failed: back to `EMPTY`, and every waiter tries.
    fn give_back(&self) {
        self.state.store(EMPTY, Release);
        self.wake_all();
    }

    fn done(&self) -> &T {
        self.get().expect("the cell is DONE")
    }

    fn wake_all(&self) {
        let mut wakes = WakeSet::new();
        lock(&self.waiters).notify_all(0, &mut wakes);
        wakes.wake_all();
    }

    /// Parks until the running initialisation ends (either way).
    fn wait_while_running(&self) {
        let q = lock(&self.waiters);
        // Under the lock: a state change after this comes with a wake-up.
        if self.state.load(Acquire) != RUNNING {
            return;
        }
        drop(Registered::push(&self.waiters, q, |q| q).wait(None));
    }
}

/// Gives the cell back empty if the initialiser unwinds.
struct GiveBack<'a, T>(&'a OnceCell<T>);

impl<T> Drop for GiveBack<'_, T> {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

impl<T> Drop for OnceCell<T> {
    fn drop(&mut self) {
        if let Some(v) = self.get_mut() {
            // SAFETY: the value is initialised (DONE) and this is its only
            // drop: the cell is going away and `into_inner` resets DONE.
            unsafe { std::ptr::drop_in_place(v) };
        }
    }
}

impl<T> Default for OnceCell<T> {
    fn default() -> OnceCell<T> {
        OnceCell::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceCell");
        match self.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<unset>")),
        };
        d.finish()
    }
}
