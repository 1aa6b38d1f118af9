//! The thread-local context: which worker (if any) runs on this thread, and
//! which task it is resuming.
//!
//! A coroutine never leaves its home worker's thread, so reading the
//! thread-local from inside a coroutine always finds its own worker.

use super::{Core, Shared, WorkerHandle};
use crate::loom::sync::Arc;
use crate::task::TaskRef;
use std::cell::{Cell, RefCell};
use std::ptr;

/// A worker thread's context. Lives on the worker thread's own stack for the
/// thread's whole run; the thread-local points at it.
pub(crate) struct Context {
    pub(crate) shared: Arc<Shared>,
    pub(crate) handle: Arc<WorkerHandle>,
    /// Borrowed by the worker loop between resumes and by code inside a
    /// coroutine (spawn, timers); never across a resume.
    pub(crate) core: RefCell<Core>,
    /// The task being resumed, or null. Points at a `TaskRef` the worker
    /// keeps alive for the whole resume.
    pub(crate) current: Cell<*const TaskRef>,
    /// Local wake-ups made while `core` was borrowed (I/O events during a
    /// poll); moved to the ready queue right after.
    pub(crate) deferred: RefCell<Vec<TaskRef>>,
}

thread_local! {
    static CONTEXT: Cell<*const Context> = const { Cell::new(ptr::null()) };
    /// The runtime of a non-worker thread that belongs to one (the blocking
    /// pool's threads), so `spawn` works there too.
    static RUNTIME: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

/// Clears the worker context when the worker loop exits (or unwinds).
pub(crate) struct EnterGuard(());

impl Drop for EnterGuard {
    fn drop(&mut self) {
        // SAFETY: removing the label source is always allowed.
        unsafe { pinstack_stackpool::set_overflow_label_source(None, ptr::null()) };
        CONTEXT.with(|c| c.set(ptr::null()));
    }
}

/// Installs `cx` as this thread's worker context until the guard drops,
/// and names the running task in stack-overflow reports (`overflow_label`):
/// once per thread, so a resume stores no label.
///
/// # Safety
/// `cx` must outlive the returned guard.
pub(crate) unsafe fn enter(cx: &Context) -> EnterGuard {
    CONTEXT.with(|c| c.set(cx));
    let ctx: *const Context = cx;
    // SAFETY: `overflow_label` only reads `cx.current` and the header it
    // points to; `cx` outlives the guard (the caller's contract), whose drop
    // removes the source.
    unsafe { pinstack_stackpool::set_overflow_label_source(Some(overflow_label), ctx.cast()) };
    EnterGuard(())
}

/// The stack-overflow label of the task `ctx` (a `Context`) is resuming:
/// its name, else its spawn site's file.
///
/// # Safety
/// `ctx` points at a live `Context` of this thread. Called by the overflow
/// handler (a signal handler): it only reads.
unsafe fn overflow_label(ctx: *const ()) -> (*const u8, usize) {
    // SAFETY: the caller's contract.
    let cx = unsafe { &*ctx.cast::<Context>() };
    // SAFETY: `current` is non-null only while the worker resumes that
    // task, and the worker keeps the `TaskRef` alive during the resume.
    match unsafe { cx.current.get().as_ref() } {
        Some(task) => {
            let label = crate::task::overflow_label(task.header());
            (label.as_ptr(), label.len())
        }
        None => (ptr::null(), 0),
    }
}

/// Marks this thread as belonging to `shared` (blocking-pool threads).
pub(crate) fn set_thread_runtime(shared: Option<Arc<Shared>>) {
    RUNTIME.with(|r| *r.borrow_mut() = shared);
}

/// Calls `f` with this thread's worker context, if it is a worker thread.
#[inline]
pub(crate) fn with_context<R>(f: impl FnOnce(Option<&Context>) -> R) -> R {
    CONTEXT.with(|c| {
        let p = c.get();
        // SAFETY: a non-null pointer was installed by `enter`, whose caller
        // keeps the context alive until the guard clears the pointer.
        f(unsafe { p.as_ref() })
    })
}

/// Calls `f` with the running task, if this thread is resuming one.
#[inline]
pub(crate) fn with_current_task<R>(f: impl FnOnce(&TaskRef) -> R) -> Option<R> {
    with_context(|cx| {
        let cx = cx?;
        let t = cx.current.get();
        // SAFETY: `current` is non-null only while the worker resumes that
        // task, and the worker keeps the `TaskRef` alive during the resume.
        unsafe { t.as_ref() }.map(f)
    })
}

/// A new reference to the running task: its spare reference if it has one
/// (`TaskRef::keep_as_spare`), else a clone.
pub(crate) fn current_task() -> Option<TaskRef> {
    with_current_task(TaskRef::spare_or_clone)
}

/// The runtime this thread belongs to: its worker's, or a blocking thread's.
pub(crate) fn with_current_runtime<R>(f: impl FnOnce(Option<&Arc<Shared>>) -> R) -> R {
    let mut f = Some(f);
    let r = with_context(|cx| cx.map(|cx| (f.take().expect("called once"))(Some(&cx.shared))));
    match r {
        Some(r) => r,
        None => RUNTIME.with(|rt| (f.take().expect("called once"))(rt.borrow().as_ref())),
    }
}

/// Queues `task` in this thread's LIFO slot if this thread is the worker
/// `home` points at (compared by address, never dereferenced)
/// and its core is free; otherwise hands the task back.
pub(crate) fn try_push_local(home: *const WorkerHandle, task: TaskRef) -> Option<TaskRef> {
    with_context(|cx| match cx {
        Some(cx) if ptr::eq(&*cx.handle, home) => match cx.core.try_borrow_mut() {
            Ok(mut core) => {
                core.push_lifo(task);
                None
            }
            Err(_) => {
                cx.deferred.borrow_mut().push(task);
                None
            }
        },
        _ => Some(task),
    })
}
