//! Reading another process's memory and CPU use from `/proc`.

use std::io;
use std::time::Duration;

use crate::sys;

/// Resident set size of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
///
/// # Errors
///
/// `NotFound` when the process does not exist (or has exited); the read
/// error otherwise; `InvalidData` if the file has no `VmRSS` line.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_kib(&text, "VmRSS:").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no VmRSS line (is {pid} a kernel thread?)"),
        )
    })
}

/// CPU time (user + system) used so far by process `pid`, from
/// `/proc/PID/stat`.
///
/// # Errors
///
/// As [`rss_kib`]; `InvalidData` if the stat line cannot be parsed.
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_ticks(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot parse utime/stime from /proc/{pid}/stat"),
        )
    })?;
    let hz = sys::clock_ticks_per_sec();
    Ok(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / hz.max(1),
    ))
}

fn parse_status_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// utime + stime in clock ticks. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted from the last `)`.
fn parse_stat_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ")": field 3 (state) is index 0; utime is field 14, stime 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel's ephemeral port range size (`ip_local_port_range`), or a
/// conservative default when it cannot be read.
pub(crate) fn ephemeral_port_count() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace();
            let lo: usize = it.next()?.parse().ok()?;
            let hi: usize = it.next()?.parse().ok()?;
            Some(hi.saturating_sub(lo) + 1)
        })
        .unwrap_or(28_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_name() {
        let s = "1234 (a b) c) S 1 2 3 4 5 6 7 8 9 10 111 222 0 0 20 0 1 0";
        assert_eq!(parse_stat_ticks(s), Some(333));
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        // Burn a little CPU so the counter cannot be zero on any clock.
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(cpu_time(pid).unwrap() > Duration::ZERO);
    }

    #[test]
    fn missing_process_is_not_found() {
        // PID numbers above pid_max (at most 2^22) never exist.
        let err = rss_kib(u32::MAX).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn port_range_is_plausible() {
        assert!(ephemeral_port_count() > 1000);
    }
}
