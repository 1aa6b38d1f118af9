//! Sleeping workers: the sleep flag protocol, and the count of sleepers so
//! producers skip the wake-up path when everybody is busy (the common case
//! under load).
//!
//! The protocol (no lost wake-ups, no thundering herd):
//!
//! * A worker that found no work calls [`SleepFlag::prepare_sleep`] (sleeper
//!   counted, flag set, `SeqCst` fence), then re-checks every source of
//!   work. If it finds some, it takes the flag back with
//!   [`SleepFlag::cancel_sleep`]; else it sleeps in its poller and calls
//!   `cancel_sleep` when the poller returns.
//! * A producer publishes its work, issues `fence(SeqCst)`, then claims a
//!   sleeper: a given worker's ([`SleepFlag::notify`], for a push into that
//!   worker's inbox) or any one ([`Idle::claim_one`]). A claim that returns
//!   true obliges the caller to wake that worker's poller.
//!
//! The two fences order "flag set" before "sources re-checked" and "work
//! published" before "flag read": either the producer sees the flag, or the
//! worker's re-check sees the work. Only the call that swaps a flag from true
//! to false wakes (and uncounts) that sleeper, so one sleep is claimed at
//! most once and one notification wakes at most one worker. The loom models
//! in `tests_loom.rs` check this with this very code.

use crate::loom::sync::atomic::{
    fence, AtomicBool, AtomicUsize,
    Ordering::{Relaxed, SeqCst},
};

#[derive(Debug, Default)]
pub(crate) struct Idle {
    /// Workers whose `sleeping` flag is set.
    pub(crate) sleepers: AtomicUsize,
    /// Rotates the first worker tried by `claim_one`, so wake-ups spread.
    rotor: AtomicUsize,
}

impl Idle {
    pub(crate) fn next_start(&self, n: usize) -> usize {
        self.rotor.fetch_add(1, Relaxed) % n.max(1)
    }

    /// Producer, after publishing work and `fence(SeqCst)`: claims one of the
    /// `n` workers whose flags `flag(i)` gives, if one sleeps, trying them
    /// from a rotating start. Returns the index of the claimed worker, whose
    /// poller the caller must wake; at most one worker is claimed.
    pub(crate) fn claim_one<'a>(
        &self,
        n: usize,
        flag: impl Fn(usize) -> &'a SleepFlag,
    ) -> Option<usize> {
        if self.sleepers.load(SeqCst) == 0 {
            return None;
        }
        let start = self.next_start(n);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| flag(i).notify(self))
    }

    fn uncount(&self) {
        let prev = self.sleepers.fetch_sub(1, SeqCst);
        debug_assert!(prev > 0, "sleeper count underflow");
    }
}

/// A worker's "asleep in my poller" flag: set by the worker, cleared by the
/// worker or by the one producer that claims the sleep.
#[derive(Debug, Default)]
pub(crate) struct SleepFlag(AtomicBool);

impl SleepFlag {
    /// Worker, having found no work: announces the sleep. The caller must
    /// then re-check every source of work, and sleep only if all are empty;
    /// either way it ends with [`cancel_sleep`](SleepFlag::cancel_sleep).
    ///
    /// The sleeper is counted before the flag is set: a producer that sees
    /// the flag and claims the sleep uncounts it, and that must not happen
    /// before the count (the count would wrap below zero for a moment, and
    /// `spin_for_work`'s `sleepers + 1` overflow). Counted early, the count
    /// may briefly include a worker whose flag is not set yet, which only
    /// sends a producer to look at the flags.
    pub(crate) fn prepare_sleep(&self, idle: &Idle) {
        idle.sleepers.fetch_add(1, SeqCst);
        self.0.store(true, SeqCst);
        fence(SeqCst);
    }

    /// Worker, after its re-check found work or after its poller returned:
    /// takes the flag back. Returns false if a producer claimed the sleep
    /// first (that producer uncounted it and woke, or is waking, the poller,
    /// so the next poll may return at once).
    pub(crate) fn cancel_sleep(&self, idle: &Idle) -> bool {
        if self.0.swap(false, SeqCst) {
            idle.uncount();
            true
        } else {
            false
        }
    }

    /// Producer, after publishing work for this worker and `fence(SeqCst)`:
    /// claims the worker's sleep. Returns true if this call claimed it; the
    /// caller must then wake the worker's poller.
    pub(crate) fn notify(&self, idle: &Idle) -> bool {
        if self.0.load(SeqCst) && self.0.swap(false, SeqCst) {
            idle.uncount();
            true
        } else {
            false
        }
    }

    /// Whether the worker sleeps (or is about to), for metrics.
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Relaxed)
    }
}
