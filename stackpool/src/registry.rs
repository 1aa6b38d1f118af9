//! A lock-free, async-signal-safe registry of live slabs, so the SIGSEGV
//! handler can tell whether a fault address lies in one of our guard pages.
//!
//! ```text
//!   RECORDS: [Record; 8192] in .bss          HIGH: records ever claimed
//!   +------------+-----------+-------+
//!   | base       | len       | class |   base == 0        free
//!   +------------+-----------+-------+   base == CLAIMED  being written
//!   | 0x7f..000  | 64 MiB    | 1     |   base  > CLAIMED  live slab
//!   +------------+-----------+-------+
//! ```
//!
//! Protocol (each record has one writer at a time, the pool that claimed it):
//!
//! 1. `register` claims a free record by CAS `base: 0 -> CLAIMED`, stores
//!    `len` and `class`, then publishes with `base.store(slab, Release)` and
//!    raises `HIGH` so readers scan far enough.
//! 2. The handler loads `base` with Acquire; a value above `CLAIMED` makes
//!    `len` and `class` visible. It re-reads `base` after reading them and
//!    ignores the record if it changed.
//! 3. `unregister` stores `base = 0` before the pool unmaps the slab. A slab
//!    is unregistered only when no stack of it is checked out, so no thread
//!    can be faulting in it at that moment.
//!
//! When all records are taken a slab works unregistered: its guard pages
//! still stop overflows, but the crash is reported by the previous handler
//! (Rust's, or the default SIGSEGV) instead of ours.

use crate::loom::statics::{AtomicUsize, Ordering};

/// Number of slabs the registry can describe at once (192 KiB of .bss; at
/// the default 64 MiB per slab this covers 512 GiB of stacks).
const CAPACITY: usize = 8192;
/// `base` value of a record being written.
const CLAIMED: usize = 1;

struct Record {
    base: AtomicUsize,
    len: AtomicUsize,
    class: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // used only as an array initialiser
const EMPTY: Record = Record {
    base: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    class: AtomicUsize::new(0),
};

static RECORDS: [Record; CAPACITY] = [EMPTY; CAPACITY];
static HIGH: AtomicUsize = AtomicUsize::new(0);

/// A slab's entry in the registry; pass it back to [`unregister`].
#[derive(Debug)]
pub(crate) struct Registration(usize);

/// What the registry knows about the slab holding an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlabInfo {
    pub(crate) base: usize,
    pub(crate) len: usize,
    pub(crate) class_index: usize,
}

/// Publishes a slab. `None` when the registry is full (see module docs).
pub(crate) fn register(base: usize, len: usize, class_index: usize) -> Option<Registration> {
    debug_assert!(base > CLAIMED);
    for (i, rec) in RECORDS.iter().enumerate() {
        if rec
            .base
            .compare_exchange(0, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            rec.len.store(len, Ordering::Relaxed);
            rec.class.store(class_index, Ordering::Relaxed);
            rec.base.store(base, Ordering::Release);
            HIGH.fetch_max(i + 1, Ordering::Release);
            return Some(Registration(i));
        }
    }
    None
}

/// Withdraws a slab before it is unmapped.
pub(crate) fn unregister(reg: Registration) {
    RECORDS[reg.0].base.store(0, Ordering::Release);
}

/// Finds the live slab containing `addr`. Async-signal-safe: atomics only.
pub(crate) fn lookup(addr: usize) -> Option<SlabInfo> {
    let high = HIGH.load(Ordering::Acquire).min(CAPACITY);
    for rec in &RECORDS[..high] {
        let base = rec.base.load(Ordering::Acquire);
        if base <= CLAIMED || addr < base {
            continue;
        }
        let len = rec.len.load(Ordering::Relaxed);
        let class_index = rec.class.load(Ordering::Relaxed);
        if addr - base < len && rec.base.load(Ordering::Acquire) == base {
            return Some(SlabInfo {
                base,
                len,
                class_index,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_slabs_are_found_and_unregistered_ones_are_not() {
        // Addresses that no real mapping uses in a test process.
        let base = 0x1000_0000_0000usize;
        let reg = register(base, 1 << 20, 3).expect("registry has room");
        assert_eq!(
            lookup(base + 4096),
            Some(SlabInfo {
                base,
                len: 1 << 20,
                class_index: 3
            })
        );
        assert_eq!(lookup(base + (1 << 20)), None);
        assert_eq!(lookup(base - 1), None);
        unregister(reg);
        assert_eq!(lookup(base + 4096), None);
    }
}
