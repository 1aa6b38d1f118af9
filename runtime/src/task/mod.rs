//! Tasks: spawning, joining, yielding.
//!
//! A task is a closure that runs as a stackful coroutine on a pooled stack.
//! Until its first run it is only the boxed closure with its name and stack
//! hint (it can be stolen by another worker); at its first run the worker
//! that popped it becomes its *home*, takes a stack from its local cache and
//! creates the coroutine, and from then on the task never leaves that thread.
//!
//! See `state.rs` for the state machine and `raw.rs` for the memory layout
//! and field-access rules.

pub(crate) mod alloc;
mod builder;
mod join;
mod name;
mod raw;
pub(crate) mod site;
mod state;
#[cfg(all(test, pinstack_loom))]
mod tests_loom;

pub use crate::task_local::LocalKey;
pub use builder::Builder;
pub use join::{JoinError, JoinHandle};
pub(crate) use raw::{Co, Header, Meta, Suspend, Task, TaskRef, TaskYielder};
pub(crate) use state::{AfterPark, Unpark};

use crate::scheduler::{self, with_current_runtime};

/// Spawns a task on the current runtime and returns a handle to join it.
///
/// Called from a task (or a `spawn_blocking` thread) of a runtime. The task
/// starts on the calling worker unless another worker is idle and this one
/// has queued work to spare, or this worker already owns many started tasks
/// (64 or more) and a peer on its NUMA node clearly fewer: then it starts
/// there, so an accept loop's connections spread over the workers. Once
/// started, a task never moves. Use [`Builder`] to name it, give it a stack
/// size hint or pin it to this worker.
///
/// # Panics
///
/// Outside a pinstack runtime (use [`Runtime::spawn`](crate::Runtime::spawn)
/// there), or when the runtime's live-task limit is reached (use
/// [`Builder::spawn`], which returns the error instead).
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::new()?;
/// rt.block_on(|| {
///     let handles: Vec<_> = (0..10).map(|i| pinstack::spawn(move || i * 2)).collect();
///     let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
///     assert_eq!(sum, 90);
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // `Builder::new().spawn(f)`, without the builder's checks (nothing to
    // check: no name, no hint).
    let meta = Meta {
        name: None,
        stack_hint: 0,
        pinned: false,
        site: std::panic::Location::caller(),
    };
    match spawn_current(f, meta, None) {
        Ok(h) => h,
        Err(e) => panic!("pinstack::spawn: {e}"),
    }
}

/// Spawns `f` on the current runtime: the worker's, or a blocking thread's
/// (borrowed, not cloned: no reference-count traffic per spawn).
pub(crate) fn spawn_current<F, T>(
    f: F,
    meta: Meta,
    on: Option<WorkerId>,
) -> std::io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    with_current_runtime(move |shared| match shared {
        Some(shared) => spawn_on(shared, f, meta, on),
        None => Err(std::io::Error::other(
            "pinstack::spawn called outside a pinstack runtime: \
             use Runtime::spawn or Handle::spawn from other threads",
        )),
    })
}

/// Spawns `f` on the runtime `shared` (the common path of every spawn),
/// on worker `on` if given.
pub(crate) fn spawn_on<F, T>(
    shared: &crate::loom::sync::Arc<scheduler::Shared>,
    f: F,
    meta: Meta,
    on: Option<WorkerId>,
) -> std::io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if shared.is_shutdown() {
        return Err(std::io::Error::other(
            "the runtime is shut down: no new tasks can be spawned",
        ));
    }
    let target = on.map(|w| w.check(shared)).transpose()?;
    let number = shared.live.try_spawn()?;
    let pinned = meta.pinned;
    let (task, handle) = Task::allocate(f, meta);
    crate::metrics::probe::on_spawn(shared, task.header(), number);
    scheduler::spawn_unstarted(shared, task, pinned, target);
    Ok(handle)
}

