//! The clock of delays and traces: the CPU's time-stamp counter where the
//! kernel itself trusts it, else `CLOCK_MONOTONIC`.
//!
//! Timestamps are *ticks*: TSC cycles, or nanoseconds on the fallback. A
//! TSC read costs a third to a half of a `clock_gettime` through the vDSO
//! (11 ns against 27 ns on the 2-core VMs this was first measured on; on a
//! later KVM guest, a Xeon with a 2 GHz TSC, 41 ticks = 20 ns back to back
//! when idle and 30 to 50 ns against 60 to 95 ns with the machine loaded),
//! and it is most of what tracing costs: `probe.rs` takes as few as it can
//! (one per resume boundary, one per wake-up).
//!
//! ```text
//! first runtime start: mode = TSC if x86_64 and clocksource == "tsc" (the
//!                      kernel found it constant and synchronised), else NS;
//!                      TSC: calibrate against CLOCK_MONOTONIC over ~200 µs
//!                      -> NS_PER_TICK_Q32 (ns per tick, 32.32 fixed point)
//! hot paths:           now() = one load of MODE + rdtsc / clock_gettime
//! delays:              delta_ns(ticks) = ticks * NS_PER_TICK_Q32 >> 32
//! trace export:        Base::to_ns re-derives the rate from the runtime's
//!                      start to the export (milliseconds to hours apart:
//!                      far more precise than the start-up calibration)
//! ```
//!
//! The mode and rate are process-wide and written once, before any tick is
//! taken; they are plain `core` atomics in statics (the loom shim's are not
//! const-constructible), read relaxed: every reader sees the same values
//! because they are published before the first runtime's threads start.

use crate::sys;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Once;

const UNSET: u8 = 0;
const TSC: u8 = 1;
const NS: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(UNSET);
/// Nanoseconds per tick, 32.32 fixed point (1 << 32 in NS mode).
static NS_PER_TICK_Q32: AtomicU64 = AtomicU64::new(1 << 32);
static INIT: Once = Once::new();

/// Calibration interval of the TSC, in nanoseconds.
const CALIBRATE_NS: u64 = 200_000;

/// Chooses the clock and calibrates it (once per process).
pub(crate) fn init() {
    INIT.call_once(|| {
        let tsc = cfg!(target_arch = "x86_64") && sys::clocksource().is_ok_and(|s| s == "tsc");
        if tsc {
            let (t0, n0) = (sys::cycles(), sys::monotonic_ns());
            let mut n1 = n0;
            while n1.wrapping_sub(n0) < CALIBRATE_NS {
                std::hint::spin_loop();
                n1 = sys::monotonic_ns();
            }
            let t1 = sys::cycles();
            let ticks = t1.wrapping_sub(t0);
            if ticks > 0 {
                let q = ((n1 - n0) as u128) << 32;
                NS_PER_TICK_Q32.store((q / ticks as u128) as u64, Relaxed);
                MODE.store(TSC, Relaxed);
                return;
            }
        }
        MODE.store(NS, Relaxed);
    });
}

/// The current tick.
#[inline]
pub(crate) fn now() -> u64 {
    if MODE.load(Relaxed) == TSC {
        sys::cycles()
    } else {
        sys::monotonic_ns()
    }
}

/// A duration in ticks, in nanoseconds (start-up calibration).
#[inline]
pub(crate) fn delta_ns(ticks: u64) -> u64 {
    ((ticks as u128 * NS_PER_TICK_Q32.load(Relaxed) as u128) >> 32) as u64
}

/// A runtime's time origin: a tick and `CLOCK_MONOTONIC` read together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Base {
    ticks: u64,
    mono: u64,
}

impl Base {
    pub(crate) fn now() -> Base {
        Base {
            ticks: now(),
            mono: sys::monotonic_ns(),
        }
    }

    /// A converter of this runtime's ticks to nanoseconds since the base,
    /// with the tick rate measured from the base to now.
    pub(crate) fn converter(&self) -> Converter {
        let q32 = NS_PER_TICK_Q32.load(Relaxed);
        let (t, n) = (now(), sys::monotonic_ns());
        let dt = t.wrapping_sub(self.ticks);
        let dn = n.saturating_sub(self.mono);
        // Re-derive the rate once the span dwarfs the clock reads' cost.
        let q32 = if MODE.load(Relaxed) == TSC && dn >= 10_000_000 && dt > 0 {
            ((dn as u128) << 32)
                .checked_div(dt as u128)
                .map_or(q32, |q| q as u64)
        } else {
            q32
        };
        Converter {
            base: self.ticks,
            q32,
        }
    }
}

/// Converts ticks to nanoseconds (see [`Base::converter`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Converter {
    base: u64,
    q32: u64,
}

impl Converter {
    /// Nanoseconds from the base to tick `t` (0 if before it).
    pub(crate) fn since_base(&self, t: u64) -> u64 {
        self.span(t.saturating_sub(self.base))
    }

    /// A duration in ticks, in nanoseconds.
    pub(crate) fn span(&self, ticks: u64) -> u64 {
        ((ticks as u128 * self.q32 as u128) >> 32) as u64
    }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn ticks_convert_to_wall_time() {
        init();
        let base = Base::now();
        let (t0, i0) = (now(), Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (t1, wall) = (now(), i0.elapsed());
        let ns = delta_ns(t1 - t0);
        let wall = wall.as_nanos() as u64;
        // Two clocks read back to back: equal to within a millisecond
        // (a bound on calibration error, not a timing of the sleep).
        assert!(ns.abs_diff(wall) < 1_000_000, "{ns} vs {wall}");
        let c = base.converter();
        assert!(c.since_base(t1) >= c.since_base(t0));
        assert!(c.span(t1 - t0).abs_diff(wall) < 1_000_000);
        assert_eq!(c.since_base(0), 0);
    }
}
