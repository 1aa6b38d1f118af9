//! Request scopes: [`with_arena`], [`with_arena_limit`] and the RAII
//! [`RequestArena`] guard.
//!
//! A scope checks an arena out of the calling thread's pool, lends it as
//! `&Arena`, and gives it back (destructors run, memory reset, pooled or
//! freed) when it ends, also when it ends by panic. Values allocated in the
//! scope borrow the arena, so the borrow checker rejects any that would
//! outlive it.

use super::alloc::Arena;
use super::{config, pool};
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::Deref;

/// Runs `f` with an arena from this worker's pool, with the
/// [default limit](super::set_default_limit); the arena is reset and returned
/// when `f` returns (or panics).
///
/// Nested calls get separate arenas. Works on any thread; on a runtime
/// worker the pool is the worker's own, so the memory stays on its NUMA node.
///
/// # Examples
///
/// ```
/// use pinstack::arena;
/// use std::fmt::Write;
///
/// let len = arena::with_arena(|a| {
///     let words = a.alloc_slice_copy(&["fast", "small"]);
///     let mut line = a.string();
///     for w in words.iter() {
///         write!(line, "{w} ").unwrap();
///     }
///     line.len()
/// });
/// assert_eq!(len, 11);
/// ```
///
/// Nothing allocated in the arena can leave the scope:
///
/// ```compile_fail
/// let escaped: &mut u64 = pinstack::arena::with_arena(|a| a.alloc(7u64));
/// ```
///
/// ```compile_fail
/// let mut keep: Option<&str> = None;
/// pinstack::arena::with_arena(|a| keep = Some(a.alloc_str("hi")));
/// println!("{keep:?}");
/// ```
pub fn with_arena<R>(f: impl FnOnce(&Arena) -> R) -> R {
    let scope = RequestArena::new();
    f(&scope)
}

/// [`with_arena`] with an explicit byte limit for this scope only. An
/// allocation that would take the arena's chunk memory past `limit_bytes`
/// fails: with an [`ArenaError`](super::ArenaError) from the `try_` methods,
/// with a panic carrying its message from the plain ones.
///
/// # Examples
///
/// ```
/// use pinstack::arena;
///
/// let refused = arena::with_arena_limit(16 * 1024, |a| {
///     a.try_alloc_slice_fill_copy(64 * 1024, 0u8).is_err()
/// });
/// assert!(refused);
/// ```
pub fn with_arena_limit<R>(limit_bytes: usize, f: impl FnOnce(&Arena) -> R) -> R {
    let scope = RequestArena::with_limit(limit_bytes);
    f(&scope)
}

/// An arena checked out of this worker's pool for as long as the guard
/// lives: the RAII form of [`with_arena`], for code where a closure is
/// awkward (a request struct, early returns).
///
/// Dereferences to [`Arena`]. Dropping the guard runs the
/// [`alloc_with_drop`](Arena::alloc_with_drop) destructors, resets the arena
/// and returns it to the pool. The guard is neither `Send` nor `Sync`: it
/// belongs to the thread (worker) whose pool it came from.
///
/// # Examples
///
/// ```
/// use pinstack::arena::RequestArena;
///
/// let scope = RequestArena::new();
/// let header = scope.alloc_str("GET /");
/// header.make_ascii_lowercase();
/// assert_eq!(header, "get /");
/// drop(scope); // memory back to the pool
/// ```
///
/// Values cannot outlive the guard:
///
/// ```compile_fail
/// use pinstack::arena::RequestArena;
///
/// let value = {
///     let scope = RequestArena::new();
///     scope.alloc(1u32)
/// };
/// println!("{value}");
/// ```
///
/// And the guard cannot move to another thread:
///
/// ```compile_fail
/// let scope = pinstack::arena::RequestArena::new();
/// std::thread::spawn(move || drop(scope));
/// ```
pub struct RequestArena {
    /// Taken out exactly once, in `Drop`.
    arena: ManuallyDrop<Arena>,
}

impl RequestArena {
    /// Checks an arena out with the [default limit](super::set_default_limit).
    pub fn new() -> Self {
        Self::with_limit(config::default_limit())
    }

    /// Checks an arena out with a byte limit of `limit_bytes` for this scope.
    pub fn with_limit(limit_bytes: usize) -> Self {
        RequestArena {
            arena: ManuallyDrop::new(pool::checkout(limit_bytes)),
        }
    }
}

impl Default for RequestArena {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for RequestArena {
    type Target = Arena;

    #[inline]
    fn deref(&self) -> &Arena {
        &self.arena
    }
}

impl fmt::Debug for RequestArena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestArena").field(&*self.arena).finish()
    }
}

impl Drop for RequestArena {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and nothing touches `self.arena` after
        // this line, so the value is taken exactly once and never used again.
        let arena = unsafe { ManuallyDrop::take(&mut self.arena) };
        pool::release(arena);
    }
}
