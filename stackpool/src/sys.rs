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

use crate::loom::statics::{AtomicUsize, Ordering};

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
