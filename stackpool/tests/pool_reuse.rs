//! Reuse, caches, limits, sampling, resident control and NUMA binding,
//! observed through addresses, `PoolStats`, `mincore` and /proc.

use std::sync::mpsc;

use corosensei::{Coroutine, CoroutineResult};
use pinstack_stackpool::{
    GuardMode, Limit, PoolError, PoolStats, PooledStack, SizeClass, StackPool,
};

const KIB: usize = 1024;

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Writes one byte into every page of the top `bytes` of the stack.
fn touch_top(stack: &PooledStack, bytes: usize) {
    let r = stack.usable_range();
    let mut addr = r.end - page();
    while addr >= r.end - bytes {
        // SAFETY: `addr` lies in the usable range of a stack we own and
        // nothing runs on it.
        unsafe { std::ptr::write_volatile(addr as *mut u8, 0xa5) };
        addr -= page();
    }
}

fn assert_sources_add_up(s: &PoolStats) {
    assert_eq!(
        s.acquires,
        s.local_hits + s.shared_hits + s.reused_empty + s.fresh_carves,
        "{s:?}"
    );
}

#[test]
fn released_stack_is_handed_out_again_at_the_same_address() {
    let pool = StackPool::new().unwrap();
    let a = pool.acquire(10 * KIB).unwrap();
    assert_eq!(a.class().usable_bytes(), 16 * KIB);
    let range = a.usable_range();
    // The class size plus the color page at the top (see `usable_range`).
    assert_eq!(range.end - range.start, 16 * KIB + page());
    assert_eq!(a.guard_range().end, range.start);
    drop(a);
    let b = pool.acquire(16 * KIB).unwrap();
    assert_eq!(b.usable_range(), range);
    drop(b);
    let s = pool.stats();
    assert_eq!(s.acquires, 2);
    assert_eq!(s.releases, 2);
    assert_eq!(s.fresh_carves, 1);
    assert_eq!(s.local_hits, 1);
    assert_eq!(s.live_stacks, 1);
    assert_eq!(s.slabs, 1);
    assert_sources_add_up(&s);
}

#[test]
fn stacks_of_different_classes_and_pools_never_mix() {
    let p1 = StackPool::new().unwrap();
    let p2 = StackPool::new().unwrap();
    let a = p1.acquire(8 * KIB).unwrap();
    let b = p1.acquire(64 * KIB).unwrap();
    let c = p2.acquire(8 * KIB).unwrap();
    let (ra, rb, rc) = (a.usable_range(), b.usable_range(), c.usable_range());
    drop((a, b, c));
    // Each pool and class hands back exactly its own stack.
    assert_eq!(p2.acquire(8 * KIB).unwrap().usable_range(), rc);
    assert_eq!(p1.acquire(64 * KIB).unwrap().usable_range(), rb);
    assert_eq!(p1.acquire(8 * KIB).unwrap().usable_range(), ra);
    assert_eq!(p1.stats().fresh_carves, 2);
    assert_eq!(p2.stats().fresh_carves, 1);
}

#[test]
fn stacks_are_distinct_aligned_and_stats_are_consistent() {
    let pool = StackPool::new().unwrap();
    let stacks: Vec<_> = (0..100).map(|_| pool.acquire(0).unwrap()).collect();
    let mut ranges: Vec<_> = stacks.iter().map(|s| s.usable_range()).collect();
    ranges.sort_by_key(|r| r.start);
    for w in ranges.windows(2) {
        assert!(
            w[0].end <= w[1].start - page(),
            "stacks overlap or share a guard"
        );
    }
    for r in &ranges {
        assert_eq!(r.start % page(), 0);
        assert_eq!(r.end % 16, 0);
    }
    let s = pool.stats();
    assert_eq!(s.checked_out(), 100);
    assert_eq!(s.fresh_carves, 100);
    assert_eq!(s.live_stacks, 100);
    assert_eq!(s.per_class[0].live_stacks, 100);
    assert!(s.bytes_reserved >= 100 * (8 * KIB + page()));
    drop(stacks);
    let s = pool.stats();
    assert_eq!(s.checked_out(), 0);
    assert_sources_add_up(&s);
}

