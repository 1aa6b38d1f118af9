//! Counters the runtime keeps, and the snapshot users read.
//!
//! Hot-path counters have a single writer (the worker that owns them, or
//! the monitor thread), so an increment is a relaxed load and store: no
//! read-modify-write, no cache-line ping-pong with other workers. Readers
//! on other threads see a slightly stale value, which is all a metric needs.

use crate::loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::io;

/// A counter written by one thread only.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub(crate) fn incr(&self) {
        self.0.store(self.0.load(Relaxed).wrapping_add(1), Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Per-worker counters (see [`WorkerMetrics`] for their meaning).
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    pub(crate) resumes: Counter,
    pub(crate) parks: Counter,
    pub(crate) steals: Counter,
    pub(crate) remote_steals: Counter,
    pub(crate) spawned: Counter,
    pub(crate) yields: Counter,
    /// Parks by [`Reason`](crate::park::Reason), indexed by its discriminant.
    pub(crate) suspends: [Counter; 5],
    /// Written by the monitor thread only.
    pub(crate) long_runs: Counter,
}

/// The live-task limit. Counting costs a shared atomic, so it is done only
/// when a limit is set.
#[derive(Debug)]
pub(crate) struct LiveTasks {
    limit: Option<usize>,
    count: AtomicUsize,
}

impl LiveTasks {
    pub(crate) fn new(limit: Option<usize>) -> LiveTasks {
        LiveTasks {
            limit,
            count: AtomicUsize::new(0),
        }
    }

    pub(crate) fn try_spawn(&self) -> io::Result<()> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let prev = self.count.fetch_add(1, Relaxed);
        if prev >= limit {
            self.count.fetch_sub(1, Relaxed);
            return Err(io::Error::other(format!(
                "live task limit reached ({limit} tasks): wait for tasks to finish, \
                 or raise it with runtime::Builder::max_live_tasks"
            )));
        }
        Ok(())
    }

    pub(crate) fn finished(&self) {
        if self.limit.is_some() {
            self.count.fetch_sub(1, Relaxed);
        }
    }
}

/// A snapshot of one worker's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// Times a coroutine was resumed.
    pub resumes: u64,
    /// Times the worker went to sleep in its poller for lack of work.
    pub parks: u64,
    /// Successful steals of unstarted tasks from workers on the same NUMA node.
    pub steals: u64,
    /// Successful steals from workers on another NUMA node (tried only when
    /// the thief's own node had nothing to take).
    pub remote_steals: u64,
    /// Tasks spawned from this worker onto its own queue.
    pub spawned: u64,
    /// Times a task called `yield_now`.
    pub yields: u64,
    /// Suspensions waiting for I/O readiness.
    pub suspends_io: u64,
    /// Suspensions waiting for a timer (sleep, timeouts).
    pub suspends_timer: u64,
    /// Suspensions on a channel, mutex, notify or wait group.
    pub suspends_sync: u64,
    /// Suspensions waiting for another task to finish.
    pub suspends_join: u64,
    /// Suspensions waiting for a future (`block_on`).
    pub suspends_future: u64,
    /// Resumes that ran longer than the long-run threshold without
    /// suspending (detected by the monitor thread).
    pub long_runs: u64,
}

/// A snapshot of the runtime's metrics, from [`Runtime::metrics`](crate::Runtime::metrics).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// One entry per worker, by worker index.
    pub workers: Vec<WorkerMetrics>,
    /// The stack pools' statistics: one pool, or one per NUMA node under `Bind`.
    pub stack_pools: Vec<pinstack_stackpool::PoolStats>,
}

impl WorkerCounters {
    pub(crate) fn snapshot(&self) -> WorkerMetrics {
        WorkerMetrics {
            resumes: self.resumes.get(),
            parks: self.parks.get(),
            steals: self.steals.get(),
            remote_steals: self.remote_steals.get(),
            spawned: self.spawned.get(),
            yields: self.yields.get(),
            suspends_io: self.suspends[0].get(),
            suspends_timer: self.suspends[1].get(),
            suspends_sync: self.suspends[2].get(),
            suspends_join: self.suspends[3].get(),
            suspends_future: self.suspends[4].get(),
            long_runs: self.long_runs.get(),
        }
    }
}
