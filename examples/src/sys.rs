//! Every raw syscall of this crate, behind safe wrappers.
//!
//! Four things need libc directly: the monotonic clock as raw nanoseconds
//! (comparable across processes on one host, which `std::time::Instant`
//! cannot give), the `RLIMIT_NOFILE` soft limit, and the
//! `IP_BIND_ADDRESS_NO_PORT` socket option that lets a load generator bind
//! a source address before `connect` without reserving an ephemeral port at
//! `bind` time; and, for a bare guest machine, bringing the loopback
//! interface up. Nothing else in the crate calls libc.

use std::io;
use std::os::fd::RawFd;

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process of a
/// host, so a timestamp sent by one process can be compared by another.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` that outlives the call, and
    // CLOCK_MONOTONIC is always supported on Linux, so the call only writes `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    // tv_sec and tv_nsec are non-negative for CLOCK_MONOTONIC.
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Soft and hard `RLIMIT_NOFILE`.
pub(crate) fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` that outlives the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Sets the soft `RLIMIT_NOFILE` to `soft`, keeping the hard limit.
pub(crate) fn set_nofile_soft(soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: `lim` is a valid, initialised `rlimit` read by the kernel only
    // during the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` on an IPv4 socket: a later `bind` to
/// `addr:0` picks the port at `connect` time, so one source address serves
/// the whole ephemeral range per destination.
pub(crate) fn set_bind_address_no_port(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `fd` is an open socket owned by the caller for the duration of
    // the call; `one` is a valid `c_int` and the length passed matches it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Clock ticks per second, the unit of `utime`/`stime` in `/proc/PID/stat`.
pub(crate) fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Sets `IFF_UP` on the network interface `name` (`SIOCGIFFLAGS`, then
/// `SIOCSIFFLAGS` when it is down).
pub(crate) fn interface_up(name: &str) -> io::Result<()> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    // SAFETY: socket has no memory-safety preconditions; the returned
    // descriptor (if any) is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by `socket` and nothing else owns it.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&sock);
    // SAFETY: `ifreq` is plain old data (arrays, integers, a union of them
    // and a pointer that the flag ioctls never read); all zeroes is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: `raw` is an open socket; `req` is a valid, writable `ifreq`
    // with a NUL-terminated name (zeroed tail) that outlives the call, which
    // is what SIOCGIFFLAGS reads and writes.
    let rc = unsafe { libc::ioctl(raw, libc::SIOCGIFFLAGS, &mut req) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS succeeded, so it wrote `ifru_flags`.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads `req` during the call.
    let rc = unsafe { libc::ioctl(raw, libc::SIOCSIFFLAGS, &req) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
