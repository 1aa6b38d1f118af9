//! `sync::mpsc::Select` on plain threads and on coroutines.

use super::{runtime, wait_for};
use crate::sync::mpsc::{self, ReadyTimeoutError, Select, Sender, TryRecvError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn a_queued_value_is_ready_at_once_and_stays_for_try_recv() {
    let (_tx_a, a) = mpsc::channel::<u32>(1);
    let (tx_b, b) = mpsc::channel::<String>(1);
    let mut sel = Select::new();
    assert_eq!(sel.recv(&a), 0);
    assert_eq!(sel.recv(&b), 1);
    assert_eq!(sel.len(), 2);
    assert_eq!(sel.try_ready(), None);
    tx_b.send("b".into()).unwrap();
    assert_eq!(sel.try_ready(), Some(1));
    // Readiness takes nothing out: asking again gives the same answer.
    assert_eq!(sel.ready(), 1);
    assert_eq!(b.try_recv().as_deref(), Ok("b"));
    assert_eq!(sel.try_ready(), None);
}

/// Waits until every sender's receiver is registered: the select parked.
fn wait_registered<T>(txs: &[&Sender<T>]) {
    wait_for("the select to register with every receiver", || {
        txs.iter().all(|t| t.receiver_registered())
    });
}

#[test]
fn a_send_from_another_thread_wakes_the_waiting_select() {
    for (target, capacity) in [(0, 1), (1, 0), (2, usize::MAX)] {
        let chans: Vec<_> = (0..3)
            .map(|_| match capacity {
                usize::MAX => mpsc::unbounded::<usize>(),
                c => mpsc::channel::<usize>(c),
            })
            .collect();
        let (txs, rxs): (Vec<_>, Vec<_>) = chans.into_iter().unzip();
        let selector = thread::spawn(move || {
            let mut sel = Select::new();
            for rx in &rxs {
                sel.recv(rx);
            }
            let i = sel.ready();
            (i, rxs[i].try_recv())
        });
        wait_registered(&txs.iter().collect::<Vec<_>>());
        txs[target].send(target + 100).unwrap();
        let (i, got) = selector.join().unwrap();
        assert_eq!((i, got), (target, Ok(target + 100)), "capacity {capacity}");
        // Every registration was withdrawn on the way out.
        assert!(txs.iter().all(|t| !t.receiver_registered()));
    }
}

#[test]
fn the_last_sender_leaving_makes_its_receiver_ready() {
    let (tx_a, a) = mpsc::channel::<u8>(1);
    let (tx_b, b) = mpsc::channel::<u8>(1);
    let probe = tx_b.clone();
    let selector = thread::spawn(move || {
        let mut sel = Select::new();
        sel.recv(&a);
        sel.recv(&b);
        let i = sel.ready();
        (i, b.try_recv())
    });
    wait_registered(&[&tx_a, &tx_b]);
    drop(tx_b);
    assert!(probe.receiver_registered(), "one sender is left");
    drop(probe);
    let (i, got) = selector.join().unwrap();
    assert_eq!((i, got), (1, Err(TryRecvError::Disconnected)));
    drop(tx_a);
}

#[test]
fn ready_timeout_gives_up_after_its_duration_and_withdraws() {
    let (tx, rx) = mpsc::channel::<u8>(1);
    let mut sel = Select::new();
    sel.recv(&rx);
    let d = Duration::from_millis(20);
    let start = Instant::now();
    assert_eq!(sel.ready_timeout(d), Err(ReadyTimeoutError));
    assert!(start.elapsed() >= d);
    assert!(!tx.receiver_registered());
    tx.send(7).unwrap();
    assert_eq!(
        sel.ready_deadline(Instant::now() + Duration::from_secs(60)),
        Ok(0)
    );
    assert_eq!(rx.recv(), Ok(7));
}

#[test]
#[should_panic(expected = "was added already, as index 0")]
fn the_same_receiver_twice_is_refused() {
    let (_tx, rx) = mpsc::channel::<u8>(1);
    let mut sel = Select::new();
    sel.recv(&rx);
    sel.recv(&rx);
}

#[test]
#[should_panic(expected = "no receivers would wait forever")]
fn ready_with_no_receivers_panics() {
    Select::new().ready();
}

#[test]
fn a_removed_receiver_is_never_chosen_and_the_others_keep_their_index() {
    let (tx_a, a) = mpsc::channel::<u8>(1);
    let (tx_b, b) = mpsc::channel::<u8>(1);
    let (tx_c, c) = mpsc::channel::<u8>(1);
    let mut sel = Select::new();
    let ia = sel.recv(&a);
    let ib = sel.recv(&b);
    let ic = sel.recv(&c);
    tx_a.send(1).unwrap();
    sel.remove(ia);
    assert_eq!(sel.len(), 2);
    assert_eq!(
        sel.try_ready(),
        None,
        "a's value is there, but a was removed"
    );
    tx_c.send(3).unwrap();
    assert_eq!(sel.ready(), ic);
    assert_eq!(c.try_recv(), Ok(3));
    tx_b.send(2).unwrap();
    assert_eq!(sel.ready(), ib);
    sel.remove(ib);
    sel.remove(ic);
    assert!(sel.is_empty());
    let removed_twice = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sel.remove(ib)));
    assert!(removed_twice.is_err());
}

