//! `sync::oneshot` on plain threads.

use super::{wait_for, DropCounter};
use crate::sync::oneshot::{self, RecvError, RecvTimeoutError, TryRecvError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn value_sent_before_recv_is_received() {
    let (tx, rx) = oneshot::channel();
    tx.send(vec![1, 2, 3]).unwrap();
    assert_eq!(rx.recv(), Ok(vec![1, 2, 3]));
}

#[test]
fn parked_receiver_is_woken_by_send() {
    let (tx, rx) = oneshot::channel();
    let t = thread::spawn(move || rx.recv());
    // No probe on the receiver side: whether it parked before or after the
    // send, it must get the value.
    thread::sleep(Duration::from_millis(5));
    tx.send(42).unwrap();
    assert_eq!(t.join().unwrap(), Ok(42));
}

#[test]
fn dropping_the_sender_wakes_the_receiver_with_an_error() {
    let (tx, rx) = oneshot::channel::<u8>();
    let parked = Arc::new(AtomicUsize::new(0));
    let p2 = parked.clone();
    let t = thread::spawn(move || {
        p2.store(1, Ordering::SeqCst);
        rx.recv()
    });
    wait_for("receiver thread to start", || {
        parked.load(Ordering::SeqCst) == 1
    });
    drop(tx);
    assert_eq!(t.join().unwrap(), Err(RecvError));
}

#[test]
fn try_recv_reports_empty_then_value_then_disconnected() {
    let (tx, mut rx) = oneshot::channel();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send('x').unwrap();
    assert_eq!(rx.try_recv(), Ok('x'));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn send_after_receiver_drop_returns_the_value() {
    let (tx, rx) = oneshot::channel();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(String::from("back")), Err(String::from("back")));
}

#[test]
fn receiver_drop_drops_an_unreceived_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel();
    tx.send(DropCounter(drops.clone())).unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn recv_timeout_times_out_then_still_receives() {
    let (tx, mut rx) = oneshot::channel();
    let timeout = Duration::from_millis(30);
    let start = Instant::now();
    assert_eq!(rx.recv_timeout(timeout), Err(RecvTimeoutError::Timeout));
    assert!(start.elapsed() >= timeout);
    tx.send(1).unwrap();
    assert_eq!(rx.recv_timeout(timeout), Ok(1));
}

#[test]
fn recv_timeout_reports_disconnected_when_sender_dropped() {
    let (tx, mut rx) = oneshot::channel::<u8>();
    drop(tx);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(60)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn many_oneshots_across_threads() {
    let pairs: Vec<_> = (0..64).map(|_| oneshot::channel::<usize>()).collect();
    let (txs, rxs): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
    let receivers =
        thread::spawn(move || rxs.into_iter().map(|rx| rx.recv().unwrap()).sum::<usize>());
    for (i, tx) in txs.into_iter().enumerate() {
        tx.send(i).unwrap();
    }
    assert_eq!(receivers.join().unwrap(), (0..64).sum());
}
