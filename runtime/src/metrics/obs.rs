//! The runtime's observability state (`Shared::obs`): settings, one
//! [`WorkerObs`] per worker, the spawn-site table and the trace rings.
//!
//! Who touches what:
//!
//! | field                      | written by                     | read by             |
//! |----------------------------|--------------------------------|---------------------|
//! | `WorkerObs::delay`         | its worker (single writer)     | `metrics()`         |
//! | `WorkerObs::ready_depth`   | its worker, every 64 resumes   | `metrics()`         |
//! | `WorkerObs::long_run_seq`  | the monitor thread             | its worker          |
//! | `WorkerObs::long_runs`     | its worker, after a long run   | `metrics()` (lock)  |
//! | `WorkerObs::ring`          | its worker (see `trace/ring`)  | `trace()`           |
//! | `WorkerObs::ids`           | its worker (first runs, traced)|                     |
//! | `sites`                    | see `task/site.rs`             |                     |
//!
//! The long-run protocol: the monitor sees the same odd `resume_seq` on two
//! samples a period apart and stores that value in `long_run_seq`. The
//! worker, when that resume ends, finds `long_run_seq` equal to the resume's
//! sequence number and records the task's name and site: the name is read
//! by the thread that owns the task, never by the monitor, so no other
//! thread ever dereferences a task that may be gone.

use super::histogram::Recorder;
use crate::loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use crate::loom::sync::Mutex;
use crate::metrics::config::ObsConfig;
use crate::task::site::Sites;
use crate::task::Header;
use crate::trace::ring::Ring;
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;

/// Long runs remembered per worker (the newest).
const LONG_RUNS_KEPT: usize = 16;

/// A resume that ran longer than the long-run threshold without
/// suspending, from [`RuntimeMetrics::long_runs`](crate::RuntimeMetrics::long_runs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LongRun {
    /// The worker it blocked.
    pub worker: usize,
    /// The task's name, if it has one.
    pub task: Option<String>,
    /// Where the task was spawned (`file:line:column`).
    pub site: String,
}

/// Per-worker observability state.
#[derive(Debug)]
pub(crate) struct WorkerObs {
    pub(crate) delay: Recorder,
    pub(crate) ready_depth: AtomicUsize,
    pub(crate) long_run_seq: AtomicU64,
    pub(crate) long_runs: Mutex<VecDeque<LongRun>>,
    pub(crate) ring: Option<Ring>,
    /// Trace ids handed to tasks at their first run on this worker.
    pub(crate) ids: AtomicU64,
}

/// Runtime-wide observability state.
#[derive(Debug)]
pub(crate) struct Obs {
    pub(crate) metrics: bool,
    pub(crate) tracing: bool,
    /// `metrics && !tracing`, the default: the hooks test this first, so
    /// that the default costs one test to find its path (off pays a
    /// second test: off is the rarer choice).
    pub(crate) metrics_only: bool,
    /// Scheduling delays sampled: one in `delay_mask + 1` (the setting
    /// rounded up to a power of two). Resumes sampled are those whose
    /// number (the worker's `resume_seq / 2`) has these bits clear: the
    /// sequence number is at hand in the worker's registers, where a
    /// countdown would cost a load and a store per resume. Spawns are
    /// sampled by their number on the live-task counter.
    pub(crate) delay_mask: u32,
    /// `delay_mask << 1`: the same test on the (odd) resume sequence
    /// number itself, without a shift.
    pub(crate) seq_mask: u64,
    /// Whether finished tasks' stacks are checked for a sample.
    pub(crate) stack_sampling: bool,
    /// The runtime's time origin (trace timestamps count from it).
    pub(crate) base: super::clock::Base,
    pub(crate) sites: Sites,
    pub(crate) workers: Box<[CachePadded<WorkerObs>]>,
}

impl Obs {
    pub(crate) fn new(config: &ObsConfig, workers: usize) -> Obs {
        let ring_events = config.trace_events;
        let delay_mask = config
            .delay_sample_every
            .clamp(1, 1 << 31)
            .next_power_of_two()
            - 1;
        super::clock::init();
        Obs {
            metrics: config.metrics,
            tracing: config.tracing,
            metrics_only: config.metrics && !config.tracing,
            delay_mask,
            seq_mask: u64::from(delay_mask) << 1,
            stack_sampling: config.pool_sample_every() > 0,
            base: super::clock::Base::now(),
            sites: Sites::new(config.learn_stack_sizes),
            workers: (0..workers)
                .map(|_| {
                    CachePadded::new(WorkerObs {
                        delay: Recorder::default(),
                        ready_depth: AtomicUsize::new(0),
                        long_run_seq: AtomicU64::new(0),
                        long_runs: Mutex::new(VecDeque::new()),
                        ring: config.tracing.then(|| Ring::new(ring_events)),
                        ids: AtomicU64::new(0),
                    })
                })
                .collect(),
        }
    }

    /// The monitor saw worker `worker` run one resume (`seq`, odd) for more
    /// than a period. Monitor thread only.
    pub(crate) fn long_run_detected(&self, worker: usize, seq: u64) {
        if let Some(w) = self.workers.get(worker) {
            w.long_run_seq.store(seq, Relaxed);
        }
    }

    /// The worker's resume of `h` was a long run: remember its name.
    #[cold]
    pub(crate) fn record_long_run(&self, worker: usize, h: &Header) {
        let Some(w) = self.workers.get(worker) else {
            return;
        };
        let run = LongRun {
            worker,
            task: h.meta.name.as_deref().map(String::from),
            site: h.meta.site.to_string(),
        };
        let mut q = w.long_runs.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == LONG_RUNS_KEPT {
            q.pop_front();
        }
        q.push_back(run);
    }

    /// The long runs remembered, oldest first per worker.
    pub(crate) fn long_runs(&self) -> Vec<LongRun> {
        self.workers
            .iter()
            .flat_map(|w| {
                w.long_runs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
