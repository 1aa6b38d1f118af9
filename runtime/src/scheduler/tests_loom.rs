//! loom models of the worker sleep/wake protocol (`idle.rs`): the real
//! [`SleepFlag`] and [`Idle`] code, with
//!
//! * an atomic count of queued items standing in for a worker's inbox or the
//!   global injector (push: `fetch_add`; the worker's "re-check every
//!   source" in `sleep()` is a plain load, as `work_visible` is),
//! * loom's `thread::park` standing in for `Poll::poll`, and `unpark` for the
//!   `mio::Waker`: like the eventfd, an unpark that comes before the park
//!   makes the park return at once.
//!
//! The worker loop is `worker.rs`'s: look for work; else `prepare_sleep`,
//! re-check (work or shutdown: `cancel_sleep`), sleep, `cancel_sleep`. The
//! producer is `push_remote` (push, `fence(SeqCst)`, `notify` that worker)
//! or `push_injector` (push, `fence(SeqCst)`, `claim_one`). A lost wake-up
//! leaves a worker parked with work queued: loom reports the deadlock.
//!
//! Run with
//! `RUSTFLAGS="--cfg pinstack_loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p pinstack --lib loom_sleep`.

use super::idle::{Idle, SleepFlag};
use crate::loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering::*};
use crate::loom::sync::Arc;
use loom::thread::{self, Thread};

/// The shared side of a model: the sleep state of `n` workers and one queue.
struct World {
    idle: Idle,
    flags: Vec<SleepFlag>,
    /// Queued items (the inbox or the injector).
    work: AtomicUsize,
    /// Items taken by the workers.
    consumed: AtomicUsize,
    /// Sleeps begun (re-check done, about to park).
    parked: AtomicUsize,
    shutdown: AtomicBool,
    /// Sleeps of each worker claimed by a producer (`notify`/`claim_one`
    /// returned true for it).
    claims: Vec<AtomicUsize>,
}

