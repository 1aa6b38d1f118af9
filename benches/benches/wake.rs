//! Criterion micro-benchmark of a cross-task wake through a channel (`cargo
//! bench --bench wake`): the timing task sends a value on a capacity-1
//! channel to a parked echo task and parks on the reply, so one iteration is
//! two wakes (there and back).
//!
//! The echo task is spawned before the clock starts and ended after it
//! stops (`iter_custom`). pinstack's echo task is pinned to the timing
//! task's worker (a wake within one worker: what the runtime is built for);
//! tokio's is spawned plainly from a worker task, so it starts in that
//! worker's LIFO slot. The `compare pingpong` workload measures the plain,
//! unpinned case on both.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use pinstack_benches::runtimes;

fn channel_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("wake/channel_round_trip");
    let p = runtimes::pinstack().expect("pinstack runtime");
    g.bench_function("pinstack", |b| {
        b.iter_custom(|iters| {
            p.block_on(move || {
                use pinstack::sync::mpsc;
                let (to_echo, from_main) = mpsc::channel::<u64>(1);
                let (to_main, from_echo) = mpsc::channel::<u64>(1);
                let echo = pinstack::task::Builder::new()
                    .pin_to_current_worker()
                    .spawn(move || {
                        while let Ok(v) = from_main.recv() {
                            if to_main.send(v).is_err() {
                                break;
                            }
                        }
                    })
                    .expect("spawn");
                let start = Instant::now();
                for i in 0..iters {
                    to_echo.send(i).expect("echo task alive");
                    assert_eq!(from_echo.recv(), Ok(i));
                }
                let elapsed = start.elapsed();
                drop(to_echo);
                echo.join().expect("echo task");
                elapsed
            })
        })
    });
    let t = runtimes::tokio().expect("tokio runtime");
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            t.block_on(async move {
                tokio::spawn(async move {
                    use tokio::sync::mpsc;
                    let (to_echo, mut from_main) = mpsc::channel::<u64>(1);
                    let (to_main, mut from_echo) = mpsc::channel::<u64>(1);
                    let echo = tokio::spawn(async move {
                        while let Some(v) = from_main.recv().await {
                            if to_main.send(v).await.is_err() {
                                break;
                            }
                        }
                    });
                    let start = Instant::now();
                    for i in 0..iters {
                        to_echo.send(i).await.expect("echo task alive");
                        assert_eq!(from_echo.recv().await, Some(i));
                    }
                    let elapsed = start.elapsed();
                    drop(to_echo);
                    echo.await.expect("echo task");
                    elapsed
                })
                .await
                .expect("timing task")
            })
        })
    });
    g.finish();
}

criterion_group!(benches, channel_round_trip);
criterion_main!(benches);