#[test]
fn stack_moves_to_another_thread_and_lands_in_that_threads_cache() {
    let pool = StackPool::new().unwrap();
    let stack = pool.acquire(32 * KIB).unwrap();
    let range = stack.usable_range();
    let (tx, rx) = mpsc::channel();
    let p = pool.clone();
    let worker = std::thread::spawn(move || {
        drop(stack); // released on this thread: into its cache
        let again = p.acquire(32 * KIB).unwrap();
        tx.send(again.usable_range()).unwrap();
        let s = p.stats();
        assert_eq!(s.local_hits, 1, "{s:?}");
        // Thread exit returns the cached stack to the shared list.
    });
    worker.join().unwrap();
    assert_eq!(rx.recv().unwrap(), range);
    let before = pool.stats();
    let back = pool.acquire(32 * KIB).unwrap();
    assert_eq!(
        back.usable_range(),
        range,
        "the exited thread's cache was not returned"
    );
    let after = pool.stats();
    assert_eq!(after.shared_hits, before.shared_hits + 1);
    assert_eq!(after.fresh_carves, 1);
    assert_sources_add_up(&after);
}

#[test]
fn cross_thread_churn_returns_every_stack() {
    let pool = StackPool::builder()
        .thread_cache_per_class(8)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::sync_channel::<PooledStack>(64);
    let p = pool.clone();
    let producer = std::thread::spawn(move || {
        for i in 0..20_000usize {
            tx.send(p.acquire((i % 3) * 16 * KIB).unwrap()).unwrap();
        }
    });
    let consumer = std::thread::spawn(move || {
        let mut n = 0;
        for stack in rx {
            n += 1;
            drop(stack);
        }
        n
    });
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), 20_000);
    let s = pool.stats();
    assert_eq!(s.acquires, 20_000);
    assert_eq!(s.releases, 20_000);
    assert_sources_add_up(&s);
    // Stacks flowed producer -> consumer, so most came back through the
    // shared lists; far fewer than 20,000 were ever carved.
    assert!(s.fresh_carves < 1_000, "{s:?}");
}

#[test]
fn full_caches_spill_to_shared_then_to_the_os() {
    let pool = StackPool::builder()
        .thread_cache_per_class(2)
        .shared_cache_per_class(1)
        .build()
        .unwrap();
    let stacks: Vec<_> = (0..6).map(|_| pool.acquire(8 * KIB).unwrap()).collect();
    for s in &stacks {
        touch_top(s, 8 * KIB);
    }
    let emptied: Vec<_> = stacks.iter().map(|s| s.usable_range()).collect();
    drop(stacks);
    // cap 2 keeps 1 on spill: thread cache 2, shared 1, the other 3 emptied.
    let s = pool.stats();
    let c = s.per_class[0];
    assert_eq!(c.live_stacks, 3, "{s:?}");
    assert_eq!(c.shared_cached, 1);
    assert_eq!(c.empty_slots, 3);
    assert_eq!(s.released_to_os, 3);
    // Exactly 3 stacks still hold their (touched) pages.
    assert_eq!(pool.measure_resident_bytes().unwrap(), 3 * 8 * KIB);
    let _ = emptied;
}

#[test]
fn trim_gives_back_cached_pages_and_slots_are_reused_first() {
    let pool = StackPool::new().unwrap();
    let s = pool.acquire(16 * KIB).unwrap();
    touch_top(&s, 16 * KIB);
    assert_eq!(s.touched_bytes(), 16 * KIB);
    let range = s.usable_range();
    drop(s);
    assert_eq!(pool.measure_resident_bytes().unwrap(), 16 * KIB);
    pool.trim();
    assert_eq!(pool.measure_resident_bytes().unwrap(), 0);
    let st = pool.stats();
    assert_eq!(st.released_to_os, 1);
    assert_eq!(st.live_stacks, 0);
    let again = pool.acquire(16 * KIB).unwrap();
    assert_eq!(again.usable_range(), range);
    assert_eq!(again.touched_bytes(), 0);
    let st = pool.stats();
    assert_eq!(st.reused_empty, 1);
    assert_eq!(st.fresh_carves, 1);
    assert_sources_add_up(&st);
}

