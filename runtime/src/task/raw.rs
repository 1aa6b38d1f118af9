//! The task allocation and its type-erased views.
//!
//! One spawn is one allocation, an `Arc<Task<F, T>>`:
//!
//! ```text
//! Arc<Task<F, T>>
//! +--------------------------------------------------------------+
//! | Header (not generic)                                         |
//! |   state        AtomicUsize      any thread (see state.rs)    |
//! |   home         Arc<WorkerHandle> written once, at first run  |
//! |   coroutine    Coroutine<..>     home worker thread only     |
//! |   join_waker   Unparker          joiner, then completer      |
//! |   meta         name, stack hint, spawn site (immutable)      |
//! +--------------------------------------------------------------+
//! | stage: Unstarted(F) | Running | Finished(Result<T>) | Taken   |
//! +--------------------------------------------------------------+
//! ```
//!
//! The scheduler sees it as a [`TaskRef`] (`Arc<dyn RawTask>`); the join
//! handle sees the same allocation as `Arc<dyn JoinOutput<T>>`.
//!
//! Field access rules:
//! 1. `stage` holds `F` until the first run, which takes it on the home worker
//!    (or on a blocking-pool thread for `spawn_blocking`). Only the thread that
//!    popped the task with `SCHEDULED` set touches it then (state rule 2).
//! 2. The output is written into `stage` before `COMPLETE` is set and read by
//!    the join handle only after it observed `COMPLETE` (state rule 4); it is
//!    dropped by whichever side state rule 5 names.
//! 3. `coroutine`, `yielder`, `suspend_sp` and `owned_slot` are touched only on the home
//!    worker's thread. The coroutine (and its stack) is removed when the task
//!    completes or is cancelled, on that thread, so the `!Send` coroutine
//!    never crosses a thread even if the last `Arc` is dropped elsewhere.
//! 4. `home` is written once at first run, before the coroutine can create an
//!    unparker; any thread that later unparks the task got that unparker
//!    through some synchronisation, which orders the write before its read.
//!    It is read only by an unpark that took the task out of idle, before
//!    that unpark queues the task; so once the task runs again nobody is
//!    reading it, and `finish` (the task returned) takes it out on the home
//!    thread. Shutdown's cancellation leaves it (an unpark may race there).

use super::join::JoinError;
use super::state::State;
use crate::loom::UnsafeCell;
// The task allocation is always a std `Arc`: it is shared through trait
// objects (`Arc<dyn RawTask>`), which loom's `Arc` cannot express. The loom
// models check the state word (`state.rs`), which does go through the shim.
use crate::park::Unparker;
use crate::scheduler::WorkerHandle;
use corosensei::{Coroutine, Yielder};
use pinstack_stackpool::PooledStack;
use std::cell::Cell;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;

/// What a suspending coroutine asks its worker to do.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Suspend {
    /// Re-queue behind the other runnable tasks.
    Yield,
    /// Park until unparked.
    Park(crate::park::Reason),
}

pub(crate) type Co = Coroutine<(), Suspend, (), PooledStack>;
pub(crate) type TaskYielder = Yielder<(), Suspend>;

/// The scheduler's handle to a task.
pub(crate) type TaskRef = Arc<dyn RawTask>;

/// Immutable facts about a task, fixed at spawn.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) name: Option<Box<str>>,
    /// Stack size hint in bytes (0: the runtime's default); at most 8 MiB
    /// (`SizeClass::for_hint` checked it), so 32 bits keep `Meta` to 32
    /// bytes.
    pub(crate) stack_hint: u32,
    /// Start on the spawning worker and never be stolen.
    pub(crate) pinned: bool,
    pub(crate) site: &'static Location<'static>,
}

