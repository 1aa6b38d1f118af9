//! Arena statistics: per-thread counters, summed on read.
//!
//! The allocation path counts nothing. Each thread's pool keeps plain
//! counters (`local`) and, when a scope begins or ends, *publishes* them into
//! its own block of atomics with relaxed stores (one writer per block: no
//! read-modify-write, no shared cache line between workers). [`stats`] locks
//! the registry of blocks and sums them; a thread that exits folds its final
//! counts into `retired` and leaves the registry under the same lock, so
//! nothing is lost or counted twice.
//!
//! ```text
//!   worker 0: Counters { local } --store--> Arc<Published> --+
//!   worker 1: Counters { local } --store--> Arc<Published> --+--> REGISTRY { live: [..], retired }
//!   exited threads --------------- fold at thread exit ------+        ^ stats() sums under the lock
//! ```
//!
//! A read is a sum of counters published at slightly different instants, so
//! gauges may be off by the scopes in flight while it runs; totals are exact
//! once the threads are quiet.

use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::loom::sync::{Arc, Mutex};

/// A snapshot of the arena counters.
///
/// [`stats`] sums all threads of the process; [`thread_stats`] reads the
/// calling thread (on a runtime worker: that worker's pool).
///
/// # Examples
///
/// ```
/// use pinstack::arena;
///
/// arena::with_arena(|a| {
///     a.alloc_slice_fill_copy(100, 0u8);
///     assert_eq!(arena::thread_stats().in_use, 1);
/// });
/// let s = arena::thread_stats();
/// assert_eq!(s.in_use, 0);
/// assert_eq!(s.resets, 1);
/// assert!(s.bytes_allocated >= 100);
/// assert!(arena::stats().resets >= 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArenaStats {
    /// Arenas checked out right now (open scopes).
    pub in_use: u64,
    /// Idle arenas kept in the pools.
    pub pooled: u64,
    /// Chunk bytes held by the idle pooled arenas.
    pub bytes_retained: u64,
    /// Arenas created because the pool had none to reuse.
    pub created: u64,
    /// Scopes ended: arenas reset (or freed) after a request.
    pub resets: u64,
    /// Bytes in use in the arenas when their scopes ended, padding included.
    /// (An arena collection dropped while it was the newest allocation gives
    /// its bytes back before that, as bumpalo rewinds the newest allocation.)
    pub bytes_allocated: u64,
    /// Arenas freed instead of pooled because they held more than the retain
    /// cap, or more than a new scope's smaller limit.
    pub released_over_cap: u64,
    /// Arenas freed instead of pooled because the pool was full.
    pub released_pool_full: u64,
    /// Allocations refused by an arena's byte limit.
    pub limit_hits: u64,
}

impl ArenaStats {
    const ZERO: ArenaStats = ArenaStats {
        in_use: 0,
        pooled: 0,
        bytes_retained: 0,
        created: 0,
        resets: 0,
        bytes_allocated: 0,
        released_over_cap: 0,
        released_pool_full: 0,
        limit_hits: 0,
    };

    fn add(&mut self, other: &ArenaStats) {
        self.in_use = self.in_use.wrapping_add(other.in_use);
        self.pooled = self.pooled.wrapping_add(other.pooled);
        self.bytes_retained = self.bytes_retained.wrapping_add(other.bytes_retained);
        self.created = self.created.wrapping_add(other.created);
        self.resets = self.resets.wrapping_add(other.resets);
        self.bytes_allocated = self.bytes_allocated.wrapping_add(other.bytes_allocated);
        self.released_over_cap = self.released_over_cap.wrapping_add(other.released_over_cap);
        self.released_pool_full = self
            .released_pool_full
            .wrapping_add(other.released_pool_full);
        self.limit_hits = self.limit_hits.wrapping_add(other.limit_hits);
    }
}

/// One thread's published counters: written by that thread only.
#[derive(Debug, Default)]
struct Published {
    in_use: AtomicU64,
    pooled: AtomicU64,
    bytes_retained: AtomicU64,
    created: AtomicU64,
    resets: AtomicU64,
    bytes_allocated: AtomicU64,
    released_over_cap: AtomicU64,
    released_pool_full: AtomicU64,
    limit_hits: AtomicU64,
}

impl Published {
    fn store(&self, s: &ArenaStats) {
        let r = Ordering::Relaxed;
        self.in_use.store(s.in_use, r);
        self.pooled.store(s.pooled, r);
        self.bytes_retained.store(s.bytes_retained, r);
        self.created.store(s.created, r);
        self.resets.store(s.resets, r);
        self.bytes_allocated.store(s.bytes_allocated, r);
        self.released_over_cap.store(s.released_over_cap, r);
        self.released_pool_full.store(s.released_pool_full, r);
        self.limit_hits.store(s.limit_hits, r);
    }

    fn load(&self) -> ArenaStats {
        let r = Ordering::Relaxed;
        ArenaStats {
            in_use: self.in_use.load(r),
            pooled: self.pooled.load(r),
            bytes_retained: self.bytes_retained.load(r),
            created: self.created.load(r),
            resets: self.resets.load(r),
            bytes_allocated: self.bytes_allocated.load(r),
            released_over_cap: self.released_over_cap.load(r),
            released_pool_full: self.released_pool_full.load(r),
            limit_hits: self.limit_hits.load(r),
        }
    }
}

struct Registry {
    live: Vec<Arc<Published>>,
    retired: ArenaStats,
}

macro_rules! empty_registry {
    () => {
        Mutex::new(Registry {
            live: Vec::new(),
            retired: ArenaStats::ZERO,
        })
    };
}

#[cfg(not(pinstack_loom))]
fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: Mutex<Registry> = empty_registry!();
    &REGISTRY
}

// loom's mutex cannot be built in a `static` initialiser.
#[cfg(pinstack_loom)]
fn registry() -> &'static Mutex<Registry> {
    loom::lazy_static! {
        static ref REGISTRY: Mutex<Registry> = empty_registry!();
    }
    &REGISTRY
}

/// The process-wide arena counters: every thread's pool, including threads
/// that have exited.
pub fn stats() -> ArenaStats {
    // No code that can panic runs under this lock; a poisoned lock still
    // holds consistent counters.
    let registry = registry()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut total = registry.retired;
    for published in &registry.live {
        total.add(&published.load());
    }
    total
}

/// The calling thread's arena counters (on a runtime worker: its pool's).
pub fn thread_stats() -> ArenaStats {
    super::pool::thread_counters()
}

/// A thread's counters: plain fields it updates, published to its block.
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) local: ArenaStats,
    published: Option<Arc<Published>>,
}

impl Counters {
    pub(crate) const fn new() -> Self {
        Counters {
            local: ArenaStats::ZERO,
            published: None,
        }
    }

    /// Makes `local` visible to [`stats`]: relaxed stores into this thread's
    /// block, registering the block on first use.
    pub(crate) fn publish(&mut self) {
        let published = self.published.get_or_insert_with(|| {
            let block = Arc::new(Published::default());
            registry()
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .live
                .push(Arc::clone(&block));
            block
        });
        published.store(&self.local);
    }
}

impl Drop for Counters {
    /// Thread exit: fold the final counts into `retired` and leave the
    /// registry in one critical section.
    fn drop(&mut self) {
        if let Some(published) = self.published.take() {
            let mut registry = registry()
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let local = self.local;
            registry.retired.add(&local);
            registry.live.retain(|p| !Arc::ptr_eq(p, &published));
        }
    }
}
