//! A hierarchical timer wheel: O(1) arm and cancel for very many timeouts.
//!
//! Each worker owns one [`Wheel`]. It is a pure data structure: it never reads
//! a clock. The caller converts time to *ticks* (1 tick = 1 ms), calls
//! [`Wheel::advance`] with the current tick after every poll, and sleeps in its
//! poller for at most [`Wheel::next_deadline`] minus now.
//!
//! # Layout
//!
//! Six levels of 64 slots. A slot of level `l` covers `64^l` ticks, so one
//! level covers `64^(l+1)` ticks and the whole wheel `64^6 = 2^36` ticks
//! (about 2.2 years). A deadline is stored at the level of the highest base-64
//! digit in which it differs from the wheel's current tick `elapsed`, in the
//! slot named by that digit:
//!
//! ```text
//!  deadline bits:  ..|35..30|29..24|23..18|17..12|11..6|5..0|
//!                      L5     L4     L3     L2     L1   L0     (one digit = one slot index)
//!
//!  level 0  [s0][s1]...[s63]   1 tick per slot        <- fires from here
//!  level 1  [s0][s1]...[s63]   64 ticks per slot      \
//!  level 2  [s0][s1]...[s63]   4 096 ticks per slot    |  cascade: when `elapsed`
//!  level 3  [s0][s1]...[s63]   262 144 ticks           |  reaches a slot's start,
//!  level 4  [s0][s1]...[s63]   ~16.8 M ticks (4.7 h)   |  its entries move down
//!  level 5  [s0][s1]...[s63]   ~1.07 G ticks (12.4 d) /   to lower levels
//!
//!  pending   deadlines already <= elapsed when inserted: fire on the next advance
//!  overflow  deadlines in a later 2^36-tick rotation than `elapsed` (unordered)
//! ```
//!
//! Invariants (checked by `debug_assert!` and the model test):
//!
//! 1. Every entry in level `l` shares all digits above `l` with `elapsed`, and
//!    its digit at `l` is *strictly greater* than `elapsed`'s (equal only for
//!    a slot that a panicking `fire` left half-processed, which is then due at
//!    `elapsed` itself). So the lowest non-empty level holds the earliest
//!    entries, and within a level the lowest occupied slot is the earliest.
//! 2. `occupied[l]` has bit `s` set exactly when slot `(l, s)` is non-empty, so
//!    finding the next slot is one `trailing_zeros`, never a scan.
//! 3. Overflow entries all lie in rotations after `elapsed`'s; the wheel holds
//!    nothing beyond the current rotation. When the wheel is empty up to the
//!    rotation of the earliest overflow deadline, `advance` jumps `elapsed` to
//!    that rotation's start and re-places the overflow entries. Overflow is
//!    only ever rescanned when its cached lower bound says it may be due, so
//!    far timers cost nothing per advance.
//!
//! # Storage
//!
//! Entries live in one slab (`Vec<Entry<T>>`) with a free list. Each list
//! (384 slots, pending, overflow) is an intrusive doubly linked list threaded
//! through the slab by `u32` indices, so `cancel` unlinks in O(1), and once the
//! slab has grown to the peak number of live timers nothing allocates. A
//! [`TimerKey`] is `(index, generation)`; freeing an entry bumps its
//! generation, so a stale key (fired or cancelled) is rejected instead of
//! removing whichever timer reuses the slot.
//!
//! # Who touches what
//!
//! Single-threaded: the owning worker calls every method through `&mut self`.
//! The `fire` callback of `advance` runs with the wheel borrowed, so it cannot
//! re-enter; a panic inside it leaves the wheel consistent (every entry is
//! unlinked and freed before its value is handed out).
// The scheduler's timer driver (issue 3) is the first user; until it lands
// only the tests call in.
#![cfg_attr(not(test), allow(dead_code))]

use std::fmt;

