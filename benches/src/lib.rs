//! Shared helpers of pinstack's benchmarks: medians, RSS readers, output lines.
//!
//! * [`report`]: the [`Figure`](report::Figure) printed by `compare`, its line
//!   format (BENCHMARKS.md) and the median-of-alternating-runs helper.
//! * [`child`]: runs a measurement in a fresh child process (re-executing the
//!   current binary) and reads `VmHWM`/`VmRSS` from `/proc/self/status`.
//! * [`runtimes`]: how both runtimes are built (2 workers each), and the
//!   argument helpers of child processes.
//! * [`workloads`]: the registry of workloads `compare` knows; adding one is
//!   a new file in `src/workloads/` plus its name in the `register!` list.
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod child;
pub mod report;
pub mod runtimes;
pub mod workloads;

/// The error type of the benchmark harness: any error, with its message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// `Result` with the harness's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
