//! `PooledStack`: a checked-out stack, usable as a corosensei `Stack`.
//!
//! # Layout of one stack
//!
//! ```text
//!  limit() = slot                slot + page              base() = slot + stride
//!  |<-- guard page (no access) -->|<-------- usable bytes (class) -------->|
//!                                  lowest touched page ...  stack top ◄── grows down
//! ```
//!
//! # Lifecycle
//!
//! ```text
//!  pooled (thread cache / shared list) ──acquire──► checked out (PooledStack)
//!     ▲                                               │  moved into a Coroutine,
//!     │                                               │  suspended, resumed ...
//!     └───────────── drop(PooledStack) ◄──────────────┘
//! ```
//!
//! A checked-out stack owns one reference ("token") to its pool, so it may
//! be dropped on any thread, after every `StackPool` handle is gone.
//! Dropping it: (1) a sampled stack's high-water mark is recorded, (2) pages
//! below the class's resident target are given back, (3) the slot goes to
//! the dropping thread's cache.

use std::fmt;
use std::ops::Range;
use std::ptr::NonNull;

use corosensei::stack::{Stack, StackPointer};

use crate::cache;
use crate::class::SizeClass;
use crate::pool::PoolInner;
use crate::sys;

/// A guarded stack checked out of a [`StackPool`](crate::StackPool);
/// dropping it returns it to the pool.
///
/// It implements corosensei's [`Stack`], so
/// `Coroutine::with_stack(stack, f)` runs a coroutine on it, and the stack
/// returns to the pool when the coroutine is dropped.
///
/// ```
/// use corosensei::{Coroutine, CoroutineResult};
/// use pinstack_stackpool::StackPool;
///
/// let pool = StackPool::new()?;
/// let stack = pool.acquire(32 * 1024)?;
/// let mut co = Coroutine::with_stack(stack, |yielder, x: u32| {
///     let y = yielder.suspend(x + 1);
///     y * 2
/// });
/// assert!(matches!(co.resume(1), CoroutineResult::Yield(2)));
/// assert!(matches!(co.resume(5), CoroutineResult::Return(10)));
/// drop(co); // the stack goes back to the pool
/// assert_eq!(pool.stats().releases, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct PooledStack {
    pool: NonNull<PoolInner>,
    /// `slot | class index << CLASS_SHIFT | SAMPLED`: the slot (the guard
    /// page's start) is page aligned, so its low 12 bits carry the class and
    /// the sampled flag. Two words in all: `acquire` returns the stack in
    /// registers (wider structs with byte fields were copied through memory
    /// in pieces that stalled store forwarding on every acquisition).
    bits: usize,
}

/// `bits` flag of a sampled stack.
const SAMPLED: usize = 1;
/// Where the class index sits in `bits`.
const CLASS_SHIFT: u32 = 1;
/// Class index mask (after shifting): 11 classes fit in 4 bits.
const CLASS_MASK: usize = 0xf;
/// Low bits of `bits` that are not address (pages are at least 4 KiB).
const LOW_BITS: usize = 0xfff;

// SAFETY: a PooledStack owns its slot exclusively and one reference to the
// pool, whose shared state is `Sync`; releasing it from another thread goes
// through that thread's cache or the shared lists, both thread-safe. (Moving
// a stack with a *suspended coroutine* on it between threads is a separate
// question for the coroutine's owner; corosensei's `Coroutine` is `!Send`.)
unsafe impl Send for PooledStack {}

impl PooledStack {
    /// Wraps a slot just taken out of the pool.
    ///
    /// # Safety
    ///
    /// `slot` must be a carved slot of `class` in `pool`, exclusively owned
    /// by the caller together with one pool reference, both of which pass to
    /// the new stack.
    #[inline(always)]
    pub(crate) unsafe fn new(
        pool: NonNull<PoolInner>,
        class: SizeClass,
        slot: usize,
        sampled: bool,
    ) -> PooledStack {
        debug_assert_eq!(slot & LOW_BITS, 0);
        let stack = PooledStack {
            pool,
            bits: slot | class.index() << CLASS_SHIFT | sampled as usize,
        };
        if sampled {
            stack.start_sample();
        }
        stack
    }

