//! loom models of the task state word (`state.rs`) and the join hand-off
//! (`join.rs`, `raw.rs`, `complete` in `mod.rs`), and of the task's
//! reference count (`TaskRef` in `raw.rs`).
//!
//! Run with
//! `RUSTFLAGS="--cfg pinstack_loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p pinstack --lib loom_task`
//! (and `loom_join`, `loom_the_last`).
//!
//! A coroutine cannot run under loom; so the scheduling models drive the
//! real [`State`] methods in the order the worker (`run_task`),
//! `park::park` and `Unparker::unpark` call them, with the coroutine reduced
//! to "check the condition, park". The join models use the real `Task`,
//! `TaskRef`, `JoinHandle` and `complete` (the `spawn_blocking` path: run
//! inline, complete), with a plain thread joining, so loom checks the output
//! and join-waker cells (`crate::loom::UnsafeCell`) and the reference count
//! (its atomics come from the shim) for races. A `Relaxed` decrement
//! without the Acquire fence fails `loom_the_last_reference_frees_the_task_after_every_use`
//! with a causality violation (checked).
//!
//! What the scheduling models check:
//! * no lost wake-up: a waker makes its condition true (`Relaxed`, the
//!   weakest a caller could use, so only the state word orders it) and
//!   unparks; the coroutine re-checks its condition on every run and parks
//!   while it is false. A lost wake-up leaves the task idle with the worker
//!   parked on an empty queue: loom reports the deadlock.
//! * queued at most once: every push asserts the queue held nothing (the
//!   worker's ready queue and its inbox count as one queue, the task's).
//! * every push is one run and every run came from a push (runs are counted
//!   against spawns, yields, re-queues and scheduling unparks), and nothing
//!   is queued after completion.
//!
//! A task runs only on its home worker, so "never run concurrently" reduces
//! to "never queued twice" here; `start_running` (first run only) also
//! debug-asserts it found `SCHEDULED` and not `RUNNING`.

use super::state::{AfterPark, State, Unpark, COMPLETE, NOTIFIED, RUNNING, SCHEDULED};
use super::{complete, JoinHandle, Meta, Task, TaskRef};
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use crate::loom::sync::Arc;
use crate::loom::UnsafeCell;
use loom::thread::{self, Thread};

/// How a waker unparks the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// `State::unpark`, as `Unparker::unpark` calls it.
    Real,
    /// The unpark before commit ece4ae0: a plain load that found the task
    /// queued (or already notified) returned without writing.
    OldFastPath,
}

fn unpark(state: &State, how: How) -> Unpark {
    if how == How::OldFastPath {
        let cur = state.load();
        if cur & (COMPLETE | SCHEDULED) != 0 || cur & (RUNNING | NOTIFIED) == RUNNING | NOTIFIED {
            return Unpark::Done;
        }
    }
    state.unpark()
}

/// One task, its queue, and the conditions its coroutine waits for.
struct Sim {
    state: State,
    /// One flag per waker; the coroutine returns once all are true.
    conds: Vec<AtomicBool>,
    /// How many times the task is queued (inbox plus ready queue).
    queued: AtomicUsize,
    /// Pushes by wakers (`Unpark::Schedule`).
    scheduled: AtomicUsize,
}

impl Sim {
    fn new(wakers: usize) -> Arc<Sim> {
        Arc::new(Sim {
            state: State::new_scheduled(),
            conds: (0..wakers).map(|_| AtomicBool::new(false)).collect(),
            // Spawned: queued once.
            queued: AtomicUsize::new(1),
            scheduled: AtomicUsize::new(0),
        })
    }

    fn push(&self) {
        let prev = self.queued.fetch_add(1, Release);
        assert_eq!(prev, 0, "task queued twice");
    }
}

/// Waker `i`: makes its condition true, then unparks the task.
fn waker(sim: &Sim, i: usize, worker: &Thread, how: How) {
    sim.conds[i].store(true, Relaxed);
    wake(sim, worker, how);
}

/// `Unparker::unpark` for a task; `Schedule` means `schedule_started` (push
/// on the home worker, wake the worker).
fn wake(sim: &Sim, worker: &Thread, how: How) {
    if unpark(&sim.state, how) == Unpark::Schedule {
        sim.scheduled.fetch_add(1, Relaxed);
        sim.push();
        worker.unpark();
    }
}

