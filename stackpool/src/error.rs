//! The pool's error type: one variant per cause, each message saying what to
//! do about it.

use std::{fmt, io};

/// Which configured pool limit was reached (see [`PoolError::LimitReached`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[repr(usize)] // word-sized, like PoolError's tag (see there)
pub enum Limit {
    /// [`PoolBuilder::max_stacks`](crate::PoolBuilder::max_stacks): stacks
    /// holding memory at once (checked out or cached).
    Stacks,
    /// [`PoolBuilder::max_reserved_bytes`](crate::PoolBuilder::max_reserved_bytes):
    /// address space reserved by slabs.
    ReservedBytes,
}

/// Why a pool could not be built or could not hand out a stack.
///
/// Every variant is recoverable: the pool stays usable, and stacks released
/// later can satisfy later requests. `Display` says what to change.
#[derive(Debug)]
#[non_exhaustive]
// A word-sized tag keeps every payload word-aligned. With a byte tag, rustc
// moved `Result<PooledStack, PoolError>` through memory in misaligned pieces
// on every `acquire`, stalling store forwarding (an acquire+release pair
// measured about 35% slower).
#[repr(usize)]
pub enum PoolError {
    /// The size hint exceeds the largest class (8 MiB).
    HintTooLarge {
        /// The hint that was asked for, in bytes.
        requested: usize,
        /// The largest usable size a class offers, in bytes.
        max: usize,
    },
    /// A limit set on the builder was reached.
    LimitReached {
        /// Which limit.
        limit: Limit,
        /// Its configured value (stacks or bytes).
        value: usize,
    },
    /// Guarding another stack with `mprotect` would bring the process near
    /// `vm.max_map_count` (only in [`GuardMode::Mprotect`](crate::GuardMode::Mprotect)).
    MapCountExhausted {
        /// Mappings the process's pools have created and still hold.
        mappings: usize,
        /// The pools' budget: 7/8 of `max_map_count`, the rest being left to
        /// the process's other mappings.
        budget: usize,
        /// The `vm.max_map_count` value in force (or the builder override).
        max_map_count: usize,
    },
    /// `mmap` of a new slab failed (address space or memory exhausted).
    Mmap {
        /// Bytes the slab asked for.
        bytes: usize,
        /// The OS error.
        source: io::Error,
    },
    /// Installing a guard page failed for a reason other than map-count
    /// exhaustion.
    Guard(io::Error),
    /// [`GuardMode::Madvise`](crate::GuardMode::Madvise) was requested but
    /// the kernel lacks `MADV_GUARD_INSTALL` (Linux 6.13+).
    GuardUnsupported,
    /// Binding a slab to a NUMA node with `mbind` failed.
    Numa {
        /// The node asked for.
        node: usize,
        /// The OS error.
        source: io::Error,
    },
    /// A builder setting is out of range.
    InvalidConfig(&'static str),
    /// Reading the kernel's configuration failed.
    Io(io::Error),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::HintTooLarge { requested, max } => write!(
                f,
                "stack size hint of {requested} bytes exceeds the largest stack class ({max} bytes, \
                 8 MiB); ask for at most {max} bytes, or move large buffers from the stack to the heap"
            ),
            PoolError::LimitReached { limit: Limit::Stacks, value } => write!(
                f,
                "stack pool limit reached: {value} stacks are checked out or cached; release stacks \
                 (let tasks finish) or raise PoolBuilder::max_stacks"
            ),
            PoolError::LimitReached { limit: Limit::ReservedBytes, value } => write!(
                f,
                "stack pool limit reached: mapping another slab would reserve more than {value} bytes \
                 of address space; raise PoolBuilder::max_reserved_bytes or use smaller size classes"
            ),
            PoolError::MapCountExhausted { mappings, budget, max_map_count } => write!(
                f,
                "cannot guard another stack: the stack pools hold {mappings} memory mappings and \
                 their budget is {budget} (7/8 of vm.max_map_count = {max_map_count}); this kernel \
                 lacks MADV_GUARD_INSTALL (Linux 6.13+), so each guard page costs two mappings. \
                 Raise the limit (as root: `sysctl -w vm.max_map_count=1048576`, or persist it in \
                 /etc/sysctl.d/), or run on Linux 6.13 or newer"
            ),
            PoolError::Mmap { bytes, source } => write!(
                f,
                "mmap of a {bytes}-byte stack slab failed: {source}; the process is out of address \
                 space or memory: check `ulimit -v`, vm.overcommit_memory, or lower \
                 PoolBuilder::slab_bytes / the number of live stacks"
            ),
            PoolError::Guard(e) => write!(f, "installing a stack guard page failed: {e}"),
            PoolError::GuardUnsupported => write!(
                f,
                "GuardMode::Madvise needs MADV_GUARD_INSTALL (Linux 6.13+), which this kernel lacks; \
                 use GuardMode::Auto or GuardMode::Mprotect"
            ),
            PoolError::Numa { node, source } => write!(
                f,
                "binding a stack slab to NUMA node {node} failed: {source}; check that the node \
                 exists (/sys/devices/system/node/) and that the kernel has NUMA support"
            ),
            PoolError::InvalidConfig(what) => write!(f, "invalid stack pool configuration: {what}"),
            PoolError::Io(e) => write!(f, "reading the kernel's memory configuration failed: {e}"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Mmap { source, .. } | PoolError::Numa { source, .. } => Some(source),
            PoolError::Guard(e) | PoolError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<PoolError> for io::Error {
    /// Keeps the message; the kind says whether it is exhaustion
    /// (`OutOfMemory`), a bad argument (`InvalidInput`) or something else.
    fn from(e: PoolError) -> io::Error {
        let kind = match &e {
            PoolError::HintTooLarge { .. } | PoolError::InvalidConfig(_) => {
                io::ErrorKind::InvalidInput
            }
            PoolError::LimitReached { .. }
            | PoolError::MapCountExhausted { .. }
            | PoolError::Mmap { .. } => io::ErrorKind::OutOfMemory,
            PoolError::GuardUnsupported => io::ErrorKind::Unsupported,
            PoolError::Guard(_) | PoolError::Numa { .. } | PoolError::Io(_) => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