    /// Start of the slot: the guard page's lowest address.
    #[inline(always)]
    fn slot(&self) -> usize {
        self.bits & !LOW_BITS
    }

    /// Highest address: the stack's base.
    #[inline(always)]
    fn top(&self) -> usize {
        self.slot() + crate::class::stride_for(self.class(), sys::page_size())
    }

    /// Drops the pages of a sampled stack before it is handed out, so the
    /// measurement at release is this task's alone. The top page stays:
    /// every coroutine's first frame is on it, so it counts in every
    /// measurement anyway, and keeping it makes a sample of a shallow task
    /// (the common case) cheap. Dropping it cost a TLB shootdown, which
    /// interrupts the other threads of the process, and a page fault when
    /// the task started: on a workload that spawns a million tiny tasks a
    /// second, sampling 1 in 4,096 that way cost ~4% of the wall time,
    /// where the `madvise` of pages that are not resident costs a syscall
    /// and nothing else.
    #[cold]
    #[inline(never)]
    fn start_sample(&self) {
        let r = self.usable_range();
        let below_top = r.end - sys::page_size();
        // SAFETY: the slot is ours and not yet in use: its contents are dead.
        let _ = unsafe { sys::dont_need(r.start, below_top - r.start) };
    }

    /// Release-time work off the common path: record a sample, give back
    /// pages beyond the class's resident target.
    #[cold]
    #[inline(never)]
    fn release_slow(&self, inner: &PoolInner, target: usize) {
        if self.is_sampled() {
            inner.record_sample(self.class(), self.touched_bytes());
        }
        let r = self.usable_range();
        let usable = r.end - r.start;
        if usable > target {
            // Keep the top `target` bytes (where the next task starts), give
            // the deeper pages back.
            // SAFETY: the stack is being returned: nothing runs on it any
            // more (a Coroutine drops its stack after unwinding it), and the
            // range lies in our slot.
            let _ = unsafe { sys::dont_need(r.start, usable - target) };
        }
    }

    /// The stack's size class.
    #[inline]
    pub fn class(&self) -> SizeClass {
        SizeClass::from_index((self.bits >> CLASS_SHIFT) & CLASS_MASK).unwrap_or(SizeClass::MIN)
    }

    /// The usable address range (above the guard page): the class size plus
    /// one color page at the top, of which the stack skips a per-slot offset
    /// below 4 KiB (cache coloring, see `color_offset`), so at least the
    /// class size is usable from where the stack starts.
    #[inline]
    pub fn usable_range(&self) -> Range<usize> {
        self.slot() + sys::page_size()..self.top()
    }

    /// The guard page's address range.
    #[inline]
    pub fn guard_range(&self) -> Range<usize> {
        self.slot()..self.slot() + sys::page_size()
    }

    /// Whether this acquisition was sampled for stack-use measurement (its
    /// pages below the top one were dropped before it was handed out, and
    /// its high-water mark is recorded in the pool's stats at release).
    #[inline]
    pub fn is_sampled(&self) -> bool {
        self.bits & SAMPLED != 0
    }

    /// Bytes of the stack in use, from the top down to the lowest resident
    /// page (via `mincore`; one syscall per 16 MiB). For a sampled stack this
    /// is the current task's high-water mark; for others it includes pages
    /// earlier users touched. A runtime learning per-spawn-site sizes calls
    /// this before dropping a sampled stack.
    pub fn touched_bytes(&self) -> usize {
        let Range { start, end } = self.usable_range();
        let page = sys::page_size();
        let pages = (end - start) / page;
        let mut buf = [0u8; 4096];
        let mut done = 0;
        while done < pages {
            let n = (pages - done).min(buf.len());
            let addr = start + done * page;
            if sys::mincore(addr, &mut buf[..n]).is_err() {
                // Cannot happen for a mapped slot; report "unknown" as full.
                return end - start;
            }
            if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
                return end - (addr + i * page);
            }
            done += n;
        }
        0
    }
}

