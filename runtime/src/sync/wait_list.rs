//! A FIFO list of parked waiters, stored in a slab so that parking never
//! allocates once the slab has grown to the peak number of waiters.
//!
//! Every suspending primitive in [`crate::sync`] except the single-receiver
//! slots keeps one of these inside its internal lock.
//!
//! # Layout
//!
//! ```text
//!   slots: Vec<Slot>          head ─┐             tail ─┐
//!   ┌────────┬────────┬────────┬────▼───┬────────┬──────▼─┐
//!   │ Free   │Notified│ Free   │Waiting │Notified│Waiting │
//!   │ next ──┼──┐     │ next=∅ │ next ──┼────────┼─►      │
//!   └────────┴──┼─────┴──▲─────┴────────┴────────┴────────┘
//!      ▲ free ──┘        │
//!      └ free list: 0 ─► 2
//! ```
//!
//! A slot is in exactly one of three states:
//!
//! | state       | linked into          | who moves it out                     |
//! |-------------|----------------------|--------------------------------------|
//! | `Free`      | the free list        | [`WaitList::push_back`]/`push_front` |
//! | `Waiting`   | the FIFO (prev/next) | a notifier (`notify_front`/`_all`)   |
//! |             |                      | or its owner (`remove`)              |
//! | `Notified`  | nothing              | its owner only (`remove`)            |
//!
//! # Rules
//!
//! 1. The list lives inside the primitive's internal mutex; every method runs
//!    with that mutex held. It never runs user code.
//! 2. A [`WaitKey`] is owned by the waiter that pushed it. Only that waiter
//!    frees the slot (`remove`), so a key stays valid, and names the same
//!    waiter, for as long as the waiter holds it. Notifiers only ever turn
//!    `Waiting` into `Notified`, handing the slot's [`Unparker`] out so the
//!    wake-up can happen after the mutex is released.
//! 3. A waiter that leaves without consuming a notification (timeout racing a
//!    notify, or its coroutine being unwound) learns the notification's tag
//!    from `remove` and must pass it on if the primitive needs it passed on.
//! 4. `data` is a word each primitive uses as it likes (the mutex counts how
//!    often a waiter lost a race, the semaphore stores how many permits the
//!    waiter needs).
//! 5. `value` is an optional payload per waiter (`V = ()` for most
//!    primitives): a channel sender parks *with its message* in its slot, so
//!    the receiver can move the message out (`notify_front_take`) without
//!    waiting for the sender to run. A slot's value is reset to
//!    `V::default()` when it is freed; callers whose `V` owns user data use
//!    `remove_take` so that the data is dropped after unlocking.

use super::wait;
use crate::loom::sync::{Mutex, MutexGuard};
use crate::park::{self, Unparker};
use std::time::Instant;

/// "No slot" in links.
const NIL: u32 = u32::MAX;

/// Shrink the slab when it empties and has grown beyond this many slots.
const SHRINK_ABOVE: usize = 64;

/// Names one registered waiter; see the module rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitKey(u32);

/// What a waiter finds when it looks at its own slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Still queued; nobody has picked it yet.
    Waiting,
    /// Picked by a notifier, with the notifier's tag.
    Notified(u32),
}

#[derive(Debug)]
enum SlotState {
    Free,
    Waiting(Unparker),
    Notified(u32),
}

#[derive(Debug)]
struct Slot<V> {
    state: SlotState,
    /// Previous waiter in the FIFO (`Waiting` only).
    prev: u32,
    /// Next waiter in the FIFO when `Waiting`, next free slot when `Free`.
    next: u32,
    /// The primitive's per-waiter word.
    data: u32,
    /// The waiter's payload (rule 5).
    value: V,
}

/// A FIFO of parked waiters; see the module docs.
#[derive(Debug)]
pub(crate) struct WaitList<V = ()> {
    slots: Vec<Slot<V>>,
    head: u32,
    tail: u32,
    free: u32,
    /// Slots in the `Waiting` state.
    waiting: u32,
    /// Slots not `Free`.
    occupied: u32,
}

impl<V: Default> WaitList<V> {
    /// An empty list; allocates nothing.
    pub(crate) const fn new() -> WaitList<V> {
        WaitList {
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            free: NIL,
            waiting: 0,
            occupied: 0,
        }
    }