#[test]
fn released_stack_keeps_at_most_the_resident_target() {
    let pool = StackPool::builder()
        .resident_target_bytes(64 * KIB)
        .build()
        .unwrap();
    let s = pool.acquire(256 * KIB).unwrap();
    touch_top(&s, 256 * KIB);
    assert_eq!(s.touched_bytes(), 256 * KIB);
    drop(s);
    let s = pool.acquire(256 * KIB).unwrap();
    // The target, plus the color page above the class size.
    assert_eq!(s.touched_bytes(), 64 * KIB + page());
    drop(s);
    // A class at the target is left alone.
    let small = pool.acquire(64 * KIB).unwrap();
    touch_top(&small, 64 * KIB);
    drop(small);
    assert_eq!(pool.acquire(64 * KIB).unwrap().touched_bytes(), 64 * KIB);
}

#[test]
fn sampled_acquisitions_keep_only_the_top_page_and_record_the_high_water_mark() {
    let pool = StackPool::builder().sample_every(2).build().unwrap();
    let first = pool.acquire(64 * KIB).unwrap();
    assert!(!first.is_sampled());
    touch_top(&first, 64 * KIB);
    drop(first);
    let second = pool.acquire(64 * KIB).unwrap();
    assert!(second.is_sampled());
    // Only the top page may stay (every coroutine touches it first).
    assert_eq!(
        second.touched_bytes(),
        page(),
        "a sampled stack must start with its top page at most"
    );
    touch_top(&second, 20 * KIB);
    let expect = (20 * KIB).div_ceil(page()) * page();
    assert_eq!(second.touched_bytes(), expect);
    drop(second);
    assert!(!pool.acquire(64 * KIB).unwrap().is_sampled());
    let s = pool.stats();
    let c = s.per_class[SizeClass::for_hint(64 * KIB).unwrap().index()];
    assert_eq!(s.samples, 1);
    assert_eq!(c.samples, 1);
    assert_eq!(c.sampled_touched_max, expect);
    assert_eq!(c.sampled_touched_mean, expect);
    assert_eq!(s.bytes_resident, expect * c.live_stacks);
}

#[test]
fn sampling_off_never_samples() {
    let pool = StackPool::builder().sample_every(0).build().unwrap();
    for _ in 0..100 {
        assert!(!pool.acquire(0).unwrap().is_sampled());
    }
    assert_eq!(pool.stats().samples, 0);
    assert_eq!(pool.stats().bytes_resident, 0);
}

