//! pinstack: an embeddable runtime of stackful coroutines on pooled stacks,
//! for servers that hold very many connections.
//!
//! Handlers are written in plain blocking style and suspend only their own
//! coroutine. Every task runs on a stack taken from a pool of presized,
//! guarded, reusable stacks; a spawn can carry a stack size hint. Nothing
//! grows or is copied: no stack-growth cliffs.
//!
//! ```
//! use pinstack::task;
//!
//! let rt = pinstack::Runtime::new()?;
//! let total = rt.block_on(|| {
//!     let workers: Vec<_> = (0..100)
//!         .map(|i| {
//!             task::Builder::new()
//!                 .name("square")
//!                 .stack_size(16 * 1024)
//!                 .spawn(move || {
//!                     pinstack::yield_now();
//!                     i * i
//!                 })
//!         })
//!         .collect::<std::io::Result<_>>()?;
//!     let mut sum = 0;
//!     for w in workers {
//!         sum += w.join().expect("no task panics");
//!     }
//!     Ok::<_, std::io::Error>(sum)
//! })?;
//! assert_eq!(total, 328_350);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Observability: [`Runtime::metrics`] reads the runtime's counters,
//! scheduling-delay histograms and per-spawn-site stack use (see
//! [`metrics`], also as Prometheus text); [`Builder::tracing`] records a
//! trace of what the runtime did to each task, exported as Chrome
//! trace-event JSON (see [`trace`]).
//!
//! # Task memory
//!
//! A spawn takes one block of memory (the task's header, its closure and
//! its output) and the task's last reference gives it back. Workers keep
//! freed task blocks for the next spawns, as Go keeps freed goroutines: a
//! short list per size class on each worker and a process-wide depot
//! behind them, so a burst of spawns does not make the allocator trim and
//! re-fault its heap each time. What is kept is bounded by the recent peak
//! of live task memory and decays: memory unused for a whole second is
//! given back by halves, so an idle process returns it within about twenty
//! seconds. [`metrics::RuntimeMetrics::task_memory_cached_bytes`] shows the
//! depot.
//!
//! The architecture and the reasons behind it are in the project's design
//! notes (`DESIGN.md`, beside the repository as `../shared/DESIGN.md`); the
//! README has the short version.
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![doc(test(attr(deny(warnings))))]

pub mod arena;
mod blocking;
mod builder;
mod config;
mod future;
mod loom;
pub mod metrics;
pub mod net;
mod park;
pub mod process;
mod runtime;
mod scheduler;
pub mod signal;
pub mod sync;
mod sys;
pub mod task;
#[doc(hidden)]
pub mod task_local;
pub mod time;
pub mod trace;

pub use blocking::spawn_blocking;
pub use builder::{Builder, DEFAULT_STACK_SIZE};
pub use future::block_on;
pub use metrics::{DelayHistogram, RuntimeMetrics, WorkerMetrics};
pub use pinstack_numa::NumaPolicy;
pub use runtime::{Handle, Runtime};
pub use task::{spawn, yield_now, JoinError, JoinHandle};
pub use time::{sleep, sleep_until};
