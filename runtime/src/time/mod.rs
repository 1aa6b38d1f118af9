//! Sleeping, timers and periodic ticks.
//!
//! [`sleep`] and [`sleep_until`] (also at the crate root) suspend the
//! calling coroutine; [`interval`] ticks periodically, as tokio's
//! `time::interval` and Go's `time.Ticker` do.
//!
//! Each worker keeps its timers in a hierarchical timer wheel (`wheel.rs`)
//! with 1 ms ticks; arming and cancelling are O(1). A timer never fires
//! early: deadlines are rounded up to the next tick.

mod interval;
pub(crate) mod wheel;

pub use interval::{interval, interval_at, Interval, MissedTickBehavior};

use crate::park::{self, Reason};
use std::time::{Duration, Instant};

/// Suspends the current task (or blocks the current thread) for at least `d`.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let rt = pinstack::Runtime::new()?;
/// rt.block_on(|| {
///     let t = Instant::now();
///     pinstack::sleep(Duration::from_millis(5));
///     assert!(t.elapsed() >= Duration::from_millis(5));
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn sleep(d: Duration) {
    sleep_until(Instant::now() + d)
}

/// Suspends the current task (or blocks the current thread) until `deadline`.
pub fn sleep_until(deadline: Instant) {
    while Instant::now() < deadline {
        park::park_until(Reason::Timer, deadline);
    }
}
