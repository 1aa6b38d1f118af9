//! The `overhead` workload: what metrics and tracing cost on the two
//! hottest paths, spawning and a message ping-pong.
//!
//! | metric             | pinstack                                   | baseline (`off`)          |
//! |--------------------|--------------------------------------------|---------------------------|
//! | `spawn_metrics`    | ns per spawned+joined task, metrics on     | same, metrics and tracing off |
//! | `spawn_tracing`    | same, metrics and tracing on               | same, both off            |
//! | `pingpong_metrics` | ns per round trip over channels, metrics on| same, both off            |
//! | `pingpong_tracing` | same, metrics and tracing on               | same, both off            |
//!
//! Floors (BENCHMARKS.md): metrics ratio <= 1.05, tracing ratio <= 1.25.
//! The bodies follow the `spawn` and `pingpong` workloads: `n` tasks that
//! each bump an atomic, spawned from one task and all joined; two tasks
//! passing a token over two bounded channels, pinned to one worker (see
//! [`pingpong_ns`]). Each configuration has three runtimes of 2 workers,
//! built before timing (see [`RUNTIMES`]); the configurations run
//! alternately (off, metrics, tracing, off, ...), 5 times on each runtime,
//! and each figure is the median of a configuration's 15 samples.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use pinstack::sync::mpsc;
use pinstack::Runtime;

use super::{Opts, Workload};
use crate::report::{median, Figure};
use crate::Result;

/// The workload's registry entry.
pub const WORKLOAD: Workload = Workload {
    name: "overhead",
    run,
    children: &[],
};

const NAME: &str = "overhead";
/// Samples per runtime.
const RUNS: usize = 5;

/// The three configurations compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// Metrics and tracing off.
    Off,
    /// The default: metrics on, tracing off.
    Metrics,
    /// Metrics and tracing on.
    Tracing,
}

/// A 2-worker runtime in configuration `c`, ignoring `PINSTACK_*`.
///
/// # Errors
///
/// When the runtime cannot start.
pub fn runtime(c: Config) -> io::Result<Runtime> {
    runtime_with(c, 2)
}

/// A runtime of `workers` workers in configuration `c`, ignoring
/// `PINSTACK_*` (the `obs_ir` instruction-count harness uses 1 worker, so
/// that no idle worker's polling adds to the counts).
///
/// # Errors
///
/// When the runtime cannot start.
pub fn runtime_with(c: Config, workers: usize) -> io::Result<Runtime> {
    Runtime::builder()
        .worker_threads(workers)
        .ignore_environment()
        .metrics(c != Config::Off)
        .tracing(c == Config::Tracing)
        .build()
}

/// Nanoseconds per task: `n` tasks that each bump an atomic, spawned from
/// one task, all joined.
///
/// # Errors
///
/// A failed join, or a count that does not add up.
pub fn spawn_ns(rt: &Runtime, n: u64) -> Result<f64> {
    let counter = Arc::new(AtomicU64::new(0));
    let c = counter.clone();
    let ns = rt.block_on(move || -> io::Result<f64> {
        let start = Instant::now();
        let mut handles = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let c = c.clone();
            handles.push(pinstack::spawn(move || {
                c.fetch_add(1, Relaxed);
            }));
        }
        for h in handles {
            h.join().map_err(|e| io::Error::other(e.to_string()))?;
        }
        Ok(start.elapsed().as_nanos() as f64 / n.max(1) as f64)
    })?;
    let done = counter.load(Relaxed);
    if done != n {
        return Err(format!("spawn: {done} of {n} tasks ran").into());
    }
    Ok(ns)
}

/// Spawns `f` pinned to the calling worker.
fn pinned<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<pinstack::JoinHandle<T>> {
    pinstack::task::Builder::new()
        .pin_to_current_worker()
        .spawn(f)
}

