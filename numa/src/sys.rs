//! Raw Linux syscalls: CPU affinity and NUMA memory policy. The only module
//! of this crate that calls into the kernel.
//!
//! glibc has no wrappers for `set_mempolicy`, `get_mempolicy`, `mbind` and
//! `move_pages` (they live in libnuma), so they go through `libc::syscall`.
//! `sched_{set,get}affinity` also use the raw syscall, because the libc
//! wrappers take a fixed 1,024-CPU `cpu_set_t`.
//!
//! Every function here is a safe fn: the pointers it hands the kernel come
//! from slices it borrows (the kernel writes at most their length), and the
//! `addr` arguments of the address-based calls are only looked up by the
//! kernel, which validates them (`EFAULT`/`ENOMEM`) and never lets a policy
//! change alter memory contents.
//!
//! Masks are arrays of `c_ulong`, bit `i % BITS` of word `i / BITS`, which is
//! the layout of [`IdSet`](crate::cpuset::IdSet) words on 64-bit Linux.
//! `maxnode` conventions differ per call: the kernel reads `maxnode - 1` bits
//! for the memory-policy calls (libnuma passes `bits + 1`), and a byte length
//! for the affinity calls.

use std::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
use std::io;

/// Mode values of `set_mempolicy(2)`/`mbind(2)` (`<linux/mempolicy.h>`).
pub(crate) const MPOL_DEFAULT: c_int = 0;
pub(crate) const MPOL_PREFERRED: c_int = 1;
pub(crate) const MPOL_BIND: c_int = 2;
pub(crate) const MPOL_INTERLEAVE: c_int = 3;
pub(crate) const MPOL_LOCAL: c_int = 4;
pub(crate) const MPOL_PREFERRED_MANY: c_int = 5;
pub(crate) const MPOL_WEIGHTED_INTERLEAVE: c_int = 6;
/// Mode flags that may be or-ed into the mode: `MPOL_F_STATIC_NODES`,
/// `MPOL_F_RELATIVE_NODES`, `MPOL_F_NUMA_BALANCING`.
pub(crate) const MPOL_MODE_FLAGS: c_int = (1 << 15) | (1 << 14) | (1 << 13);

/// `get_mempolicy(2)` flags.
pub(crate) const MPOL_F_NODE: c_ulong = 1;
pub(crate) const MPOL_F_ADDR: c_ulong = 2;

/// `mbind(2)` flags.
pub(crate) const MPOL_MF_STRICT: c_uint = 1;
pub(crate) const MPOL_MF_MOVE: c_uint = 2;
pub(crate) const MPOL_MF_MOVE_ALL: c_uint = 4;

/// Bits in one mask word.
pub(crate) const WORD_BITS: usize = c_ulong::BITS as usize;

/// Node mask size used to read policies back: the kernel's largest
/// `MAX_NUMNODES` (1,024, `NODES_SHIFT = 10`). `get_mempolicy` fails with
/// `EINVAL` if the buffer is smaller than the machine's node count.
pub(crate) const NODE_MASK_BITS: usize = 1024;

/// Largest CPU mask `sched_getaffinity` is offered, in bits (the kernel
/// needs one at least `nr_cpu_ids` long; `NR_CPUS` tops out at 8,192).
const MAX_CPU_MASK_BITS: usize = 1 << 16;

/// Checks a raw syscall result.
fn check(ret: c_long) -> io::Result<c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Converts crate mask words (`u64`) to kernel words (`c_ulong`): the same
/// words on 64-bit Linux.
#[cfg(target_pointer_width = "64")]
pub(crate) fn to_kernel_words(words: &[u64]) -> Vec<c_ulong> {
    words.to_vec()
}

/// Converts kernel words back to crate mask words.
#[cfg(target_pointer_width = "64")]
pub(crate) fn from_kernel_words(words: &[c_ulong]) -> Vec<u64> {
    words.to_vec()
}

/// Converts crate mask words (`u64`) to kernel words (`c_ulong`): each u64
/// splits into two 32-bit words, low half first.
#[cfg(target_pointer_width = "32")]
pub(crate) fn to_kernel_words(words: &[u64]) -> Vec<c_ulong> {
    words
        .iter()
        .flat_map(|&w| [w as c_ulong, (w >> 32) as c_ulong])
        .collect()
}

/// Converts kernel words back to crate mask words.
#[cfg(target_pointer_width = "32")]
pub(crate) fn from_kernel_words(words: &[c_ulong]) -> Vec<u64> {
    words
        .chunks(2)
        .map(|c| u64::from(c[0]) | u64::from(c.get(1).copied().unwrap_or(0)) << 32)
        .collect()
}

/// `sched_setaffinity(0, ...)`: pins the calling thread to the CPUs in
/// `mask`.
pub(crate) fn sched_setaffinity(mask: &[c_ulong]) -> io::Result<()> {
    // SAFETY: the kernel reads `size_of_val(mask)` bytes from `mask.as_ptr()`,
    // which is exactly the borrowed slice; pid 0 means the calling thread.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            0 as libc::pid_t,
            size_of_val(mask),
            mask.as_ptr(),
        )
    };
    check(ret).map(drop)
}

