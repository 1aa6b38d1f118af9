//! The M:N scheduler.
//!
//! One worker thread per configured worker. Each worker owns (in [`Core`],
//! touched only by its own thread):
//!
//! * `local`: a crossbeam deque of *unstarted* tasks. Only unstarted tasks
//!   may move between threads (DESIGN.md: a started coroutine never leaves
//!   its home worker), so this is the only stealable queue.
//! * `ready`: started tasks that are runnable again (woken, yielded), and
//!   pinned unstarted tasks. A plain `VecDeque`: no atomics.
//! * a LIFO slot for the task the running task just woke, so message
//!   ping-pong between two tasks of one worker does not go through the back
//!   of the queue (bounded: after `MAX_LIFO_STREAK` consecutive uses the slot
//!   yields to the queue, so two chatty tasks cannot starve the rest).
//! * a timer wheel and the mio `Poll` it sleeps in.
//!
//! Shared with other threads, in [`WorkerHandle`]: the stealer of `local`,
//! an `inbox` for wake-ups of its started tasks sent from other threads (and
//! for pinned spawns), its `mio::Waker`, and its sleep flag.
//!
//! Spawns from outside the runtime go to the global `injector`.
//!
//! Placement: a task spawned on a worker goes to that worker's `local` deque
//! (two tasks that talk should share a worker: a started task cannot move
//! later). A thief takes unstarted tasks only when the victim holds at least
//! [`STEAL_MIN`] of them, or when the monitor flagged the victim as stuck in
//! a long run; it then takes half. When a local push leaves `STEAL_MIN` or
//! more queued and a worker sleeps, exactly one sleeper is woken to steal.
//!
//! Sleeping and waking (no lost wake-ups, no thundering herd): a worker
//! that found nothing increments `Idle::sleepers` and sets its `sleeping`
//! flag (SeqCst), re-checks every source, then sleeps in
//! `Poll::poll`. A producer publishes the work, issues a SeqCst fence, then
//! reads the flags: either it sees the sleeper, or the sleeper's re-check
//! sees the work. A producer wakes a sleeper only by winning the swap of its
//! flag from true to false, so each sleeper is woken once. The protocol is
//! `idle::SleepFlag`, checked by the loom models in `tests_loom.rs`.

mod context;
mod idle;
mod monitor;
#[cfg(all(test, pinstack_loom))]
mod tests_loom;
mod worker;

pub(crate) use context::{current_task, set_thread_runtime, with_current_runtime};
pub(crate) use idle::{Idle, SleepFlag};
pub(crate) use monitor::Monitor;
pub(crate) use worker::{cancel_unstarted, run_worker, Core, WAKER_TOKEN};

use crate::loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use crate::loom::sync::Arc;
use crate::task::TaskRef;
use crossbeam_deque::{Injector, Stealer};
use crossbeam_utils::CachePadded;
use pinstack_stackpool::StackPool;
use std::fmt;
use std::time::Instant;

/// A victim must hold at least this many unstarted tasks to be stolen from
/// (unless it is stuck in a long run). Two or three tasks spawned together
/// (a request and its helper, two ping-pong partners) start together on the
/// spawner's worker: the spawner runs them as soon as it suspends, and once
/// started they could never meet on one worker again.
pub(crate) const STEAL_MIN: usize = 4;
/// Bounds of the adaptive pre-sleep spin, in rounds. A worker with nothing
/// to do keeps looking for work for a while before it sleeps, while another
/// worker is awake (and so may produce work): a steal or a cross-worker
/// wake then needs no eventfd write and no wake-up. A round is a look at
/// every queue plus [`SPIN_PAUSES`] `pause` instructions: ~0.5 us on the
/// development VM (`pause` costs ~27 ns on its EPYC, ~30 ns on Skylake-SP),
/// so the spin lasts ~4 us to ~130 us. Each worker doubles its budget when
/// a spin found work and halves it when it ran out: a worker whose peers
/// rarely produce work (an I/O-bound server, where the spin only burns the
/// CPU the clients' side needs) spins little.
pub(crate) const SPIN_MIN_ROUNDS: u32 = 8;
/// See [`SPIN_MIN_ROUNDS`].
pub(crate) const SPIN_MAX_ROUNDS: u32 = 256;
/// `pause` instructions per spin round.
pub(crate) const SPIN_PAUSES: u32 = 16;
/// A worker starts an unstarted task on a peer of its node instead when it
/// owns at least this many started tasks and the peer clearly fewer (see
/// `worker::hand_off_target`). Below it, the peer's counter is not even
/// read: the spawn hot path stays free of shared cache lines.
pub(crate) const BALANCE_MIN_LIVE: usize = 64;
/// Consecutive LIFO-slot runs before the slot yields to the ready queue.
pub(crate) const MAX_LIFO_STREAK: u32 = 16;
/// Consecutive unstarted tasks run while started ones wait in `ready`.
pub(crate) const MAX_LOCAL_STREAK: u32 = 8;
/// Run-queue ticks between maintenance passes (timers, I/O, injector).
pub(crate) const MAINTENANCE_INTERVAL: u32 = 61;
/// Tasks woken by one I/O poll that go to the front of the ready queue;
/// the rest go to the back. Under half of [`MAINTENANCE_INTERVAL`], so a
/// flood of readiness leaves most of every interval to the rest of the queue.
pub(crate) const MAX_IO_FIRST: usize = 24;

