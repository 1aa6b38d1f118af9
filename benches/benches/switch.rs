//! Criterion micro-benchmark of a task switch (`cargo bench --bench
//! switch`): one `yield_now` round trip (the task suspends to its worker and
//! is resumed), pinstack against tokio.
//!
//! Each sample runs inside one task of an already built runtime and times
//! only the loop of yields; building the runtime and spawning the timing task
//! are outside the measurement (`iter_custom`).
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use pinstack_benches::runtimes;

fn yield_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("switch/yield_round_trip");
    let p = runtimes::pinstack().expect("pinstack runtime");
    g.bench_function("pinstack", |b| {
        b.iter_custom(|iters| {
            p.block_on(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    pinstack::yield_now();
                }
                start.elapsed()
            })
        })
    });
    let t = runtimes::tokio().expect("tokio runtime");
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            t.block_on(async move {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        tokio::task::yield_now().await;
                    }
                    start.elapsed()
                })
                .await
                .expect("timing task")
            })
        })
    });
    g.finish();
}

criterion_group!(benches, yield_round_trip);
criterion_main!(benches);