/// Nanoseconds per round trip: two tasks pass a token over two channels
/// of capacity 1, `n` times, both pinned to the spawning worker.
///
/// Unlike the `pingpong` workload (tasks spawned plainly), both tasks run
/// on one worker here: plain spawns put them on one or two workers
/// depending on timing, and a cross-worker round trip costs several times
/// a local one, a bimodal spread far wider than the few percent measured.
///
/// # Errors
///
/// A closed channel or a failed join.
pub fn pingpong_ns(rt: &Runtime, n: u64) -> Result<f64> {
    let ns = rt.block_on(move || -> io::Result<f64> {
        let (to_pong, from_ping) = mpsc::channel::<u64>(1);
        let (to_ping, from_pong) = mpsc::channel::<u64>(1);
        let start = Instant::now();
        let ponger = pinned(move || {
            while let Ok(v) = from_ping.recv() {
                if to_ping.send(v + 1).is_err() {
                    break;
                }
            }
        })?;
        let pinger = pinned(move || -> io::Result<u64> {
            let mut last = 0;
            for i in 0..n {
                to_pong.send(i).map_err(|_| io::Error::other("ponger gone"))?;
                last = from_pong.recv().map_err(io::Error::other)?;
            }
            Ok(last)
        })?;
        let last = pinger
            .join()
            .map_err(|e| io::Error::other(e.to_string()))??;
        ponger.join().map_err(|e| io::Error::other(e.to_string()))?;
        if n > 0 && last != n {
            return Err(io::Error::other(format!("pingpong ended at {last}, not {n}")));
        }
        Ok(start.elapsed().as_nanos() as f64 / n.max(1) as f64)
    })?;
    Ok(ns)
}

/// Runtimes built per configuration. A runtime's timings carry an offset
/// of their own that alternating runs do not average out (where its
/// threads and memory landed): with one runtime per configuration, two
/// identical `off` runtimes differed by up to 7% on the spawn body
/// (medians of 5, same process). Samples are taken over several runtimes
/// per configuration instead, round-robin.
pub const RUNTIMES: usize = 3;

/// Medians per configuration (off, metrics, tracing) of `body`, run
/// `RUNS` times on each of the `RUNTIMES` runtimes of each configuration,
/// alternating configurations.
fn medians(rts: &[[Runtime; 3]], body: fn(&Runtime, u64) -> Result<f64>, n: u64) -> Result<[f64; 3]> {
    let mut samples: [Vec<f64>; 3] = Default::default();
    for _ in 0..RUNS {
        for set in rts {
            for (rt, out) in set.iter().zip(samples.iter_mut()) {
                out.push(body(rt, n)?);
            }
        }
    }
    Ok(samples.map(|s| median(&s)))
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    let n_spawn = opts.size(1_000_000, 100_000);
    let n_ping = opts.size(1_000_000, 100_000);
    let configs = [Config::Off, Config::Metrics, Config::Tracing];
    let rts = (0..RUNTIMES)
        .map(|_| -> io::Result<[Runtime; 3]> {
            Ok([runtime(configs[0])?, runtime(configs[1])?, runtime(configs[2])?])
        })
        .collect::<io::Result<Vec<_>>>()?;
    // Warm: threads started, stacks cached.
    for rt in rts.iter().flatten() {
        spawn_ns(rt, 1000)?;
        pingpong_ns(rt, 1000)?;
    }
    let mut figures = Vec::new();
    let m = medians(&rts, spawn_ns, n_spawn)?;
    figures.push(Figure::lower(NAME, "spawn_metrics", n_spawn, m[1], "off", m[0]));
    figures.push(Figure::lower(NAME, "spawn_tracing", n_spawn, m[2], "off", m[0]));
    let m = medians(&rts, pingpong_ns, n_ping)?;
    figures.push(Figure::lower(NAME, "pingpong_metrics", n_ping, m[1], "off", m[0]));
    figures.push(Figure::lower(NAME, "pingpong_tracing", n_ping, m[2], "off", m[0]));
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_run_in_every_configuration() {
        for c in [Config::Off, Config::Metrics, Config::Tracing] {
            let rt = runtime(c).unwrap();
            assert!(spawn_ns(&rt, 500).unwrap() > 0.0);
            assert!(pingpong_ns(&rt, 500).unwrap() > 0.0);
            let m = rt.metrics();
            assert_eq!(m.metrics_enabled, c != Config::Off);
            assert_eq!(rt.trace().is_some(), c == Config::Tracing);
            let resumes: u64 = m.workers.iter().map(|w| w.resumes).sum();
            if c == Config::Off {
                // `off` is off: not even the per-worker counters count.
                assert_eq!(resumes, 0);
            } else {
                assert!(resumes >= 500 + 2 * 500, "{c:?}: {resumes} resumes");
            }
        }
    }
}
