//! Memory policy: [`MemPolicy`] and safe wrappers over `set_mempolicy`,
//! `get_mempolicy`, `mbind` and `move_pages`.
//!
//! # Who is affected
//!
//! * [`set_thread_mempolicy`] changes the policy of the **calling thread**
//!   only; it governs pages that thread faults in later, in mappings without
//!   a policy of their own. It is inherited by threads the caller spawns
//!   afterwards. A worker sets it once, at start, on itself.
//! * [`mbind`] sets the policy of a **range of the address space** (a VMA,
//!   split if needed), whichever thread touches it; it wins over the thread
//!   policy. With [`MbindFlags::MOVE`] pages already present move to comply.
//! * Pages already faulted in keep their node when a policy changes (unless
//!   moved), so verification reads where pages *are*: [`node_of_address`],
//!   [`page_nodes`] and [`numa_maps_entry`](crate::numa_maps_entry).

use std::ffi::{c_int, c_void};
use std::fmt;
use std::io;

use crate::cpuset::NodeSet;
use crate::sys;

/// A Linux NUMA memory policy (`<linux/mempolicy.h>`).
///
/// `Display` matches the policy column of `/proc/<pid>/numa_maps`, e.g.
/// `bind:0-1`, `prefer:1`, `interleave:0-3`, `local`, `default`.
///
/// ```
/// use pinstack_numa::{MemPolicy, NodeSet};
///
/// assert_eq!(MemPolicy::Bind(NodeSet::single(0)).to_string(), "bind:0");
/// assert_eq!(MemPolicy::Interleave("0-3".parse()?).to_string(), "interleave:0-3");
/// # Ok::<(), pinstack_numa::ParseIdSetError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemPolicy {
    /// `MPOL_DEFAULT`: fall back to the next policy up (the thread's, then
    /// the system's: allocate on the local node).
    Default,
    /// `MPOL_BIND`: allocate only on these nodes; fail (OOM) rather than
    /// spill elsewhere.
    Bind(NodeSet),
    /// `MPOL_PREFERRED`: allocate on this node if it has free memory, else
    /// elsewhere.
    Preferred(usize),
    /// `MPOL_INTERLEAVE`: spread pages round-robin over these nodes.
    Interleave(NodeSet),
    /// `MPOL_LOCAL`: allocate on the node of the CPU that faults the page.
    Local,
    /// Another mode read back from the kernel (e.g. `MPOL_PREFERRED_MANY` or
    /// `MPOL_WEIGHTED_INTERLEAVE`), with its raw mode number (mode flags
    /// removed) and node set.
    Other {
        /// The raw mode number.
        mode: i32,
        /// The policy's node set.
        nodes: NodeSet,
    },
}

impl MemPolicy {
    /// The raw mode and node mask words to hand the kernel.
    fn to_raw(&self) -> io::Result<(c_int, Vec<std::ffi::c_ulong>)> {
        let need_nodes = |nodes: &NodeSet| {
            if nodes.is_empty() {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("memory policy {self}: the node set is empty; name at least one node with memory"),
                ))
            } else {
                Ok(sys::to_kernel_words(nodes.words()))
            }
        };
        Ok(match self {
            MemPolicy::Default => (sys::MPOL_DEFAULT, Vec::new()),
            MemPolicy::Bind(nodes) => (sys::MPOL_BIND, need_nodes(nodes)?),
            MemPolicy::Preferred(node) => {
                let mut nodes = NodeSet::new();
                nodes
                    .try_insert(*node)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                (sys::MPOL_PREFERRED, sys::to_kernel_words(nodes.words()))
            }
            MemPolicy::Interleave(nodes) => (sys::MPOL_INTERLEAVE, need_nodes(nodes)?),
            MemPolicy::Local => (sys::MPOL_LOCAL, Vec::new()),
            MemPolicy::Other { mode, nodes } => (*mode, sys::to_kernel_words(nodes.words())),
        })
    }

    /// Decodes a mode word (flags are dropped) and node mask from the kernel.
    fn from_raw(mode: c_int, mask: &[std::ffi::c_ulong]) -> MemPolicy {
        let nodes = NodeSet::from_words(sys::from_kernel_words(mask));
        match mode & !sys::MPOL_MODE_FLAGS {
            sys::MPOL_DEFAULT => MemPolicy::Default,
            sys::MPOL_BIND => MemPolicy::Bind(nodes),
            sys::MPOL_INTERLEAVE => MemPolicy::Interleave(nodes),
            sys::MPOL_LOCAL => MemPolicy::Local,
            // Kernels before 5.14 report MPOL_LOCAL as an empty MPOL_PREFERRED.
            sys::MPOL_PREFERRED => match nodes.first() {
                Some(node) => MemPolicy::Preferred(node),
                None => MemPolicy::Local,
            },
            mode => MemPolicy::Other { mode, nodes },
        }
    }
}

