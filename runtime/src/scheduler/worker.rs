//! The worker loop: pick a task, resume it, act on how it suspended.
//!
//! ```text
//! loop:
//!   every MAINTENANCE_INTERVAL ticks: fire due timers, poll I/O (no wait),
//!                                     take a batch from the injector
//!   next task: LIFO slot (bounded streak) -> inbox -> local (bounded
//!              streak) -> ready -> injector -> steal -> sleep
//!   tasks woken by an I/O poll: front of `ready` (at most MAX_IO_FIRST)
//!   resume it; on return:
//!     Yield  -> back of `ready` (the task stays RUNNING: no state RMW)
//!     Park   -> idle, or back of `ready` if unparked meanwhile (stays
//!               RUNNING)
//!     Return / panic -> complete: output stored, joiner woken, stack freed
//! ```
//!
//! Shutdown (runtime dropped): each worker, on its own thread, unwinds every
//! coroutine it owns (destructors run where the task lived), completes those
//! tasks as cancelled, cancels the unstarted tasks left in its queues, and
//! exits. The runtime then cancels what is left in the injector.

use super::context::{self, Context};
use super::{
    Shared, WorkerHandle, BALANCE_MIN_LIVE, MAINTENANCE_INTERVAL, MAX_IO_FIRST, MAX_LIFO_STREAK,
    MAX_LOCAL_STREAK, SPIN_MAX_ROUNDS, SPIN_MIN_ROUNDS, SPIN_PAUSES, STEAL_MIN,
};
use crate::loom::sync::atomic::Ordering::*;
use crate::loom::sync::Arc;
use crate::metrics::WorkerObs;
use crate::task::{complete, JoinError, Suspend, TaskRef};
use crate::time::wheel::Wheel;
use crate::trace::task::outcome;
use corosensei::CoroutineResult;
use crossbeam_deque::{Steal, Worker};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Token of the worker's `mio::Waker` in its poller.
pub(crate) const WAKER_TOKEN: mio::Token = mio::Token(usize::MAX);

/// What only the worker's own thread touches.
pub(crate) struct Core {
    /// Unstarted tasks; the stealable queue.
    pub(crate) local: Worker<TaskRef>,
    /// Runnable started tasks (and pinned unstarted ones); never stolen.
    pub(crate) ready: VecDeque<TaskRef>,
    lifo: Option<TaskRef>,
    lifo_streak: u32,
    local_streak: u32,
    tick: u32,
    rng: u32,
    /// The adaptive pre-sleep spin budget, in rounds (`SPIN_MIN_ROUNDS`).
    spin_rounds: u32,
    pub(crate) wheel: Wheel<TaskRef>,
    poll: mio::Poll,
    events: mio::Events,
    /// Started, unfinished tasks (for cancellation at shutdown).
    owned: Owned,
    /// Where this worker's stacks come from (its node's pool under `Bind`).
    pool: pinstack_stackpool::StackPool,
    /// When the next stack decay step is due (`decay_stacks`).
    stack_decay_at: Option<Instant>,
    /// Whether the last step left stacks with pages cached.
    stacks_cached: bool,
}

impl Core {
    pub(crate) fn new(
        local: Worker<TaskRef>,
        poll: mio::Poll,
        pool: pinstack_stackpool::StackPool,
        seed: u32,
    ) -> Core {
        Core {
            local,
            ready: VecDeque::with_capacity(256),
            lifo: None,
            lifo_streak: 0,
            local_streak: 0,
            tick: 0,
            rng: seed | 1,
            spin_rounds: SPIN_MIN_ROUNDS * 4,
            wheel: Wheel::new(),
            poll,
            events: mio::Events::with_capacity(1024),
            owned: Owned::default(),
            pool,
            stack_decay_at: None,
            stacks_cached: false,
        }
    }

    /// Puts a task woken by the running task into the LIFO slot; the previous
    /// occupant moves to the back of the ready queue.
    pub(crate) fn push_lifo(&mut self, task: TaskRef) {
        if let Some(prev) = self.lifo.replace(task) {
            self.ready.push_back(prev);
        }
    }