/// log2 of the slots per level.
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Levels in the wheel.
const LEVELS: usize = 6;
/// log2 of the ticks one full rotation of the top level covers (2^36 ms).
const ROTATION_BITS: u32 = SLOT_BITS * LEVELS as u32;
/// "No entry" in a link or list head.
const NIL: u32 = u32::MAX;
/// List id of the pending (already due) list.
const PENDING: u16 = (LEVELS * SLOTS) as u16;
/// List id of the overflow (later rotation) list.
const OVERFLOW: u16 = PENDING + 1;
/// Number of lists: all slots, pending and overflow.
const LISTS: usize = LEVELS * SLOTS + 2;
/// `Entry::list` of an entry that is in no list (free, or being processed).
const DETACHED: u16 = u16::MAX;

/// Names one armed timer. Cheap to copy; stale keys are harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TimerKey {
    index: u32,
    generation: u32,
}

/// One slab cell: a live timer or a free cell.
struct Entry<T> {
    /// The payload; `None` exactly when the cell is free.
    value: Option<T>,
    deadline: u64,
    /// Previous entry in the same list, or `NIL`.
    prev: u32,
    /// Next entry in the same list (or in the free list), or `NIL`.
    next: u32,
    /// Bumped each time the cell is freed.
    generation: u32,
    /// Which list the entry is in, or `DETACHED`.
    list: u16,
}

/// Head and tail of one intrusive list (FIFO: ties fire in insertion order).
#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY_LIST: List = List {
    head: NIL,
    tail: NIL,
};

