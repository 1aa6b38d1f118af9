//! Runs one arm of one workload once, for instruction counting under
//! `valgrind --tool=callgrind` (repeatable on a loaded machine, unlike wall
//! time). Run it at two sizes and divide the difference in instructions by
//! the difference in operations: start-up, runtime building and warm-up
//! cancel out.
//!
//! ```text
//! opcount WORKLOAD ARM N [WORKERS]
//!   WORKLOAD  yield (N yields per task, 1,000 tasks) | pingpong (N round
//!             trips) | spawn (N tasks)
//!   ARM       pinstack | tokio
//!   WORKERS   worker threads (default 2, as in `compare`)
//! ```
//!
//! With `OPCOUNT_WORKERS` set, a pinstack run also prints each worker's
//! counters (resumes, parks, steals) to stderr, to see how work was split.
//!
//! Prints the workload's own ns-per-op figure (meaningless under valgrind,
//! printed so the run is visibly the real workload).

use pinstack_benches::workloads::{pingpong, r#yield as yield_, spawn};
use pinstack_benches::Result;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: opcount yield|pingpong|spawn pinstack|tokio N [WORKERS]";
    let (Some(w), Some(arm), Some(n)) = (args.first(), args.get(1), args.get(2)) else {
        return Err(usage.into());
    };
    let n: u64 = n.parse().map_err(|_| usage)?;
    let workers: usize = match args.get(3) {
        Some(s) => s.parse().map_err(|_| usage)?,
        None => pinstack_benches::runtimes::WORKERS,
    };
    let ns = match arm.as_str() {
        "pinstack" => {
            let rt = pinstack::Runtime::builder()
                .worker_threads(workers)
                .ignore_environment()
                .build()?;
            let ns = match w.as_str() {
                "yield" => yield_::pinstack_ns(&rt, yield_::TASKS, n)?,
                "pingpong" => pingpong::pinstack_ns(&rt, n)?,
                "spawn" => spawn::pinstack_ns(&rt, n)?,
                _ => return Err(usage.into()),
            };
            if std::env::var_os("OPCOUNT_WORKERS").is_some() {
                for (i, m) in rt.metrics().workers.iter().enumerate() {
                    eprintln!("worker {i}: {m:?}");
                }
            }
            ns
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()?;
            match w.as_str() {
                "yield" => yield_::tokio_ns(&rt, yield_::TASKS, n)?,
                "pingpong" => pingpong::tokio_ns(&rt, n)?,
                "spawn" => spawn::tokio_ns(&rt, n)?,
                _ => return Err(usage.into()),
            }
        }
        _ => return Err(usage.into()),
    };
    println!("{w} {arm} n={n} workers={workers} ns_per_op={ns:.1}");
    Ok(())
}