/// The home worker (current thread): pops and runs the task until it
/// completes (`run_task`). The coroutine yields `yields` times, then calls
/// `first` once and parks until `done()` (`park::park`: take the token or
/// suspend; the worker then calls `after_park`). Returns (runs, re-queues).
fn worker(
    sim: &Sim,
    mut yields: usize,
    first: impl FnOnce(),
    done: impl Fn() -> bool,
) -> (usize, usize) {
    let (mut runs, mut requeues) = (0, 0);
    let mut first = Some(first);
    loop {
        // The run queues; empty: sleep until a push wakes the worker.
        match sim.queued.swap(0, Acquire) {
            0 => {
                thread::park();
                continue;
            }
            1 => {}
            n => panic!("task queued {n} times"),
        }
        // `run_task`: a started task comes out of the queue with RUNNING
        // already set (yielded, re-queued, or set by its unparker).
        if !sim.state.is_running_here() {
            sim.state.start_running();
        }
        runs += 1;
        if yields > 0 {
            // `yield_now`: stays RUNNING, queued behind others.
            yields -= 1;
            sim.push();
            continue;
        }
        if let Some(f) = first.take() {
            f();
        }
        loop {
            if done() {
                // The closure returned: the worker completes the task.
                let c = sim.state.complete();
                assert!(!c.drop_output && !c.wake_joiner);
                return (runs, requeues);
            }
            if sim.state.take_token() {
                continue; // park returned at once: re-check
            }
            if sim.state.after_park() == AfterPark::Requeue {
                requeues += 1;
                sim.push();
            }
            break;
        }
    }
}

/// `wakers` threads each wake the task once while the worker runs it.
fn task_model(wakers: usize, yields: usize, how: How) {
    loom::model(move || {
        let sim = Sim::new(wakers);
        let me = thread::current();
        let handles: Vec<_> = (0..wakers)
            .map(|i| {
                let (sim, me) = (sim.clone(), me.clone());
                thread::spawn(move || waker(&sim, i, &me, how))
            })
            .collect();
        let all = || sim.conds.iter().all(|c| c.load(Relaxed));
        let (runs, requeues) = worker(&sim, yields, || (), all);
        for h in handles {
            h.join().unwrap();
        }
        assert!(sim.state.is_complete());
        assert_eq!(sim.queued.load(Relaxed), 0, "queued after completion");
        let scheduled = sim.scheduled.load(Relaxed);
        assert_eq!(
            runs,
            1 + yields + requeues + scheduled,
            "runs and pushes differ"
        );
    });
}

#[test]
fn loom_task_wake_racing_run_and_park_is_not_lost() {
    task_model(1, 0, How::Real);
}

#[test]
fn loom_task_wake_racing_yield_is_not_lost() {
    task_model(1, 1, How::Real);
}

#[test]
fn loom_task_two_wakers_queue_it_once() {
    task_model(2, 0, How::Real);
}

/// The fast path removed in ece4ae0 (a plain load that saw `SCHEDULED`
/// returned): the waker's load may read the state from before the worker's
/// `start_running`, while the coroutine's check reads the condition from
/// before the waker's store (the store-buffer pattern); the coroutine parks
/// with no token and nobody queues it. loom finds that interleaving and
/// reports the deadlock, so this model shows the check above can fail.
#[test]
#[should_panic(expected = "deadlock")]
fn loom_task_old_unpark_fast_path_loses_a_wakeup() {
    task_model(1, 0, How::OldFastPath);
}

/// The state-level join hand-off: the joiner publishes `JOIN_WAKER` while
/// the task completes. The completer is told to wake the joiner iff the
/// joiner's `set_join_waker` succeeded (else the joiner saw `COMPLETE` and
/// does not wait), and the output is left to the joiner.
#[test]
fn loom_join_waker_is_woken_iff_published_before_completion() {
    loom::model(|| {
        let state = Arc::new(State::new_scheduled());
        let s = state.clone();
        let completer = thread::spawn(move || {
            s.start_running();
            s.complete()
        });
        // `JoinHandle::join`'s decision: wait (and be woken) or take at once.
        let published = !state.is_complete() && state.set_join_waker();
        // The joiner waits for completion either way (parked, or it saw it).
        let c = completer.join().unwrap();
        assert_eq!(published, c.wake_joiner);
        assert!(!c.drop_output, "output dropped under a live join handle");
        assert!(
            state.drop_join_interest(),
            "joiner took the output of an incomplete task"
        );
    });
}

