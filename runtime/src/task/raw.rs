//! The task allocation and its type-erased views.
//!
//! One spawn is one allocation, a `Task<F, T>` from the worker's recycled
//! task memory (`alloc.rs`), reference-counted by hand:
//!
//! ```text
//! Task<F, T>
//! +--------------------------------------------------------------+
//! | Header (not generic)                                         |
//! |   state        AtomicUsize      any thread (see state.rs)    |
//! |   coroutine    Coroutine<..>     home worker thread only     |
//! |   refs         AtomicUsize      TaskRef clone / drop         |
//! |   vtable       &'static Vtable  immutable                    |
//! |   meta         name, stack hint, spawn site (immutable)      |
//! |   home         Arc<WorkerHandle> written once, at first run  |
//! |   join_waker   Unparker          joiner, then completer      |
//! |   spare_ref    bool              home worker thread only     |
//! +--------------------------------------------------------------+
//! | stage: Unstarted(F) | Running | Finished(Result<T>) | Taken   |
//! +--------------------------------------------------------------+
//! ```
//!
//! The scheduler and the join handle both hold a [`TaskRef`], a pointer to
//! the header; what depends on `F` and `T` goes through the header's
//! [`Vtable`] (the join handle's `take_output` writes the typed output
//! through an untyped pointer, as tokio's does). A `std::sync::Arc<dyn ..>`
//! would do the counting, but its memory would come from the global
//! allocator, which is what `alloc.rs` exists to avoid.
//!
//! Field access rules:
//! 1. `stage` holds `F` until the first run, which takes it on the home worker
//!    (or on a blocking-pool thread for `spawn_blocking`). Only the thread that
//!    popped the task with `SCHEDULED` set touches it then (state rule 2).
//! 2. The output is written into `stage` before `COMPLETE` is set and read by
//!    the join handle only after it observed `COMPLETE` (state rule 4); it is
//!    dropped by whichever side state rule 5 names.
//! 3. `coroutine`, `yielder`, `suspend_sp`, `owned_slot` and `spare_ref` are touched only on the home
//!    worker's thread. The coroutine (and its stack) is removed when the task
//!    completes or is cancelled, on that thread, so the `!Send` coroutine
//!    never crosses a thread even if the last `TaskRef` is dropped elsewhere.
//! 4. `home` is written once at first run, before the coroutine can create an
//!    unparker; any thread that later unparks the task got that unparker
//!    through some synchronisation, which orders the write before its read.
//!    It is read only by an unpark that took the task out of idle, before
//!    that unpark queues the task; so once the task runs again nobody is
//!    reading it, and `finish` (the task returned) takes it out on the home
//!    thread. Shutdown's cancellation leaves it (an unpark may race there).

use super::alloc;
use super::join::{JoinError, JoinHandle};
use super::state::State;
use crate::loom::sync::atomic::{fence, AtomicUsize, Ordering::*};
use crate::loom::UnsafeCell;
use crate::park::Unparker;
use crate::scheduler::WorkerHandle;
use corosensei::{Coroutine, Yielder};
use pinstack_stackpool::PooledStack;
use std::alloc::Layout;
use std::cell::Cell;
use std::fmt;
use std::mem::MaybeUninit;
use std::panic::Location;
use std::ptr::NonNull;

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

/// Immutable facts about a task, fixed at spawn.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) name: Option<super::name::TaskName>,
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
    /// How many [`TaskRef`]s point here.
    refs: AtomicUsize,
    vtable: &'static Vtable,
    pub(crate) meta: Meta,
    home: UnsafeCell<Option<crate::loom::sync::Arc<WorkerHandle>>>,
    join_waker: UnsafeCell<Option<Unparker>>,
    owned_slot: Cell<usize>,
    /// Whether the home worker holds a counted reference to this task that
    /// no `TaskRef` value stands for: its queue reference, kept when the
    /// task went idle after a park, for the task's next unparker to take
    /// (see [`TaskRef::keep_as_spare`]).
    spare_ref: Cell<bool>,
    locals: UnsafeCell<Option<Box<crate::task_local::LocalMap>>>,
}