/// A hierarchical timer wheel over `u64` ticks, owning one `T` per timer.
pub(crate) struct Wheel<T> {
    entries: Vec<Entry<T>>,
    /// Head of the free-cell list, threaded through `Entry::next`.
    free_head: u32,
    /// `LISTS` lists: slot `(l, s)` is list `l * 64 + s`, then pending, overflow.
    lists: Box<[List]>,
    /// Bit `s` of `occupied[l]`: slot `(l, s)` is non-empty.
    occupied: [u64; LEVELS],
    /// The wheel's current tick: everything `<= elapsed` has fired.
    elapsed: u64,
    len: usize,
    /// Lower bound of the pending deadlines (`u64::MAX` when empty).
    pending_min: u64,
    /// Lower bound of the overflow deadlines (`u64::MAX` when empty).
    overflow_min: u64,
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("elapsed", &self.elapsed)
            .field("len", &self.len)
            .field("slab_capacity", &self.entries.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Wheel<T> {
    /// An empty wheel whose current tick is 0.
    pub(crate) fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty wheel with room for `capacity` timers before the slab grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Wheel {
            entries: Vec::with_capacity(capacity),
            free_head: NIL,
            lists: vec![EMPTY_LIST; LISTS].into_boxed_slice(),
            occupied: [0; LEVELS],
            elapsed: 0,
            len: 0,
            pending_min: u64::MAX,
            overflow_min: u64::MAX,
        }
    }

    /// Number of armed timers.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is armed.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The wheel's current tick (the last `advance`'s `now_tick`).
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Cells the slab can hold without reallocating.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Arms a timer that fires at the first `advance` whose `now_tick` is at
    /// least `deadline_tick`. A deadline at or before the current tick fires
    /// on the next `advance`. O(1); allocates only when the slab must grow.
    ///
    /// # Panics
    ///
    /// Panics if `u32::MAX - 1` timers are already armed (the key's index is a
    /// `u32`); at about 40 bytes a timer that is 160 GiB of timers.
    pub(crate) fn insert(&mut self, deadline_tick: u64, value: T) -> TimerKey {
        let index = match self.free_head {
            NIL => {
                let index = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .unwrap_or_else(|| panic!("timer wheel full: {} timers armed", self.len));
                self.entries.push(Entry {
                    value: Some(value),
                    deadline: deadline_tick,
                    prev: NIL,
                    next: NIL,
                    generation: 0,
                    list: DETACHED,
                });
                index
            }
            index => {
                let entry = &mut self.entries[index as usize];
                self.free_head = entry.next;
                entry.value = Some(value);
                entry.deadline = deadline_tick;
                index
            }
        };
        self.len += 1;
        self.place(index);
        TimerKey {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Disarms the timer and returns its value, or `None` if the key is stale
    /// (the timer already fired or was cancelled). O(1).
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let entry = self.entries.get(key.index as usize)?;
        if entry.generation != key.generation || entry.list == DETACHED {
            return None;
        }
        self.unlink(key.index);
        self.free(key.index)
    }

    /// Fires, by calling `fire` with its value, every timer whose deadline is
    /// at most `now_tick`, and makes `now_tick` the current tick. Timers fire
    /// in deadline order (ties and overdue timers in insertion order). A
    /// `now_tick` earlier than the current tick only fires the overdue timers:
    /// the wheel never goes back in time.
    pub(crate) fn advance(&mut self, now_tick: u64, mut fire: impl FnMut(T)) {
        while let Some(index) = self.pop_front(PENDING) {
            if let Some(value) = self.free(index) {
                fire(value);
            }
        }
        // Never back in time. `now_tick == elapsed` still runs the loop: a
        // slot left half-processed by a panicking `fire` is due at `elapsed`.
        let now_tick = now_tick.max(self.elapsed);
        loop {
            if let Some((level, slot, tick)) = self.next_expiration() {
                if tick <= now_tick {
                    debug_assert!(tick >= self.elapsed, "invariant 1: slot behind the wheel");
                    self.elapsed = self.elapsed.max(tick);
                    let list = (level * SLOTS + slot) as u16;
                    // Re-placed entries always land in a lower level (their
                    // digits above `level` now equal `elapsed`'s), never here.
                    while let Some(index) = self.pop_front(list) {
                        self.expire_or_place(index, &mut fire);
                    }
                    continue;
                }
            }
            if self.overflow_due(now_tick, &mut fire) {
                continue;
            }
            self.elapsed = now_tick;
            return;
        }
    }

    /// A tick at or before the earliest armed deadline, or `None` when no
    /// timer is armed. Exact for timers in level 0 (due within 64 ticks) and
    /// for overdue ones; for later timers it may be the start of their slot
    /// (waking early lets `advance` cascade them, never late). After
    /// `advance(now)` it is `None` or greater than `now` until something is
    /// inserted at or before `now`.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        let mut best = None;
        if self.lists[PENDING as usize].head != NIL {
            best = Some(self.pending_min);
        }
        let later = match self.next_expiration() {
            Some((_, _, tick)) => Some(tick),
            None if self.lists[OVERFLOW as usize].head != NIL => Some(self.overflow_min),
            None => None,
        };
        match (best, later) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The earliest non-empty slot as `(level, slot, start tick)`.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let shift = SLOT_BITS * level as u32;
            let current = (self.elapsed >> shift) & (SLOTS as u64 - 1);
            debug_assert_eq!(
                occupied & !(u64::MAX << current),
                0,
                "invariant 1: level {level} has a slot behind the current one"
            );
            let slot = u64::from(occupied.trailing_zeros());
            let level_start = self.elapsed & !((1u64 << (shift + SLOT_BITS)) - 1);
            return Some((level, slot as usize, level_start + (slot << shift)));
        }
        None
    }