impl fmt::Display for MemPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemPolicy::Default => f.write_str("default"),
            MemPolicy::Bind(nodes) => write!(f, "bind:{nodes}"),
            MemPolicy::Preferred(node) => write!(f, "prefer:{node}"),
            MemPolicy::Interleave(nodes) => write!(f, "interleave:{nodes}"),
            MemPolicy::Local => f.write_str("local"),
            MemPolicy::Other { mode, nodes } => match *mode {
                sys::MPOL_PREFERRED_MANY => write!(f, "prefer (many):{nodes}"),
                sys::MPOL_WEIGHTED_INTERLEAVE => write!(f, "weighted interleave:{nodes}"),
                mode => write!(f, "mode {mode}:{nodes}"),
            },
        }
    }
}

/// Sets the calling thread's memory policy (`set_mempolicy(2)`).
///
/// ```no_run
/// use pinstack_numa::{set_thread_mempolicy, thread_mempolicy, MemPolicy, NodeSet};
///
/// std::thread::spawn(|| -> std::io::Result<()> {
///     set_thread_mempolicy(&MemPolicy::Bind(NodeSet::single(0)))?;
///     assert_eq!(thread_mempolicy()?, MemPolicy::Bind(NodeSet::single(0)));
///     Ok(())
/// })
/// .join()
/// .unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// `InvalidInput` for a `Bind`/`Interleave` with no node; the kernel's error
/// (with the policy and a hint in the message) for nodes that do not exist,
/// have no memory or are outside the process's cgroup `cpuset.mems`.
pub fn set_thread_mempolicy(policy: &MemPolicy) -> io::Result<()> {
    let (mode, mask) = policy.to_raw()?;
    sys::set_mempolicy(mode, &mask).map_err(|e| explain(e, "set_mempolicy", policy))
}

/// The calling thread's memory policy (`get_mempolicy(2)` with no flags).
///
/// # Errors
///
/// The kernel's error, which on a kernel built with NUMA support does not
/// happen in practice; `ENOSYS` on a kernel without it.
pub fn thread_mempolicy() -> io::Result<MemPolicy> {
    let (mode, mask) = sys::get_mempolicy(std::ptr::null(), 0)?;
    Ok(MemPolicy::from_raw(mode, &mask))
}

/// The policy of the mapping holding `addr` (`get_mempolicy(2)` with
/// `MPOL_F_ADDR`): what [`mbind`] set there, or `Default` if nothing did.
///
/// # Errors
///
/// `EFAULT` if `addr` is not mapped.
pub fn address_mempolicy(addr: *const u8) -> io::Result<MemPolicy> {
    let (mode, mask) = sys::get_mempolicy(addr.cast::<c_void>(), sys::MPOL_F_ADDR)?;
    Ok(MemPolicy::from_raw(mode, &mask))
}

