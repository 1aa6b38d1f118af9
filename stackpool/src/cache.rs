//! Per-thread stack caches: the acquire/release fast path, without atomic
//! read-modify-writes or locks.
//!
//! # Layout
//!
//! ```text
//!  thread_local LOCAL: RefCell<LocalCaches>
//!    entries: [ Entry { pool: *PoolInner, tokens,
//!                       stacks: [Vec<slot>; 11 classes], counters, sampling } , ... ]
//! ```
//!
//! One entry per pool the thread has used (several runtimes or NUMA nodes
//! can each have a pool), found by the pool's address. An entry owns
//! `tokens >= 1 + cached` references to its pool (`refs.rs`), so the pool
//! outlives the entry and the address cannot be reused while the entry
//! exists.
//!
//! # Paths
//!
//! * `pop` (acquire hit): find the entry, pop a slot, move one token to the
//!   stack, bump thread-owned counters. Plain loads and stores only.
//! * `release` (drop of a `PooledStack`): push the slot and its token into
//!   the entry. When the class's cache is full, half of it (and the slot)
//!   spill to the shared list in one lock acquisition.
//! * `acquire_slow` (miss): one lock acquisition takes a slot for the caller
//!   and refills up to half the cache from the shared list.
//! * Without a usable cache (the thread is exiting and LOCAL is gone, or a
//!   re-entrant call), stacks go straight to or from the shared lists and
//!   their tokens are added or released individually.
//!
//! # Thread exit
//!
//! `LocalCaches`' destructor returns every cached stack to its pool's
//! shared list and releases the entry's tokens (possibly freeing a closed
//! pool). A `PooledStack` dropped by a later TLS destructor finds LOCAL gone
//! (`try_with` fails) and takes the shared path.

use std::cell::RefCell;
use std::ptr::NonNull;

use crate::class::SizeClass;
use crate::error::PoolError;
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Arc;
use crate::pool::{self, PoolInner};
use crate::refs::BATCH;
use crate::stats::{bump, LocalCounters};

thread_local! {
    static LOCAL: RefCell<LocalCaches> = const { RefCell::new(LocalCaches { entries: Vec::new() }) };
}

/// All cache entries of one thread.
struct LocalCaches {
    entries: Vec<Entry>,
}

/// One thread's cache for one pool.
struct Entry {
    pool: NonNull<PoolInner>,
    /// References to `pool` this entry owns: 1 for itself, 1 per cached
    /// stack, the rest spare (handed to stacks leaving via the slow path).
    tokens: usize,
    cap: usize,
    sample_every: u32,
    /// Acquisitions left until the next sampled one.
    countdown: u32,
    stacks: [Vec<usize>; SizeClass::COUNT],
    /// Per class, the fewest stacks cached since the last decay step: that
    /// many sat unused the whole time (`decay_current_thread`).
    low: [usize; SizeClass::COUNT],
    counters: Arc<LocalCounters>,
}

impl Entry {
    /// Creates an entry for `pool`, taking `1 + BATCH` references.
    ///
    /// The caller must hold a reference to `pool` (a handle or a stack).
    fn new(pool: NonNull<PoolInner>) -> Entry {
        // SAFETY: the caller holds a reference, so the pool is alive.
        let inner = unsafe { pool.as_ref() };
        inner.refs.acquire(1 + BATCH);
        let counters = Arc::new(LocalCounters::default());
        inner.register_counters(counters.clone());
        let sample_every = inner.config.sample_every;
        Entry {
            pool,
            tokens: 1 + BATCH,
            cap: inner.config.thread_cache_per_class,
            sample_every,
            countdown: sample_every,
            stacks: Default::default(),
            low: [0; SizeClass::COUNT],
            counters,
        }
    }

    #[inline]
    fn inner(&self) -> &PoolInner {
        // SAFETY: the entry's own token keeps the pool alive.
        unsafe { self.pool.as_ref() }
    }

    /// Whether this acquisition is sampled (1 in `sample_every`).
    #[inline]
    fn tick_sample(&mut self) -> bool {
        if self.sample_every == 0 {
            return false;
        }
        self.countdown -= 1;
        if self.countdown == 0 {
            self.countdown = self.sample_every;
            true
        } else {
            false
        }
    }

    /// Stacks cached over all classes (slow paths only: the hot paths do
    /// not maintain a running count, so they touch one word fewer).
    fn cached(&self) -> usize {
        self.stacks.iter().map(Vec::len).sum()
    }

    fn spare(&self) -> usize {
        self.tokens - 1 - self.cached()
    }

    /// Ensures `n` spare tokens, taking a batch from the pool if needed.
    fn reserve_tokens(&mut self, n: usize) {
        let spare = self.spare();
        if spare < n {
            let take = BATCH.max(n - spare);
            self.inner().refs.acquire(take);
            self.tokens += take;
        }
    }

    /// Gives surplus spare tokens back, keeping `BATCH` spare. Never the
    /// last reference: the entry keeps `1 + cached + BATCH`.
    fn shed_tokens(&mut self) {
        let spare = self.spare();
        if spare > 2 * BATCH {
            let give = spare - BATCH;
            self.tokens -= give;
            let last = self.inner().refs.release(give);
            debug_assert!(!last, "an entry's own token keeps the pool alive");
        }
    }