    /// Handles the overflow list once the wheel has nothing due up to
    /// `now_tick`: if the earliest overflow rotation starts by `now_tick`,
    /// jumps there, fires the overflow entries due at its first tick, re-places
    /// the others and returns `true`.
    fn overflow_due(&mut self, now_tick: u64, fire: &mut impl FnMut(T)) -> bool {
        let rotation_mask = !((1u64 << ROTATION_BITS) - 1);
        if self.lists[OVERFLOW as usize].head == NIL || self.overflow_min & rotation_mask > now_tick
        {
            return false;
        }
        // The cached bound says it may be due: find the true minimum.
        let (count, min) = self.scan_overflow();
        self.overflow_min = min;
        let rotation_start = min & rotation_mask;
        if rotation_start > now_tick {
            return false;
        }
        debug_assert!(self.occupied.iter().all(|&o| o == 0), "invariant 3");
        debug_assert!(rotation_start > self.elapsed, "invariant 3");
        self.elapsed = self.elapsed.max(rotation_start);
        // Entries still in a later rotation go back to the tail, so pop exactly
        // the ones that were there. `overflow_min` stays a valid lower bound
        // throughout, even if `fire` panics.
        for _ in 0..count {
            if let Some(index) = self.pop_front(OVERFLOW) {
                self.expire_or_place(index, fire);
            }
        }
        // Tighten the bound to what is left (rare: once per rotation crossed).
        self.overflow_min = self.scan_overflow().1;
        true
    }

    /// Length and minimum deadline of the overflow list (`u64::MAX` if empty).
    fn scan_overflow(&self) -> (usize, u64) {
        let (mut count, mut min) = (0usize, u64::MAX);
        let mut cursor = self.lists[OVERFLOW as usize].head;
        while cursor != NIL {
            let entry = &self.entries[cursor as usize];
            min = min.min(entry.deadline);
            count += 1;
            cursor = entry.next;
        }
        (count, min)
    }

    /// Fires the detached entry if it is due, else links it where it belongs.
    fn expire_or_place(&mut self, index: u32, fire: &mut impl FnMut(T)) {
        if self.entries[index as usize].deadline <= self.elapsed {
            if let Some(value) = self.free(index) {
                fire(value);
            }
        } else {
            self.place(index);
        }
    }

    /// Links the detached entry `index` into the list its deadline selects.
    fn place(&mut self, index: u32) {
        let deadline = self.entries[index as usize].deadline;
        let list = if deadline <= self.elapsed {
            self.pending_min = self.pending_min.min(deadline);
            PENDING
        } else {
            // The highest base-64 digit in which deadline and elapsed differ.
            let masked = (self.elapsed ^ deadline) | (SLOTS as u64 - 1);
            let level = ((63 - masked.leading_zeros()) / SLOT_BITS) as usize;
            if level >= LEVELS {
                self.overflow_min = self.overflow_min.min(deadline);
                OVERFLOW
            } else {
                let slot = (deadline >> (SLOT_BITS * level as u32)) as usize & (SLOTS - 1);
                self.occupied[level] |= 1 << slot;
                (level * SLOTS + slot) as u16
            }
        };
        let tail = self.lists[list as usize].tail;
        {
            let entry = &mut self.entries[index as usize];
            entry.list = list;
            entry.prev = tail;
            entry.next = NIL;
        }
        match tail {
            NIL => self.lists[list as usize].head = index,
            tail => self.entries[tail as usize].next = index,
        }
        self.lists[list as usize].tail = index;
    }

    /// Unlinks the first entry of `list` and returns it, detached.
    fn pop_front(&mut self, list: u16) -> Option<u32> {
        let head = self.lists[list as usize].head;
        if head == NIL {
            return None;
        }
        self.unlink(head);
        Some(head)
    }

    /// Removes the linked entry `index` from its list; keeps `occupied` and the
    /// cached bounds in step.
    fn unlink(&mut self, index: u32) {
        let (list, prev, next) = {
            let entry = &mut self.entries[index as usize];
            let links = (entry.list, entry.prev, entry.next);
            entry.list = DETACHED;
            entry.prev = NIL;
            entry.next = NIL;
            links
        };
        debug_assert_ne!(list, DETACHED, "unlinking a detached timer");
        match prev {
            NIL => self.lists[list as usize].head = next,
            prev => self.entries[prev as usize].next = next,
        }
        match next {
            NIL => self.lists[list as usize].tail = prev,
            next => self.entries[next as usize].prev = prev,
        }
        if self.lists[list as usize].head == NIL {
            match list {
                PENDING => self.pending_min = u64::MAX,
                OVERFLOW => self.overflow_min = u64::MAX,
                _ => {
                    let (level, slot) = (list as usize / SLOTS, list as usize % SLOTS);
                    self.occupied[level] &= !(1u64 << slot);
                }
            }
        }
    }

