//! Every raw Linux call of the crate, behind small typed wrappers.
//!
//! Nothing outside this module calls `libc` for memory or signals (STYLE.md
//! habit 7). Wrappers that can destroy memory contents or unmap memory are
//! `unsafe fn` whose `# Safety` section says which ranges are allowed; the
//! ones that only read kernel state or set policy are safe.
//!
//! Constants that `libc` 0.2 may not carry yet are defined here with their
//! kernel values (`MADV_GUARD_INSTALL` = 102, `MPOL_BIND` = 2).

use std::io;

use crate::loom::statics::{AtomicBool, AtomicUsize, Ordering};

/// `madvise` advice that installs guard markers without splitting the VMA
/// (Linux 6.13+, `include/uapi/asm-generic/mman-common.h`).
pub(crate) const MADV_GUARD_INSTALL: libc::c_int = 102;

/// `mbind` mode: allocate only from the given nodes.
const MPOL_BIND: libc::c_int = 2;

/// Largest NUMA node number [`mbind_node`] accepts (the mask below).
pub(crate) const MAX_NUMA_NODE: usize = 1023;

/// Cached `sysconf(_SC_PAGESIZE)`; 0 until first read.
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The system page size (a power of two, read once). Inlined: a resumed
/// coroutine's stack base is computed from it on every switch.
#[inline]
pub(crate) fn page_size() -> usize {
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    read_page_size()
}

#[cold]
#[inline(never)]
fn read_page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let raw = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    // Linux always reports a power of two; fall back to 4 KiB if it ever
    // did not, rather than dividing by a bogus value later.
    let size = usize::try_from(raw)
        .ok()
        .filter(|s| s.is_power_of_two())
        .unwrap_or(4096);
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

/// Converts a `-1`-on-error return into `io::Result`.
fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reserves `len` bytes of private, anonymous, read-write address space with
/// `MAP_NORESERVE`: no swap is reserved and only touched pages become
/// resident. Returns the base address (page aligned).
pub(crate) fn map_reserve(len: usize) -> io::Result<usize> {
    // SAFETY: a new anonymous mapping at an address of the kernel's choice
    // (first argument null) cannot alias any existing Rust object.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(ptr as usize)
    }
}

/// Unmaps `[addr, addr + len)`.
///
/// # Safety
///
/// The range must be a mapping (or part of one) that the caller owns, and no
/// live reference may point into it.
pub(crate) unsafe fn unmap(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range and nothing references it.
    check(unsafe { libc::munmap(addr as *mut libc::c_void, len) })
}

/// Turns transparent huge pages off for the range, so touching one byte of a
/// stack makes one 4 KiB page resident, not 2 MiB.
pub(crate) fn no_huge_pages(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: MADV_NOHUGEPAGE only changes a VMA flag; contents are kept.
    check(unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE) })
}

/// Installs guard markers on `[addr, addr + len)` with
/// `madvise(MADV_GUARD_INSTALL)`. Fails with `EINVAL` on kernels before 6.13.
///
/// # Safety
///
/// The range must lie in a mapping the caller owns and hold no live data:
/// its pages are discarded and every later access faults.
pub(crate) unsafe fn guard_install(addr: usize, len: usize) -> io::Result<()> {
    loop {
        // SAFETY: the caller owns the range and keeps no data in it.
        let ret = unsafe { libc::madvise(addr as *mut libc::c_void, len, MADV_GUARD_INSTALL) };
        match check(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Makes `[addr, addr + len)` inaccessible with `mprotect(PROT_NONE)`. Each
/// call splits the VMA, creating up to two kernel mappings.
///
/// # Safety
///
/// The range must lie in a mapping the caller owns and no live reference may
/// point into it.
pub(crate) unsafe fn protect_none(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range and nothing references it.
    check(unsafe { libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_NONE) })
}

/// `PIDFD_SELF` (Linux 6.14+, `include/uapi/linux/pidfd.h`): "the calling
/// thread" wherever a pidfd is taken. Its memory is the process's, and a
/// forked child's sentinel means the child, where a cached pidfd of our own
/// would name the parent.
const PIDFD_SELF: libc::c_int = -10_000;

/// Ranges per `process_madvise` call: the kernel takes up to `UIO_MAXIOV`
/// (1,024); this many fit in 1 KiB of stack.
const BATCH_RANGES: usize = 64;

/// Whether `process_madvise(PIDFD_SELF, .., MADV_DONTNEED)` works here;
/// cleared for good at the first refusal (kernels before 6.13 refuse
/// `MADV_DONTNEED` from it, before 6.14 the sentinel).
static BATCH_DONT_NEED: AtomicBool = AtomicBool::new(true);

/// [`dont_need`] for every range of `ranges` (`(addr, len)` pairs), a
/// batch of up to 64 in one `process_madvise` call where the kernel allows
/// it: each `madvise` ends with a TLB shootdown, an interrupt of every
/// other CPU the process runs on (in a VM each is a VM exit), and kernels
/// from 6.16 flush once per `process_madvise` call instead of once per
/// range. Releasing the stacks of 200,000 finished tasks one `madvise` at
/// a time spent 40% of its CPU sending those interrupts. Falls back to one
/// `madvise` per range.
///
/// # Safety
///
/// As for [`dont_need`], for every range.
pub(crate) unsafe fn dont_need_many(ranges: impl Iterator<Item = (usize, usize)>) {
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH_RANGES];
    let mut n = 0;
    for (addr, len) in ranges {
        iov[n] = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        };
        n += 1;
        if n == BATCH_RANGES {
            // SAFETY: the caller's contract covers every range collected.
            unsafe { dont_need_batch(&iov[..n]) };
            n = 0;
        }
    }
    if n > 0 {
        // SAFETY: as above.
        unsafe { dont_need_batch(&iov[..n]) };
    }
}

