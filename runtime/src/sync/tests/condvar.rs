//! `sync::Condvar` with `sync::Mutex`, on plain threads.

use super::wait_for;
use crate::sync::{Condvar, Mutex};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn producer_consumer_hands_over_every_item() {
    let state = Arc::new((Mutex::new(Vec::<u32>::new()), Condvar::new()));
    let s2 = state.clone();
    let consumer = thread::spawn(move || {
        let (m, cv) = &*s2;
        let mut got = Vec::new();
        while got.len() < 1000 {
            let mut q = cv.wait_while(m.lock(), |q| q.is_empty());
            got.append(&mut q);
        }
        got
    });
    let (m, cv) = &*state;
    for i in 0..1000 {
        m.lock().push(i);
        cv.notify_one();
    }
    assert_eq!(consumer.join().unwrap(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn notify_all_wakes_every_waiter_and_notify_one_exactly_one() {
    let state = Arc::new((Mutex::new(0u32), Condvar::new()));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let s = state.clone();
            thread::spawn(move || {
                let (m, cv) = &*s;
                let g = cv.wait(m.lock());
                drop(g);
            })
        })
        .collect();
    let (m, cv) = &*state;
    wait_for("three waiters", || cv.queued() == 3);
    cv.notify_one();
    wait_for("one waiter to leave", || cv.queued() == 2);
    wait_for("the notified waiter to finish", || {
        waiters.iter().filter(|w| w.is_finished()).count() == 1
    });
    assert_eq!(cv.queued(), 2, "notify_one woke more than one waiter");
    cv.notify_all();
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(cv.queued(), 0);
    drop(m.lock());
}

#[test]
fn wait_timeout_times_out_and_returns_the_lock() {
    let (m, cv) = (Mutex::new(1), Condvar::new());
    let timeout = Duration::from_millis(30);
    let start = Instant::now();
    let (g, res) = cv.wait_timeout(m.lock(), timeout);
    assert!(res.timed_out());
    assert!(start.elapsed() >= timeout);
    assert_eq!(*g, 1);
    assert!(m.is_locked(), "the guard returned holds the lock");
    drop(g);
    assert_eq!(cv.queued(), 0);
}

#[test]
fn wait_timeout_while_returns_early_when_the_condition_clears() {
    let state = Arc::new((Mutex::new(true), Condvar::new()));
    let s2 = state.clone();
    let t = thread::spawn(move || {
        let (m, cv) = &*s2;
        let (g, res) = cv.wait_timeout_while(m.lock(), Duration::from_secs(60), |busy| *busy);
        (*g, res.timed_out())
    });
    let (m, cv) = &*state;
    wait_for("waiter to park", || cv.queued() == 1);
    *m.lock() = false;
    cv.notify_all();
    assert_eq!(t.join().unwrap(), (false, false));
}

#[test]
fn the_mutex_is_free_while_a_waiter_is_parked() {
    let state = Arc::new((Mutex::new(0), Condvar::new()));
    let s2 = state.clone();
    let t = thread::spawn(move || {
        let (m, cv) = &*s2;
        let g = cv.wait_while(m.lock(), |v| *v == 0);
        *g
    });
    let (m, cv) = &*state;
    wait_for("waiter to park", || cv.queued() == 1);
    // If wait had kept the lock, this would deadlock.
    *m.lock() = 5;
    cv.notify_one();
    assert_eq!(t.join().unwrap(), 5);
}
