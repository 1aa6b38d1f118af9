//! The state shared by a channel's senders and its receiver, and every
//! operation on it. `Sender`/`Receiver` in `mod.rs` are thin handles.
//!
//! # Layout and size
//!
//! One `Arc<Chan<T>>` per channel: the `Arc` counts, a futex mutex and
//! [`State`], about 170 bytes on 64-bit with nothing allocated behind it
//! until the first message (the ring buffer grows on demand, keeps its
//! capacity while in use, and shrinks after a burst). A million idle
//! channels therefore cost a million small allocations, nothing more.
//!
//! # Who touches what
//!
//! Every field is behind `Chan::state`; the lock is held only for a few
//! field updates, never across a park and never while user code (a `T`'s
//! `Drop`) runs: values leaving the channel are dropped after unlocking.
//!
//! * `queue`: pushed by senders, popped by the receiver. A rendezvous
//!   sender's value also sits here, until the receiver takes it or the
//!   sender takes it back (timeout, receiver dropped).
//! * `rx_waiter`: set by the receiver right before it parks, *taken* (not
//!   cloned) by whichever sender pushes next or by the last sender to drop.
//!   There is one receiver and `Receiver` is `!Sync`, so at most one recv
//!   runs at a time and the slot is always its own.
//! * `tx_waiters`: senders parked on a full channel, FIFO.
//! * `reserved`: room promised to senders that were picked from
//!   `tx_waiters` (notified `GRANTED`) but have not run yet. New senders
//!   count reserved room as taken, so a parked sender cannot be overtaken:
//!   senders are served strictly in arrival order once they park.
//!   Invariant: `tx_waiters` non-empty implies
//!   `queue.len() + reserved >= slots()`.
//! * `taker`, `pushed`, `popped`: rendezvous only. The sender whose value is
//!   in the queue parks in `taker` until `popped` reaches its sequence
//!   number.
//!
//! # Wake-ups
//!
//! ```text
//!   send:  push ─► take rx_waiter ─► unlock ─► unpark it (if any)
//!   recv:  pop  ─► room freed and a sender parked? reserve it, notify front
//!               ─► rendezvous? take `taker` ─► unlock ─► unpark both
//!   last Sender dropped:  take rx_waiter ─► unpark (it sees Disconnected)
//!   Receiver dropped:     notify every tx_waiter CLOSED, wake `taker`,
//!                         drain the queue (dropped after unlocking)
//! ```
//!
//! A wake is only issued when someone registered, and an unparker is
//! cloned only when its owner is about to park.

use crate::loom::sync::{Mutex, MutexGuard};
use crate::park::{self, Unparker};
use crate::sync::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use crate::sync::wait::{self, expired, lock};
use crate::sync::wait_list::{Status, WaitKey, WaitList, WakeSet};
use std::collections::VecDeque;
use std::time::Instant;

/// Notification tag: room has been reserved for the notified sender.
const GRANTED: u32 = 1;
/// Notification tag: the receiver is gone.
const CLOSED: u32 = 2;

/// When the queue empties with more than this many slots allocated, it
/// shrinks back to `SHRINK_TO`, so a burst does not pin memory forever.
const SHRINK_ABOVE: usize = 1024;
const SHRINK_TO: usize = 16;

/// Shared state of one channel.
#[derive(Debug)]
pub(super) struct Chan<T> {
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    queue: VecDeque<T>,
    /// Bound given at creation: 0 = rendezvous, `usize::MAX` = unbounded.
    capacity: usize,
    reserved: usize,
    senders: usize,
    rx_alive: bool,
    rx_waiter: Option<Unparker>,
    tx_waiters: WaitList,
    taker: Option<Unparker>,
    pushed: u64,
    popped: u64,
}

/// Up to two wake-ups collected by a pop, issued after unlocking.
struct PopWakes(Option<Unparker>, Option<Unparker>);

impl PopWakes {
    #[inline]
    fn wake(self) {
        if let Some(u) = self.0 {
            u.unpark();
        }
        if let Some(u) = self.1 {
            u.unpark();
        }
    }
}

impl<T> State<T> {
    /// How many values the queue may hold (a rendezvous value occupies one
    /// slot while it waits to be taken).
    #[inline]
    fn slots(&self) -> usize {
        self.capacity.max(1)
    }

    /// Whether a newly arriving sender may push now: nobody parked ahead of
    /// it and unreserved room left.
    #[inline]
    fn has_room(&self) -> bool {
        self.tx_waiters.is_empty() && self.queue.len() + self.reserved < self.slots()
    }

    /// Pushes and takes the receiver's unparker, if it is parked.
    #[inline]
    fn push(&mut self, value: T) -> Option<Unparker> {
        self.queue.push_back(value);
        self.pushed += 1;
        self.rx_waiter.take()
    }