/// `sched_getaffinity(0, ...)`: the calling thread's CPU mask, as kernel
/// words. Grows the buffer until the kernel accepts it.
pub(crate) fn sched_getaffinity() -> io::Result<Vec<c_ulong>> {
    let mut bits = 1024;
    loop {
        let mut mask: Vec<c_ulong> = vec![0; bits / WORD_BITS];
        // SAFETY: the kernel writes at most `size_of_val(&mask[..])` bytes
        // into `mask`, a live, exclusively borrowed buffer of that size; pid 0
        // means the calling thread.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_sched_getaffinity,
                0 as libc::pid_t,
                size_of_val(&mask[..]),
                mask.as_mut_ptr(),
            )
        };
        match check(ret) {
            Ok(written) => {
                // The syscall returns the number of bytes it wrote.
                let words = (written as usize).div_ceil(size_of::<c_ulong>());
                mask.truncate(words);
                return Ok(mask);
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && bits < MAX_CPU_MASK_BITS => {
                bits *= 2
            }
            Err(e) => return Err(e),
        }
    }
}

/// `set_mempolicy(mode, nodemask, maxnode)` for the calling thread. `mask`
/// may be empty (a null mask, as `MPOL_DEFAULT` and `MPOL_LOCAL` need).
pub(crate) fn set_mempolicy(mode: c_int, mask: &[c_ulong]) -> io::Result<()> {
    let (ptr, maxnode) = mask_arg(mask);
    // SAFETY: the kernel reads `maxnode - 1` bits, i.e. at most
    // `size_of_val(mask)` bytes, from `ptr`, which is `mask` or null with
    // maxnode 0.
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    check(ret).map(drop)
}

/// `get_mempolicy(&mode, nodemask, NODE_MASK_BITS + 1, addr, flags)`.
/// Returns the mode word and the node mask as kernel words.
///
/// With `flags == 0` it reports the calling thread's policy; with
/// `MPOL_F_ADDR` the policy of the mapping holding `addr`; with
/// `MPOL_F_ADDR | MPOL_F_NODE` the mode word is the node of the page at
/// `addr` (faulting the page in if absent) and the mask is unused.
pub(crate) fn get_mempolicy(
    addr: *const c_void,
    flags: c_ulong,
) -> io::Result<(c_int, Vec<c_ulong>)> {
    let mut mode: c_int = 0;
    let mut mask: Vec<c_ulong> = vec![0; NODE_MASK_BITS / WORD_BITS];
    // SAFETY: `mode` is a live c_int the kernel may write; the kernel writes
    // `ALIGN(maxnode - 1, 64) / 8` = `NODE_MASK_BITS / 8` bytes into `mask`,
    // exactly its size; `addr` is only looked up in the VMA tree (or faulted
    // in through get_user_pages, which validates it), never written through.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut c_int,
            mask.as_mut_ptr(),
            (NODE_MASK_BITS + 1) as c_ulong,
            addr,
            flags,
        )
    };
    check(ret)?;
    Ok((mode, mask))
}

/// `mbind(addr, len, mode, nodemask, maxnode, flags)`.
pub(crate) fn mbind(
    addr: *mut c_void,
    len: usize,
    mode: c_int,
    mask: &[c_ulong],
    flags: c_uint,
) -> io::Result<()> {
    let (ptr, maxnode) = mask_arg(mask);
    // SAFETY: the kernel reads at most `size_of_val(mask)` bytes from `ptr`
    // (see `mask_arg`); `addr..addr+len` is validated by the kernel against
    // the process's mappings and only its policy changes (pages moved under
    // MPOL_MF_MOVE keep their contents), so no Rust-visible memory is
    // written.
    let ret = unsafe { libc::syscall(libc::SYS_mbind, addr, len, mode, ptr, maxnode, flags) };
    check(ret).map(drop)
}

/// `move_pages(0, pages.len(), pages, NULL, status, 0)`: a query. Each
/// `status` entry becomes the node of the page or a negative errno
/// (`-ENOENT` for a page not present, `-EFAULT` for an unmapped address).
pub(crate) fn move_pages_query(pages: &[*const c_void], status: &mut [c_int]) -> io::Result<()> {
    assert_eq!(pages.len(), status.len(), "one status slot per page");
    // SAFETY: with a null `nodes` array the call only reports; the kernel
    // reads `pages.len()` pointers from `pages` and writes as many c_ints
    // into `status`, both borrowed slices of that length; the page addresses
    // themselves are looked up, not dereferenced, by the kernel.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            0 as libc::pid_t,
            pages.len() as c_ulong,
            pages.as_ptr(),
            std::ptr::null::<c_int>(),
            status.as_mut_ptr(),
            0 as c_int,
        )
    };
    check(ret).map(drop)
}

/// The page size, from `sysconf(_SC_PAGESIZE)`.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// Pointer and `maxnode` for a node mask argument: null and 0 for an empty
/// mask, else the words and their bit count plus one (the kernel drops the
/// last bit, as libnuma's `numa_set_membind` accounts for).
fn mask_arg(mask: &[c_ulong]) -> (*const c_ulong, c_ulong) {
    if mask.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (mask.as_ptr(), (mask.len() * WORD_BITS + 1) as c_ulong)
    }
}
