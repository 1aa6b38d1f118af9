//! The `stackpool` workload: what a pooled, guarded stack costs against a
//! fresh `mmap` and against corosensei's `DefaultStack`, and how many
//! guarded stacks can live at once.
//!
//! | metric             | pinstack                              | baseline                                   |
//! |--------------------|---------------------------------------|--------------------------------------------|
//! | `ns_hot`           | acquire + release, thread cache       | `fresh_mmap`: mmap + guard + munmap        |
//! | `ns_cold`          | acquire + release via the shared list | `fresh_mmap`                               |
//! | `ns_default_stack` | acquire + release, thread cache       | `default_stack`: `DefaultStack::new`+drop  |
//! | `ns_coroutine`     | coroutine create+run+drop, pooled     | `default_stack`: same on a new DefaultStack|
//! | `max_live_8k`      | live 8 KiB stacks, cap 1,000,000      | `default_stack`: live DefaultStacks        |
//!
//! All stacks are 16 KiB usable except `max_live_8k`. Timed loops contain
//! only the operation; pools are built and warmed before. `max_live_8k` runs
//! each arm in a fresh child process under the default `vm.max_map_count`.
//! The fresh-mmap baseline guards with the same mechanism as the pool
//! (`MADV_GUARD_INSTALL`, or `mprotect` on older kernels).

use std::hint::black_box;
use std::io;
use std::time::Instant;

use corosensei::stack::{DefaultStack, Stack};
use corosensei::{Coroutine, CoroutineResult, Yielder};
use pinstack_stackpool::{GuardMode, StackPool};

use super::{Child, Opts, Workload};
use crate::child::run_in_child_f64;
use crate::report::{alternating, Figure};
use crate::Result;

/// The workload's registry entry.
pub const WORKLOAD: Workload = Workload {
    name: "stackpool",
    run,
    children: &[
        Child {
            name: "max_live_pool",
            run: child_max_live_pool,
        },
        Child {
            name: "max_live_default",
            run: child_max_live_default,
        },
        Child {
            name: "hot_loop",
            run: child_hot_loop,
        },
    ],
};

/// Usable bytes of the stacks timed (16 KiB class).
pub const STACK_BYTES: usize = 16 * 1024;
/// Cap of the `max_live_8k` count.
pub const MAX_LIVE_CAP: u64 = 1_000_000;
const NAME: &str = "stackpool";
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Maps one stack of `usable` bytes plus a guard page, installs the guard
/// the way `mode` says, and unmaps it: what a pool saves on every spawn.
///
/// # Errors
///
/// The failing syscall's error.
pub fn fresh_mmap_cycle(mode: GuardMode, usable: usize) -> io::Result<()> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let len = usable + page;
    // SAFETY: a new anonymous mapping aliases nothing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the first page of the mapping just created holds no data.
    let rc = unsafe {
        if mode == GuardMode::Mprotect {
            libc::mprotect(p, page, libc::PROT_NONE)
        } else {
            libc::madvise(p, page, MADV_GUARD_INSTALL)
        }
    };
    let guard_err = (rc != 0).then(io::Error::last_os_error);
    // SAFETY: the mapping is ours and nothing points into it.
    let rc = unsafe { libc::munmap(p, len) };
    match guard_err {
        Some(e) => Err(e),
        None if rc != 0 => Err(io::Error::last_os_error()),
        None => Ok(()),
    }
}

/// Creates a coroutine on `stack`, runs it to completion and drops it (and
/// with it the stack). Returns the coroutine's result.
pub fn coroutine_run<S: Stack + 'static>(stack: S, x: u64) -> u64 {
    let mut co = Coroutine::with_stack(stack, |_: &Yielder<u64, ()>, x: u64| black_box(x) + 1);
    match co.resume(x) {
        CoroutineResult::Return(v) => v,
        CoroutineResult::Yield(()) => unreachable!("the coroutine does not yield"),
    }
}

/// Nanoseconds per call of `op`, over `n` calls.
fn ns_per_op(n: u64, mut op: impl FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..n {
        op()?;
    }
    Ok(start.elapsed().as_nanos() as f64 / n.max(1) as f64)
}

fn acquire_release(pool: &StackPool, n: u64) -> Result<f64> {
    ns_per_op(n, || {
        let s = pool.acquire(STACK_BYTES)?;
        black_box(&s);
        Ok(())
    })
}

