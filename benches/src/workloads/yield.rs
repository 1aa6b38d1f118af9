//! The `yield` workload: 1,000 tasks each yielding 10,000 times.
//!
//! | metric         | what                                                   |
//! |----------------|--------------------------------------------------------|
//! | `ns_per_yield` | wall time from the first spawn to the last join, / (tasks x yields) |
//!
//! All tasks are spawned from one task of the runtime and joined; each
//! counts its yields and returns the count, and the sum is checked. On
//! pinstack a yield is a coroutine switch to the worker and back (the task
//! goes to the back of its worker's ready queue); on tokio it is
//! `tokio::task::yield_now().await`, a return to the scheduler through
//! `Poll::Pending`.

use std::time::Instant;

use super::{Opts, Workload};
use crate::report::{alternating, ns_per, Figure};
use crate::runtimes;
use crate::workloads::spawn::check_count;
use crate::Result;

/// The workload's registry entry.
pub const WORKLOAD: Workload = Workload {
    name: NAME,
    run,
    children: &[],
};

const NAME: &str = "yield";
/// Tasks (full and `--quick`).
pub const TASKS: u64 = 1_000;
/// Yields per task in a full run.
pub const FULL_YIELDS: u64 = 10_000;
/// Yields per task in a `--quick` run.
pub const QUICK_YIELDS: u64 = 1_000;

/// pinstack: `tasks` tasks each yielding `yields` times; ns per yield.
///
/// # Errors
///
/// A task that failed to join, or a wrong yield count.
pub fn pinstack_ns(rt: &pinstack::Runtime, tasks: u64, yields: u64) -> Result<f64> {
    rt.block_on(move || -> Result<f64> {
        let mut handles = Vec::with_capacity(tasks as usize);
        let start = Instant::now();
        for _ in 0..tasks {
            handles.push(pinstack::spawn(move || {
                let mut done = 0u64;
                for _ in 0..yields {
                    pinstack::yield_now();
                    done += 1;
                }
                done
            }));
        }
        let mut total = 0;
        for h in handles {
            total += h.join().map_err(|e| format!("yield: join: {e}"))?;
        }
        let ns = ns_per(start.elapsed(), tasks * yields);
        check_count("yield (pinstack) yields", total, tasks * yields)?;
        Ok(ns)
    })
}

/// tokio: the same with `tokio::task::yield_now`; ns per yield.
///
/// # Errors
///
/// A task that failed to join, or a wrong yield count.
pub fn tokio_ns(rt: &tokio::runtime::Runtime, tasks: u64, yields: u64) -> Result<f64> {
    rt.block_on(async move {
        tokio::spawn(async move {
            let mut handles = Vec::with_capacity(tasks as usize);
            let start = Instant::now();
            for _ in 0..tasks {
                handles.push(tokio::spawn(async move {
                    let mut done = 0u64;
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                        done += 1;
                    }
                    done
                }));
            }
            let mut total = 0;
            for h in handles {
                total += h.await.map_err(|e| format!("yield: join: {e}"))?;
            }
            let ns = ns_per(start.elapsed(), tasks * yields);
            check_count("yield (tokio) yields", total, tasks * yields)?;
            Ok(ns)
        })
        .await
        .map_err(|e| format!("yield: outer task: {e}"))?
    })
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    let yields = opts.size(FULL_YIELDS, QUICK_YIELDS);
    let p = runtimes::pinstack()?;
    let t = runtimes::tokio()?;
    pinstack_ns(&p, TASKS, yields / 10 + 1)?;
    tokio_ns(&t, TASKS, yields / 10 + 1)?;
    let ns = alternating(
        3,
        &mut [
            &mut || pinstack_ns(&p, TASKS, yields),
            &mut || tokio_ns(&t, TASKS, yields),
        ],
    )?;
    Ok(vec![Figure::lower(
        NAME,
        "ns_per_yield",
        TASKS * yields,
        ns[0],
        "tokio",
        ns[1],
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_arms_count_every_yield() {
        let p = runtimes::pinstack().unwrap();
        assert!(pinstack_ns(&p, 20, 50).unwrap() > 0.0);
        let t = runtimes::tokio().unwrap();
        assert!(tokio_ns(&t, 20, 50).unwrap() > 0.0);
    }
}
