//! `StackPool`: the handle users hold, and `PoolInner`, the shared state
//! behind it.
//!
//! # Who touches what
//!
//! 1. `config` is immutable after `build()`; anyone with a reference reads it.
//! 2. `classes[i]` (free/empty lists, slabs, class counters) is touched only
//!    under its mutex, on slow paths: cache misses and spills, thread exit,
//!    `trim`, `stats`, and when the pool is freed.
//! 3. Thread caches (`cache.rs`) are touched only by their own thread.
//! 4. `refs` (see `refs.rs`) decides when `PoolInner` is freed: whoever
//!    releases the last reference calls [`free`], which unmaps every slab.
//!    By then no stack is checked out and no thread cache holds one.
//! 5. `closed` is set once, when the last `StackPool` handle is dropped;
//!    thread caches that notice it give their stacks and tokens back, so
//!    the pool is freed as soon as the last stack returns.
//!
//! # Shutdown order
//!
//! Last handle dropped → `closed = true` → the dropping thread flushes its
//! own cache entry → stacks still checked out keep the pool alive; each one
//! released afterwards bypasses the caches → the last reference frees the
//! pool: slabs are unregistered from the overflow registry, then unmapped.

use std::fmt;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use crate::builder::{Config, GuardMode, PoolBuilder};
use crate::cache;
use crate::class::SizeClass;
use crate::error::PoolError;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::loom::sync::{Arc, Mutex, MutexGuard};
use crate::refs::RefCount;
use crate::slab::{ClassShared, PoolTally, Source};
use crate::stack::PooledStack;
use crate::stats::{ClassStats, LocalCounters, PoolStats};
use crate::sys;

/// The pool's shared state. Freed by [`free`] when `refs` reaches zero.
pub(crate) struct PoolInner {
    pub(crate) config: Config,
    pub(crate) refs: RefCount,
    pub(crate) closed: AtomicBool,
    classes: [Mutex<ClassShared>; SizeClass::COUNT],
    tally: PoolTally,
    /// Counters of live thread-cache entries; summed by `stats`.
    counters: Mutex<Vec<Arc<LocalCounters>>>,
    /// Counters folded in from entries that went away.
    retired: LocalCounters,
    /// Acquires and releases done without a thread cache (during thread
    /// exit, or re-entrantly).
    orphan_acquires: AtomicU64,
    orphan_releases: AtomicU64,
    /// When the shared lists last decayed (`decay_shared`).
    last_decay: Mutex<Option<Instant>>,
}

impl fmt::Debug for PoolInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolInner")
            .field("config", &self.config)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it:
/// every critical section of this crate leaves the lists consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PoolInner {
    #[inline]
    fn class(&self, class: SizeClass) -> MutexGuard<'_, ClassShared> {
        lock(&self.classes[class.index()])
    }

    /// Hands out one slot of `class` from the shared state, and moves up to
    /// `extra` more from the shared free list into `into` (a thread cache).
    pub(crate) fn take_shared(
        &self,
        class: SizeClass,
        extra: usize,
        into: &mut Vec<usize>,
    ) -> Result<usize, PoolError> {
        let mut shared = self.class(class);
        let (slot, source) = shared.take_one(class, &self.config, &self.tally)?;
        if source == Source::Shared && extra > 0 {
            let n = extra.min(shared.free.len());
            let from = shared.free.len() - n;
            into.extend(shared.free.drain(from..));
            shared.free_low = shared.free_low.min(from);
        }
        Ok(slot)
    }

    /// Returns stacks to the shared free list of `class`. Beyond its bound,
    /// their pages go back to the OS and they join the `empty` list.
    pub(crate) fn put_shared(&self, class: SizeClass, slots: &[usize]) {
        let cap = self.config.shared_cache_per_class;
        let rest = {
            let mut shared = self.class(class);
            let room = cap.saturating_sub(shared.free.len()).min(slots.len());
            shared.free.extend_from_slice(&slots[..room]);
            &slots[room..]
        };
        if !rest.is_empty() {
            self.empty_out(class, rest);
        }
    }

    /// One decay step of the shared lists, at most once per `period` for
    /// the whole pool: of each class, half of the stacks that stayed in the
    /// list since the previous step (its low-water mark) give their pages
    /// back, the longest-cached first. Returns whether stacks with pages
    /// are still in the lists.
    pub(crate) fn decay_shared(&self, period: Duration) -> bool {
        let now = Instant::now();
        {
            let mut last = lock(&self.last_decay);
            if last.is_some_and(|t| now.saturating_duration_since(t) < period) {
                return self.classes.iter().any(|c| !lock(c).free.is_empty());
            }
            *last = Some(now);
        }
        let mut left = false;
        for class in SizeClass::all() {
            let unused = {
                let mut shared = self.class(class);
                let n = shared.free_low.div_ceil(2);
                // The bottom of the list is what was released longest ago.
                let unused: Vec<usize> = shared.free.drain(..n).collect();
                shared.free_low = shared.free.len();
                left |= !shared.free.is_empty();
                unused
            };
            if !unused.is_empty() {
                self.empty_out(class, &unused);
            }
        }
        left
    }

    /// Gives the pages of `slots` back to the OS (outside any lock), then
    /// files them as empty.
    pub(crate) fn empty_out(&self, class: SizeClass, slots: &[usize]) {
        let (page, usable) = (self.config.page, self.config.usable(class));
        // SAFETY: every slot is a carved slot of this pool that was returned
        // (no PooledStack refers to it), so its usable bytes are dead.
        unsafe { sys::dont_need_many(slots.iter().map(|&slot| (slot + page, usable))) };
        let mut shared = self.class(class);
        shared.empty.extend_from_slice(slots);
        shared.live -= slots.len();
        shared.counters.released_to_os += slots.len() as u64;
        drop(shared);
        self.tally.unreserve_live(slots.len());
    }

    /// Records the high-water mark of a sampled stack.
    pub(crate) fn record_sample(&self, class: SizeClass, touched: usize) {
        let mut shared = self.class(class);
        shared.counters.samples += 1;
        shared.counters.sampled_touched_sum += touched as u64;
        shared.counters.sampled_touched_max = shared.counters.sampled_touched_max.max(touched);
    }

    /// Registers a thread-cache entry's counters for `stats`.
    pub(crate) fn register_counters(&self, c: Arc<LocalCounters>) {
        lock(&self.counters).push(c);
    }

    /// Folds a departing entry's counters into `retired` and forgets them.
    pub(crate) fn retire_counters(&self, c: &Arc<LocalCounters>) {
        let mut list = lock(&self.counters);
        if let Some(i) = list.iter().position(|x| Arc::ptr_eq(x, c)) {
            list.swap_remove(i);
        }
        for (from, to) in [
            (&c.acquires, &self.retired.acquires),
            (&c.local_hits, &self.retired.local_hits),
            (&c.releases, &self.retired.releases),
        ] {
            to.fetch_add(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    pub(crate) fn count_orphan_acquire(&self) {
        self.orphan_acquires.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_orphan_release(&self) {
        self.orphan_releases.fetch_add(1, Ordering::Relaxed);
    }

    /// Moves every stack of the shared free lists to the empty lists, giving
    /// their pages back. Takes each list out under its lock and does the
    /// syscalls unlocked, so other threads' slow paths are not held up.
    fn trim_shared(&self) {
        for class in SizeClass::all() {
            let taken = std::mem::take(&mut self.class(class).free);
            if !taken.is_empty() {
                self.empty_out(class, &taken);
            }
        }
    }
}

/// Frees the pool: unmaps all slabs and drops `PoolInner`.
///
/// # Safety
///
/// `inner` must come from `StackPool::from_config`, and the caller must have
/// released its last reference (`RefCount::release` returned `true`), so no
/// handle, stack or cache entry refers to it any more.
pub(crate) unsafe fn free(inner: NonNull<PoolInner>) {
    // SAFETY: the pointer came from Box::into_raw and, per the contract,
    // nothing else refers to it.
    let mut boxed = unsafe { Box::from_raw(inner.as_ptr()) };
    let PoolInner { classes, tally, .. } = &mut *boxed;
    for c in classes.iter() {
        lock(c).unmap_all(tally);
    }
}

/// Releases `n` references to `inner`, freeing the pool on the last one.
///
/// # Safety
///
/// The caller must own `n` references to `inner` and not use them afterwards.
pub(crate) unsafe fn release_refs(inner: NonNull<PoolInner>, n: usize) {
    // SAFETY: the caller owns `n >= 0` references, so the pool is alive.
    if unsafe { inner.as_ref() }.refs.release(n) {
        // SAFETY: that was the last reference.
        unsafe { free(inner) };
    }
}

/// The owner of one reference to the pool; its drop closes the pool.
struct Handle {
    inner: NonNull<PoolInner>,
}

// SAFETY: `PoolInner` is `Sync` (immutable config, atomics, mutexes), and the
// reference this handle owns keeps it alive whichever thread drops it.
unsafe impl Send for Handle {}
// SAFETY: as above; `&Handle` only gives `&PoolInner`.
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: this handle's reference keeps the pool alive.
        let inner = unsafe { self.inner.as_ref() };
        inner.closed.store(true, Ordering::Release);
        let cached_tokens = cache::forget_pool(self.inner);
        // SAFETY: we own our reference and the flushed entry's tokens.
        unsafe { release_refs(self.inner, 1 + cached_tokens) };
    }
}

/// A pool of guarded, size-classed, reusable coroutine stacks.
///
/// Cloning is cheap and shares the pool; it is `Send` and `Sync`.
///
/// The slabs are unmapped once the last handle is dropped and every stack
/// has come back. Stacks cached by *other* threads come back when those
/// threads exit, release a stack of this pool, or miss their cache on any
/// pool (a thread cache is touched by its own thread only); stacks cached by
/// the thread that drops the last handle come back at once.
///
/// ```
/// use pinstack_stackpool::StackPool;
///
/// let pool = StackPool::new()?;
/// let first = pool.acquire(12 * 1024)?; // 16 KiB class
/// let addr = first.usable_range();
/// drop(first); // back into this thread's cache
/// let again = pool.acquire(16 * 1024)?;
/// assert_eq!(again.usable_range(), addr); // the same stack, reused
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct StackPool {
    handle: Arc<Handle>,
}

impl fmt::Debug for StackPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackPool")
            .field("guard_mode", &self.guard_mode())
            .finish_non_exhaustive()
    }
}