#[test]
fn max_stacks_is_a_recoverable_error() {
    let pool = StackPool::builder().max_stacks(3).build().unwrap();
    let held: Vec<_> = (0..3).map(|_| pool.acquire(0).unwrap()).collect();
    let err = pool.acquire(0).unwrap_err();
    assert!(
        matches!(
            err,
            PoolError::LimitReached {
                limit: Limit::Stacks,
                value: 3
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_stacks"), "{err}");
    drop(held);
    assert!(pool.acquire(0).is_ok());
}

#[test]
fn max_reserved_bytes_stops_new_slabs() {
    // guard page + 8 KiB class + color page
    let stride = 8 * KIB + 2 * page();
    let pool = StackPool::builder()
        .slab_bytes(stride)
        .max_reserved_bytes(2 * stride)
        .build()
        .unwrap();
    let a = pool.acquire(0).unwrap();
    let b = pool.acquire(0).unwrap();
    let err = pool.acquire(0).unwrap_err();
    assert!(
        matches!(
            err,
            PoolError::LimitReached {
                limit: Limit::ReservedBytes,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_reserved_bytes"), "{err}");
    assert_eq!(pool.stats().bytes_reserved, 2 * stride);
    assert_eq!(pool.stats().slabs, 2);
    drop(a);
    assert!(pool.acquire(0).is_ok());
    drop(b);
}

#[test]
fn hint_too_large_is_an_error_not_a_panic() {
    let pool = StackPool::new().unwrap();
    let err = pool.acquire((8 << 20) + 1).unwrap_err();
    assert!(matches!(err, PoolError::HintTooLarge { .. }), "{err:?}");
    assert!(pool.acquire(8 << 20).is_ok());
}

#[test]
fn coroutine_runs_on_a_pooled_stack_and_returns_it() {
    #[inline(never)]
    fn recurse(depth: u32) -> u64 {
        let buf = std::hint::black_box([depth as u8; 256]);
        if depth == 0 {
            buf[0] as u64
        } else {
            recurse(depth - 1) + buf[7] as u64
        }
    }
    let pool = StackPool::builder().sample_every(1).build().unwrap();
    let stack = pool.acquire(64 * KIB).unwrap();
    let range = stack.usable_range();
    let mut co = Coroutine::with_stack(stack, |y, n: u32| {
        y.suspend(recurse(n));
        recurse(n / 2)
    });
    assert!(matches!(co.resume(100), CoroutineResult::Yield(_)));
    assert!(matches!(co.resume(0), CoroutineResult::Return(_)));
    let stack = co.into_stack();
    // 100 frames of >= 256 bytes: at least 25 KiB of the stack were used.
    assert!(
        stack.touched_bytes() >= 25 * KIB,
        "{}",
        stack.touched_bytes()
    );
    drop(stack);
    let s = pool.stats();
    let c = s.per_class[SizeClass::for_hint(64 * KIB).unwrap().index()];
    assert!(c.sampled_touched_max >= 25 * KIB, "{c:?}");
    assert_eq!(pool.acquire(64 * KIB).unwrap().usable_range(), range);
}

#[test]
fn numa_bound_pool_shows_bind_in_numa_maps() {
    let pool = StackPool::builder().numa_node(Some(0)).build().unwrap();
    let stack = pool.acquire(16 * KIB).unwrap();
    touch_top(&stack, 16 * KIB);
    let addr = stack.usable_range().start;
    let maps = std::fs::read_to_string("/proc/self/numa_maps").unwrap();
    let line = maps
        .lines()
        .filter_map(|l| {
            let start = usize::from_str_radix(l.split_whitespace().next()?, 16).ok()?;
            (start <= addr).then_some((start, l))
        })
        .max_by_key(|(start, _)| *start)
        .map(|(_, l)| l)
        .expect("a numa_maps line below the stack");
    assert!(line.contains("bind:0"), "{line}");
    assert!(
        line.contains("N0="),
        "touched pages should be on node 0: {line}"
    );
}

#[test]
fn numa_node_that_does_not_exist_is_a_typed_error() {
    let pool = StackPool::builder().numa_node(Some(1000)).build().unwrap();
    let err = pool.acquire(0).unwrap_err();
    assert!(matches!(err, PoolError::Numa { node: 1000, .. }), "{err:?}");
    assert!(err.to_string().contains("node 1000"), "{err}");
}

#[test]
fn guard_mode_is_resolved_and_forcible() {
    let auto = StackPool::new().unwrap();
    assert_ne!(auto.guard_mode(), GuardMode::Auto);
    let forced = StackPool::builder()
        .guard(GuardMode::Mprotect)
        .build()
        .unwrap();
    assert_eq!(forced.guard_mode(), GuardMode::Mprotect);
}

#[test]
fn handles_and_stacks_are_send_and_sync_as_documented() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<StackPool>();
    sync::<StackPool>();
    send::<PooledStack>();
}

#[test]
fn zero_thread_cache_sends_every_release_to_the_shared_list() {
    let pool = StackPool::builder()
        .thread_cache_per_class(0)
        .build()
        .unwrap();
    let a = pool.acquire(0).unwrap();
    let range = a.usable_range();
    drop(a);
    assert_eq!(pool.stats().per_class[0].shared_cached, 1);
    let b = pool.acquire(0).unwrap();
    assert_eq!(b.usable_range(), range);
    let s = pool.stats();
    assert_eq!(s.shared_hits, 1);
    assert_eq!(s.local_hits, 0);
}

#[test]
fn stack_dropped_by_a_later_tls_destructor_goes_to_the_shared_list() {
    use std::cell::RefCell;
    thread_local! {
        static HOLD: RefCell<Option<PooledStack>> = const { RefCell::new(None) };
    }
    let pool = StackPool::new().unwrap();
    let p = pool.clone();
    let range = std::thread::spawn(move || {
        // Register HOLD's destructor before the pool's thread cache exists:
        // destructors run in reverse order, so the cache is torn down first
        // and the stack is released after it, from HOLD's destructor.
        HOLD.with(|h| assert!(h.borrow().is_none()));
        let s = p.acquire(0).unwrap();
        let range = s.usable_range();
        HOLD.with(|h| *h.borrow_mut() = Some(s));
        range
    })
    .join()
    .unwrap();
    let s = pool.stats();
    assert_eq!(s.releases, 1, "{s:?}");
    assert_eq!(s.per_class[0].shared_cached, 1, "{s:?}");
    assert_eq!(pool.acquire(0).unwrap().usable_range(), range);
    assert_eq!(pool.stats().shared_hits, 1);
}

/// `n` stacks of 8 KiB from `pool`, each with all its pages touched.
fn touched_8k(pool: &StackPool, n: usize) -> Vec<PooledStack> {
    let stacks: Vec<_> = (0..n).map(|_| pool.acquire(8 * KIB).unwrap()).collect();
    for s in &stacks {
        touch_top(s, 8 * KIB);
    }
    stacks
}

/// A pool whose caches hold 8 stacks per class per thread and 64 shared.
fn small_caches() -> StackPool {
    StackPool::builder()
        .thread_cache_per_class(8)
        .shared_cache_per_class(64)
        .build()
        .unwrap()
}

#[test]
fn decay_gives_back_stacks_that_stay_unused_in_both_caches() {
    let pool = small_caches();
    drop(touched_8k(&pool, 40));
    assert_eq!(pool.measure_resident_bytes().unwrap(), 40 * 8 * KIB);
    // The first step only marks: these stacks were in use since the pool
    // started (every cache's low-water mark is 0).
    assert!(pool.decay(std::time::Duration::ZERO));
    assert_eq!(pool.stats().released_to_os, 0);
    let mut steps = 1;
    while pool.decay(std::time::Duration::ZERO) {
        steps += 1;
        assert!(steps < 20, "decay never finishes: {:?}", pool.stats());
    }
    let s = pool.stats();
    assert_eq!(s.released_to_os, 40, "{s:?}");
    assert_eq!(s.live_stacks, 0);
    assert_eq!(pool.measure_resident_bytes().unwrap(), 0);
    // Halving: a handful of steps, not one per stack.
    assert!(steps <= 8, "{steps} steps");
    // The emptied slots are reused before fresh ones are carved.
    let again = pool.acquire(8 * KIB).unwrap();
    assert_eq!(again.touched_bytes(), 0);
    assert_eq!(pool.stats().fresh_carves, 40);
}

#[test]
fn decay_keeps_the_stacks_the_load_keeps_using() {
    let pool = small_caches();
    drop(touched_8k(&pool, 20));
    // After the burst, four stacks stay in use between decay steps.
    for _ in 0..12 {
        drop(touched_8k(&pool, 4));
        pool.decay(std::time::Duration::ZERO);
    }
    let before = pool.stats();
    assert_eq!(
        before.released_to_os, 16,
        "all but the working set: {before:?}"
    );
    let working: Vec<_> = (0..4).map(|_| pool.acquire(8 * KIB).unwrap()).collect();
    let after = pool.stats();
    assert_eq!(after.local_hits - before.local_hits, 4, "{after:?}");
    for s in &working {
        assert_eq!(s.touched_bytes(), 8 * KIB, "the working set kept its pages");
    }
}
