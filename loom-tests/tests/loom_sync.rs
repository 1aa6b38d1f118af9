//! Public-API scenarios for `pinstack::sync`, explored by loom.
//!
//! Run with
//! `RUSTFLAGS="--cfg pinstack_loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p pinstack-loom-tests --test loom_sync`.
//!
//! Built without the cfg, only a small smoke test on real threads remains,
//! so the crate still builds and proves the same scenario end to end.

#[cfg(pinstack_loom)]
mod models {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;
    use pinstack::sync::{mpsc, oneshot, Mutex, Notify, WaitGroup};

    /// Two threads pass a token back and forth over two bounded channels:
    /// every send must wake the other side, whichever order they run in.
    #[test]
    fn loom_mpsc_ping_pong_two_round_trips() {
        loom::model(|| {
            let (to_b, b_rx) = mpsc::channel::<u32>(1);
            let (to_a, a_rx) = mpsc::channel::<u32>(1);
            let b = thread::spawn(move || {
                for v in b_rx.iter() {
                    to_a.send(v + 1).unwrap();
                }
            });
            let mut v = 0;
            for _ in 0..2 {
                to_b.send(v).unwrap();
                v = a_rx.recv().unwrap();
            }
            drop(to_b); // ends b's loop
            b.join().unwrap();
            assert_eq!(v, 2);
            assert!(a_rx.recv().is_err(), "b dropped its sender on exit");
        });
    }

    /// The same over rendezvous channels (Go's unbuffered channels).
    #[test]
    fn loom_mpsc_rendezvous_ping_pong() {
        loom::model(|| {
            let (to_b, b_rx) = mpsc::channel::<u32>(0);
            let (to_a, a_rx) = mpsc::channel::<u32>(0);
            let b = thread::spawn(move || {
                let v = b_rx.recv().unwrap();
                to_a.send(v * 10).unwrap();
            });
            to_b.send(4).unwrap();
            assert_eq!(a_rx.recv(), Ok(40));
            b.join().unwrap();
        });
    }

    /// A request carries its reply channel, as an RPC between tasks would.
    #[test]
    fn loom_oneshot_request_reply() {
        loom::model(|| {
            let (req_tx, req_rx) = mpsc::unbounded::<(u32, oneshot::Sender<u32>)>();
            let server = thread::spawn(move || {
                for (x, reply) in req_rx.iter() {
                    let _ = reply.send(x * 2);
                }
            });
            let (reply_tx, reply_rx) = oneshot::channel();
            req_tx.send((21, reply_tx)).unwrap();
            assert_eq!(reply_rx.recv(), Ok(42));
            drop(req_tx);
            server.join().unwrap();
        });
    }

    /// Workers update shared state under the mutex and report through a
    /// wait group; the waiter sees every update.
    #[test]
    fn loom_mutex_and_wait_group() {
        loom::model(|| {
            let state = Arc::new(Mutex::new(Vec::new()));
            let wg = WaitGroup::new();
            wg.add(2);
            let workers: Vec<_> = (0..2)
                .map(|id| {
                    let (state, wg) = (state.clone(), wg.clone());
                    thread::spawn(move || {
                        state.lock().push(id);
                        wg.done();
                    })
                })
                .collect();
            wg.wait();
            let mut seen = state.lock().clone();
            seen.sort();
            assert_eq!(seen, [0, 1]);
            for w in workers {
                w.join().unwrap();
            }
        });
    }

    /// A producer signals "work available" with notify_one; the permit
    /// makes the signal count even if the consumer is not waiting yet.
    #[test]
    fn loom_notify_signals_work() {
        loom::model(|| {
            let work = Arc::new(AtomicUsize::new(0));
            let notify = Arc::new(Notify::new());
            let (w, n) = (work.clone(), notify.clone());
            let producer = thread::spawn(move || {
                w.store(1, Ordering::Relaxed);
                n.notify_one();
            });
            notify.notified();
            assert_eq!(work.load(Ordering::Relaxed), 1);
            producer.join().unwrap();
        });
    }
}

/// Without loom: the ping-pong scenario on real threads, many round trips.
#[cfg(not(pinstack_loom))]
#[test]
fn smoke_mpsc_ping_pong_on_threads() {
    use pinstack::sync::mpsc;
    use std::thread;

    let (to_b, b_rx) = mpsc::channel::<u64>(1);
    let (to_a, a_rx) = mpsc::channel::<u64>(1);
    let b = thread::spawn(move || {
        for v in b_rx.iter() {
            to_a.send(v + 1).unwrap();
        }
    });
    let mut v = 0;
    for _ in 0..10_000 {
        to_b.send(v).unwrap();
        v = a_rx.recv().unwrap();
    }
    drop(to_b);
    b.join().unwrap();
    assert_eq!(v, 10_000);
}