    /// Returns every cached stack to the shared lists. Tokens stay with the
    /// entry (as spare).
    fn flush_stacks(&mut self) {
        for class in SizeClass::all() {
            let v = &mut self.stacks[class.index()];
            if !v.is_empty() {
                // SAFETY: the entry's token keeps the pool alive.
                unsafe { self.pool.as_ref() }.put_shared(class, v);
                v.clear();
            }
        }
    }

    /// Flushes the entry and retires its counters; returns its tokens, which
    /// the caller must release.
    fn dismantle(mut self) -> (NonNull<PoolInner>, usize) {
        self.flush_stacks();
        self.inner().retire_counters(&self.counters);
        (self.pool, self.tokens)
    }
}

impl LocalCaches {
    #[inline]
    fn find(&mut self, pool: NonNull<PoolInner>) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.pool == pool)
    }

    fn find_or_create(&mut self, pool: NonNull<PoolInner>) -> &mut Entry {
        let i = match self.entries.iter().position(|e| e.pool == pool) {
            Some(i) => i,
            None => {
                self.entries.push(Entry::new(pool));
                self.entries.len() - 1
            }
        };
        &mut self.entries[i]
    }

    /// Removes the entries of closed pools; returns them for dismantling
    /// outside the borrow.
    fn take_closed(&mut self) -> Vec<Entry> {
        let mut closed = Vec::new();
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].inner().closed.load(Ordering::Relaxed) {
                closed.push(self.entries.swap_remove(i));
            } else {
                i += 1;
            }
        }
        closed
    }

    fn remove(&mut self, pool: NonNull<PoolInner>) -> Option<Entry> {
        let i = self.entries.iter().position(|e| e.pool == pool)?;
        Some(self.entries.swap_remove(i))
    }
}

impl Drop for LocalCaches {
    fn drop(&mut self) {
        for e in self.entries.drain(..) {
            let (pool, tokens) = e.dismantle();
            // SAFETY: the entry owned `tokens` references and is gone.
            unsafe { pool::release_refs(pool, tokens) };
        }
    }
}

/// Dismantles entries and releases their tokens.
fn dismantle_all(entries: Vec<Entry>) {
    for e in entries {
        let (pool, tokens) = e.dismantle();
        // SAFETY: the entry owned `tokens` references and is gone.
        unsafe { pool::release_refs(pool, tokens) };
    }
}

/// Acquire fast path: a slot of `class` from this thread's cache. Returns
/// `(slot, sampled)`; the slot carries one of the entry's tokens.
#[inline(always)]
pub(crate) fn pop(pool: NonNull<PoolInner>, class: SizeClass) -> Option<(usize, bool)> {
    LOCAL
        .try_with(|l| {
            let mut l = l.try_borrow_mut().ok()?;
            let e = l.find(pool)?;
            let v = &mut e.stacks[class.index()];
            let slot = v.pop()?;
            let low = &mut e.low[class.index()];
            *low = (*low).min(v.len());
            e.tokens -= 1;
            bump(&e.counters.acquires);
            bump(&e.counters.local_hits);
            Some((slot, e.tick_sample()))
        })
        .ok()
        .flatten()
}

/// Acquire slow path: from the shared state, refilling this thread's cache.
/// The caller holds a handle (so the pool is alive).
#[cold]
pub(crate) fn acquire_slow(
    pool: NonNull<PoolInner>,
    class: SizeClass,
) -> Result<(usize, bool), PoolError> {
    let res = LOCAL.try_with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            return None;
        };
        let closed = l.take_closed();
        let e = l.find_or_create(pool);
        let want = e.cap / 2;
        e.low[class.index()] = 0; // the cache ran dry
        let v = &mut e.stacks[class.index()];
        if v.capacity() == 0 && e.cap > 0 {
            // +1: a release may push one over the bound before spilling.
            v.reserve_exact(e.cap + 1);
        }
        let extra = want.saturating_sub(v.len());
        e.reserve_tokens(1 + extra);
        // SAFETY: the entry's token keeps the pool alive.
        let inner = unsafe { e.pool.as_ref() };
        let out = inner
            .take_shared(class, extra, &mut e.stacks[class.index()])
            .map(|slot| {
                e.tokens -= 1;
                bump(&e.counters.acquires);
                (slot, e.tick_sample())
            });
        Some((out, closed))
    });
    match res {
        Ok(Some((out, closed))) => {
            dismantle_all(closed);
            out
        }
        _ => {
            // No usable cache: take one slot and one reference directly.
            // SAFETY: the caller's handle keeps the pool alive.
            let inner = unsafe { pool.as_ref() };
            let slot = inner.take_shared(class, 0, &mut Vec::new())?;
            inner.refs.acquire(1);
            inner.count_orphan_acquire();
            Ok((slot, false))
        }
    }
}

