//! The `idle` workload: 1,000,000 tasks each parked on its own
//! never-signalled oneshot channel, all alive at once, then all released by
//! dropping the senders. Default `vm.max_map_count`.
//!
//! | metric          | what                                                          |
//! |-----------------|---------------------------------------------------------------|
//! | `kib_per_task`  | (`VmRSS` with all tasks parked - `VmRSS` before) / tasks       |
//! | `ns_per_create` | time from the first spawn until every task is parked, / tasks |
//!
//! Each runtime runs in a fresh child process (three alternating runs per
//! runtime), so one's memory never shows in the other's figure:
//!
//! ```text
//! child: build runtime ─ in one task: VmRSS₀ ─ spawn N (each: parked += 1; rx.recv())
//!        ─ yield until parked == N (clock stops) ─ settle 20 ms ─ VmRSS₁
//!        ─ drop every sender ─ join all, count the Err(disconnected) results
//! ```
//!
//! pinstack uses `pinstack::sync::oneshot`, tokio `tokio::sync::oneshot`.
//! The growth includes what a user holds per task (a sender and a join
//! handle in two vectors), the same on both sides. pinstack tasks get the
//! runtime's default stack; the child also runs with an explicit 8 KiB hint
//! (`task::Builder::stack_size(8 * 1024)`), whose figure goes to stderr with
//! the page-table growth (`VmPTE`, which `VmRSS` does not include).

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Child, Opts, Workload};
use crate::child::{run_in_child, status_kib};
use crate::report::{median, ns_per, Figure};
use crate::runtimes::{self, arg_or, Which};
use crate::workloads::spawn::check_count;
use crate::Result;

/// The workload's registry entry.
pub const WORKLOAD: Workload = Workload {
    name: NAME,
    run,
    children: &[Child {
        name: "child",
        run: child_idle,
    }],
};

const NAME: &str = "idle";
/// Tasks of a full run.
pub const FULL_TASKS: u64 = 1_000_000;
/// Tasks of a `--quick` run.
pub const QUICK_TASKS: u64 = 100_000;
/// The explicit hint tried besides the default stack.
pub const SMALL_HINT: usize = 8 * 1024;
/// Time given to the last tasks to finish parking before RSS is read.
const SETTLE: Duration = Duration::from_millis(20);

/// What one idle run measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IdleRun {
    /// RSS growth per parked task, KiB.
    pub kib_per_task: f64,
    /// Spawn-to-parked time per task, ns.
    pub ns_per_create: f64,
    /// Page-table growth per task, KiB (`VmPTE`).
    pub pte_kib_per_task: f64,
}

impl IdleRun {
    fn line(&self) -> String {
        format!(
            "{} {} {}",
            self.kib_per_task, self.ns_per_create, self.pte_kib_per_task
        )
    }

    fn parse(line: &str) -> Result<IdleRun> {
        let v: Vec<f64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| format!("idle child printed {line:?}: {e}"))?;
        match v[..] {
            [kib_per_task, ns_per_create, pte_kib_per_task] => Ok(IdleRun {
                kib_per_task,
                ns_per_create,
                pte_kib_per_task,
            }),
            _ => Err(format!("idle child printed {line:?}, not three numbers").into()),
        }
    }
}

/// Memory readings taken around the parked phase.
struct Mem {
    rss: u64,
    pte: u64,
}

impl Mem {
    fn now() -> Result<Mem> {
        Ok(Mem {
            rss: status_kib("VmRSS")?,
            pte: status_kib("VmPTE")?,
        })
    }

    fn growth_per_task(&self, later: &Mem, n: u64) -> (f64, f64) {
        let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / n.max(1) as f64;
        (per(self.rss, later.rss), per(self.pte, later.pte))
    }
}

/// pinstack: parks `n` tasks (stack hint `hint`, 0 for the default), reads
/// the memory, releases them.
///
/// # Errors
///
/// A failed spawn or join, a task that was not released, or `/proc`.
pub fn pinstack_run(rt: &pinstack::Runtime, n: u64, hint: usize) -> Result<IdleRun> {
    use pinstack::sync::oneshot;
    rt.block_on(move || -> Result<IdleRun> {
        let parked = Arc::new(AtomicU64::new(0));
        let mut senders = Vec::with_capacity(n as usize);
        let mut handles = Vec::with_capacity(n as usize);
        let before = Mem::now()?;
        let start = Instant::now();
        for _ in 0..n {
            let (tx, rx) = oneshot::channel::<()>();
            let parked = parked.clone();
            let body = move || {
                parked.fetch_add(1, Release);
                rx.recv().is_err()
            };
            let mut b = pinstack::task::Builder::new();
            if hint != 0 {
                b = b.stack_size(hint);
            }
            handles.push(b.spawn(body)?);
            senders.push(tx);
        }
        while parked.load(Acquire) < n {
            pinstack::yield_now();
        }
        let ns_per_create = ns_per(start.elapsed(), n);
        pinstack::sleep(SETTLE);
        let (kib_per_task, pte_kib_per_task) = before.growth_per_task(&Mem::now()?, n);
        drop(senders);
        let mut released = 0;
        for h in handles {
            released += u64::from(h.join().map_err(|e| format!("idle: join: {e}"))?);
        }
        check_count("idle (pinstack) released", released, n)?;
        Ok(IdleRun {
            kib_per_task,
            ns_per_create,
            pte_kib_per_task,
        })
    })
}

