//! `sync::broadcast` on plain threads and on coroutines.

use super::{runtime, wait_for, DropCounter};
use crate::sync::broadcast::{self, RecvError, RecvTimeoutError, TryRecvError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn every_receiver_gets_every_value_in_order() {
    let (tx, mut a) = broadcast::channel(8);
    let mut b = tx.subscribe();
    assert_eq!(tx.receiver_count(), 2);
    for i in 0..5 {
        assert_eq!(tx.send(i), Ok(2));
    }
    for rx in [&mut a, &mut b] {
        assert_eq!(rx.len(), 5);
        let got: Vec<i32> = (0..5).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }
}

#[test]
fn a_late_subscriber_gets_only_later_values() {
    let (tx, mut first) = broadcast::channel(8);
    tx.send(1).unwrap();
    let mut late = tx.subscribe();
    let mut again = first.resubscribe();
    tx.send(2).unwrap();
    assert_eq!(first.recv(), Ok(1));
    assert_eq!(late.recv(), Ok(2));
    assert_eq!(again.recv(), Ok(2));
    assert!(late.is_empty());
}

#[test]
fn a_lagging_receiver_learns_how_many_it_missed_and_goes_on() {
    let (tx, mut slow) = broadcast::channel(4);
    let mut fast = tx.subscribe();
    for i in 0..10u32 {
        tx.send(i).unwrap();
        assert_eq!(
            fast.recv(),
            Ok(i),
            "a slow receiver never holds back others"
        );
    }
    assert_eq!(slow.recv(), Err(RecvError::Lagged(6)));
    let rest: Vec<u32> = (0..4).map(|_| slow.recv().unwrap()).collect();
    assert_eq!(rest, [6, 7, 8, 9]);
}

#[test]
fn receivers_drain_then_see_closed() {
    let (tx, mut rx) = broadcast::channel(4);
    let tx2 = tx.clone();
    tx.send("a").unwrap();
    drop(tx);
    tx2.send("b").unwrap();
    drop(tx2);
    assert_eq!(rx.recv(), Ok("a"));
    assert_eq!(rx.recv(), Ok("b"));
    assert_eq!(rx.recv(), Err(RecvError::Closed));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn send_without_receivers_hands_the_value_back() {
    let (tx, rx) = broadcast::channel(4);
    drop(rx);
    let e = tx.send(String::from("x")).unwrap_err();
    assert_eq!(e.0, "x");
    // A new subscriber makes sends work again.
    let mut rx = tx.subscribe();
    tx.send(String::from("y")).unwrap();
    assert_eq!(rx.recv().as_deref(), Ok("y"));
}

#[test]
fn a_parked_receiver_wakes_for_a_send_and_for_the_close() {
    let (tx, mut rx) = broadcast::channel::<u8>(4);
    let t = thread::spawn(move || {
        let first = rx.recv();
        let second = rx.recv();
        (first, second)
    });
    wait_for("the receiver to park", || tx.parked_receivers() == 1);
    tx.send(9).unwrap();
    wait_for("the receiver to park again", || tx.parked_receivers() == 1);
    drop(tx);
    assert_eq!(t.join().unwrap(), (Ok(9), Err(RecvError::Closed)));
}

#[test]
fn recv_timeout_gives_up_after_its_duration() {
    let (tx, mut rx) = broadcast::channel::<u8>(4);
    let d = Duration::from_millis(20);
    let start = Instant::now();
    assert_eq!(rx.recv_timeout(d), Err(RecvTimeoutError::Timeout));
    assert!(start.elapsed() >= d);
    tx.send(1).unwrap();
    assert_eq!(rx.recv_timeout(d), Ok(1));
}

#[test]
fn values_dropped_from_the_ring_are_dropped_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = broadcast::channel(2);
    for _ in 0..5 {
        tx.send(Arc::new(DropCounter(drops.clone()))).unwrap();
    }
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3,
        "three pushed out of the ring"
    );
    drop((tx, rx));
    assert_eq!(drops.load(Ordering::SeqCst), 5);
}

#[test]
fn coroutines_fan_out_from_several_senders_in_order_per_sender() {
    const PER_SENDER: u64 = 2_000;
    let rt = runtime(2);
    let (tx, rx) = broadcast::channel::<u64>(4096);
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let mut rx = tx.subscribe();
            rt.spawn(move || {
                let mut last = [None::<u64>; 2];
                let mut n = 0;
                loop {
                    match rx.recv() {
                        Ok(v) => {
                            let (s, seq) = ((v >> 32) as usize, v & 0xffff_ffff);
                            assert!(last[s].is_none_or(|l| seq == l + 1), "out of order");
                            last[s] = Some(seq);
                            n += 1;
                        }
                        Err(RecvError::Closed) => return n,
                        Err(RecvError::Lagged(k)) => panic!("lagged by {k}"),
                    }
                }
            })
        })
        .collect();
    drop(rx);
    let senders: Vec<_> = (0..2u64)
        .map(|s| {
            let tx = tx.clone();
            rt.spawn(move || {
                for seq in 0..PER_SENDER {
                    tx.send((s << 32) | seq).unwrap();
                    if seq % 64 == 0 {
                        crate::yield_now();
                    }
                }
            })
        })
        .collect();
    drop(tx);
    for s in senders {
        s.join().unwrap();
    }
    for r in receivers {
        assert_eq!(r.join().unwrap(), 2 * PER_SENDER);
    }
}
