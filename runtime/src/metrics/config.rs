//! Observability settings and their `runtime::Builder` methods.
//!
//! Defaults: metrics on (scheduling delay sampled 1 wake-up in 64, stack
//! use sampled 1 spawn in 4096), stack-size learning off, tracing off.

use crate::builder::Builder;
use std::io;

/// Default: measure one scheduling delay in this many wake-ups.
pub(crate) const DEFAULT_DELAY_SAMPLE_EVERY: u32 = 64;
/// Default: measure the stack use of one task in this many.
pub(crate) const DEFAULT_STACK_SAMPLE_EVERY: u32 = 4096;
/// Default capacity of each worker's trace ring, in events (64 bytes each).
pub(crate) const DEFAULT_TRACE_EVENTS: usize = 1 << 16;
/// Largest trace ring accepted, in events per worker (1 GiB).
const MAX_TRACE_EVENTS: usize = 1 << 24;

/// What the runtime measures and records.
#[derive(Debug, Clone)]
pub(crate) struct ObsConfig {
    pub(crate) metrics: bool,
    pub(crate) delay_sample_every: u32,
    pub(crate) stack_sample_every: u32,
    pub(crate) learn_stack_sizes: bool,
    pub(crate) tracing: bool,
    pub(crate) trace_events: usize,
}

impl Default for ObsConfig {
    fn default() -> ObsConfig {
        ObsConfig {
            metrics: true,
            delay_sample_every: DEFAULT_DELAY_SAMPLE_EVERY,
            stack_sample_every: DEFAULT_STACK_SAMPLE_EVERY,
            learn_stack_sizes: false,
            tracing: false,
            trace_events: DEFAULT_TRACE_EVENTS,
        }
    }
}

impl ObsConfig {
    /// The stack pool's sampling interval (0: no sampling).
    pub(crate) fn pool_sample_every(&self) -> u32 {
        if self.metrics || self.learn_stack_sizes {
            self.stack_sample_every
        } else {
            0
        }
    }

    /// Checks the settings; called by `Builder::build`.
    pub(crate) fn validate(&self) -> io::Result<()> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.delay_sample_every == 0 {
            return invalid(
                "scheduling_delay_sample_every(0): give 1 to measure every wake-up, \
                 or turn metrics off with metrics(false)"
                    .into(),
            );
        }
        if self.learn_stack_sizes && self.stack_sample_every == 0 {
            return invalid(
                "learn_stack_sizes(true) needs stack sampling: \
                 stack_sample_every(0) turns it off; give 1 or more"
                    .into(),
            );
        }
        if self.tracing && !(1..=MAX_TRACE_EVENTS).contains(&self.trace_events) {
            return invalid(format!(
                "trace_buffer_events({}) is out of range: give 1 to {MAX_TRACE_EVENTS} \
                 events per worker",
                self.trace_events
            ));
        }
        Ok(())
    }
}

/// Observability settings.
impl Builder {
    /// Turns the runtime's extra metrics on or off (default on): sampled
    /// scheduling delays, sampled stack use per spawn site, run-queue depth,
    /// live tasks, the names of long-running tasks, and the per-worker
    /// counters (spawns, resumes, suspensions, yields, steals, parks). Off,
    /// the workers count nothing; only the monitor thread's count of long
    /// runs remains.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = pinstack::Runtime::builder().metrics(false).build()?;
    /// rt.block_on(|| pinstack::yield_now());
    /// let m = rt.metrics();
    /// assert_eq!(m.scheduling_delay.count(), 0);
    /// assert_eq!(m.workers.iter().map(|w| w.resumes).sum::<u64>(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metrics(mut self, on: bool) -> Builder {
        self.config.obs.metrics = on;
        self
    }

    /// Measures the scheduling delay of one wake-up in `n` (default 64; 1
    /// measures all; `n` is rounded up to a power of two, so that picking
    /// the sampled resumes costs a mask test). A measurement costs two
    /// clock reads.
    pub fn scheduling_delay_sample_every(mut self, n: u32) -> Builder {
        self.config.obs.delay_sample_every = n;
        self
    }

    /// Measures the stack high-water mark of one task in `n` (default
    /// 4096; 0 turns it off). A sampled stack has its pages below the top
    /// one dropped before the task starts (`madvise`) and is scanned with
    /// `mincore` when the task ends: two syscalls for a shallow task, plus a
    /// TLB shootdown when the stack's previous user had left deeper pages
    /// behind. Results appear per spawn site in
    /// [`RuntimeMetrics::stack_sites`](crate::RuntimeMetrics::stack_sites).
    pub fn stack_sample_every(mut self, n: u32) -> Builder {
        self.config.obs.stack_sample_every = n;
        self
    }

    /// Lets the runtime pick the stack size class of spawn sites that give
    /// no size hint, from the high-water marks it sampled there (default
    /// off). After 4 samples of a site, its tasks get the smallest class
    /// holding twice the largest mark seen and at least 16 KiB above it;
    /// later samples can raise it. Sites with an explicit
    /// [`stack_size`](crate::task::Builder::stack_size) keep their hint.
    ///
    /// A task that goes deeper than anything sampled at its site can still
    /// overflow its stack (reported, then abort): keep the sampling rate
    /// high enough to see a site's deep paths, or give deep sites a hint.
    pub fn learn_stack_sizes(mut self, on: bool) -> Builder {
        self.config.obs.learn_stack_sizes = on;
        self
    }

    /// Records a trace of what the runtime did to each task (spawn, resume,
    /// suspend with its reason, wake-up and by whom, finish, user regions),
    /// readable with [`Runtime::trace`](crate::Runtime::trace) and
    /// exportable as Chrome trace-event JSON. Default off. Each worker
    /// records into its own ring of
    /// [`trace_buffer_events`](Builder::trace_buffer_events) events, without
    /// locks; the oldest events are overwritten.
    pub fn tracing(mut self, on: bool) -> Builder {
        self.config.obs.tracing = on;
        self
    }

    /// Events each worker's trace ring holds (default 65,536, 64 bytes each;
    /// rounded up to a power of two).
    pub fn trace_buffer_events(mut self, n: usize) -> Builder {
        self.config.obs.trace_events = n;
        self
    }
}
