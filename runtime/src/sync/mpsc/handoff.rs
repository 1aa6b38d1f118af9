//! The receiver's wait slot: where a parked receive is found by a sender
//! and handed its value directly, with no lock on either side of the
//! hand-off.
//!
//! # States
//!
//! | `state`   | meaning                                   | `waker`            | `value`  |
//! |-----------|-------------------------------------------|--------------------|----------|
//! | `IDLE`    | no receive waits here                     | the receiver's     | `None`   |
//! | `WAITING` | a receive is parked, wanting a value      | its unparker       | `None`   |
//! | `CLAIMED` | a sender (or the last sender's drop) won  | the claimer's      | claimer's|
//! |           | the slot and is filling it                |                    |          |
//! | `FULL`    | the value is there for the receiver       | the receiver's     | the value|
//!
//! ```text
//!            register (channel lock held, queue empty, senders left)
//!   IDLE ──────────────────────────────────────────────────► WAITING
//!    ▲  ▲                                                     │  │
//!    │  └─ the receive gives up (timeout, unwind): CAS ───────┘  │ claim: CAS, by a
//!    │                                                           ▼ sender or a disconnect
//!    │   the receiver takes the value          deliver       CLAIMED
//!    └──────────────────────────── FULL ◄───────────────────────┤
//!    └───────────────────────────────────── disconnect: release ┘
//! ```
//!
//! # Who touches what
//!
//! 1. Leaving `WAITING` takes a compare-and-swap, so exactly one party owns
//!    each registration: a claimer (`WAITING -> CLAIMED`) or the receive
//!    itself giving up (`WAITING -> IDLE`).
//! 2. `waker` and `value` are written by the receiver only while the state
//!    is `IDLE` or after it won rule 1 itself, and by a claimer only between
//!    its `CLAIMED` and its next store. Every store that hands the cells
//!    over (`WAITING`, `FULL`, `IDLE` after a release) is `Release`, every
//!    load or CAS that takes them over is `Acquire`.
//! 3. A claimer takes the unparker out, fills `value`, publishes `FULL` (or
//!    `IDLE` for a disconnect) and only then unparks: a receive that wakes
//!    early and finds `CLAIMED` parks again without a deadline, because that
//!    unpark is certain to come.
//! 4. Registration happens under the channel lock with the queue empty and
//!    no sender parked; a sender looks for a registration (lock-free first,
//!    then again under the lock) before it pushes. So while a receive is
//!    `WAITING` the queue stays empty, and a hand-off never overtakes a
//!    queued value.
//! 5. A receive unwound while the slot is `CLAIMED` or `FULL` leaves the
//!    value there: the next receive on the channel takes it first (it was
//!    sent first), `close` drops it, or the channel's drop does.

use crate::loom::sync::atomic::{AtomicU8, Ordering};
use crate::loom::UnsafeCell;
use crate::park::{self, Unparker};
use crate::sync::wait::{self, expired};
use std::time::Instant;

const IDLE: u8 = 0;
const WAITING: u8 = 1;
const CLAIMED: u8 = 2;
const FULL: u8 = 3;

/// The receiver's wait slot; see the module docs.
#[derive(Debug)]
pub(super) struct Handoff<T> {
    state: AtomicU8,
    waker: UnsafeCell<Option<Unparker>>,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the cells are only accessed by the one party that owns them under
// the state protocol (module rules 1-2), with Release/Acquire edges between
// owners; a `T` moves from a sender's thread to the receiver's, so `T: Send`
// suffices, as for `std::sync::Mutex`.
unsafe impl<T: Send> Sync for Handoff<T> {}
// SAFETY: as above; the slot owns at most one `T` and an `Unparker` (Send).
unsafe impl<T: Send> Send for Handoff<T> {}

/// A won registration: the claimer fills the slot and wakes the receiver.
#[must_use]
pub(super) struct Claim(Option<Unparker>);

/// How a receive's wait in the slot ended.
pub(super) enum Waited<T> {
    /// A sender handed this value over.
    Value(T),
    /// The registration was released (the last sender left): look again
    /// under the channel lock.
    Released,
    /// The deadline passed and the receive withdrew its registration.
    TimedOut,
}

impl<T> Handoff<T> {
    pub(super) fn new() -> Handoff<T> {
        Handoff {
            state: AtomicU8::new(IDLE),
            waker: UnsafeCell::new(None),
            value: UnsafeCell::new(None),
        }
    }

