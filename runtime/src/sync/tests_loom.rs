//! loom models of `crate::sync`: every interleaving of the real code (the
//! `crate::loom` shim swaps in loom's mutex, atomics, `UnsafeCell` and
//! thread park) is explored, and each model asserts that no wake-up is lost
//! (a lost one shows up as a deadlock, which loom reports) and that the
//! values seen are the right ones.
//!
//! Run with
//! `RUSTFLAGS="--cfg pinstack_loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p pinstack --lib loom`.
//!
//! Timed operations appear only with a zero timeout: the deadline has then
//! always passed when it is checked, so the model stays deterministic (loom
//! does not model the clock).

use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Arc;
use crate::sync::mpsc::{self, RecvError, RecvTimeoutError, SendTimeoutError, TryRecvError};
use crate::sync::{oneshot, Condvar, Mutex, Notify, OnceCell, RwLock, Semaphore, WaitGroup};
use loom::thread;
use std::time::Duration;

mod group_a {
    //! Channels.
    use super::*;

    #[test]
    fn loom_mpsc_send_wakes_a_receiver_going_to_park() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(1);
            let t = thread::spawn(move || {
                tx.send(1).unwrap();
                tx // kept alive: only the send's own wake-up may release recv
            });
            assert_eq!(rx.recv(), Ok(1));
            drop(t.join().unwrap());
        });
    }

    #[test]
    fn loom_mpsc_close_races_recv() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(1);
            let t = thread::spawn(move || {
                tx.send(7).unwrap();
                drop(tx);
            });
            assert_eq!(rx.recv(), Ok(7));
            assert_eq!(rx.recv(), Err(RecvError));
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_mpsc_last_sender_drop_races_receiver_registration() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel::<u8>(1);
            let t = thread::spawn(move || drop(tx));
            // Registered before the drop (released and woken by it) or
            // after (sees no sender left): never parked for good.
            assert_eq!(rx.recv(), Err(RecvError));
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_mpsc_handed_off_then_queued_values_keep_order() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(1);
            let t = thread::spawn(move || {
                // The first may be handed to the parked receive, the second
                // queued behind it; or both queued.
                tx.send(1).unwrap();
                tx.send(2).unwrap();
                tx
            });
            assert_eq!(rx.recv(), Ok(1));
            assert_eq!(rx.recv(), Ok(2));
            let tx = t.join().unwrap();
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            drop(tx);
        });
    }

    /// Receives `want` values through a `Select` over `rxs`, each value
    /// with the index of its channel; every ready index must give a value.
    fn select_values(rxs: &[&mpsc::Receiver<u8>], want: usize) -> Vec<(usize, u8)> {
        let mut sel = mpsc::Select::new();
        for rx in rxs {
            sel.recv(rx);
        }
        let mut got = Vec::new();
        while got.len() < want {
            let i = sel.ready();
            got.push((i, rxs[i].try_recv().expect("a ready receiver has a value")));
        }
        got
    }

    #[test]
    fn loom_select_wakes_for_sends_on_two_channels() {
        loom::model(|| {
            let (tx_a, a) = mpsc::channel::<u8>(1);
            let (tx_b, b) = mpsc::channel::<u8>(1);
            // Both may claim the select's registrations before it withdraws:
            // the value not chosen waits in its slot.
            let ta = thread::spawn(move || {
                tx_a.send(1).unwrap();
                tx_a
            });
            let tb = thread::spawn(move || {
                tx_b.send(2).unwrap();
                tx_b
            });
            let mut got = select_values(&[&a, &b], 2);
            got.sort_unstable();
            assert_eq!(got, [(0, 1), (1, 2)]);
            let (tx_a, tx_b) = (ta.join().unwrap(), tb.join().unwrap());
            assert_eq!(a.try_recv(), Err(TryRecvError::Empty));
            assert_eq!(b.try_recv(), Err(TryRecvError::Empty));
            drop((tx_a, tx_b));
        });
    }

    #[test]
    fn loom_select_takes_rendezvous_sends_in_order() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel::<u8>(0);
            let (_tx_idle, idle) = mpsc::channel::<u8>(0);
            let t = thread::spawn(move || {
                // Handed to the select's registration, or parked with the
                // value until the select finds it.
                tx.send(1).unwrap();
                tx.send(2).unwrap();
            });
            assert_eq!(select_values(&[&idle, &rx], 2), [(1, 1), (1, 2)]);
            t.join().unwrap();
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        });
    }

    #[test]
    fn loom_select_sees_the_last_sender_leave() {
        loom::model(|| {
            let (tx_a, a) = mpsc::channel::<u8>(1);
            let (tx_b, b) = mpsc::channel::<u8>(1);
            let t = thread::spawn(move || drop(tx_b));
            let mut sel = mpsc::Select::new();
            sel.recv(&a);
            sel.recv(&b);
            assert_eq!(sel.ready(), 1);
            assert_eq!(b.try_recv(), Err(TryRecvError::Disconnected));
            t.join().unwrap();
            drop(tx_a);
        });
    }

    #[test]
    fn loom_mpsc_ping_pong_over_two_channels() {
        loom::model(|| {
            let (to_pong, from_ping) = mpsc::channel::<u32>(1);
            let (to_ping, from_pong) = mpsc::channel::<u32>(1);
            let pong = thread::spawn(move || {
                while let Ok(v) = from_ping.recv() {
                    if to_ping.send(v + 1).is_err() {
                        break;
                    }
                }
            });
            for i in [0, 10] {
                to_pong.send(i).unwrap();
                assert_eq!(from_pong.recv(), Ok(i + 1));
            }
            drop(to_pong);
            pong.join().unwrap();
            assert_eq!(from_pong.recv(), Err(RecvError));
        });
    }

    #[test]
    fn loom_mpsc_full_channel_parks_sender_until_recv() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(1);
            let t = thread::spawn(move || {
                tx.send(1).unwrap();
                tx.send(2).unwrap();
                tx // kept alive: only the sends' own wake-ups may release recv
            });
            assert_eq!(rx.recv(), Ok(1));
            assert_eq!(rx.recv(), Ok(2));
            let tx = t.join().unwrap();
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            drop(tx);
            assert_eq!(rx.recv(), Err(RecvError));
        });
    }

    #[test]
    fn loom_mpsc_one_recv_releases_a_parked_sender() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(1);
            tx.send(0).unwrap();
            let t = thread::spawn(move || {
                tx.send(1).unwrap();
                tx
            });
            assert_eq!(rx.recv(), Ok(0));
            // That one receive made room: the send completes with no
            // further receive, whether it had parked or not.
            let tx = t.join().unwrap();
            assert_eq!(rx.len(), 1);
            assert_eq!(rx.recv(), Ok(1));
            drop(tx);
        });
    }

    #[test]
    fn loom_mpsc_receiver_drop_wakes_parked_sender() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(1);
            tx.send(0).unwrap();
            let t = thread::spawn(move || tx.send(1));
            drop(rx);
            // Whether it parked or not, the send fails and hands 1 back.
            assert_eq!(t.join().unwrap().unwrap_err().into_inner(), 1);
        });
    }

    #[test]
    fn loom_mpsc_two_senders_on_a_full_channel() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(1);
            let tx2 = tx.clone();
            let a = thread::spawn(move || {
                tx.send(1).unwrap();
                tx
            });
            let b = thread::spawn(move || {
                tx2.send(2).unwrap();
                tx2
            });
            let x = rx.recv().unwrap();
            let y = rx.recv().unwrap();
            assert_eq!(x + y, 3);
            let senders = (a.join().unwrap(), b.join().unwrap());
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            drop(senders);
            assert_eq!(rx.recv(), Err(RecvError));
        });
    }

    #[test]
    fn loom_mpsc_zero_timeout_recv_races_send() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(1);
            let t = thread::spawn(move || tx.send(5).unwrap());
            match rx.recv_timeout(Duration::ZERO) {
                Ok(v) => assert_eq!(v, 5),
                Err(RecvTimeoutError::Timeout) => assert_eq!(rx.recv(), Ok(5)),
                Err(e) => panic!("unexpected {e:?}"),
            }
            t.join().unwrap();
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        });
    }

    #[test]
    fn loom_mpsc_rendezvous_two_senders_one_receiver() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(0);
            let tx2 = tx.clone();
            let a = thread::spawn(move || {
                tx.send(1).unwrap();
                tx
            });
            let b = thread::spawn(move || {
                tx2.send(2).unwrap();
                tx2
            });
            // Values come either from a sender parked with its value or
            // pushed for this (parked) receive; every one exactly once.
            let x = rx.recv().unwrap();
            let y = rx.recv().unwrap();
            assert_eq!(x + y, 3);
            let senders = (a.join().unwrap(), b.join().unwrap());
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            drop(senders);
            assert_eq!(rx.recv(), Err(RecvError));
        });
    }

    #[test]
    fn loom_mpsc_rendezvous_send_timeout_takes_value_back() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(0);
            let t = thread::spawn(move || {
                let got = rx.recv_timeout(Duration::ZERO).ok();
                (got, rx) // keep the receiver alive: this is not a drop model
            });
            let sent = tx.send_timeout(3, Duration::ZERO);
            let (got, rx) = t.join().unwrap();
            assert_eq!(
                rx.try_recv(),
                Err(TryRecvError::Empty),
                "a value was left behind"
            );
            match sent {
                // Delivered: the receiver has it.
                Ok(()) => assert_eq!(got, Some(3)),
                // Taken back: nobody has it, whatever the receiver saw.
                Err(SendTimeoutError::Timeout(v)) => {
                    assert_eq!(v, 3);
                    assert_eq!(got, None);
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        });
    }

    #[test]
    fn loom_mpsc_rendezvous_receiver_drop_hands_value_back() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(0);
            let t = thread::spawn(move || tx.send(String::from("v")));
            drop(rx);
            // Never taken, so it comes back whole, whenever the drop ran.
            assert_eq!(t.join().unwrap().unwrap_err().into_inner(), "v");
        });
    }

    #[test]
    fn loom_mpsc_parked_sender_is_granted_room_in_order() {
        loom::model(|| {
            let (tx, rx) = mpsc::channel(1);
            tx.send(0).unwrap();
            let tx2 = tx.clone();
            let t = thread::spawn(move || {
                tx2.send(1).unwrap();
                tx2
            });
            assert_eq!(rx.recv(), Ok(0));
            // Room is free now. If the spawned sender had parked, that room
            // is reserved for it and a newcomer cannot take it; if it had
            // not arrived yet, the newcomer may get in first.
            let early = tx.try_send(2).is_ok();
            assert!(rx.len() <= 1, "capacity exceeded");
            let mut got = vec![rx.recv().unwrap()];
            if early {
                assert!(rx.len() <= 1, "capacity exceeded");
                got.push(rx.recv().unwrap());
            }
            let tx2 = t.join().unwrap();
            drop((tx, tx2));
            assert_eq!(rx.recv(), Err(RecvError));
            assert_eq!(got, if early { vec![2, 1] } else { vec![1] });
        });
    }
}

