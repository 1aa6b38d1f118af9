//! The scheduling-delay histogram: fixed log-linear buckets, one writer.
//!
//! Bucket layout (values in nanoseconds): everything below 128 ns falls in
//! bucket 0; above, each power of two is split in four equal sub-buckets,
//! so a bucket's width is at most a quarter of its lower bound (percentiles
//! are exact to within 25 %). The last bucket holds everything from 2^34 ns
//! (about 17 s) up.
//!
//! ```text
//! index:   0        1      2      3      4      5     ...   4k+1 .. 4k+4
//! range: [0,128) [128,160) [160,192) [192,224) [224,256) [256,320) ... 2^(k+7) split in 4
//! ```
//!
//! [`Recorder`] lives in the runtime (one per worker) and is written only by
//! its worker: each update is a relaxed load and store, no read-modify-write.
//! [`DelayHistogram`] is the copyable snapshot users read.

use crate::loom::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::fmt;
use std::time::Duration;

/// Smallest exponent with its own sub-buckets (2^7 = 128 ns).
const MIN_EXP: u32 = 7;
/// Largest exponent with its own sub-buckets (2^33 ns, about 8.6 s).
const MAX_EXP: u32 = 33;
/// Number of buckets: one below 128 ns, four per power of two, one overflow.
pub(crate) const BUCKETS: usize = 1 + 4 * (MAX_EXP - MIN_EXP + 1) as usize + 1;

/// The bucket of a value in nanoseconds.
#[inline]
pub(crate) fn bucket_of(ns: u64) -> usize {
    if ns < 1 << MIN_EXP {
        return 0;
    }
    let e = 63 - ns.leading_zeros();
    if e > MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = ((ns >> (e - 2)) & 3) as usize;
    1 + 4 * (e - MIN_EXP) as usize + sub
}

/// The exclusive upper bound of bucket `i`, in nanoseconds (`u64::MAX` for
/// the overflow bucket).
pub(crate) fn bucket_upper(i: usize) -> u64 {
    if i == 0 {
        return 1 << MIN_EXP;
    }
    if i >= BUCKETS - 1 {
        return u64::MAX;
    }
    let e = MIN_EXP + ((i - 1) / 4) as u32;
    let sub = ((i - 1) % 4) as u64;
    (5 + sub) << (e - 2)
}

/// Single-writer recorder of one worker's delays.
#[derive(Debug)]
pub(crate) struct Recorder {
    counts: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

#[inline]
fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Relaxed).wrapping_add(by), Relaxed);
}

impl Recorder {
    /// Records one delay. Only the owning worker calls this.
    pub(crate) fn record(&self, ns: u64) {
        bump(&self.counts[bucket_of(ns)], 1);
        bump(&self.count, 1);
        bump(&self.sum, ns);
        if ns > self.max.load(Relaxed) {
            self.max.store(ns, Relaxed);
        }
    }

    /// A snapshot (may miss a record in flight).
    pub(crate) fn snapshot(&self) -> DelayHistogram {
        let mut h = DelayHistogram::default();
        for (out, c) in h.counts.iter_mut().zip(self.counts.iter()) {
            *out = c.load(Relaxed);
        }
        h.count = self.count.load(Relaxed);
        h.sum_ns = self.sum.load(Relaxed);
        h.max_ns = self.max.load(Relaxed);
        h
    }
}

/// A histogram of scheduling delays: the time from a task becoming runnable
/// (spawned, woken, or yielded) to it running.
///
/// The runtime samples one wake-up in N (see
/// [`Builder::scheduling_delay_sample_every`](crate::Builder::scheduling_delay_sample_every));
/// with tracing on, the histogram takes one resume in N and the trace has
/// every wake-up's delay. Buckets are log-linear, so
/// percentiles are upper bounds within 25 % of the true value; `max` is exact.
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::builder()
///     .scheduling_delay_sample_every(1)
///     .build()?;
/// rt.block_on(|| {
///     for _ in 0..100 {
///         pinstack::yield_now();
///     }
/// });
/// let d = rt.metrics().scheduling_delay;
/// assert!(d.count() >= 100);
/// assert!(d.p50() <= d.p99() && d.p99() <= d.max().max(d.p99()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DelayHistogram {
    counts: [u64; BUCKETS],
    count: u64,
    sum_ns: u64,
    max_ns: u64,
}