    fn next_rand(&mut self) -> u32 {
        // xorshift32: victim choice only needs to avoid always picking the same.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }
}

/// Started tasks of one worker: a slab, O(1) insert and remove.
#[derive(Default)]
struct Owned {
    slots: Vec<Option<TaskRef>>,
    free: Vec<usize>,
}

impl Owned {
    fn insert(&mut self, task: TaskRef) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(task);
                i
            }
            None => {
                self.slots.push(Some(task));
                self.slots.len() - 1
            }
        }
    }

    /// Started tasks held.
    fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn remove(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i) {
            if slot.take().is_some() {
                self.free.push(i);
            }
        }
    }
}

/// The body of a worker thread.
pub(crate) fn run_worker(shared: Arc<Shared>, handle: Arc<WorkerHandle>, core: Core) {
    let cx = Context {
        shared,
        handle,
        core: RefCell::new(core),
        current: Cell::new(std::ptr::null()),
        deferred: RefCell::new(Vec::new()),
    };
    // SAFETY: `cx` lives on this stack frame until after the guard drops.
    let _guard = unsafe { context::enter(&cx) };
    crate::metrics::probe::enter_worker(&cx.shared, cx.handle.index);
    crate::task::alloc::enable();
    // Looked up once: `run_task` hands it to the metrics hooks every resume.
    let obs = &cx.shared.obs.workers[cx.handle.index];
    while !cx.shared.is_shutdown() {
        match next_task(&cx) {
            Some(task) => run_task(&cx, obs, task),
            None => sleep(&cx),
        }
    }
    shutdown(&cx);
    crate::task::alloc::drain();
}

fn now_tick(shared: &Shared, now: Instant) -> u64 {
    now.saturating_duration_since(shared.time_base).as_millis() as u64
}

/// The tick at or after `deadline` (timers never fire early).
pub(crate) fn deadline_tick(shared: &Shared, deadline: Instant) -> u64 {
    let d = deadline.saturating_duration_since(shared.time_base);
    let ms = d.as_millis() as u64;
    if Duration::from_millis(ms) < d {
        ms + 1
    } else {
        ms
    }
}

/// Fires due timers, collects I/O readiness without waiting, and gives
/// back task memory left unused for a period.
fn maintenance(cx: &Context, core: &mut Core) {
    crate::metrics::probe::break_chain();
    fire_timers(&cx.shared, core);
    poll_io(cx, core, Some(Duration::ZERO));
    let now = Instant::now();
    crate::task::alloc::decay(now);
    decay_stacks(core, now);
}

/// Once a period, gives back the pages of stacks that stayed cached but
/// unused since the last step (`StackPool::decay`: half of each cache's
/// low-water mark), so that after a burst of tasks the stack caches shrink
/// to what the load still uses, as task memory does. Returns whether
/// stacks with pages are still cached (a sleeping worker then wakes a
/// period later to go on).
fn decay_stacks(core: &mut Core, now: Instant) -> bool {
    if core.stack_decay_at.is_none_or(|at| now >= at) {
        core.stack_decay_at = Some(now + crate::task::alloc::DECAY_PERIOD);
        core.stacks_cached = core.pool.decay(crate::task::alloc::DECAY_PERIOD);
    }
    core.stacks_cached
}

fn fire_timers(shared: &Shared, core: &mut Core) {
    if core.wheel.is_empty() {
        return;
    }
    let now = now_tick(shared, Instant::now());
    let Core { wheel, ready, .. } = core;
    wheel.advance(now, |task: TaskRef| {
        if task.header().state.unpark() == crate::task::Unpark::Schedule {
            crate::metrics::probe::on_timer_wake(task.header());
            ready.push_back(task);
        }
    });
}