    /// Whether a receive is parked here, wanting a value (a snapshot).
    #[cfg(all(test, not(pinstack_loom)))]
    pub(super) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Relaxed) == WAITING
    }

    /// Takes the registration of a parked receive, if there is one.
    #[inline]
    pub(super) fn claim(&self) -> Option<Claim> {
        if self.state.load(Ordering::Relaxed) != WAITING {
            return None;
        }
        self.state
            .compare_exchange(WAITING, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: this CAS won the registration (rule 1); until our next
        // store nobody else touches the cells (rule 2), and the Acquire
        // makes the receiver's write of the unparker visible.
        let waker = self.waker.with_mut(|w| unsafe { (*w).take() });
        Some(Claim(waker))
    }

    /// Hands `value` to the receive whose registration `claim` won, then
    /// wakes it.
    #[inline]
    pub(super) fn deliver(&self, claim: Claim, value: T) {
        // SAFETY: we hold the claim (state CLAIMED, rule 2): the cell is
        // ours until the store below, and it is `None` (the last taker
        // emptied it before the receiver registered again).
        self.value.with_mut(|v| unsafe { *v = Some(value) });
        self.state.store(FULL, Ordering::Release);
        if let Some(u) = claim.0 {
            u.unpark();
        }
    }

    /// Gives a claimed registration back empty (the last sender left) and
    /// returns the receiver's unparker for the caller to use.
    pub(super) fn release(&self, claim: Claim) -> Option<Unparker> {
        self.state.store(IDLE, Ordering::Release);
        claim.0
    }

    /// Registers the running receive. Call with the channel lock held, the
    /// queue empty, no sender parked and senders left (rule 4), and the
    /// slot `IDLE`.
    pub(super) fn register(&self) {
        debug_assert_eq!(self.state.load(Ordering::Relaxed), IDLE);
        let me = park::current();
        // SAFETY: the slot is IDLE, so only the receiver (us: `Receiver` is
        // `!Sync`, one receive at a time) touches the cells (rule 2).
        let stale = self.waker.with_mut(|w| unsafe { (*w).replace(me) });
        self.state.store(WAITING, Ordering::Release);
        drop(stale);
    }

    /// Parks the registered receive until a value arrives, the
    /// registration is released, or `deadline` passes.
    pub(super) fn wait(&self, deadline: Option<Instant>) -> Waited<T> {
        loop {
            match self.state.load(Ordering::Acquire) {
                FULL => return Waited::Value(self.take_full()),
                IDLE => return Waited::Released,
                // The claimer unparks us once it has published (rule 3).
                CLAIMED => wait::park_until(None),
                _ => {
                    if expired(deadline) {
                        if self.withdraw() {
                            return Waited::TimedOut;
                        }
                        continue;
                    }
                    wait::park_until(deadline);
                }
            }
        }
    }

    /// Withdraws a registration nobody claimed yet (a receive leaving).
    /// Returns false if a claimer won it first.
    pub(super) fn withdraw(&self) -> bool {
        if self
            .state
            .compare_exchange(WAITING, IDLE, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // SAFETY: our CAS took the slot back to IDLE: the cells are ours
        // (rule 2).
        let stale = self.waker.with_mut(|w| unsafe { (*w).take() });
        drop(stale);
        true
    }

    /// A value handed to a receive that was unwound before it took it
    /// (rule 5); waits out a claimer that is mid-delivery. Receiver side
    /// only.
    #[inline]
    pub(super) fn take_leftover(&self) -> Option<T> {
        if self.state.load(Ordering::Relaxed) == IDLE {
            return None;
        }
        self.take_leftover_slow()
    }

    #[cold]
    fn take_leftover_slow(&self) -> Option<T> {
        loop {
            match self.state.load(Ordering::Acquire) {
                FULL => return Some(self.take_full()),
                // Only momentarily: the claimer stores FULL next.
                CLAIMED => crate::loom::thread::yield_now(),
                // IDLE; WAITING cannot be left behind (the unwound receive
                // withdrew it), nor seen here, as only a receive registers.
                _ => return None,
            }
        }
    }

    /// Takes the value of a `FULL` slot (seen with Acquire) and frees it.
    fn take_full(&self) -> T {
        // SAFETY: FULL was published with Release by the claimer and read
        // with Acquire by the caller, the receiver; nobody else touches the
        // cells until the slot is registered again (rule 2).
        let v = self.value.with_mut(|v| unsafe { (*v).take() });
        self.state.store(IDLE, Ordering::Relaxed);
        v.expect("a FULL slot holds the value")
    }
}

/// loom models of the slot alone: a receive's deadline passing exactly
/// while a sender claims it, and a receive unwound mid-hand-off. The
/// channel-level models are in `sync/tests_loom.rs`.
#[cfg(all(test, pinstack_loom))]
mod tests_loom {
    use super::*;
    use crate::loom::sync::Arc;
    use loom::thread;

    /// Spawns a sender that claims and fills the slot if it finds the
    /// receive registered; joins to whether it delivered.
    fn spawn_sender(h: &Arc<Handoff<u32>>, v: u32) -> thread::JoinHandle<bool> {
        let h = h.clone();
        thread::spawn(move || match h.claim() {
            Some(c) => {
                h.deliver(c, v);
                true
            }
            None => false,
        })
    }

    #[test]
    fn loom_handoff_deadline_passing_races_a_claim() {
        loom::model(|| {
            let h = Arc::new(Handoff::new());
            // The sender may look before the receive registers, too.
            let t = spawn_sender(&h, 7);
            h.register();
            // The deadline has passed when the wait looks at it.
            let got = match h.wait(Some(Instant::now())) {
                Waited::Value(v) => Some(v),
                Waited::TimedOut => None,
                Waited::Released => panic!("nobody released the registration"),
            };
            let delivered = t.join().unwrap();
            // Exactly one side won: the value is received iff it was
            // delivered, and never left behind.
            assert_eq!(got, delivered.then_some(7));
            assert_eq!(h.take_leftover(), None);
            assert!(h.claim().is_none(), "a withdrawn registration was claimed");
        });
    }

    #[test]
    fn loom_handoff_unwound_receive_leaves_the_value_for_the_next() {
        loom::model(|| {
            let h = Arc::new(Handoff::new());
            let t = spawn_sender(&h, 9);
            h.register();
            // The receive is unwound: its guard withdraws. If a sender won
            // first, the next receive finds the value, even mid-delivery.
            let withdrew = h.withdraw();
            let next = h.take_leftover();
            let delivered = t.join().unwrap();
            assert_eq!(withdrew, !delivered);
            assert_eq!(next, delivered.then_some(9));
            assert_eq!(h.take_leftover(), None);
        });
    }

    #[test]
    fn loom_handoff_two_claimers_one_registration() {
        loom::model(|| {
            let h = Arc::new(Handoff::new());
            h.register();
            let a = spawn_sender(&h, 1);
            let b = spawn_sender(&h, 2);
            let got = match h.wait(None) {
                Waited::Value(v) => v,
                _ => panic!("a sender was there to deliver"),
            };
            let (da, db) = (a.join().unwrap(), b.join().unwrap());
            // Both cannot have delivered to one registration; and one must
            // have, or the wait above would have deadlocked (loom says so).
            assert!(da ^ db);
            assert_eq!(got, if da { 1 } else { 2 });
        });
    }
}