fn default_stack_cycle(n: u64) -> Result<f64> {
    ns_per_op(n, || {
        let s = DefaultStack::new(STACK_BYTES)?;
        black_box(&s);
        Ok(())
    })
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    // Both arms of a line run `n` times; the baselines cost microseconds
    // each, which bounds `n` (full: ~30 s in all, --quick: ~10 s).
    let n = opts.size(200_000, 20_000);
    let hot = StackPool::new()?;
    let cold = StackPool::builder().thread_cache_per_class(0).build()?;
    let mode = hot.guard_mode();
    // Warm: the stack exists and sits in the cache / shared list.
    drop(hot.acquire(STACK_BYTES)?);
    drop(cold.acquire(STACK_BYTES)?);
    fresh_mmap_cycle(mode, STACK_BYTES)?;
    drop(DefaultStack::new(STACK_BYTES)?);

    let mut figures = Vec::new();
    let m = alternating(
        3,
        &mut [
            &mut || acquire_release(&hot, n),
            &mut || acquire_release(&cold, n),
            &mut || ns_per_op(n, || Ok(fresh_mmap_cycle(mode, STACK_BYTES)?)),
        ],
    )?;
    figures.push(Figure::lower(NAME, "ns_hot", n, m[0], "fresh_mmap", m[2]));
    figures.push(Figure::lower(NAME, "ns_cold", n, m[1], "fresh_mmap", m[2]));

    let m = alternating(
        3,
        &mut [&mut || acquire_release(&hot, n), &mut || default_stack_cycle(n)],
    )?;
    figures.push(Figure::lower(NAME, "ns_default_stack", n, m[0], "default_stack", m[1]));

    let m = alternating(
        3,
        &mut [
            &mut || {
                ns_per_op(n, || {
                    black_box(coroutine_run(hot.acquire(STACK_BYTES)?, 1));
                    Ok(())
                })
            },
            &mut || {
                ns_per_op(n, || {
                    black_box(coroutine_run(DefaultStack::new(STACK_BYTES)?, 1));
                    Ok(())
                })
            },
        ],
    )?;
    figures.push(Figure::lower(NAME, "ns_coroutine", n, m[0], "default_stack", m[1]));

    let cap = MAX_LIVE_CAP.to_string();
    let m = alternating(
        3,
        &mut [
            &mut || run_in_child_f64("stackpool.max_live_pool", &[&cap]),
            &mut || run_in_child_f64("stackpool.max_live_default", &[&cap]),
        ],
    )?;
    figures.push(Figure::higher_count(
        NAME,
        "max_live_8k",
        MAX_LIVE_CAP,
        m[0],
        "default_stack",
        m[1],
    ));
    Ok(figures)
}

fn cap_arg(args: &[String]) -> Result<usize> {
    match args.first() {
        Some(a) => Ok(a.parse()?),
        None => Ok(MAX_LIVE_CAP as usize),
    }
}

/// Child: how many 8 KiB pooled stacks can be live at once (up to the cap).
fn child_max_live_pool(args: &[String]) -> Result<String> {
    let cap = cap_arg(args)?;
    let pool = StackPool::new()?;
    let mut live = Vec::with_capacity(cap);
    while live.len() < cap {
        match pool.acquire(8 * 1024) {
            Ok(s) => live.push(s),
            Err(e) => {
                eprintln!("pool stopped at {} stacks: {e}", live.len());
                break;
            }
        }
    }
    Ok(live.len().to_string())
}

/// Child: how many corosensei `DefaultStack`s of 8 KiB can be live at once.
fn child_max_live_default(args: &[String]) -> Result<String> {
    let cap = cap_arg(args)?;
    let mut live = Vec::with_capacity(cap.min(1 << 20));
    while live.len() < cap {
        match DefaultStack::new(8 * 1024) {
            Ok(s) => live.push(s),
            Err(e) => {
                eprintln!("DefaultStack stopped at {} stacks: {e}", live.len());
                break;
            }
        }
    }
    Ok(live.len().to_string())
}

/// Child (a profiling aid, not used by `run`): `n` hot acquire+release
/// pairs in a fresh process, printing ns per pair; run it under
/// `perf stat`/`perf record` to study the fast path alone.
fn child_hot_loop(args: &[String]) -> Result<String> {
    let n = match args.first() {
        Some(a) => a.parse()?,
        None => 10_000_000,
    };
    let pool = StackPool::new()?;
    drop(pool.acquire(STACK_BYTES)?);
    Ok(format!("{:.2}", acquire_release(&pool, n)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_cycle_and_coroutines_work_in_both_modes() {
        fresh_mmap_cycle(GuardMode::Mprotect, STACK_BYTES).unwrap();
        let pool = StackPool::new().unwrap();
        fresh_mmap_cycle(pool.guard_mode(), STACK_BYTES).unwrap();
        assert_eq!(coroutine_run(pool.acquire(STACK_BYTES).unwrap(), 41), 42);
        assert_eq!(coroutine_run(DefaultStack::new(STACK_BYTES).unwrap(), 1), 2);
        assert_eq!(pool.stats().releases, 1);
    }

    #[test]
    fn max_live_children_count_up_to_the_cap() {
        let cap = ["500".to_string()];
        assert_eq!(child_max_live_pool(&cap).unwrap(), "500");
        assert_eq!(child_max_live_default(&cap).unwrap(), "500");
    }
}
