//! The arena's one error type.
//!
//! An opaque struct around a private `Repr` (STYLE.md habit 8), queried with
//! `is_*` methods. Its `Display` text is also the panic message of the plain
//! (non-`try_`) allocation methods, so it says what happened and what to do.

use std::fmt;

/// An arena allocation was refused.
///
/// Returned by the `try_*` methods of [`Arena`](super::Arena),
/// [`ArenaVec`](super::ArenaVec) and [`ArenaString`](super::ArenaString); the
/// plain methods panic with the same message.
///
/// # Examples
///
/// ```
/// use pinstack::arena;
///
/// arena::with_arena_limit(64 * 1024, |a| {
///     let err = a.try_alloc_slice_fill_copy(1 << 20, 0u8).unwrap_err();
///     assert!(err.is_limit_exceeded());
///     assert_eq!(err.limit(), Some(64 * 1024));
///     assert!(err.to_string().contains("with_arena_limit"));
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaError {
    repr: Repr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Repr {
    /// The arena's byte limit would be exceeded.
    LimitExceeded {
        limit: usize,
        held: usize,
        requested: usize,
    },
    /// The global allocator refused a new chunk while under the limit.
    OutOfMemory { requested: usize },
    /// The requested size does not fit in `usize`.
    CapacityOverflow,
}

impl ArenaError {
    pub(crate) fn limit_exceeded(limit: usize, held: usize, requested: usize) -> Self {
        ArenaError {
            repr: Repr::LimitExceeded {
                limit,
                held,
                requested,
            },
        }
    }

    pub(crate) fn out_of_memory(requested: usize) -> Self {
        ArenaError {
            repr: Repr::OutOfMemory { requested },
        }
    }

    pub(crate) fn capacity_overflow() -> Self {
        ArenaError {
            repr: Repr::CapacityOverflow,
        }
    }

    /// Whether the arena's byte limit refused the allocation (the request is
    /// too big for its scope, not the machine out of memory).
    pub fn is_limit_exceeded(&self) -> bool {
        matches!(self.repr, Repr::LimitExceeded { .. })
    }

    /// Whether the global allocator refused memory although the arena was
    /// under its limit.
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self.repr, Repr::OutOfMemory { .. })
    }

    /// Whether the requested size overflowed `usize` (a length computation
    /// gone wrong, or hostile input).
    pub fn is_capacity_overflow(&self) -> bool {
        matches!(self.repr, Repr::CapacityOverflow)
    }

    /// The arena's byte limit, when that limit refused the allocation.
    pub fn limit(&self) -> Option<usize> {
        match self.repr {
            Repr::LimitExceeded { limit, .. } => Some(limit),
            _ => None,
        }
    }

    /// The size in bytes of the refused allocation, when known.
    pub fn requested(&self) -> Option<usize> {
        match self.repr {
            Repr::LimitExceeded { requested, .. } | Repr::OutOfMemory { requested } => {
                Some(requested)
            }
            Repr::CapacityOverflow => None,
        }
    }

    /// Panics with this error's message: the plain allocation methods' failure
    /// path, kept out of line so their fast path stays small.
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub(crate) fn panic(self) -> ! {
        panic!("{self}")
    }
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repr {
            Repr::LimitExceeded {
                limit,
                held,
                requested,
            } => write!(
                f,
                "pinstack arena limit exceeded: an allocation of {requested} bytes does not fit \
                 in this scope's limit of {limit} bytes ({held} bytes of chunks already held); \
                 raise the limit with pinstack::arena::set_default_limit or \
                 pinstack::arena::with_arena_limit, or bound the input so one request cannot \
                 grow this large (the try_* methods return this as an error instead of panicking)"
            ),
            Repr::OutOfMemory { requested } => write!(
                f,
                "pinstack arena out of memory: the global allocator refused a chunk for an \
                 allocation of {requested} bytes although the arena was under its limit; \
                 the process is out of memory (check RSS, overcommit settings and cgroup limits)"
            ),
            Repr::CapacityOverflow => f.write_str(
                "pinstack arena capacity overflow: the requested size does not fit in usize; \
                 check the length computation or bound the input",
            ),
        }
    }
}

impl std::error::Error for ArenaError {}
