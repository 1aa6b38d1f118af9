//! Runtime metrics on constructed workloads: suspends by reason, steals,
//! long runs with the task's name, live tasks, run-queue depth, scheduling
//! delay, metrics off, and the Prometheus text.

use pinstack::sync::{mpsc as pmpsc, oneshot};
use pinstack::{task, Runtime, RuntimeMetrics};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn rt(workers: usize) -> pinstack::Builder {
    Runtime::builder()
        .worker_threads(workers)
        .ignore_environment()
}

fn sum(m: &RuntimeMetrics, f: impl Fn(&pinstack::WorkerMetrics) -> u64) -> u64 {
    m.workers.iter().map(f).sum()
}

/// Polls `cond` until it holds; panics after 10 s (a hang, not a timing).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn suspends_are_counted_by_reason() {
    let rt = rt(1).build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let before = rt.metrics();
    rt.block_on(move || {
        let listener = pinstack::net::TcpListener::from_std(listener).unwrap();
        // I/O: accept waits until a plain thread connects.
        let acceptor = pinstack::spawn(move || listener.accept().map(|_| ()).is_ok());
        pinstack::yield_now(); // yield; the acceptor parks on I/O meanwhile
        let connector = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"x").unwrap();
        });
        // Timer.
        let sleeper = pinstack::spawn(|| pinstack::sleep(Duration::from_millis(2)));
        // Channel: the receiver parks until we send.
        let (tx, rx) = pmpsc::channel::<u32>(1);
        let receiver = pinstack::spawn(move || rx.recv().unwrap());
        pinstack::yield_now();
        tx.send(7).unwrap();
        assert_eq!(receiver.join().unwrap(), 7); // join
        sleeper.join().unwrap();
        assert!(acceptor.join().unwrap());
        connector.join().unwrap();
    });
    let m = rt.metrics();
    let d = |f: fn(&pinstack::WorkerMetrics) -> u64| sum(&m, f) - sum(&before, f);
    assert!(d(|w| w.suspends_io) >= 1, "{m:?}");
    assert!(d(|w| w.suspends_timer) >= 1, "{m:?}");
    assert!(d(|w| w.suspends_sync) >= 1, "{m:?}");
    assert!(d(|w| w.suspends_join) >= 1, "{m:?}");
    assert!(d(|w| w.yields) >= 2, "{m:?}");
    // Every suspension ends a resume; the last resume of each task is a
    // finish: resumes = suspensions + 4 spawned tasks + block_on.
    let suspends = d(|w| {
        w.yields
            + w.suspends_io
            + w.suspends_timer
            + w.suspends_sync
            + w.suspends_join
            + w.suspends_future
    });
    assert_eq!(d(|w| w.resumes), suspends + 4, "{m:?}");
}

#[test]
fn steals_are_counted_and_a_long_run_is_named() {
    let rt = rt(2)
        .long_run_threshold(Duration::from_millis(10))
        .build()
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let ran2 = ran.clone();
    let hog = task::Builder::new()
        .name("hog")
        .spawn_on(
            move || {
                let kids: Vec<_> = (0..16)
                    .map(|_| {
                        let r = ran2.clone();
                        pinstack::spawn(move || {
                            r.fetch_add(1, SeqCst);
                        })
                    })
                    .collect();
                // Block this worker: the children can only run if the other
                // worker steals them.
                let deadline = Instant::now() + Duration::from_secs(10);
                while ran2.load(SeqCst) < 16 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                // Stay in this resume for several monitor periods.
                std::thread::sleep(Duration::from_millis(50));
                drop(kids);
                ran2.load(SeqCst)
            },
            &rt.handle(),
        )
        .unwrap();
    assert_eq!(
        hog.join().unwrap(),
        16,
        "every child ran on the other worker"
    );
    let m = rt.metrics();
    assert!(sum(&m, |w| w.steals + w.remote_steals) >= 1, "{m:?}");
    assert!(sum(&m, |w| w.long_runs) >= 1, "{m:?}");
    assert!(
        m.long_runs
            .iter()
            .any(|l| l.task.as_deref() == Some("hog") && l.site.contains("obs_metrics.rs")),
        "long runs: {:?}",
        m.long_runs
    );
    assert_eq!(ran.load(SeqCst), 16);
}