    /// Pops the next value and collects who must be woken because of it.
    #[inline]
    fn pop(&mut self) -> Option<(T, PopWakes)> {
        let value = self.queue.pop_front()?;
        self.popped += 1;
        let taker = if self.capacity == 0 {
            self.taker.take()
        } else {
            None
        };
        let sender = self.grant_room();
        if self.queue.is_empty() && self.queue.capacity() > SHRINK_ABOVE {
            self.queue.shrink_to(SHRINK_TO);
        }
        Some((value, PopWakes(taker, sender)))
    }

    /// If room is free and a sender is parked, reserves the room for the
    /// front sender and returns its unparker.
    #[inline]
    fn grant_room(&mut self) -> Option<Unparker> {
        if self.rx_alive
            && !self.tx_waiters.is_empty()
            && self.queue.len() + self.reserved < self.slots()
        {
            self.reserved += 1;
            self.tx_waiters.notify_front(GRANTED)
        } else {
            None
        }
    }

    /// A rendezvous sender takes back its value, which is the only one in
    /// the queue (it was pushed into an empty, one-slot queue and has not
    /// been popped), and passes the freed room on.
    fn reclaim(&mut self) -> (T, Option<Unparker>) {
        let value = self
            .queue
            .pop_back()
            .expect("pinstack rendezvous channel invariant: an untaken value is in the queue");
        self.pushed -= 1;
        self.taker = None;
        (value, self.grant_room())
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
                reserved: 0,
                senders: 1,
                rx_alive: true,
                rx_waiter: None,
                tx_waiters: WaitList::new(),
                taker: None,
                pushed: 0,
                popped: 0,
            }),
        }
    }

    /// The bound given at creation, `None` when unbounded.
    pub(super) fn capacity(&self) -> Option<usize> {
        match lock(&self.state).capacity {
            usize::MAX => None,
            c => Some(c),
        }
    }

    /// Values currently queued.
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
        let rx = if st.senders == 0 {
            st.rx_waiter.take()
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
        let mut st = lock(&self.state);
        if !st.rx_alive {
            return Err(TrySendError::Disconnected(value));
        }
        if !st.has_room() || (st.capacity == 0 && st.rx_waiter.is_none()) {
            return Err(TrySendError::Full(value));
        }
        let rx = st.push(value);
        drop(st);
        if let Some(rx) = rx {
            rx.unpark();
        }
        Ok(())
    }

    /// Sends, parking while the channel is full (and, for a rendezvous
    /// channel, until the receiver has taken the value), at most until
    /// `deadline`.
    pub(super) fn send(
        &self,
        value: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let st = lock(&self.state);
        if !st.rx_alive {
            return Err(SendTimeoutError::Disconnected(value));
        }
        if st.has_room() {
            return self.deliver(st, value, deadline);
        }
        self.send_parked(st, value, deadline)
    }

    /// Pushes into room the caller is entitled to, wakes the receiver, and
    /// for a rendezvous channel waits for the value to be taken.
    #[inline]
    fn deliver<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<T>>,
        value: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let rx = st.push(value);
        if st.capacity != 0 {
            drop(st);
            if let Some(rx) = rx {
                rx.unpark();
            }
            return Ok(());
        }
        // Rendezvous: register as the value's taker before unlocking, so the
        // receiver's pop finds us however soon it runs.
        let seq = st.pushed;
        debug_assert!(st.taker.is_none(), "one untaken rendezvous value at a time");
        st.taker = Some(park::current());
        drop(st);
        if let Some(rx) = rx {
            rx.unpark();
        }
        self.await_take(seq, deadline)
    }

    /// Parks in `tx_waiters` until room is granted, the receiver goes away
    /// or `deadline` passes.
    fn send_parked<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<T>>,
        value: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        if expired(deadline) {
            return Err(SendTimeoutError::Timeout(value));
        }
        let key = st.tx_waiters.push_back(park::current(), 0);
        let guard = RoomWaitGuard { chan: self, key };
        loop {
            drop(st);
            wait::park_until(deadline);
            st = lock(&self.state);
            match st.tx_waiters.status(key) {
                Status::Notified(GRANTED) => {
                    st.tx_waiters.remove(key);
                    std::mem::forget(guard);
                    st.reserved -= 1;
                    if !st.rx_alive {
                        return Err(SendTimeoutError::Disconnected(value));
                    }
                    return self.deliver(st, value, deadline);
                }
                Status::Notified(_) => {
                    st.tx_waiters.remove(key);
                    std::mem::forget(guard);
                    return Err(SendTimeoutError::Disconnected(value));
                }
                Status::Waiting => {
                    if expired(deadline) {
                        st.tx_waiters.remove(key);
                        std::mem::forget(guard);
                        return Err(SendTimeoutError::Timeout(value));
                    }
                }
            }
        }
    }

    /// Rendezvous: parks until the value pushed as number `seq` is taken;
    /// on timeout or receiver drop, takes it back.
    fn await_take(&self, seq: u64, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let guard = TakeWaitGuard { chan: self, seq };
        loop {
            wait::park_until(deadline);
            let mut st = lock(&self.state);
            if st.popped >= seq {
                std::mem::forget(guard);
                return Ok(());
            }
            let closed = !st.rx_alive;
            if closed || expired(deadline) {
                let (value, next) = st.reclaim();
                drop(st);
                std::mem::forget(guard);
                if let Some(next) = next {
                    next.unpark();
                }
                return Err(if closed {
                    SendTimeoutError::Disconnected(value)
                } else {
                    SendTimeoutError::Timeout(value)
                });
            }
            if st.taker.is_none() {
                st.taker = Some(park::current());
            }
        }
    }

    // ----- receiver ------------------------------------------------------

    /// Receives without waiting.
    pub(super) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = lock(&self.state);
        match st.pop() {
            Some((value, wakes)) => {
                drop(st);
                wakes.wake();
                Ok(value)
            }
            None if st.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Receives, parking while the channel is empty, at most until
    /// `deadline`.
    #[inline]
    pub(super) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut st = lock(&self.state);
        if let Some((value, wakes)) = st.pop() {
            drop(st);
            wakes.wake();
            return Ok(value);
        }
        self.recv_parked(st, deadline)
    }

    fn recv_parked<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<T>>,
        deadline: Option<Instant>,
    ) -> Result<T, RecvTimeoutError> {
        let guard = RxWaitGuard { chan: self };
        let mut registered = false;
        loop {
            if let Some((value, wakes)) = st.pop() {
                // A sender that pushed took our unparker; only a spurious
                // wake can leave it here.
                let stale = st.rx_waiter.take();
                drop(st);
                std::mem::forget(guard);
                wakes.wake();
                drop(stale);
                return Ok(value);
            }
            let err = if st.senders == 0 {
                Some(RecvTimeoutError::Disconnected)
            } else if expired(deadline) {
                Some(RecvTimeoutError::Timeout)
            } else {
                None
            };
            if let Some(err) = err {
                let stale = st.rx_waiter.take();
                drop(st);
                std::mem::forget(guard);
                drop(stale);
                return Err(err);
            }
            if !registered || st.rx_waiter.is_none() {
                // On the first pass replace, don't keep, what is there: the
                // slot is this receive's alone.
                st.rx_waiter = Some(park::current());
                registered = true;
            }
            drop(st);
            wait::park_until(deadline);
            st = lock(&self.state);
        }
    }

    /// The receiver was dropped: fail every send from now on, wake parked
    /// senders, and drop queued values (after unlocking).
    pub(super) fn close_receiver(&self) {
        let mut st = lock(&self.state);
        st.rx_alive = false;
        let stale = st.rx_waiter.take();
        // A rendezvous value waiting for its taker stays: its sender takes
        // it back and returns it in the error.
        let drained = if st.capacity == 0 && st.taker.is_some() {
            VecDeque::new()
        } else {
            std::mem::take(&mut st.queue)
        };
        let mut wakes = WakeSet::new();
        st.tx_waiters.notify_all(CLOSED, &mut wakes);
        wakes.push_opt(st.taker.take());
        drop(st);
        wakes.wake_all();
        drop(stale);
        drop(drained);
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
        lock(&self.state).rx_waiter.is_some()
    }

    /// Allocated buffer slots (test probe).
    pub(super) fn buffer_capacity(&self) -> usize {
        lock(&self.state).queue.capacity()
    }
}

