//! Spawning, joining, yielding, sleeping and shutdown.

use pinstack::{task, Runtime};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn rt(workers: usize) -> Runtime {
    Runtime::builder()
        .worker_threads(workers)
        .build()
        .expect("runtime starts")
}

#[test]
fn block_on_returns_value() {
    let rt = rt(2);
    assert_eq!(rt.block_on(|| 21 * 2), 42);
}

#[test]
fn spawn_and_join_from_task() {
    let rt = rt(2);
    let sum: u64 = rt.block_on(|| {
        let hs: Vec<_> = (0..1000u64).map(|i| pinstack::spawn(move || i)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(sum, 999 * 1000 / 2);
}

#[test]
fn join_from_plain_thread() {
    let rt = rt(2);
    let h = rt.spawn(|| {
        pinstack::sleep(Duration::from_millis(5));
        "done"
    });
    let t = std::thread::spawn(move || h.join().unwrap());
    assert_eq!(t.join().unwrap(), "done");
}

#[test]
fn panic_is_returned_not_fatal() {
    let rt = rt(2);
    let err = rt.spawn(|| -> u32 { panic!("boom") }).join().unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("boom"), "{err}");
    assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
    // the workers survived
    assert_eq!(rt.block_on(|| 5), 5);
}

#[test]
fn block_on_reraises_panic() {
    let rt = rt(1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| panic!("inner"))
    }));
    let p = r.unwrap_err();
    assert_eq!(*p.downcast::<&str>().unwrap(), "inner");
}

#[test]
fn detached_tasks_run() {
    let rt = rt(2);
    let n = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for _ in 0..100 {
        let n = n.clone();
        let tx = tx.clone();
        drop(rt.spawn(move || {
            if n.fetch_add(1, SeqCst) == 99 {
                tx.send(()).unwrap();
            }
        }));
    }
    rx.recv_timeout(Duration::from_secs(30))
        .expect("all detached tasks ran");
    assert_eq!(n.load(SeqCst), 100);
}