#[test]
fn live_tasks_and_run_queue_depth() {
    let rt = rt(1).build().unwrap();
    let (queued, parked) = rt.block_on(|| {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for i in 0..50u32 {
            let (tx, rx) = oneshot::channel::<u32>();
            senders.push(tx);
            handles.push(pinstack::spawn(move || rx.recv().unwrap() + i));
        }
        // One worker, and this task has not suspended: all 50 wait unstarted.
        let queued = pinstack::Handle::current().metrics();
        pinstack::yield_now(); // they all start and park on their oneshot
        let parked = pinstack::Handle::current().metrics();
        for tx in senders {
            tx.send(1).unwrap();
        }
        let total: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 50 + (0..50).sum::<u32>());
        // A joined child has left its worker's count.
        let joined = pinstack::Handle::current().metrics();
        assert_eq!(joined.workers[0].started_tasks, 1, "{joined:?}");
        (queued, parked)
    });
    assert!(queued.workers[0].run_queue_depth >= 50, "{queued:?}");
    assert_eq!(queued.live_tasks, 51, "50 children and block_on");
    assert_eq!(parked.live_tasks, 51);
    // Started tasks live on their worker: only block_on's had started, then
    // block_on's and the children that ran before it was resumed again.
    assert_eq!(queued.workers[0].started_tasks, 1, "{queued:?}");
    let started = parked.workers[0].started_tasks;
    assert!((2..=51).contains(&started), "{parked:?}");
    wait_until("live tasks to drop to 0", || rt.metrics().live_tasks == 0);
    wait_until("started tasks to drop to 0", || {
        rt.metrics().workers[0].started_tasks == 0
    });
}

#[test]
fn scheduling_delay_shows_a_blocked_worker() {
    let rt = rt(1).scheduling_delay_sample_every(1).build().unwrap();
    let (tx, rx) = pmpsc::channel::<()>(1);
    let waiter = rt.spawn(move || rx.recv().is_ok());
    wait_until("the waiter to park", || {
        sum(&rt.metrics(), |w| w.suspends_sync) >= 1
    });
    let (running_tx, running_rx) = mpsc::channel::<()>();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let hog = rt.spawn(move || {
        running_tx.send(()).unwrap();
        ack_rx.recv().unwrap();
        // The waiter was woken before the ack: it waits behind this.
        std::thread::sleep(Duration::from_millis(30));
    });
    running_rx.recv().unwrap();
    tx.send(()).unwrap(); // wakes the waiter while the hog holds the worker
    ack_tx.send(()).unwrap();
    hog.join().unwrap();
    assert!(waiter.join().unwrap());
    let d = rt.metrics().scheduling_delay;
    assert!(d.count() >= 3, "{d:?}"); // waiter's spawn and wake, hog's spawn
    assert!(d.max() >= Duration::from_millis(30), "{d:?}");
    assert!(d.p50() <= d.p99() && d.p99() <= d.max(), "{d:?}");
    assert_eq!(rt.metrics().workers[0].scheduling_delay, d);
}

#[test]
fn one_wake_up_in_n_is_measured_n_rounded_up_to_a_power_of_two() {
    // 5 rounds up to 8: of 1,600 yields (each a wake-up, the yielding
    // task is runnable at once), 200 are measured (give or take the
    // block_on task's spawn, sampled by its number on the spawning
    // thread's count); as many with 8, and with 1 all of them.
    let yields = 1600;
    let measured = |every: u32| {
        let rt = rt(1).scheduling_delay_sample_every(every).build().unwrap();
        rt.block_on(move || {
            for _ in 0..yields {
                pinstack::yield_now();
            }
        });
        rt.metrics().scheduling_delay.count()
    };
    for every in [5, 8] {
        let n = measured(every);
        assert!((199..=202).contains(&n), "every {every}: {n} of {yields}");
    }
    let all = measured(1);
    assert!((yields..=yields + 5).contains(&all), "{all} of {yields}");
}