/// The part of a worker other threads may touch.
pub(crate) struct WorkerHandle {
    pub(crate) index: usize,
    /// The NUMA node this worker runs on.
    pub(crate) node: usize,
    pub(crate) stealer: Stealer<TaskRef>,
    pub(crate) inbox: Injector<TaskRef>,
    pub(crate) waker: mio::Waker,
    /// Set while the worker sleeps in its poller; cleared by whoever wakes it.
    pub(crate) sleeping: SleepFlag,
    /// Set by the monitor while the worker is in a long run.
    pub(crate) stuck: AtomicBool,
    /// Resume counter: odd while a coroutine runs. Written only by the
    /// worker (plain store, twice per resume), sampled by the monitor. On a
    /// line of its own, like `live` and `stats`: what the worker writes on
    /// every resume must not share a cache line with what its peers read
    /// while they look for work (`stealer`, `stuck`, `index`), or every
    /// spinning peer takes a miss per resume (measured: the `spawn`
    /// workload 1.5x slower with the counters of metrics on that line).
    pub(crate) resume_seq: CachePadded<AtomicU64>,
    /// Started tasks queued on this worker (its `ready` queue) as of its
    /// last maintenance pass (plain store by the worker). Peers balance
    /// against this plus `stealer.len()`, which counts only the unstarted
    /// ones. Only the slowly changing part is published: a stale total
    /// would make a thief take every unstarted task.
    pub(crate) started_queued: AtomicUsize,
    /// Started, unfinished tasks homed on this worker (the size of its
    /// `Owned` slab, stored by the worker at each first run and finish), for
    /// start-time balancing.
    pub(crate) live: CachePadded<AtomicUsize>,
    pub(crate) stats: CachePadded<crate::metrics::WorkerCounters>,
    /// The worker's poller registry, for registering and deregistering
    /// sockets from any thread.
    pub(crate) registry: mio::Registry,
    /// Poller tokens of deregistered sockets, released by the worker between
    /// polls (see `net/source.rs`).
    releases: crate::loom::sync::Mutex<Vec<usize>>,
    idle: Arc<Idle>,
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        // The worker thread has exited: nothing polls any more.
        self.drain_releases();
    }
}

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl WorkerHandle {
    pub(crate) fn new(
        index: usize,
        node: usize,
        stealer: Stealer<TaskRef>,
        waker: mio::Waker,
        registry: mio::Registry,
        idle: Arc<Idle>,
    ) -> WorkerHandle {
        WorkerHandle {
            index,
            node,
            stealer,
            inbox: Injector::new(),
            waker,
            sleeping: SleepFlag::default(),
            stuck: AtomicBool::new(false),
            resume_seq: CachePadded::new(AtomicU64::new(0)),
            started_queued: AtomicUsize::new(0),
            live: CachePadded::new(AtomicUsize::new(0)),
            stats: Default::default(),
            registry,
            releases: Default::default(),
            idle,
        }
    }

    /// Releases the poller's reference to a deregistered socket's readiness
    /// cell: at once on this worker's own thread (no poll is in progress
    /// while a task runs), else at the worker's next poll.
    pub(crate) fn release_source(&self, token: usize) {
        let here = context::with_context(|cx| cx.is_some_and(|cx| std::ptr::eq(&*cx.handle, self)));
        if here {
            // SAFETY: deregistered, and this thread is the one that polls:
            // no event naming the token can be in flight.
            unsafe { crate::net::source::release(token) };
        } else {
            self.releases
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(token);
        }
    }

    /// Releases the tokens queued by other threads (worker thread, between
    /// polls; or after the worker exited).
    pub(crate) fn drain_releases(&self) {
        let tokens = std::mem::take(&mut *self.releases.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tokens {
            // SAFETY: each token was deregistered and queued once, and no
            // poll is in progress on this worker now.
            unsafe { crate::net::source::release(t) };
        }
    }

    /// Queues a task on this worker from another thread and wakes the worker
    /// if it sleeps.
    pub(crate) fn push_remote(&self, task: TaskRef) {
        self.inbox.push(task);
        fence(SeqCst);
        self.wake_if_sleeping();
    }

    /// Wakes the worker if it sleeps; returns whether this call woke it.
    pub(crate) fn wake_if_sleeping(&self) -> bool {
        if self.sleeping.notify(&self.idle) {
            self.wake_poller();
            return true;
        }
        false
    }

    /// Wakes the worker's poller (after claiming its sleep).
    fn wake_poller(&self) {
        // A failed eventfd write leaves the worker to its poll timeout;
        // there is nothing better to do with the error here.
        let _ = self.waker.wake();
    }

    /// Whether a thief may take from this worker now.
    pub(crate) fn has_stealable(&self) -> bool {
        let n = self.stealer.len();
        n >= STEAL_MIN || (n > 0 && self.stuck.load(Relaxed))
    }
}

/// Runtime-wide state.
pub(crate) struct Shared {
    pub(crate) workers: Box<[Arc<WorkerHandle>]>,
    /// For each worker, the others in steal order (same NUMA node first).
    pub(crate) steal_order: Box<[Box<[usize]>]>,
    pub(crate) injector: Injector<TaskRef>,
    pub(crate) idle: Arc<Idle>,
    pub(crate) shutdown: AtomicBool,
    /// One stack pool per memory node under `Bind` (slabs bound there),
    /// else one shared pool; each worker's `Core` holds its own.
    pub(crate) pools: Box<[StackPool]>,
    pub(crate) config: crate::builder::Config,
    pub(crate) blocking: crate::blocking::BlockingPool,
    pub(crate) live: crate::metrics::LiveTasks,
    /// Metrics and tracing state (`metrics/obs.rs`).
    pub(crate) obs: crate::metrics::Obs,
    /// Origin of the timer ticks of every worker.
    pub(crate) time_base: Instant,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Queues an unstarted task from outside any worker of this runtime.
    pub(crate) fn push_injector(&self, task: TaskRef) {
        self.injector.push(task);
        fence(SeqCst);
        self.notify_one();
    }

    /// Wakes one sleeping worker, if any, to look for work.
    pub(crate) fn notify_one(&self) {
        let w = &self.workers;
        if let Some(i) = self.idle.claim_one(w.len(), |i| &w[i].sleeping) {
            w[i].wake_poller();
        }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Acquire)
    }
}

