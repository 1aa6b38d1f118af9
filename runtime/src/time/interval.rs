//! Periodic ticks: tokio's `time::interval`, Go's `time.Ticker`.
//!
//! ```text
//!   deadlines: start, start + p, start + 2p, ...        (p = period)
//!   tick(): sleep until the next deadline, return it, then move on:
//!     on time ................ next = deadline + p
//!     late (now >= deadline + p, ticks were missed):
//!       Burst (default) ...... next = deadline + p: the missed ticks come
//!                              at once, then the grid resumes
//!       Delay ................ next = now + p: a new grid from now
//!       Skip ................. next = the first grid point after now
//! ```
//!
//! The deadlines are computed, never measured: a tick returns the deadline
//! it was due at, so drift does not accumulate (with `Burst` and `Skip`).
//! Sleeping goes through [`sleep_until`](super::sleep_until): the calling
//! coroutine suspends on its worker's timer wheel (1 ms ticks, never
//! early), a plain thread blocks.

use std::time::{Duration, Instant};

/// What [`Interval::tick`] does when ticks were missed because the caller
/// came back late (the work between ticks took longer than a period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Deliver the missed ticks at once, then keep the original grid
    /// (tokio's default).
    #[default]
    Burst,
    /// Start a new grid one period after the late tick.
    Delay,
    /// Drop the missed ticks and wait for the next point of the original
    /// grid (Go's `time.Ticker`).
    Skip,
}

/// Ticks every `period`; created by [`interval`] or [`interval_at`].
///
/// # Examples
///
/// ```
/// use pinstack::time::interval;
/// use std::time::Duration;
///
/// let rt = pinstack::Runtime::new()?;
/// rt.block_on(|| {
///     let mut every = interval(Duration::from_millis(2));
///     let first = every.tick(); // at once
///     let second = every.tick(); // 2 ms later
///     assert_eq!(second - first, Duration::from_millis(2));
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Interval {
    next: Instant,
    period: Duration,
    missed: MissedTickBehavior,
}

/// An [`Interval`] whose first tick completes at once, then one every
/// `period`.
///
/// # Panics
///
/// If `period` is zero.
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// An [`Interval`] whose first tick is due at `start`, then one every
/// `period`.
///
/// # Panics
///
/// If `period` is zero.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "interval: the period must be above zero (it would tick without end)"
    );
    Interval {
        next: start,
        period,
        missed: MissedTickBehavior::default(),
    }
}

impl Interval {
    /// Suspends the calling coroutine (or blocks the thread) until the next
    /// tick is due, and returns the instant it was due at.
    pub fn tick(&mut self) -> Instant {
        let due = self.next;
        super::sleep_until(due);
        self.next = self.after(due, Instant::now());
        due
    }

    /// The deadline after the tick due at `due`, taken at `now`.
    fn after(&self, due: Instant, now: Instant) -> Instant {
        let on_grid = later(due, self.period);
        if now < on_grid {
            return on_grid;
        }
        match self.missed {
            MissedTickBehavior::Burst => on_grid,
            MissedTickBehavior::Delay => later(now, self.period),
            MissedTickBehavior::Skip => {
                // The first grid point strictly after `now`.
                let missed = (now - due).as_nanos() / self.period.as_nanos() + 1;
                let periods = u32::try_from(missed).unwrap_or(u32::MAX);
                later(due, self.period.saturating_mul(periods))
            }
        }
    }

    /// When the next tick is due.
    pub fn next_tick(&self) -> Instant {
        self.next
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// What happens to missed ticks.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// Sets what happens to missed ticks.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::time::{interval, MissedTickBehavior};
    /// use std::time::Duration;
    ///
    /// let mut ticker = interval(Duration::from_secs(1));
    /// ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    /// assert_eq!(ticker.missed_tick_behavior(), MissedTickBehavior::Skip);
    /// ```
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }

    /// Makes the next tick due one period from now.
    pub fn reset(&mut self) {
        self.next = Instant::now() + self.period;
    }
}

/// `t + d`, or for a `d` beyond what an `Instant` can hold, a deadline
/// about 30 years out (one that never comes, as tokio does).
fn later(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    t.checked_add(d.min(FAR)).unwrap_or(t)
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    const P: Duration = Duration::from_millis(10);

    fn late_by(missed: MissedTickBehavior, periods: u32, extra: Duration) -> (Instant, Instant) {
        let mut i = interval_at(Instant::now(), P);
        i.set_missed_tick_behavior(missed);
        let due = i.next;
        let now = due + P * periods + extra;
        (due, i.after(due, now))
    }

    #[test]
    fn an_on_time_tick_keeps_the_grid_whatever_the_behavior() {
        for b in [
            MissedTickBehavior::Burst,
            MissedTickBehavior::Delay,
            MissedTickBehavior::Skip,
        ] {
            let (due, next) = late_by(b, 0, P / 2);
            assert_eq!(next, due + P, "{b:?}");
        }
    }

    #[test]
    fn late_ticks_follow_the_chosen_behavior() {
        let extra = Duration::from_millis(5);
        // 3.5 periods late.
        let (due, next) = late_by(MissedTickBehavior::Burst, 3, extra);
        assert_eq!(next, due + P);
        let (due, next) = late_by(MissedTickBehavior::Delay, 3, extra);
        assert_eq!(next, due + P * 3 + extra + P);
        let (due, next) = late_by(MissedTickBehavior::Skip, 3, extra);
        assert_eq!(next, due + P * 4);
        // Exactly on a later grid point: Skip moves to the one after it.
        let (due, next) = late_by(MissedTickBehavior::Skip, 2, Duration::ZERO);
        assert_eq!(next, due + P * 3);
    }

    #[test]
    fn ticks_come_on_the_grid_and_never_early() {
        let start = Instant::now() + Duration::from_millis(3);
        let mut i = interval_at(start, P);
        for k in 0..4 {
            let due = i.tick();
            assert_eq!(due, start + P * k);
            assert!(Instant::now() >= due);
        }
    }

    #[test]
    fn burst_delivers_missed_ticks_at_once_then_resumes_the_grid() {
        let rt = crate::Runtime::builder()
            .worker_threads(1)
            .ignore_environment()
            .build()
            .unwrap();
        let dues = rt.block_on(|| {
            let mut i = interval(P);
            let start = i.tick();
            crate::sleep(P * 3 + P / 2);
            let dues: Vec<Instant> = (0..4).map(|_| i.tick()).collect();
            (start, dues)
        });
        let (start, dues) = dues;
        // The three missed ticks and the next one, each on the grid.
        for (k, due) in dues.iter().enumerate() {
            assert_eq!(*due, start + P * (k as u32 + 1));
        }
    }

    #[test]
    fn a_period_too_long_for_an_instant_is_a_tick_that_never_comes() {
        let mut i = interval(Duration::MAX);
        let first = i.tick();
        assert!(i.next_tick() > first + Duration::from_secs(86_400 * 365));
    }

    #[test]
    #[should_panic(expected = "period must be above zero")]
    fn a_zero_period_is_refused() {
        interval(Duration::ZERO);
    }
}