/// Undoes the receiver's registration if its wait is unwound (the
/// coroutine was cancelled while parked).
struct RxWaitGuard<'a, T> {
    chan: &'a Chan<T>,
}

impl<T> Drop for RxWaitGuard<'_, T> {
    fn drop(&mut self) {
        let stale = lock(&self.chan.state).rx_waiter.take();
        drop(stale);
    }
}

/// Removes a parked sender's slot if its wait is unwound, passing on room
/// that was reserved for it.
struct RoomWaitGuard<'a, T> {
    chan: &'a Chan<T>,
    key: WaitKey,
}

impl<T> Drop for RoomWaitGuard<'_, T> {
    fn drop(&mut self) {
        let mut st = lock(&self.chan.state);
        let next = match st.tx_waiters.remove(self.key) {
            Status::Notified(GRANTED) => {
                st.reserved -= 1;
                st.grant_room()
            }
            Status::Notified(_) | Status::Waiting => None,
        };
        drop(st);
        if let Some(next) = next {
            next.unpark();
        }
    }
}

/// Takes a rendezvous value back if its sender's wait is unwound before
/// the receiver took it.
struct TakeWaitGuard<'a, T> {
    chan: &'a Chan<T>,
    seq: u64,
}

impl<T> Drop for TakeWaitGuard<'_, T> {
    fn drop(&mut self) {
        let mut st = lock(&self.chan.state);
        if st.popped >= self.seq {
            return;
        }
        let (value, next) = st.reclaim();
        drop(st);
        if let Some(next) = next {
            next.unpark();
        }
        drop(value);
    }
}