impl fmt::Debug for PooledStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.usable_range();
        f.debug_struct("PooledStack")
            .field("class", &self.class())
            .field("usable", &format_args!("{:#x}..{:#x}", r.start, r.end))
            .field("sampled", &self.is_sampled())
            .finish()
    }
}

impl Drop for PooledStack {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: this stack's token keeps the pool alive until `release`.
        let inner = unsafe { self.pool.as_ref() };
        let class = self.class();
        let target = inner.config.resident_target[class.index()];
        if self.is_sampled() || inner.config.usable(class) > target {
            self.release_slow(inner, target);
        }
        cache::release(self.pool, class, self.slot());
    }
}

// SAFETY: the contract of `Stack` is met:
// 1. guard page: `limit()` is the start of the slot's guard page, installed
//    with MADV_GUARD_INSTALL or mprotect(PROT_NONE) when the slot was carved
//    and never removed while the slab is mapped; any access to it faults.
// 2. size: the usable range `limit() + page .. base()` is the class's usable
//    bytes, at least 8 KiB >= MIN_STACK_SIZE (4 KiB), readable and writable.
// 3. alignment: slots are page aligned and strides are page multiples, so
//    `base()` and `limit()` are page aligned, hence 16-byte aligned.
// 4. ownership: the PooledStack owns the slot exclusively until dropped, and
//    its pool reference keeps the slab mapped that long.
unsafe impl Stack for PooledStack {
    #[inline]
    fn base(&self) -> StackPointer {
        // corosensei asks for this on every resume: one page-size load, no
        // division. `top` is a non-null mapped address (an mmap never
        // returns 0).
        let page = sys::page_size();
        let slot = self.slot();
        let stride = crate::class::stride_for(self.class(), page);
        let top = slot + stride;
        StackPointer::new(top - color_offset(slot, stride)).unwrap_or(StackPointer::MIN)
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.slot()).unwrap_or(StackPointer::MIN)
    }
}

/// Cache coloring: how far below the top of its slot a stack starts.
///
/// Every slot's top sits at the same offset within a page, so without this
/// the hottest bytes of every coroutine (its saved registers and innermost
/// frames, just below the top) would map to the same few L1 cache sets:
/// with a thousand runnable coroutines each switch would miss. The offset
/// cycles through 16 multiples of 64 bytes, at most 960 bytes; small enough
/// that a task using less than 3 KiB of stack still touches one page only.
/// The extra page at the top of each slot (`class::usable_for`) keeps the
/// full class size usable below the offset.
///
/// The color is taken from the slot address shifted by the stride's
/// power-of-two factor: what remains of the stride is odd, so consecutive
/// slots of a slab step through all 16 colors. (Strides are an even number
/// of pages: the guard page and the color page come on top of a class of
/// two or more pages. Counting pages instead would give 16 KiB and larger
/// classes only 8 colors, and 8 KiB stacks 4.)
#[inline]
fn color_offset(slot: usize, stride: usize) -> usize {
    // A shift by the stride's trailing zeros, not a division.
    ((slot >> stride.trailing_zeros()) % 16) * 64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::{stride_for, SizeClass};

    #[test]
    fn consecutive_slots_take_all_16_colors_in_every_class() {
        let page = 4096;
        for class in SizeClass::all() {
            let stride = stride_for(class, page);
            // A slab may start at any page.
            for base_page in [0usize, 1, 3, 7, 1000] {
                let base = 0x7f00_0000_0000 + base_page * page;
                let mut seen: Vec<usize> = (0..16)
                    .map(|i| color_offset(base + i * stride, stride))
                    .collect();
                seen.sort_unstable();
                seen.dedup();
                assert_eq!(seen.len(), 16, "class {class}, base page {base_page}");
                assert!(seen.iter().all(|&c| c % 64 == 0 && c <= 960));
            }
        }
    }
}
