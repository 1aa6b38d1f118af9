//! `sync::WaitGroup` on plain threads.

use super::wait_for;
use crate::sync::WaitGroup;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn wait_returns_after_every_job_is_done_and_sees_their_writes() {
    let wg = WaitGroup::new();
    let work = Arc::new(AtomicUsize::new(0));
    for _ in 0..8 {
        wg.add(1);
        let (wg, work) = (wg.clone(), work.clone());
        thread::spawn(move || {
            work.fetch_add(1, Ordering::Relaxed);
            wg.done();
        });
    }
    wg.wait();
    assert_eq!(work.load(Ordering::Relaxed), 8);
    assert_eq!(wg.count(), 0);
}

#[test]
fn parked_waiters_are_all_woken_by_the_last_done() {
    let wg = WaitGroup::new();
    wg.add(2);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let wg = wg.clone();
            thread::spawn(move || wg.wait())
        })
        .collect();
    wait_for("three waiters", || wg.queued() == 3);
    wg.done();
    assert_eq!(wg.queued(), 3, "done before zero woke someone");
    wg.done();
    for w in waiters {
        w.join().unwrap();
    }
}

#[test]
fn wait_timeout_times_out_while_jobs_remain() {
    let wg = WaitGroup::new();
    wg.add(1);
    let timeout = Duration::from_millis(30);
    let start = Instant::now();
    assert!(!wg.wait_timeout(timeout));
    assert!(start.elapsed() >= timeout);
    assert_eq!(wg.queued(), 0);
    wg.done();
    assert!(wg.wait_timeout(timeout));
}

#[test]
fn group_is_reusable_after_reaching_zero() {
    let wg = WaitGroup::new();
    for round in 0..3 {
        wg.add(2);
        let (a, b) = (wg.clone(), wg.clone());
        thread::spawn(move || a.done());
        thread::spawn(move || b.done());
        wg.wait();
        assert_eq!(wg.count(), 0, "round {round}");
    }
}

#[test]
#[should_panic(expected = "done called more times than add")]
fn done_past_zero_panics() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    wg.done();
}

#[test]
fn done_past_zero_leaves_the_count_at_zero() {
    let wg = WaitGroup::new();
    let wg2 = wg.clone();
    assert!(thread::spawn(move || wg2.done()).join().is_err());
    assert_eq!(wg.count(), 0);
    wg.add(1);
    assert_eq!(wg.count(), 1);
}