/// `JoinHandle::join` called by a task (the joiner's unparker is then
/// `Unparker::Task`): the completer's wake-up goes through the joiner's own
/// state word. The join-waker and output cells are loom cells, so a read
/// not ordered after its write is reported.
#[test]
fn loom_join_from_a_task_is_woken_through_its_state() {
    loom::model(|| {
        // The joining task, run by this thread as its home worker.
        let joiner = Sim::new(0);
        // The joined task's state, output and join-waker cell.
        let target = Arc::new((
            State::new_scheduled(),
            UnsafeCell::new(0usize),
            UnsafeCell::new(None::<Thread>),
        ));
        let (j, t) = (joiner.clone(), target.clone());
        let completer = thread::spawn(move || {
            let (state, output, join_waker) = &*t;
            state.start_running();
            // SAFETY: running, not complete: nobody else touches the output.
            output.with_mut(|o| unsafe { *o = 42 });
            let c = state.complete();
            assert!(!c.drop_output);
            if c.wake_joiner {
                // SAFETY: JOIN_WAKER seen: the joiner wrote the cell before.
                let worker = join_waker.with(|w| unsafe { (*w).clone() });
                wake(&j, &worker.expect("JOIN_WAKER without a waker"), How::Real);
            }
        });
        let (state, output, join_waker) = &*target;
        let me = thread::current();
        let first = || {
            if !state.is_complete() {
                // SAFETY: the single joiner, before it publishes JOIN_WAKER.
                join_waker.with_mut(|w| unsafe { *w = Some(me) });
                let _ = state.set_join_waker();
            }
        };
        let (runs, requeues) = worker(&joiner, 0, first, || state.is_complete());
        // SAFETY: COMPLETE observed (Acquire).
        assert_eq!(output.with(|o| unsafe { *o }), 42);
        assert!(state.drop_join_interest());
        completer.join().unwrap();
        let scheduled = joiner.scheduled.load(Relaxed);
        assert_eq!(runs, 1 + requeues + scheduled);
        assert!(scheduled + requeues <= 1, "joiner woken more than once");
    });
}

/// The task's output: counts its drops.
struct Out {
    value: usize,
    drops: Arc<AtomicUsize>,
}

impl Drop for Out {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Relaxed);
    }
}

fn meta() -> Meta {
    Meta {
        name: None,
        stack_hint: 0,
        pinned: false,
        site: std::panic::Location::caller(),
    }
}

/// A task run to completion on another thread as the blocking pool does
/// (`run_inline`, then `complete`). Returns the task (one more reference,
/// so the output is not dropped with the allocation), its join handle and
/// the completing thread.
fn spawn_completer(drops: &Arc<AtomicUsize>) -> (TaskRef, JoinHandle<Out>, thread::JoinHandle<()>) {
    let d = drops.clone();
    let (task, handle) = Task::allocate(
        move || Out {
            value: 42,
            drops: d,
        },
        meta(),
    );
    let keep: TaskRef = task.clone();
    let completer = thread::spawn(move || {
        let task: TaskRef = task;
        // SAFETY: this thread alone runs the task, and it never started.
        unsafe { task.run_inline() };
        complete(&task);
    });
    (keep, handle, completer)
}

#[test]
fn loom_join_takes_the_output_of_a_racing_completion() {
    // `JoinHandle::join` on a plain thread: sees COMPLETE at once, or stores
    // its unparker, publishes it and parks until the completer wakes it.
    // A missed wake-up is a deadlock; a racy read of the output or of the
    // unparker is a loom causality error.
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (keep, handle, completer) = spawn_completer(&drops);
        let out = handle.join().unwrap();
        assert_eq!(out.value, 42);
        completer.join().unwrap();
        assert_eq!(drops.load(Relaxed), 0);
        drop(out);
        assert_eq!(drops.load(Relaxed), 1);
        drop(keep);
    });
}

/// A detached task (its handle dropped before completion can be seen),
/// completed on another thread: the output is dropped exactly once. With
/// `keep_until_joined`, checked while this thread still holds a reference,
/// so the allocation's own drop cannot stand in for the output's; without
/// it, both references go with nothing ordering them, and whichever is
/// last frees the task after the completer's writes (loom checks the
/// count's Release decrement and Acquire fence).
fn detached_model(keep_until_joined: bool) {
    loom::model(move || {
        let drops = Arc::new(AtomicUsize::new(0));
        let (keep, handle, completer) = spawn_completer(&drops);
        drop(handle);
        let keep = if keep_until_joined {
            Some(keep)
        } else {
            drop(keep);
            None
        };
        completer.join().unwrap();
        assert_eq!(drops.load(Relaxed), 1);
        drop(keep);
        assert_eq!(drops.load(Relaxed), 1);
    });
}

#[test]
fn loom_join_handle_drop_racing_completion_drops_the_output_once() {
    // Detach: whichever of completion and the handle's drop comes second
    // drops the output, exactly once.
    detached_model(true);
}

#[test]
fn loom_the_last_reference_frees_the_task_after_every_use() {
    // The task's references are dropped on two threads with nothing else
    // ordering them: whichever drops last frees the task.
    detached_model(false);
}