impl Default for DelayHistogram {
    fn default() -> DelayHistogram {
        DelayHistogram {
            counts: [0; BUCKETS],
            count: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }
}

impl DelayHistogram {
    /// Delays recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the recorded delays.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns)
    }

    /// Mean delay (zero when empty).
    pub fn mean(&self) -> Duration {
        Duration::from_nanos(self.sum_ns.checked_div(self.count).unwrap_or(0))
    }

    /// Largest delay recorded (exact).
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }

    /// Median (upper bound of its bucket, capped at `max`).
    pub fn p50(&self) -> Duration {
        self.percentile(0.5)
    }

    /// 99th percentile (upper bound of its bucket, capped at `max`).
    pub fn p99(&self) -> Duration {
        self.percentile(0.99)
    }

    /// The `q` quantile (`0.0..=1.0`): the upper bound of the bucket holding
    /// it, capped at `max`. Zero when empty.
    pub fn percentile(&self, q: f64) -> Duration {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(bucket_upper(i).min(self.max_ns));
            }
        }
        self.max()
    }

    /// Non-empty buckets as (exclusive upper bound, count), in order. The
    /// last bucket's bound is `Duration::MAX`.
    pub fn buckets(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| {
                let up = bucket_upper(i);
                let d = if up == u64::MAX {
                    Duration::MAX
                } else {
                    Duration::from_nanos(up)
                };
                (d, c)
            })
    }

    /// Cumulative counts at power-of-two bounds (`le` buckets in the
    /// Prometheus sense): (bound in ns, count of delays below it), from
    /// 128 ns to 2^34 ns.
    pub(crate) fn cumulative_pow2(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::with_capacity((MAX_EXP - MIN_EXP + 2) as usize);
        let mut acc = self.counts[0];
        out.push((1u64 << MIN_EXP, acc));
        for e in MIN_EXP..=MAX_EXP {
            let first = 1 + 4 * (e - MIN_EXP) as usize;
            acc += self.counts[first..first + 4].iter().sum::<u64>();
            out.push((1u64 << (e + 1), acc));
        }
        out
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &DelayHistogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }
}

impl fmt::Debug for DelayHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayHistogram")
            .field("count", &self.count)
            .field("p50", &self.p50())
            .field("p99", &self.p99())
            .field("max", &self.max())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order() {
        let mut last = 0;
        for ns in [
            0u64,
            1,
            127,
            128,
            159,
            160,
            255,
            256,
            1000,
            1 << 20,
            1 << 33,
            (1 << 34) - 1,
        ] {
            let b = bucket_of(ns);
            assert!(b >= last, "bucket of {ns} went down");
            assert!(ns < bucket_upper(b), "{ns} not below upper of bucket {b}");
            if b > 0 {
                assert!(
                    ns >= bucket_upper(b - 1),
                    "{ns} below the previous bucket's upper"
                );
            }
            last = b;
        }
        assert_eq!(bucket_of(1 << 34), BUCKETS - 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_upper(BUCKETS - 2), 1 << 34);
    }

    #[test]
    fn percentiles_bound_the_values() {
        let r = Recorder::default();
        for i in 1..=100u64 {
            r.record(i * 1000); // 1 µs .. 100 µs
        }
        let h = r.snapshot();
        assert_eq!(h.count(), 100);
        assert_eq!(h.max(), Duration::from_micros(100));
        let p50 = h.p50().as_nanos() as u64;
        assert!((50_000..=62_500).contains(&p50), "p50 {p50}");
        let p99 = h.p99().as_nanos() as u64;
        assert!((99_000..=100_000).contains(&p99), "p99 {p99}");
        assert_eq!(h.mean(), Duration::from_nanos(50_500));
        let total: u64 = h.buckets().map(|(_, c)| c).sum();
        assert_eq!(total, 100);
        let cum = h.cumulative_pow2();
        assert_eq!(cum.last().map(|c| c.1), Some(100));
        assert!(cum.windows(2).all(|w| w[0].1 <= w[1].1 && w[0].0 < w[1].0));
    }

    #[test]
    fn merge_adds_counts_and_keeps_the_max() {
        let a = Recorder::default();
        let b = Recorder::default();
        a.record(500);
        b.record(5_000_000);
        let mut h = a.snapshot();
        h.merge(&b.snapshot());
        assert_eq!(h.count(), 2);
        assert_eq!(h.max(), Duration::from_millis(5));
        assert_eq!(DelayHistogram::default().p99(), Duration::ZERO);
    }
}
