//! The state shared by a channel's senders and its receiver, and every
//! operation on it. `Sender`/`Receiver` in `mod.rs` are thin handles.
//!
//! # Layout and size
//!
//! One `Arc<Chan<T>>` per channel: the `Arc` counts, a futex mutex,
//! [`State`] and the receiver's hand-off slot ([`Handoff`]), under 200
//! bytes on 64-bit with nothing allocated behind it until the first
//! message (the ring buffer grows on demand, keeps its capacity while in
//! use, and shrinks after a burst). A million idle channels therefore cost
//! a million small allocations, nothing more.
//!
//! # Who touches what
//!
//! Every field of [`State`] is behind `Chan::state`; the lock is held only
//! for a few field updates, never across a park and never while user code
//! (a `T`'s `Drop`) runs: values leaving the channel are dropped after
//! unlocking. The hand-off slot `Chan::rx` has its own lock-free protocol
//! (`handoff.rs`).
//!
//! * `queue`: pushed by senders, popped by the receiver; never longer than
//!   `capacity` (a rendezvous channel never queues: its values go from a
//!   sender to a parked receive directly, or wait with their parked sender).
//! * `rx` (the hand-off slot): a receive that finds nothing registers there
//!   before it parks: without the lock if nothing was queued since the
//!   channel was last seen empty (its `READY` bit is clear), else under
//!   the lock. The sender that next finds the registration (one CAS, taken
//!   before or under the lock) hands the value straight into the slot and
//!   wakes it; the woken receive takes it without locking. A sender that
//!   queues a value under the lock sets `READY` in the same word, and
//!   serves a receive that registered meanwhile itself (`handoff.rs` rule
//!   4). There is one receiver and `Receiver` is `!Sync`, so at most one
//!   receive runs at a time and the slot is always its own.
//! * `tx_waiters`: senders parked on a full channel, FIFO, **each with its
//!   message in its slot** (as Go's channels keep a blocked sender's value
//!   in its `sudog`). Invariant: while a sender is parked, the queue is full
//!   (`len == capacity`), so a newcomer cannot overtake it.
//!
//! # Transitions
//!
//! ```text
//!   send, a receive registered:          claim it (CAS) ─► value into the slot ─► unpark
//!                                         (no lock; the queue is empty then)
//!   send, room and nobody parked ahead:  lock ─► push ─► set READY (first push only;
//!                                         a receive that registered meanwhile is
//!                                         claimed and handed the front value) ─► unlock
//!   send, otherwise:                     park in tx_waiters holding the message
//!   recv pops from the queue:            room freed ─► move the front parked sender's
//!                                         message into the queue, notify it DELIVERED
//!   recv finds the queue empty:          take the front parked sender's message
//!                                         directly (rendezvous), notify it DELIVERED
//!   recv, READY clear:                   register in the slot with one CAS, no lock ─►
//!                                         park until handed a value, released, or timed out
//!   recv finds nothing under the lock:   register (clears READY) ─► unlock ─► park as above
//!   last Sender dropped:                 set READY; claim a registration, release it
//!                                         empty ─► unpark (the receive relocks, sees
//!                                         Disconnected)
//!   Receiver dropped:                    notify every parked sender CLOSED (each takes
//!                                         its message back), drain the queue, drop
//!                                         the drained values after unlocking
//! ```
//!
//! A value handed over counts as received: a bounded channel of capacity
//! `c` whose receive was parked holds that value plus up to `c` queued
//! ones, as Go's channels do. A receive therefore never waits for a woken
//! sender to run (no convoy), parked senders are served in arrival order, a
//! wake is issued only when someone registered, and an unparker is cloned
//! only when its owner is about to park.

use super::handoff::{Handoff, Waited};
use crate::loom::sync::{Mutex, MutexGuard};
use crate::park::{self, Unparker};
use crate::sync::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use crate::sync::wait::{self, expired, lock};
use crate::sync::wait_list::{Status, WaitKey, WaitList, WakeSet};
use std::collections::VecDeque;
use std::time::Instant;

/// Notification tag: the receiver took the parked sender's message.
const DELIVERED: u32 = 1;
/// Notification tag: the receiver is gone; take the message back.
const CLOSED: u32 = 2;

/// When the queue empties with more than this many slots allocated, it
/// shrinks back to `SHRINK_TO`, so a burst does not pin memory forever.
const SHRINK_ABOVE: usize = 1024;
const SHRINK_TO: usize = 16;

/// Shared state of one channel.
#[derive(Debug)]
pub(super) struct Chan<T> {
    state: Mutex<State<T>>,
    /// Where a parked receive waits to be handed a value (`handoff.rs`).
    rx: Handoff<T>,
}

