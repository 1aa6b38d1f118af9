//! Counters the runtime keeps, and the snapshot users read.
//!
//! [`RuntimeMetrics`] (from [`Runtime::metrics`](crate::Runtime::metrics))
//! holds per-worker counters ([`WorkerMetrics`]), scheduling-delay
//! histograms ([`DelayHistogram`]), long runs with the task's name
//! ([`LongRun`]), stack use per spawn site ([`StackSite`]), the stack pools'
//! and arenas' statistics and the live-task count;
//! [`render_prometheus`] writes it in the Prometheus text format.
//!
//! Files:
//!
//! * this file: the always-on counters and the live-task count;
//! * `histogram`: the scheduling-delay histogram;
//! * `obs`: per-worker observability state (delays, long runs, trace rings);
//! * `probe`: the hooks the scheduler calls around resumes, wake-ups, spawns;
//! * `snapshot`: assembling [`RuntimeMetrics`]; `prometheus`: its text form;
//! * `config`: the `Builder` settings.
//!
//! Hot-path counters have a single writer (the worker that owns them, or
//! the monitor thread), so an increment is a relaxed load and store: no
//! read-modify-write, no cache-line ping-pong with other workers. Readers
//! on other threads see a slightly stale value, which is all a metric needs.

pub(crate) mod clock;
mod config;
mod histogram;
mod obs;
pub(crate) mod probe;
mod prometheus;
mod snapshot;

pub(crate) use config::ObsConfig;
pub use histogram::DelayHistogram;
pub use obs::LongRun;
pub(crate) use obs::{Obs, WorkerObs};
pub use prometheus::render_prometheus;
pub(crate) use snapshot::snapshot;
pub use snapshot::RuntimeMetrics;

pub use crate::task::site::StackSite;
pub use pinstack_stackpool::PoolStats;

use crate::loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use crate::trace::task::outcome;
use crossbeam_utils::CachePadded;
use std::io;

/// A counter written by one thread only.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds one; returns the new value.
    #[inline]
    pub(crate) fn incr(&self) -> u64 {
        let v = self.0.load(Relaxed).wrapping_add(1);
        self.0.store(v, Relaxed);
        v
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Per-worker counters (see [`WorkerMetrics`] for their meaning).
///
/// With metrics off (`on` false) the worker keeps none of them: resumes,
/// yields and suspensions are counted in `probe::resume_end` only with
/// metrics on, and the other counts go through the methods below, which
/// check `on`. Only `long_runs`, kept by the monitor thread off the
/// workers' paths, is counted either way.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    /// Whether the worker counts (metrics on); set before the worker starts.
    pub(crate) on: bool,
    pub(crate) parks: Counter,
    pub(crate) steals: Counter,
    pub(crate) remote_steals: Counter,
    pub(crate) spawned: Counter,
    pub(crate) handed_off: Counter,
    /// Resumes by how they ended, indexed by `trace::task::outcome` (yield,
    /// park for each `Reason`, finished, panicked): one counter written per
    /// resume; resumes are their sum.
    pub(crate) ended: [Counter; 8],
    /// Written by the monitor thread only.
    pub(crate) long_runs: Counter,
}

/// Spawns and completions of one worker thread (single writer).
#[derive(Debug, Default)]
struct LiveCount {
    spawned: Counter,
    finished: Counter,
}

/// The live-task limit, and the live-task count.
///
/// Enforcing a limit costs a shared atomic, so it is done only when a limit
/// is set. The count (metrics on) is kept without shared writes: each worker
/// thread counts its own spawns and completions in its own counters (found
/// through the thread-local `probe::here`), other threads in two shared
/// atomics; live = spawned - finished, summed on read.
#[derive(Debug)]
pub(crate) struct LiveTasks {
    limit: Option<usize>,
    count: AtomicUsize,
    counting: bool,
    /// Tracing on: a finished task is forgotten by the thread's hooks.
    tracing: bool,
    workers: Box<[CachePadded<LiveCount>]>,
    /// Written by threads outside the workers: off the line of the
    /// read-mostly fields above.
    other_spawned: CachePadded<AtomicU64>,
    other_finished: CachePadded<AtomicU64>,
}