impl World {
    fn new(n: usize) -> Arc<World> {
        Arc::new(World {
            idle: Idle::default(),
            flags: (0..n).map(|_| SleepFlag::default()).collect(),
            work: AtomicUsize::new(0),
            consumed: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            claims: (0..n).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    fn push(&self) {
        self.work.fetch_add(1, Release);
        // `push_remote` / `push_injector`: the fence between publishing the
        // work and reading the sleep flags.
        fence(SeqCst);
    }

    /// `push_remote`'s wake: claims worker `i`'s sleep, if it sleeps.
    fn notify(&self, i: usize, threads: &[Thread]) {
        if self.flags[i].notify(&self.idle) {
            self.claims[i].fetch_add(1, Relaxed);
            threads[i].unpark();
        }
    }

    /// `notify_one`'s wake: claims one sleeping worker, if any.
    fn notify_one(&self, threads: &[Thread]) -> Option<usize> {
        let claimed = self.idle.claim_one(self.flags.len(), |i| &self.flags[i]);
        if let Some(i) = claimed {
            self.claims[i].fetch_add(1, Relaxed);
            threads[i].unpark();
        }
        claimed
    }

    fn try_take(&self) -> bool {
        self.work
            .fetch_update(Acquire, Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    /// The runtime's shutdown: set the flag, wake every worker's poller.
    fn shut_down(&self, threads: &[Thread]) {
        self.shutdown.store(true, SeqCst);
        for t in threads {
            t.unpark();
        }
    }
}

/// What a worker saw, for the final checks.
#[derive(Debug, Default)]
struct Seen {
    /// Times it went to sleep in the "poller".
    sleeps: usize,
    /// `cancel_sleep` calls that found the sleep claimed by a producer.
    claimed: usize,
}

/// Worker `me`'s loop (`worker.rs`: run queue, then `sleep()`), until
/// shutdown.
fn worker(w: &World, me: usize) -> Seen {
    let mut seen = Seen::default();
    let flag = &w.flags[me];
    loop {
        if w.try_take() {
            w.consumed.fetch_add(1, Release);
            continue;
        }
        if w.shutdown.load(Acquire) {
            return seen;
        }
        flag.prepare_sleep(&w.idle);
        // The re-check of every source (`work_visible`) and of shutdown.
        if w.work.load(Relaxed) > 0 || w.shutdown.load(Relaxed) {
            seen.claimed += usize::from(!flag.cancel_sleep(&w.idle));
            continue;
        }
        seen.sleeps += 1;
        w.parked.fetch_add(1, Release);
        thread::park(); // Poll::poll
        seen.claimed += usize::from(!flag.cancel_sleep(&w.idle));
    }
}

fn spawn_workers(w: &Arc<World>, n: usize) -> Vec<thread::JoinHandle<Seen>> {
    (0..n)
        .map(|i| {
            let w = w.clone();
            thread::spawn(move || worker(&w, i))
        })
        .collect()
}

/// The model's main thread waits for the workers. (Not with `park`: a
/// worker's `unpark` could then reach it while it is blocked in a loom
/// `join`, which loom does not support.)
fn wait_until(cond: impl Fn() -> bool) {
    while !cond() {
        thread::yield_now();
    }
}

/// Shuts the workers down and checks the bookkeeping: every claim was seen
/// by exactly the sleep it claimed, and no sleeper is left counted.
fn finish(w: &World, handles: Vec<thread::JoinHandle<Seen>>, threads: &[Thread]) -> Vec<Seen> {
    w.shut_down(threads);
    let seen: Vec<Seen> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(
            s.claimed,
            w.claims[i].load(Relaxed),
            "worker {i}: claims and claimed sleeps differ"
        );
        assert!(!w.flags[i].is_set());
    }
    assert_eq!(w.idle.sleepers.load(Relaxed), 0, "a sleeper left counted");
    seen
}

#[test]
fn loom_sleep_push_remote_is_not_lost() {
    // One worker; two items pushed into its inbox, each followed by the
    // targeted wake. The worker may be running, deciding to sleep, or asleep
    // at each push: either way it takes both items.
    loom::model(|| {
        let w = World::new(1);
        let handles = spawn_workers(&w, 1);
        let threads: Vec<Thread> = handles.iter().map(|h| h.thread().clone()).collect();
        for _ in 0..2 {
            w.push();
            w.notify(0, &threads);
        }
        wait_until(|| w.consumed.load(Acquire) == 2);
        let seen = finish(&w, handles, &threads);
        assert!(seen[0].claimed <= 2, "more claims than wake-ups");
    });
}

#[test]
fn loom_sleep_notify_one_wakes_one_of_two_racing_workers() {
    // Two workers racing into sleep, one injector push with `notify_one`:
    // the item is taken (no lost wake-up, whatever each worker was doing),
    // and at most one sleep is claimed.
    loom::model(|| {
        let w = World::new(2);
        let handles = spawn_workers(&w, 2);
        let threads: Vec<Thread> = handles.iter().map(|h| h.thread().clone()).collect();
        w.push();
        let _ = w.notify_one(&threads);
        wait_until(|| w.consumed.load(Acquire) == 1);
        let claims: usize = w.claims.iter().map(|c| c.load(Relaxed)).sum();
        assert!(claims <= 1, "one notification claimed {claims} sleepers");
        finish(&w, handles, &threads);
    });
}

#[test]
fn loom_sleep_one_notify_claims_exactly_one_of_two_sleepers() {
    // Both workers are asleep before the push: the one notification claims
    // exactly one of them (no thundering herd, no lost wake-up), and the
    // other stays asleep and counted until shutdown.
    loom::model(|| {
        let w = World::new(2);
        let handles = spawn_workers(&w, 2);
        let threads: Vec<Thread> = handles.iter().map(|h| h.thread().clone()).collect();
        wait_until(|| w.parked.load(Acquire) == 2);
        assert_eq!(w.idle.sleepers.load(Acquire), 2);
        w.push();
        // `notify_one`, with checks between the claim and the wake-up.
        let claimed = w
            .idle
            .claim_one(2, |i| &w.flags[i])
            .expect("two sleepers, none claimed");
        assert!(!w.flags[claimed].is_set());
        assert!(w.flags[1 - claimed].is_set(), "both sleepers claimed");
        assert_eq!(w.idle.sleepers.load(Acquire), 1);
        w.claims[claimed].fetch_add(1, Relaxed);
        threads[claimed].unpark();
        wait_until(|| w.consumed.load(Acquire) == 1);
        // The other one slept through it.
        assert!(w.flags[1 - claimed].is_set());
        let seen = finish(&w, handles, &threads);
        assert_eq!(seen[claimed].claimed, 1);
        assert_eq!(seen[1 - claimed].claimed, 0);
        assert!(seen.iter().all(|s| s.sleeps >= 1));
    });
}

#[test]
fn loom_sleep_two_producers_one_sleeper() {
    // Two producers at once, one into the worker's inbox (`push_remote`), one
    // into the injector (`notify_one`); only one of them can claim the
    // worker's sleep, and the worker, once woken, still finds both items.
    loom::model(|| {
        let w = World::new(1);
        let handles = spawn_workers(&w, 1);
        let threads: Vec<Thread> = handles.iter().map(|h| h.thread().clone()).collect();
        let (w2, t2) = (w.clone(), threads.clone());
        let producer = thread::spawn(move || {
            w2.push();
            let _ = w2.notify_one(&t2);
        });
        w.push();
        w.notify(0, &threads);
        producer.join().unwrap();
        wait_until(|| w.consumed.load(Acquire) == 2);
        finish(&w, handles, &threads);
    });
}
