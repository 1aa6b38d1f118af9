//! A worker's trace ring: one writer (the worker's thread), any number of
//! readers, no locks.
//!
//! ```text
//!  slots (power of two, 64 bytes each)
//!  +------+------+------+------+------+------+
//!  | i=8  | i=9  | i=10 | i=5  | i=6  | i=7  |   head = 11: events 5..11 held
//!  +------+------+------+------+------+------+
//!  slot: seq | w0 w1 w2 w3 w4 w5 w6      (all AtomicU64)
//! ```
//!
//! Event `i` goes to slot `i & mask`. Each slot is a seqlock: the writer
//! stores `seq = 2i + 1` (odd: being written), a release fence, the seven
//! words, then `seq = 2i + 2` with release, then advances `head`. A reader
//! takes the last `capacity` indices below `head`; for each it loads `seq`
//! (acquire), the words (relaxed), an acquire fence, and `seq` again; it
//! keeps the event only if both loads equal `2i + 2`. Every field is an
//! atomic, so a read racing a write is not a data race, just a discarded
//! (torn) copy. Words that encode pointers (`&'static` names and sites) are
//! therefore only turned back into references from validated copies.

use crate::loom::sync::atomic::{fence, AtomicU64, Ordering::*};

/// Words of payload per event.
pub(crate) const WORDS: usize = 7;

#[repr(align(64))]
struct Slot {
    seq: AtomicU64,
    words: [AtomicU64; WORDS],
}

impl Slot {
    fn new() -> Slot {
        Slot {
            seq: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A bounded single-producer event ring.
pub(crate) struct Ring {
    slots: Box<[Slot]>,
    mask: u64,
    /// Index of the next event; written only by the producer.
    head: AtomicU64,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.slots.len())
            .field("head", &self.head.load(Relaxed))
            .finish()
    }
}

impl Ring {
    /// A ring of at least `capacity` events (rounded up to a power of two).
    pub(crate) fn new(capacity: usize) -> Ring {
        let cap = capacity.max(1).next_power_of_two();
        Ring {
            slots: (0..cap).map(|_| Slot::new()).collect(),
            mask: cap as u64 - 1,
            head: AtomicU64::new(0),
        }
    }

    /// Appends an event. Only the ring's owning worker thread may call this.
    #[inline]
    pub(crate) fn push(&self, words: [u64; WORDS]) {
        let i = self.head.load(Relaxed);
        let slot = &self.slots[(i & self.mask) as usize];
        slot.seq.store(2 * i + 1, Relaxed);
        fence(Release);
        for (w, v) in slot.words.iter().zip(words) {
            w.store(v, Relaxed);
        }
        slot.seq.store(2 * i + 2, Release);
        self.head.store(i + 1, Release);
    }

    /// Events the ring holds at most.
    pub(crate) fn capacity(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Events written so far (including overwritten ones).
    pub(crate) fn written(&self) -> u64 {
        self.head.load(Acquire)
    }

    /// Copies the events still held, oldest first, and counts the events
    /// lost (overwritten before or while being read).
    pub(crate) fn read(&self) -> (Vec<[u64; WORDS]>, u64) {
        let head = self.head.load(Acquire);
        let cap = self.slots.len() as u64;
        let start = head.saturating_sub(cap);
        let mut out = Vec::with_capacity((head - start) as usize);
        let mut lost = start;
        for i in start..head {
            let slot = &self.slots[(i & self.mask) as usize];
            let want = 2 * i + 2;
            if slot.seq.load(Acquire) != want {
                lost += 1;
                continue;
            }
            let words: [u64; WORDS] = std::array::from_fn(|k| slot.words[k].load(Relaxed));
            fence(Acquire);
            if slot.seq.load(Relaxed) != want {
                lost += 1;
                continue;
            }
            out.push(words);
        }
        (out, lost)
    }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_events_in_order() {
        let r = Ring::new(6); // rounds up to 8
        for i in 0..20u64 {
            r.push([i, i * 2, 0, 0, 0, 0, i]);
        }
        let (ev, lost) = r.read();
        assert_eq!(lost, 12);
        assert_eq!(ev.len(), 8);
        assert_eq!(
            ev.iter().map(|w| w[0]).collect::<Vec<_>>(),
            (12..20).collect::<Vec<_>>()
        );
        assert!(ev.iter().all(|w| w[1] == 2 * w[0] && w[6] == w[0]));
        assert_eq!(r.written(), 20);
    }

    #[test]
    fn concurrent_reader_sees_only_whole_events() {
        let r = std::sync::Arc::new(Ring::new(64));
        let w = r.clone();
        let writer = std::thread::spawn(move || {
            for i in 0..200_000u64 {
                w.push([i; WORDS]);
            }
        });
        let mut seen = 0;
        while !writer.is_finished() {
            let (ev, _) = r.read();
            for e in &ev {
                assert!(e.iter().all(|&x| x == e[0]), "torn event {e:?}");
            }
            seen += ev.len();
        }
        writer.join().unwrap();
        let (ev, lost) = r.read();
        assert_eq!(ev.len() as u64 + lost, 200_000);
        assert_eq!(ev.len(), 64);
        let _ = seen;
    }
}
