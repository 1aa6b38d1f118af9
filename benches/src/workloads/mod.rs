//! The registry of workloads that `compare` runs.
//!
//! Each workload is one file here exposing `pub const WORKLOAD: Workload`.
//! To add one, write `src/workloads/<name>.rs` and add `<name>` to the
//! `register!` list below; nothing else changes.

use crate::report::Figure;
use crate::Result;

/// Options from the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Opts {
    /// `--quick`: shrink sizes so everything runs in well under a minute.
    pub quick: bool,
    /// `--n N`: override the workload's main size.
    pub n: Option<u64>,
}

impl Opts {
    /// `n` if given, else `quick` or `full` depending on `--quick`.
    pub fn size(&self, full: u64, quick: u64) -> u64 {
        self.n.unwrap_or(if self.quick { quick } else { full })
    }
}

/// A measurement that runs in a child process (see [`crate::child`]): gets
/// the extra arguments, returns the line to print.
#[derive(Clone, Copy, Debug)]
pub struct Child {
    /// Name within the workload; addressed as `<workload>.<name>`.
    pub name: &'static str,
    /// The measurement.
    pub run: fn(&[String]) -> Result<String>,
}

/// One workload of BENCHMARKS.md.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Its name on the command line and in the output lines.
    pub name: &'static str,
    /// Runs it, returning its figures in a fixed order.
    pub run: fn(&Opts) -> Result<Vec<Figure>>,
    /// Measurements it runs in child processes.
    pub children: &'static [Child],
}

macro_rules! register {
    ($($name:ident),* $(,)?) => {
        $(pub mod $name;)*
        /// Every registered workload, in `compare all` order.
        pub const ALL: &[&Workload] = &[$(&$name::WORKLOAD),*];
    };
}

register! {
    stackpool,
    spawn,
    r#yield,
    pingpong,
    idle,
    deepstack,
    arena,
    echo,
    procspawn,
    chat,
    chat_hold,
    overhead,
}

/// Names of the registered workloads.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|w| w.name).collect()
}

/// Finds a workload by name.
///
/// # Errors
///
/// For an unknown name, listing the known ones.
pub fn find(name: &str) -> Result<&'static Workload> {
    ALL.iter().copied().find(|w| w.name == name).ok_or_else(|| {
        format!(
            "unknown workload {name:?}; known workloads: {}, or `all`",
            names().join(", ")
        )
        .into()
    })
}

/// Runs one workload by name.
///
/// # Errors
///
/// For an unknown name (listing the known ones), or the workload's error.
pub fn run(name: &str, opts: &Opts) -> Result<Vec<Figure>> {
    (find(name)?.run)(opts)
}

/// Runs child `<workload>.<child>` with `args` and returns its output line.
///
/// # Errors
///
/// For an unknown child, or the child's error.
pub fn run_child(name: &str, args: &[String]) -> Result<String> {
    let (w, c) = name
        .split_once('.')
        .ok_or_else(|| format!("child name {name:?} is not <workload>.<child>"))?;
    let child = find(w)?
        .children
        .iter()
        .find(|ch| ch.name == c)
        .ok_or_else(|| format!("workload {w} has no child {c:?}"))?;
    (child.run)(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_workload_lists_the_known_ones() {
        let err = run("nope", &Opts::default()).unwrap_err().to_string();
        assert!(err.contains("unknown workload \"nope\""), "{err}");
        assert!(err.contains("stackpool"), "{err}");
        assert!(run_child("stackpool.nope", &[]).is_err());
        assert!(run_child("nodot", &[]).is_err());
    }

    #[test]
    fn names_are_unique() {
        let mut n = names();
        n.sort();
        n.dedup();
        assert_eq!(n.len(), ALL.len());
    }

    #[test]
    fn size_prefers_explicit_n() {
        let o = Opts {
            quick: true,
            n: None,
        };
        assert_eq!(o.size(100, 10), 10);
        let o = Opts {
            quick: true,
            n: Some(7),
        };
        assert_eq!(o.size(100, 10), 7);
        assert_eq!(Opts::default().size(100, 10), 100);
    }
}