fn poll_io(cx: &Context, core: &mut Core, timeout: Option<Duration>) {
    let Core {
        poll,
        events,
        ready,
        ..
    } = core;
    match poll.poll(events, timeout) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
        Err(e) => {
            // epoll_wait fails only on programming errors (EBADF, EINVAL);
            // report and carry on rather than kill every task of the worker.
            eprintln!("pinstack: worker {}: poll failed: {e}", cx.handle.index);
        }
    }
    for ev in events.iter() {
        if ev.token() != WAKER_TOKEN {
            // SAFETY: every other token was registered by `net::source` and
            // is released only between polls, by this thread.
            unsafe { crate::net::source::dispatch(ev) };
        }
    }
    // Tasks woken by I/O run before the backlog, up to MAX_IO_FIRST of
    // them: a reader woken here would otherwise wait behind every task
    // queued since the last pass, and a started task cannot move to an idle
    // worker (measured in the chat server: send-to-broadcast p50 30-90 ms
    // with the woken readers at the back, 5-9 ms in front, as on tokio).
    let mut woken = cx.deferred.borrow_mut();
    let first = woken.len().min(MAX_IO_FIRST);
    ready.extend(woken.drain(first..));
    for t in woken.drain(..).rev() {
        ready.push_front(t);
    }
    drop(woken);
    cx.handle.drain_releases();
}

fn next_task(cx: &Context) -> Option<TaskRef> {
    let mut core = cx.core.borrow_mut();
    core.tick = core.tick.wrapping_add(1);
    if core.tick % MAINTENANCE_INTERVAL == 0 {
        maintenance(cx, &mut core);
        cx.handle.started_queued.store(core.ready.len(), Relaxed);
        rebalance(cx, &mut core);
        if let Some(t) = take_injector(cx, &core) {
            return Some(t);
        }
    }
    if let Some(t) = core.lifo.take() {
        if core.lifo_streak < MAX_LIFO_STREAK {
            core.lifo_streak += 1;
            return Some(t);
        }
        core.ready.push_back(t);
    }
    core.lifo_streak = 0;
    if !cx.handle.inbox.is_empty() {
        drain_inbox(&cx.handle, &mut core);
    }
    // Unstarted tasks first, so a task that yields goes behind the tasks
    // spawned before it; a bounded streak keeps woken tasks from starving
    // under a flood of spawns.
    let t = if core.local_streak < MAX_LOCAL_STREAK {
        match core.local.pop() {
            Some(t) => {
                core.local_streak += 1;
                Some(t)
            }
            None => {
                core.local_streak = 0;
                core.ready.pop_front()
            }
        }
    } else {
        core.local_streak = 0;
        core.ready.pop_front().or_else(|| core.local.pop())
    };
    let t = t
        .or_else(|| take_injector(cx, &core))
        .or_else(|| steal(cx, &mut core));
    prefetch_ready(&core.ready);
    t
}

/// Asks the CPU for what the next resumes from `ready` will read, one
/// switch ahead: with hundreds of started tasks per worker, a task's header
/// and the top of its stack have left L1 by the time its turn comes, and a
/// resume that waits for them stalls on every line. For the task at the
/// front (resumed next, unless a wake-up takes the LIFO slot): its stack's
/// top line (the parent link corosensei switches through) and the lines
/// around its last suspension point. For the one after it: its header's
/// resume fields (`Header` layout), so that this read of them next time
/// hits.
#[inline(always)]
fn prefetch_ready(ready: &VecDeque<TaskRef>) {
    let Some(next) = ready.front() else {
        return;
    };
    let h = next.header();
    let top = h.yielder() as usize;
    if top != 0 {
        prefetch(top);
        let sp = h.suspend_sp();
        prefetch(sp.wrapping_sub(64));
        prefetch(sp);
        prefetch(sp.wrapping_add(64));
    }
    if let Some(after) = ready.get(1) {
        let p = after.header() as *const crate::task::Header as usize;
        prefetch(p);
        prefetch(p + 64);
        prefetch(p + 87);
    }
}

