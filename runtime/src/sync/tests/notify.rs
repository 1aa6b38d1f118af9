//! `sync::Notify` on plain threads.

use super::wait_for;
use crate::sync::Notify;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn notify_one_before_waiting_stores_one_permit() {
    let n = Notify::new();
    n.notify_one();
    n.notify_one();
    n.notified(); // consumes the permit, returns at once
    assert!(!n.try_notified(), "two notify_one calls stored two permits");
}

#[test]
fn notify_waiters_without_waiters_stores_nothing() {
    let n = Notify::new();
    n.notify_waiters();
    assert!(!n.try_notified());
    assert!(!n.notified_timeout(Duration::from_millis(1)));
}

#[test]
fn notify_one_wakes_exactly_one_waiter_in_fifo_order() {
    let n = Arc::new(Notify::new());
    let mut waiters = Vec::new();
    for i in 0..2 {
        let n2 = n.clone();
        waiters.push(thread::spawn(move || {
            n2.notified();
            i
        }));
        wait_for("waiter to park", || n.queued() == i + 1);
    }
    n.notify_one();
    wait_for("one waiter to be picked", || n.queued() == 1);
    let first = waiters.remove(0);
    assert_eq!(first.join().unwrap(), 0, "the longest waiter goes first");
    assert!(
        !n.try_notified(),
        "a notify_one that woke someone also stored a permit"
    );
    n.notify_one();
    assert_eq!(waiters.remove(0).join().unwrap(), 1);
}

#[test]
fn notify_waiters_wakes_all_current_waiters() {
    let n = Arc::new(Notify::new());
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let n = n.clone();
            thread::spawn(move || n.notified())
        })
        .collect();
    wait_for("four waiters", || n.queued() == 4);
    n.notify_waiters();
    for w in waiters {
        w.join().unwrap();
    }
    assert!(!n.try_notified());
}

#[test]
fn notified_timeout_times_out_without_a_notification() {
    let n = Notify::new();
    let timeout = Duration::from_millis(30);
    let start = Instant::now();
    assert!(!n.notified_timeout(timeout));
    assert!(start.elapsed() >= timeout);
    assert_eq!(n.queued(), 0, "a timed-out waiter left its slot");
    // A later notify_one is stored, not lost to the departed waiter.
    n.notify_one();
    assert!(n.try_notified());
}

#[test]
fn notified_timeout_returns_true_when_notified_in_time() {
    let n = Arc::new(Notify::new());
    let n2 = n.clone();
    let t = thread::spawn(move || n2.notified_timeout(Duration::from_secs(60)));
    wait_for("waiter to park", || n.queued() == 1);
    n.notify_one();
    assert!(t.join().unwrap());
}
