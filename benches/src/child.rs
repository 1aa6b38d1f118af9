//! Measurements in a fresh child process, and the process's memory figures.
//!
//! A figure that depends on process-wide state (peak RSS, the number of
//! memory mappings, address space) is measured in a child so one runtime's
//! run does not pollute the other's. The child is the current executable
//! re-run with a hidden first argument:
//!
//! ```text
//! compare --pinstack-bench-child <workload>.<child> [args...]
//!   └─ workloads::run_child looks the child up in the registry, runs it,
//!      prints its result as the last stdout line, exits 0 (1 on error).
//! ```
//!
//! `std::process::Command` starts it with `posix_spawn` where it can (no
//! fork of a large address space).

use std::process::Command;

use crate::Result;

/// The hidden first argument that makes a binary run as a measurement child.
pub const CHILD_ARG: &str = "--pinstack-bench-child";

/// Runs child `name` (`workload.child`) of the registry in a fresh process
/// and returns the last line it printed on stdout.
///
/// # Errors
///
/// When the child cannot be started, fails, or prints nothing; the error
/// carries the child's stderr.
pub fn run_in_child(name: &str, args: &[&str]) -> Result<String> {
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe)
        .arg(CHILD_ARG)
        .arg(name)
        .args(args)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("child {name} failed ({}): {}", out.status, stderr.trim()).into());
    }
    stdout
        .lines()
        .last()
        .map(|l| l.trim().to_string())
        .ok_or_else(|| format!("child {name} printed nothing; stderr: {}", stderr.trim()).into())
}

/// Runs a child and parses its output line as a number.
///
/// # Errors
///
/// As [`run_in_child`], or when the line is not a number.
pub fn run_in_child_f64(name: &str, args: &[&str]) -> Result<f64> {
    let line = run_in_child(name, args)?;
    line.parse()
        .map_err(|e| format!("child {name} printed {line:?}, not a number: {e}").into())
}

/// Reads a `kB` field such as `VmHWM` (peak RSS) or `VmRSS` (current RSS)
/// from `/proc/self/status`, in KiB.
///
/// # Errors
///
/// When the file cannot be read or lacks the field.
pub fn status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    parse_status_kib(&status, field)
        .ok_or_else(|| format!("no {field} in /proc/self/status").into())
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Peak resident set size of this process, in KiB (`VmHWM`).
///
/// # Errors
///
/// As [`status_kib`].
pub fn peak_rss_kib() -> Result<u64> {
    status_kib("VmHWM")
}

/// Current resident set size of this process, in KiB (`VmRSS`).
///
/// # Errors
///
/// As [`status_kib`].
pub fn rss_kib() -> Result<u64> {
    status_kib("VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse_and_are_plausible() {
        let text = "Name:\tx\nVmHWM:\t  1234 kB\nVmRSS:\t   99 kB\n";
        assert_eq!(parse_status_kib(text, "VmHWM"), Some(1234));
        assert_eq!(parse_status_kib(text, "VmRSS"), Some(99));
        assert_eq!(parse_status_kib(text, "VmSwap"), None);
        let rss = rss_kib().unwrap();
        let hwm = peak_rss_kib().unwrap();
        assert!(rss > 0 && hwm >= rss, "rss {rss} hwm {hwm}");
        // Touching 32 MiB raises the peak by about that much.
        let v = vec![1u8; 32 << 20];
        std::hint::black_box(&v);
        assert!(peak_rss_kib().unwrap() >= hwm.max(32 << 10));
    }
}
