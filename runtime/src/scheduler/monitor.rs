//! The monitor thread (Go's sysmon): detects long runs without the hot path
//! reading a clock.
//!
//! Every period it samples each worker's `resume_seq` (odd while a coroutine
//! runs). The same odd value on two consecutive samples means one resume has
//! run for longer than a period: a long run. The monitor counts it once,
//! marks the worker `stuck` so idle workers may steal even its last
//! unstarted task, and wakes a sleeper if that worker has unstarted tasks.

use super::Shared;
use crate::loom::sync::atomic::Ordering::Relaxed;
use crate::loom::sync::{Arc, Condvar, Mutex};
use std::io;
use std::thread;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Monitor {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Monitor {
    pub(crate) fn start(shared: Arc<Shared>, period: Duration, name: &str) -> io::Result<Monitor> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = stop.clone();
        let thread = thread::Builder::new()
            .name(format!("{name}-monitor"))
            .spawn(move || run(&shared, &stop2, period))?;
        Ok(Monitor {
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn stop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared, stop: &(Mutex<bool>, Condvar), period: Duration) {
    let n = shared.workers.len();
    let mut last = vec![0u64; n];
    let mut reported = vec![0u64; n];
    let (lock, cv) = stop;
    let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let (g, _) = cv
            .wait_timeout(stopped, period)
            .unwrap_or_else(|e| e.into_inner());
        stopped = g;
        if *stopped {
            return;
        }
        for (i, w) in shared.workers.iter().enumerate() {
            let seq = w.resume_seq.load(Relaxed);
            let long = seq & 1 == 1 && seq == last[i];
            if long && reported[i] != seq {
                reported[i] = seq;
                w.stats.long_runs.incr();
                shared.obs.long_run_detected(i, seq);
            }
            w.stuck.store(long, Relaxed);
            if long && !w.stealer.is_empty() {
                shared.notify_one();
            }
            last[i] = seq;
        }
    }
}
