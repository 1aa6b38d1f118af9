//! `obs_ir CONFIG OP N [WORKERS]`: runs one `overhead` body (`OP`: `spawn`
//! or `pingpong`, `N` operations; or `deepstack`'s pinstack arm) in one configuration (`CONFIG`: `off`,
//! `metrics` or `tracing`) on a runtime of `WORKERS` workers (default 1),
//! after a warm-up of 1000 operations. Meant for instruction counts:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null obs_ir metrics spawn 20000
//! ```
//!
//! run at two sizes; the difference of the totals divided by the
//! difference of the sizes is the cost of one operation, warm-up, runtime
//! start and exit cancelling out.

use std::process::ExitCode;

use pinstack_benches::workloads::overhead::{pingpong_ns, runtime_with, spawn_ns, Config};

const USAGE: &str = "usage: obs_ir off|metrics|tracing spawn|pingpong|deepstack N [WORKERS]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        let c = match args.first()?.as_str() {
            "off" => Config::Off,
            "metrics" => Config::Metrics,
            "tracing" => Config::Tracing,
            _ => return None,
        };
        let op: fn(&pinstack::Runtime, u64) -> pinstack_benches::Result<f64> =
            match args.get(1)?.as_str() {
                "spawn" => spawn_ns,
                "pingpong" => pingpong_ns,
                "deepstack" => pinstack_benches::workloads::deepstack::pinstack_ns,
                _ => return None,
            };
        let n: u64 = args.get(2)?.parse().ok()?;
        let workers: usize = match args.get(3) {
            Some(w) => w.parse().ok()?,
            None => 1,
        };
        Some((c, op, n, workers))
    })();
    let Some((c, op, n, workers)) = parsed else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let run = || -> pinstack_benches::Result<f64> {
        let rt = runtime_with(c, workers)?;
        op(&rt, 1000)?;
        let reps: usize = std::env::var("OBS_IR_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let mut ns = 0.0;
        for _ in 0..reps {
            let before = rt.metrics();
            ns = op(&rt, n)?;
            if std::env::var_os("OBS_IR_METRICS").is_some() {
                let after = rt.metrics();
                for (a, b) in after.workers.iter().zip(&before.workers) {
                    eprintln!(
                        "  worker {}: resumes {} steals {} parks {} spawned {} join-suspends {}",
                        a.index,
                        a.resumes - b.resumes,
                        a.steals - b.steals,
                        a.parks - b.parks,
                        a.spawned - b.spawned,
                        a.suspends_join - b.suspends_join,
                    );
                }
                eprintln!("{ns:.1}");
            }
        }
        Ok(ns)
    };
    match run() {
        Ok(ns) => {
            println!("{ns:.1}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("obs_ir: {e}");
            ExitCode::FAILURE
        }
    }
}
