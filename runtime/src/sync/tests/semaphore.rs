//! `sync::Semaphore` on plain threads.

use super::wait_for;
use crate::sync::{Mutex, Semaphore};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn never_more_holders_than_permits() {
    let sem = Arc::new(Semaphore::new(3));
    let now_peak = Arc::new(Mutex::new((0usize, 0usize)));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (sem, np) = (sem.clone(), now_peak.clone());
            thread::spawn(move || {
                for _ in 0..200 {
                    let _p = sem.acquire();
                    {
                        let mut g = np.lock();
                        g.0 += 1;
                        g.1 = g.1.max(g.0);
                    }
                    thread::yield_now();
                    np.lock().0 -= 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (now, peak) = *now_peak.lock();
    assert_eq!(now, 0);
    assert!(peak <= 3, "{peak} holders at once with 3 permits");
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn a_large_request_at_the_front_is_not_overtaken() {
    let sem = Arc::new(Semaphore::new(1));
    let held = sem.acquire();
    let s2 = sem.clone();
    let big = thread::spawn(move || s2.acquire_many(2).num_permits());
    wait_for("big request to park", || sem.queued() == 1);
    drop(held);
    // One permit is free but the front request wants two: a newcomer
    // asking for one must not take it.
    assert!(sem.try_acquire().is_none());
    sem.add_permits(1);
    assert_eq!(big.join().unwrap(), 2);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn acquire_timeout_times_out_and_leaves_no_slot() {
    let sem = Semaphore::new(0);
    let timeout = Duration::from_millis(30);
    let start = Instant::now();
    assert!(sem.acquire_timeout(timeout).is_none());
    assert!(start.elapsed() >= timeout);
    assert_eq!(sem.queued(), 0);
    sem.add_permits(1);
    assert!(sem.try_acquire().is_some());
}

#[test]
fn forget_shrinks_the_semaphore() {
    let sem = Semaphore::new(2);
    sem.acquire().forget();
    assert_eq!(sem.available_permits(), 1);
    let p = sem.acquire();
    assert_eq!(sem.available_permits(), 0);
    drop(p);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn a_timed_out_front_request_lets_smaller_ones_through() {
    let sem = Arc::new(Semaphore::new(1));
    let s1 = sem.clone();
    let big = thread::spawn(move || {
        s1.acquire_many_timeout(5, Duration::from_millis(30))
            .is_some()
    });
    wait_for("big request to park", || sem.queued() == 1);
    let s2 = sem.clone();
    let small = thread::spawn(move || s2.acquire_many(1).num_permits());
    // Usually the small request parks behind the big one; on a loaded
    // machine the big one may time out first. Either way the small one
    // must get its permit and the big one none.
    wait_for("small request to park behind it", || {
        sem.queued() == 2 || big.is_finished()
    });
    assert!(!big.join().unwrap());
    assert_eq!(small.join().unwrap(), 1);
}
