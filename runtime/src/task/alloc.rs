//! Task memory that the workers recycle themselves.
//!
//! A spawn allocates one block (the task: header, closure, output) and the
//! last reference frees it, usually within microseconds. Left to glibc, a
//! burst of spawns grows the worker's thread arena and the burst's end
//! trims it again (`madvise`/`mprotect` on the freed top), so the next burst
//! pays a page fault and an `mprotect` per 4 KiB: measured on the `spawn`
//! workload, 250-460 ns per task in those runs against 130-160 ns when the
//! arena happened not to be trimmed. Go keeps freed goroutines in per-P free
//! lists with a global list behind them for the same reason; pinstack does
//! the same with task blocks:
//!
//! - Blocks up to [`MAX_CLASS_BYTES`] with alignment up to 16 are rounded up
//!   to a multiple of [`GRANULE`]; larger tasks use the global allocator
//!   directly.
//! - Each worker thread keeps a free list per size class of at most
//!   [`LOCAL_BLOCKS`] blocks, used without synchronisation. A free that finds
//!   the list full moves the whole list, as one batch, to the process-wide
//!   *depot*; a spawn that finds its list empty takes a batch from the depot
//!   before it asks the allocator. So a task spawned on one worker and freed
//!   on another comes back to the spawning side through the depot, one lock
//!   per [`LOCAL_BLOCKS`] tasks.
//! - Nothing else caps the cache: a block is only ever allocated when the
//!   cache of its class is empty, so what it holds never exceeds the recent
//!   peak of live task memory (plus a list per worker). What it holds decays:
//!   every [`DECAY_PERIOD`] each list and each depot class gives back half of
//!   its low-water mark (what sat unused through the whole period), so an
//!   idle process returns everything within about twenty periods. Workers
//!   run [`decay`] from their maintenance pass and before they park, and a
//!   worker parks for at most one period while memory is cached.
//! - Only worker threads cache ([`enable`] at worker start, [`drain`] at
//!   exit; the last worker to exit empties the depot); on other threads these
//!   functions are the global allocator. Under loom the cache is compiled out.

use std::alloc::{self, Layout};
#[cfg(not(pinstack_loom))]
use std::cell::Cell;
#[cfg(not(pinstack_loom))]
use std::ptr;
use std::ptr::NonNull;
use std::time::Duration;
#[cfg(not(pinstack_loom))]
use std::time::Instant;