/// A prefetch hint for the cache line holding `addr` (into L1). Never
/// faults, whatever the address.
#[inline(always)]
fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` reads nothing architecturally and cannot fault;
    // it touches no register but its input and no flags or stack.
    unsafe {
        std::arch::asm!("prefetcht0 [{0}]", in(reg) addr, options(nostack, preserves_flags, readonly));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above: `prfm` is a hint that cannot fault.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) addr, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = addr;
}

fn drain_inbox(handle: &WorkerHandle, core: &mut Core) {
    loop {
        match handle.inbox.steal() {
            Steal::Success(t) => core.ready.push_back(t),
            Steal::Empty => break,
            Steal::Retry => continue,
        }
    }
}

fn take_injector(cx: &Context, core: &Core) -> Option<TaskRef> {
    loop {
        match cx.shared.injector.steal_batch_and_pop(&core.local) {
            Steal::Success(t) => return Some(t),
            Steal::Empty => return None,
            Steal::Retry => continue,
        }
    }
}

fn steal(cx: &Context, core: &mut Core) -> Option<TaskRef> {
    crate::metrics::probe::break_chain();
    let order = &cx.shared.steal_order[cx.handle.index];
    if order.is_empty() {
        return None;
    }
    // Victims on the thief's own node come first in `order`; the start is
    // rotated at random within that group only, so thieves spread over local
    // victims and a remote node is tried only after the local one had nothing.
    let workers = &cx.shared.workers;
    let local = order
        .iter()
        .take_while(|&&v| workers[v].node == cx.handle.node)
        .count();
    let start = if local > 0 {
        core.next_rand() as usize % local
    } else {
        0
    };
    let rotated = (0..local).map(|i| order[(start + i) % local]);
    for v in rotated.chain(order[local..].iter().copied()) {
        let victim = &workers[v];
        if !victim.has_stealable() {
            continue;
        }
        // Take half of what the victim holds, not crossbeam's default 32: a
        // thief that starts its batch stays busy with it (started tasks never
        // move), so one steal must even the load out. Half of its whole
        // queue (started tasks included, as last published), taken from the
        // unstarted ones: half of the unstarted alone would leave a victim
        // with many started tasks the larger share for good.
        let unstarted = victim.stealer.len();
        let theirs = unstarted + victim.started_queued.load(Relaxed);
        let half = theirs.div_ceil(2).clamp(1, unstarted.max(1));
        loop {
            match victim
                .stealer
                .steal_batch_with_limit_and_pop(&core.local, half)
            {
                Steal::Success(t) => {
                    cx.handle.stats.stole(victim.node == cx.handle.node);
                    return Some(t);
                }
                Steal::Empty => break,
                Steal::Retry => continue,
            }
        }
    }
    None
}

/// A busy worker with little queued evens out with a neighbour holding a
/// backlog of unstarted tasks (whole queues are compared: the neighbour's
/// published `started_queued` counts its started tasks). Thieves steal when idle, but a thief whose
/// stolen tasks keep yielding is never idle again, and started tasks never
/// move: without this, one early steal would fix the split for good.
fn rebalance(cx: &Context, core: &mut Core) {
    let mine = core.local.len() + core.ready.len();
    for &v in cx.shared.steal_order[cx.handle.index].iter() {
        let victim = &cx.shared.workers[v];
        let unstarted = victim.stealer.len();
        if unstarted < STEAL_MIN {
            continue;
        }
        // Compare whole queues (the victim's started tasks count too, as
        // it last published them), but only unstarted tasks can move.
        let theirs = unstarted + victim.started_queued.load(Relaxed);
        if theirs <= mine + STEAL_MIN {
            continue;
        }
        let take = ((theirs - mine) / 2).min(unstarted);
        loop {
            match victim.stealer.steal_batch_with_limit(&core.local, take) {
                Steal::Success(()) => {
                    cx.handle.stats.stole(victim.node == cx.handle.node);
                    return;
                }
                Steal::Empty => break,
                Steal::Retry => continue,
            }
        }
    }
}

/// Whether any work this worker could take is visible.
fn work_visible(cx: &Context) -> bool {
    !cx.handle.inbox.is_empty()
        || !cx.shared.injector.is_empty()
        || cx
            .shared
            .workers
            .iter()
            .enumerate()
            .any(|(i, w)| i != cx.handle.index && w.has_stealable())
}

/// Looks for work for up to `rounds` rounds before sleeping, if another
/// worker is awake. `Some(true)` if work showed up, `Some(false)` if the
/// budget ran out, `None` if everybody else sleeps (nobody will produce
/// work, so the spin was skipped).
fn spin_for_work(cx: &Context, rounds: u32) -> Option<bool> {
    let n = cx.shared.workers.len();
    for _ in 0..rounds {
        if cx.shared.idle.sleepers.load(Relaxed) + 1 >= n {
            return None;
        }
        if work_visible(cx) || cx.shared.is_shutdown() {
            return Some(true);
        }
        for _ in 0..SPIN_PAUSES {
            std::hint::spin_loop();
        }
    }
    Some(false)
}

/// Sleeps in the poller until woken, an I/O event, or the next timer.
fn sleep(cx: &Context) {
    crate::metrics::probe::break_chain();
    let mut core = cx.core.borrow_mut();
    fire_timers(&cx.shared, &mut core);
    if !core.ready.is_empty() {
        return;
    }
    let h = &cx.handle;
    let rounds = core.spin_rounds;
    match spin_for_work(cx, rounds) {
        Some(true) => {
            core.spin_rounds = (rounds * 2).min(SPIN_MAX_ROUNDS);
            return;
        }
        Some(false) => core.spin_rounds = (rounds / 2).max(SPIN_MIN_ROUNDS),
        None => {}
    }
    h.sleeping.prepare_sleep(&cx.shared.idle);
    if work_visible(cx) || cx.shared.is_shutdown() {
        h.sleeping.cancel_sleep(&cx.shared.idle);
        return;
    }
    let now = Instant::now();
    let mut timeout = core.wheel.next_deadline().map(|tick| {
        let at = cx.shared.time_base + Duration::from_millis(tick);
        at.saturating_duration_since(now)
    });
    // Cached task memory and stacks decay by periods: wake to give them
    // back.
    if crate::task::alloc::decay(now) | decay_stacks(&mut core, now) {
        let period = crate::task::alloc::DECAY_PERIOD;
        timeout = Some(timeout.map_or(period, |t| t.min(period)));
    }
    h.stats.parked();
    poll_io(cx, &mut core, timeout);
    h.sleeping.cancel_sleep(&cx.shared.idle);
    fire_timers(&cx.shared, &mut core);
}

/// Resumes `task` once and files it according to how it suspended.
fn run_task(cx: &Context, obs: &WorkerObs, task: TaskRef) {
    let h = task.header();
    // A started task comes out of a queue with RUNNING already set
    // (state.rs: yielded, re-queued, or set by its unparker): no RMW.
    if !h.state.is_running_here() {
        h.state.start_running();
    }
    // SAFETY: this is the task's home worker (started tasks are only queued
    // on their home) or its first run, and no other reference to the slot
    // exists while the worker runs it.
    let slot = unsafe { h.coroutine() };
    if slot.is_none() {
        // Unstarted: start here, or on a clearly less loaded peer.
        if !h.meta.pinned {
            if let Some(peer) = hand_off_target(cx) {
                cx.handle.stats.handed_off();
                // Stays RUNNING: the peer's `run_task` skips `start_running`
                // (nobody can unpark a task that never ran).
                peer.push_remote(task);
                return;
            }
        }
        if !first_run(cx, &task, slot) {
            return;
        }
    }
    let seq = cx.handle.resume_seq.load(Relaxed);
    cx.handle.resume_seq.store(seq + 1, Relaxed);
    // Also names the task in a stack-overflow report (`context::enter`).
    cx.current.set(&task);
    let (all_obs, i) = (&cx.shared.obs, cx.handle.index);
    let probe = crate::metrics::probe::resume_begin(all_obs, obs, i, h, seq + 1);
    let co = slot.as_mut().expect("a started task has its coroutine");
    let res = catch_unwind(AssertUnwindSafe(|| co.resume(())));
    cx.current.set(std::ptr::null());
    cx.handle.resume_seq.store(seq + 2, Relaxed);
    crate::metrics::probe::resume_end(all_obs, obs, i, &cx.core, h, probe, seq + 1, &res);
    let stats = &cx.handle.stats;
    match res {
        Ok(CoroutineResult::Yield(Suspend::Yield)) => {
            stats.resume_ended(outcome::YIELD);
            // Stays RUNNING while queued (state.rs): only this worker can
            // pop it, and an unpark meanwhile just leaves a token.
            cx.core.borrow_mut().ready.push_back(task);
        }
        Ok(CoroutineResult::Yield(Suspend::Park(reason))) => {
            stats.resume_ended(outcome::PARK + reason as u8);
            if h.state.after_park() == crate::task::AfterPark::Requeue {
                cx.core.borrow_mut().ready.push_back(task);
            } else {
                // Idle: nobody but this thread can run it, so the task's
                // next unparker, made while it runs here, takes this
                // reference instead of counting a new one.
                task.keep_as_spare();
            }
        }
        Ok(CoroutineResult::Return(())) => {
            stats.resume_ended(outcome::FINISHED);
            finish(cx, task, None);
        }
        Err(payload) => {
            stats.resume_ended(outcome::PANICKED);
            finish(cx, task, Some(JoinError::panic(payload)));
        }
    }
}

/// The same-node peer an unstarted task should start on instead of this
/// worker, if any: this worker owns at least `BALANCE_MIN_LIVE` started
/// tasks, the peer (counting what waits in its inbox, starts handed to it
/// among them) fewer by more than a sixteenth of its own count plus
/// `BALANCE_MIN_LIVE / 8`, and the monitor does not see the peer in a long
/// run. Below the minimum no shared counter is read, so spawn-heavy code
/// with short tasks never pays for it.
///
/// The margin keeps the two from handing tasks back and forth (a peer that
/// received a task never finds this worker lighter by the margin), and it
/// is what is left uneven: an accept loop's connections end up within about
/// 3% of an even split (a quarter, the first margin, left chat's 20,000
/// tasks split 44/56, and the heavier worker's queue sets the tail latency,
/// since started coroutines never move).
fn hand_off_target(cx: &Context) -> Option<&Arc<WorkerHandle>> {
    let mine = cx.handle.live.load(Relaxed);
    if mine < BALANCE_MIN_LIVE {
        return None;
    }
    let workers = &cx.shared.workers;
    let mut best: Option<(&Arc<WorkerHandle>, usize)> = None;
    for &v in cx.shared.steal_order[cx.handle.index].iter() {
        let peer = &workers[v];
        if peer.node != cx.handle.node {
            break; // same node first in `steal_order`; never cross nodes
        }
        if peer.stuck.load(Relaxed) {
            continue; // in a long run: the task would wait in its inbox
        }
        let theirs = peer.live.load(Relaxed).saturating_add(peer.inbox.len());
        if best.is_none_or(|(_, b)| theirs < b) {
            best = Some((peer, theirs));
        }
    }
    let (peer, theirs) = best?;
    let margin = theirs / 16 + BALANCE_MIN_LIVE / 8;
    (theirs.saturating_add(margin) < mine).then_some(peer)
}

/// Gives an unstarted task its home, stack and coroutine. Returns false if
/// it could not start (it is then completed with the error).
fn first_run(cx: &Context, task: &TaskRef, slot: &mut Option<crate::task::Co>) -> bool {
    let h = task.header();
    let hint = match h.meta.stack_hint as usize {
        0 => crate::task::site::learned_or(&cx.shared, h, cx.shared.config.default_stack_size),
        n => n,
    };
    let acquired = cx.core.borrow().pool.acquire(hint);
    match acquired {
        Ok(stack) => {
            // SAFETY: first run, on the worker that becomes home, before the
            // coroutine exists (raw.rs rule 4).
            unsafe { h.set_home(cx.handle.clone()) };
            // SAFETY: first run on the home worker; the stage holds the
            // closure; the coroutine goes into the task's slot, which
            // `finish` and `shutdown` empty before the `owned` entry goes.
            *slot = Some(unsafe { task.make_coroutine(stack) });
            let mut core = cx.core.borrow_mut();
            let i = core.owned.insert(task.clone());
            cx.handle.live.store(core.owned.len(), Relaxed);
            drop(core);
            h.set_owned_slot(i);
            true
        }
        Err(e) => {
            // SAFETY: this worker popped the task and it is not complete.
            unsafe { task.store_error(JoinError::no_stack(e)) };
            complete(task);
            cx.shared.live.finished_on(cx.handle.index);
            false
        }
    }
}

/// The coroutine returned, panicked or was cancelled: free its stack, store
/// the error if any, and complete.
fn finish(cx: &Context, task: TaskRef, err: Option<JoinError>) {
    let h = task.header();
    // SAFETY: home thread, no other reference to the slot is live.
    crate::task::site::release_stack(&cx.shared, h, unsafe { h.coroutine() }.take());
    crate::task::drop_locals(h);
    task.drop_spare();
    let mut core = cx.core.borrow_mut();
    core.owned.remove(h.owned_slot());
    cx.handle.live.store(core.owned.len(), Relaxed);
    drop(core);
    // SAFETY: home thread; the task ran to its end (returned or panicked):
    // every unpark that read `home` queued the task before this run.
    drop(unsafe { h.take_home() });
    if let Some(err) = err {
        // SAFETY: the worker runs this task and it is not complete yet.
        unsafe { task.store_error(err) };
    }
    complete(&task);
    cx.shared.live.finished_on(cx.handle.index);
}

fn shutdown(cx: &Context) {
    // 1. Unwind every started coroutine on this thread, so their destructors
    //    run where they lived; then complete them as cancelled.
    let owned = std::mem::take(&mut cx.core.borrow_mut().owned);
    for task in owned.slots.into_iter().flatten() {
        let h = task.header();
        if h.state.is_complete() {
            continue;
        }
        cx.current.set(&task);
        // SAFETY: home thread; no other reference to the slot is live.
        if let Some(mut co) = unsafe { h.coroutine() }.take() {
            // A destructor that panics while unwinding aborts, as in std.
            let _ = catch_unwind(AssertUnwindSafe(|| co.force_unwind()));
        }
        cx.current.set(std::ptr::null());
        crate::task::drop_locals(h);
        task.drop_spare();
        // SAFETY: the coroutine is gone; the task cannot run again.
        unsafe { task.store_error(JoinError::cancelled()) };
        complete(&task);
        cx.shared.live.finished_on(cx.handle.index);
    }
    // 2. Cancel the unstarted tasks left in this worker's queues.
    let mut core = cx.core.borrow_mut();
    drain_inbox(&cx.handle, &mut core);
    let mut left: Vec<TaskRef> = core.ready.drain(..).collect();
    left.extend(core.lifo.take());
    while let Some(t) = core.local.pop() {
        left.push(t);
    }
    let mut timers = Vec::new();
    core.wheel.advance(u64::MAX, |t| timers.push(t));
    drop(core);
    drop(timers);
    for t in left {
        cancel_unstarted(&cx.shared, t);
    }
}

/// Completes a task that never started as cancelled (drops its closure).
pub(crate) fn cancel_unstarted(shared: &Shared, task: TaskRef) {
    let h = task.header();
    if h.state.is_complete() || h.home().is_some() {
        return;
    }
    // SAFETY: the caller took the unstarted task out of a queue, so nobody
    // else runs it, and it is not complete.
    unsafe { task.store_error(JoinError::cancelled()) };
    complete(&task);
    shared.live.finished();
}
