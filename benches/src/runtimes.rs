//! The two runtimes every workload compares, built the same way everywhere.
//!
//! Both get [`WORKERS`] worker threads (BENCHMARKS.md: "2 workers on both
//! runtimes"). pinstack ignores `PINSTACK_*` variables so a stray setting in
//! the shell cannot change a figure; tokio is built as its docs show.
//!
//! Workloads time their work *inside* the runtime (from the first spawn to
//! the last join), so building and dropping a runtime is never timed.

use std::io;

/// Worker threads of both runtimes.
pub const WORKERS: usize = 2;

/// A pinstack runtime with [`WORKERS`] workers and the default stack size.
///
/// ```
/// let rt = pinstack_benches::runtimes::pinstack()?;
/// assert_eq!(rt.block_on(|| pinstack::spawn(|| 2 + 2).join().unwrap()), 4);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// The runtime's build error (threads, pollers, stack pool).
pub fn pinstack() -> io::Result<pinstack::Runtime> {
    pinstack::Runtime::builder()
        .worker_threads(WORKERS)
        .ignore_environment()
        .build()
}

/// A pinstack runtime with [`WORKERS`] workers whose tasks spawned without a
/// hint get stacks of `bytes`.
///
/// # Errors
///
/// As [`pinstack()`], or `InvalidInput` for a size the pool has no class for.
pub fn pinstack_with_stack(bytes: usize) -> io::Result<pinstack::Runtime> {
    pinstack::Runtime::builder()
        .worker_threads(WORKERS)
        .ignore_environment()
        .default_stack_size(bytes)
        .build()
}

/// A tokio multi-thread runtime with [`WORKERS`] workers, I/O and timers on.
///
/// ```
/// let rt = pinstack_benches::runtimes::tokio()?;
/// assert_eq!(rt.metrics().num_workers(), pinstack_benches::runtimes::WORKERS);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// The runtime's build error.
pub fn tokio() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
}

/// Which runtime a child process measures, from its first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// pinstack.
    Pinstack,
    /// tokio.
    Tokio,
}

impl Which {
    /// Its name on a child's command line.
    pub fn name(self) -> &'static str {
        match self {
            Which::Pinstack => "pinstack",
            Which::Tokio => "tokio",
        }
    }

    /// Parses the first argument of a child (`pinstack` or `tokio`).
    ///
    /// ```
    /// use pinstack_benches::runtimes::Which;
    /// assert_eq!(Which::from_args(&["tokio".to_string()]).unwrap(), Which::Tokio);
    /// assert!(Which::from_args(&[]).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// When the argument is missing or names neither runtime.
    pub fn from_args(args: &[String]) -> crate::Result<Which> {
        match args.first().map(String::as_str) {
            Some("pinstack") => Ok(Which::Pinstack),
            Some("tokio") => Ok(Which::Tokio),
            Some(other) => Err(format!("unknown runtime {other:?}: pinstack or tokio").into()),
            None => Err("missing runtime argument: pinstack or tokio".into()),
        }
    }
}

/// Parses argument `i` of a child, or returns `default` when it is absent.
///
/// # Errors
///
/// When the argument is present but does not parse.
pub fn arg_or<T>(args: &[String], i: usize, default: T) -> crate::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match args.get(i) {
        Some(a) => a
            .parse()
            .map_err(|e| format!("argument {i} ({a:?}): {e}").into()),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_runtimes_have_two_workers_and_run_tasks() {
        let p = pinstack().unwrap();
        assert_eq!(p.block_on(|| pinstack::spawn(|| 6 * 7).join().unwrap()), 42);
        assert_eq!(p.metrics().workers.len(), WORKERS);
        let t = tokio().unwrap();
        assert_eq!(t.metrics().num_workers(), WORKERS);
        assert_eq!(
            t.block_on(async { tokio::spawn(async { 6 * 7 }).await.unwrap() }),
            42
        );
    }

    #[test]
    fn child_arguments_parse() {
        let args = ["tokio".to_string(), "12".to_string()];
        assert_eq!(Which::from_args(&args).unwrap(), Which::Tokio);
        assert_eq!(arg_or(&args, 1, 0u64).unwrap(), 12);
        assert_eq!(arg_or(&args, 2, 5u64).unwrap(), 5);
        assert!(Which::from_args(&["x".to_string()]).is_err());
        assert!(Which::from_args(&[]).is_err());
        assert!(arg_or::<u64>(&["pinstack".to_string()], 0, 1).is_err());
    }
}