/// Queues a started task that was just unparked, on its home worker.
pub(crate) fn schedule_started(task: TaskRef) {
    let Some(home) = task.header().home() else {
        debug_assert!(false, "unparked a task that never started");
        return;
    };
    // Compared by address only: a wake-up on the home thread (the common
    // case) takes no reference to the worker handle.
    let home: *const WorkerHandle = &**home;
    if let Some(task) = context::try_push_local(home, task) {
        // The task may run and be freed once it is in the inbox: hold the
        // handle ourselves for the wake-up.
        let home = task
            .header()
            .home()
            .expect("checked above: a started task has a home")
            .clone();
        home.push_remote(task);
    }
}

/// Queues a new, unstarted task: on the calling worker if it belongs to the
/// same runtime, else in the injector. With `on` (`Builder::on_worker`; the
/// task is then pinned), on that worker: this thread's queue if it is that
/// worker, else the worker's inbox (waking it if it sleeps).
pub(crate) fn spawn_unstarted(
    shared: &Arc<Shared>,
    task: TaskRef,
    pinned: bool,
    on: Option<usize>,
) {
    debug_assert!(
        on.is_none() || pinned,
        "a task placed on a worker is pinned"
    );
    let leftover = context::with_context(|cx| match cx {
        Some(cx) if Arc::ptr_eq(&cx.shared, shared) && on.is_none_or(|w| w == cx.handle.index) => {
            let Ok(mut core) = cx.core.try_borrow_mut() else {
                return Some(task);
            };
            if pinned {
                core.ready.push_back(task);
                return None;
            }
            core.local.push(task);
            let excess = core.local.len() >= STEAL_MIN;
            drop(core);
            cx.handle.stats.spawned_here();
            // The fence of the sleep protocol only when somebody sleeps: a
            // spawner with a backlog and awake peers (a loop of a million
            // spawns) pays a plain load per spawn, not a full fence. A
            // sleeper whose increment this load misses cannot strand the
            // task: it sits on this worker, which is awake and runs it, and
            // the next spawn sees the sleeper.
            if excess && shared.idle.sleepers.load(Relaxed) > 0 {
                fence(SeqCst);
                shared.notify_one();
            }
            None
        }
        _ => Some(task),
    });
    if let Some(task) = leftover {
        match on {
            Some(w) => shared.workers[w].push_remote(task),
            None => shared.push_injector(task),
        }
    }
}

