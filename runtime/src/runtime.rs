//! `Runtime` and `Handle`.
//!
//! Shutdown order (on drop):
//! 1. set `shutdown`, wake every worker through its poller's waker;
//! 2. each worker unwinds the coroutines it owns (their destructors run on
//!    the thread they lived on), completes them as cancelled, cancels the
//!    unstarted tasks in its queues, and exits; the runtime joins them;
//! 3. stop the monitor, stop the blocking pool (queued blocking jobs are
//!    cancelled, running ones finish), cancel what is left in the injector.

use crate::builder::{Builder, Config};
use crate::loom::sync::atomic::{AtomicBool, Ordering::*};
use crate::loom::sync::Arc;
use crate::metrics::{LiveTasks, RuntimeMetrics};
use crate::scheduler::{self, Core, Idle, Monitor, Shared, WorkerHandle, WAKER_TOKEN};
use crate::task::{self, JoinHandle, Meta, TaskRef};
use crossbeam_deque::{Injector, Steal, Worker};
use crossbeam_utils::CachePadded;
use pinstack_numa::{placement, NumaPolicy, Topology};
use pinstack_stackpool::StackPool;
use std::io;
use std::panic::Location;
use std::thread;
use std::time::Instant;

/// A pinstack runtime: worker threads running stackful coroutines.
///
/// Several runtimes may coexist. Dropping a runtime shuts it down: every
/// suspended task is unwound (its destructors run) and its join handle
/// reports [`JoinError::is_cancelled`](crate::JoinError::is_cancelled).
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::new()?;
/// let answer = rt.block_on(|| {
///     let h = pinstack::spawn(|| 6 * 7);
///     h.join().unwrap()
/// });
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Runtime {
    shared: Arc<Shared>,
    workers: Vec<thread::JoinHandle<()>>,
    monitor: Monitor,
}