/// One batch of [`dont_need_many`].
///
/// # Safety
///
/// As for [`dont_need`], for every range.
unsafe fn dont_need_batch(iov: &[libc::iovec]) {
    if iov.len() > 1 && BATCH_DONT_NEED.load(Ordering::Relaxed) {
        let total: usize = iov.iter().map(|v| v.iov_len).sum();
        // SAFETY: `iov` points at `iov.len()` initialized iovecs that the
        // kernel only reads; the ranges are the caller's, contents dead.
        let done = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                PIDFD_SELF,
                iov.as_ptr(),
                iov.len(),
                libc::MADV_DONTNEED,
                0,
            )
        };
        if done >= 0 && done as usize == total {
            return;
        }
        if done < 0 {
            // Refused (old kernel): never try again. A short count (an error
            // partway) just redoes the batch below; advice is idempotent.
            BATCH_DONT_NEED.store(false, Ordering::Relaxed);
        }
    }
    for v in iov {
        // SAFETY: as above, one range at a time.
        let _ = unsafe { dont_need(v.iov_base as usize, v.iov_len) };
    }
}

/// Gives the pages of `[addr, addr + len)` back to the OS with
/// `MADV_DONTNEED`; the next touch maps a fresh zero page. Guard markers in
/// the range are kept by the kernel.
///
/// # Safety
///
/// The range must lie in a mapping the caller owns, and its contents must be
/// dead (no live reference points into it).
pub(crate) unsafe fn dont_need(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range and its contents are dead.
    check(unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) })
}

/// Fills `out[i]` with 1 if page `i` of `[addr, addr + out.len() pages)` is
/// resident, else 0 (the low bit of `mincore`'s answer).
///
/// `addr` must be page aligned; an unmapped range yields `ENOMEM`.
pub(crate) fn mincore(addr: usize, out: &mut [u8]) -> io::Result<()> {
    let len = out.len() * page_size();
    // SAFETY: mincore only reads page-table state; `out` has exactly one byte
    // per page of the queried range, which is what the kernel writes.
    check(unsafe {
        libc::mincore(
            addr as *mut libc::c_void,
            len,
            out.as_mut_ptr().cast::<libc::c_uchar>(),
        )
    })?;
    for b in out.iter_mut() {
        *b &= 1;
    }
    Ok(())
}