/// `repr(C)`: the fields a resume touches come first and together (72
/// bytes, at most two cache lines, which the worker prefetches for the task
/// it will resume next: `scheduler/worker.rs`); the rest follows.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    yielder: Cell<*const TaskYielder>,
    /// Roughly the coroutine's stack pointer at its last suspension (an
    /// address in the frame that called `suspend`), 0 before: where its next
    /// resume starts reading its stack.
    suspend_sp: Cell<usize>,
    coroutine: UnsafeCell<Option<Co>>,
    /// Wake-up stamp and trace record (`trace/task.rs` rules).
    pub(crate) obs: crate::trace::TaskObs,
    pub(crate) meta: Meta,
    home: UnsafeCell<Option<crate::loom::sync::Arc<WorkerHandle>>>,
    join_waker: UnsafeCell<Option<Unparker>>,
    owned_slot: Cell<usize>,
    locals: UnsafeCell<Option<Box<crate::task_local::LocalMap>>>,
}

// SAFETY: the `Cell` and `UnsafeCell` fields follow the access rules in the
// module docs: `coroutine`, `yielder`, `suspend_sp` and `owned_slot` are only touched on the
// home worker thread (rule 3); `home` is written once before it can be read
// elsewhere (rule 4); `join_waker` is handed over through the `JOIN_WAKER`
// bit (state rule 6). Everything else is atomic or immutable.
unsafe impl Sync for Header {}
// SAFETY: as above; the `!Send` coroutine is dropped on its home thread
// before the header can be dropped anywhere else (rule 3).
unsafe impl Send for Header {}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("state", &format_args!("{:#b}", self.state.load()))
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl Header {
    fn new(meta: Meta) -> Header {
        Header {
            state: State::new_scheduled(),
            yielder: Cell::new(std::ptr::null()),
            suspend_sp: Cell::new(0),
            coroutine: UnsafeCell::new(None),
            obs: Default::default(),
            meta,
            home: UnsafeCell::new(None),
            join_waker: UnsafeCell::new(None),
            owned_slot: Cell::new(usize::MAX),
            locals: UnsafeCell::new(None),
        }
    }

    /// The worker this started task lives on, `None` before its first run.
    pub(crate) fn home(&self) -> Option<&crate::loom::sync::Arc<WorkerHandle>> {
        // SAFETY: written once before any reader can exist (rule 4).
        self.home.with(|h| unsafe { (*h).as_ref() })
    }

    /// # Safety
    /// Home worker thread, first run, before the coroutine is created.
    pub(crate) unsafe fn set_home(&self, home: crate::loom::sync::Arc<WorkerHandle>) {
        // SAFETY: the caller is the first run; nobody reads `home` yet (rule 4).
        self.home.with_mut(|h| unsafe { *h = Some(home) });
    }

    /// Drops the reference to the home worker when the task finished, on
    /// that worker's thread: so the handle's reference count is touched by
    /// one thread only (`set_home` and this), not bounced between the home
    /// worker and whichever thread frees the task.
    ///
    /// # Safety
    /// Home worker thread, in `finish` of a task that ran to its end (not at
    /// shutdown): nobody reads `home` any more (rule 4).
    pub(crate) unsafe fn take_home(&self) -> Option<crate::loom::sync::Arc<WorkerHandle>> {
        // SAFETY: the caller's contract; see rule 4.
        self.home.with_mut(|h| unsafe { (*h).take() })
    }

    /// The running coroutine's coroutine slot.
    ///
    /// # Safety
    /// Home worker thread only, and no other reference to the slot is live.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn coroutine(&self) -> &mut Option<Co> {
        // SAFETY: the caller guarantees home-thread, exclusive access (rule 3).
        self.coroutine.with_mut(|c| unsafe { &mut *c })
    }

    /// The task-local values.
    ///
    /// # Safety
    /// Home worker thread only, and no other reference to the slot is live.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn locals(&self) -> &mut Option<Box<crate::task_local::LocalMap>> {
        // SAFETY: the caller guarantees home-thread, exclusive access (rule 3).
        self.locals.with_mut(|l| unsafe { &mut *l })
    }

    /// The running coroutine's yielder (it lives at the top of the
    /// coroutine's stack), null before the first run. Home thread only.
    #[inline]
    pub(crate) fn yielder(&self) -> *const TaskYielder {
        self.yielder.get()
    }

    /// The yielder, for a coroutine about to suspend: also notes where its
    /// stack pointer is, for the prefetch before its next resume. Running
    /// coroutine only (home thread).
    #[inline(always)]
    pub(crate) fn yielder_to_suspend(&self) -> *const TaskYielder {
        let marker = 0u8;
        self.suspend_sp.set(std::ptr::addr_of!(marker) as usize);
        self.yielder.get()
    }

    /// Where the coroutine's stack pointer was at its last suspension
    /// (approximately), 0 if it never suspended. Home thread only.
    #[inline]
    pub(crate) fn suspend_sp(&self) -> usize {
        self.suspend_sp.get()
    }

    pub(crate) fn owned_slot(&self) -> usize {
        self.owned_slot.get()
    }

    pub(crate) fn set_owned_slot(&self, slot: usize) {
        self.owned_slot.set(slot)
    }

    /// # Safety
    /// Called by the single joiner, before it sets `JOIN_WAKER`.
    pub(crate) unsafe fn store_join_waker(&self, u: Unparker) {
        // SAFETY: only the joiner writes, and only before publishing the bit.
        self.join_waker.with_mut(|w| unsafe { *w = Some(u) });
    }

    /// # Safety
    /// Called by the completer after it saw `JOIN_WAKER` set.
    pub(crate) unsafe fn join_waker(&self) -> Option<Unparker> {
        // SAFETY: the joiner no longer writes once the bit is set.
        self.join_waker.with(|w| unsafe { (*w).clone() })
    }
}