/// A cloneable, `Send` reference to a runtime, for spawning from any thread.
#[derive(Debug, Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl Runtime {
    /// A runtime with the default settings (see [`Builder::new`]).
    ///
    /// # Errors
    ///
    /// If threads, pollers or the stack pool cannot be created.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A builder for custom settings.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn start(config: Config) -> io::Result<Runtime> {
        let n = config.workers;
        let placements = plan_workers(&config)?;
        let idle = Arc::new(Idle::default());
        let mut locals = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for (i, place) in placements.iter().enumerate() {
            let local = Worker::new_fifo();
            let poll = mio::Poll::new()?;
            let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
            let registry = poll.registry().try_clone()?;
            let mut handle = WorkerHandle::new(
                i,
                place.node,
                local.stealer(),
                waker,
                registry,
                idle.clone(),
            );
            handle.stats =
                CachePadded::new(crate::metrics::WorkerCounters::new(config.obs.metrics));
            handles.push(Arc::new(handle));
            locals.push((local, poll));
        }
        let steal_order = (0..n)
            .map(|i| placement::steal_order(&placements, i).into_boxed_slice())
            .collect();
        let (pools, pool_of) = stack_pools(&config, &placements)?;
        let shared = Arc::new(Shared {
            workers: handles.into_boxed_slice(),
            steal_order,
            injector: Injector::new(),
            idle,
            shutdown: AtomicBool::new(false),
            pools,
            live: LiveTasks::new(
                config.max_live_tasks,
                n,
                config.obs.metrics,
                config.obs.tracing,
            ),
            obs: crate::metrics::Obs::new(&config.obs, n),
            blocking: crate::blocking::BlockingPool::new(&config),
            config,
            time_base: Instant::now(),
        });
        let mut workers = Vec::with_capacity(n);
        let (placed_tx, placed_rx) = std::sync::mpsc::channel();
        for (i, ((local, poll), place)) in locals.into_iter().zip(placements).enumerate() {
            let shared2 = shared.clone();
            let handle = shared.workers[i].clone();
            let core = Core::new(
                local,
                poll,
                shared.pools[pool_of[i]].clone(),
                0x9e37_79b9 ^ (i as u32).wrapping_mul(0x85eb_ca6b),
            );
            let placed_tx = placed_tx.clone();
            let spawned = thread::Builder::new()
                .name(format!("{}-worker-{i}", shared.config.thread_name))
                .spawn(move || {
                    // Pin and bind before anything is allocated on this thread.
                    let applied = place.apply().map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!(
                                "cannot place worker {i} ({}: CPUs {}, memory node {}): {e}",
                                place.policy, place.cpus, place.memory_node
                            ),
                        )
                    });
                    let ok = applied.is_ok();
                    let _ = placed_tx.send(applied);
                    if !ok {
                        return;
                    }
                    if let Some(f) = &shared2.config.on_thread_start {
                        f();
                    }
                    let stop = shared2.config.on_thread_stop.clone();
                    scheduler::run_worker(shared2, handle, core);
                    if let Some(f) = stop {
                        f();
                    }
                });
            match spawned {
                Ok(t) => workers.push(t),
                Err(e) => {
                    stop_workers(&shared, workers);
                    return Err(e);
                }
            }
        }
        drop(placed_tx);
        for _ in 0..n {
            let failed = match placed_rx.recv() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(io::Error::other("a worker thread exited during start-up")),
            };
            if let Some(e) = failed {
                stop_workers(&shared, workers);
                return Err(e);
            }
        }
        let monitor = match Monitor::start(
            shared.clone(),
            shared.config.monitor_period,
            &shared.config.thread_name,
        ) {
            Ok(m) => m,
            Err(e) => {
                stop_workers(&shared, workers);
                return Err(e);
            }
        };
        Ok(Runtime {
            shared,
            workers,
            monitor,
        })
    }

    /// Runs `f` as a task on the runtime and blocks the calling thread until
    /// it returns its value. Inside a task it suspends only the calling
    /// coroutine.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of `f` on the calling thread; panics if the task
    /// could not start (no stack: the message says why).
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let meta = Meta {
            name: Some("block_on".into()),
            stack_hint: 0,
            pinned: false,
            site: Location::caller(),
        };
        let h = match task::spawn_on(&self.shared, f, meta, None) {
            Ok(h) => h,
            Err(e) => panic!("Runtime::block_on: {e}"),
        };
        match h.join() {
            Ok(v) => v,
            Err(e) => match e.try_into_panic() {
                Ok(p) => std::panic::resume_unwind(p),
                Err(e) => panic!("Runtime::block_on: {e}"),
            },
        }
    }

    /// Spawns a task from any thread.
    ///
    /// # Panics
    ///
    /// When the live-task limit is reached (see [`Handle::spawn`]).
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle().spawn(f)
    }

    /// A handle for spawning onto this runtime from other threads.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// A snapshot of the runtime's counters.
    pub fn metrics(&self) -> RuntimeMetrics {
        self.handle().metrics()
    }
}

impl Handle {
    /// The handle of the runtime the caller runs on.
    ///
    /// # Panics
    ///
    /// Outside a pinstack runtime; see [`Handle::try_current`].
    pub fn current() -> Handle {
        Handle::try_current().expect("Handle::current called outside a pinstack runtime")
    }

    /// The handle of the runtime the caller runs on, if any.
    pub fn try_current() -> Option<Handle> {
        task::current_shared().map(|shared| Handle { shared })
    }

