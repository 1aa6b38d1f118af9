//! The runtime crate's raw syscalls (the stack pool and NUMA crates have
//! their own).

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

/// Blocks the calling thread until `fd` is readable (or writable), or the
/// deadline passes. Spurious returns are fine: callers retry the operation.
pub(crate) fn poll_fd(fd: RawFd, read: bool, deadline: Option<Instant>) -> io::Result<()> {
    let events = if read { libc::POLLIN } else { libc::POLLOUT };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let timeout = match deadline {
        None => -1,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            // Round up so a sub-millisecond wait does not spin at 0.
            let ms = left.as_micros().div_ceil(1000);
            ms.min(i32::MAX as u128) as i32
        }
    };
    // SAFETY: `pfd` is a valid pollfd for the duration of the call, and the
    // count passed is 1.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// `CLOCK_MONOTONIC` in nanoseconds (the clock `Instant` reads; through the
/// vDSO, no kernel entry). Used for trace timestamps and scheduling delays.
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on
    // every Linux, so the call cannot fail (and `ts` stays zero if it did).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// The CPU's time-stamp counter (`rdtsc`): a few nanoseconds, no kernel
/// entry. Only meaningful when the kernel's clocksource is `tsc` (constant,
/// synchronised across CPUs); `metrics/clock.rs` checks that first. On other
/// architectures this is `monotonic_ns`.
#[inline]
pub(crate) fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` has no preconditions; it reads a counter and
        // touches no memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        monotonic_ns()
    }
}

/// The kernel's current clocksource (`tsc`, `kvm-clock`, `hpet`...).
pub(crate) fn clocksource() -> io::Result<String> {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .map(|s| s.trim().to_string())
}
