//! Freed task memory: kept for reuse, bounded by the peak, given back when
//! idle, and released when the last runtime shuts down (`task/alloc.rs`).
//!
//! One test function: the depot is process-wide, so the steps must not
//! interleave with another test's runtimes.

use std::time::{Duration, Instant};

fn runtime() -> pinstack::Runtime {
    pinstack::Runtime::builder()
        .worker_threads(2)
        .ignore_environment()
        .build()
        .unwrap()
}

/// Spawns `n` tasks from one task and joins them all.
fn burst(rt: &pinstack::Runtime, n: u64) {
    let sum = rt.block_on(move || {
        let handles: Vec<_> = (0..n).map(|i| pinstack::spawn(move || i)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sum, n * (n - 1) / 2);
}

fn cached(rt: &pinstack::Runtime) -> u64 {
    rt.metrics().task_memory_cached_bytes
}

#[test]
fn freed_task_memory_is_reused_bounded_and_given_back() {
    let rt = runtime();
    assert_eq!(cached(&rt), 0, "nothing freed yet");

    // 1. A burst leaves its freed tasks in the depot (beyond the 64 per
    //    class a worker keeps itself).
    let n = 20_000;
    burst(&rt, n);
    let after_first = cached(&rt);
    assert!(after_first > 0, "the burst's freed tasks are kept");

    // 2. The same burst again reuses them: the depot does not grow (new
    //    blocks are only allocated when a class is empty).
    burst(&rt, n);
    let after_second = cached(&rt);
    assert!(
        after_second <= after_first + after_first / 10 + 64 * 1024,
        "the depot grew from {after_first} to {after_second} bytes on a repeat burst"
    );

    // 3. Idle, the runtime gives it all back (halves per idle second; the
    //    deadline is generous: this asserts that it happens, not how fast).
    let deadline = Instant::now() + Duration::from_secs(90);
    while cached(&rt) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} bytes still cached after 90 s idle",
            cached(&rt)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // 4. When the last runtime's workers exit, the depot is emptied at
    //    once: a new runtime sees nothing left from the old one.
    burst(&rt, n);
    assert!(cached(&rt) > 0);
    drop(rt);
    let rt = runtime();
    assert_eq!(cached(&rt), 0, "the depot outlived every worker");
}
