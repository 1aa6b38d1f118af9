//! The `deepstack` workload: 100,000 tasks each recursing 30 non-inlined
//! frames that hold a 256-byte array (about 9 KiB of stack), spawned with a
//! 16 KiB stack hint.
//!
//! | metric          | what                                                     |
//! |-----------------|----------------------------------------------------------|
//! | `ns_per_task`   | spawn-to-last-join time per deep task                     |
//! | `cost_vs_spawn` | deep ns / plain `spawn` ns of the same runtime, this run  |
//!
//! A deep task is the `spawn` task (bump an atomic) plus the recursion, so
//! the quotient isolates what a deep call chain costs. Go pays a stack copy
//! the first time a goroutine's chain crosses 4 KiB; a pooled pinstack stack
//! of the 16 KiB class is already mapped and warm, so the pages cost
//! nothing but the writes. tokio runs the same recursion inside its task, on
//! the worker thread's own (warm) stack: its figures are context.
//!
//! Four arms alternate: pinstack plain, pinstack deep, tokio plain, tokio
//! deep, all with the same number of tasks.
//!
//! ```text
//!   frame 30  [256 B array][ret, saved regs]   <- task entry
//!   frame 29  [256 B array][...]
//!     ...                                     ~ 30 x ~300 B = ~9 KiB
//!   frame 0   [256 B array]                   <- deepest: checksum returned
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use super::{Opts, Workload};
use crate::report::{alternating, ns_per, Figure};
use crate::runtimes;
use crate::workloads::spawn::{self, check_count};
use crate::Result;

/// The workload's registry entry.
pub const WORKLOAD: Workload = Workload {
    name: NAME,
    run,
    children: &[],
};

const NAME: &str = "deepstack";
/// Tasks of a full run.
pub const FULL_TASKS: u64 = 100_000;
/// Tasks of a `--quick` run.
pub const QUICK_TASKS: u64 = 20_000;
/// Frames of the recursion.
pub const DEPTH: u32 = 30;
/// Bytes of the array each frame holds.
pub const FRAME_ARRAY: usize = 256;
/// The stack hint of a deep task.
pub const STACK_HINT: usize = 16 * 1024;

/// What a recursion returns: a checksum of the arrays and the distance in
/// bytes between the outermost and the innermost array (the stack it used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Depth {
    /// Sum of one byte of every frame's array.
    pub sum: u64,
    /// Address of the innermost array (filled in at depth 0).
    pub deepest: usize,
}

/// Recurses `depth` more frames, each holding a `FRAME_ARRAY`-byte array
/// that `black_box` forces into memory and keeps live across the call.
///
/// ```
/// use pinstack_benches::workloads::deepstack::{deep_body, expected_sum};
/// assert_eq!(deep_body(), expected_sum());
/// ```
#[inline(never)]
pub fn recurse(depth: u32, seed: u8) -> Depth {
    let mut frame = [seed; FRAME_ARRAY];
    black_box(&mut frame);
    let inner = if depth == 0 {
        Depth {
            sum: 0,
            deepest: frame.as_ptr() as usize,
        }
    } else {
        recurse(black_box(depth - 1), seed.wrapping_add(1))
    };
    Depth {
        sum: inner.sum + u64::from(frame[depth as usize % FRAME_ARRAY]),
        deepest: inner.deepest,
    }
}

/// The body of a deep task: the recursion from the top, checksum returned.
#[inline(never)]
pub fn deep_body() -> u64 {
    black_box(recurse(black_box(DEPTH - 1), black_box(1))).sum
}

/// The checksum `deep_body` must return: frame at depth `d` holds seed
/// `1 + (DEPTH - 1 - d)`.
pub fn expected_sum() -> u64 {
    (0..DEPTH).map(|d| u64::from(1 + (DEPTH - 1 - d) as u8)).sum()
}

fn check_sum(total: u64, n: u64) -> Result<()> {
    let want = expected_sum() * n;
    if total == want {
        Ok(())
    } else {
        Err(format!("deepstack: checksum {total}, expected {want}").into())
    }
}

