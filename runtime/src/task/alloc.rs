//! Task memory that each worker recycles itself.
//!
//! A spawn allocates one block (the task: header, closure, output) and the
//! last reference frees it, usually within microseconds. Left to glibc, a
//! burst of spawns grows the worker's thread arena and the burst's end
//! trims it again (`madvise`/`mprotect` on the freed top), so the next burst
//! pays a page fault and an `mprotect` per 4 KiB: measured on the `spawn`
//! workload, 250-460 ns per task in those runs against 130-160 ns when the
//! arena happened not to be trimmed. Go keeps freed goroutines in per-P free
//! lists for the same reason; pinstack keeps freed task blocks in per-worker
//! free lists by size class and hands them to the next spawn.
//!
//! The policy keeps the retained memory bounded by what the worker recently
//! used:
//!
//! - Only worker threads cache ([`enable`] at worker start, [`drain`] at
//!   exit); on any other thread these functions are the global allocator.
//! - Blocks up to [`MAX_CLASS_BYTES`] with alignment up to 16 are rounded up
//!   to a multiple of [`GRANULE`]; larger tasks use the global allocator
//!   directly.
//! - A worker keeps at most the larger of [`FLOOR_BYTES`] and the peak, in
//!   the current or the previous period, of its *outstanding* task bytes
//!   (taken by spawns on this thread minus freed on this thread): enough to
//!   serve a repeat of its recent burst without the allocator. A worker that
//!   frees the tasks another spawned keeps only the floor, and the rest goes
//!   back to the allocator at once.
//! - Every [`DECAY_PERIOD`] each class returns half of its low-water mark
//!   (the blocks that sat unused through the whole period), so an idle
//!   worker gives everything back within about twenty periods. Workers run
//!   [`decay`] from their maintenance pass and before they park, and a
//!   worker that holds cached memory parks for at most one period.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ptr::{self, NonNull};
use std::time::{Duration, Instant};

/// Size classes are multiples of this many bytes.
pub(crate) const GRANULE: usize = 32;
const CLASSES: usize = 32;
/// The largest task block that is cached (1 KiB).
pub(crate) const MAX_CLASS_BYTES: usize = GRANULE * CLASSES;
/// Blocks are allocated with this alignment (what `malloc` gives anyway).
const ALIGN: usize = 16;
/// A worker may always keep this many bytes of freed task blocks.
pub(crate) const FLOOR_BYTES: usize = 1 << 20;
/// How often unused cached blocks are given back.
pub(crate) const DECAY_PERIOD: Duration = Duration::from_secs(1);

/// A cached block: its first word links to the next.
struct FreeBlock {
    next: *mut FreeBlock,
}

/// One thread's free lists. Plain `Cell`s: the cache is thread-local, and it
/// has no destructor (so the thread-local costs no registration or state
/// check); [`drain`] empties it when a worker exits.
struct Cache {
    enabled: Cell<bool>,
    heads: [Cell<*mut FreeBlock>; CLASSES],
    lens: [Cell<u32>; CLASSES],
    /// Per class, the fewest cached blocks since the period started.
    lows: [Cell<u32>; CLASSES],
    /// Bytes cached in all classes.
    bytes: Cell<usize>,
    /// Task bytes taken on this thread minus those freed on it (at least 0).
    outstanding: Cell<usize>,
    /// The peak of `outstanding` in this period and the previous one: the
    /// cap on `bytes` (with the floor).
    peak: Cell<usize>,
    peak_prev: Cell<usize>,
    period_start: Cell<Option<Instant>>,
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            enabled: Cell::new(false),
            heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            lens: [const { Cell::new(0) }; CLASSES],
            lows: [const { Cell::new(0) }; CLASSES],
            bytes: Cell::new(0),
            outstanding: Cell::new(0),
            peak: Cell::new(0),
            peak_prev: Cell::new(0),
            period_start: Cell::new(None),
        }
    };
}

/// The size class of a task layout, `None` for one the cache does not take.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() <= ALIGN && layout.size() <= MAX_CLASS_BYTES {
        Some(layout.size().max(1).div_ceil(GRANULE) - 1)
    } else {
        None
    }
}

#[inline]
fn class_bytes(class: usize) -> usize {
    (class + 1) * GRANULE
}

#[inline]
fn class_layout(class: usize) -> Layout {
    // Cannot fail: a multiple of 32 up to 1 KiB with a power-of-two
    // alignment that divides it.
    Layout::from_size_align(class_bytes(class), ALIGN).expect("task size class layout")
}