    /// Frees the detached entry `index` and returns its value.
    fn free(&mut self, index: u32) -> Option<T> {
        let entry = &mut self.entries[index as usize];
        debug_assert_eq!(entry.list, DETACHED, "freeing a linked timer");
        entry.generation = entry.generation.wrapping_add(1);
        entry.next = self.free_head;
        self.free_head = index;
        let value = entry.value.take();
        if value.is_some() {
            self.len -= 1;
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    /// Advances to `now` and returns the fired values in firing order.
    fn fired(wheel: &mut Wheel<u64>, now: u64) -> Vec<u64> {
        let mut out = Vec::new();
        wheel.advance(now, |v| out.push(v));
        out
    }

    #[test]
    fn fires_at_deadline_never_before() {
        for deadline in [
            1u64, 2, 63, 64, 65, 4095, 4096, 4097, 262_143, 262_144, 300_000,
        ] {
            let mut wheel = Wheel::new();
            wheel.insert(deadline, deadline);
            // One tick short, through several partial advances.
            for now in [deadline / 3, deadline / 2, deadline - 1] {
                assert!(
                    fired(&mut wheel, now).is_empty(),
                    "{deadline} fired at {now}"
                );
                assert_eq!(wheel.len(), 1);
            }
            assert_eq!(fired(&mut wheel, deadline), vec![deadline]);
            assert!(wheel.is_empty());
            assert_eq!(wheel.next_deadline(), None);
        }
    }

    #[test]
    fn cascading_across_levels_in_one_advance() {
        let deadlines = [300_000u64, 1, 4096, 63, 4095, 64];
        let mut wheel = Wheel::new();
        for d in deadlines {
            wheel.insert(d, d);
        }
        // One big jump fires all of them, in deadline order.
        assert_eq!(
            fired(&mut wheel, 1_000_000),
            vec![1, 63, 64, 4095, 4096, 300_000]
        );
        // And tick by tick, each fires at exactly its own tick.
        let mut wheel = Wheel::new();
        for d in deadlines {
            wheel.insert(d, d);
        }
        let mut seen = Vec::new();
        for now in 1..=300_000u64 {
            wheel.advance(now, |v| {
                assert_eq!(v, now, "fired at the wrong tick");
                seen.push(v);
            });
        }
        assert_eq!(seen, vec![1, 63, 64, 4095, 4096, 300_000]);
    }

    #[test]
    fn overdue_deadlines_fire_on_next_advance_in_insertion_order() {
        let mut wheel = Wheel::new();
        assert!(fired(&mut wheel, 1000).is_empty());
        wheel.insert(1000, 1);
        wheel.insert(5, 2);
        wheel.insert(999, 3);
        assert_eq!(wheel.next_deadline(), Some(5));
        // Even an advance that does not move time fires them.
        assert_eq!(fired(&mut wheel, 1000), vec![1, 2, 3]);
        wheel.insert(0, 4);
        assert_eq!(
            fired(&mut wheel, 10),
            vec![4],
            "time going back still fires overdue"
        );
        assert_eq!(wheel.elapsed(), 1000);
    }

    #[test]
    fn cancel_returns_value_and_stale_keys_are_harmless() {
        let mut wheel = Wheel::new();
        let a = wheel.insert(100, 1);
        let b = wheel.insert(100, 2);
        let c = wheel.insert(5_000_000, 3);
        assert_eq!(wheel.cancel(b), Some(2));
        assert_eq!(wheel.cancel(b), None, "double cancel");
        assert_eq!(wheel.len(), 2);
        // `b`'s cell is reused; the old key must not reach the new timer.
        let d = wheel.insert(100, 4);
        assert_eq!(d.index, b.index);
        assert_eq!(wheel.cancel(b), None);
        assert_eq!(fired(&mut wheel, 100), vec![1, 4]);
        assert_eq!(wheel.cancel(a), None, "cancel after firing");
        assert_eq!(wheel.cancel(d), None);
        assert_eq!(wheel.cancel(c), Some(3));
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_deadline(), None);
        assert!(fired(&mut wheel, 10_000_000).is_empty());
    }

    #[test]
    fn far_deadlines_use_overflow_and_fire_exactly() {
        let rotation = 1u64 << ROTATION_BITS;
        let far = [rotation, rotation + 1, 3 * rotation + 12_345, u64::MAX];
        let mut wheel = Wheel::new();
        for d in far {
            wheel.insert(d, d);
        }
        wheel.insert(10, 10);
        assert_eq!(wheel.next_deadline(), Some(10));
        assert_eq!(fired(&mut wheel, rotation - 1), vec![10]);
        assert_eq!(wheel.next_deadline(), Some(rotation));
        assert_eq!(fired(&mut wheel, rotation), vec![rotation]);
        assert!(fired(&mut wheel, rotation).is_empty());
        assert_eq!(fired(&mut wheel, rotation + 1), vec![rotation + 1]);
        // A huge jump crosses the empty rotations without visiting each one.
        assert!(fired(&mut wheel, 3 * rotation + 12_344).is_empty());
        assert_eq!(
            fired(&mut wheel, 3 * rotation + 12_345),
            vec![3 * rotation + 12_345]
        );
        assert_eq!(fired(&mut wheel, u64::MAX - 1), Vec::<u64>::new());
        assert_eq!(fired(&mut wheel, u64::MAX), vec![u64::MAX]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn next_deadline_is_exact_near_and_an_early_bound_far() {
        let mut wheel = Wheel::new();
        assert_eq!(wheel.next_deadline(), None);
        wheel.insert(300_000, 1);
        let bound = wheel.next_deadline().unwrap();
        assert!(bound <= 300_000);
        assert_eq!(bound, 262_144, "start of its level-3 slot");
        let k = wheel.insert(40, 2);
        assert_eq!(wheel.next_deadline(), Some(40), "level 0 is exact");
        wheel.cancel(k);
        assert_eq!(wheel.next_deadline(), Some(262_144));
        // Waking at the bound cascades the timer and tightens the bound.
        assert!(fired(&mut wheel, 262_144).is_empty());
        assert_eq!(wheel.next_deadline(), Some(299_008));
        assert!(fired(&mut wheel, 299_008).is_empty());
        assert_eq!(wheel.next_deadline(), Some(299_968));
        assert!(fired(&mut wheel, 299_968).is_empty());
        assert_eq!(wheel.next_deadline(), Some(300_000));
        assert_eq!(fired(&mut wheel, 300_000), vec![1]);
    }

    #[test]
    fn steady_state_does_not_allocate() {
        let mut wheel = Wheel::new();
        let mut keys = Vec::with_capacity(1000);
        let mut now = 0;
        let mut round = |wheel: &mut Wheel<u64>, now: &mut u64| {
            for i in 0..1000u64 {
                keys.push(wheel.insert(*now + 1 + i * 37 % 5000, i));
            }
            for k in keys.drain(..).step_by(2) {
                wheel.cancel(k);
            }
            *now += 5001;
            let mut n = 0;
            wheel.advance(*now, |_| n += 1);
            assert_eq!(n, 500);
            keys.clear();
        };
        round(&mut wheel, &mut now);
        let capacity = wheel.capacity();
        assert!(capacity >= 1000);
        for _ in 0..200 {
            round(&mut wheel, &mut now);
        }
        assert_eq!(wheel.capacity(), capacity, "slab grew in the steady state");
        assert!(wheel.is_empty());
    }

    #[test]
    fn panicking_fire_leaves_the_wheel_consistent() {
        let mut wheel = Wheel::new();
        for d in [10u64, 10, 10, 20] {
            wheel.insert(d, d);
        }
        let mut calls = 0;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wheel.advance(15, |_| {
                calls += 1;
                if calls == 2 {
                    panic!("boom");
                }
            })
        }));
        assert!(result.is_err());
        assert_eq!(wheel.len(), 2, "two fired (one of them panicked), two left");
        assert_eq!(fired(&mut wheel, 15), vec![10]);
        assert_eq!(fired(&mut wheel, 20), vec![20]);
        assert!(wheel.is_empty());
    }

