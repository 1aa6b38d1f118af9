//! The lock word behind [`Mutex`](super::Mutex): one atomic byte for the
//! uncontended path, a wait list for the contended one.
//!
//! # State
//!
//! | `state` bits     | meaning                                                |
//! |------------------|--------------------------------------------------------|
//! | `LOCKED` (1)     | someone holds the lock                                 |
//! | `PARKED` (2)     | `waiters` may be non-empty: unlock must take the slow  |
//! |                  | path. Changed only with `waiters` locked, and set      |
//! |                  | exactly while `waiters` holds a queued waiter.         |
//!
//! ```text
//!            lock: CAS 0 → LOCKED                 unlock: CAS LOCKED → 0
//!   ┌────────┐ ─────────────────────► ┌────────┐ ◄────────────────────────
//!   │ 0      │                        │ LOCKED │
//!   └────────┘ ◄───────────────────── └────────┘
//!        ▲          a waiter parks:        │  (waiters locked, LOCKED still set)
//!        │          set PARKED, enqueue    ▼
//!        │                        ┌─────────────────┐
//!        └── last waiter leaves ──│ LOCKED | PARKED │── unlock_slow ──► see below
//!                                 └─────────────────┘
//! ```
//!
//! `unlock_slow` (with `waiters` locked) takes the front waiter out:
//!
//! * if it has already been woken once and lost the race for the lock
//!   (`data >= 1`), the lock is **handed off**: `LOCKED` stays set and the
//!   waiter is notified `HANDED`; it owns the lock when it wakes.
//! * otherwise the lock is **released** (`LOCKED` cleared) and the waiter is
//!   notified `WOKEN`: it retries like a newcomer, and if a running task
//!   barged in first it re-queues *at the front* with its count raised, so
//!   the next unlock hands off to it.
//!
//! # Fairness
//!
//! Barging keeps the uncontended and lightly contended paths fast (a task
//! that unlocks and relocks does not pay a switch per lock), while a woken
//! waiter loses at most one race: it then goes back to the front, and an
//! unlock that finds it first in line hands the lock to it. Parked waiters are woken in queue order; two woken waiters that both
//! lose re-queue at the front in the order they get back, so the order is
//! FIFO up to such swaps. No waiter starves.
//!
//! # Waiters that leave
//!
//! A timed wait that expires removes its slot. If it had been notified in
//! the meantime, it does not drop the notification: `HANDED` means it owns
//! the lock (it returns success); `WOKEN` means the lock was released for
//! it, so it tries once more to take it. A wait that is unwound (its
//! coroutine cancelled) passes `HANDED` on by unlocking, and `WOKEN` on by
//! taking and releasing the lock if it is free.

use super::wait::{self, expired, lock};
use super::wait_list::{Status, WaitKey, WaitList};
use crate::loom::sync::atomic::{AtomicU8, Ordering};
use crate::loom::sync::Mutex;
use crate::park;
use std::time::Instant;

const LOCKED: u8 = 1;
const PARKED: u8 = 2;

/// Notification tag: the lock was released for you; race for it.
const WOKEN: u32 = 0;
/// Notification tag: the lock is yours.
const HANDED: u32 = 1;

/// A waiter that lost this many races is handed the lock directly.
const HAND_OFF_AFTER: u32 = 1;

/// Spins on a held lock before parking, while nobody is parked (under loom,
/// none: the checker explores interleavings, not timing).
const SPIN_LIMIT: u32 = 40;

/// The lock itself, with no data; see the module docs.
#[derive(Debug)]
pub(crate) struct RawMutex {
    state: AtomicU8,
    waiters: Mutex<WaitList>,
}

impl RawMutex {
    pub(crate) fn new() -> RawMutex {
        RawMutex {
            state: AtomicU8::new(0),
            waiters: Mutex::new(WaitList::new()),
        }
    }

