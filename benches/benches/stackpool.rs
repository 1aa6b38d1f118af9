//! Criterion micro-benchmarks of the stack pool (`cargo bench --bench
//! stackpool`). Pools are built and warmed outside the timed closures; each
//! closure measures only the named operation and returns `()`: returning the
//! stack would make criterion copy it through a volatile read, which costs
//! more than the acquisition.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;

use corosensei::stack::DefaultStack;
use criterion::{criterion_group, criterion_main, Criterion};
use pinstack_benches::workloads::stackpool::{coroutine_run, fresh_mmap_cycle, STACK_BYTES};
use pinstack_stackpool::StackPool;

fn acquire_release(c: &mut Criterion) {
    let mut g = c.benchmark_group("stackpool/acquire_release");
    let hot = StackPool::new().expect("pool");
    drop(hot.acquire(STACK_BYTES).expect("warm"));
    g.bench_function("hot_thread_cache", |b| {
        b.iter(|| {
            let s = hot.acquire(STACK_BYTES).expect("acquire");
            black_box(&s);
        })
    });
    let cold = StackPool::builder()
        .thread_cache_per_class(0)
        .build()
        .expect("pool");
    drop(cold.acquire(STACK_BYTES).expect("warm"));
    g.bench_function("cold_shared_list", |b| {
        b.iter(|| {
            let s = cold.acquire(STACK_BYTES).expect("acquire");
            black_box(&s);
        })
    });
    let mode = hot.guard_mode();
    g.bench_function("fresh_mmap_guard_munmap", |b| {
        b.iter(|| fresh_mmap_cycle(black_box(mode), STACK_BYTES).expect("mmap"))
    });
    g.bench_function("default_stack_new_drop", |b| {
        b.iter(|| {
            let s = DefaultStack::new(STACK_BYTES).expect("DefaultStack");
            black_box(&s);
        })
    });
    g.finish();
}

fn coroutine(c: &mut Criterion) {
    let mut g = c.benchmark_group("stackpool/coroutine_create_run_drop");
    let pool = StackPool::new().expect("pool");
    drop(pool.acquire(STACK_BYTES).expect("warm"));
    g.bench_function("pooled_stack", |b| {
        b.iter(|| coroutine_run(pool.acquire(STACK_BYTES).expect("acquire"), black_box(1)))
    });
    g.bench_function("default_stack", |b| {
        b.iter(|| {
            coroutine_run(
                DefaultStack::new(STACK_BYTES).expect("DefaultStack"),
                black_box(1),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, acquire_release, coroutine);
criterion_main!(benches);
