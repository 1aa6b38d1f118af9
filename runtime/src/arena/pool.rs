//! The per-worker pool of idle arenas.
//!
//! A coroutine never leaves the worker thread it started on (DESIGN.md,
//! "Scheduling"), so a `thread_local!` pool *is* the worker's pool: no locks
//! and no atomics between checkout and release. Under NUMA `Bind` the worker
//! thread's memory policy binds the chunks it allocates to its node, and since
//! they are only ever reused on that thread they stay node-local.
//!
//! # Arena lifecycle and reset rules
//!
//! ```text
//!            checkout(limit)                         release
//!   pooled ─────────────────► in use (one scope) ─────────────────► pooled
//!     ▲   pop newest; if it holds more than      1. in_use -= 1, publish
//!     │   `limit`, free it and make a fresh one  2. run alloc_with_drop destructors
//!     │   set_allocation_limit(limit)            3. count used bytes, reset: free all
//!     │   in_use += 1, publish                      chunks but the newest, rewind it
//!     │                                          4. newest chunk > retain cap → free
//!     └──────────────────────────────────────────5. pool full → free, else push
//! ```
//!
//! Several scopes can be open at once on one thread (nested scopes, and
//! coroutines that suspend inside a scope while others run): each checkout
//! takes its own arena, so they never share one. The pool's `RefCell` is
//! borrowed only inside `checkout`/`release`, never while user code runs
//! (destructors run before the borrow), so re-entrant use from a destructor
//! is fine. If the thread-local is unavailable (a scope released from another
//! thread-local's destructor during thread exit), the arena is simply created
//! or freed without the pool.

use super::alloc::Arena;
use super::config;
use super::stats::{ArenaStats, Counters};
use std::cell::RefCell;

/// One thread's idle arenas and counters.
struct Pool {
    /// Idle arenas, reset; the newest released is reused first (warm cache).
    idle: Vec<Arena>,
    counters: Counters,
}

impl Pool {
    const fn new() -> Self {
        Pool {
            idle: Vec::new(),
            counters: Counters::new(),
        }
    }

    fn checkout(&mut self, limit: usize) -> Arena {
        let local = &mut self.counters.local;
        let mut arena = match self.idle.pop() {
            Some(arena) => {
                local.pooled -= 1;
                local.bytes_retained -= arena.chunk_bytes() as u64;
                if arena.chunk_bytes() <= limit {
                    arena
                } else {
                    // Its retained chunk alone would let the scope exceed its
                    // limit unchecked (bumpalo checks only at chunk growth).
                    local.released_over_cap += 1;
                    local.created += 1;
                    drop(arena);
                    Arena::new(limit)
                }
            }
            None => {
                local.created += 1;
                Arena::new(limit)
            }
        };
        arena.set_limit(limit);
        local.in_use += 1;
        self.counters.publish();
        arena
    }

    /// Step 1 of the release: the scope is over.
    fn end_scope(&mut self) {
        // Saturating: an arena made outside the pool was never counted.
        self.counters.local.in_use = self.counters.local.in_use.saturating_sub(1);
    }

    /// Steps 3 to 5 of the release (the caller did 1 and 2).
    fn release(&mut self, mut arena: Arena) {
        let local = &mut self.counters.local;
        local.resets += 1;
        local.bytes_allocated += arena.used_bytes() as u64;
        local.limit_hits += arena.take_limit_hits();
        arena.reset();
        let retained = arena.chunk_bytes();
        if retained > config::retain_cap() {
            local.released_over_cap += 1;
        } else if self.idle.len() >= config::max_pooled() {
            local.released_pool_full += 1;
        } else {
            local.pooled += 1;
            local.bytes_retained += retained as u64;
            self.idle.push(arena);
        }
        self.counters.publish();
    }
}

impl Drop for Pool {
    /// Thread exit: free the idle arenas, then `counters` retires itself.
    fn drop(&mut self) {
        self.idle.clear();
        self.counters.local.pooled = 0;
        self.counters.local.bytes_retained = 0;
    }
}

#[cfg(not(pinstack_loom))]
std::thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool::new()) };
}

#[cfg(pinstack_loom)]
loom::thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::new());
}

/// Takes an arena for a new scope with byte limit `limit`.
pub(crate) fn checkout(limit: usize) -> Arena {
    POOL.try_with(|pool| match pool.try_borrow_mut() {
        Ok(mut pool) => Some(pool.checkout(limit)),
        Err(_) => None,
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| Arena::new(limit))
}

/// Ends a scope: runs destructors, resets the arena and pools or frees it.
pub(crate) fn release(mut arena: Arena) {
    if arena.has_destructors() {
        // 1. User code is about to run: end the scope in the counters first,
        //    so a panicking destructor cannot leave it counted as in use.
        with_pool(|pool| {
            pool.end_scope();
            pool.counters.publish();
        });
        // 2. With the pool not borrowed. If a destructor panics, `arena`
        //    drops while unwinding: the rest run and its chunks are freed.
        arena.run_drops();
        // Without a pool (thread exit), the arena is simply freed.
        drop(with_pool_or_return(arena, |pool, arena| {
            pool.release(arena)
        }));
    } else {
        drop(with_pool_or_return(arena, |pool, arena| {
            pool.end_scope();
            pool.release(arena);
        }));
    }
}

/// Runs `f` on this thread's pool, if it is still there and not borrowed.
fn with_pool(f: impl FnOnce(&mut Pool)) {
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            f(&mut pool);
        }
    });
}

/// Runs `f` on this thread's pool with `arena`, or hands `arena` back when the
/// pool is gone (thread exit) or busy.
fn with_pool_or_return(arena: Arena, f: impl FnOnce(&mut Pool, Arena)) -> Option<Arena> {
    let mut arena = Some(arena);
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            if let Some(arena) = arena.take() {
                f(&mut pool, arena);
            }
        }
    });
    arena
}

/// The calling thread's counters (zero if its pool is gone).
pub(crate) fn thread_counters() -> ArenaStats {
    POOL.try_with(|pool| {
        pool.try_borrow()
            .map(|p| p.counters.local)
            .unwrap_or_default()
    })
    .unwrap_or_default()
}