enum Stage<F, T> {
    Unstarted(F),
    Running,
    Finished(Result<T, JoinError>),
    Taken,
}

/// `repr(C)` with the header first: the header sits at offset 0 of every
/// task, so `dyn RawTask::header` is a pointer cast, not a virtual call.
#[repr(C)]
pub(crate) struct Task<F, T> {
    header: Header,
    stage: UnsafeCell<Stage<F, T>>,
}

// SAFETY: `stage` is accessed under the state machine's rules 1 and 2, which
// make the accesses of different threads happen-before one another; `F` and
// `T` are `Send`, so moving them between those threads is allowed.
unsafe impl<F: Send, T: Send> Sync for Task<F, T> {}

/// What the scheduler does with a task of any closure and output type.
///
/// Implemented only by [`Task`], whose header is at offset 0 (see
/// `<dyn RawTask>::header`).
pub(crate) trait RawTask: Send + Sync + 'static {
    /// Creates the coroutine that will run the closure on `stack`.
    ///
    /// # Safety
    /// First run, on the home worker; the stage holds the closure.
    unsafe fn make_coroutine(self: Arc<Self>, stack: PooledStack) -> Co;

    /// Runs the closure to completion on this thread, without a coroutine
    /// (the blocking pool), catching a panic.
    ///
    /// # Safety
    /// As `make_coroutine`: the caller popped the unstarted task.
    unsafe fn run_inline(&self);

    /// Stores a failure as the output (panic, cancellation, no stack), and
    /// drops the closure if it never ran.
    ///
    /// # Safety
    /// The caller runs or owns the task, and it is not complete.
    unsafe fn store_error(&self, err: JoinError);

    /// Drops the output (nobody will join it).
    ///
    /// # Safety
    /// State rule 5 says this caller drops it.
    unsafe fn drop_output(&self);
}

/// The join handle's view.
pub(crate) trait JoinOutput<T>: Send + Sync {
    fn header(&self) -> &Header;

    /// # Safety
    /// `COMPLETE` was observed, and the output was not taken yet.
    unsafe fn take_output(&self) -> Result<T, JoinError>;
}

