//! The blocking pool: threads for work that would stall a worker.
//!
//! Bounded (`max_blocking_threads`) and growing: a job starts a new thread
//! when no thread is idle and the bound allows; idle threads exit after
//! `blocking_keep_alive`. A job is an ordinary unstarted task run inline on
//! the pool thread (no coroutine), so its `JoinHandle` is the usual one and
//! a coroutine joining it suspends instead of blocking its worker.

use crate::builder::Config;
use crate::loom::sync::{Arc, Condvar, Mutex};
use crate::scheduler::{self, Shared};
use crate::task::{self, JoinHandle, Meta, Task, TaskRef};
use std::collections::VecDeque;
use std::panic::Location;
use std::thread;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct BlockingPool {
    state: Mutex<State>,
    cv: Condvar,
    max_threads: usize,
    keep_alive: Duration,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<TaskRef>,
    idle: usize,
    threads: usize,
    shutdown: bool,
    handles: Vec<thread::JoinHandle<()>>,
}

impl BlockingPool {
    pub(crate) fn new(config: &Config) -> BlockingPool {
        BlockingPool {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            max_threads: config.max_blocking_threads,
            keep_alive: config.blocking_keep_alive,
        }
    }

    fn lock(&self) -> crate::loom::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, shared: &Arc<Shared>, task: TaskRef) {
        let mut st = self.lock();
        if st.shutdown {
            drop(st);
            scheduler::cancel_unstarted(shared, task);
            return;
        }
        st.queue.push_back(task);
        if st.idle > 0 {
            drop(st);
            self.cv.notify_one();
            return;
        }
        if st.threads < self.max_threads {
            st.handles.retain(|h| !h.is_finished());
            let shared2 = shared.clone();
            let spawned = thread::Builder::new()
                .name(format!("{}-blocking", shared.config.thread_name))
                .spawn(move || blocking_thread(shared2));
            // If the OS refuses a thread, the job waits for a busy thread to
            // free up (there is at least one when threads > 0).
            if let Ok(h) = spawned {
                st.threads += 1;
                st.handles.push(h);
            } else if st.threads == 0 {
                let task = st.queue.pop_back();
                drop(st);
                if let Some(t) = task {
                    scheduler::cancel_unstarted(shared, t);
                }
            }
        }
    }

    /// Stops accepting jobs, cancels queued ones, waits for running ones.
    pub(crate) fn shutdown(&self, shared: &Shared) {
        let (queued, handles) = {
            let mut st = self.lock();
            st.shutdown = true;
            (
                std::mem::take(&mut st.queue),
                std::mem::take(&mut st.handles),
            )
        };
        self.cv.notify_all();
        for t in queued {
            scheduler::cancel_unstarted(shared, t);
        }
        for h in handles {
            let _ = h.join();
        }
    }
}

fn blocking_thread(shared: Arc<Shared>) {
    if let Some(f) = &shared.config.on_thread_start {
        f();
    }
    scheduler::set_thread_runtime(Some(shared.clone()));
    let pool = &shared.blocking;
    let mut st = pool.lock();
    loop {
        if let Some(task) = st.queue.pop_front() {
            drop(st);
            // SAFETY: the task was popped from the pool's queue, so this
            // thread alone runs it, and it never started.
            unsafe { task.run_inline() };
            task::complete(&task);
            shared.live.finished();
            drop(task);
            st = pool.lock();
            continue;
        }
        if st.shutdown {
            break;
        }
        st.idle += 1;
        let (g, timeout) = pool
            .cv
            .wait_timeout(st, pool.keep_alive)
            .unwrap_or_else(|e| e.into_inner());
        st = g;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            break;
        }
    }
    st.threads -= 1;
    drop(st);
    scheduler::set_thread_runtime(None);
    if let Some(f) = &shared.config.on_thread_stop {
        f();
    }
}

pub(crate) fn spawn_blocking_on<F, T>(
    shared: &Arc<Shared>,
    f: F,
    site: &'static Location<'static>,
) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let meta = Meta {
        name: None,
        stack_hint: 0,
        pinned: false,
        site,
    };
    let (t, h) = Task::allocate(f, meta);
    if let Err(e) = shared.live.try_spawn() {
        panic!("spawn_blocking: {e}");
    }
    shared.blocking.push(shared, t);
    h
}

/// Runs blocking work (file I/O, a C library call, heavy computation) on a
/// separate pool of threads, so the calling worker keeps running other tasks.
/// Joining the handle from a task suspends only that task.
///
/// # Panics
///
/// Outside a pinstack runtime (use [`Handle::spawn_blocking`](crate::Handle::spawn_blocking)),
/// or when the live-task limit is reached.
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::new()?;
/// let n = rt.block_on(|| {
///     pinstack::spawn_blocking(|| std::fs::read_dir(".").map(|d| d.count()).unwrap_or(0))
///         .join()
///         .unwrap()
/// });
/// assert!(n > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let site = Location::caller();
    match task::current_shared() {
        Some(shared) => spawn_blocking_on(&shared, f, site),
        None => panic!("pinstack::spawn_blocking called outside a pinstack runtime"),
    }
}