/// Binds `[addr, addr + len)` to NUMA node `node` (`mbind(MPOL_BIND)`), so
/// pages touched later are allocated on that node.
pub(crate) fn mbind_node(addr: usize, len: usize, node: usize) -> io::Result<()> {
    const WORD_BITS: usize = libc::c_ulong::BITS as usize;
    if node > MAX_NUMA_NODE {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut mask = [0 as libc::c_ulong; (MAX_NUMA_NODE + 1) / WORD_BITS];
    mask[node / WORD_BITS] |= 1 << (node % WORD_BITS);
    let words = node / WORD_BITS + 1;
    // The kernel reads `maxnode - 1` bits (a historical off-by-one that
    // libnuma also compensates for).
    let maxnode = (words * WORD_BITS + 1) as libc::c_ulong;
    // SAFETY: mbind without MPOL_MF_MOVE only sets the range's policy; the
    // mask pointer is valid for `words` words, covering `maxnode - 1` bits.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            addr as *mut libc::c_void,
            len as libc::c_ulong,
            MPOL_BIND as libc::c_ulong,
            mask.as_ptr(),
            maxnode,
            0 as libc::c_uint,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether this kernel supports `MADV_GUARD_INSTALL` on anonymous memory:
/// maps two pages, guards the first, unmaps. `Err` when even the probe's
/// `mmap` fails.
pub(crate) fn probe_guard_install() -> io::Result<bool> {
    let page = page_size();
    let base = map_reserve(2 * page)?;
    // SAFETY: the probe mapping was just created here and holds no data.
    let res = unsafe { guard_install(base, page) };
    // SAFETY: the probe mapping is ours and nothing points into it.
    let _ = unsafe { unmap(base, 2 * page) };
    match res {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads `/proc/sys/vm/max_map_count`, the kernel's per-process cap on
/// memory mappings.
pub(crate) fn read_max_map_count() -> io::Result<usize> {
    let text = std::fs::read_to_string("/proc/sys/vm/max_map_count")?;
    text.trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The signature of an `SA_SIGINFO` handler.
pub(crate) type SigInfoHandler =
    unsafe extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// Reads the current action of `sig` into a fresh `sigaction`.
pub(crate) fn sigaction_query(sig: libc::c_int) -> io::Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, empty mask).
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `old` is a valid out pointer.
    check(unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) })?;
    Ok(old)
}

/// Installs `handler` for `sig` with `SA_SIGINFO | SA_ONSTACK`: the handler
/// gets the fault address and runs on the thread's alternate signal stack
/// (the faulting stack has no room left).
pub(crate) fn sigaction_install(sig: libc::c_int, handler: SigInfoHandler) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value to start from.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler as usize;
    act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `act.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    // SAFETY: `act` is fully initialised and the handler is an
    // `extern "C"` function with the SA_SIGINFO signature.
    check(unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) })
}

/// Restores the default action of `sig` (async-signal-safe).
pub(crate) fn sigaction_reset_default(sig: libc::c_int) {
    // SAFETY: an all-zero sigaction is SIG_DFL with an empty mask.
    let act: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: sigaction is async-signal-safe; `act` is a valid action.
    unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) };
}

/// Writes all of `bytes` to stderr with `write(2)`, ignoring errors
/// (async-signal-safe: no allocation, no locks).
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe the live slice `bytes`.
        let n = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            return;
        }
    }
}

/// Sends `sig` to the calling thread (async-signal-safe).
pub(crate) fn raise(sig: libc::c_int) {
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(sig) };
}

/// Aborts the process with SIGABRT (async-signal-safe).
pub(crate) fn abort() -> ! {
    // SAFETY: abort has no preconditions and does not return.
    unsafe { libc::abort() }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    /// Whether the running kernel is at least `major.minor`.
    fn kernel_at_least(major: u32, minor: u32) -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
        let ma: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let mi: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (ma, mi) >= (major, minor)
    }

    /// Resident pages of `[addr, addr + pages)`, one flag per page.
    fn resident(addr: usize, pages: usize) -> Vec<u8> {
        let mut v = vec![0u8; pages];
        mincore(addr, &mut v).unwrap();
        v
    }

    #[test]
    fn dont_need_many_drops_exactly_the_given_ranges() {
        // 150 two-page ranges, one page apart: more than two batches, and
        // every gap must keep its page.
        let page = page_size();
        let ranges = 150;
        let pages = ranges * 3;
        let base = map_reserve(pages * page).unwrap();
        for i in 0..pages {
            // SAFETY: inside the mapping just reserved, read-write.
            unsafe { ((base + i * page) as *mut u8).write_volatile(1) };
        }
        assert!(resident(base, pages).iter().all(|&r| r == 1));
        // SAFETY: the ranges lie in our mapping; their contents are dead.
        unsafe { dont_need_many((0..ranges).map(|r| (base + r * 3 * page, 2 * page))) };
        let after = resident(base, pages);
        for (i, &r) in after.iter().enumerate() {
            assert_eq!(r, u8::from(i % 3 == 2), "page {i}");
        }
        // The dropped pages read as zero again; the kept ones kept data.
        // SAFETY: inside the mapping, read-write.
        unsafe {
            assert_eq!(((base) as *const u8).read_volatile(), 0);
            assert_eq!(((base + 2 * page) as *const u8).read_volatile(), 1);
            unmap(base, pages * page).unwrap();
        }
        // From 6.14 (the `PIDFD_SELF` sentinel) the batched call is taken.
        if kernel_at_least(6, 14) {
            assert!(
                BATCH_DONT_NEED.load(Ordering::Relaxed),
                "process_madvise(PIDFD_SELF, MADV_DONTNEED) was refused"
            );
        }
    }
}
