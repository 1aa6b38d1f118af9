//! Pool statistics: per-thread hot-path counters and the `PoolStats`
//! snapshot.
//!
//! Who writes what:
//!
//! | counter                       | written by                         | how            |
//! |-------------------------------|------------------------------------|----------------|
//! | acquires, local hits, releases| the owning thread of a cache entry | `store(load+1)`|
//! | shared hits, reuses, carves…  | holder of the class's shared lock  | plain `+= 1`   |
//! | orphan acquires/releases      | any thread without a usable cache  | `fetch_add`    |
//! | retired (exited threads)      | the exiting thread, once           | `fetch_add`    |
//!
//! [`LocalCounters`] are Relaxed atomics written by one thread only, so an
//! increment is a plain load and store (no read-modify-write) and readers
//! (`StackPool::stats`) may sum them at any time; the sum is a snapshot that
//! may miss increments in flight.

use crate::class::SizeClass;
use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// Hot-path counters of one thread-cache entry. Only the owning thread
/// writes them.
#[derive(Debug, Default)]
pub(crate) struct LocalCounters {
    pub(crate) acquires: AtomicU64,
    pub(crate) local_hits: AtomicU64,
    pub(crate) releases: AtomicU64,
}

/// Adds one to a counter that only the calling thread writes.
#[inline(always)]
pub(crate) fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Counters kept under a class's shared lock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SharedCounters {
    pub(crate) shared_hits: u64,
    pub(crate) reused_empty: u64,
    pub(crate) fresh_carves: u64,
    pub(crate) released_to_os: u64,
    pub(crate) samples: u64,
    pub(crate) sampled_touched_sum: u64,
    pub(crate) sampled_touched_max: usize,
}

/// Per-class figures in a [`PoolStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClassStats {
    /// Stacks of this class holding memory: checked out or cached.
    pub live_stacks: usize,
    /// Stacks waiting in the class's shared list (with their pages).
    pub shared_cached: usize,
    /// Slots whose pages were given back, ready for reuse.
    pub empty_slots: usize,
    /// Stacks carved from slabs so far.
    pub fresh_carves: u64,
    /// Sampled stacks measured at release.
    pub samples: u64,
    /// Mean high-water mark of the samples, in bytes (0 without samples).
    pub sampled_touched_mean: usize,
    /// Largest high-water mark sampled, in bytes.
    pub sampled_touched_max: usize,
}

/// A snapshot of a pool's activity, from [`StackPool::stats`](crate::StackPool::stats).
///
/// `acquires == local_hits + shared_hits + reused_empty + fresh_carves`
/// once no thread is acquiring concurrently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Stacks handed out.
    pub acquires: u64,
    /// Handed out from the calling thread's cache (no atomics, no locks).
    pub local_hits: u64,
    /// Handed out from a class's shared list.
    pub shared_hits: u64,
    /// Handed out from a slot whose pages had been given back to the OS.
    pub reused_empty: u64,
    /// Carved fresh from a slab (guard page installed).
    pub fresh_carves: u64,
    /// Stacks returned (dropped).
    pub releases: u64,
    /// Returned stacks whose pages went back to the OS because the caches
    /// were full or [`StackPool::trim`](crate::StackPool::trim) ran.
    pub released_to_os: u64,
    /// Stacks holding memory: checked out, or cached with their pages.
    pub live_stacks: usize,
    /// Slabs mapped.
    pub slabs: usize,
    /// Address space reserved by slabs, in bytes.
    pub bytes_reserved: usize,
    /// Estimated resident stack memory, in bytes: for each class, its live
    /// stacks times the mean sampled high-water mark. 0 while sampling is
    /// off; see [`StackPool::measure_resident_bytes`](crate::StackPool::measure_resident_bytes)
    /// for an exact (slow) figure.
    pub bytes_resident: usize,
    /// Kernel memory mappings this pool created and holds: one per slab,
    /// plus two per guard page in `GuardMode::Mprotect`.
    pub mappings_created: usize,
    /// Sampled stacks measured, all classes.
    pub samples: u64,
    /// Per class, indexed by [`SizeClass::index`].
    pub per_class: [ClassStats; SizeClass::COUNT],
}

impl PoolStats {
    /// Stacks currently checked out (acquires minus releases).
    pub fn checked_out(&self) -> u64 {
        self.acquires.saturating_sub(self.releases)
    }
}
