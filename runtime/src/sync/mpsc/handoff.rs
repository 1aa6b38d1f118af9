//! The receiver's wait slot: where a receive registers before it parks,
//! and where a sender finds it and hands it a value directly, with no lock
//! on either side of the hand-off.
//!
//! # State word
//!
//! | bits          | meaning                                                    |
//! |---------------|------------------------------------------------------------|
//! | slot `IDLE`   | no receive waits here                                      |
//! | slot `WAITING`| a receive is parked wanting a value; `waker` is its unparker|
//! | slot `CLAIMED`| a sender (or the last sender's drop) took the registration |
//! |               | and is filling `value`                                     |
//! | slot `FULL`   | `value` was handed over; once the receiver has taken it    |
//! |               | (the cell is `None` again) this means the same as `IDLE`   |
//! | `READY` (4)   | the channel may hold something the receive must look at    |
//! |               | under the lock: queued values, parked senders, no senders  |
//!
//! ```text
//!         register: CAS from IDLE/FULL with READY clear (lock-free), or a store
//!         under the channel lock (which also clears READY)
//!   IDLE/FULL ──────────────────────────────────────────────► WAITING
//!    ▲   ▲  ▲                                                  │  │
//!    │   │  └─ the receive gives up (timeout, unwind): CAS ────┘  │ claim: CAS, by a sender,
//!    │   │                                                        ▼ or by mark_ready
//!    │   └──────────────── deliver (value in the cell) ───── CLAIMED
//!    └───────────────────── release (last sender gone) ──────────┘
//! ```
//!
//! # Rules
//!
//! 1. Leaving `WAITING` takes a CAS on the word, so exactly one party owns
//!    each registration: a claimer (`-> CLAIMED`) or the receive itself
//!    giving up (`-> IDLE`). Every CAS and RMW keeps the `READY` bit as it
//!    is, except where noted.
//! 2. The cells are written by the receiver only while the slot is `IDLE`
//!    or `FULL` (no other party touches them then) or after it won rule 1
//!    itself, and by a claimer only between its claim and its deliver or
//!    release. The stores that hand the cells over (`WAITING`, `FULL`,
//!    release) are `Release`, the loads and CASes that take them over are
//!    `Acquire`.
//! 3. A claimer takes the unparker out, fills `value`, publishes `FULL` (or
//!    `IDLE`) and only then unparks: a receive that wakes early and finds
//!    `CLAIMED` parks again without a deadline, because that unpark is
//!    certain to come.
//! 4. `READY` is set and cleared only under the channel lock. Whoever makes
//!    the channel hold something for the receive (pushes a value, parks a
//!    sender, drops the last sender) calls [`Handoff::mark_ready`] under the
//!    lock: if `READY` was clear and a receive is `WAITING`, that receive
//!    registered without the lock after the channel was last seen empty, so
//!    `mark_ready` claims it and the caller serves it from the channel.
//!    Only a receive that found the channel empty under the lock clears
//!    `READY` (it registers with a plain store). So a receive registered
//!    with `READY` clear is never left parked next to a queued value, and a
//!    hand-off never overtakes a queued value.
//! 5. A receive unwound while the slot is `CLAIMED` or `FULL` leaves the
//!    value there: the next receive on the channel takes it first (it was
//!    sent first), `close` drops it, or the channel's drop does.

use crate::loom::sync::atomic::{AtomicU8, Ordering};
use crate::loom::UnsafeCell;
use crate::park::{self, Unparker};
use crate::sync::wait::{self, expired};
use std::time::Instant;

