//! The idle-client clock: when to PING, when to give up. I/O-free.
//!
//! ```text
//!            input                      deadline, idle long enough
//!   [quiet] ◀───────── [pinged]  [quiet] ───────────────────────────▶ [pinged]
//!      │ deadline, input came meanwhile: re-arm at last_input + interval
//!      ▼
//!   [pinged] ── deadline (no input since the PING) ──▶ timed out
//! ```
//!
//! The runtime keeps one timer per connection, armed at
//! [`IdleClock::first_deadline`]. Input only records a time (no timer work) unless
//! a PING is outstanding; the timer firing early is answered with a new
//! deadline. So a busy connection costs one timer re-arm per idle interval,
//! not one per read.

use std::time::{Duration, Instant};

/// What to do when the timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    /// Not idle yet: re-arm the timer at this instant.
    Rearm(Instant),
    /// Idle: send a PING and re-arm the timer at this instant (the reply
    /// deadline).
    Ping(Instant),
    /// No answer to the PING in time: drop the client.
    TimedOut,
}

/// Per-connection idle state (see the module docs).
#[derive(Debug, Clone)]
pub struct IdleClock {
    interval: Duration,
    timeout: Duration,
    last_input: Instant,
    pinged: bool,
}

impl IdleClock {
    /// A clock for a connection that just opened at `now`.
    pub fn new(now: Instant, interval: Duration, timeout: Duration) -> Self {
        Self {
            interval,
            timeout,
            last_input: now,
            pinged: false,
        }
    }

    /// Where to arm the timer first.
    pub fn first_deadline(&self) -> Instant {
        self.last_input + self.interval
    }

    /// Records input at `now`. Returns a new deadline when the timer must be
    /// re-armed (a PING was outstanding), `None` otherwise.
    pub fn on_input(&mut self, now: Instant) -> Option<Instant> {
        self.last_input = now;
        if self.pinged {
            self.pinged = false;
            Some(now + self.interval)
        } else {
            None
        }
    }

    /// The timer fired at `now`.
    pub fn on_deadline(&mut self, now: Instant) -> IdleAction {
        if self.pinged {
            return IdleAction::TimedOut;
        }
        let due = self.last_input + self.interval;
        if now >= due {
            self.pinged = true;
            IdleAction::Ping(now + self.timeout)
        } else {
            IdleAction::Rearm(due)
        }
    }

    /// Seconds of silence a timed-out client had: interval + timeout.
    pub fn silence_secs(&self) -> u64 {
        (self.interval + self.timeout).as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn quiet_client_is_pinged_then_dropped() {
        let t0 = Instant::now();
        let mut c = IdleClock::new(t0, 10 * S, 5 * S);
        assert_eq!(c.first_deadline(), t0 + 10 * S);
        assert_eq!(c.on_deadline(t0 + 10 * S), IdleAction::Ping(t0 + 15 * S));
        assert_eq!(c.on_deadline(t0 + 15 * S), IdleAction::TimedOut);
        assert_eq!(c.silence_secs(), 15);
    }

    #[test]
    fn input_defers_the_ping_lazily() {
        let t0 = Instant::now();
        let mut c = IdleClock::new(t0, 10 * S, 5 * S);
        assert_eq!(c.on_input(t0 + 4 * S), None);
        assert_eq!(c.on_deadline(t0 + 10 * S), IdleAction::Rearm(t0 + 14 * S));
        assert_eq!(c.on_deadline(t0 + 14 * S), IdleAction::Ping(t0 + 19 * S));
    }

    #[test]
    fn answering_a_ping_rearms() {
        let t0 = Instant::now();
        let mut c = IdleClock::new(t0, 10 * S, 5 * S);
        assert!(matches!(c.on_deadline(t0 + 10 * S), IdleAction::Ping(_)));
        assert_eq!(c.on_input(t0 + 11 * S), Some(t0 + 21 * S));
        assert_eq!(c.on_deadline(t0 + 21 * S), IdleAction::Ping(t0 + 26 * S));
    }
}
