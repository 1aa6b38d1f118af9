//! [`RuntimeMetrics`]: one read of everything the runtime counts.

use super::{DelayHistogram, LongRun, StackSite, WorkerMetrics};
use crate::arena::ArenaStats;
use crate::loom::sync::atomic::Ordering::Relaxed;
use crate::scheduler::Shared;
use pinstack_stackpool::{PoolStats, StackPool};

/// A snapshot of the runtime's metrics, from
/// [`Runtime::metrics`](crate::Runtime::metrics) or
/// [`Handle::metrics`](crate::Handle::metrics).
///
/// Each figure is read without stopping the runtime, so figures taken while
/// tasks run may be a few events apart from each other.
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::builder().worker_threads(2).build()?;
/// rt.block_on(|| {
///     let h = pinstack::spawn(|| pinstack::sleep(std::time::Duration::from_millis(1)));
///     h.join().unwrap();
/// });
/// let m = rt.metrics();
/// assert_eq!(m.workers.len(), 2);
/// assert!(m.workers.iter().map(|w| w.suspends_timer).sum::<u64>() >= 1);
/// let text = m.to_prometheus();
/// assert!(text.contains("pinstack_worker_resumes_total{worker=\"0\"}"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// One entry per worker, by worker index.
    pub workers: Vec<WorkerMetrics>,
    /// The stack pools' statistics: one pool, or one per NUMA node under `Bind`.
    pub stack_pools: Vec<PoolStats>,
    /// Tasks spawned and not yet finished, `spawn_blocking` jobs included
    /// (metrics on; 0 when off).
    pub live_tasks: u64,
    /// Unstarted tasks spawned from outside the workers, waiting in the
    /// runtime's global queue.
    pub injector_depth: u64,
    /// All workers' scheduling delays merged.
    pub scheduling_delay: DelayHistogram,
    /// Recent long runs with the task that ran (up to 16 per worker, the
    /// newest last; metrics on).
    pub long_runs: Vec<LongRun>,
    /// Sampled stack use per spawn site, sorted by file and line.
    pub stack_sites: Vec<StackSite>,
    /// Arena statistics of the whole process (every thread's arena pool:
    /// this runtime's workers and any other thread using arenas).
    pub arena: ArenaStats,
    /// Bytes of freed task memory the process keeps for reuse in its shared
    /// depot (all runtimes; besides this, each worker keeps at most 64 freed
    /// tasks per size class). Unused memory is given back by halves each
    /// second; see [Task memory](crate#task-memory).
    pub task_memory_cached_bytes: u64,
    /// Whether the extra metrics are on ([`Builder::metrics`](crate::Builder::metrics)).
    pub metrics_enabled: bool,
    /// Whether tracing is on ([`Builder::tracing`](crate::Builder::tracing)).
    pub tracing_enabled: bool,
}

impl RuntimeMetrics {
    /// The Prometheus text exposition of these metrics (see
    /// [`render_prometheus`](super::render_prometheus)).
    pub fn to_prometheus(&self) -> String {
        super::render_prometheus(self)
    }
}

/// Reads every counter of the runtime.
pub(crate) fn snapshot(shared: &Shared) -> RuntimeMetrics {
    let obs = &shared.obs;
    let mut all = DelayHistogram::default();
    let workers: Vec<WorkerMetrics> = shared
        .workers
        .iter()
        .zip(obs.workers.iter())
        .map(|(w, o)| {
            let mut m = w.stats.snapshot();
            m.index = w.index;
            m.in_long_run = w.stuck.load(Relaxed);
            let ready = if w.sleeping.is_set() || !obs.metrics {
                0
            } else {
                o.ready_depth.load(Relaxed)
            };
            m.run_queue_depth = (w.stealer.len() + w.inbox.len() + ready) as u64;
            m.started_tasks = w.live.load(Relaxed) as u64;
            m.scheduling_delay = o.delay.snapshot();
            all.merge(&m.scheduling_delay);
            m
        })
        .collect();
    RuntimeMetrics {
        workers,
        stack_pools: shared.pools.iter().map(StackPool::stats).collect(),
        live_tasks: shared.live.live(),
        injector_depth: shared.injector.len() as u64,
        scheduling_delay: all,
        long_runs: obs.long_runs(),
        stack_sites: obs.sites.report(),
        arena: crate::arena::stats(),
        task_memory_cached_bytes: crate::task::alloc::depot_bytes() as u64,
        metrics_enabled: obs.metrics,
        tracing_enabled: obs.tracing,
    }
}
