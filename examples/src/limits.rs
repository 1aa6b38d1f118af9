//! Process limits a load generator or a big server needs raised.

use std::io;

use crate::sys;

/// What [`raise_nofile_limit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// Soft limit before the call.
    pub old_soft: u64,
    /// Soft limit after the call (the hard limit, or `old_soft` if it was
    /// already there).
    pub new_soft: u64,
    /// The hard limit.
    pub hard: u64,
}

impl std::fmt::Display for NofileLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.new_soft == self.old_soft {
            write!(
                f,
                "RLIMIT_NOFILE soft limit is {} (hard {})",
                self.new_soft, self.hard
            )
        } else {
            write!(
                f,
                "raised RLIMIT_NOFILE soft limit from {} to the hard limit {}",
                self.old_soft, self.new_soft
            )
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, so the process can
/// hold as many sockets as the system allows it.
///
/// # Errors
///
/// The `getrlimit`/`setrlimit` error, unchanged.
///
/// ```
/// let lim = pinstack_examples::raise_nofile_limit().unwrap();
/// assert!(lim.new_soft >= lim.old_soft);
/// println!("{lim}");
/// ```
pub fn raise_nofile_limit() -> io::Result<NofileLimit> {
    let (soft, hard) = sys::nofile_limit()?;
    if soft >= hard {
        return Ok(NofileLimit {
            old_soft: soft,
            new_soft: soft,
            hard,
        });
    }
    sys::set_nofile_soft(hard, hard)?;
    Ok(NofileLimit {
        old_soft: soft,
        new_soft: hard,
        hard,
    })
}

/// Raises `RLIMIT_NOFILE` so the process can hold `want` descriptors: the
/// soft limit up to the hard one, and, when the hard limit is lower and the
/// process may raise it (root, `CAP_SYS_RESOURCE`), the hard limit too (up
/// to `/proc/sys/fs/nr_open`). Returns what it did; the caller should print
/// it, since a benchmark must say which settings it ran with.
///
/// # Errors
///
/// The `getrlimit` error; a refused raise of the hard limit is not an error
/// (the soft limit then goes to the old hard limit).
pub fn raise_nofile_limit_to(want: u64) -> io::Result<NofileLimit> {
    let (soft, hard) = sys::nofile_limit()?;
    if soft >= want {
        return Ok(NofileLimit {
            old_soft: soft,
            new_soft: soft,
            hard,
        });
    }
    if hard < want {
        let cap = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(hard);
        let target = want.min(cap).max(hard);
        if sys::set_nofile_soft(target, target).is_ok() {
            return Ok(NofileLimit {
                old_soft: soft,
                new_soft: target,
                hard: target,
            });
        }
    }
    raise_nofile_limit()
}