const SLOT: u8 = 0b011;
const IDLE: u8 = 0;
const WAITING: u8 = 1;
const CLAIMED: u8 = 2;
const FULL: u8 = 3;
const READY: u8 = 0b100;

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
        self.state.load(Ordering::Relaxed) & SLOT == WAITING
    }

    /// Whether the slot holds a value for the receiver, or one is being
    /// handed over (`CLAIMED`: a claimer is about to deliver, or to release
    /// the slot because the last sender left). Receiver side only: a
    /// `try_recv` now would not find the channel empty.
    #[inline]
    pub(super) fn holds_value(&self) -> bool {
        match self.state.load(Ordering::Acquire) & SLOT {
            // SAFETY: FULL was published with Release and read with Acquire
            // by the receiver (us, `Receiver` is `!Sync`); nobody else
            // touches the cells until the slot is registered again (rule 2).
            FULL => self.value.with(|v| unsafe { (*v).is_some() }),
            CLAIMED => true,
            _ => false,
        }
    }

    /// Whether anything may have arrived since the channel was last seen
    /// empty under the lock (`READY`, rule 4). `false` means the channel
    /// is still empty and has senders: no value was queued, no sender
    /// parked and the last sender did not leave since.
    #[inline]
    pub(super) fn maybe_ready(&self) -> bool {
        self.state.load(Ordering::Acquire) & READY != 0
    }

    /// Takes the registration of a parked receive, if there is one and no
    /// `mark_ready` is serving it.
    #[inline]
    pub(super) fn claim(&self) -> Option<Claim> {
        if self.state.load(Ordering::Relaxed) != WAITING {
            return None;
        }
        self.state
            .compare_exchange(WAITING, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(self.take_waker())
    }

    /// The claimer's half of rule 1: the unparker, now ours to use.
    #[inline]
    fn take_waker(&self) -> Claim {
        // SAFETY: the caller's CAS won the registration (rule 1); until its
        // deliver or release nobody else touches the cells (rule 2), and
        // the Acquire made the receiver's write of the unparker visible.
        let waker = self.waker.with_mut(|w| unsafe { (*w).take() });
        Claim(waker)
    }

    /// Hands `value` to the receive whose registration `claim` won, then
    /// wakes it.
    #[inline]
    pub(super) fn deliver(&self, claim: Claim, value: T) {
        // SAFETY: we hold the claim (rule 2): the cell is ours until the
        // RMW below, and it is `None` (the receiver emptied it before it
        // registered again).
        self.value.with_mut(|v| unsafe { *v = Some(value) });
        // CLAIMED -> FULL, keeping READY (rule 1).
        self.state.fetch_add(FULL - CLAIMED, Ordering::Release);
        if let Some(u) = claim.0 {
            u.unpark();
        }
    }

    /// Gives a claimed registration back empty (the last sender left) and
    /// returns the receiver's unparker for the caller to use.
    pub(super) fn release(&self, claim: Claim) -> Option<Unparker> {
        // CLAIMED -> IDLE, keeping READY (rule 1).
        self.state.fetch_sub(CLAIMED - IDLE, Ordering::Release);
        claim.0
    }

    /// Marks that the channel holds something for the receive (rule 4).
    /// Call with the channel lock held, after the change. Returns the
    /// registration of a receive that registered without the lock and must
    /// now be served by the caller, from the channel, with `deliver` (or
    /// `release`).
    #[inline]
    pub(super) fn mark_ready(&self) -> Option<Claim> {
        // READY changes only under the lock we hold: this load is exact.
        let mut cur = self.state.load(Ordering::Relaxed);
        if cur & READY != 0 {
            return None;
        }
        loop {
            // A WAITING slot is claimed in the same CAS; any other slot
            // state (CLAIMED by a sender right now, too) only gains READY.
            let claims = cur & SLOT == WAITING;
            let next = if claims { CLAIMED | READY } else { cur | READY };
            match self
                .state
                .compare_exchange(cur, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if claims => return Some(self.take_waker()),
                Ok(_) => return None,
                Err(now) => cur = now,
            }
        }
    }

    /// Registers the running receive without the channel lock, if the
    /// channel was seen empty since (`READY` clear) and the slot is free.
    /// Returns false if the receive must look under the lock.
    #[inline]
    pub(super) fn try_register(&self) -> bool {
        let cur = self.state.load(Ordering::Relaxed);
        if cur != IDLE && cur != FULL {
            return false;
        }
        self.put_waker();
        self.state
            .compare_exchange(cur, WAITING, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// Registers the running receive. Call with the channel lock held,
    /// having found the channel empty, no sender parked and senders left,
    /// and the slot free (`IDLE` or a taken `FULL`): this also clears
    /// `READY` (rule 4).
    pub(super) fn register_locked(&self) {
        debug_assert!(matches!(
            self.state.load(Ordering::Relaxed) & SLOT,
            IDLE | FULL
        ));
        self.put_waker();
        // No CAS needed: setters of READY need the lock we hold, and no
        // claimer acts on a slot that is not WAITING.
        self.state.store(WAITING, Ordering::Release);
    }

    fn put_waker(&self) {
        let me = park::current();
        // SAFETY: the slot is IDLE or a taken FULL, so only the receiver
        // (us: `Receiver` is `!Sync`, one receive at a time) touches the
        // cells (rule 2).
        let stale = self.waker.with_mut(|w| unsafe { (*w).replace(me) });
        drop(stale);
    }

    /// Parks the registered receive until a value arrives, the
    /// registration is released, or `deadline` passes.
    #[inline]
    pub(super) fn wait(&self, deadline: Option<Instant>) -> Waited<T> {
        loop {
            match self.state.load(Ordering::Acquire) & SLOT {
                FULL => {
                    return Waited::Value(
                        self.take_full()
                            .expect("a delivered FULL slot holds the value"),
                    )
                }
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
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            if cur & SLOT != WAITING {
                return false;
            }
            match self.state.compare_exchange(
                cur,
                (cur & READY) | IDLE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
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
        match self.state.load(Ordering::Acquire) & SLOT {
            FULL => self.take_full(),
            CLAIMED => self.take_leftover_slow(),
            // WAITING cannot be left behind (the unwound receive withdrew
            // it), nor seen here, as only a receive registers.
            _ => None,
        }
    }

    #[cold]
    fn take_leftover_slow(&self) -> Option<T> {
        loop {
            match self.state.load(Ordering::Acquire) & SLOT {
                FULL => return self.take_full(),
                // Only momentarily: the claimer publishes next.
                CLAIMED => crate::loom::thread::yield_now(),
                _ => return None,
            }
        }
    }

    /// Takes the value of a `FULL` slot (seen with Acquire): `None` if the
    /// receiver took it already. The slot stays `FULL`, which counts as
    /// free once the cell is empty (no RMW for the receiver here).
    #[inline]
    fn take_full(&self) -> Option<T> {
        // SAFETY: FULL was published with Release by the claimer and read
        // with Acquire by the caller, the receiver; nobody else touches the
        // cells until the slot is registered again (rule 2).
        self.value.with_mut(|v| unsafe { (*v).take() })
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
            h.register_locked(); // no setter in this model: no lock needed
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
            h.register_locked(); // no setter in this model: no lock needed
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
    fn loom_handoff_queued_value_races_a_lock_free_registration() {
        loom::model(|| {
            let h = Arc::new(Handoff::new());
            // A sender queues a value under the channel lock (one sender:
            // the lock is not modelled here) and marks the channel ready;
            // if a receive registered without the lock meanwhile, it must
            // serve it.
            let setter = {
                let h = h.clone();
                thread::spawn(move || match h.mark_ready() {
                    Some(c) => {
                        h.deliver(c, 5);
                        true
                    }
                    None => false,
                })
            };
            let registered = h.try_register();
            let got = if registered {
                // Only the setter can wake this: a lost serve deadlocks.
                match h.wait(None) {
                    Waited::Value(v) => Some(v),
                    _ => panic!("only a value can end this wait"),
                }
            } else {
                None // READY was set: the receive looks under the lock
            };
            let served = setter.join().unwrap();
            assert_eq!(registered, served);
            assert_eq!(got, served.then_some(5));
            // READY stays set until a receive registers under the lock.
            assert!(!h.try_register(), "registered past a queued value");
        });
    }

    #[test]
    fn loom_handoff_two_claimers_one_registration() {
        loom::model(|| {
            let h = Arc::new(Handoff::new());
            h.register_locked(); // no setter in this model: no lock needed
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
