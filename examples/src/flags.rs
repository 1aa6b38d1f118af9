//! Hand-written command-line flag parsing shared by the binaries.
//!
//! Flags are `--name value` or `--name=value`; `--help`/`-h` asks for the
//! usage text. Callers loop over [`Flags::next_flag`] and pull the value with
//! a typed getter, so an unknown flag or a bad value becomes a [`FlagError`]
//! that names the flag and what was expected.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// A command-line error, with a message that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagError {
    /// `--help` or `-h` was given: print the usage and exit successfully.
    Help,
    /// A flag this program does not know.
    Unknown(String),
    /// A positional argument where only flags are accepted.
    Positional(String),
    /// A flag given without its value.
    MissingValue(String),
    /// A value that does not parse.
    BadValue {
        /// The flag.
        flag: String,
        /// The value given.
        value: String,
        /// What a good value looks like.
        expected: &'static str,
    },
    /// Flags that parse on their own but do not make sense together.
    Invalid(String),
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagError::Help => write!(f, "help requested"),
            FlagError::Unknown(n) => write!(f, "unknown flag --{n} (see --help)"),
            FlagError::Positional(a) => {
                write!(f, "unexpected argument {a:?}: every option is a --flag")
            }
            FlagError::MissingValue(n) => write!(f, "flag --{n} needs a value"),
            FlagError::BadValue {
                flag,
                value,
                expected,
            } => write!(f, "bad value {value:?} for --{flag}: expected {expected}"),
            FlagError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for FlagError {}

/// An iterator over `--flags` with typed value getters.
///
/// ```
/// use pinstack_examples::flags::Flags;
/// let mut f = Flags::new(["--workers", "2", "--idle=30s"].map(String::from));
/// let mut workers = 0usize;
/// let mut idle = std::time::Duration::ZERO;
/// while let Some(name) = f.next_flag().unwrap() {
///     match name.as_str() {
///         "workers" => workers = f.value(&name).unwrap(),
///         "idle" => idle = f.duration(&name).unwrap(),
///         _ => panic!("{}", f.unknown(&name)),
///     }
/// }
/// assert_eq!((workers, idle.as_secs()), (2, 30));
/// ```
#[derive(Debug)]
pub struct Flags {
    args: std::vec::IntoIter<String>,
    pending: Option<String>,
}

impl Flags {
    /// Flags from an argument list (without the program name).
    pub fn new(args: impl IntoIterator<Item = String>) -> Self {
        Self {
            args: args.into_iter().collect::<Vec<_>>().into_iter(),
            pending: None,
        }
    }

    /// Flags from this process's command line.
    pub fn from_env() -> Self {
        Self::new(std::env::args().skip(1))
    }

    /// The next flag's name without the dashes, or `None` at the end.
    ///
    /// # Errors
    ///
    /// [`FlagError::Help`] for `-h`/`--help`; [`FlagError::Positional`] for
    /// an argument that is not a flag; [`FlagError::MissingValue`] if the
    /// previous flag's value was never taken.
    pub fn next_flag(&mut self) -> Result<Option<String>, FlagError> {
        self.pending = None;
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        if arg == "-h" || arg == "--help" {
            return Err(FlagError::Help);
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(FlagError::Positional(arg));
        };
        match body.split_once('=') {
            Some((name, value)) => {
                self.pending = Some(value.to_owned());
                Ok(Some(name.to_owned()))
            }
            None => Ok(Some(body.to_owned())),
        }
    }

    /// The raw value of flag `name`.
    ///
    /// # Errors
    ///
    /// [`FlagError::MissingValue`] if there is none.
    pub fn raw(&mut self, name: &str) -> Result<String, FlagError> {
        if let Some(v) = self.pending.take() {
            return Ok(v);
        }
        self.args
            .next()
            .ok_or_else(|| FlagError::MissingValue(name.to_owned()))
    }

    /// The value of flag `name`, parsed with `FromStr`.
    ///
    /// # Errors
    ///
    /// [`FlagError::MissingValue`] or [`FlagError::BadValue`].
    pub fn value<T: FromStr>(&mut self, name: &str) -> Result<T, FlagError> {
        let raw = self.raw(name)?;
        raw.parse().map_err(|_| FlagError::BadValue {
            flag: name.to_owned(),
            value: raw,
            expected: type_hint::<T>(),
        })
    }

    /// A duration such as `250ms`, `10s`, `2m` or `1.5` (seconds).
    ///
    /// # Errors
    ///
    /// [`FlagError::MissingValue`] or [`FlagError::BadValue`].
    pub fn duration(&mut self, name: &str) -> Result<Duration, FlagError> {
        let raw = self.raw(name)?;
        parse_duration(&raw).ok_or_else(|| FlagError::BadValue {
            flag: name.to_owned(),
            value: raw,
            expected: "a duration like 500ms, 10s, 2m or 1.5",
        })
    }

    /// A comma-separated list of IP addresses.
    ///
    /// # Errors
    ///
    /// [`FlagError::MissingValue`] or [`FlagError::BadValue`].
    pub fn ip_list(&mut self, name: &str) -> Result<Vec<IpAddr>, FlagError> {
        let raw = self.raw(name)?;
        raw.split(',')
            .map(|s| s.trim().parse::<IpAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| FlagError::BadValue {
                flag: name.to_owned(),
                value: raw,
                expected: "comma-separated IP addresses like 127.0.0.2,127.0.0.3",
            })
    }

    /// The error for a flag the caller does not know.
    pub fn unknown(&self, name: &str) -> FlagError {
        FlagError::Unknown(name.to_owned())
    }
}

fn type_hint<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    if name == std::any::type_name::<SocketAddr>() {
        "an address like 127.0.0.1:6667"
    } else if name == std::any::type_name::<f64>() {
        "a number"
    } else if name.starts_with('u') || name.starts_with('i') {
        "a whole number"
    } else {
        "a valid value"
    }
}

/// Parses `250ms`, `10s`, `2m`, `1h`, `1500us` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix("ns") {
        (n, 1e-9)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(v * scale).ok()
}

/// Prints `usage` for `--help` (exit 0) or the error and a hint (exit 2).
pub fn exit_with(err: &FlagError, usage: &str) -> ! {
    if *err == FlagError::Help {
        println!("{usage}");
        std::process::exit(0);
    }
    eprintln!("error: {err}\n\n{usage}");
    std::process::exit(2);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(a: &[&str]) -> Flags {
        Flags::new(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("abc"), None);
    }

    #[test]
    fn errors_name_the_flag() {
        let mut f = flags(&["--n", "x"]);
        let n = f.next_flag().unwrap().unwrap();
        let e = f.value::<usize>(&n).unwrap_err();
        assert!(e.to_string().contains("--n"), "{e}");
        let mut f = flags(&["--n"]);
        let n = f.next_flag().unwrap().unwrap();
        assert_eq!(
            f.value::<usize>(&n),
            Err(FlagError::MissingValue("n".into()))
        );
        assert_eq!(
            flags(&["x"]).next_flag(),
            Err(FlagError::Positional("x".into()))
        );
        assert_eq!(flags(&["-h"]).next_flag(), Err(FlagError::Help));
    }

    #[test]
    fn ip_lists() {
        let mut f = flags(&["--src=127.0.0.2,127.0.0.3"]);
        let n = f.next_flag().unwrap().unwrap();
        assert_eq!(f.ip_list(&n).unwrap().len(), 2);
    }
}