    /// Spawns a task on this handle's runtime.
    ///
    /// # Panics
    ///
    /// When the runtime is shut down or its live-task limit is reached; use
    /// [`task::Builder::spawn_on`](crate::task::Builder::spawn_on) to get the
    /// error instead.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match task::Builder::new().spawn_on(f, self) {
            Ok(h) => h,
            Err(e) => panic!("Handle::spawn: {e}"),
        }
    }

    /// Runs blocking work on the runtime's blocking pool.
    #[track_caller]
    pub fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::blocking::spawn_blocking_on(&self.shared, f, Location::caller())
    }

    /// The runtime's workers, by index: where
    /// [`task::Builder::on_worker`](crate::task::Builder::on_worker) can
    /// start a task.
    pub fn workers(&self) -> Vec<task::WorkerId> {
        (0..self.shared.workers.len())
            .map(|i| task::WorkerId::new(&self.shared, i))
            .collect()
    }

    /// A snapshot of the runtime's counters.
    pub fn metrics(&self) -> RuntimeMetrics {
        crate::metrics::snapshot(&self.shared)
    }
}

/// The stack pools, and for each worker the index of its pool: under `Bind`
/// one pool per memory node, its slabs `mbind`ed there; else one pool.
fn stack_pools(
    config: &Config,
    placements: &[placement::WorkerPlacement],
) -> io::Result<(Box<[StackPool]>, Vec<usize>)> {
    if config.numa != NumaPolicy::Bind {
        return Ok((
            vec![StackPool::builder()
                .sample_every(config.obs.pool_sample_every())
                .build()
                .map_err(io::Error::from)?]
            .into_boxed_slice(),
            vec![0; placements.len()],
        ));
    }
    let mut nodes: Vec<usize> = placements.iter().map(|p| p.memory_node).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let pools = nodes
        .iter()
        .map(|&n| {
            StackPool::builder()
                .numa_node(Some(n))
                .sample_every(config.obs.pool_sample_every())
                .build()
                .map_err(io::Error::from)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let pool_of = placements
        .iter()
        .map(|p| nodes.binary_search(&p.memory_node).unwrap_or(0))
        .collect();
    Ok((pools.into_boxed_slice(), pool_of))
}

/// Where each worker runs, from the configured or detected topology.
fn plan_workers(config: &Config) -> io::Result<Vec<placement::WorkerPlacement>> {
    let (topology, allowed) = match &config.topology {
        Some(t) => (t.clone(), t.all_cpus()),
        None => (Topology::detect()?, pinstack_numa::thread_affinity()?),
    };
    if config.numa == NumaPolicy::Bind && topology.nodes().len() == 1 {
        log::debug!("pinstack: NUMA Bind on a one-node machine: every worker binds to node 0");
    }
    placement::plan(&topology, &allowed, config.workers, config.numa).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cannot place {} workers with NUMA policy {}: {e}",
                config.workers, config.numa
            ),
        )
    })
}

fn stop_workers(shared: &Shared, workers: Vec<thread::JoinHandle<()>>) {
    shared.shutdown.store(true, Release);
    for w in shared.workers.iter() {
        let _ = w.waker.wake();
    }
    for t in workers {
        let _ = t.join();
    }
    shared.blocking.shutdown(shared);
    // Starts handed to a worker after it drained its inbox for the last
    // time, then spawns from outside that no worker took.
    for queue in shared.workers.iter().map(|w| &w.inbox) {
        cancel_queued(shared, queue);
    }
    cancel_queued(shared, &shared.injector);
}

/// Empties `queue`, cancelling the unstarted tasks in it (started ones were
/// cancelled by their worker; their references just drop).
fn cancel_queued(shared: &Shared, queue: &Injector<TaskRef>) {
    loop {
        match queue.steal() {
            Steal::Success(t) => scheduler::cancel_unstarted(shared, t),
            Steal::Empty => break,
            Steal::Retry => {}
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let own =
            scheduler::with_current_runtime(|s| s.is_some_and(|s| Arc::ptr_eq(s, &self.shared)));
        if own {
            if thread::panicking() {
                return;
            }
            panic!(
                "a pinstack Runtime was dropped from inside one of its own tasks or blocking \
                 threads, which would wait for itself forever: drop it from the thread that \
                 created it"
            );
        }
        self.monitor.stop();
        stop_workers(&self.shared, std::mem::take(&mut self.workers));
    }
}
