//! What a task carries for observability: the wake-up stamp every task has,
//! and the per-task accounting of a traced task.
//!
//! ```text
//! Header.obs: TaskObs (24 bytes in every task)
//!   runnable_at  AtomicU64   0 | ARMED | TRACED | a timestamp (ticks)
//!   spawner      AtomicU64   0, or who spawned it (tracing on)
//!   trace        AtomicPtr   null, or a Box<TaskTrace> (a traced task
//!                            that suspended at least once)
//! ```
//!
//! `runnable_at` states:
//!
//! ```text
//!   0 --(worker samples this suspension)--> ARMED --(wake-up)--> t
//!   t --(resume: delay = now - t recorded)--> 0, or TRACED if traced
//!   TRACED --(every wake-up)--> t
//! ```
//!
//! Who touches what:
//! 1. `runnable_at` is written by the waker that moved the task from idle to
//!    scheduled (exactly one, `task/state.rs` rule 2), by the spawner before
//!    the task is queued, and by the home worker between resumes; the queue
//!    hand-off orders these writes. All accesses are relaxed atomics.
//! 2. `spawner` is written by the spawner before the task is queued. `trace`
//!    is set once, by the home worker at the end of the task's first resume
//!    if it suspended (a task done in one resume never needs one), before
//!    the task can be woken; it is freed only when the task's allocation is
//!    dropped.
//! 3. A `TaskTrace`'s accounting fields are written only by the home worker
//!    (single writer, relaxed load + store); `woken_by` by the one waker as
//!    in rule 1. Readers elsewhere (none today) would see a stale value.

use crate::loom::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering::*};

/// `runnable_at`: the next wake-up is sampled for the delay histogram.
pub(crate) const ARMED: u64 = 1;
/// `runnable_at`: the task is traced; every wake-up is stamped.
pub(crate) const TRACED: u64 = 2;

/// The observability fields of every task header.
#[derive(Debug, Default)]
pub(crate) struct TaskObs {
    pub(crate) runnable_at: AtomicU64,
    /// Who spawned the task (`event::who`), non-zero iff it is traced.
    pub(crate) spawner: AtomicU64,
    trace: AtomicPtr<TaskTrace>,
}

impl TaskObs {
    /// The task's trace record, if it is traced.
    #[inline]
    pub(crate) fn trace(&self) -> Option<&TaskTrace> {
        let p = self.trace.load(Acquire);
        // SAFETY: a non-null pointer came from `Box::into_raw` in
        // `set_trace` and is freed only in `Drop`, which needs `&mut self`;
        // so it stays valid for the lifetime of `&self`.
        unsafe { p.as_ref() }
    }

    /// Attaches a trace record. Called once, by the home worker, before the
    /// task can be woken (rule 2).
    /// A second call keeps the first record (and drops `t`).
    pub(crate) fn set_trace(&self, t: Box<TaskTrace>) {
        // A load and a store, no read-modify-write: only the home worker
        // writes, once (rule 2).
        if self.trace.load(Relaxed).is_null() {
            self.trace.store(Box::into_raw(t), Release);
        } else {
            debug_assert!(false, "a task's trace record was set twice");
        }
    }
}