#[test]
fn receivers_that_are_always_ready_take_turns() {
    let rxs: Vec<_> = (0..3)
        .map(|_| {
            let (tx, rx) = mpsc::unbounded::<u32>();
            for i in 0..100 {
                tx.send(i).unwrap();
            }
            rx
        })
        .collect();
    let mut sel = Select::new();
    for rx in &rxs {
        sel.recv(rx);
    }
    let mut chosen = [0usize; 3];
    for _ in 0..300 {
        let i = sel.ready();
        rxs[i].try_recv().unwrap();
        chosen[i] += 1;
    }
    assert_eq!(chosen, [100, 100, 100]);
}

/// Drains `rxs` through one `Select` until every channel is disconnected
/// (removing each as it is); returns the values of each channel in arrival
/// order.
fn drain_all(rxs: &[mpsc::Receiver<u64>]) -> Vec<Vec<u64>> {
    let mut sel = Select::new();
    for rx in rxs {
        sel.recv(rx);
    }
    let mut got = vec![Vec::new(); rxs.len()];
    while !sel.is_empty() {
        let i = sel.ready();
        match rxs[i].try_recv() {
            Ok(v) => got[i].push(v),
            Err(TryRecvError::Disconnected) => sel.remove(i),
            Err(TryRecvError::Empty) => panic!("receiver {i} was ready but empty"),
        }
    }
    got
}

/// One channel per capacity (rendezvous, 1, 16, unbounded) and two
/// senders each, sending `(sender << 32) | seq`.
fn channels() -> (Vec<Sender<u64>>, Vec<mpsc::Receiver<u64>>) {
    [0, 1, 16, usize::MAX]
        .into_iter()
        .map(|c| match c {
            usize::MAX => mpsc::unbounded(),
            c => mpsc::channel(c),
        })
        .unzip()
}

fn check(got: &[Vec<u64>], per_sender: u64) {
    for (i, values) in got.iter().enumerate() {
        assert_eq!(values.len() as u64, 2 * per_sender, "channel {i}");
        for s in 0..2u64 {
            let mine: Vec<u64> = values
                .iter()
                .filter(|v| *v >> 32 == s)
                .map(|v| v & 0xffff_ffff)
                .collect();
            assert_eq!(mine, (0..per_sender).collect::<Vec<_>>(), "channel {i}");
        }
    }
}

#[test]
fn many_threads_into_one_select_lose_nothing_and_keep_order() {
    const N: u64 = 5_000;
    let (txs, rxs) = channels();
    let senders: Vec<_> = txs
        .into_iter()
        .flat_map(|tx| [tx.clone(), tx])
        .enumerate()
        .map(|(k, tx)| {
            thread::spawn(move || {
                for seq in 0..N {
                    tx.send(((k as u64 % 2) << 32) | seq).unwrap();
                }
            })
        })
        .collect();
    let got = drain_all(&rxs);
    for s in senders {
        s.join().unwrap();
    }
    check(&got, N);
}

#[test]
fn a_coroutine_selects_over_senders_on_other_workers_and_threads() {
    const N: u64 = 5_000;
    let rt = runtime(2);
    let (txs, rxs) = channels();
    let selector = rt.spawn(move || drain_all(&rxs));
    let mut threads = Vec::new();
    let mut tasks = Vec::new();
    for tx in txs {
        // One sender a coroutine, the other a plain thread.
        let t2 = tx.clone();
        tasks.push(rt.spawn(move || {
            for seq in 0..N {
                tx.send(seq).unwrap();
            }
        }));
        threads.push(thread::spawn(move || {
            for seq in 0..N {
                t2.send((1 << 32) | seq).unwrap();
            }
        }));
    }
    for t in tasks {
        t.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    check(&selector.join().unwrap(), N);
}

/// Records, when dropped, whether the channel still had a receiver
/// registered.
struct Probe {
    tx: Sender<u8>,
    registered_at_drop: Arc<AtomicUsize>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        let v = if self.tx.receiver_registered() { 2 } else { 1 };
        self.registered_at_drop.store(v, Ordering::SeqCst);
    }
}

#[test]
fn a_select_unwound_at_shutdown_leaves_no_registration_behind() {
    let rt = runtime(1);
    let (tx, rx) = mpsc::channel::<u8>(1);
    let seen = Arc::new(AtomicUsize::new(0));
    let probe = Probe {
        tx: tx.clone(),
        registered_at_drop: seen.clone(),
    };
    drop(rt.spawn(move || {
        let rx = rx;
        // Dropped after the select's frames unwind, before `rx`.
        let _probe = probe;
        let mut sel = Select::new();
        sel.recv(&rx);
        sel.ready()
    }));
    wait_registered(&[&tx]);
    drop(rt);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "1: withdrawn, 2: left registered"
    );
}

#[test]
fn a_coroutine_select_times_out_on_the_worker_timer_and_then_takes_a_value() {
    let rt = runtime(1);
    let (tx, rx) = mpsc::channel::<u8>(1);
    let d = Duration::from_millis(20);
    let (timed_out, waited, i, v) = rt.block_on(move || {
        let mut sel = Select::new();
        sel.recv(&rx);
        let start = Instant::now();
        let timed_out = sel.ready_timeout(d);
        let waited = start.elapsed();
        let sender = crate::spawn(move || tx.send(9).unwrap());
        let i = sel.ready_timeout(Duration::from_secs(60));
        sender.join().unwrap();
        (timed_out, waited, i, rx.try_recv())
    });
    assert_eq!(timed_out, Err(ReadyTimeoutError));
    assert!(waited >= d, "{waited:?}");
    assert_eq!((i, v), (Ok(0), Ok(9)));
}