/// Size classes are multiples of this many bytes.
pub(crate) const GRANULE: usize = 32;
const CLASSES: usize = 32;
/// The largest task block that is cached (1 KiB).
pub(crate) const MAX_CLASS_BYTES: usize = GRANULE * CLASSES;
/// Blocks are allocated with this alignment (what `malloc` gives anyway).
const ALIGN: usize = 16;
/// A worker's free list of one class holds at most this many blocks; the
/// depot takes and gives batches of this size.
#[cfg_attr(pinstack_loom, allow(dead_code))]
pub(crate) const LOCAL_BLOCKS: u32 = 64;
/// How often unused cached blocks are given back.
pub(crate) const DECAY_PERIOD: Duration = Duration::from_secs(1);

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
    let layout = match class_of(layout) {
        Some(c) => {
            #[cfg(not(pinstack_loom))]
            if let Some(p) = LOCAL.with(|l| l.take(c)) {
                return p;
            }
            class_layout(c)
        }
        None => layout,
    };
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
            #[cfg(not(pinstack_loom))]
            if LOCAL.with(|l| l.keep(c, ptr)) {
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

#[cfg(pinstack_loom)]
mod cache_off {
    //! Under loom every task goes to the global allocator.
    use std::time::Instant;
    pub(crate) fn enable() {}
    pub(crate) fn drain() {}
    pub(crate) fn decay(_now: Instant) -> bool {
        false
    }
    pub(crate) fn depot_bytes() -> usize {
        0
    }
}
#[cfg(pinstack_loom)]
pub(crate) use cache_off::{decay, depot_bytes, drain, enable};

#[cfg(not(pinstack_loom))]
pub(crate) use cache::{decay, depot_bytes, drain, enable};

#[cfg(not(pinstack_loom))]
use cache::LOCAL;

#[cfg(all(test, not(pinstack_loom)))]
use cache::{depot_blocks, local_bytes};

#[cfg(not(pinstack_loom))]
mod cache {
    use super::*;
    // The depot's lock is a plain std `Mutex`: the cache is compiled out
    // under loom (a `static` loom mutex cannot exist), so the shim has
    // nothing to check here; the free lists are thread-local.
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::{Mutex, MutexGuard, PoisonError};

    /// A freed block: its first word links to the next.
    struct FreeBlock {
        next: *mut FreeBlock,
    }

    /// A null-terminated chain of free blocks of one class.
    struct Batch {
        head: NonNull<FreeBlock>,
        len: u32,
    }

    // SAFETY: a batch owns its blocks (no other pointer to them is used
    // until a thread takes the batch out of the depot).
    unsafe impl Send for Batch {}

    /// One thread's free lists. Plain `Cell`s: the lists are thread-local,
    /// and they have no destructor (so the thread-local costs no
    /// registration or state check); [`drain`] empties them when a worker
    /// exits.
    pub(super) struct Local {
        enabled: Cell<bool>,
        heads: [Cell<*mut FreeBlock>; CLASSES],
        lens: [Cell<u32>; CLASSES],
        /// Per class, the fewest blocks held since the period started.
        lows: [Cell<u32>; CLASSES],
        period_start: Cell<Option<Instant>>,
    }

    thread_local! {
        pub(super) static LOCAL: Local = const {
            Local {
                enabled: Cell::new(false),
                heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
                lens: [const { Cell::new(0) }; CLASSES],
                lows: [const { Cell::new(0) }; CLASSES],
                period_start: Cell::new(None),
            }
        };
    }

    struct Depot {
        classes: [Vec<Batch>; CLASSES],
        /// Per class, the fewest batches held since the period started.
        lows: [usize; CLASSES],
        period_start: Option<Instant>,
        /// Worker threads with caching on.
        threads: usize,
    }

    static DEPOT: Mutex<Depot> = Mutex::new(Depot {
        classes: [const { Vec::new() }; CLASSES],
        lows: [0; CLASSES],
        period_start: None,
        threads: 0,
    });

    /// Bytes the depot holds: changed under its lock, read without it (by
    /// `decay` before every park, and by `metrics()`).
    static DEPOT_BYTES: AtomicUsize = AtomicUsize::new(0);

    fn depot() -> MutexGuard<'static, Depot> {
        // Nothing panics while holding the lock (pushes and pops of
        // `Vec<Batch>`, whose allocation failure aborts), so a poisoned lock
        // still holds consistent lists.
        DEPOT.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Frees a chain of `n` blocks of `class` to the global allocator.
    ///
    /// # Safety
    /// The chain's blocks are owned by the caller and unused.
    unsafe fn free_chain(class: usize, mut head: *mut FreeBlock, n: u32) {
        let layout = class_layout(class);
        for _ in 0..n {
            let Some(block) = NonNull::new(head) else {
                break;
            };
            // SAFETY: a cached block holds the link written when it was
            // cached (the caller's contract: owned, unused).
            head = unsafe { block.as_ptr().read().next };
            // SAFETY: the block came from the global allocator with its
            // class layout (`allocate`), and the chain was its only owner.
            unsafe { alloc::dealloc(block.as_ptr().cast(), layout) };
        }
    }

    impl Local {
        #[inline]
        pub(super) fn take(&self, class: usize) -> Option<NonNull<u8>> {
            if !self.enabled.get() {
                return None;
            }
            let head = match NonNull::new(self.heads[class].get()) {
                Some(h) => h,
                None => self.refill(class)?,
            };
            // SAFETY: a cached block is one this thread owns (pushed by
            // `keep` or taken from the depot, unused since), and its first
            // word holds its link.
            let next = unsafe { head.as_ptr().read().next };
            self.heads[class].set(next);
            let len = self.lens[class].get() - 1;
            self.lens[class].set(len);
            if len < self.lows[class].get() {
                self.lows[class].set(len);
            }
            Some(head.cast())
        }

        /// The list is empty: takes a batch from the depot.
        #[cold]
        fn refill(&self, class: usize) -> Option<NonNull<FreeBlock>> {
            let batch = {
                let mut d = depot();
                let batch = d.classes[class].pop()?;
                let left = d.classes[class].len();
                if left < d.lows[class] {
                    d.lows[class] = left;
                }
                DEPOT_BYTES.fetch_sub(batch.len as usize * class_bytes(class), Relaxed);
                batch
            };
            self.heads[class].set(batch.head.as_ptr());
            self.lens[class].set(batch.len);
            Some(batch.head)
        }

        /// Caches a freed block; false: the caller frees it.
        #[inline]
        pub(super) fn keep(&self, class: usize, ptr: NonNull<u8>) -> bool {
            if !self.enabled.get() {
                return false;
            }
            if self.lens[class].get() >= LOCAL_BLOCKS {
                self.spill(class);
            }
            let block = ptr.cast::<FreeBlock>();
            // SAFETY: the block is at least 32 bytes, 16-aligned and unused
            // (the caller's contract in `deallocate`): room for the link.
            unsafe {
                block.as_ptr().write(FreeBlock {
                    next: self.heads[class].get(),
                })
            };
            self.heads[class].set(block.as_ptr());
            self.lens[class].set(self.lens[class].get() + 1);
            true
        }

        /// The list is full: moves it, whole, to the depot.
        #[cold]
        fn spill(&self, class: usize) {
            let Some(head) = NonNull::new(self.heads[class].replace(ptr::null_mut())) else {
                return;
            };
            let len = self.lens[class].replace(0);
            self.lows[class].set(0);
            let mut d = depot();
            DEPOT_BYTES.fetch_add(len as usize * class_bytes(class), Relaxed);
            d.classes[class].push(Batch { head, len });
        }

        /// Frees up to `n` blocks of `class` to the global allocator.
        fn release(&self, class: usize, n: u32) {
            let n = n.min(self.lens[class].get());
            let head = self.heads[class].get();
            let mut rest = head;
            for _ in 0..n {
                // SAFETY: within the list's length: a cached block with its
                // link.
                rest = unsafe { (*rest).next };
            }
            // Cut the first `n` off: `rest` is the new head.
            self.heads[class].set(rest);
            self.lens[class].set(self.lens[class].get() - n);
            let len = self.lens[class].get();
            if self.lows[class].get() > len {
                self.lows[class].set(len);
            }
            // SAFETY: the first `n` blocks are cut off the list: owned here.
            unsafe { free_chain(class, head, n) };
        }

        #[cfg(test)]
        fn cached_bytes(&self) -> usize {
            (0..CLASSES)
                .map(|c| self.lens[c].get() as usize * class_bytes(c))
                .sum()
        }
    }

    /// Starts caching on this thread (a worker starting).
    pub(crate) fn enable() {
        LOCAL.with(|l| {
            if !l.enabled.replace(true) {
                l.period_start.set(Some(Instant::now()));
                depot().threads += 1;
            }
        });
    }

    /// Gives this thread's cached blocks back and stops caching on it (a
    /// worker exiting); the last such thread empties the depot too.
    pub(crate) fn drain() {
        LOCAL.with(|l| {
            if !l.enabled.replace(false) {
                return;
            }
            for class in 0..CLASSES {
                l.release(class, u32::MAX);
            }
            let mut d = depot();
            d.threads -= 1;
            if d.threads == 0 {
                let batches: Vec<(usize, Batch)> = take_all(&mut d);
                drop(d);
                free_batches(batches);
            }
        });
    }

    fn take_all(d: &mut Depot) -> Vec<(usize, Batch)> {
        DEPOT_BYTES.store(0, Relaxed);
        let mut out = Vec::new();
        for (class, list) in d.classes.iter_mut().enumerate() {
            out.extend(list.drain(..).map(|b| (class, b)));
        }
        d.lows = [0; CLASSES];
        out
    }

    fn free_batches(batches: Vec<(usize, Batch)>) {
        for (class, b) in batches {
            // SAFETY: the batch was taken out of the depot: owned here.
            unsafe { free_chain(class, b.head.as_ptr(), b.len) };
        }
    }

    /// Ends this thread's period if over at `now`: each list gives back
    /// half its low-water mark, and the depot's period is checked too (so
    /// the shared lock is taken at most once per period per worker, not on
    /// every maintenance pass or park). Returns whether any task memory is
    /// still cached (here or in the depot).
    pub(crate) fn decay(now: Instant) -> bool {
        LOCAL.with(|l| {
            if !l.enabled.get() {
                return false;
            }
            let start = l.period_start.get().unwrap_or(now);
            if now.saturating_duration_since(start) >= DECAY_PERIOD {
                for class in 0..CLASSES {
                    l.release(class, l.lows[class].get().div_ceil(2));
                    l.lows[class].set(l.lens[class].get());
                }
                l.period_start.set(Some(now));
                // Another worker may be at it: skip rather than wait.
                if let Ok(mut d) = DEPOT.try_lock() {
                    let freed = decay_depot(&mut d, now);
                    drop(d);
                    free_batches(freed);
                }
            }
            DEPOT_BYTES.load(Relaxed) > 0 || l.lens.iter().any(|n| n.get() > 0)
        })
    }

    /// Takes out the batches the depot's period end gives back.
    fn decay_depot(d: &mut Depot, now: Instant) -> Vec<(usize, Batch)> {
        let start = *d.period_start.get_or_insert(now);
        if now.saturating_duration_since(start) < DECAY_PERIOD {
            return Vec::new();
        }
        d.period_start = Some(now);
        let mut out = Vec::new();
        for class in 0..CLASSES {
            let n = d.lows[class].div_ceil(2);
            let list = &mut d.classes[class];
            // The oldest batches (the front) go first.
            let n = n.min(list.len());
            out.extend(list.drain(..n).map(|b| (class, b)));
            d.lows[class] = d.classes[class].len();
        }
        let freed: usize = out
            .iter()
            .map(|(c, b)| b.len as usize * class_bytes(*c))
            .sum();
        DEPOT_BYTES.fetch_sub(freed, Relaxed);
        out
    }

    /// Bytes of task blocks this thread's free lists hold.
    #[cfg(test)]
    pub(super) fn local_bytes() -> usize {
        LOCAL.with(|l| l.cached_bytes())
    }

    /// Bytes of task blocks the depot holds.
    pub(crate) fn depot_bytes() -> usize {
        DEPOT_BYTES.load(Relaxed)
    }

    /// Blocks of `class` the depot holds.
    #[cfg(test)]
    pub(super) fn depot_blocks(class: usize) -> usize {
        depot().classes[class].iter().map(|b| b.len as usize).sum()
    }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    //! The depot is process-wide and the runtime tests in this binary use it
    //! too; their tasks are all larger than 96 bytes, so these tests use the
    //! classes of 32, 64 and 96 bytes, which no task reaches.
    use super::*;
    use std::sync::mpsc;

    fn small(size: usize) -> Layout {
        assert!(size <= 3 * GRANULE, "keep to the classes no task uses");
        Layout::from_size_align(size, 8).unwrap()
    }

    /// Runs `f` on a fresh thread with caching on, then drains.
    fn on_worker_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        std::thread::spawn(move || {
            enable();
            let r = f();
            drain();
            assert_eq!(local_bytes(), 0);
            r
        })
        .join()
        .unwrap()
    }

    #[test]
    fn classes_round_up_to_the_granule_and_stop_at_the_maximum() {
        let l = |size| Layout::from_size_align(size, 8).unwrap();
        assert_eq!(class_of(l(1)), Some(0));
        assert_eq!(class_of(l(32)), Some(0));
        assert_eq!(class_of(l(33)), Some(1));
        assert_eq!(class_of(l(MAX_CLASS_BYTES)), Some(CLASSES - 1));
        assert_eq!(class_of(l(MAX_CLASS_BYTES + 1)), None);
        assert_eq!(
            class_of(Layout::from_size_align(64, 64).unwrap()),
            None,
            "over-aligned tasks bypass the cache"
        );
    }

    #[test]
    fn a_freed_block_is_handed_to_the_next_task_of_its_class() {
        on_worker_thread(|| {
            let a = allocate(small(40));
            // SAFETY: from `allocate` with this layout, unused.
            unsafe { deallocate(a, small(40)) };
            assert_eq!(local_bytes(), 64);
            // Another size of the same class (33..=64) reuses it.
            let b = allocate(small(64));
            assert_eq!(a, b);
            assert_eq!(local_bytes(), 0);
            // SAFETY: as above (same class, so the same block layout).
            unsafe { deallocate(b, small(64)) };
        });
    }

    #[test]
    fn other_threads_do_not_cache() {
        std::thread::spawn(|| {
            let a = allocate(small(80));
            // SAFETY: from `allocate` with this layout, unused.
            unsafe { deallocate(a, small(80)) };
            assert_eq!(local_bytes(), 0);
            assert!(!decay(Instant::now()));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_full_list_goes_to_the_depot_and_serves_another_worker() {
        // Worker A frees a list and one more block: the list moves to the
        // depot whole; worker B, whose list is empty, takes that batch.
        let (to_b, from_a) = mpsc::channel::<Vec<usize>>();
        let (done, wait_b) = mpsc::channel::<()>();
        let a = std::thread::spawn(move || {
            enable();
            let blocks: Vec<_> = (0..=LOCAL_BLOCKS).map(|_| allocate(small(96))).collect();
            let addrs: Vec<usize> = blocks.iter().map(|p| p.as_ptr() as usize).collect();
            for p in blocks {
                // SAFETY: allocated above with this layout, now unused.
                unsafe { deallocate(p, small(96)) };
            }
            assert_eq!(local_bytes(), 96, "one block left after the spill");
            assert!(depot_blocks(2) >= LOCAL_BLOCKS as usize);
            to_b.send(addrs).unwrap();
            // Stay enabled until B is done, so the depot is not emptied as
            // the last worker exits.
            wait_b.recv().unwrap();
            drain();
        });
        let addrs = from_a.recv().unwrap();
        let got = on_worker_thread(move || {
            let p = allocate(small(96));
            // SAFETY: from `allocate` with this layout, unused.
            unsafe { deallocate(p, small(96)) };
            p.as_ptr() as usize
        });
        done.send(()).unwrap();
        a.join().unwrap();
        assert!(
            addrs.contains(&got),
            "worker B allocated a fresh block instead of A's spilled one"
        );
    }

    #[test]
    fn unused_blocks_go_back_half_a_low_water_mark_per_period() {
        on_worker_thread(|| {
            let n = LOCAL_BLOCKS as usize;
            let blocks: Vec<_> = (0..n).map(|_| allocate(small(20))).collect();
            for p in blocks {
                // SAFETY: allocated above with this layout, now unused.
                unsafe { deallocate(p, small(20)) };
            }
            assert_eq!(local_bytes(), n * 32);
            // The low-water mark of the first period is 0 (the blocks were
            // taken during it), so its end releases nothing; a check within
            // the next period changes nothing; that period saw all 64 unused,
            // so its end releases 32, the next 16, ...
            let mut now = Instant::now() + DECAY_PERIOD * 2;
            assert!(decay(now));
            assert_eq!(local_bytes(), n * 32);
            assert!(decay(now + DECAY_PERIOD / 2));
            assert_eq!(local_bytes(), n * 32);
            let mut expected = n;
            while expected > 0 {
                now += DECAY_PERIOD;
                decay(now);
                expected -= expected.div_ceil(2);
                assert_eq!(local_bytes(), expected * 32);
            }
        });
    }
}