    /// A tiny xorshift64* generator: deterministic, no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    #[test]
    fn randomized_against_btreemap_model() {
        for seed in 1..=12u64 {
            let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut wheel = Wheel::new();
            // Model: (deadline, id) -> key, plus id -> (deadline, key).
            let mut model: BTreeMap<(u64, u64), TimerKey> = BTreeMap::new();
            let mut live: HashMap<u64, (u64, TimerKey)> = HashMap::new();
            let mut dead: Vec<TimerKey> = Vec::new();
            let mut now = 0u64;
            let mut next_id = 0u64;
            for _ in 0..20_000 {
                match rng.below(10) {
                    0..=4 => {
                        let delta = match rng.below(6) {
                            0 => rng.below(70),
                            1 => rng.below(5_000),
                            2 => rng.below(400_000),
                            3 => rng.below(1 << 30),
                            4 => rng.below(1 << 38),
                            _ => 0,
                        };
                        let deadline = if rng.below(8) == 0 {
                            now.saturating_sub(rng.below(100))
                        } else {
                            now + delta
                        };
                        let key = wheel.insert(deadline, next_id);
                        model.insert((deadline, next_id), key);
                        live.insert(next_id, (deadline, key));
                        next_id += 1;
                    }
                    5 | 6 => {
                        if !live.is_empty() && rng.below(4) != 0 {
                            let id = *live
                                .keys()
                                .nth(rng.below(live.len() as u64) as usize)
                                .unwrap();
                            let (deadline, key) = live.remove(&id).unwrap();
                            model.remove(&(deadline, id));
                            assert_eq!(wheel.cancel(key), Some(id));
                            dead.push(key);
                        } else if !dead.is_empty() {
                            let key = dead[rng.below(dead.len() as u64) as usize];
                            assert_eq!(wheel.cancel(key), None, "stale key cancelled a live timer");
                        }
                    }
                    _ => {
                        let bound = wheel.next_deadline();
                        let true_min = model.keys().next().map(|&(d, _)| d);
                        assert_eq!(bound.is_some(), true_min.is_some());
                        if let (Some(b), Some(m)) = (bound, true_min) {
                            assert!(b <= m, "next_deadline {b} later than true {m}");
                        }
                        let step = match rng.below(5) {
                            0 => rng.below(3),
                            1 => rng.below(100),
                            2 => rng.below(10_000),
                            3 => rng.below(1 << 24),
                            _ => rng.below(1 << 37),
                        };
                        // Sometimes wake exactly at the bound, as a poller would.
                        now = match bound {
                            Some(b) if rng.below(3) == 0 => now.max(b),
                            _ => now + step,
                        };
                        let mut got = Vec::new();
                        wheel.advance(now, |id| got.push(id));
                        let mut expected = Vec::new();
                        while let Some((&(deadline, id), _)) = model.first_key_value() {
                            if deadline > now {
                                break;
                            }
                            model.pop_first();
                            dead.push(live.remove(&id).unwrap().1);
                            expected.push(id);
                        }
                        got.sort_unstable();
                        expected.sort_unstable();
                        assert_eq!(got, expected, "seed {seed}: wrong set fired at {now}");
                        if let Some(b) = wheel.next_deadline() {
                            assert!(b > now, "bound {b} not after now {now} after advance");
                        }
                    }
                }
                assert_eq!(wheel.len(), model.len());
            }
        }
    }
}
