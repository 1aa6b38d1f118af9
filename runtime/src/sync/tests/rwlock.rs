//! `sync::RwLock` on plain threads and on coroutines.

use super::{runtime, wait_for};
use crate::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn readers_share_the_lock() {
    // Four threads each hold a read guard until all four hold one: only
    // possible if the reads overlap.
    let lock = Arc::new(RwLock::new(7));
    let inside = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (lock, inside) = (lock.clone(), inside.clone());
            thread::spawn(move || {
                let g = lock.read();
                inside.fetch_add(1, Ordering::SeqCst);
                wait_for("all four readers inside", || {
                    inside.load(Ordering::SeqCst) == 4
                });
                *g
            })
        })
        .collect();
    for r in readers {
        assert_eq!(r.join().unwrap(), 7);
    }
}

#[test]
fn a_writer_excludes_everyone() {
    let lock = RwLock::new(vec![1]);
    let mut w = lock.write();
    assert!(lock.try_read().is_none());
    assert!(lock.try_write().is_none());
    w.push(2);
    drop(w);
    assert_eq!(*lock.try_read().unwrap(), [1, 2]);
    assert!(lock.try_write().is_some());
}

#[test]
fn a_waiting_writer_goes_before_later_readers() {
    let lock = Arc::new(RwLock::new(0));
    let first = lock.read();
    let writer = {
        let lock = lock.clone();
        thread::spawn(move || *lock.write() += 1)
    };
    wait_for("the writer to queue", || lock.queued() == 1);
    // A reader arriving now waits behind the writer, though only a reader
    // holds the lock.
    assert!(lock.try_read().is_none());
    let late_reader = {
        let lock = lock.clone();
        thread::spawn(move || *lock.read())
    };
    wait_for("the late reader to queue", || lock.queued() == 2);
    drop(first);
    writer.join().unwrap();
    assert_eq!(late_reader.join().unwrap(), 1, "the reader saw the write");
}

#[test]
fn timed_waits_give_up_after_their_duration() {
    let lock = RwLock::new(());
    let d = Duration::from_millis(20);
    let w = lock.write();
    let start = Instant::now();
    assert!(lock.read_timeout(d).is_none());
    assert!(start.elapsed() >= d);
    drop(w);
    let r = lock.read();
    let start = Instant::now();
    assert!(lock.write_timeout(d).is_none());
    assert!(start.elapsed() >= d);
    assert_eq!(lock.queued(), 0, "the timed-out waits left the queue");
    drop(r);
    assert!(lock.write_timeout(d).is_some());
}

#[test]
fn coroutines_and_threads_count_to_the_right_total() {
    const TASKS: usize = 50;
    const ROUNDS: usize = 200;
    let rt = runtime(2);
    let lock = Arc::new(RwLock::new((0usize, 0usize))); // two copies of the count
    let start = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = (0..TASKS)
        .map(|k| {
            let lock = lock.clone();
            rt.spawn(move || {
                for _ in 0..ROUNDS {
                    if k % 5 == 0 {
                        let mut g = lock.write();
                        g.0 += 1;
                        crate::yield_now(); // holding it across a suspension
                        g.1 += 1;
                    } else {
                        let g = lock.read();
                        assert_eq!(g.0, g.1, "a reader saw half a write");
                    }
                }
            })
        })
        .collect();
    let thread = {
        let (lock, start) = (lock.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            for _ in 0..ROUNDS {
                let mut g = lock.write();
                g.0 += 1;
                g.1 += 1;
            }
        })
    };
    start.wait();
    for t in tasks {
        t.join().unwrap();
    }
    thread.join().unwrap();
    let writers = TASKS / 5 + 1;
    assert_eq!(*lock.read(), (writers * ROUNDS, writers * ROUNDS));
}

#[test]
fn debug_shows_the_data_or_that_it_is_locked() {
    let lock = RwLock::new(5);
    assert_eq!(format!("{lock:?}"), "RwLock { data: 5, .. }");
    let w = lock.write();
    assert_eq!(format!("{lock:?}"), "RwLock { data: <locked>, .. }");
    assert_eq!(format!("{w:?}"), "5");
}