impl Drop for TaskObs {
    fn drop(&mut self) {
        let p = self.trace.load(Acquire);
        if !p.is_null() {
            // SAFETY: the pointer came from `Box::into_raw` in `set_trace`;
            // `&mut self` means no reference from `trace()` is alive.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// How a resume ended (the `aux` byte of a run event).
pub(crate) mod outcome {
    /// `yield_now`.
    pub(crate) const YIELD: u8 = 0;
    /// Parked for `Reason` r: `PARK + r`.
    pub(crate) const PARK: u8 = 1;
    /// Returned.
    pub(crate) const FINISHED: u8 = 6;
    /// Panicked.
    pub(crate) const PANICKED: u8 = 7;
    /// Not resumed yet.
    pub(crate) const NEW: u8 = 255;
}

/// Accumulated time slots, by index.
pub(crate) mod slot {
    pub(crate) const RUNNING: usize = 0;
    pub(crate) const RUNNABLE: usize = 1;
    /// Waiting for `Reason` r: `WAIT + r` (I/O, timer, sync, join, future).
    pub(crate) const WAIT: usize = 2;
    pub(crate) const COUNT: usize = 7;
}

/// Per-task accounting of a traced task.
#[derive(Debug)]
pub(crate) struct TaskTrace {
    pub(crate) id: u64,
    /// Who woke it last (`event::who_*`), written by the waker.
    pub(crate) woken_by: AtomicU64,
    last_end: AtomicU64,
    last_outcome: AtomicU8,
    acc: [AtomicU64; slot::COUNT],
    resumes: AtomicU64,
    /// Ring position of the last NAME event (home worker only).
    pub(crate) named_at: AtomicU64,
}

#[inline]
fn add(c: &AtomicU64, v: u64) {
    c.store(c.load(Relaxed).wrapping_add(v), Relaxed);
}

/// A traced task's time so far, in nanoseconds, by slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) acc: [u64; slot::COUNT],
    pub(crate) resumes: u64,
}

impl TaskTrace {
    /// The record of task `id`, spawned at tick `spawn_ns`.
    pub(crate) fn new(id: u64, spawn_ns: u64) -> TaskTrace {
        TaskTrace {
            id,
            woken_by: AtomicU64::new(0),
            last_end: AtomicU64::new(spawn_ns),
            last_outcome: AtomicU8::new(outcome::NEW),
            acc: std::array::from_fn(|_| AtomicU64::new(0)),
            resumes: AtomicU64::new(0),
            named_at: AtomicU64::new(0),
        }
    }

    /// A resume starts at `now`; `woke_at` is the wake-up stamp, if any.
    /// Home worker only.
    pub(crate) fn begin(&self, now: u64, woke_at: Option<u64>) {
        let since = self.last_end.load(Relaxed).min(now);
        let last = self.last_outcome.load(Relaxed);
        if (outcome::PARK..outcome::FINISHED).contains(&last) {
            // Parked: the wait lasts until the wake-up (none stamped: the
            // wake-up came while it was still running, so no wait).
            let woke = woke_at.unwrap_or(since).clamp(since, now);
            let r = (last - outcome::PARK) as usize;
            add(&self.acc[slot::WAIT + r], woke - since);
            add(&self.acc[slot::RUNNABLE], now - woke);
        } else {
            // Spawned or yielded: runnable from then on.
            add(&self.acc[slot::RUNNABLE], now - since);
        }
    }

    /// The resume that started at `start` ended at `now` with `out`.
    pub(crate) fn end(&self, start: u64, now: u64, out: u8) {
        add(&self.acc[slot::RUNNING], now.saturating_sub(start));
        self.last_end.store(now, Relaxed);
        self.last_outcome.store(out, Relaxed);
        add(&self.resumes, 1);
    }

    /// Totals so far.
    pub(crate) fn totals(&self) -> Totals {
        Totals {
            acc: std::array::from_fn(|i| self.acc[i].load(Relaxed)),
            resumes: self.resumes.load(Relaxed),
        }
    }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    #[test]
    fn accounting_splits_waits_by_reason() {
        let t = TaskTrace::new(1, 100);
        t.begin(150, Some(100)); // runnable 50
        t.end(150, 200, outcome::PARK + 1); // running 50, then timer wait
        t.begin(1_300, Some(1_200)); // timer 1000, runnable 100
        t.end(1_300, 1_310, outcome::YIELD); // running 10
        t.begin(1_320, None); // runnable 10
        t.end(1_320, 1_330, outcome::PARK + 2); // running 10, then sync
        t.begin(1_400, None); // woken while running: no sync wait, runnable 70
        t.end(1_400, 1_401, outcome::FINISHED);
        let s = t.totals();
        assert_eq!(s.acc[slot::RUNNING], 50 + 10 + 10 + 1);
        assert_eq!(s.acc[slot::RUNNABLE], 50 + 100 + 10 + 70);
        assert_eq!(s.acc[slot::WAIT + 1], 1_000);
        assert_eq!(s.acc[slot::WAIT + 2], 0);
        assert_eq!(s.resumes, 4);
        assert_eq!(s.acc.iter().sum::<u64>(), 1_401 - 100);
    }

    #[test]
    fn trace_record_is_attached_and_freed() {
        let o = TaskObs::default();
        assert!(o.trace().is_none());
        o.set_trace(Box::new(TaskTrace::new(7, 0)));
        assert_eq!(o.trace().map(|t| t.id), Some(7));
    }
}