/// Allocates memory for a task of `layout` (not zero-sized). Aborts through
/// [`alloc::handle_alloc_error`] when the allocator fails, as `Box` does.
#[inline]
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    debug_assert!(layout.size() > 0);
    let (layout, class) = match class_of(layout) {
        Some(c) => (class_layout(c), Some(c)),
        None => (layout, None),
    };
    if let Some(c) = class {
        if let Some(p) = CACHE.with(|cache| cache.take(c)) {
            return p;
        }
    }
    // SAFETY: the layout has a non-zero size (a task holds at least its
    // header).
    let p = unsafe { alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Frees a task block from [`allocate`].
///
/// # Safety
/// `ptr` came from [`allocate`] with the same `layout`, and nothing uses the
/// block any more.
#[inline]
pub(crate) unsafe fn deallocate(ptr: NonNull<u8>, layout: Layout) {
    let layout = match class_of(layout) {
        Some(c) => {
            if CACHE.with(|cache| cache.keep(c, ptr)) {
                return;
            }
            class_layout(c)
        }
        None => layout,
    };
    // SAFETY: the caller's contract; class blocks were allocated with their
    // class layout, the others with `layout` itself.
    unsafe { alloc::dealloc(ptr.as_ptr(), layout) }
}

/// Starts caching on this thread (a worker starting).
pub(crate) fn enable() {
    CACHE.with(|c| {
        c.enabled.set(true);
        c.period_start.set(Some(Instant::now()));
    });
}

/// Gives every cached block back and stops caching on this thread (a worker
/// exiting).
pub(crate) fn drain() {
    CACHE.with(|c| {
        c.enabled.set(false);
        for class in 0..CLASSES {
            c.release(class, c.lens[class].get());
        }
    });
}

/// Ends the period if it is over at `now`: each class gives back half its
/// low-water mark. Returns whether this thread still caches any memory.
pub(crate) fn decay(now: Instant) -> bool {
    CACHE.with(|c| {
        if !c.enabled.get() {
            return false;
        }
        let start = c.period_start.get().unwrap_or(now);
        if now.saturating_duration_since(start) >= DECAY_PERIOD {
            for class in 0..CLASSES {
                let low = c.lows[class].get();
                c.release(class, low.div_ceil(2));
                c.lows[class].set(c.lens[class].get());
            }
            c.peak_prev.set(c.peak.get());
            c.peak.set(c.outstanding.get());
            c.period_start.set(Some(now));
        }
        c.bytes.get() > 0
    })
}

/// Bytes of freed task blocks this thread keeps for reuse.
#[cfg(test)]
pub(crate) fn cached_bytes() -> usize {
    CACHE.with(|c| c.bytes.get())
}

impl Cache {
    #[inline]
    fn take(&self, class: usize) -> Option<NonNull<u8>> {
        if !self.enabled.get() {
            return None;
        }
        let size = class_bytes(class);
        let out = self.outstanding.get().saturating_add(size);
        self.outstanding.set(out);
        if out > self.peak.get() {
            self.peak.set(out);
        }
        let head = NonNull::new(self.heads[class].get())?;
        // SAFETY: a cached block is one this cache owns (pushed by `keep`,
        // unused since), and its first word holds the link `keep` wrote.
        let next = unsafe { head.as_ptr().read().next };
        self.heads[class].set(next);
        let len = self.lens[class].get() - 1;
        self.lens[class].set(len);
        if len < self.lows[class].get() {
            self.lows[class].set(len);
        }
        self.bytes.set(self.bytes.get() - size);
        Some(head.cast())
    }

    /// Caches a freed block if the cap allows; false: the caller frees it.
    #[inline]
    fn keep(&self, class: usize, ptr: NonNull<u8>) -> bool {
        if !self.enabled.get() {
            return false;
        }
        let size = class_bytes(class);
        self.outstanding
            .set(self.outstanding.get().saturating_sub(size));
        let cap = FLOOR_BYTES.max(self.peak.get()).max(self.peak_prev.get());
        let bytes = self.bytes.get() + size;
        if bytes > cap {
            return false;
        }
        let block = ptr.cast::<FreeBlock>();
        // SAFETY: the block is at least 32 bytes, 16-aligned and unused (the
        // caller's contract in `deallocate`): room for the link.
        unsafe {
            block.as_ptr().write(FreeBlock {
                next: self.heads[class].get(),
            })
        };
        self.heads[class].set(block.as_ptr());
        self.lens[class].set(self.lens[class].get() + 1);
        self.bytes.set(bytes);
        true
    }

    /// Frees up to `n` blocks of `class` to the global allocator.
    fn release(&self, class: usize, n: u32) {
        let layout = class_layout(class);
        for _ in 0..n {
            let Some(head) = NonNull::new(self.heads[class].get()) else {
                break;
            };
            // SAFETY: as in `take`: a cached block with its link.
            let next = unsafe { head.as_ptr().read().next };
            self.heads[class].set(next);
            self.lens[class].set(self.lens[class].get() - 1);
            self.bytes.set(self.bytes.get() - layout.size());
            // SAFETY: the block came from the global allocator with its
            // class layout (`allocate`), and the cache was its only owner.
            unsafe { alloc::dealloc(head.as_ptr().cast(), layout) };
        }
        let len = self.lens[class].get();
        if self.lows[class].get() > len {
            self.lows[class].set(len);
        }
    }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    fn task_layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    /// Runs `f` on a fresh thread with caching on, then drains.
    fn on_worker_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(move || {
            enable();
            f();
            drain();
            assert_eq!(cached_bytes(), 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn classes_round_up_to_the_granule_and_stop_at_the_maximum() {
        assert_eq!(class_of(task_layout(1)), Some(0));
        assert_eq!(class_of(task_layout(32)), Some(0));
        assert_eq!(class_of(task_layout(33)), Some(1));
        assert_eq!(class_of(task_layout(MAX_CLASS_BYTES)), Some(CLASSES - 1));
        assert_eq!(class_of(task_layout(MAX_CLASS_BYTES + 1)), None);
        assert_eq!(
            class_of(Layout::from_size_align(64, 64).unwrap()),
            None,
            "over-aligned tasks bypass the cache"
        );
    }

    #[test]
    fn a_freed_block_is_handed_to_the_next_task_of_its_class() {
        on_worker_thread(|| {
            let a = allocate(task_layout(200));
            // SAFETY: from `allocate` with this layout, unused.
            unsafe { deallocate(a, task_layout(200)) };
            assert_eq!(cached_bytes(), 224);
            // Another size in the same class (193..=224) reuses it.
            let b = allocate(task_layout(220));
            assert_eq!(a, b);
            assert_eq!(cached_bytes(), 0);
            // SAFETY: as above (same class, so the same block layout).
            unsafe { deallocate(b, task_layout(220)) };
        });
    }

    #[test]
    fn other_threads_do_not_cache() {
        std::thread::spawn(|| {
            let a = allocate(task_layout(100));
            // SAFETY: from `allocate` with this layout, unused.
            unsafe { deallocate(a, task_layout(100)) };
            assert_eq!(cached_bytes(), 0);
            assert!(!decay(Instant::now()));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_worker_keeps_no_more_than_the_floor_or_its_own_recent_peak() {
        on_worker_thread(|| {
            // Blocks another thread allocated: nothing was outstanding here,
            // so only the floor is kept.
            let n = 2 * FLOOR_BYTES / 256;
            let blocks: Vec<usize> = std::thread::spawn(move || {
                (0..n)
                    .map(|_| allocate(task_layout(256)).as_ptr() as usize)
                    .collect()
            })
            .join()
            .unwrap();
            for p in blocks {
                // SAFETY: allocated above with this layout, now unused.
                unsafe { deallocate(NonNull::new(p as *mut u8).unwrap(), task_layout(256)) };
            }
            assert_eq!(cached_bytes(), FLOOR_BYTES);
            // Its own burst of 3x the floor raises the cap to that burst.
            let own: Vec<_> = (0..3 * n / 2).map(|_| allocate(task_layout(256))).collect();
            assert_eq!(cached_bytes(), 0, "the burst took the cached blocks first");
            for p in own {
                // SAFETY: allocated above with this layout, now unused.
                unsafe { deallocate(p, task_layout(256)) };
            }
            assert_eq!(cached_bytes(), 3 * FLOOR_BYTES);
        });
    }

    #[test]
    fn unused_blocks_go_back_half_a_low_water_mark_per_period() {
        on_worker_thread(|| {
            let blocks: Vec<_> = (0..1000).map(|_| allocate(task_layout(64))).collect();
            for p in blocks {
                // SAFETY: allocated above with this layout, now unused.
                unsafe { deallocate(p, task_layout(64)) };
            }
            // The low-water mark of the first period is 0 (the blocks were
            // taken during it), so its end releases nothing; a check within
            // the next period changes nothing; that period saw all 1,000
            // unused, so its end releases 500, the next 250, ...
            let mut now = Instant::now() + DECAY_PERIOD * 2;
            assert!(decay(now));
            assert_eq!(cached_bytes(), 64_000);
            assert!(decay(now + DECAY_PERIOD / 2));
            assert_eq!(cached_bytes(), 64_000);
            let mut expected = 1000;
            while expected > 0 {
                now += DECAY_PERIOD;
                let held = decay(now);
                expected -= (expected as u32).div_ceil(2) as usize;
                assert_eq!(cached_bytes(), expected * 64);
                assert_eq!(held, expected > 0);
            }
        });
    }
}