    /// Whether no waiter is queued (notified waiters that have not yet
    /// removed their slot do not count).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    /// How many waiters are queued.
    #[cfg(all(test, not(pinstack_loom)))]
    pub(crate) fn len(&self) -> usize {
        self.waiting as usize
    }

    /// Slots allocated in the slab (test probe).
    #[cfg(all(test, not(pinstack_loom)))]
    pub(crate) fn slot_capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Queues `unparker` at the back.
    pub(crate) fn push_back(&mut self, unparker: Unparker, data: u32) -> WaitKey {
        self.push_back_with(unparker, data, V::default())
    }

    /// Queues `unparker` at the back with a payload.
    pub(crate) fn push_back_with(&mut self, unparker: Unparker, data: u32, value: V) -> WaitKey {
        let idx = self.alloc(unparker, data, value);
        self.slots[idx as usize].prev = self.tail;
        self.slots[idx as usize].next = NIL;
        match self.tail {
            NIL => self.head = idx,
            t => self.slots[t as usize].next = idx,
        }
        self.tail = idx;
        WaitKey(idx)
    }

    /// Queues `unparker` at the front (a waiter that keeps its turn).
    pub(crate) fn push_front(&mut self, unparker: Unparker, data: u32) -> WaitKey {
        let idx = self.alloc(unparker, data, V::default());
        self.slots[idx as usize].prev = NIL;
        self.slots[idx as usize].next = self.head;
        match self.head {
            NIL => self.tail = idx,
            h => self.slots[h as usize].prev = idx,
        }
        self.head = idx;
        WaitKey(idx)
    }

    /// The `data` word of the front waiter, if any.
    #[inline]
    pub(crate) fn front_data(&self) -> Option<u32> {
        match self.head {
            NIL => None,
            h => Some(self.slots[h as usize].data),
        }
    }

    /// Dequeues the front waiter, marks it notified with `tag` and returns
    /// its unparker for the caller to use once the lock is released.
    pub(crate) fn notify_front(&mut self, tag: u32) -> Option<Unparker> {
        let idx = self.head;
        if idx == NIL {
            return None;
        }
        self.unlink(idx);
        let slot = &mut self.slots[idx as usize];
        match std::mem::replace(&mut slot.state, SlotState::Notified(tag)) {
            SlotState::Waiting(u) => Some(u),
            // Linked slots are always `Waiting` (module rule 2).
            SlotState::Free | SlotState::Notified(_) => None,
        }
    }

    /// Like [`notify_front`](Self::notify_front), also moving the front
    /// waiter's payload out (leaving `V::default()`).
    pub(crate) fn notify_front_take(&mut self, tag: u32) -> Option<(Unparker, V)> {
        let idx = self.head;
        let unparker = self.notify_front(tag)?;
        let value = std::mem::take(&mut self.slots[idx as usize].value);
        Some((unparker, value))
    }

    /// Dequeues every waiter, marking each notified with `tag`, and adds
    /// their unparkers to `wakes`.
    pub(crate) fn notify_all(&mut self, tag: u32, wakes: &mut WakeSet) {
        while let Some(u) = self.notify_front(tag) {
            wakes.push(u);
        }
    }

    /// The state of the caller's own slot.
    #[inline]
    pub(crate) fn status(&self, key: WaitKey) -> Status {
        match self.slots[key.0 as usize].state {
            SlotState::Notified(tag) => Status::Notified(tag),
            SlotState::Waiting(_) | SlotState::Free => Status::Waiting,
        }
    }

    /// Frees the caller's slot, unlinking it if still queued. Returns the
    /// status it had, so a waiter that leaves can pass on a notification
    /// it did not use (module rule 3).
    pub(crate) fn remove(&mut self, key: WaitKey) -> Status {
        self.remove_take(key).0
    }