/// pinstack: `n` deep tasks with a 16 KiB hint, spawned from one task and
/// joined; ns per task.
///
/// # Errors
///
/// A failed spawn or join, or a wrong count or checksum.
pub fn pinstack_ns(rt: &pinstack::Runtime, n: u64) -> Result<f64> {
    rt.block_on(move || -> Result<f64> {
        let count = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::with_capacity(n as usize);
        let start = Instant::now();
        for _ in 0..n {
            let c = count.clone();
            let h = pinstack::task::Builder::new()
                .stack_size(STACK_HINT)
                .spawn(move || {
                    c.fetch_add(1, Relaxed);
                    deep_body()
                })?;
            handles.push(h);
        }
        let mut total = 0;
        for h in handles {
            total += h.join().map_err(|e| format!("deepstack: join: {e}"))?;
        }
        let ns = ns_per(start.elapsed(), n);
        check_count("deepstack (pinstack)", count.load(Relaxed), n)?;
        check_sum(total, n)?;
        Ok(ns)
    })
}

/// tokio: the same recursion inside `n` tokio tasks; ns per task.
///
/// # Errors
///
/// A failed join, or a wrong count or checksum.
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
                    deep_body()
                }));
            }
            let mut total = 0;
            for h in handles {
                total += h.await.map_err(|e| format!("deepstack: join: {e}"))?;
            }
            let ns = ns_per(start.elapsed(), n);
            check_count("deepstack (tokio)", count.load(Relaxed), n)?;
            check_sum(total, n)?;
            Ok(ns)
        })
        .await
        .map_err(|e| format!("deepstack: outer task: {e}"))?
    })
}

/// The deep tasks' extra work without any runtime: `deep_body` called `n`
/// times on this thread (its stack is warm); ns per call. Context for
/// `cost_vs_spawn`: a deep task costs a plain one plus at least this.
fn recursion_alone_ns(n: u64) -> Result<f64> {
    let mut total = 0;
    for _ in 0..n / 10 {
        total += deep_body();
    }
    let start = Instant::now();
    for _ in 0..n {
        total += deep_body();
    }
    let ns = ns_per(start.elapsed(), n);
    check_sum(total, n + n / 10)?;
    Ok(ns)
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    let n = opts.size(FULL_TASKS, QUICK_TASKS);
    let p = runtimes::pinstack()?;
    let t = runtimes::tokio()?;
    spawn::pinstack_ns(&p, n / 10 + 1)?;
    pinstack_ns(&p, n / 10 + 1)?;
    spawn::tokio_ns(&t, n / 10 + 1)?;
    tokio_ns(&t, n / 10 + 1)?;
    let m = alternating(
        3,
        &mut [
            &mut || spawn::pinstack_ns(&p, n),
            &mut || pinstack_ns(&p, n),
            &mut || spawn::tokio_ns(&t, n),
            &mut || tokio_ns(&t, n),
        ],
    )?;
    let (p_spawn, p_deep, t_spawn, t_deep) = (m[0], m[1], m[2], m[3]);
    let alone = recursion_alone_ns(n)?;
    eprintln!(
        "deepstack: n={n}: plain spawn pinstack {p_spawn:.1} ns, tokio {t_spawn:.1} ns; \
         deep pinstack {p_deep:.1} ns, tokio {t_deep:.1} ns; \
         the recursion alone on this thread {alone:.1} ns"
    );
    Ok(vec![
        Figure::lower(NAME, "ns_per_task", n, p_deep, "tokio", t_deep),
        Figure::lower(
            NAME,
            "cost_vs_spawn",
            n,
            p_deep / p_spawn,
            "tokio",
            t_deep / t_spawn,
        )
        .with_decimals(2),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recursion_uses_about_nine_kib_of_stack() {
        let top = [0u8; 1];
        let top = black_box(&top).as_ptr() as usize;
        let d = recurse(DEPTH - 1, 1);
        assert_eq!(d.sum, expected_sum());
        let used = top - d.deepest;
        // 30 frames of at least the array each, and not wildly more.
        assert!(used >= (DEPTH as usize - 1) * FRAME_ARRAY, "{used} bytes");
        assert!(used <= 12 * 1024, "{used} bytes");
    }

    #[test]
    fn deep_tasks_fit_their_hint_on_both_runtimes() {
        let p = runtimes::pinstack().unwrap();
        assert!(pinstack_ns(&p, 500).unwrap() > 0.0);
        let t = runtimes::tokio().unwrap();
        assert!(tokio_ns(&t, 500).unwrap() > 0.0);
    }
}
