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