impl StackPool {
    /// A pool with the default settings (see [`PoolBuilder`]).
    ///
    /// # Errors
    ///
    /// The error of [`PoolBuilder::build`], as an `io::Error`.
    pub fn new() -> std::io::Result<StackPool> {
        Ok(PoolBuilder::new().build()?)
    }

    /// A builder for a pool with custom settings.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    pub(crate) fn from_config(config: Config) -> StackPool {
        let inner = Box::new(PoolInner {
            config,
            refs: RefCount::new(1),
            closed: AtomicBool::new(false),
            classes: std::array::from_fn(|_| Mutex::new(ClassShared::default())),
            tally: PoolTally::new(),
            counters: Mutex::new(Vec::new()),
            retired: LocalCounters::default(),
            orphan_acquires: AtomicU64::new(0),
            orphan_releases: AtomicU64::new(0),
            last_decay: Mutex::new(None),
        });
        let inner = NonNull::from(Box::leak(inner));
        StackPool {
            handle: Arc::new(Handle { inner }),
        }
    }

    #[inline]
    fn inner(&self) -> &PoolInner {
        // SAFETY: the handle's reference keeps the pool alive while `self`
        // is borrowed.
        unsafe { self.handle.inner.as_ref() }
    }

    /// A stack of at least `hint_bytes` usable bytes (the smallest class
    /// that fits; 0 gives 8 KiB).
    ///
    /// # Errors
    ///
    /// [`PoolError::HintTooLarge`] above 8 MiB, else as
    /// [`acquire_class`](Self::acquire_class).
    #[inline(always)]
    pub fn acquire(&self, hint_bytes: usize) -> Result<PooledStack, PoolError> {
        self.acquire_class(SizeClass::for_hint(hint_bytes)?)
    }

    /// A stack of `class`. From this thread's cache when it has one (no
    /// atomics, no locks), else from the class's shared list, else carved
    /// from a slab.
    ///
    /// # Errors
    ///
    /// [`PoolError::LimitReached`], [`PoolError::MapCountExhausted`],
    /// [`PoolError::Mmap`], [`PoolError::Numa`] or [`PoolError::Guard`] when
    /// no cached stack is left and a new one cannot be made. The pool stays
    /// usable.
    #[inline(always)]
    pub fn acquire_class(&self, class: SizeClass) -> Result<PooledStack, PoolError> {
        let inner = self.handle.inner;
        let (slot, sampled) = match cache::pop(inner, class) {
            Some(hit) => hit,
            None => cache::acquire_slow(inner, class)?,
        };
        // SAFETY: the slot was just taken out of the pool with a token that
        // the PooledStack now owns.
        Ok(unsafe { PooledStack::new(inner, class, slot, sampled) })
    }

    /// Gives back the pages of every cached stack: the shared lists' and the
    /// calling thread's cache (other threads' caches are theirs alone; a
    /// runtime calls `trim` on each worker). Their slots stay reserved and
    /// are reused first. Never called by the acquire path.
    pub fn trim(&self) {
        cache::flush_current_thread(self.handle.inner);
        self.inner().trim_shared();
    }

    /// One step of giving back the pages of stacks that stay cached but
    /// unused, for a caller that runs it periodically (pinstack's workers:
    /// every second, busy or idle). Of each class, half of the stacks that
    /// sat in the calling thread's cache since this thread's previous step
    /// (the cache's low-water mark), and, at most once per `period` for the
    /// whole pool, half of those that sat in the shared list, go back to
    /// the OS (`MADV_DONTNEED`; their slots are reused first). Stacks in
    /// use keep theirs, so the caches shrink to what the load needs within
    /// a few periods after a burst, and RSS with them.
    ///
    /// Returns whether stacks with pages are still cached (here or in the
    /// shared lists): call again a period later.
    ///
    /// ```
    /// use pinstack_stackpool::StackPool;
    /// use std::time::Duration;
    /// let pool = StackPool::new()?;
    /// let stacks: Vec<_> = (0..10).map(|_| pool.acquire(16 * 1024)).collect::<Result<_, _>>()?;
    /// drop(stacks); // all ten cached, unused from now on
    /// while pool.decay(Duration::ZERO) {}
    /// assert_eq!(pool.stats().released_to_os, 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decay(&self, period: Duration) -> bool {
        let here = cache::decay_current_thread(self.handle.inner);
        let shared = self.inner().decay_shared(period);
        here || shared
    }

    /// The guard mechanism in use: [`GuardMode::Madvise`] or
    /// [`GuardMode::Mprotect`] (never `Auto`).
    pub fn guard_mode(&self) -> GuardMode {
        self.inner().config.guard
    }

    /// A snapshot of the pool's counters (locks each class briefly; not for
    /// hot paths).
    pub fn stats(&self) -> PoolStats {
        let inner = self.inner();
        let mut s = PoolStats::default();
        {
            let list = lock(&inner.counters);
            for c in list.iter().map(|c| &**c).chain([&inner.retired]) {
                s.acquires += c.acquires.load(Ordering::Relaxed);
                s.local_hits += c.local_hits.load(Ordering::Relaxed);
                s.releases += c.releases.load(Ordering::Relaxed);
            }
        }
        s.acquires += inner.orphan_acquires.load(Ordering::Relaxed);
        s.releases += inner.orphan_releases.load(Ordering::Relaxed);
        for class in SizeClass::all() {
            let shared = inner.class(class);
            let c = &shared.counters;
            s.shared_hits += c.shared_hits;
            s.reused_empty += c.reused_empty;
            s.fresh_carves += c.fresh_carves;
            s.released_to_os += c.released_to_os;
            s.samples += c.samples;
            s.live_stacks += shared.live;
            s.slabs += shared.slabs.len();
            s.bytes_reserved += shared.reserved();
            s.mappings_created += shared.mappings();
            let mean = c
                .sampled_touched_sum
                .checked_div(c.samples)
                .map_or(0, |m| m as usize);
            s.bytes_resident += mean * shared.live;
            s.per_class[class.index()] = ClassStats {
                live_stacks: shared.live,
                shared_cached: shared.free.len(),
                empty_slots: shared.empty.len(),
                fresh_carves: c.fresh_carves,
                samples: c.samples,
                sampled_touched_mean: mean,
                sampled_touched_max: c.sampled_touched_max,
            };
        }
        s
    }

    /// Resident bytes of all carved stacks, measured exactly with `mincore`
    /// over every slab (slow: one syscall per 16 MiB scanned; a diagnostic,
    /// not for hot paths).
    ///
    /// # Errors
    ///
    /// The `mincore` error, which would indicate a bug.
    pub fn measure_resident_bytes(&self) -> std::io::Result<usize> {
        let inner = self.inner();
        let page = inner.config.page;
        let mut total_pages = 0usize;
        let mut buf = [0u8; 4096];
        for class in SizeClass::all() {
            let ranges = inner.class(class).carved_ranges(inner.config.stride(class));
            for (base, len) in ranges {
                let pages = len / page;
                let mut done = 0;
                while done < pages {
                    let n = (pages - done).min(buf.len());
                    sys::mincore(base + done * page, &mut buf[..n])?;
                    total_pages += buf[..n].iter().filter(|&&b| b != 0).count();
                    done += n;
                }
            }
        }
        Ok(total_pages * page)
    }
}