/// The node holding the page at `addr` (`get_mempolicy(2)` with
/// `MPOL_F_NODE | MPOL_F_ADDR`). The page is faulted in (read) if it is not
/// present; use [`page_nodes`] to look without touching.
///
/// # Errors
///
/// `EFAULT` if `addr` is not mapped.
pub fn node_of_address(addr: *const u8) -> io::Result<usize> {
    let (node, _) = sys::get_mempolicy(addr.cast::<c_void>(), sys::MPOL_F_NODE | sys::MPOL_F_ADDR)?;
    usize::try_from(node)
        .map_err(|_| io::Error::other(format!("get_mempolicy reported node {node}")))
}

/// Flags for [`mbind`]; combine with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MbindFlags(u32);

impl MbindFlags {
    /// Only set the policy; pages already present stay where they are.
    pub const NONE: MbindFlags = MbindFlags(0);
    /// `MPOL_MF_STRICT`: fail with `EIO` if a present page does not comply
    /// (and could not be moved).
    pub const STRICT: MbindFlags = MbindFlags(sys::MPOL_MF_STRICT);
    /// `MPOL_MF_MOVE`: move present pages used only by this process.
    pub const MOVE: MbindFlags = MbindFlags(sys::MPOL_MF_MOVE);
    /// `MPOL_MF_MOVE_ALL`: move shared pages too (needs `CAP_SYS_NICE`).
    pub const MOVE_ALL: MbindFlags = MbindFlags(sys::MPOL_MF_MOVE_ALL);
}

impl std::ops::BitOr for MbindFlags {
    type Output = MbindFlags;

    fn bitor(self, rhs: MbindFlags) -> MbindFlags {
        MbindFlags(self.0 | rhs.0)
    }
}

/// Sets the memory policy of the pages in `addr..addr + len` (`mbind(2)`).
///
/// Only the placement of future (or, with [`MbindFlags::MOVE`], present)
/// pages changes, never their contents, so this is safe to call on any
/// range; the kernel rejects ranges that are not mapped.
///
/// ```no_run
/// use pinstack_numa::{mbind, MbindFlags, MemPolicy, NodeSet};
///
/// let mut buf = vec![0u8; 1 << 20];
/// // mbind needs a page-aligned start: bind the whole pages inside `buf`.
/// let page = 4096;
/// let start = buf.as_mut_ptr().wrapping_add(buf.as_ptr().align_offset(page));
/// mbind(start, 64 * page, &MemPolicy::Bind(NodeSet::single(0)), MbindFlags::MOVE)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// `InvalidInput` if `addr` is not page-aligned or a `Bind`/`Interleave`
/// has no node; the kernel's error otherwise (`EFAULT`/`ENOMEM` for an
/// unmapped range, `EINVAL` for nodes that do not exist or have no memory,
/// `EIO` under `STRICT`), with the range and policy in the message.
pub fn mbind(addr: *const u8, len: usize, policy: &MemPolicy, flags: MbindFlags) -> io::Result<()> {
    if (addr as usize) % sys::page_size() != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "mbind({addr:p}, {len}): the start address must be page-aligned ({} bytes)",
                sys::page_size()
            ),
        ));
    }
    let (mode, mask) = policy.to_raw()?;
    sys::mbind(addr.cast_mut().cast::<c_void>(), len, mode, &mask, flags.0).map_err(|e| {
        let what = format!("{addr:p}, {len} bytes, {policy}");
        explain(e, "mbind", &what)
    })
}

/// Where one page is, as [`page_nodes`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageStatus {
    /// The page is present on this node.
    Node(usize),
    /// The address is mapped but has no page of its own: never touched (or
    /// only read, so backed by the shared zero page), or swapped out.
    NotPresent,
    /// No mapping holds the address.
    Unmapped,
    /// The kernel reported this other (positive) errno for the page.
    Error(i32),
}