mod group_b {
    //! oneshot.
    use super::*;

    #[test]
    fn loom_oneshot_send_wakes_receiver() {
        loom::model(|| {
            let (tx, rx) = oneshot::channel();
            let t = thread::spawn(move || tx.send(9).unwrap());
            assert_eq!(rx.recv(), Ok(9));
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_oneshot_sender_drop_wakes_receiver() {
        loom::model(|| {
            let (tx, rx) = oneshot::channel::<u8>();
            let t = thread::spawn(move || drop(tx));
            assert_eq!(rx.recv(), Err(oneshot::RecvError));
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_oneshot_zero_timeout_recv_races_send() {
        loom::model(|| {
            let (tx, mut rx) = oneshot::channel();
            let t = thread::spawn(move || tx.send(1).unwrap());
            match rx.recv_timeout(Duration::ZERO) {
                Ok(v) => assert_eq!(v, 1),
                Err(oneshot::RecvTimeoutError::Timeout) => assert_eq!(rx.recv(), Ok(1)),
                Err(e) => panic!("unexpected {e:?}"),
            }
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_oneshot_send_races_receiver_drop() {
        loom::model(|| {
            let (tx, rx) = oneshot::channel();
            let value = Arc::new(AtomicUsize::new(0));
            let t = thread::spawn(move || tx.send(value).map_err(|v| Arc::strong_count(&v)));
            drop(rx);
            // Either delivered (then dropped with the receiver) or handed
            // back whole; never lost or duplicated.
            match t.join().unwrap() {
                Ok(()) => {}
                Err(count) => assert_eq!(count, 1),
            }
        });
    }
}

mod group_c {
    //! Mutex and Condvar.
    use super::*;

    #[test]
    fn loom_mutex_hand_off_keeps_exclusion() {
        loom::model(|| {
            let m = Arc::new(Mutex::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let m = m.clone();
                    thread::spawn(move || {
                        let mut g = m.lock();
                        let v = *g;
                        thread::yield_now();
                        *g = v + 1;
                    })
                })
                .collect();
            *m.lock() += 1;
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(*m.lock(), 3);
            assert!(!m.is_locked());
        });
    }

    #[test]
    fn loom_mutex_three_lockers_each_twice() {
        loom::model(|| {
            let m = Arc::new(Mutex::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let m = m.clone();
                    thread::spawn(move || {
                        for _ in 0..2 {
                            *m.lock() += 1;
                        }
                    })
                })
                .collect();
            for _ in 0..2 {
                *m.lock() += 1;
            }
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(*m.lock(), 6);
        });
    }

    #[test]
    fn loom_mutex_zero_timeout_lock_leaves_no_waiter_behind() {
        loom::model(|| {
            let m = Arc::new(Mutex::new(0));
            let m2 = m.clone();
            let t = thread::spawn(move || {
                if let Some(mut g) = m2.try_lock_for(Duration::ZERO) {
                    *g += 1;
                }
            });
            *m.lock() += 10;
            t.join().unwrap();
            let v = *m.lock();
            assert!(v == 10 || v == 11);
        });
    }

    #[test]
    fn loom_condvar_notify_is_not_lost() {
        loom::model(|| {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let p2 = pair.clone();
            let t = thread::spawn(move || {
                let (m, cv) = &*p2;
                *m.lock() = true;
                cv.notify_one();
            });
            let (m, cv) = &*pair;
            let g = cv.wait_while(m.lock(), |ready| !*ready);
            assert!(*g);
            drop(g);
            t.join().unwrap();
        });
    }
}

mod group_d {
    //! Notify, WaitGroup, Semaphore.
    use super::*;

    #[test]
    fn loom_notify_permit_is_never_lost() {
        loom::model(|| {
            let n = Arc::new(Notify::new());
            let n2 = n.clone();
            let t = thread::spawn(move || n2.notify_one());
            n.notified();
            t.join().unwrap();
            assert!(!n.try_notified());
        });
    }

    #[test]
    fn loom_notify_waiters_then_notify_one_always_releases_the_waiter() {
        loom::model(|| {
            let n = Arc::new(Notify::new());
            let n2 = n.clone();
            let t = thread::spawn(move || n2.notified());
            // If the waiter was already queued, notify_waiters wakes it and
            // notify_one stores a permit; if not, notify_waiters is a no-op
            // and notify_one's permit (or wake-up) is the waiter's.
            n.notify_waiters();
            n.notify_one();
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_wait_group_waiter_sees_all_work() {
        loom::model(|| {
            let wg = WaitGroup::new();
            let work = Arc::new(AtomicUsize::new(0));
            wg.add(2);
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (wg, work) = (wg.clone(), work.clone());
                    thread::spawn(move || {
                        work.fetch_add(1, Ordering::Relaxed);
                        wg.done();
                    })
                })
                .collect();
            wg.wait();
            assert_eq!(work.load(Ordering::Relaxed), 2);
            for t in threads {
                t.join().unwrap();
            }
        });
    }

    #[test]
    fn loom_semaphore_single_permit_is_exclusive() {
        loom::model(|| {
            let sem = Arc::new(Semaphore::new(1));
            let inside = Arc::new(AtomicUsize::new(0));
            let (s2, i2) = (sem.clone(), inside.clone());
            let t = thread::spawn(move || {
                let _p = s2.acquire();
                assert_eq!(i2.fetch_add(1, Ordering::Relaxed), 0);
                i2.fetch_sub(1, Ordering::Relaxed);
            });
            {
                let _p = sem.acquire();
                assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0);
                inside.fetch_sub(1, Ordering::Relaxed);
            }
            t.join().unwrap();
            assert_eq!(sem.available_permits(), 1);
        });
    }

    /// A send racing two receivers going to park, then the close: each
    /// receiver gets the value, then sees the channel closed.
    #[test]
    fn loom_broadcast_wakes_every_parked_receiver() {
        loom::model(|| {
            let (tx, mut a) = crate::sync::broadcast::channel::<u8>(1);
            let mut b = tx.subscribe();
            let t = thread::spawn(move || (b.recv(), b.recv()));
            tx.send(3).unwrap();
            drop(tx);
            let closed = Err(crate::sync::broadcast::RecvError::Closed);
            assert_eq!((a.recv(), a.recv()), (Ok(3), closed));
            assert_eq!(t.join().unwrap(), (Ok(3), closed));
        });
    }

    /// Two callers race to initialise: one initialiser runs, the other
    /// caller waits for it (or finds the value) and sees the same value.
    #[test]
    fn loom_once_cell_runs_one_initialiser() {
        loom::model(|| {
            let cell = Arc::new(OnceCell::new());
            let runs = Arc::new(AtomicUsize::new(0));
            let init = |runs: &AtomicUsize| {
                runs.fetch_add(1, Ordering::Relaxed);
                7u8
            };
            let (c2, r2) = (cell.clone(), runs.clone());
            let t = thread::spawn(move || *c2.get_or_init(|| init(&r2)));
            assert_eq!(*cell.get_or_init(|| init(&runs)), 7);
            assert_eq!(t.join().unwrap(), 7);
            assert_eq!(runs.load(Ordering::Relaxed), 1);
        });
    }

    /// A failed initialiser gives the cell back; a caller waiting on it
    /// wakes and initialises.
    #[test]
    fn loom_once_cell_failure_wakes_a_waiter() {
        loom::model(|| {
            let cell = Arc::new(OnceCell::new());
            let c2 = cell.clone();
            let t = thread::spawn(move || c2.get_or_try_init(|| Err::<u8, ()>(())).ok().copied());
            assert_eq!(*cell.get_or_init(|| 5), 5);
            // The thread failed before the value was set, or found it.
            assert!(matches!(t.join().unwrap(), None | Some(5)));
        });
    }

    /// The lock's data is a loom `UnsafeCell`: a read overlapping a write
    /// (no happens-before between their accesses) fails the model.
    #[test]
    fn loom_rwlock_a_write_and_reads_never_overlap() {
        loom::model(|| {
            let lock = Arc::new(RwLock::new(0u8));
            let l2 = lock.clone();
            let t = thread::spawn(move || {
                *l2.write() += 1;
                *l2.read()
            });
            let seen = *lock.read();
            assert!(seen <= 1);
            assert_eq!(t.join().unwrap(), 1);
            *lock.write() += 1;
            assert_eq!(*lock.read(), 2);
        });
    }
}
