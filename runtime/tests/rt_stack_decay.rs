//! Stacks cached after a burst of tasks go back to the OS while the
//! runtime idles (`StackPool::decay`, once a second from each worker), and
//! a steady load keeps the stacks it uses.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Touches about `bytes` of the task's stack.
#[inline(never)]
fn use_stack(bytes: usize) -> u64 {
    let mut buf = [0u8; 4096];
    black_box(&mut buf);
    let here = u64::from(buf[17]);
    if bytes > 4096 {
        here + use_stack(bytes - 4096)
    } else {
        here
    }
}

/// Stacks holding memory (checked out or cached) and given back, summed
/// over the runtime's pools.
fn stacks(rt: &pinstack::Runtime) -> (usize, u64) {
    let m = rt.metrics();
    let live = m.stack_pools.iter().map(|p| p.live_stacks).sum();
    let released = m.stack_pools.iter().map(|p| p.released_to_os).sum();
    (live, released)
}

#[test]
fn stacks_cached_after_a_burst_are_given_back_while_idle() {
    let rt = pinstack::Runtime::builder()
        .worker_threads(2)
        .ignore_environment()
        .build()
        .unwrap();
    const N: usize = 500;
    rt.block_on(|| {
        let handles: Vec<_> = (0..N)
            .map(|_| {
                pinstack::task::Builder::new()
                    .stack_size(32 * 1024)
                    .spawn(|| {
                        let r = use_stack(16 * 1024);
                        // Alive together: every task holds its own stack.
                        pinstack::sleep(Duration::from_millis(100));
                        r
                    })
                    .unwrap()
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let (live, released) = stacks(&rt);
    assert!(
        live >= N / 2,
        "right after the burst the stacks are cached: {live} live, {released} released"
    );
    // Idle: within some seconds (halving once a second) nearly all go back.
    // The bound is a guard against a hang, not a timing check.
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let (live, released) = stacks(&rt);
        if live <= 4 {
            assert!(
                released as usize >= N - 4,
                "{live} live, {released} released"
            );
            break;
        }
        assert!(
            Instant::now() < give_up,
            "stacks still cached after a minute idle: {live} live, {released} released"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