    /// Like [`remove`](Self::remove), also returning the slot's payload so
    /// the caller can drop it after unlocking (module rule 5).
    pub(crate) fn remove_take(&mut self, key: WaitKey) -> (Status, V) {
        let idx = key.0;
        let status = match self.slots[idx as usize].state {
            SlotState::Waiting(_) => {
                self.unlink(idx);
                Status::Waiting
            }
            SlotState::Notified(tag) => Status::Notified(tag),
            // A key always names an occupied slot (module rule 2).
            SlotState::Free => return (Status::Waiting, V::default()),
        };
        let slot = &mut self.slots[idx as usize];
        let value = std::mem::take(&mut slot.value);
        slot.state = SlotState::Free;
        slot.next = self.free;
        self.free = idx;
        self.occupied -= 1;
        if self.occupied == 0 {
            // Every slot is free: forget the free list and, after a burst,
            // give the memory back.
            self.slots.clear();
            self.free = NIL;
            if self.slots.capacity() > SHRINK_ABOVE {
                self.slots.shrink_to(SHRINK_ABOVE / 4);
            }
        }
        (status, value)
    }

    fn alloc(&mut self, unparker: Unparker, data: u32, value: V) -> u32 {
        self.waiting += 1;
        self.occupied += 1;
        let state = SlotState::Waiting(unparker);
        if self.free != NIL {
            let idx = self.free;
            let slot = &mut self.slots[idx as usize];
            self.free = slot.next;
            slot.state = state;
            slot.data = data;
            slot.value = value;
            idx
        } else {
            let idx = self.slots.len() as u32;
            self.slots.push(Slot {
                state,
                prev: NIL,
                next: NIL,
                data,
                value,
            });
            idx
        }
    }

    /// Takes a `Waiting` slot out of the FIFO.
    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let s = &self.slots[idx as usize];
            (s.prev, s.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
        self.waiting -= 1;
    }
}

/// The calling task's slot in a wait list that lives behind `lock`, for
/// primitives that wake every waiter at once (`notify_all`): a notification
/// taken out with the slot never needs passing on. The slot leaves the list
/// on every way out, unwinding included.
pub(crate) struct Registered<'a, S> {
    lock: &'a Mutex<S>,
    list: fn(&mut S) -> &mut WaitList,
    /// `None` once the slot has left the list.
    key: Option<WaitKey>,
}

impl<'a, S> Registered<'a, S> {
    /// Queues the calling task in `list(guard)` and releases the lock.
    pub(crate) fn push(
        lock: &'a Mutex<S>,
        mut guard: MutexGuard<'a, S>,
        list: fn(&mut S) -> &mut WaitList,
    ) -> Registered<'a, S> {
        let key = list(&mut guard).push_back(park::current(), 0);
        drop(guard);
        Registered {
            lock,
            list,
            key: Some(key),
        }
    }

    /// Parks until the slot is notified or `deadline` passes, then leaves
    /// the list and returns the lock, held.
    pub(crate) fn wait(mut self, deadline: Option<Instant>) -> MutexGuard<'a, S> {
        let key = self.key.take().expect("a registered slot waits once");
        loop {
            wait::park_until(deadline);
            let mut guard = wait::lock(self.lock);
            let list = (self.list)(&mut guard);
            if matches!(list.status(key), Status::Waiting) && !wait::expired(deadline) {
                continue;
            }
            list.remove(key);
            return guard;
        }
    }
}

impl<S> Drop for Registered<'_, S> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            (self.list)(&mut wait::lock(self.lock)).remove(key);
        }
    }
}

/// Unparkers collected under a lock, to be woken after it is released.
///
/// Holds up to four inline, so waking a handful of waiters does not
/// allocate; beyond that it spills into a `Vec`.
#[derive(Debug)]
pub(crate) struct WakeSet {
    inline: [Option<Unparker>; 4],
    overflow: Vec<Unparker>,
}

impl WakeSet {
    /// An empty set.
    pub(crate) const fn new() -> WakeSet {
        WakeSet {
            inline: [None, None, None, None],
            overflow: Vec::new(),
        }
    }

    /// Adds one unparker.
    pub(crate) fn push(&mut self, unparker: Unparker) {
        for slot in &mut self.inline {
            if slot.is_none() {
                *slot = Some(unparker);
                return;
            }
        }
        self.overflow.push(unparker);
    }

    /// Adds an unparker if there is one.
    pub(crate) fn push_opt(&mut self, unparker: Option<Unparker>) {
        if let Some(u) = unparker {
            self.push(u);
        }
    }

    /// Wakes everyone collected. Call with no lock held.
    pub(crate) fn wake_all(self) {
        for u in self.inline.into_iter().flatten() {
            u.unpark();
        }
        for u in self.overflow {
            u.unpark();
        }
    }
}