// SAFETY: the `Cell` and `UnsafeCell` fields follow the access rules in the
// module docs: `coroutine`, `yielder`, `suspend_sp`, `owned_slot` and `spare_ref` are only touched on the
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
    fn new(meta: Meta, refs: usize, vtable: &'static Vtable) -> Header {
        Header {
            state: State::new_scheduled(),
            yielder: Cell::new(std::ptr::null()),
            suspend_sp: Cell::new(0),
            coroutine: UnsafeCell::new(None),
            obs: Default::default(),
            refs: AtomicUsize::new(refs),
            vtable,
            meta,
            home: UnsafeCell::new(None),
            join_waker: UnsafeCell::new(None),
            owned_slot: Cell::new(usize::MAX),
            spare_ref: Cell::new(false),
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
/// task, so a pointer to the task is a pointer to its header, and the
/// vtable's functions cast it back.
#[repr(C)]
pub(crate) struct Task<F, T> {
    header: Header,
    stage: UnsafeCell<Stage<F, T>>,
}

/// What depends on a task's closure and output types. Each function takes
/// the header pointer of a `Task<F, T>` of the types it was made for.
pub(crate) struct Vtable {
    make_coroutine: unsafe fn(NonNull<Header>, PooledStack) -> Co,
    run_inline: unsafe fn(NonNull<Header>),
    store_error: unsafe fn(NonNull<Header>, JoinError),
    drop_output: unsafe fn(NonNull<Header>),
    /// Moves the output to a `*mut Result<T, JoinError>`.
    take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Drops the task in place and frees its memory.
    dealloc: unsafe fn(NonNull<Header>),
}

/// A counted reference to a task of any closure and output type: what the
/// scheduler queues, unparkers hold and join handles wrap. Cloning and
/// dropping it work as for an `Arc`; the last drop frees the task.
pub(crate) struct TaskRef {
    ptr: NonNull<Header>,
}

// SAFETY: a task's closure and output are `Send` (`Task::allocate` requires it),
// its header is `Sync`, and the count is atomic; the `!Send` coroutine stays
// on its home thread whoever holds references (rule 3).
unsafe impl Send for TaskRef {}
// SAFETY: `&TaskRef` gives `&Header` (`Sync`) and unsafe calls whose
// contracts order their accesses (rules 1 and 2).
unsafe impl Sync for TaskRef {}

/// More references than this can only come from a leak loop; abort, as
/// `Arc` does, before the count can wrap.
const MAX_REFS: usize = isize::MAX as usize;

impl TaskRef {
    /// The task's header.
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: this reference keeps the task allocated.
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn vtable(&self) -> &'static Vtable {
        self.header().vtable
    }

    /// Creates the coroutine that will run the closure on `stack`.
    ///
    /// The coroutine holds a plain pointer to the task, not a reference
    /// (two reference-count RMWs fewer per task): it lives in the task's own
    /// `coroutine` slot, is resumed only by the home worker through a
    /// `TaskRef` it holds, and is removed from the slot (rule 3) while the
    /// worker's `owned` slab still holds one.
    ///
    /// # Safety
    /// First run, on the home worker; the stage holds the closure; the
    /// coroutine goes into this task's `coroutine` slot and is dropped from
    /// it before the worker lets go of the task (`finish`, `shutdown`).
    pub(crate) unsafe fn make_coroutine(&self, stack: PooledStack) -> Co {
        let make = self.vtable().make_coroutine;
        // SAFETY: the caller's contract; the vtable is this task's.
        unsafe { make(self.ptr, stack) }
    }

    /// Runs the closure to completion on this thread, without a coroutine
    /// (the blocking pool), catching a panic.
    ///
    /// # Safety
    /// As `make_coroutine`: the caller popped the unstarted task.
    pub(crate) unsafe fn run_inline(&self) {
        // SAFETY: the caller's contract; the vtable is this task's.
        unsafe { (self.vtable().run_inline)(self.ptr) }
    }

    /// Stores a failure as the output (panic, cancellation, no stack), and
    /// drops the closure if it never ran.
    ///
    /// # Safety
    /// The caller runs or owns the task, and it is not complete.
    pub(crate) unsafe fn store_error(&self, err: JoinError) {
        // SAFETY: the caller's contract; the vtable is this task's.
        unsafe { (self.vtable().store_error)(self.ptr, err) }
    }

    /// Drops the output (nobody will join it).
    ///
    /// # Safety
    /// State rule 5 says this caller drops it.
    pub(crate) unsafe fn drop_output(&self) {
        // SAFETY: the caller's contract; the vtable is this task's.
        unsafe { (self.vtable().drop_output)(self.ptr) }
    }

    /// Takes the output out.
    ///
    /// # Safety
    /// `T` is the task's output type; `COMPLETE` was observed and the output
    /// was not taken or dropped yet.
    pub(crate) unsafe fn take_output<T>(&self) -> Result<T, JoinError> {
        let mut out = MaybeUninit::<Result<T, JoinError>>::uninit();
        // SAFETY: the caller's contract; `take_output` of a task with output
        // `T` writes a `Result<T, JoinError>` to the pointer.
        unsafe {
            (self.vtable().take_output)(self.ptr, out.as_mut_ptr().cast());
            out.assume_init()
        }
    }

    /// The worker is done with its reference to a task that parked and
    /// went idle: keep it as the task's spare instead of dropping it, unless
    /// the task already has one.
    ///
    /// A park cycle would otherwise cost two reference-count RMWs (the
    /// task's unparker cloned from the running reference, the worker's
    /// reference dropped after the park), each a locked instruction that
    /// was a tenth of a pingpong round trip. With the spare, the unparker
    /// takes this reference ([`TaskRef::spare_or_clone`]) and hands it back
    /// to the worker by queueing the task: no count changes in the steady
    /// state. `finish` and shutdown drop the spare ([`TaskRef::drop_spare`]),
    /// so it never outlives the task's run.
    ///
    /// Home worker thread only (rule 3), with the task started, not running
    /// and not complete.
    #[inline]
    pub(crate) fn keep_as_spare(self) {
        let h = self.header();
        if !h.spare_ref.get() {
            h.spare_ref.set(true);
            std::mem::forget(self);
        }
    }

    /// A reference to the running task for its unparker: the spare if the
    /// task has one (no count change), else a clone. Home worker thread,
    /// while the task runs (rule 3).
    #[inline]
    pub(crate) fn spare_or_clone(&self) -> TaskRef {
        let h = self.header();
        if h.spare_ref.replace(false) {
            // The spare is a counted reference no value stood for; this
            // value stands for it now.
            TaskRef { ptr: self.ptr }
        } else {
            self.clone()
        }
    }

    /// Drops the task's spare reference, if it has one. Home worker thread,
    /// when the task finishes or is cancelled (rule 3); `self` keeps the
    /// task allocated meanwhile.
    pub(crate) fn drop_spare(&self) {
        if self.header().spare_ref.replace(false) {
            drop(TaskRef { ptr: self.ptr });
        }
    }

    /// How many references the task has (tests only).
    #[cfg(all(test, not(pinstack_loom)))]
    pub(crate) fn ref_count(&self) -> usize {
        self.header().refs.load(Relaxed)
    }
}

impl Clone for TaskRef {
    #[inline]
    fn clone(&self) -> TaskRef {
        // Relaxed, as in `Arc::clone`: the new reference is made from a live
        // one, which keeps the task allocated meanwhile.
        if self.header().refs.fetch_add(1, Relaxed) > MAX_REFS {
            std::process::abort();
        }
        TaskRef { ptr: self.ptr }
    }
}

impl Drop for TaskRef {
    #[inline]
    fn drop(&mut self) {
        // As in `Arc`: Release, so this holder's uses of the task happen
        // before the free; the last holder's Acquire fence makes everybody
        // else's happen before it too.
        if self.header().refs.fetch_sub(1, Release) != 1 {
            return;
        }
        fence(Acquire);
        let dealloc = self.vtable().dealloc;
        // SAFETY: the last reference is gone, so nothing else can reach the
        // task; the vtable is this task's.
        unsafe { dealloc(self.ptr) }
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.header().fmt(f)
    }
}

// SAFETY: `stage` is accessed under the state machine's rules 1 and 2, which
// make the accesses of different threads happen-before one another; `F` and
// `T` are `Send`, so moving them between those threads is allowed.
unsafe impl<F: Send, T: Send> Sync for Task<F, T> {}

impl<F, T> Task<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    const VTABLE: Vtable = Vtable {
        make_coroutine: Self::make_coroutine,
        run_inline: Self::run_inline,
        store_error: Self::store_error,
        drop_output: Self::drop_output,
        take_output: Self::take_output,
        dealloc: Self::dealloc,
    };

    /// Allocates a task for `f`: the scheduler's reference and the join
    /// handle.
    pub(crate) fn allocate(f: F, meta: Meta) -> (TaskRef, JoinHandle<T>) {
        let layout = Layout::new::<Task<F, T>>();
        let ptr = alloc::allocate(layout).cast::<Task<F, T>>();
        let task = Task {
            header: Header::new(meta, 2, &Self::VTABLE),
            stage: UnsafeCell::new(Stage::Unstarted(f)),
        };
        // SAFETY: `allocate` returned unused memory for `layout` (or a
        // larger block of at least its alignment).
        unsafe { ptr.as_ptr().write(task) };
        let header = ptr.cast::<Header>();
        // SAFETY: the task's output type is `T`; the count of 2 covers this
        // reference and the scheduler's.
        let handle = unsafe { JoinHandle::from_task(TaskRef { ptr: header }) };
        (TaskRef { ptr: header }, handle)
    }

    /// The task behind a header pointer.
    ///
    /// # Safety
    /// `ptr` is the header of a live `Task<F, T>` (the vtable functions are
    /// only reached through a task of their types).
    unsafe fn from_header<'a>(ptr: NonNull<Header>) -> &'a Task<F, T> {
        // SAFETY: the caller's contract; the header is at offset 0.
        unsafe { ptr.cast::<Task<F, T>>().as_ref() }
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

    unsafe fn make_coroutine(ptr: NonNull<Header>, stack: PooledStack) -> Co {
        Coroutine::with_stack(stack, move |yielder: &TaskYielder, ()| {
            // SAFETY: the coroutine runs only while its worker holds a
            // `TaskRef` (`TaskRef::make_coroutine`); this function is in the
            // vtable of `Task<F, T>`.
            let this = unsafe { Self::from_header(ptr) };
            this.header.yielder.set(yielder);
            // SAFETY: first run on the home worker (the caller's contract),
            // and this closure is the only code touching the stage now.
            let f = unsafe { this.take_fn() };
            let out = f();
            // SAFETY: still running; COMPLETE is set by the worker after the
            // coroutine returns.
            unsafe { this.store(Ok(out)) };
        })
    }

    unsafe fn run_inline(ptr: NonNull<Header>) {
        // SAFETY: reached through this task's vtable and reference.
        let this = unsafe { Self::from_header(ptr) };
        // SAFETY: the caller popped the unstarted task (rule 1).
        let f = unsafe { this.take_fn() };
        let out =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(JoinError::panic);
        // SAFETY: still running; COMPLETE comes after.
        unsafe { this.store(out) };
    }

    unsafe fn store_error(ptr: NonNull<Header>, err: JoinError) {
        // SAFETY: reached through this task's vtable and reference; the
        // caller has exclusive access before COMPLETE. Replacing the stage
        // drops the closure if it never ran.
        unsafe { Self::from_header(ptr).store(Err(err)) };
    }

    unsafe fn drop_output(ptr: NonNull<Header>) {
        // SAFETY: reached through this task's vtable and reference.
        let this = unsafe { Self::from_header(ptr) };
        // SAFETY: state rule 5 gives this caller the output.
        this.stage.with_mut(|s| unsafe { *s = Stage::Taken });
    }

    unsafe fn take_output(ptr: NonNull<Header>, dst: *mut ()) {
        // SAFETY: reached through this task's vtable and reference.
        let this = unsafe { Self::from_header(ptr) };
        // SAFETY: COMPLETE was observed with Acquire, so the completer's
        // write happened before; the join handle takes the output once.
        let out =
            this.stage.with_mut(
                |s| match std::mem::replace(unsafe { &mut *s }, Stage::Taken) {
                    Stage::Finished(out) => out,
                    _ => unreachable!("output taken twice or task not complete"),
                },
            );
        // SAFETY: the caller passes a pointer to a `Result<T, JoinError>`
        // slot (`TaskRef::take_output`).
        unsafe { dst.cast::<Result<T, JoinError>>().write(out) };
    }

    unsafe fn dealloc(ptr: NonNull<Header>) {
        // Empty the stage through its cell first: a tracked write, so the
        // loom models check that the free comes after every other thread's
        // use of the stage (the reference count's Release/Acquire).
        // SAFETY: the last reference is gone, so this caller alone holds the
        // task and may drop whatever the stage still holds.
        unsafe { Self::drop_output(ptr) };
        // SAFETY: reached through this task's vtable and its last reference.
        let this = unsafe { Self::from_header(ptr) };
        // Rule 3: the coroutine left the task on its home thread (its
        // closure holds only a plain pointer to the task, so nothing else
        // would stop the task from being freed under it).
        debug_assert!(
            // SAFETY: as above: the only access.
            this.header.coroutine.with(|c| unsafe { (*c).is_none() }),
            "a task was freed with its coroutine still in it"
        );
        let task = ptr.cast::<Task<F, T>>();
        // SAFETY: the last reference is gone (`TaskRef::drop`), so this is
        // the only access; the memory came from `alloc::allocate` with this
        // layout in `allocate`. The coroutine is already gone (rule 3).
        unsafe {
            std::ptr::drop_in_place(task.as_ptr());
            alloc::deallocate(task.cast(), Layout::new::<Task<F, T>>());
        }
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

    /// Waits (yielding) until `done`, failing after 10 s.
    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: not after 10 s"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_parking_task_keeps_one_spare_reference_and_gives_it_back() {
        use crate::sync::mpsc;
        let rt = crate::Runtime::builder()
            .worker_threads(1)
            .ignore_environment()
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel::<u32>(1);
        let (seen_tx, seen_rx) = mpsc::channel::<u32>(1);
        let cycles = 200;
        let h = rt.spawn(move || {
            let mut sum = 0;
            while let Ok(v) = rx.recv() {
                sum += v;
                if seen_tx.send(v).is_err() {
                    break;
                }
            }
            sum
        });
        // Parked in `recv`: the join handle, the worker's `owned` entry,
        // the unparker in the channel and, once it has parked, the spare.
        let mut counts = Vec::new();
        for i in 0..cycles {
            tx.send(i).unwrap();
            assert_eq!(seen_rx.recv(), Ok(i));
            wait_until("parked again", || h.raw_is_parked());
            counts.push(h.raw_ref_count());
        }
        // Each park cycle leaves the count where it was: the unparker took
        // the spare and the worker kept its queue reference as the new one.
        assert!(counts.iter().all(|&c| c == 4), "{counts:?}");
        drop(tx);
        // Finished, `finish` drops the spare and the `owned` entry, and the
        // worker its own reference just after completing the task.
        wait_until("finished with one reference left", || {
            h.is_finished() && h.raw_ref_count() == 1
        });
        assert_eq!(h.join().unwrap(), (0..cycles).sum::<u32>());

        // A task parked at shutdown: cancellation drops its spare too.
        let (tx, rx) = mpsc::channel::<u32>(1);
        let h = rt.spawn(move || rx.recv().unwrap_or(0));
        wait_until("parked", || h.raw_is_parked());
        drop(rt);
        assert!(h.is_finished());
        // Left: the join handle alone (unwinding dropped the receiver and
        // with it the unparker it had registered).
        assert_eq!(h.raw_ref_count(), 1);
        drop(tx);
        assert!(h.join().unwrap_err().is_cancelled());
    }

    #[test]
    fn every_task_is_larger_than_the_classes_the_alloc_tests_use() {
        // `alloc.rs`'s tests use the 32-96-byte classes of the process-wide
        // depot while runtime tests run beside them.
        assert!(size_of::<Header>() > 3 * super::alloc::GRANULE);
    }
}
