//! The `pingpong` workload: two tasks pass a token back and forth over two
//! bounded channels of capacity 1, 1,000,000 round trips.
//!
//! | metric              | what                                               |
//! |---------------------|----------------------------------------------------|
//! | `ns_per_round_trip` | time from the first send to the last receive, / round trips |
//!
//! ```text
//!   ping ──(a→b, cap 1)──▶ pong
//!   ping ◀──(b→a, cap 1)── pong      ping sends i, pong answers i + 1
//! ```
//!
//! Both tasks are spawned plainly from one task of the runtime, as a user
//! would: no placement hint, so the runtime decides whether they share a
//! worker. pinstack uses `pinstack::sync::mpsc::channel(1)`, tokio
//! `tokio::sync::mpsc::channel(1)`. Every answer is checked.

use std::time::Instant;

use super::{Opts, Workload};
use crate::report::{alternating, ns_per, Figure};
use crate::runtimes;
use crate::Result;

/// The workload's registry entry.
pub const WORKLOAD: Workload = Workload {
    name: NAME,
    run,
    children: &[],
};

const NAME: &str = "pingpong";
/// Round trips of a full run.
pub const FULL_ROUND_TRIPS: u64 = 1_000_000;
/// Round trips of a `--quick` run.
pub const QUICK_ROUND_TRIPS: u64 = 100_000;

fn wrong_answer(i: u64, got: u64) -> crate::Error {
    format!("pingpong: sent {i}, got {got} back instead of {}", i + 1).into()
}

/// pinstack: `n` round trips between two plainly spawned tasks; ns each.
///
/// # Errors
///
/// A closed channel, a wrong answer, or a failed join.
pub fn pinstack_ns(rt: &pinstack::Runtime, n: u64) -> Result<f64> {
    use pinstack::sync::mpsc;
    rt.block_on(move || -> Result<f64> {
        let (to_pong, from_ping) = mpsc::channel::<u64>(1);
        let (to_ping, from_pong) = mpsc::channel::<u64>(1);
        let pong = pinstack::spawn(move || {
            while let Ok(v) = from_ping.recv() {
                if to_ping.send(v + 1).is_err() {
                    break;
                }
            }
        });
        let ping = pinstack::spawn(move || -> Result<f64> {
            let start = Instant::now();
            for i in 0..n {
                to_pong.send(i).map_err(|_| "pingpong: pong hung up")?;
                let v = from_pong.recv().map_err(|_| "pingpong: pong hung up")?;
                if v != i + 1 {
                    return Err(wrong_answer(i, v));
                }
            }
            Ok(ns_per(start.elapsed(), n))
        });
        let ns = ping.join().map_err(|e| format!("pingpong: join: {e}"))??;
        pong.join().map_err(|e| format!("pingpong: join: {e}"))?;
        Ok(ns)
    })
}

/// tokio: the same with `tokio::sync::mpsc::channel(1)`; ns per round trip.
///
/// # Errors
///
/// A closed channel, a wrong answer, or a failed join.
pub fn tokio_ns(rt: &tokio::runtime::Runtime, n: u64) -> Result<f64> {
    use tokio::sync::mpsc;
    rt.block_on(async move {
        tokio::spawn(async move {
            let (to_pong, mut from_ping) = mpsc::channel::<u64>(1);
            let (to_ping, mut from_pong) = mpsc::channel::<u64>(1);
            let pong = tokio::spawn(async move {
                while let Some(v) = from_ping.recv().await {
                    if to_ping.send(v + 1).await.is_err() {
                        break;
                    }
                }
            });
            let ping = tokio::spawn(async move {
                let start = Instant::now();
                for i in 0..n {
                    to_pong
                        .send(i)
                        .await
                        .map_err(|_| "pingpong: pong hung up")?;
                    let v = from_pong.recv().await.ok_or("pingpong: pong hung up")?;
                    if v != i + 1 {
                        return Err(wrong_answer(i, v));
                    }
                }
                Ok(ns_per(start.elapsed(), n))
            });
            let ns = ping.await.map_err(|e| format!("pingpong: join: {e}"))??;
            pong.await.map_err(|e| format!("pingpong: join: {e}"))?;
            Ok(ns)
        })
        .await
        .map_err(|e| format!("pingpong: outer task: {e}"))?
    })
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    let n = opts.size(FULL_ROUND_TRIPS, QUICK_ROUND_TRIPS);
    let p = runtimes::pinstack()?;
    let t = runtimes::tokio()?;
    pinstack_ns(&p, n / 10 + 1)?;
    tokio_ns(&t, n / 10 + 1)?;
    let ns = alternating(
        3,
        &mut [&mut || pinstack_ns(&p, n), &mut || tokio_ns(&t, n)],
    )?;
    Ok(vec![Figure::lower(
        NAME,
        "ns_per_round_trip",
        n,
        ns[0],
        "tokio",
        ns[1],
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_arms_complete_checked_round_trips() {
        let p = runtimes::pinstack().unwrap();
        assert!(pinstack_ns(&p, 1_000).unwrap() > 0.0);
        let t = runtimes::tokio().unwrap();
        assert!(tokio_ns(&t, 1_000).unwrap() > 0.0);
    }
}
