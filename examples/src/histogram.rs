//! A log-bucket latency histogram, HDR style, safe to record into from many
//! threads at once.
//!
//! Values (nanoseconds) below 32 get a bucket each; above, every power of two
//! is split into 32 linear sub-buckets, so a reported quantile is within
//! about 3% of the true value. Layout: `index = (exp - 4) * 32 + sub` where
//! `exp` is the position of the top set bit and `sub` the next five bits.
//! Recording is one relaxed `fetch_add`; 1,920 buckets cover all of `u64`.

use std::sync::atomic::{AtomicU64, Ordering};

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS + 1) as usize) * SUB as usize;

/// A concurrent histogram of `u64` values (the crate records nanoseconds).
///
/// ```
/// use pinstack_examples::Histogram;
/// let h = Histogram::new();
/// for v in 1..=1000u64 {
///     h.record(v * 1000);
/// }
/// let p50 = h.quantile(0.5);
/// assert!((480_000..=520_000).contains(&p50), "{p50}");
/// assert_eq!(h.count(), 1000);
/// ```
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .field("max", &self.max())
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as usize) * SUB as usize + sub as usize
}

/// The middle of bucket `i`'s value range.
fn value_of(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = i / SUB + u64::from(SUB_BITS) - 1;
    let sub = i % SUB;
    let width = 1u64 << (exp - u64::from(SUB_BITS));
    let low = (1u64 << exp) + sub * width;
    low + width / 2
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    /// Records one value.
    pub fn record(&self, v: u64) {
        self.buckets[index(v)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(v, Ordering::Relaxed);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Largest value recorded (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The value at quantile `q` (0.0..=1.0), 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_of(i).min(self.max());
            }
        }
        self.max()
    }

    /// Adds every value of `other` into `self`.
    pub fn merge(&self, other: &Histogram) {
        for (a, b) in self.buckets.iter().zip(other.buckets.iter()) {
            let v = b.load(Ordering::Relaxed);
            if v != 0 {
                a.fetch_add(v, Ordering::Relaxed);
            }
        }
        self.max.fetch_max(other.max(), Ordering::Relaxed);
    }

    /// Empties the histogram. Values recorded concurrently with the reset
    /// may land on either side of it.
    pub fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
        self.max.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_monotonic_and_in_range() {
        let mut values: Vec<u64> = (0..64u32)
            .flat_map(|s| [1u64 << s, (1u64 << s) + 1, (1u64 << s) / 2 * 3])
            .collect();
        values.extend(0..100);
        values.push(u64::MAX);
        values.sort_unstable();
        let mut last = 0;
        for v in values {
            let i = index(v);
            assert!(i < BUCKETS, "v={v}");
            assert!(i >= last, "v={v}");
            last = i;
        }
    }

    #[test]
    fn bucket_value_is_within_three_percent() {
        for v in [
            33u64,
            100,
            1_000,
            12_345,
            1_000_000,
            987_654_321,
            u64::MAX / 3,
        ] {
            let m = value_of(index(v));
            let err = (m as f64 - v as f64).abs() / v as f64;
            assert!(err <= 0.032, "v={v} m={m} err={err}");
        }
        for v in 0..32 {
            assert_eq!(value_of(index(v)), v);
        }
    }

    #[test]
    fn quantiles_merge_and_reset() {
        let a = Histogram::new();
        let b = Histogram::new();
        for _ in 0..99 {
            a.record(1_000);
        }
        b.record(1_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 100);
        assert!(a.quantile(0.5) < 1_100);
        assert_eq!(a.quantile(1.0), 1_000_000);
        assert_eq!(a.max(), 1_000_000);
        a.reset();
        assert_eq!((a.count(), a.quantile(0.99), a.max()), (0, 0, 0));
    }
}
