//! Sleeping and timers.
//!
//! Each worker keeps its timers in a hierarchical timer wheel (`wheel.rs`)
//! with 1 ms ticks; arming and cancelling are O(1). A timer never fires
//! early: deadlines are rounded up to the next tick.

pub(crate) mod wheel;

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