/// Reports, without touching them, the node of each page in
/// `addr..addr + len` (`move_pages(2)` with a null node array). `addr` is
/// rounded down to a page boundary; one status per page.
///
/// Kernels differ on untouched pages: recent ones say `ENOENT`, older ones
/// (6.1, for one) `EFAULT`, the code they also use for unmapped addresses.
/// An `EFAULT` page is therefore checked against `/proc/self/maps` and
/// reported as [`PageStatus::NotPresent`] if a mapping holds it, else
/// [`PageStatus::Unmapped`].
///
/// # Errors
///
/// The kernel's error for the whole call (per-page problems are statuses);
/// an I/O error reading `/proc/self/maps`.
pub fn page_nodes(addr: *const u8, len: usize) -> io::Result<Vec<PageStatus>> {
    let page = sys::page_size();
    let first = addr as usize / page * page;
    let end = (addr as usize).saturating_add(len);
    let pages: Vec<*const c_void> = (first..end)
        .step_by(page)
        .map(|a| a as *const c_void)
        .collect();
    let mut status: Vec<c_int> = vec![0; pages.len()];
    // move_pages handles any count, but keep each call's arrays modest.
    const BATCH: usize = 16 * 1024;
    for (p, s) in pages.chunks(BATCH).zip(status.chunks_mut(BATCH)) {
        sys::move_pages_query(p, s)?;
    }
    let mappings = if status.contains(&-libc::EFAULT) {
        crate::numa_maps::self_mappings()?
    } else {
        Vec::new()
    };
    let mapped = |a: usize| {
        let i = mappings.partition_point(|&(start, _)| start <= a);
        i > 0 && a < mappings[i - 1].1
    };
    Ok(status
        .into_iter()
        .zip(&pages)
        .map(|(s, &a)| match usize::try_from(s) {
            Ok(node) => PageStatus::Node(node),
            Err(_) if s == -libc::ENOENT => PageStatus::NotPresent,
            Err(_) if s == -libc::EFAULT && mapped(a as usize) => PageStatus::NotPresent,
            Err(_) if s == -libc::EFAULT => PageStatus::Unmapped,
            Err(_) => PageStatus::Error(-s),
        })
        .collect())
}

/// Wraps a kernel error with the call, its argument and a hint, keeping the
/// error kind.
fn explain(err: io::Error, call: &str, what: &dyn fmt::Display) -> io::Error {
    let hint = match err.raw_os_error() {
        Some(libc::EINVAL) => {
            "; every node must exist, have memory and be allowed to this process \
             (see /sys/devices/system/node/has_memory and the cgroup's cpuset.mems.effective)"
        }
        Some(libc::ENOSYS) => "; this kernel was built without NUMA support (CONFIG_NUMA)",
        Some(libc::EPERM) => "; moving shared pages (MOVE_ALL) needs CAP_SYS_NICE",
        Some(libc::EFAULT) | Some(libc::ENOMEM) => "; the address range must be mapped",
        _ => "",
    };
    io::Error::new(err.kind(), format!("{call}({what}) failed: {err}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_round_trip() {
        for policy in [
            MemPolicy::Default,
            MemPolicy::Local,
            MemPolicy::Bind("0-1".parse().unwrap()),
            MemPolicy::Preferred(3),
            MemPolicy::Interleave("0,2,70".parse().unwrap()),
        ] {
            let (mode, mask) = policy.to_raw().unwrap();
            assert_eq!(MemPolicy::from_raw(mode, &mask), policy);
        }
    }

    #[test]
    fn from_raw_drops_mode_flags_and_maps_empty_preferred_to_local() {
        let static_bind = sys::MPOL_BIND | (1 << 15);
        assert_eq!(
            MemPolicy::from_raw(static_bind, &[0b10]),
            MemPolicy::Bind(NodeSet::single(1))
        );
        assert_eq!(
            MemPolicy::from_raw(sys::MPOL_PREFERRED, &[0]),
            MemPolicy::Local
        );
        let other = MemPolicy::from_raw(sys::MPOL_PREFERRED_MANY, &[0b11]);
        assert_eq!(other.to_string(), "prefer (many):0-1");
    }

    #[test]
    fn empty_node_sets_are_rejected_before_the_kernel() {
        for policy in [
            MemPolicy::Bind(NodeSet::new()),
            MemPolicy::Interleave(NodeSet::new()),
        ] {
            let err = policy.to_raw().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("node set is empty"), "{err}");
        }
    }
}