/// The worker this thread is, if it is one.
pub(crate) fn current_worker_id() -> Option<crate::task::WorkerId> {
    context::with_context(|cx| cx.map(|cx| crate::task::WorkerId::new(&cx.shared, cx.handle.index)))
}

/// The running coroutine's yielder, if this thread is resuming a task.
pub(crate) fn current_yielder() -> Option<*const crate::task::TaskYielder> {
    context::with_current_task(|t| t.header().yielder())
}

/// For `yield_now`: the running coroutine's yielder, if this thread is
/// resuming a task (which is about to suspend: `Header::yielder_to_suspend`).
#[inline]
pub(crate) fn yielder_to_suspend() -> Option<*const crate::task::TaskYielder> {
    context::with_current_task(|t| t.header().yielder_to_suspend())
}

/// For `park`: `None` outside a task; `Some(None)` if the task's park token
/// was there (and is now consumed); `Some(Some(yielder))` to suspend.
pub(crate) fn token_or_yielder() -> Option<Option<*const crate::task::TaskYielder>> {
    context::with_current_task(|t| {
        let h = t.header();
        (!h.state.take_token()).then(|| h.yielder_to_suspend())
    })
}

/// A timer armed by a parked task.
#[derive(Debug)]
pub(crate) struct TimerKey(crate::time::wheel::TimerKey);

/// Arms a timer that unparks the running task at `deadline`; `None` outside
/// a task.
pub(crate) fn arm_timer(deadline: Instant) -> Option<TimerKey> {
    context::with_context(|cx| {
        let cx = cx?;
        let t = cx.current.get();
        // SAFETY: non-null only during the task's resume (context.rs).
        let task = unsafe { t.as_ref() }?.clone();
        let tick = worker::deadline_tick(&cx.shared, deadline);
        let key = cx.core.borrow_mut().wheel.insert(tick, task);
        Some(TimerKey(key))
    })
}

/// Cancels a timer armed by [`arm_timer`] (harmless if it fired).
pub(crate) fn cancel_timer(key: TimerKey) {
    let removed =
        context::with_context(|cx| cx.and_then(|cx| cx.core.borrow_mut().wheel.cancel(key.0)));
    drop(removed);
}

/// Calls `f` with the running task's header, if this thread resumes one.
pub(crate) fn with_current_task_header<R>(f: impl FnOnce(&crate::task::Header) -> R) -> Option<R> {
    context::with_current_task(|t| f(t.header()))
}

/// Whether the caller runs inside a task (a coroutine) of a worker.
pub(crate) fn in_worker_task() -> bool {
    current_yielder().is_some()
}

/// The worker this thread runs, if it is a worker thread.
pub(crate) fn current_worker() -> Option<Arc<WorkerHandle>> {
    context::with_context(|cx| cx.map(|cx| cx.handle.clone()))
}
