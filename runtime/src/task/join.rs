//! Waiting for a task: [`JoinHandle`] and [`JoinError`].

use super::raw::TaskRef;
use crate::park::{self, Reason};
use pinstack_stackpool::PoolError;
use std::any::Any;
use std::fmt;
use std::marker::PhantomData;

/// An owned permission to wait for a task and take its result.
///
/// Returned by [`spawn`](crate::spawn), [`Runtime::spawn`](crate::Runtime::spawn)
/// and [`spawn_blocking`](crate::spawn_blocking). Dropping it detaches the
/// task: it keeps running and its result is dropped.
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::new()?;
/// let sum = rt.block_on(|| {
///     let handle = pinstack::spawn(|| 40 + 2);
///     handle.join().unwrap()
/// });
/// assert_eq!(sum, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JoinHandle<T> {
    raw: Option<TaskRef>,
    /// The output type; `fn() -> T` keeps the handle `Send` and `Sync`
    /// whatever `T` (it never holds a `T`, only hands one out by value).
    _output: PhantomData<fn() -> T>,
}

impl<T> JoinHandle<T> {
    /// # Safety
    /// `T` is the output type of `raw`'s task.
    pub(super) unsafe fn from_task(raw: TaskRef) -> JoinHandle<T> {
        JoinHandle {
            raw: Some(raw),
            _output: PhantomData,
        }
    }

    /// Waits for the task to finish and returns its value.
    ///
    /// Inside a pinstack task this suspends only the calling coroutine; on a
    /// plain thread it blocks the thread.
    ///
    /// # Errors
    ///
    /// A [`JoinError`] if the task panicked, was cancelled by the runtime's
    /// shutdown, or could not get a stack.
    ///
    /// # Panics
    ///
    /// If a task joins itself (that could never return).
    pub fn join(mut self) -> Result<T, JoinError> {
        let raw = self
            .raw
            .take()
            .expect("JoinHandle holds its task until join");
        let header = raw.header();
        if !header.state.is_complete() {
            let me = park::current();
            assert!(
                !me.is_task(header),
                "a pinstack task tried to join itself, which would never return"
            );
            // SAFETY: `join` consumes the only handle, so this is the single
            // joiner, and it has not published JOIN_WAKER yet.
            unsafe { header.store_join_waker(me) };
            if header.state.set_join_waker() {
                while !header.state.is_complete() {
                    park::park(Reason::Join);
                }
            }
        }
        // SAFETY: `T` is the task's output type (`from_task`); COMPLETE
        // observed (Acquire) and the output not yet taken: the handle was
        // consumed, so this runs once.
        let out = unsafe { raw.take_output::<T>() };
        // No `drop_join_interest`: `JOIN_INTEREST` is read only by `complete`
        // (state rule 5), which already ran, and the output is taken; a
        // read-modify-write less per join.
        out
    }

    /// Whether the task has finished (its result is ready to take).
    pub fn is_finished(&self) -> bool {
        self.raw
            .as_ref()
            .is_some_and(|r| r.header().state.is_complete())
    }

    /// How many references the task has (tests only).
    #[cfg(all(test, not(pinstack_loom)))]
    pub(crate) fn raw_ref_count(&self) -> usize {
        self.raw.as_ref().map_or(0, |r| r.ref_count())
    }

    /// Whether the task started and is now parked, neither queued, running
    /// nor complete (tests only).
    #[cfg(all(test, not(pinstack_loom)))]
    pub(crate) fn raw_is_parked(&self) -> bool {
        use super::state::{COMPLETE, RUNNING, SCHEDULED};
        self.raw.as_ref().is_some_and(|r| {
            let h = r.header();
            h.home().is_some() && h.state.load() & (SCHEDULED | RUNNING | COMPLETE) == 0
        })
    }

    /// The task's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.raw
            .as_ref()
            .and_then(|r| r.header().meta.name.as_deref())
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            if raw.header().state.drop_join_interest() {
                // SAFETY: `T` is the task's output type (`from_task`); the
                // task completed before the interest was dropped, so state
                // rule 5 gives the output to this side.
                drop(unsafe { raw.take_output::<T>() });
            }
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("name", &self.name())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a task produced no value.
///
/// Query it with [`is_panic`](JoinError::is_panic),
/// [`is_cancelled`](JoinError::is_cancelled) and
/// [`is_stack_exhausted`](JoinError::is_stack_exhausted).
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    /// Boxed again (a thin pointer): with `NoStack` boxed too, the error
    /// is two words, and so is every task's output slot for `()`.
    Panic(Box<Box<dyn Any + Send + 'static>>),
    Cancelled,
    /// Boxed: the error is rare, and every task's output slot is as large
    /// as this enum.
    NoStack(Box<PoolError>),
}

impl JoinError {
    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            repr: Repr::Panic(Box::new(payload)),
        }
    }

    pub(crate) fn cancelled() -> JoinError {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn no_stack(err: PoolError) -> JoinError {
        JoinError {
            repr: Repr::NoStack(Box::new(err)),
        }
    }

    /// The task panicked; [`into_panic`](JoinError::into_panic) gives the payload.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The runtime shut down before the task finished.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task never ran: no stack could be had from the stack pool. The
    /// message (`Display`) carries the pool's explanation.
    pub fn is_stack_exhausted(&self) -> bool {
        matches!(self.repr, Repr::NoStack(_))
    }

    /// The panic payload, to re-raise with `std::panic::resume_unwind`.
    ///
    /// # Panics
    ///
    /// If the error is not a panic; use
    /// [`try_into_panic`](JoinError::try_into_panic) to check.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .unwrap_or_else(|e| panic!("JoinError::into_panic on a non-panic error: {e}"))
    }

    /// The panic payload, or the error itself if it is not a panic.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(*p),
            repr => Err(JoinError { repr }),
        }
    }
}

fn panic_message(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>")
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(p) => write!(f, "task panicked: {}", panic_message(&***p)),
            Repr::Cancelled => {
                f.write_str("task cancelled: its runtime shut down before it finished")
            }
            Repr::NoStack(e) => write!(f, "task could not start: no stack: {e}"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(p) => f
                .debug_tuple("JoinError::Panic")
                .field(&panic_message(&***p))
                .finish(),
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::NoStack(e) => f.debug_tuple("JoinError::NoStack").field(e).finish(),
        }
    }
}

impl std::error::Error for JoinError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.repr {
            Repr::NoStack(e) => Some(&**e),
            _ => None,
        }
    }
}