impl<F, T> Task<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(f: F, meta: Meta) -> Arc<Task<F, T>> {
        Arc::new(Task {
            header: Header::new(meta),
            stage: UnsafeCell::new(Stage::Unstarted(f)),
        })
    }

    /// # Safety
    /// Access rule 1: the caller runs the task's first run.
    unsafe fn take_fn(&self) -> F {
        // SAFETY: the caller has exclusive access to the stage (rule 1).
        self.stage.with_mut(
            |s| match std::mem::replace(unsafe { &mut *s }, Stage::Running) {
                Stage::Unstarted(f) => f,
                _ => unreachable!("task started twice"),
            },
        )
    }

    /// # Safety
    /// The caller runs the task and has not set `COMPLETE` yet.
    unsafe fn store(&self, out: Result<T, JoinError>) {
        // SAFETY: nobody else reads the stage before COMPLETE (rule 2).
        self.stage
            .with_mut(|s| unsafe { *s = Stage::Finished(out) });
    }
}

impl<F, T> Task<F, T> {
    /// The task's header.
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }
}

impl dyn RawTask {
    /// The task's header, without a virtual call (the scheduler asks for it
    /// several times per resume).
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: `Task<F, T>` is the only implementor of `RawTask`, and it
        // is `repr(C)` with `header` as its first field, so the data pointer
        // of any `dyn RawTask` points at a live `Header` borrowed as long as
        // `self`.
        unsafe { &*(self as *const dyn RawTask as *const Header) }
    }
}

impl<F, T> RawTask for Task<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    unsafe fn make_coroutine(self: Arc<Self>, stack: PooledStack) -> Co {
        Coroutine::with_stack(stack, move |yielder: &TaskYielder, ()| {
            self.header.yielder.set(yielder);
            // SAFETY: first run on the home worker (the caller's contract),
            // and this closure is the only code touching the stage now.
            let f = unsafe { self.take_fn() };
            let out = f();
            // SAFETY: still running; COMPLETE is set by the worker after the
            // coroutine returns.
            unsafe { self.store(Ok(out)) };
        })
    }

    unsafe fn run_inline(&self) {
        // SAFETY: the caller popped the unstarted task (rule 1).
        let f = unsafe { self.take_fn() };
        let out =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(JoinError::panic);
        // SAFETY: still running; COMPLETE comes after.
        unsafe { self.store(out) };
    }

    unsafe fn store_error(&self, err: JoinError) {
        // SAFETY: the caller's contract: exclusive access before COMPLETE.
        // Replacing the stage drops the closure if it never ran.
        unsafe { self.store(Err(err)) };
    }

    unsafe fn drop_output(&self) {
        // SAFETY: state rule 5 gives this caller the output.
        self.stage.with_mut(|s| unsafe { *s = Stage::Taken });
    }
}

impl<F, T> JoinOutput<T> for Task<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn header(&self) -> &Header {
        &self.header
    }

    unsafe fn take_output(&self) -> Result<T, JoinError> {
        // SAFETY: COMPLETE was observed with Acquire, so the completer's
        // write happened before; the join handle takes the output once.
        self.stage.with_mut(
            |s| match std::mem::replace(unsafe { &mut *s }, Stage::Taken) {
                Stage::Finished(out) => out,
                _ => unreachable!("output taken twice or task not complete"),
            },
        )
    }
}

impl fmt::Debug for dyn RawTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.header().fmt(f)
    }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn the_fields_a_resume_reads_come_first_within_the_prefetched_bytes() {
        // `scheduler::worker::prefetch_ready` prefetches the lines holding
        // the first 88 bytes of the next task's header.
        let hot_end = [
            offset_of!(Header, state) + size_of::<State>(),
            offset_of!(Header, yielder) + size_of::<Cell<*const TaskYielder>>(),
            offset_of!(Header, suspend_sp) + size_of::<Cell<usize>>(),
            offset_of!(Header, coroutine) + size_of::<UnsafeCell<Option<Co>>>(),
            offset_of!(Header, obs) + size_of::<crate::trace::TaskObs>(),
        ]
        .into_iter()
        .max()
        .unwrap();
        assert!(hot_end <= 88, "resume fields end at byte {hot_end}");
        assert!(offset_of!(Header, meta) >= hot_end);
    }
}
