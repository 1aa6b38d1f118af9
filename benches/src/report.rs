//! Figures and their one-line format, and medians of alternating runs.
//!
//! Line format (BENCHMARKS.md), one per figure, nothing else on stdout:
//!
//! ```text
//! workload=stackpool metric=ns_hot n=1000000 pinstack=12.3 fresh_mmap=4021.0 ratio=0.0031
//! workload=stackpool metric=max_live_8k n=1000000 pinstack=1000000 default_stack=32744 ratio=30.54 better=higher
//! ```
//!
//! `ratio` is `pinstack / other`. Values print with one decimal (counts as
//! integers, quotients and small per-task sizes with two); the ratio with two significant digits and at least two
//! decimals.

use std::fmt;

use crate::Result;

/// One measured figure: pinstack against one baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Workload name, e.g. `stackpool`.
    pub workload: &'static str,
    /// Metric name from BENCHMARKS.md, e.g. `ns_hot`.
    pub metric: &'static str,
    /// Problem size (iterations, tasks, connections, a cap...).
    pub n: u64,
    /// pinstack's value.
    pub pinstack: f64,
    /// Name of what pinstack is compared with: `tokio`, `fresh_mmap`,
    /// `default_stack`, `malloc`, `fork`, `off`.
    pub baseline: &'static str,
    /// The baseline's value.
    pub other: f64,
    /// Bigger is better (throughput, counts): the line says `better=higher`.
    pub better_higher: bool,
    /// Decimals the values print with: 0 for counts, 1 by default, 2 for
    /// quotients (`cost_vs_spawn`) and small sizes (`kib_per_task`).
    pub decimals: usize,
}

impl Figure {
    /// A time-like figure (smaller is better, one decimal).
    pub fn lower(
        workload: &'static str,
        metric: &'static str,
        n: u64,
        pinstack: f64,
        baseline: &'static str,
        other: f64,
    ) -> Figure {
        Figure {
            workload,
            metric,
            n,
            pinstack,
            baseline,
            other,
            better_higher: false,
            decimals: 1,
        }
    }

    /// The same figure with its values printed with `decimals` decimals.
    ///
    /// ```
    /// use pinstack_benches::report::Figure;
    ///
    /// let f = Figure::lower("idle", "kib_per_task", 10, 4.314, "tokio", 0.44).with_decimals(2);
    /// assert!(f.to_string().contains("pinstack=4.31 tokio=0.44"));
    /// ```
    pub fn with_decimals(self, decimals: usize) -> Figure {
        Figure { decimals, ..self }
    }

    /// A rate where bigger is better (throughput), one decimal, with
    /// `better=higher`.
    ///
    /// ```
    /// use pinstack_benches::report::Figure;
    ///
    /// let f = Figure::higher("echo", "rps", 1000, 52000.0, "tokio", 40000.0);
    /// assert_eq!(
    ///     f.to_string(),
    ///     "workload=echo metric=rps n=1000 pinstack=52000.0 tokio=40000.0 ratio=1.30 better=higher"
    /// );
    /// ```
    pub fn higher(
        workload: &'static str,
        metric: &'static str,
        n: u64,
        pinstack: f64,
        baseline: &'static str,
        other: f64,
    ) -> Figure {
        Figure {
            better_higher: true,
            ..Figure::lower(workload, metric, n, pinstack, baseline, other)
        }
    }

    /// A count where bigger is better, printed as integers.
    pub fn higher_count(
        workload: &'static str,
        metric: &'static str,
        n: u64,
        pinstack: f64,
        baseline: &'static str,
        other: f64,
    ) -> Figure {
        Figure {
            better_higher: true,
            decimals: 0,
            ..Figure::lower(workload, metric, n, pinstack, baseline, other)
        }
    }

    /// `pinstack / other`: 1 when both are 0 (e.g. `lost=0` on both
    /// sides: equal, not undefined), infinite when only `other` is 0.
    pub fn ratio(&self) -> f64 {
        if self.pinstack == 0.0 && self.other == 0.0 {
            return 1.0;
        }
        self.pinstack / self.other
    }
}

/// Formats a value with `decimals` decimals (0 for counts).
pub fn fmt_value(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

/// Formats a ratio with two significant digits and at least two decimals:
/// `0.41`, `0.0031`, `1.00`, `30.54`.
pub fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() || r == 0.0 {
        return format!("{r}");
    }
    let decimals = (1 - r.abs().log10().floor() as i32).clamp(2, 12) as usize;
    format!("{r:.decimals$}")
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workload={} metric={} n={} pinstack={} {}={} ratio={}",
            self.workload,
            self.metric,
            self.n,
            fmt_value(self.pinstack, self.decimals),
            self.baseline,
            fmt_value(self.other, self.decimals),
            fmt_ratio(self.ratio()),
        )?;
        if self.better_higher {
            f.write_str(" better=higher")?;
        }
        Ok(())
    }
}