impl LiveTasks {
    pub(crate) fn new(
        limit: Option<usize>,
        workers: usize,
        counting: bool,
        tracing: bool,
    ) -> LiveTasks {
        LiveTasks {
            limit,
            count: AtomicUsize::new(0),
            counting,
            tracing,
            workers: (0..if counting { workers } else { 0 })
                .map(|_| CachePadded::default())
                .collect(),
            other_spawned: CachePadded::new(AtomicU64::new(0)),
            other_finished: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// This thread's counters, if it is one of this runtime's workers.
    #[inline]
    fn mine(&self) -> Option<&LiveCount> {
        let here = probe::here();
        if std::ptr::eq(here.live, self) {
            self.workers.get(here.worker).map(|c| &**c)
        } else {
            None
        }
    }

    /// Counts a spawn (and enforces the limit). Returns the spawn's number
    /// on the counter it went to (this worker thread's, or the shared one
    /// of other threads), which `probe::on_spawn` samples by: one counter
    /// update serves both, where a separate sampling countdown cost a
    /// second thread-local read and write per spawn. 0 when not counting.
    #[inline]
    pub(crate) fn try_spawn(&self) -> io::Result<u64> {
        let n = if self.counting {
            match self.mine() {
                Some(c) => c.spawned.incr(),
                None => self.other_spawned.fetch_add(1, Relaxed).wrapping_add(1),
            }
        } else {
            0
        };
        let Some(limit) = self.limit else {
            return Ok(n);
        };
        let prev = self.count.fetch_add(1, Relaxed);
        if prev >= limit {
            self.count.fetch_sub(1, Relaxed);
            self.finished_uncounted();
            return Err(io::Error::other(format!(
                "live task limit reached ({limit} tasks): wait for tasks to finish, \
                 or raise it with runtime::Builder::max_live_tasks"
            )));
        }
        Ok(n)
    }

    /// Undoes the count of a spawn that was refused.
    fn finished_uncounted(&self) {
        if self.counting {
            match self.mine() {
                Some(c) => {
                    c.finished.incr();
                }
                None => {
                    self.other_finished.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// A task ended (or never started) off the workers' paths below: a
    /// blocking task, or an unstarted one cancelled.
    pub(crate) fn finished(&self) {
        self.ended(|| self.finished_uncounted());
    }

    /// A task ended on worker `worker`, on that worker's thread: its
    /// counter is indexed directly, without the thread-local lookup (there
    /// are no per-worker counters when not counting).
    #[inline]
    pub(crate) fn finished_on(&self, worker: usize) {
        self.ended(|| {
            if let Some(c) = self.workers.get(worker) {
                c.finished.incr();
            }
        });
    }

    /// What every end of a task does around `count` (its finish counted
    /// on the right counter): the limit's count, and tracing's note.
    #[inline(always)]
    fn ended(&self, count: impl FnOnce()) {
        if self.limit.is_some() {
            self.count.fetch_sub(1, Relaxed);
        }
        count();
        if self.tracing {
            probe::clear_finished_task();
        }
    }

    /// Tasks spawned and not finished (0 with metrics off). A sum of counters
    /// read at slightly different instants.
    pub(crate) fn live(&self) -> u64 {
        let (mut s, mut f) = (
            self.other_spawned.load(Relaxed),
            self.other_finished.load(Relaxed),
        );
        for w in self.workers.iter() {
            s = s.wrapping_add(w.spawned.get());
            f = f.wrapping_add(w.finished.get());
        }
        s.saturating_sub(f)
    }
}

/// A snapshot of one worker's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// The worker's index.
    pub index: usize,
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
    /// Unstarted tasks this worker handed to a less loaded peer of its node
    /// to start there (start-time balancing).
    pub handed_off: u64,
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
    /// Whether the worker is in a long run right now.
    pub in_long_run: bool,
    /// Tasks queued on the worker: unstarted (stealable), woken from other
    /// threads, and runnable (the last as published by the worker every
    /// few dozen resumes; metrics on).
    pub run_queue_depth: u64,
    /// Started tasks living on this worker (their home; a started coroutine
    /// never moves), counted whether metrics are on or off. Uneven counts
    /// mean uneven load that stealing cannot fix: only unstarted tasks move.
    pub started_tasks: u64,
    /// Scheduling delays measured on this worker (metrics or tracing on).
    pub scheduling_delay: DelayHistogram,
}

impl WorkerCounters {
    /// Counters that count when `on`.
    pub(crate) fn new(on: bool) -> WorkerCounters {
        WorkerCounters {
            on,
            ..WorkerCounters::default()
        }
    }

    /// The worker stole from a worker on its own NUMA node (`local`), or
    /// from another node.
    #[inline]
    pub(crate) fn stole(&self, local: bool) {
        if self.on {
            if local {
                self.steals.incr();
            } else {
                self.remote_steals.incr();
            }
        }
    }

    /// The worker went to sleep in its poller.
    #[inline]
    pub(crate) fn parked(&self) {
        if self.on {
            self.parks.incr();
        }
    }

    /// An unstarted task was handed to a peer to start there.
    #[inline]
    pub(crate) fn handed_off(&self) {
        if self.on {
            self.handed_off.incr();
        }
    }

    /// A resume ended with `out` (a `trace::task::outcome`). Called from
    /// the arm of the worker's match on the resume's result, where `out` is
    /// a constant (or the park's reason added to one): one flag test and
    /// one store, no decoding of the result.
    #[inline(always)]
    pub(crate) fn resume_ended(&self, out: u8) {
        if self.on {
            self.ended[(out & 7) as usize].incr();
        }
    }

    /// A task was spawned from this worker onto its own queue.
    #[inline]
    pub(crate) fn spawned_here(&self) {
        if self.on {
            self.spawned.incr();
        }
    }

    pub(crate) fn snapshot(&self) -> WorkerMetrics {
        WorkerMetrics {
            index: 0,
            in_long_run: false,
            run_queue_depth: 0,
            started_tasks: 0,
            scheduling_delay: DelayHistogram::default(),
            resumes: self.ended.iter().fold(0u64, |n, c| n.wrapping_add(c.get())),
            parks: self.parks.get(),
            steals: self.steals.get(),
            remote_steals: self.remote_steals.get(),
            spawned: self.spawned.get(),
            handed_off: self.handed_off.get(),
            yields: self.ended[outcome::YIELD as usize].get(),
            suspends_io: self.ended[outcome::PARK as usize].get(),
            suspends_timer: self.ended[outcome::PARK as usize + 1].get(),
            suspends_sync: self.ended[outcome::PARK as usize + 2].get(),
            suspends_join: self.ended[outcome::PARK as usize + 3].get(),
            suspends_future: self.ended[outcome::PARK as usize + 4].get(),
            long_runs: self.long_runs.get(),
        }
    }
}