#[test]
fn yield_interleaves_tasks_on_one_worker() {
    let rt = rt(1);
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let l2 = log.clone();
    rt.block_on(move || {
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let l = l2.clone();
                pinstack::spawn(move || {
                    for _ in 0..3 {
                        l.lock().unwrap().push(i);
                        pinstack::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 9);
    // With one worker, yielding lets each task run before any runs twice.
    assert_eq!(&log[..3], &[0, 1, 2], "log {log:?}");
}

#[test]
fn sleep_waits_at_least_the_duration() {
    let rt = rt(2);
    let elapsed = rt.block_on(|| {
        let t = Instant::now();
        pinstack::sleep(Duration::from_millis(30));
        t.elapsed()
    });
    assert!(elapsed >= Duration::from_millis(30), "{elapsed:?}");
}

#[test]
fn many_sleepers_all_wake() {
    let rt = rt(2);
    let n = rt.block_on(|| {
        let hs: Vec<_> = (0..2000u64)
            .map(|i| {
                pinstack::spawn(move || {
                    let d = Duration::from_millis(i % 20);
                    let t = Instant::now();
                    pinstack::sleep(d);
                    t.elapsed() >= d
                })
            })
            .collect();
        hs.into_iter()
            .filter(|_| true)
            .map(|h| h.join().unwrap() as usize)
            .sum::<usize>()
    });
    assert_eq!(n, 2000);
}

#[test]
fn builder_names_and_hints() {
    let rt = rt(2);
    rt.block_on(|| {
        let h = task::Builder::new()
            .name("conn")
            .stack_size(16 * 1024)
            .spawn(task::current_name)
            .unwrap();
        assert_eq!(h.name(), Some("conn"));
        assert_eq!(h.join().unwrap().as_deref(), Some("conn"));
        let err = task::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    });
}

#[test]
fn spawn_outside_runtime_is_an_error() {
    let err = task::Builder::new().spawn(|| ()).unwrap_err();
    assert!(
        err.to_string().contains("outside a pinstack runtime"),
        "{err}"
    );
}

#[test]
fn live_task_limit() {
    let rt = Runtime::builder()
        .worker_threads(1)
        .max_live_tasks(3)
        .build()
        .unwrap();
    rt.block_on(|| {
        // block_on's own task counts: two more fit.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let a = pinstack::spawn(move || drop(tx));
        let r2 = rx.clone();
        let b = pinstack::spawn(move || drop(r2));
        let err = task::Builder::new().spawn(|| ()).unwrap_err();
        assert!(err.to_string().contains("live task limit"), "{err}");
        a.join().unwrap();
        b.join().unwrap();
        // once they finished, spawning works again
        task::Builder::new().spawn(|| ()).unwrap().join().unwrap();
    });
}

#[test]
fn bad_builder_settings_are_errors() {
    let e = Runtime::builder()
        .default_stack_size(16 << 20)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("default_stack_size"), "{e}");
    let e = Runtime::builder().max_live_tasks(0).build().unwrap_err();
    assert!(e.to_string().contains("max_live_tasks"), "{e}");
}

#[test]
fn hundred_thousand_concurrent_tasks() {
    let rt = Runtime::builder()
        .worker_threads(2)
        .default_stack_size(32 * 1024)
        .build()
        .unwrap();
    let done = rt.block_on(|| {
        let gate = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..100_000)
            .map(|_| {
                let g = gate.clone();
                pinstack::spawn(move || {
                    g.fetch_add(1, SeqCst);
                    // stay alive until every task has started
                    while g.load(SeqCst) < 100_000 {
                        pinstack::sleep(Duration::from_millis(1));
                    }
                    1usize
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    });
    assert_eq!(done, 100_000);
}

struct SetOnDrop(Arc<AtomicUsize>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn drop_runtime_unwinds_suspended_tasks() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let rt = rt(2);
    let mut handles = Vec::new();
    for _ in 0..50 {
        let d = SetOnDrop(dropped.clone());
        handles.push(rt.spawn(move || {
            let _d = d;
            pinstack::sleep(Duration::from_secs(3600));
        }));
    }
    // let them all start and suspend
    while rt
        .metrics()
        .workers
        .iter()
        .map(|w| w.suspends_timer)
        .sum::<u64>()
        < 50
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    assert_eq!(
        dropped.load(SeqCst),
        50,
        "every suspended task's locals were dropped"
    );
    for h in handles {
        assert!(h.join().unwrap_err().is_cancelled());
    }
}

#[test]
fn spawn_blocking_does_not_block_worker() {
    let rt = rt(1);
    rt.block_on(|| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let blocker = pinstack::spawn_blocking(move || rx.recv().is_ok());
        // the single worker still runs other tasks while the job blocks
        let other = pinstack::spawn(move || {
            tx.send(()).unwrap();
            7
        });
        assert_eq!(other.join().unwrap(), 7);
        assert!(blocker.join().unwrap());
    });
}

#[test]
fn nested_block_on_inside_task_does_not_deadlock() {
    let rt = Arc::new(rt(1));
    let rt2 = rt.clone();
    let v = rt.block_on(move || rt2.block_on(|| 3) + 1);
    assert_eq!(v, 4);
}

#[test]
fn future_block_on_woken_from_another_thread() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    struct Shared {
        ready: bool,
        waker: Option<Waker>,
    }
    struct Fut(Arc<std::sync::Mutex<Shared>>);
    impl Future for Fut {
        type Output = u8;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u8> {
            let mut s = self.0.lock().unwrap();
            if s.ready {
                Poll::Ready(9)
            } else {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
    let rt = rt(1);
    let shared = Arc::new(std::sync::Mutex::new(Shared {
        ready: false,
        waker: None,
    }));
    let s2 = shared.clone();
    let h = rt.spawn(move || pinstack::block_on(Fut(s2)));
    // a second task on the same single worker keeps running meanwhile
    assert_eq!(rt.block_on(|| 1), 1);
    loop {
        let mut s = shared.lock().unwrap();
        if let Some(w) = s.waker.take() {
            s.ready = true;
            w.wake();
            break;
        }
        drop(s);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(h.join().unwrap(), 9);
}

#[test]
fn several_runtimes_coexist() {
    let a = rt(1);
    let b = rt(1);
    let hb = b.handle();
    let v = a.block_on(move || hb.spawn(|| 2).join().unwrap() + 1);
    assert_eq!(v, 3);
}

/// Counts its drops; aligned to 128 bytes, so a task capturing it is
/// over-aligned for the task memory's size classes (16-byte blocks).
#[repr(align(128))]
struct Aligned(Arc<AtomicUsize>, u64);

impl Drop for Aligned {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn tasks_of_every_size_and_alignment_run_and_drop_their_captures_once() {
    // Task memory comes from size classes up to 1 KiB with 16-byte
    // alignment, and from the global allocator beyond: closures and
    // outputs on both sides of those limits, joined and detached. Debug builds copy the arrays around
    // on the stack: 512 KiB stacks.
    let rt = Runtime::builder()
        .worker_threads(2)
        .default_stack_size(512 * 1024)
        .build()
        .unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let total = rt.block_on(move || {
        let mut handles = Vec::new();
        for round in 0..200u64 {
            let small = [round as u8; 8];
            let medium = [round as u8; 900];
            let large = [round as u8; 5000];
            let aligned = Aligned(d.clone(), round);
            handles.push(pinstack::spawn(move || u64::from(small[7])));
            handles.push(pinstack::spawn(move || u64::from(medium[899])));
            handles.push(pinstack::spawn(move || u64::from(large[4999])));
            handles.push(pinstack::spawn(move || aligned.1));
            // Detached, with an over-aligned output that is never joined.
            let out = Aligned(d.clone(), round);
            drop(pinstack::spawn(move || out));
            // A large output, joined.
            let big = pinstack::spawn(move || [round as u8; 3000]);
            assert_eq!(big.join().unwrap()[2999], round as u8);
        }
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(total, 4 * (0..200u64).sum::<u64>());
    // Every capture and every detached output dropped exactly once; the
    // detached tasks may still be finishing, so wait (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while drops.load(SeqCst) < 400 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(rt);
    assert_eq!(drops.load(SeqCst), 400);
}