/// Nanoseconds per item: `elapsed / count` (a zero count counts as one).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(pinstack_benches::report::ns_per(Duration::from_millis(1), 4), 250_000.0);
/// ```
pub fn ns_per(elapsed: std::time::Duration, count: u64) -> f64 {
    elapsed.as_nanos() as f64 / count.max(1) as f64
}

/// The median of `values` (mean of the middle two for even lengths).
///
/// # Panics
///
/// When `values` is empty or holds NaN.
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "median of no values");
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("NaN in median"));
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Runs every arm `runs` times (at least 3), alternating arm by arm
/// (A, B, C, A, B, C, ...), and returns each arm's median.
pub fn alternating(runs: usize, arms: &mut [&mut dyn FnMut() -> Result<f64>]) -> Result<Vec<f64>> {
    let runs = runs.max(3);
    let mut samples = vec![Vec::with_capacity(runs); arms.len()];
    for _ in 0..runs {
        for (arm, out) in arms.iter_mut().zip(samples.iter_mut()) {
            out.push(arm()?);
        }
    }
    Ok(samples.iter().map(|s| median(s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_matches_the_documented_format() {
        let f = Figure::lower(
            "stackpool",
            "ns_hot",
            1_000_000,
            12.34,
            "fresh_mmap",
            4021.0,
        );
        assert_eq!(
            f.to_string(),
            "workload=stackpool metric=ns_hot n=1000000 pinstack=12.3 fresh_mmap=4021.0 ratio=0.0031"
        );
        let g = Figure::higher_count(
            "stackpool",
            "max_live_8k",
            1_000_000,
            1e6,
            "default_stack",
            32744.0,
        );
        assert_eq!(
            g.to_string(),
            "workload=stackpool metric=max_live_8k n=1000000 pinstack=1000000 default_stack=32744 \
             ratio=30.54 better=higher"
        );
        let q = Figure::lower("deepstack", "cost_vs_spawn", 100_000, 1.034, "tokio", 1.21)
            .with_decimals(2);
        assert_eq!(
            q.to_string(),
            "workload=deepstack metric=cost_vs_spawn n=100000 pinstack=1.03 tokio=1.21 ratio=0.85"
        );
        let h = Figure::higher("echo", "rps", 1000, 51234.56, "tokio", 48000.0);
        assert_eq!(
            h.to_string(),
            "workload=echo metric=rps n=1000 pinstack=51234.6 tokio=48000.0 ratio=1.07 better=higher"
        );
    }

    #[test]
    fn both_zero_is_a_ratio_of_one_and_zero_other_is_infinite() {
        let both = Figure::lower("chat", "lost", 10, 0.0, "tokio", 0.0);
        assert_eq!(both.ratio(), 1.0);
        assert!(both.to_string().ends_with("ratio=1.00"), "{both}");
        let one = Figure::lower("chat", "lost", 10, 3.0, "tokio", 0.0);
        assert!(one.ratio().is_infinite());
    }

    #[test]
    fn ratios_keep_two_significant_digits() {
        assert_eq!(fmt_ratio(0.41), "0.41");
        assert_eq!(fmt_ratio(0.0031), "0.0031");
        assert_eq!(fmt_ratio(1.0), "1.00");
        assert_eq!(fmt_ratio(0.5), "0.50");
        assert_eq!(fmt_ratio(0.04), "0.040");
    }

    #[test]
    fn ns_per_divides_and_survives_zero() {
        let d = std::time::Duration::from_micros(3);
        assert_eq!(ns_per(d, 1000), 3.0);
        assert_eq!(ns_per(d, 0), 3000.0);
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn alternating_interleaves_arms_and_takes_medians() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut a_vals = [5.0, 1.0, 3.0].into_iter();
        let mut b_vals = [10.0, 30.0, 20.0].into_iter();
        let mut a = || {
            order.borrow_mut().push('a');
            Ok(a_vals.next().unwrap())
        };
        let mut b = || {
            order.borrow_mut().push('b');
            Ok(b_vals.next().unwrap())
        };
        let m = alternating(1, &mut [&mut a, &mut b]).unwrap();
        assert_eq!(m, vec![3.0, 20.0]);
        assert_eq!(order.into_inner(), vec!['a', 'b', 'a', 'b', 'a', 'b']);
    }
}