/// Release path: returns `slot` of `class` and the token it carries.
///
/// The caller gives up its token: `pool` may be freed by this call.
#[inline(always)]
pub(crate) fn release(pool: NonNull<PoolInner>, class: SizeClass, slot: usize) {
    let cached = LOCAL
        .try_with(|l| {
            let Ok(mut l) = l.try_borrow_mut() else {
                return false;
            };
            // SAFETY: the stack's token keeps the pool alive.
            if unsafe { pool.as_ref() }.closed.load(Ordering::Relaxed) {
                return false;
            }
            let Some(e) = l.find(pool) else {
                return false;
            };
            e.tokens += 1;
            bump(&e.counters.releases);
            let cap = e.cap;
            let v = &mut e.stacks[class.index()];
            if v.len() < cap {
                v.push(slot);
            } else {
                spill(e, class, slot);
            }
            true
        })
        .unwrap_or(false);
    if !cached {
        release_slow(pool, class, slot);
    }
}

/// Release without a cache entry yet, for a closed pool, or without a
/// usable cache (thread exit, re-entrance).
#[cold]
#[inline(never)]
fn release_slow(pool: NonNull<PoolInner>, class: SizeClass, slot: usize) {
    let done = LOCAL
        .try_with(|l| {
            let Ok(mut l) = l.try_borrow_mut() else {
                return Release::Orphan(None);
            };
            // SAFETY: the stack's token keeps the pool alive.
            if unsafe { pool.as_ref() }.closed.load(Ordering::Relaxed) {
                return Release::Orphan(l.remove(pool).map(Box::new));
            }
            let e = l.find_or_create(pool);
            e.tokens += 1;
            bump(&e.counters.releases);
            let cap = e.cap;
            let v = &mut e.stacks[class.index()];
            if v.len() < cap {
                if v.capacity() == 0 {
                    v.reserve_exact(cap + 1);
                }
                v.push(slot);
            } else {
                spill(e, class, slot);
            }
            Release::Cached
        })
        .unwrap_or(Release::Orphan(None));
    if let Release::Orphan(entry) = done {
        // SAFETY: the stack's token keeps the pool alive.
        let inner = unsafe { pool.as_ref() };
        inner.put_shared(class, &[slot]);
        inner.count_orphan_release();
        let mut tokens = 1;
        if let Some(e) = entry {
            let (_, t) = (*e).dismantle();
            tokens += t;
        }
        // SAFETY: we own the stack's token and the removed entry's tokens.
        unsafe { pool::release_refs(pool, tokens) };
    }
}

enum Release {
    Cached,
    /// Go to the shared list; with the entry to dismantle if the pool closed.
    Orphan(Option<Box<Entry>>),
}

/// The class's cache is full: move its upper half plus `slot` to the shared
/// list in one go. The moved stacks' tokens become spare.
#[cold]
fn spill(e: &mut Entry, class: SizeClass, slot: usize) {
    let keep = e.cap / 2;
    let v = &mut e.stacks[class.index()];
    // The vector may grow once here (to cap + 1); its capacity then stays,
    // so later spills do not allocate. With cap == 0 it holds just `slot`.
    v.push(slot);
    // SAFETY: the entry's token keeps the pool alive.
    unsafe { e.pool.as_ref() }.put_shared(class, &v[keep..]);
    v.truncate(keep);
    let low = &mut e.low[class.index()];
    *low = (*low).min(keep);
    e.shed_tokens();
}

/// One decay step of this thread's cache of `pool` (see
/// `StackPool::decay`): of each class, half of the stacks that stayed
/// cached since the previous step, the longest-cached first, give their
/// pages back. Returns whether this thread still caches stacks of `pool`.
pub(crate) fn decay_current_thread(pool: NonNull<PoolInner>) -> bool {
    LOCAL
        .try_with(|l| {
            let Ok(mut l) = l.try_borrow_mut() else {
                return false;
            };
            let Some(e) = l.find(pool) else {
                return false;
            };
            for class in SizeClass::all() {
                let i = class.index();
                let n = e.low[i].div_ceil(2);
                if n > 0 {
                    // SAFETY: the entry's token keeps the pool alive.
                    unsafe { e.pool.as_ref() }.empty_out(class, &e.stacks[i][..n]);
                    e.stacks[i].drain(..n);
                }
                e.low[i] = e.stacks[i].len();
            }
            e.shed_tokens();
            e.cached() > 0
        })
        .unwrap_or(false)
}

/// The last handle of `pool` is being dropped on this thread: dismantle this
/// thread's entry and return its token count (the caller releases them).
pub(crate) fn forget_pool(pool: NonNull<PoolInner>) -> usize {
    let entry = LOCAL
        .try_with(|l| l.try_borrow_mut().ok().and_then(|mut l| l.remove(pool)))
        .ok()
        .flatten();
    entry.map_or(0, |e| e.dismantle().1)
}

/// `trim` on this thread: returns this thread's cached stacks of `pool` to
/// the shared lists and sheds spare tokens.
pub(crate) fn flush_current_thread(pool: NonNull<PoolInner>) {
    let _ = LOCAL.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            if let Some(e) = l.find(pool) {
                e.flush_stacks();
                e.shed_tokens();
            }
        }
    });
}
