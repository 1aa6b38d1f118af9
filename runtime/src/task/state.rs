//! The task state word.
//!
//! One `AtomicUsize` per task holds the scheduling and join bits. Every
//! transition is a single read-modify-write, so a wake-up racing with a
//! suspension is decided by the order of two RMWs on one word.
//!
//! ```text
//!                 spawn
//!                   |
//!                   v          pop by a worker (first run picks the home worker)
//!               SCHEDULED ------------------------------------+
//!                                                             v
//!   +----------------------------------------------------> RUNNING --(returns/panics)--> COMPLETE
//!   | unpark (from idle): -> RUNNING, queued on its home     | ^ |
//!   |                                                        | | | yield_now, or park with
//!  idle <----------------------------------------------------+ +-+ NOTIFIED set meanwhile:
//!        park: RUNNING -> idle, unless NOTIFIED was set          stays RUNNING, re-queued on
//!                                                                its home (token consumed)
//! ```
//!
//! For a started task `RUNNING` means "its home worker owns it": running,
//! or queued on that worker (it yielded, was re-queued after a park, or was
//! unparked). Only the transition out of idle needs the unparker's RMW; the
//! worker that pops a started task runs it with no RMW on the state (the
//! queue it came through orders the unparker's write before the pop), so
//! `yield_now` and a wake-up each cost no state RMW on the worker. An unpark
//! that finds `RUNNING` sets `NOTIFIED` (rule 3): if the task was only
//! queued, its next park returns at once, a spurious wake-up that every
//! parking caller tolerates (`park.rs`).
//!
//! *Idle* is "none of SCHEDULED, RUNNING, COMPLETE": the coroutine is
//! suspended and no queue holds it; whoever moves it out of idle (an
//! `unpark`) owns the duty of queueing it, exactly once.
//!
//! Rules:
//! 1. `RUNNING` is set by the home worker (first run) or by the one
//!    `unpark` that found the task idle, which then queues it on the home
//!    worker; it is cleared only by the home worker (park to idle,
//!    completion). A started task found in a queue has it set.
//! 2. `SCHEDULED` marks an unstarted task: set by `spawn`, cleared by the
//!    worker that pops it for its first run. A task is therefore in at most
//!    one queue, and runs on one thread.
//! 3. An `unpark` that finds `RUNNING` sets `NOTIFIED` (the park token)
//!    instead of queueing; the worker checks it when the coroutine parks, so
//!    a wake-up between "checked the condition" and "suspended" is not lost.
//! 4. `COMPLETE` is set once, after the output is written (Release); the join
//!    side reads the output only after seeing it (Acquire).
//! 5. `JOIN_INTEREST` is cleared once, by the `JoinHandle` (join or drop).
//!    Whichever of rule 4 and rule 5 happens second drops the output.
//! 6. `JOIN_WAKER` is set by the joiner after it stored its unparker; the
//!    completer reads the unparker only if it sees the bit.

use crate::loom::sync::atomic::{AtomicUsize, Ordering::*};

/// Unstarted, in a run queue (or about to be pushed into one).
pub(crate) const SCHEDULED: usize = 1 << 0;
/// Started and owned by its home worker: being resumed, or queued there.
pub(crate) const RUNNING: usize = 1 << 1;
/// Unparked while running: the next park returns at once.
pub(crate) const NOTIFIED: usize = 1 << 2;
/// The closure returned or panicked, or the task was cancelled; output stored.
pub(crate) const COMPLETE: usize = 1 << 3;
/// A `JoinHandle` still exists.
pub(crate) const JOIN_INTEREST: usize = 1 << 4;
/// The joiner stored its unparker in the task and waits for completion.
pub(crate) const JOIN_WAKER: usize = 1 << 5;

/// What an `unpark` has to do after updating the state.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Unpark {
    /// The task was idle: the caller must queue it on its home worker.
    Schedule,
    /// Nothing to do: the task is queued, running (token set) or complete.
    Done,
}

/// What the worker does after the coroutine suspended to park.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum AfterPark {
    /// Now idle; whoever unparks it will queue it.
    Idle,
    /// A wake-up arrived while it was running: queue it again.
    Requeue,
}

/// Completion's report to the completer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completed {
    /// The join handle is gone: the completer drops the output.
    pub(crate) drop_output: bool,
    /// A joiner waits: unpark it.
    pub(crate) wake_joiner: bool,
}

#[derive(Debug)]
pub(crate) struct State(AtomicUsize);

impl State {
    /// A freshly spawned task: queued, with a join handle.
    pub(crate) fn new_scheduled() -> State {
        State(AtomicUsize::new(SCHEDULED | JOIN_INTEREST))
    }

    pub(crate) fn load(&self) -> usize {
        self.0.load(Acquire)
    }

    /// The worker popped the task: SCHEDULED -> RUNNING (keeps NOTIFIED).
    pub(crate) fn start_running(&self) {
        let prev = self.0.fetch_xor(SCHEDULED | RUNNING, AcqRel);
        debug_assert!(
            prev & SCHEDULED != 0 && prev & RUNNING == 0,
            "state {prev:#b}"
        );
    }

    /// The running coroutine wants to park: consume the token if there is one.
    /// Returns true if a token was there (park returns without suspending).
    pub(crate) fn take_token(&self) -> bool {
        if self.0.load(Relaxed) & NOTIFIED == 0 {
            return false;
        }
        self.0.fetch_and(!NOTIFIED, AcqRel) & NOTIFIED != 0
    }

