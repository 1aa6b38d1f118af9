//! Tracing: what the runtime did to each task, as events a trace viewer
//! opens.
//!
//! Opt in with [`Builder::tracing`](crate::Builder::tracing). Each worker
//! then records, into its own bounded ring (no locks; the oldest events are
//! overwritten), every task's spawn (and by whom), each resume as a slice
//! (ending in a yield, a park with its reason, a finish or a panic), each
//! wake-up (and by whom: a task, a worker's I/O poller, a timer, or a thread
//! outside the runtime), user regions ([`region`]), and at finish a summary
//! of where the task's time went ([`TaskSummary`]).
//!
//! ```
//! use std::time::Duration;
//!
//! let rt = pinstack::Runtime::builder().tracing(true).build()?;
//! rt.block_on(|| {
//!     let h = pinstack::task::Builder::new()
//!         .name("sleeper")
//!         .spawn(|| pinstack::sleep(Duration::from_millis(5)))?;
//!     h.join().map_err(|e| std::io::Error::other(e.to_string()))
//! })?;
//! let trace = rt.trace().expect("tracing is on");
//! let s = trace
//!     .task_summaries()
//!     .into_iter()
//!     .find(|s| s.name.as_deref() == Some("sleeper"))
//!     .expect("the sleeper finished");
//! assert!(s.timer_wait >= Duration::from_millis(4));
//! let json = trace.to_chrome_json(); // open in ui.perfetto.dev
//! assert!(json.contains("\"sleeper\""));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Modules: `ring` (the lock-free ring), `event` (encoding), `task` (what a
//! task carries: wake stamps and time accounting), `region`, `export`
//! ([`Trace`], summaries), `chrome` (JSON), `layer` (the `tracing` crate).
//! The hooks that record live in `metrics/probe.rs`.

mod chrome;
pub(crate) mod event;
mod export;
#[cfg(feature = "tracing")]
mod layer;
mod region;
pub(crate) mod ring;
pub(crate) mod task;

pub use export::{TaskSummary, Trace};
#[cfg(feature = "tracing")]
pub use layer::PinstackLayer;
pub use region::{enter, region, RegionGuard};
pub(crate) use task::TaskObs;

use crate::{Handle, Runtime};

/// Where the running task's time went so far (up to the start of its
/// current resume), if it runs on a runtime with tracing on and has
/// suspended at least once (a task's accounting starts at its first
/// suspension; a task done in one resume is summarised from its one slice).
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::builder().tracing(true).build()?;
/// let resumes = rt.block_on(|| {
///     pinstack::yield_now();
///     pinstack::trace::current_task_summary().map(|s| s.resumes)
/// });
/// assert_eq!(resumes, Some(1));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn current_task_summary() -> Option<TaskSummary> {
    crate::scheduler::with_current_task_header(|h| {
        h.obs.trace().map(|t| {
            let mut s =
                TaskSummary::from_totals(t.id, &t.totals(), crate::metrics::clock::delta_ns);
            s.name = h.meta.name.as_deref().map(String::from);
            s.site = Some(h.meta.site);
            s
        })
    })
    .flatten()
}

impl Handle {
    /// A snapshot of the trace recorded so far; `None` unless the runtime
    /// was built with [`Builder::tracing`](crate::Builder::tracing).
    pub fn trace(&self) -> Option<Trace> {
        Trace::collect(&self.shared)
    }
}

impl Runtime {
    /// A snapshot of the trace recorded so far; `None` unless the runtime
    /// was built with [`Builder::tracing`](crate::Builder::tracing).
    pub fn trace(&self) -> Option<Trace> {
        self.handle().trace()
    }
}