    /// Takes the lock, parking while it is held.
    #[inline]
    pub(crate) fn lock(&self) {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(None);
        }
    }

    /// Takes the lock, parking at most until `deadline`. Returns whether the
    /// lock was taken.
    pub(crate) fn lock_until(&self, deadline: Option<Instant>) -> bool {
        self.try_lock() || self.lock_slow(deadline)
    }

    /// Takes the lock if it is free right now.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Whether the lock is held right now (a snapshot).
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// Releases the lock.
    ///
    /// The caller must hold it (the safe wrapper guarantees this through
    /// its guard).
    #[inline]
    pub(crate) fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        let mut spins = 0;
        // How many times this caller was woken and lost the lock to a
        // barging task (module docs, "Fairness").
        let mut lost = 0u32;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & LOCKED == 0 {
                if self
                    .state
                    .compare_exchange_weak(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if !crate::loom::LOOM && s & PARKED == 0 && spins < SPIN_LIMIT {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            if expired(deadline) {
                return false;
            }
            match self.park_once(deadline, lost) {
                Parked::Acquired => return true,
                Parked::Retry { woken } => {
                    if woken {
                        lost += 1;
                    }
                }
                Parked::TimedOut => return false,
            }
        }
    }

    /// Queues the caller (unless the lock was just released) and parks
    /// until notified or `deadline`.
    fn park_once(&self, deadline: Option<Instant>, lost: u32) -> Parked {
        let mut q = lock(&self.waiters);
        // Set PARKED while LOCKED is still set. If the holder unlocked in
        // the meantime, retry instead: an unlock that saw no PARKED bit
        // woke nobody.
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED == 0 {
                return Parked::Retry { woken: false };
            }
            if s & PARKED != 0 {
                break;
            }
            match self.state.compare_exchange_weak(
                s,
                s | PARKED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        let me = park::current();
        let key = if lost > 0 {
            q.push_front(me, lost)
        } else {
            q.push_back(me, 0)
        };
        let guard = WaitGuard { raw: self, key };
        drop(q);
        loop {
            wait::park_until(deadline);
            let mut q = lock(&self.waiters);
            match q.status(key) {
                Status::Notified(tag) => {
                    q.remove(key);
                    drop(q);
                    std::mem::forget(guard);
                    return if tag == HANDED {
                        Parked::Acquired
                    } else {
                        Parked::Retry { woken: true }
                    };
                }
                Status::Waiting if expired(deadline) => {
                    q.remove(key);
                    if q.is_empty() {
                        self.state.fetch_and(!PARKED, Ordering::Relaxed);
                    }
                    drop(q);
                    std::mem::forget(guard);
                    return Parked::TimedOut;
                }
                Status::Waiting => {}
            }
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut q = lock(&self.waiters);
        let hand_off = q.front_data().is_some_and(|lost| lost >= HAND_OFF_AFTER);
        let tag = if hand_off { HANDED } else { WOKEN };
        let next = q.notify_front(tag);
        let parked = if q.is_empty() { 0 } else { PARKED };
        // While LOCKED is set and `waiters` is locked, no other thread
        // changes `state` (lockers only CAS from an unlocked state; PARKED
        // changes need `waiters`), so plain stores are exact.
        if hand_off {
            // Ownership passes through `waiters`' mutex: the waiter locks
            // it after we unlock it, so it sees our critical section.
            self.state.store(LOCKED | parked, Ordering::Relaxed);
        } else {
            self.state.store(parked, Ordering::Release);
        }
        drop(q);
        if let Some(next) = next {
            next.unpark();
        }
    }
}

#[cfg(all(test, not(pinstack_loom)))]
impl RawMutex {
    /// Parked lockers (test probe).
    pub(crate) fn queued(&self) -> usize {
        lock(&self.waiters).len()
    }
}

/// How one park in the slow path ended.
enum Parked {
    /// Handed the lock.
    Acquired,
    /// Try to take the lock again; `woken` if an unlock picked us.
    Retry { woken: bool },
    /// The deadline passed while queued.
    TimedOut,
}

/// Removes a parked locker's slot if its wait is unwound, passing on a
/// notification it received (module docs, "Waiters that leave").
struct WaitGuard<'a> {
    raw: &'a RawMutex,
    key: WaitKey,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let mut q = lock(&self.raw.waiters);
        let status = q.remove(self.key);
        if status == Status::Waiting && q.is_empty() {
            self.raw.state.fetch_and(!PARKED, Ordering::Relaxed);
        }
        drop(q);
        match status {
            Status::Notified(HANDED) => self.raw.unlock(),
            Status::Notified(_) => {
                if self.raw.try_lock() {
                    self.raw.unlock();
                }
            }
            Status::Waiting => {}
        }
    }
}
