//! [`NumaPolicy`]: how the runtime places its worker threads.
//!
//! The policy is configuration, set in the runtime builder or read from an
//! environment variable or a config file, so it parses from and formats to
//! the same three lower-case words.

use std::fmt;
use std::str::FromStr;

/// How worker threads are placed on a NUMA machine.
///
/// ```
/// use pinstack_numa::NumaPolicy;
///
/// let policy: NumaPolicy = "Bind".parse()?;
/// assert_eq!(policy, NumaPolicy::Bind);
/// assert!(policy.pins_threads() && policy.binds_memory());
/// assert_eq!(policy.to_string(), "bind");
/// assert_eq!(NumaPolicy::default(), NumaPolicy::Off);
///
/// let err = "numa".parse::<NumaPolicy>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid NUMA policy \"numa\": expected one of off, pin, bind (case-insensitive)"
/// );
/// # Ok::<(), pinstack_numa::ParseNumaPolicyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NumaPolicy {
    /// No pinning, no memory binding: the kernel schedules threads and places
    /// memory as it likes. The default.
    #[default]
    Off,
    /// Worker threads are pinned to CPUs, grouped by node; memory follows the
    /// kernel's default policy (first touch, usually the local node).
    Pin,
    /// As `Pin`, and each worker thread's memory policy is `MPOL_BIND` to its
    /// node (or to the nearest node with memory, for a memoryless node).
    Bind,
}

impl NumaPolicy {
    /// The words [`FromStr`] accepts, in order.
    pub const NAMES: [&'static str; 3] = ["off", "pin", "bind"];

    /// Whether worker threads are pinned to CPUs (`Pin` and `Bind`).
    pub fn pins_threads(self) -> bool {
        matches!(self, NumaPolicy::Pin | NumaPolicy::Bind)
    }

    /// Whether worker threads' memory is bound to their node (`Bind`).
    pub fn binds_memory(self) -> bool {
        self == NumaPolicy::Bind
    }

    /// The lower-case name: `off`, `pin` or `bind`.
    pub fn as_str(self) -> &'static str {
        match self {
            NumaPolicy::Off => "off",
            NumaPolicy::Pin => "pin",
            NumaPolicy::Bind => "bind",
        }
    }
}

impl fmt::Display for NumaPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Accepts `off`, `pin` or `bind` in any case, with surrounding whitespace.
impl FromStr for NumaPolicy {
    type Err = ParseNumaPolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s.trim();
        [NumaPolicy::Off, NumaPolicy::Pin, NumaPolicy::Bind]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(word))
            .ok_or_else(|| ParseNumaPolicyError {
                value: s.to_owned(),
            })
    }
}

/// A string is not one of `off`, `pin`, `bind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNumaPolicyError {
    value: String,
}

impl ParseNumaPolicyError {
    /// The rejected value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ParseNumaPolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid NUMA policy {:?}: expected one of {} (case-insensitive)",
            self.value,
            NumaPolicy::NAMES.join(", ")
        )
    }
}

impl std::error::Error for ParseNumaPolicyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_name_in_any_case_and_round_trips() {
        for (text, want) in [
            ("off", NumaPolicy::Off),
            ("OFF", NumaPolicy::Off),
            ("Pin", NumaPolicy::Pin),
            (" bInD\n", NumaPolicy::Bind),
        ] {
            let got: NumaPolicy = text.parse().unwrap();
            assert_eq!(got, want);
            assert_eq!(got.to_string().parse::<NumaPolicy>().unwrap(), got);
        }
    }

    #[test]
    fn rejects_other_values_naming_them() {
        for text in ["", "on", "pinned", "bind,pin", "0"] {
            let err = text.parse::<NumaPolicy>().unwrap_err();
            assert_eq!(err.value(), text);
            let msg = err.to_string();
            assert!(msg.contains(&format!("{text:?}")), "{msg}");
            assert!(msg.contains("off, pin, bind"), "{msg}");
        }
    }

    #[test]
    fn capabilities() {
        assert!(!NumaPolicy::Off.pins_threads() && !NumaPolicy::Off.binds_memory());
        assert!(NumaPolicy::Pin.pins_threads() && !NumaPolicy::Pin.binds_memory());
        assert!(NumaPolicy::Bind.pins_threads() && NumaPolicy::Bind.binds_memory());
    }
}