/// tokio: the same with `tokio::sync::oneshot`.
///
/// # Errors
///
/// A failed join, a task that was not released, or `/proc`.
pub fn tokio_run(rt: &tokio::runtime::Runtime, n: u64) -> Result<IdleRun> {
    use tokio::sync::oneshot;
    rt.block_on(async move {
        tokio::spawn(async move {
            let parked = Arc::new(AtomicU64::new(0));
            let mut senders = Vec::with_capacity(n as usize);
            let mut handles = Vec::with_capacity(n as usize);
            let before = Mem::now()?;
            let start = Instant::now();
            for _ in 0..n {
                let (tx, rx) = oneshot::channel::<()>();
                let parked = parked.clone();
                handles.push(tokio::spawn(async move {
                    parked.fetch_add(1, Release);
                    rx.await.is_err()
                }));
                senders.push(tx);
            }
            while parked.load(Acquire) < n {
                tokio::task::yield_now().await;
            }
            let ns_per_create = ns_per(start.elapsed(), n);
            tokio::time::sleep(SETTLE).await;
            let (kib_per_task, pte_kib_per_task) = before.growth_per_task(&Mem::now()?, n);
            drop(senders);
            let mut released = 0;
            for h in handles {
                released += u64::from(h.await.map_err(|e| format!("idle: join: {e}"))?);
            }
            check_count("idle (tokio) released", released, n)?;
            Ok(IdleRun {
                kib_per_task,
                ns_per_create,
                pte_kib_per_task,
            })
        })
        .await
        .map_err(|e| format!("idle: outer task: {e}"))?
    })
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    let n = opts.size(FULL_TASKS, QUICK_TASKS);
    let n_arg = n.to_string();
    let hint_arg = SMALL_HINT.to_string();
    let mut runs: [Vec<IdleRun>; 3] = Default::default();
    for _ in 0..3 {
        for (i, args) in [
            ["pinstack", &n_arg, "0"],
            ["tokio", &n_arg, "0"],
            ["pinstack", &n_arg, &hint_arg],
        ]
        .iter()
        .enumerate()
        {
            runs[i].push(IdleRun::parse(&run_in_child("idle.child", args)?)?);
        }
    }
    let med = |i: usize, f: fn(&IdleRun) -> f64| median(&runs[i].iter().map(f).collect::<Vec<_>>());
    let map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unreadable ({e})"));
    eprintln!(
        "idle: n={n} vm.max_map_count={map_count}; pinstack default stack ({} KiB): \
         {:.2} KiB/task RSS + {:.3} KiB/task page tables; pinstack {} KiB hint: {:.2} KiB/task \
         RSS + {:.3} KiB/task page tables, {:.1} ns/create; tokio: {:.3} KiB/task page tables",
        pinstack::DEFAULT_STACK_SIZE / 1024,
        med(0, |r| r.kib_per_task),
        med(0, |r| r.pte_kib_per_task),
        SMALL_HINT / 1024,
        med(2, |r| r.kib_per_task),
        med(2, |r| r.pte_kib_per_task),
        med(2, |r| r.ns_per_create),
        med(1, |r| r.pte_kib_per_task),
    );
    Ok(vec![
        Figure::lower(
            NAME,
            "kib_per_task",
            n,
            med(0, |r| r.kib_per_task),
            "tokio",
            med(1, |r| r.kib_per_task),
        )
        .with_decimals(2),
        Figure::lower(
            NAME,
            "ns_per_create",
            n,
            med(0, |r| r.ns_per_create),
            "tokio",
            med(1, |r| r.ns_per_create),
        ),
    ])
}

/// Child: `idle.child <pinstack|tokio> [N] [HINT]`: one idle run in this
/// fresh process; prints `kib_per_task ns_per_create pte_kib_per_task`.
fn child_idle(args: &[String]) -> Result<String> {
    let which = Which::from_args(args)?;
    let n = arg_or(args, 1, FULL_TASKS)?;
    let hint = arg_or(args, 2, 0usize)?;
    let r = match which {
        Which::Pinstack => pinstack_run(&runtimes::pinstack()?, n, hint)?,
        Which::Tokio => tokio_run(&runtimes::tokio()?, n)?,
    };
    Ok(r.line())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parked_task_is_released_and_memory_grows() {
        // 20,000 parked coroutines touch at least one stack page each:
        // at least 4 KiB per task of RSS, whatever else the process does.
        let r = pinstack_run(&runtimes::pinstack().unwrap(), 20_000, 0).unwrap();
        assert!(r.kib_per_task >= 4.0, "{r:?}");
        let r = pinstack_run(&runtimes::pinstack().unwrap(), 2_000, SMALL_HINT).unwrap();
        assert!(r.kib_per_task > 0.0, "{r:?}");
        let r = tokio_run(&runtimes::tokio().unwrap(), 2_000).unwrap();
        assert!(r.ns_per_create > 0.0, "{r:?}");
    }

    #[test]
    fn child_line_round_trips() {
        let r = IdleRun {
            kib_per_task: 4.25,
            ns_per_create: 310.5,
            pte_kib_per_task: 0.125,
        };
        assert_eq!(IdleRun::parse(&r.line()).unwrap(), r);
        assert!(IdleRun::parse("1 2").is_err());
        assert!(IdleRun::parse("a b c").is_err());
    }
}
