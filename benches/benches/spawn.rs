//! Criterion micro-benchmark of spawning (`cargo bench --bench spawn`): spawn
//! one task, let it run, join it; pinstack (default stack, and a 16 KiB
//! hint) against tokio.
//!
//! Each sample runs inside one task of an already built runtime and times
//! only the spawn+join loop (`iter_custom`). Stacks come from the runtime's
//! warm pool after the first iteration, as in a long-running server.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use pinstack_benches::runtimes;

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn/spawn_join");
    let p = runtimes::pinstack().expect("pinstack runtime");
    g.bench_function("pinstack", |b| {
        b.iter_custom(|iters| {
            p.block_on(move || {
                let start = Instant::now();
                for i in 0..iters {
                    let h = pinstack::spawn(move || black_box(i));
                    black_box(h.join().expect("task"));
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("pinstack_16k_hint", |b| {
        b.iter_custom(|iters| {
            p.block_on(move || {
                let start = Instant::now();
                for i in 0..iters {
                    let h = pinstack::task::Builder::new()
                        .stack_size(16 * 1024)
                        .spawn(move || black_box(i))
                        .expect("spawn");
                    black_box(h.join().expect("task"));
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
                    for i in 0..iters {
                        let h = tokio::spawn(async move { black_box(i) });
                        black_box(h.await.expect("task"));
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

criterion_group!(benches, spawn_join);
criterion_main!(benches);