/// One worker thread of one runtime: where [`Builder::on_worker`] starts a
/// task. From [`current_worker`] or [`Handle::workers`](crate::Handle::workers).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkerId {
    /// The runtime's shared state, by address (compared, never
    /// dereferenced): a `WorkerId` names a worker of one runtime only.
    runtime: usize,
    index: usize,
}

impl WorkerId {
    pub(crate) fn new(shared: &scheduler::Shared, index: usize) -> WorkerId {
        WorkerId {
            runtime: shared as *const scheduler::Shared as usize,
            index,
        }
    }

    /// The worker's index in its runtime (0 to workers - 1), as in
    /// [`RuntimeMetrics::workers`](crate::RuntimeMetrics::workers).
    pub fn index(self) -> usize {
        self.index
    }

    /// The index, if this names a worker of `shared`'s runtime.
    fn check(self, shared: &scheduler::Shared) -> std::io::Result<usize> {
        if self.runtime == shared as *const scheduler::Shared as usize
            && self.index < shared.workers.len()
        {
            Ok(self.index)
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{self:?} is a worker of another runtime than the one spawning"),
            ))
        }
    }
}

impl std::fmt::Debug for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerId({})", self.index)
    }
}

/// The worker the caller runs on: inside a task, its home worker (a
/// started task never moves); `None` on threads outside the runtime.
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::new()?;
/// let here = rt.block_on(pinstack::task::current_worker);
/// assert!(here.is_some_and(|w| w.index() < rt.handle().workers().len()));
/// assert_eq!(pinstack::task::current_worker(), None); // not a worker thread
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn current_worker() -> Option<WorkerId> {
    scheduler::current_worker_id()
}

/// Completes a task whose output (or error) is stored: publishes it, drops
/// it if nobody will join, and wakes the joiner.
pub(crate) fn complete(task: &TaskRef) {
    let h = task.header();
    let c = h.state.complete();
    if c.drop_output {
        // SAFETY: state rule 5: the join handle was gone before completion.
        unsafe { task.drop_output() };
    }
    if c.wake_joiner {
        // SAFETY: the joiner published JOIN_WAKER (seen in `c`).
        if let Some(u) = unsafe { h.join_waker() } {
            u.unpark();
        }
    }
}

/// What a stack-overflow report calls the task: its name, else its spawn
/// site's file. Read by the overflow handler through the worker's label
/// source (`scheduler/context.rs`), only when a stack overflows.
pub(crate) fn overflow_label(h: &Header) -> &str {
    match &h.meta.name {
        Some(n) => n,
        None => h.meta.site.file(),
    }
}

/// Gives other tasks a turn: the current task goes to the back of its
/// worker's run queue. On a plain thread, yields the thread.
///
/// A coroutine that never suspends (no I/O, no channel, no `yield_now`)
/// keeps its worker to itself: pinstack does not preempt. Long computations
/// should call `yield_now` now and then, or run in
/// [`spawn_blocking`](crate::spawn_blocking). Such long runs are counted in
/// the runtime's metrics.
#[inline]
pub fn yield_now() {
    match scheduler::yielder_to_suspend() {
        // SAFETY: the yielder belongs to the running coroutine of this thread
        // and lives on that coroutine's stack while it runs.
        Some(y) => unsafe { (*y).suspend(Suspend::Yield) },
        None => std::thread::yield_now(),
    }
}

/// Whether the caller runs inside a pinstack task.
pub fn in_task() -> bool {
    scheduler::current_yielder().is_some()
}

/// Drops what a finished task leaves on its home thread (task-locals).
pub(crate) fn drop_locals(h: &Header) {
    crate::task_local::drop_all(h);
}

/// The current runtime, for spawns.
pub(crate) fn current_shared() -> Option<crate::loom::sync::Arc<scheduler::Shared>> {
    with_current_runtime(|s| s.cloned())
}

/// The current task's name, if it runs in a named task.
pub fn current_name() -> Option<String> {
    scheduler::with_current_task_header(|h| h.meta.name.as_deref().map(String::from)).flatten()
}
