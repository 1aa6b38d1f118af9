//! Unit tests of `crate::sync` on plain threads (what `crate::park` parks
//! today). No timing thresholds: a test waits for a condition it can
//! observe (a probe on the primitive's wait list), and asserts only that a
//! timeout lasted *at least* its duration.

mod auto_traits;
mod broadcast;
mod condvar;
mod mpsc;
mod mutex;
mod notify;
mod once_cell;
mod oneshot;
mod rwlock;
mod select;
mod semaphore;
mod wait_group;
mod wait_list;

use std::time::{Duration, Instant};

/// Polls `cond` until it holds. Panics (naming `what`) only after a minute,
/// which no correct run comes near: this guards against a hung suite, it
/// does not measure anything.
#[track_caller]
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < give_up, "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A runtime of `workers` workers that ignores `PINSTACK_*`, for the tests
/// on coroutines.
fn runtime(workers: usize) -> crate::Runtime {
    crate::Runtime::builder()
        .worker_threads(workers)
        .ignore_environment()
        .build()
        .expect("runtime starts")
}

/// A value that counts its drops.
#[derive(Debug)]
struct DropCounter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
