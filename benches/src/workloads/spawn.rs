//! The `spawn` workload: 1,000,000 tasks that each bump an atomic and
//! finish, spawned from one task and all joined.
//!
//! | metric         | what                                                        |
//! |----------------|-------------------------------------------------------------|
//! | `ns_per_task`  | wall time from the first spawn to the last join, / tasks    |
//! | `peak_rss_mib` | `VmHWM` of a fresh child process that runs the workload once |
//!
//! Both arms spawn from inside a task of their runtime (pinstack: the
//! `block_on` task; tokio: a `tokio::spawn`ed task, so spawns go to a
//! worker's local queue as they do in a server), keep every join handle in a
//! vector allocated before the clock starts, then join them in order. The
//! atomic is checked afterwards: a run that lost a task is an error.
//!
//! The per-arm functions are public: `deepstack` reuses them for its
//! `cost_vs_spawn` quotient and the criterion benches share the task body.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use super::{Child, Opts, Workload};
use crate::child::{peak_rss_kib, run_in_child_f64};
use crate::report::{alternating, ns_per, Figure};
use crate::runtimes::{self, arg_or, Which};
use crate::Result;

/// The workload's registry entry.
pub const WORKLOAD: Workload = Workload {
    name: NAME,
    run,
    children: &[Child {
        name: "peak_rss",
        run: child_peak_rss,
    }],
};

const NAME: &str = "spawn";
/// Tasks of a full run.
pub const FULL_TASKS: u64 = 1_000_000;
/// Tasks of a `--quick` run.
pub const QUICK_TASKS: u64 = 100_000;

/// Checks that every task ran exactly once.
pub(crate) fn check_count(what: &str, counted: u64, expected: u64) -> Result<()> {
    if counted == expected {
        Ok(())
    } else {
        Err(format!("{what}: {counted} of {expected} tasks ran").into())
    }
}

/// pinstack: spawns `n` tasks from one task, joins them all; ns per task.
///
/// # Errors
///
/// A task that failed to join, or a wrong count.
pub fn pinstack_ns(rt: &pinstack::Runtime, n: u64) -> Result<f64> {
    rt.block_on(move || -> Result<f64> {
        let count = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::with_capacity(n as usize);
        let start = Instant::now();
        for _ in 0..n {
            let c = count.clone();
            handles.push(pinstack::spawn(move || {
                c.fetch_add(1, Relaxed);
            }));
        }
        for h in handles {
            h.join().map_err(|e| format!("spawn: join: {e}"))?;
        }
        let ns = ns_per(start.elapsed(), n);
        check_count("spawn (pinstack)", count.load(Relaxed), n)?;
        Ok(ns)
    })
}

/// tokio: the same, from a `tokio::spawn`ed task; ns per task.
///
/// # Errors
///
/// A task that failed to join, or a wrong count.
pub fn tokio_ns(rt: &tokio::runtime::Runtime, n: u64) -> Result<f64> {
    rt.block_on(async move {
        tokio::spawn(async move {
            let count = Arc::new(AtomicU64::new(0));
            let mut handles = Vec::with_capacity(n as usize);
            let start = Instant::now();
            for _ in 0..n {
                let c = count.clone();
                handles.push(tokio::spawn(async move {
                    c.fetch_add(1, Relaxed);
                }));
            }
            for h in handles {
                h.await.map_err(|e| format!("spawn: join: {e}"))?;
            }
            let ns = ns_per(start.elapsed(), n);
            check_count("spawn (tokio)", count.load(Relaxed), n)?;
            Ok(ns)
        })
        .await
        .map_err(|e| format!("spawn: outer task: {e}"))?
    })
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    let n = opts.size(FULL_TASKS, QUICK_TASKS);
    let p = runtimes::pinstack()?;
    let t = runtimes::tokio()?;
    // Warm both: stacks and allocator arenas exist before the clock runs.
    pinstack_ns(&p, n / 10 + 1)?;
    tokio_ns(&t, n / 10 + 1)?;
    let ns = alternating(
        3,
        &mut [&mut || pinstack_ns(&p, n), &mut || tokio_ns(&t, n)],
    )?;
    drop((p, t));
    let n_arg = n.to_string();
    let rss = alternating(
        3,
        &mut [
            &mut || run_in_child_f64("spawn.peak_rss", &["pinstack", &n_arg]),
            &mut || run_in_child_f64("spawn.peak_rss", &["tokio", &n_arg]),
        ],
    )?;
    Ok(vec![
        Figure::lower(NAME, "ns_per_task", n, ns[0], "tokio", ns[1]),
        Figure::lower(NAME, "peak_rss_mib", n, rss[0], "tokio", rss[1]),
    ])
}

/// Child: `spawn.peak_rss <pinstack|tokio> [N]`: runs the workload once in
/// this fresh process and prints its peak RSS in MiB.
fn child_peak_rss(args: &[String]) -> Result<String> {
    let which = Which::from_args(args)?;
    let n = arg_or(args, 1, FULL_TASKS)?;
    match which {
        Which::Pinstack => {
            let rt = runtimes::pinstack()?;
            pinstack_ns(&rt, n)?;
        }
        Which::Tokio => {
            let rt = runtimes::tokio()?;
            tokio_ns(&rt, n)?;
        }
    }
    Ok(format!("{:.1}", peak_rss_kib()? as f64 / 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_arms_run_every_task() {
        // `check_count` inside each arm makes a lost task an error.
        let p = runtimes::pinstack().unwrap();
        assert!(pinstack_ns(&p, 2_000).unwrap() > 0.0);
        let t = runtimes::tokio().unwrap();
        assert!(tokio_ns(&t, 2_000).unwrap() > 0.0);
        assert!(check_count("x", 3, 4).is_err());
    }

    #[test]
    fn peak_rss_child_reports_mebibytes() {
        let mib: f64 = child_peak_rss(&["tokio".into(), "1000".into()])
            .unwrap()
            .parse()
            .unwrap();
        assert!(mib >= 1.0, "{mib}");
        assert!(child_peak_rss(&["nope".into()]).is_err());
    }
}