    /// The coroutine suspended in `park`: RUNNING -> idle, or stays RUNNING
    /// (re-queued) if a token arrived meanwhile (the token is consumed by
    /// that re-queue).
    pub(crate) fn after_park(&self) -> AfterPark {
        let mut cur = self.0.load(Acquire);
        loop {
            debug_assert!(cur & RUNNING != 0);
            let (next, out) = if cur & NOTIFIED != 0 {
                (cur & !NOTIFIED, AfterPark::Requeue)
            } else {
                (cur & !RUNNING, AfterPark::Idle)
            };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return out,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Whether a task popped from a queue is a started one (it yielded, was
    /// re-queued after a park, or was unparked out of idle): `RUNNING` was
    /// set by this worker, or by the unpark that queued the task, and the
    /// queue orders that write before the pop (rule 1).
    #[inline]
    pub(crate) fn is_running_here(&self) -> bool {
        self.0.load(Relaxed) & RUNNING != 0
    }

    /// Someone unparks the task.
    ///
    /// Always one read-modify-write (unless the task is complete), even when
    /// the task is already queued or already holds a token: a plain load that
    /// sees `SCHEDULED` and returns would not order the waker's earlier writes
    /// (the condition it made true) before the task's next `start_running` or
    /// `take_token`, and the resumed coroutine could read a stale condition,
    /// park again, and miss this wake-up (the store-buffer pattern). The RMW
    /// makes the worker's next RMW on this word read from ours. A started
    /// task is resumed with no `start_running`: if this call took it out of
    /// idle, the queue it pushes the task through orders its writes before
    /// the resume; if the task was queued or running, the token left here
    /// is read by the RMW of its next `take_token` or `after_park`, which
    /// orders the waker's writes before it parks again.
    pub(crate) fn unpark(&self) -> Unpark {
        let prev = self.0.fetch_update(AcqRel, Acquire, |cur| {
            if cur & COMPLETE != 0 {
                None
            } else if cur & RUNNING != 0 {
                Some(cur | NOTIFIED)
            } else if cur & SCHEDULED != 0 {
                // Unstarted and queued: nothing to add, but still an RMW.
                Some(cur)
            } else {
                // Idle: the caller queues it on its home worker, which runs
                // it without another RMW (the queue orders this one first).
                Some(cur | RUNNING)
            }
        });
        match prev {
            Ok(prev) if prev & (RUNNING | SCHEDULED) == 0 => Unpark::Schedule,
            _ => Unpark::Done,
        }
    }

    /// The output is stored: set COMPLETE, clear RUNNING/SCHEDULED/NOTIFIED.
    pub(crate) fn complete(&self) -> Completed {
        let prev = self
            .0
            .fetch_update(AcqRel, Acquire, |s| {
                Some((s & !(RUNNING | SCHEDULED | NOTIFIED)) | COMPLETE)
            })
            .unwrap_or_else(|s| s);
        debug_assert!(prev & COMPLETE == 0, "completed twice");
        Completed {
            drop_output: prev & JOIN_INTEREST == 0,
            wake_joiner: prev & JOIN_WAKER != 0,
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.0.load(Acquire) & COMPLETE != 0
    }

    /// The joiner stored its unparker: publish it. Returns false if the task
    /// completed first (the joiner then reads the output at once).
    pub(crate) fn set_join_waker(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            if cur & COMPLETE != 0 {
                return false;
            }
            match self
                .0
                .compare_exchange_weak(cur, cur | JOIN_WAKER, AcqRel, Acquire)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The join handle is dropped or has taken the output. Returns true if the
    /// task had completed, so the caller drops (or has taken) the output.
    pub(crate) fn drop_join_interest(&self) -> bool {
        let prev = self.0.fetch_and(!(JOIN_INTEREST | JOIN_WAKER), AcqRel);
        prev & COMPLETE != 0
    }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_started_task_that_yields_is_found_running() {
        let s = State::new_scheduled();
        assert!(!s.is_running_here(), "unstarted: the worker must start it");
        s.start_running();
        assert!(s.is_running_here());
        // A yield changes no bit: the worker re-queues the task as is and
        // finds it running when it pops it again.
        assert_eq!(s.load() & (SCHEDULED | RUNNING), RUNNING);
    }

    #[test]
    fn unpark_from_idle_marks_running_and_asks_to_queue_once() {
        let s = State::new_scheduled();
        s.start_running();
        assert_eq!(s.after_park(), AfterPark::Idle);
        assert!(!s.is_running_here());
        assert_eq!(s.unpark(), Unpark::Schedule);
        assert!(s.is_running_here(), "the unparker marks it running");
        // Queued (or running) already: later unparks only leave the token.
        assert_eq!(s.unpark(), Unpark::Done);
        assert_eq!(s.load() & NOTIFIED, NOTIFIED);
        assert!(s.take_token());
        assert!(!s.take_token());
    }

    #[test]
    fn wake_during_a_run_requeues_and_stays_running() {
        let s = State::new_scheduled();
        s.start_running();
        assert_eq!(s.unpark(), Unpark::Done);
        assert_eq!(s.after_park(), AfterPark::Requeue);
        assert_eq!(s.load() & (SCHEDULED | RUNNING | NOTIFIED), RUNNING);
        assert_eq!(s.after_park(), AfterPark::Idle);
        assert_eq!(s.load() & (SCHEDULED | RUNNING | NOTIFIED), 0);
    }

    #[test]
    fn unpark_of_a_queued_unstarted_or_complete_task_does_nothing() {
        let s = State::new_scheduled();
        assert_eq!(s.unpark(), Unpark::Done);
        assert_eq!(s.load() & (SCHEDULED | RUNNING | NOTIFIED), SCHEDULED);
        s.start_running();
        let c = s.complete();
        assert!(!c.drop_output && !c.wake_joiner);
        assert_eq!(s.unpark(), Unpark::Done);
        assert!(s.is_complete());
    }
}
