//! Guarded, size-classed, reusable coroutine stacks carved from large slabs.
//!
//! pinstack runs every task as a stackful coroutine. This crate provides the
//! stacks: a [`StackPool`] hands out [`PooledStack`]s in eleven
//! [`SizeClass`]es (powers of two from 8 KiB to 8 MiB of usable stack), each
//! with a guard page below it, and takes them back when they are dropped.
//!
//! # Tour
//!
//! ```
//! use corosensei::{Coroutine, CoroutineResult};
//! use pinstack_stackpool::{SizeClass, StackPool};
//!
//! let pool = StackPool::builder().sample_every(1).build()?;
//!
//! // A stack of at least 20 KiB: the 32 KiB class.
//! let stack = pool.acquire(20 * 1024)?;
//! assert_eq!(stack.class(), SizeClass::for_hint(32 * 1024)?);
//!
//! // Run a coroutine on it.
//! let mut co = Coroutine::with_stack(stack, |yielder, n: u64| {
//!     let mut sum = 0;
//!     for i in 0..n {
//!         sum += i;
//!         yielder.suspend(sum);
//!     }
//!     sum
//! });
//! let mut last = 0;
//! while let CoroutineResult::Yield(partial) = co.resume(4) {
//!     last = partial;
//! }
//! assert_eq!(last, 6);
//!
//! // Dropping the coroutine returns the stack; it is reused next time.
//! drop(co);
//! let again = pool.acquire(32 * 1024)?;
//! drop(again);
//!
//! let stats = pool.stats();
//! assert_eq!(stats.acquires, 2);
//! assert_eq!(stats.fresh_carves, 1);
//! assert_eq!(stats.local_hits, 1);
//! assert_eq!(stats.samples, 2); // sample_every(1): every stack was measured
//! println!("{stats:?}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it works
//!
//! * **Slabs.** Stacks are carved from large `mmap`ed slabs, one series per
//!   class, reserved with `MAP_NORESERVE` and `MADV_NOHUGEPAGE`, so only
//!   touched 4 KiB pages become resident.
//! * **Guard pages** are installed with `madvise(MADV_GUARD_INSTALL)`
//!   (Linux 6.13+), which does not split the mapping: a million guarded
//!   stacks fit under the default `vm.max_map_count` of 65,530. On older
//!   kernels the pool falls back to `mprotect` (two mappings per stack),
//!   counts mappings, and returns [`PoolError::MapCountExhausted`] (saying
//!   how to raise the limit) before the kernel's limit is hit. See
//!   [`GuardMode`].
//! * **Caches.** A released stack goes to a bounded per-thread cache (no
//!   atomics, no locks), then to a bounded shared list per class; beyond
//!   both, its pages are given back to the OS (`MADV_DONTNEED`) and its slot
//!   is reused before a fresh one is carved.
//! * **Resident memory.** A released stack keeps at most the class's
//!   resident target of pages; [`StackPool::trim`] gives back the pages of
//!   cached stacks. Neither runs on the acquire path.
//! * **Stack use** is measured on 1 in N acquisitions
//!   ([`PoolBuilder::sample_every`], [`PooledStack::touched_bytes`]).
//! * **Overflow.** Touching a guard page prints which stack overflowed
//!   (class, address range, and the label set with [`set_overflow_label`]
//!   or named by a [`set_overflow_label_source`])
//!   and aborts, like Rust's own thread-overflow report.
//! * **NUMA.** With [`PoolBuilder::numa_node`], every slab is bound to that
//!   node with `mbind(MPOL_BIND)`.
//!
//! # Cargo features
//!
//! None. Linux only.
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![doc(test(attr(deny(warnings))))]

mod builder;
mod cache;
mod class;
mod error;
mod loom;
mod overflow;
mod pool;
mod refs;
mod registry;
mod slab;
mod stack;
mod stats;
mod sys;

pub use builder::{GuardMode, PoolBuilder};
pub use class::SizeClass;
pub use error::{Limit, PoolError};
pub use overflow::{set_overflow_label, set_overflow_label_source, OverflowLabelFn};
pub use pool::StackPool;
pub use stack::PooledStack;
pub use stats::{ClassStats, PoolStats};