#[derive(Debug)]
struct State<T> {
    queue: VecDeque<T>,
    /// Bound given at creation: 0 = rendezvous, `usize::MAX` = unbounded.
    capacity: usize,
    senders: usize,
    rx_alive: bool,
    tx_waiters: WaitList<Option<T>>,
}

impl<T> State<T> {
    /// Whether a newly arriving sender that found no receive to hand its
    /// value to may queue it now: nobody parked ahead of it and room left
    /// (never, for a rendezvous channel).
    #[inline]
    fn may_push(&self) -> bool {
        self.tx_waiters.is_empty() && self.queue.len() < self.capacity
    }

    /// Whether a receive would get something now: a queued value, a parked
    /// sender's value, or the disconnection.
    #[inline]
    fn has_message_or_no_senders(&self) -> bool {
        !self.queue.is_empty() || !self.tx_waiters.is_empty() || self.senders == 0
    }

    /// Takes the next message, from the queue or else from the front
    /// parked sender, and returns the parked sender to wake, if any.
    #[inline]
    fn pop(&mut self) -> Option<(T, Option<Unparker>)> {
        match self.queue.pop_front() {
            Some(value) => {
                let sender = if self.tx_waiters.is_empty() {
                    None
                } else {
                    self.refill()
                };
                if self.queue.is_empty() && self.queue.capacity() > SHRINK_ABOVE {
                    self.queue.shrink_to(SHRINK_TO);
                }
                Some((value, sender))
            }
            None if self.tx_waiters.is_empty() => None,
            // Every queued sender's slot holds its message until it is
            // taken here or handed back on close, so the inner `None`
            // cannot occur.
            None => match self.tx_waiters.notify_front_take(DELIVERED) {
                Some((sender, Some(value))) => Some((value, Some(sender))),
                Some((_, None)) | None => None,
            },
        }
    }

    /// A pop freed room: move the front parked sender's message in.
    #[cold]
    fn refill(&mut self) -> Option<Unparker> {
        if self.queue.len() >= self.capacity {
            return None;
        }
        let (sender, value) = self.tx_waiters.notify_front_take(DELIVERED)?;
        if let Some(value) = value {
            self.queue.push_back(value);
        }
        Some(sender)
    }
}

