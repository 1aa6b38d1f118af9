//! `sync::Mutex` on plain threads.

use super::{wait_for, DropCounter};
use crate::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn contended_counter_reaches_the_exact_total() {
    const THREADS: usize = 4;
    const EACH: usize = 20_000;
    let m = Arc::new(Mutex::new(0usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let m = m.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    let mut g = m.lock();
                    // A non-atomic read-modify-write, stretched now and then
                    // so that other threads pile up and park.
                    let v = *g;
                    if i % 512 == 0 {
                        thread::yield_now();
                    }
                    *g = v + 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*m.lock(), THREADS * EACH);
    assert_eq!(m.queued(), 0);
    assert!(!m.is_locked());
}

#[test]
fn try_lock_fails_while_held() {
    let m = Mutex::new(1);
    let g = m.lock();
    assert!(m.is_locked());
    assert!(m.try_lock().is_none());
    drop(g);
    assert_eq!(*m.try_lock().unwrap(), 1);
}

#[test]
fn a_parked_locker_gets_the_lock_when_it_is_released() {
    let m = Arc::new(Mutex::new(Vec::new()));
    let g = m.lock();
    let m2 = m.clone();
    let t = thread::spawn(move || m2.lock().push("waiter"));
    wait_for("locker to park", || m.queued() == 1);
    drop(g);
    t.join().unwrap();
    assert_eq!(*m.lock(), ["waiter"]);
}

#[test]
fn parked_lockers_acquire_in_fifo_order() {
    let m = Arc::new(Mutex::new(Vec::new()));
    let g = m.lock();
    let mut threads = Vec::new();
    for i in 1..=3 {
        let m2 = m.clone();
        threads.push(thread::spawn(move || m2.lock().push(i)));
        wait_for("locker to park", || m.queued() == i);
    }
    drop(g);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*m.lock(), [1, 2, 3]);
}

#[test]
fn try_lock_for_times_out_while_held() {
    let m = Mutex::new(());
    let g = m.lock();
    let timeout = Duration::from_millis(30);
    let start = Instant::now();
    assert!(m.try_lock_for(timeout).is_none());
    assert!(start.elapsed() >= timeout);
    assert_eq!(m.queued(), 0, "a timed-out locker left its slot");
    drop(g);
    assert!(m.try_lock_for(timeout).is_some());
}

#[test]
fn try_lock_for_succeeds_when_released_in_time() {
    let m = Arc::new(Mutex::new(0));
    let g = m.lock();
    let m2 = m.clone();
    let t = thread::spawn(move || {
        m2.try_lock_for(Duration::from_secs(60))
            .map(|mut g| *g += 1)
    });
    wait_for("locker to park", || m.queued() == 1);
    drop(g);
    assert!(t.join().unwrap().is_some());
    assert_eq!(*m.lock(), 1);
}

#[test]
fn a_timed_out_waiter_does_not_strand_the_others() {
    let m = Arc::new(Mutex::new(0));
    let g = m.lock();
    let m1 = m.clone();
    let short = thread::spawn(move || m1.try_lock_for(Duration::from_millis(20)).is_some());
    wait_for("short waiter to park", || m.queued() == 1);
    let m2 = m.clone();
    let long = thread::spawn(move || {
        *m2.lock() += 1;
    });
    wait_for("long waiter to park", || m.queued() == 2);
    assert!(!short.join().unwrap());
    drop(g);
    long.join().unwrap();
    assert_eq!(*m.lock(), 1);
}

#[test]
fn a_panic_while_locked_releases_the_lock_without_poisoning() {
    let m = Arc::new(Mutex::new(5));
    let m2 = m.clone();
    let r = thread::spawn(move || {
        let mut g = m2.lock();
        *g = 6;
        panic!("deliberate panic while holding the lock");
    })
    .join();
    assert!(r.is_err());
    assert!(!m.is_locked());
    assert_eq!(*m.lock(), 6);
}

#[test]
fn get_mut_into_inner_and_drop_handle_the_data_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = Mutex::new(DropCounter(drops.clone()));
    let _ = m.get_mut();
    let inner = m.into_inner();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(inner);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(Mutex::new(DropCounter(drops.clone())));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn guard_can_be_released_on_another_thread() {
    let m = Arc::new(Mutex::new(0));
    let m2 = m.clone();
    thread::scope(|s| {
        let mut g = m2.lock();
        *g = 1;
        s.spawn(move || drop(g));
    });
    assert_eq!(*m.try_lock().unwrap(), 1);
}

#[test]
fn debug_shows_data_or_locked() {
    let m = Mutex::new(3);
    assert!(format!("{m:?}").contains('3'));
    let _g = m.lock();
    assert!(format!("{m:?}").contains("<locked>"));
}
