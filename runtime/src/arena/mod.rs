//! Per-request arenas: bump allocation, reset (not freed) when the request ends.
//!
//! A chat server allocates many small, short-lived objects for every message.
//! Instead of a `malloc`/`free` pair each, a request takes an [`Arena`] from
//! its worker's pool, bump-allocates into it, and hands the whole arena back
//! at the end: one pointer rewind, and the chunks are warm for the next
//! request on the same worker.
//!
//! ```
//! use pinstack::arena;
//! use std::fmt::Write;
//!
//! fn handle(body: &str) -> usize {
//!     arena::with_arena(|a| {
//!         let mut words = a.vec_with_capacity(16);
//!         words.extend(body.split(' ').map(|w| a.alloc_str(w).len()));
//!         let mut reply = a.string_with_capacity(64);
//!         write!(reply, "{} words, longest {}", words.len(), words.iter().max().unwrap_or(&0))
//!             .unwrap();
//!         reply.len()
//!     })
//! }
//!
//! assert_eq!(handle("hello from pinstack"), 18);
//! ```
//!
//! # Scopes
//!
//! [`with_arena`] (closure) and [`RequestArena`] (RAII guard) open a scope;
//! [`with_arena_limit`] and [`RequestArena::with_limit`] set its byte limit.
//! Everything allocated in the scope borrows the arena, so the compiler
//! rejects any value that would outlive it. Nested scopes, and coroutines
//! suspended inside a scope while others on the same worker open theirs, each
//! get their own arena.
//!
//! # The pool, per worker
//!
//! Coroutines never leave the worker thread they started on, so the pool is a
//! `thread_local!`: checkout and release touch no lock and no shared cache
//! line. With NUMA policy `Bind`, each worker thread's memory is bound to its
//! node, so the chunks its arenas allocate land on that node, and they are
//! only ever reused by that worker. Plain (non-runtime) threads get a pool of
//! their own the same way.
//!
//! Reset rules, applied when a scope ends:
//!
//! 1. destructors registered with [`Arena::alloc_with_drop`] run, newest
//!    first;
//! 2. the arena is reset: every chunk but the newest (largest) goes back to
//!    the allocator and the newest is rewound;
//! 3. if that chunk is larger than the [retain cap](set_retain_cap) (default
//!    64 KiB), the arena is freed, so one huge request does not pin memory;
//! 4. otherwise the arena is pooled, up to [`max_pooled`] per thread (default
//!    64); beyond that it is freed.
//!
//! # Limits
//!
//! Every scope has a byte limit ([`set_default_limit`], default 4 MiB) on the
//! arena's chunk memory. Past it, the `try_` methods return an
//! [`ArenaError`] (`is_limit_exceeded()`), the plain methods panic with the
//! same actionable message, and [`stats()`] counts a limit hit: a runaway
//! request becomes an error, not an out-of-memory kill.
//!
//! # Destructors
//!
//! Like bumpalo, [`Arena::alloc`] and the slice methods never run
//! destructors: prefer types without `Drop`. [`Arena::alloc_with_drop`] runs
//! them at scope end. [`ArenaVec`] drops its elements when it is dropped.
//!
//! # Statistics
//!
//! [`stats()`] sums the counters of every thread; [`thread_stats`] reads the
//! calling thread's. Nothing is counted per allocation: each scope publishes
//! its thread's counters when it begins and ends.

mod alloc;
mod collections;
mod config;
mod drop_list;
mod error;
mod pool;
mod scope;
mod stats;

#[cfg(all(test, not(pinstack_loom)))]
mod tests;

pub use alloc::Arena;
pub use collections::{ArenaString, ArenaVec, MIN_STRING_CAPACITY};
pub use config::{
    default_limit, max_pooled, retain_cap, set_default_limit, set_max_pooled, set_retain_cap,
    DEFAULT_LIMIT, DEFAULT_MAX_POOLED, DEFAULT_RETAIN_CAP,
};
pub use error::ArenaError;
pub use scope::{with_arena, with_arena_limit, RequestArena};
pub use stats::{stats, thread_stats, ArenaStats};

#[doc(inline)]
pub use crate::arena_format;

/// Formats into an [`ArenaString`] in the given arena, like `format!`:
/// `arena_format!(arena, "{} {}", a, b)`.
///
/// `arena` is anything with an [`Arena::format`] method by auto-deref: an
/// `&Arena` or a [`RequestArena`]. For a fallible form, call
/// `arena.try_format(format_args!(..))`.
///
/// # Panics
///
/// Panics with an [`ArenaError`] message when the arena's limit refuses the
/// memory (see [`Arena::format`]).
///
/// # Examples
///
/// ```
/// pinstack::arena::with_arena(|a| {
///     let user = "ada";
///     let s = pinstack::arena_format!(a, "{user} joined room {}", 7);
///     assert_eq!(s, "ada joined room 7");
/// });
/// ```
#[macro_export]
macro_rules! arena_format {
    ($arena:expr, $($arg:tt)*) => {
        ($arena).format(::core::format_args!($($arg)*))
    };
}