impl<T> Chan<T> {
    /// A channel holding up to `capacity` values (0: rendezvous,
    /// `usize::MAX`: unbounded), with one sender and a live receiver.
    pub(super) fn new(capacity: usize) -> Chan<T> {
        Chan {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                capacity,
                senders: 1,
                rx_alive: true,
                tx_waiters: WaitList::new(),
            }),
            rx: Handoff::new(),
        }
    }

    /// The bound given at creation, `None` when unbounded.
    pub(super) fn capacity(&self) -> Option<usize> {
        match lock(&self.state).capacity {
            usize::MAX => None,
            c => Some(c),
        }
    }

    /// Values currently queued (not counting parked senders' messages, nor
    /// one handed to a parked receive).
    pub(super) fn len(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// Whether the receiver was dropped.
    pub(super) fn is_closed(&self) -> bool {
        !lock(&self.state).rx_alive
    }

    /// Whether every sender was dropped.
    pub(super) fn senders_gone(&self) -> bool {
        lock(&self.state).senders == 0
    }

    // ----- senders -------------------------------------------------------

    /// A new `Sender` handle exists.
    pub(super) fn add_sender(&self) {
        lock(&self.state).senders += 1;
    }

    /// A `Sender` handle was dropped; the last one wakes the receiver.
    pub(super) fn drop_sender(&self) {
        let mut st = lock(&self.state);
        st.senders -= 1;
        // A receive registered without the lock is claimed here, released
        // empty and woken; one that registers later sees READY and looks
        // under the lock (handoff.rs rule 4).
        let rx = if st.senders == 0 {
            self.rx.mark_ready().and_then(|c| self.rx.release(c))
        } else {
            None
        };
        drop(st);
        if let Some(rx) = rx {
            rx.unpark();
        }
    }

    /// Sends without waiting. A rendezvous channel accepts the value only
    /// if the receiver is parked in a receive right now.
    pub(super) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        if let Some(claim) = self.rx.claim() {
            self.rx.deliver(claim, value);
            return Ok(());
        }
        let mut st = lock(&self.state);
        if !st.rx_alive {
            return Err(TrySendError::Disconnected(value));
        }
        if let Some(claim) = self.rx.claim() {
            drop(st);
            self.rx.deliver(claim, value);
            return Ok(());
        }
        if !st.may_push() {
            return Err(TrySendError::Full(value));
        }
        st.queue.push_back(value);
        self.pushed(st);
        Ok(())
    }

    /// A value was queued: mark the channel ready for the receive, and
    /// serve a receive that registered without the lock meanwhile
    /// (handoff.rs rule 4).
    #[inline]
    fn pushed(&self, mut st: MutexGuard<'_, State<T>>) {
        if let Some(claim) = self.rx.mark_ready() {
            self.serve(&mut st, claim);
        }
    }

    /// Hands the next value of the channel to the receive whose
    /// registration `mark_ready` claimed, after a push or a parked send.
    #[cold]
    fn serve(&self, st: &mut MutexGuard<'_, State<T>>, claim: super::handoff::Claim) {
        // The caller has just queued a value or parked a sender with one.
        let (value, sender) = st
            .pop()
            .expect("a value was just made available under the lock");
        self.rx.deliver(claim, value);
        if let Some(sender) = sender {
            sender.unpark();
        }
    }

    /// Sends, parking while the channel is full (for a rendezvous channel:
    /// until a receiver takes the value), at most until `deadline`.
    ///
    /// A receive parked on the channel is handed the value directly, with
    /// no lock taken (`handoff.rs`).
    #[inline]
    pub(super) fn send(
        &self,
        value: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        if let Some(claim) = self.rx.claim() {
            self.rx.deliver(claim, value);
            return Ok(());
        }
        self.send_locked(value, deadline)
    }

    fn send_locked(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let mut st = lock(&self.state);
        if !st.rx_alive {
            return Err(SendTimeoutError::Disconnected(value));
        }
        // The receive may have registered since the lock-free look.
        if let Some(claim) = self.rx.claim() {
            drop(st);
            self.rx.deliver(claim, value);
            return Ok(());
        }
        if st.may_push() {
            st.queue.push_back(value);
            self.pushed(st);
            return Ok(());
        }
        self.send_parked(st, value, deadline)
    }

    /// Parks in `tx_waiters` with the message until the receiver takes it,
    /// the receiver goes away, or `deadline` passes.
    fn send_parked<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<T>>,
        value: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        if expired(deadline) {
            return Err(SendTimeoutError::Timeout(value));
        }
        let key = st
            .tx_waiters
            .push_back_with(park::current(), 0, Some(value));
        let guard = SendWaitGuard { chan: self, key };
        if let Some(claim) = self.rx.mark_ready() {
            // Maybe our own message: then our slot is notified DELIVERED
            // and the loop below returns at once.
            self.serve(&mut st, claim);
        }
        loop {
            drop(st);
            wait::park_until(deadline);
            st = lock(&self.state);
            let status = st.tx_waiters.status(key);
            if status == Status::Waiting && !expired(deadline) {
                continue;
            }
            let (status, value) = st.tx_waiters.remove_take(key);
            drop(st);
            std::mem::forget(guard);
            return match (status, value) {
                (Status::Notified(DELIVERED), _) | (_, None) => Ok(()),
                (Status::Notified(_), Some(v)) => Err(SendTimeoutError::Disconnected(v)),
                (Status::Waiting, Some(v)) => Err(SendTimeoutError::Timeout(v)),
            };
        }
    }

    // ----- receiver ------------------------------------------------------

    /// Receives without waiting.
    pub(super) fn try_recv(&self) -> Result<T, TryRecvError> {
        if let Some(value) = self.rx.take_leftover() {
            return Ok(value);
        }
        let mut st = lock(&self.state);
        match st.pop() {
            Some((value, sender)) => {
                drop(st);
                if let Some(sender) = sender {
                    sender.unpark();
                }
                Ok(value)
            }
            None if st.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Receives, parking while the channel is empty, at most until
    /// `deadline`.
    ///
    /// A receive that parks registers in the hand-off slot under the lock,
    /// and the sender that finds it there hands it the value: the receive
    /// takes no lock when it wakes.
    #[inline]
    pub(super) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        if let Some(value) = self.rx.take_leftover() {
            return Ok(value);
        }
        // Nothing arrived since the channel was last seen empty: register
        // without the lock (handoff.rs rule 4).
        if !expired(deadline) && self.rx.try_register() {
            if let Some(result) = self.wait_registered(deadline) {
                return result;
            }
            // Released (the last sender left): look under the lock.
        }
        self.recv_locked(deadline)
    }

    /// The receive's look under the lock: a queued value, a parked
    /// sender's, disconnection, or a registration there.
    #[inline(never)]
    fn recv_locked(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut st = lock(&self.state);
        loop {
            if let Some((value, sender)) = st.pop() {
                drop(st);
                if let Some(sender) = sender {
                    sender.unpark();
                }
                return Ok(value);
            }
            if st.senders == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            if expired(deadline) {
                return Err(RecvTimeoutError::Timeout);
            }
            // Queue empty, nobody parked, senders left.
            self.rx.register_locked();
            drop(st);
            if let Some(result) = self.wait_registered(deadline) {
                return result;
            }
            st = lock(&self.state);
        }
    }

    /// Parks the registered receive; `None` if its registration was
    /// released (look again under the lock).
    #[inline]
    fn wait_registered(&self, deadline: Option<Instant>) -> Option<Result<T, RecvTimeoutError>> {
        let guard = RecvWaitGuard { chan: self };
        let waited = self.rx.wait(deadline);
        std::mem::forget(guard);
        match waited {
            Waited::Value(value) => Some(Ok(value)),
            // Nothing was queued while registered (handoff.rs rule 4).
            Waited::TimedOut => Some(Err(RecvTimeoutError::Timeout)),
            Waited::Released => None,
        }
    }

    /// Select: whether a `try_recv` now would find a value or the channel
    /// disconnected. Receiver side.
    pub(super) fn select_ready(&self) -> bool {
        if self.rx.holds_value() {
            return true;
        }
        // Nothing arrived since the channel was last seen empty.
        if !self.rx.maybe_ready() {
            return false;
        }
        lock(&self.state).has_message_or_no_senders()
    }

    /// Select: registers the receive in the hand-off slot as `recv` does
    /// before it parks, unless a `try_recv` would find something now
    /// (then returns false and registers nothing). A sender that later
    /// finds the registration claims it and wakes the selecting task.
    pub(super) fn select_register(&self) -> bool {
        if self.rx.holds_value() {
            return false;
        }
        // The slot is IDLE or an emptied FULL: nothing but a registration
        // of ours can make it hold a value.
        if self.rx.try_register() {
            return true;
        }
        let st = lock(&self.state);
        if st.has_message_or_no_senders() {
            return false;
        }
        self.rx.register_locked();
        true
    }

    /// Select: takes back a registration of `select_register`. Returns
    /// false if a sender (or the last sender's drop) claimed it first: the
    /// channel is then ready, and a value handed over waits in the slot for
    /// the next receive (`handoff.rs` rule 5).
    pub(super) fn select_withdraw(&self) -> bool {
        self.rx.withdraw()
    }

    /// The receiver was dropped: fail every send from now on, hand parked
    /// senders their messages back, and drop queued values (after
    /// unlocking).
    pub(super) fn close_receiver(&self) {
        let mut st = lock(&self.state);
        st.rx_alive = false;
        let drained = std::mem::take(&mut st.queue);
        let mut wakes = WakeSet::new();
        st.tx_waiters.notify_all(CLOSED, &mut wakes);
        drop(st);
        wakes.wake_all();
        drop(drained);
        // A value handed to an unwound receive (handoff.rs rule 5).
        drop(self.rx.take_leftover());
    }
}