#[test]
fn one_spawn_in_n_has_its_first_run_delay_measured() {
    // Spawns are sampled by their number on the spawning thread's count
    // (the 8th, 16th, ...): of 1,600 tasks spawned by one task before any
    // of them runs, 200 have the delay to their first run measured. The
    // spawner's one suspension (joining the first task) and the block_on
    // task add at most a couple. (Joining each task would add the
    // joiner's sampled suspensions: it runs again after each task.)
    let tasks = 1600;
    let rt = rt(1).scheduling_delay_sample_every(8).build().unwrap();
    rt.block_on(move || {
        let wg = pinstack::sync::WaitGroup::new();
        wg.add(tasks);
        for _ in 0..tasks {
            let wg = wg.clone();
            drop(pinstack::spawn(move || wg.done()));
        }
        wg.wait();
    });
    let n = rt.metrics().scheduling_delay.count();
    assert!(
        (200..=203).contains(&n),
        "{n} delays measured of {tasks} spawns"
    );
}

#[test]
fn metrics_off_counts_nothing_on_the_workers() {
    let rt = rt(1)
        .metrics(false)
        .long_run_threshold(Duration::from_millis(5))
        .build()
        .unwrap();
    rt.block_on(|| {
        // The hog runs without suspending until the monitor has counted it
        // (bounded at 60 s), so a loaded machine that delays the monitor
        // thread cannot make this fail.
        let h = pinstack::spawn(|| {
            let handle = pinstack::Handle::current();
            let long_runs = || {
                handle
                    .metrics()
                    .workers
                    .iter()
                    .map(|w| w.long_runs)
                    .sum::<u64>()
            };
            let give_up = std::time::Instant::now() + Duration::from_secs(60);
            std::thread::sleep(Duration::from_millis(30));
            while long_runs() == 0 && std::time::Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        pinstack::yield_now();
        h.join().unwrap();
    });
    let m = rt.metrics();
    assert!(!m.metrics_enabled);
    assert_eq!(m.scheduling_delay.count(), 0);
    assert_eq!(m.live_tasks, 0);
    assert!(m.stack_sites.is_empty());
    assert!(
        m.long_runs.is_empty(),
        "no names recorded: {:?}",
        m.long_runs
    );
    assert!(sum(&m, |w| w.long_runs) >= 1, "the monitor still counts");
    assert_eq!(sum(&m, |w| w.resumes), 0, "{m:?}");
    assert_eq!(sum(&m, |w| w.yields), 0, "{m:?}");
    assert_eq!(
        sum(&m, |w| w.spawned + w.parks + w.steals + w.remote_steals),
        0
    );
}

#[test]
fn prometheus_text_is_well_formed() {
    let rt = rt(2).scheduling_delay_sample_every(1).build().unwrap();
    rt.block_on(|| {
        let hs: Vec<_> = (0..20)
            .map(|_| pinstack::spawn(pinstack::yield_now))
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        pinstack::arena::with_arena(|a| {
            a.alloc_slice_fill_copy(64, 1u8);
        });
    });
    let m = rt.metrics();
    let text = m.to_prometheus();
    let mut families = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let kind = rest.split(' ').nth(1).unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            families += 1;
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').expect("name and value");
        assert!(value.parse::<f64>().is_ok(), "value of {line}");
        let bare = name.split('{').next().unwrap();
        assert!(bare.starts_with("pinstack_"), "{line}");
        assert!(
            bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        if let Some(labels) = name.strip_prefix(bare) {
            assert!(labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')));
        }
    }
    assert!(families >= 20, "{families} families");
    let resumes: u64 = m.workers.iter().map(|w| w.resumes).sum();
    let listed: u64 = text
        .lines()
        .filter(|l| l.starts_with("pinstack_worker_resumes_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(listed, resumes);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("pinstack_worker_started_tasks{"))
            .count(),
        2,
        "one started-tasks gauge per worker"
    );
    // Histogram: cumulative buckets end with +Inf equal to _count.
    for w in 0..2 {
        let buckets: Vec<u64> = text
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "pinstack_scheduling_delay_seconds_bucket{{worker=\"{w}\","
                ))
            })
            .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
            .collect();
        assert!(buckets.windows(2).all(|p| p[0] <= p[1]), "{buckets:?}");
        let count: u64 = text
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "pinstack_scheduling_delay_seconds_count{{worker=\"{w}\"}}"
                ))
            })
            .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
            .unwrap();
        assert_eq!(buckets.last().copied(), Some(count));
        assert_eq!(count, m.workers[w].scheduling_delay.count());
    }
    assert!(m.scheduling_delay.count() >= 20);
    assert!(text.contains("pinstack_arena_resets_total "));
    assert!(m.arena.resets >= 1);
}
