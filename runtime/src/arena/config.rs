//! Process-wide arena settings: default byte limit, retain cap, pool size.
//!
//! Three relaxed atomics, read once per scope (never per allocation) and
//! written rarely, usually once at startup. A change applies to scopes that
//! begin after it; arenas already pooled are trimmed lazily (at their next
//! checkout or release).

use crate::loom::sync::atomic::{AtomicUsize, Ordering};

/// Default byte limit of a request's arena: 4 MiB.
///
/// Generous for a chat message or an HTTP request, small enough that a
/// runaway request fails with an [`ArenaError`](super::ArenaError) long before
/// the process is at risk.
pub const DEFAULT_LIMIT: usize = 4 << 20;

/// Default retain cap: 64 KiB of chunk memory kept per pooled arena.
pub const DEFAULT_RETAIN_CAP: usize = 64 << 10;

/// Default number of idle arenas each thread (worker) keeps: 64.
pub const DEFAULT_MAX_POOLED: usize = 64;

struct Config {
    limit: AtomicUsize,
    retain_cap: AtomicUsize,
    max_pooled: AtomicUsize,
}

macro_rules! initial_config {
    () => {
        Config {
            limit: AtomicUsize::new(DEFAULT_LIMIT),
            retain_cap: AtomicUsize::new(DEFAULT_RETAIN_CAP),
            max_pooled: AtomicUsize::new(DEFAULT_MAX_POOLED),
        }
    };
}

#[cfg(not(pinstack_loom))]
fn config() -> &'static Config {
    static CONFIG: Config = initial_config!();
    &CONFIG
}

// loom's atomics cannot be built in a `static` initialiser.
#[cfg(pinstack_loom)]
fn config() -> &'static Config {
    loom::lazy_static! {
        static ref CONFIG: Config = initial_config!();
    }
    &CONFIG
}

/// Sets the byte limit of arenas handed out by [`with_arena`](super::with_arena)
/// and [`RequestArena::new`](super::RequestArena::new) from now on (default
/// [`DEFAULT_LIMIT`]).
///
/// The limit counts the arena's chunk memory (what
/// [`Arena::chunk_bytes`](super::Arena::chunk_bytes) reports), so a request can
/// use a little less than the limit for its own data: bumpalo grows chunks by
/// doubling and, near the limit, falls back to the largest chunk that still
/// fits. An allocation beyond it fails with a typed error from the `try_`
/// methods and panics from the plain ones.
///
/// # Examples
///
/// ```
/// use pinstack::arena;
///
/// arena::set_default_limit(256 * 1024);
/// assert_eq!(arena::default_limit(), 256 * 1024);
/// arena::with_arena(|a| assert_eq!(a.limit(), 256 * 1024));
/// # arena::set_default_limit(arena::DEFAULT_LIMIT);
/// ```
pub fn set_default_limit(bytes: usize) {
    config().limit.store(bytes, Ordering::Relaxed);
}

/// The byte limit new scopes get; see [`set_default_limit`].
pub fn default_limit() -> usize {
    config().limit.load(Ordering::Relaxed)
}

/// Sets how much chunk memory a reset arena may keep to be pooled (default
/// [`DEFAULT_RETAIN_CAP`]). An arena that still holds more after its reset
/// (its newest chunk is bigger) goes back to the global allocator instead, so
/// one huge request does not pin memory forever. `0` disables reuse.
pub fn set_retain_cap(bytes: usize) {
    config().retain_cap.store(bytes, Ordering::Relaxed);
}

/// The retain cap; see [`set_retain_cap`].
pub fn retain_cap() -> usize {
    config().retain_cap.load(Ordering::Relaxed)
}

/// Sets how many idle arenas each thread's pool keeps (default
/// [`DEFAULT_MAX_POOLED`]). Arenas released to a full pool are freed. More
/// scopes than this can be open at once on one worker (coroutines suspended
/// inside `with_arena`); the extra arenas are simply created and freed.
pub fn set_max_pooled(arenas: usize) {
    config().max_pooled.store(arenas, Ordering::Relaxed);
}

/// The per-thread pool size; see [`set_max_pooled`].
pub fn max_pooled() -> usize {
    config().max_pooled.load(Ordering::Relaxed)
}