#[cfg(all(test, not(pinstack_loom)))]
impl<T> Chan<T> {
    /// Senders parked for room (test probe).
    pub(super) fn parked_senders(&self) -> usize {
        lock(&self.state).tx_waiters.len()
    }

    /// Whether the receiver has registered to be woken (test probe).
    pub(super) fn receiver_registered(&self) -> bool {
        self.rx.is_waiting()
    }

    /// Allocated buffer slots (test probe).
    pub(super) fn buffer_capacity(&self) -> usize {
        lock(&self.state).queue.capacity()
    }
}

/// Withdraws the receiver's registration if its wait is unwound (the
/// coroutine was cancelled while parked). A value already handed over
/// stays in the slot for the next receive (handoff.rs rule 5).
struct RecvWaitGuard<'a, T> {
    chan: &'a Chan<T>,
}

impl<T> Drop for RecvWaitGuard<'_, T> {
    fn drop(&mut self) {
        let _ = self.chan.rx.withdraw();
    }
}

/// Removes a parked sender's slot if its wait is unwound; its message, if
/// not yet taken, is dropped (after unlocking) with the send.
struct SendWaitGuard<'a, T> {
    chan: &'a Chan<T>,
    key: WaitKey,
}

impl<T> Drop for SendWaitGuard<'_, T> {
    fn drop(&mut self) {
        let (_, value) = lock(&self.chan.state).tx_waiters.remove_take(self.key);
        drop(value);
    }
}
