//! Destructors for values placed with `Arena::alloc_with_drop`.
//!
//! bumpalo never runs destructors: resetting an arena just moves its bump
//! pointer. For the values that need one, the arena allocates a header in
//! front of the value and links the headers into a singly linked list, newest
//! first. Running the list drops each value in place, newest first (like
//! locals on a stack), before the arena's memory is reset or freed.
//!
//! ```text
//!   head ──► ┌────────────┬───────────┐    ┌────────────┬───────────┐
//!            │ DropNode   │ value: U  │    │ DropNode   │ value: T  │
//!            │ prev ──────┼───────────┼──► │ prev: None │           │
//!            │ drop_value │           │    │ drop_value │           │
//!            └────────────┴───────────┘    └────────────┴───────────┘
//!            WithDrop<U> (repr(C): the node is at offset 0, so a node
//!            pointer is also a pointer to the whole WithDrop<U>)
//! ```
//!
//! Who touches what: the arena pushes (through `&Arena`, while user code may
//! hold `&mut` to *earlier* values: the push reads only `head`, never a value)
//! and runs the list (through `&mut Arena`, when no user reference can exist).
//! Values must be `'static`, so a destructor can never observe another arena
//! value that was dropped before it or whose memory was reset.

use bumpalo::Bump;
use std::alloc::Layout;
use std::cell::Cell;
use std::ptr::{self, NonNull};

/// The header in front of each value with a destructor.
struct DropNode {
    /// The node allocated before this one, or `None`.
    prev: Option<NonNull<DropNode>>,
    /// Drops the value behind this node in place.
    drop_value: unsafe fn(NonNull<DropNode>),
}

/// A node and its value, laid out node first.
#[repr(C)]
struct WithDrop<T> {
    node: DropNode,
    value: T,
}

/// Drops the `T` of the `WithDrop<T>` that starts at `node`.
///
/// # Safety
///
/// `node` must point to the node of a live `WithDrop<T>` (with this very `T`)
/// whose value has not been dropped, and nothing may use the value afterwards.
unsafe fn drop_value<T>(node: NonNull<DropNode>) {
    let whole = node.cast::<WithDrop<T>>();
    // SAFETY: (1) `WithDrop<T>` is `repr(C)` with `node` first, so the node
    // pointer is the address of the whole, and it was derived from the
    // pointer to the whole in `DropList::try_alloc`, so it carries provenance
    // for all of it; (2) the caller guarantees the value is live, not yet
    // dropped, and unused from now on.
    unsafe { ptr::drop_in_place(ptr::addr_of_mut!((*whole.as_ptr()).value)) }
}

/// The list of pending destructors of one arena.
#[derive(Debug, Default)]
pub(crate) struct DropList {
    head: Cell<Option<NonNull<DropNode>>>,
}

impl DropList {
    pub(crate) const fn new() -> Self {
        DropList {
            head: Cell::new(None),
        }
    }

    /// Whether no destructor is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.get().is_none()
    }

    /// Moves `value` into `bump` behind a node and links the node, so the
    /// value is dropped by the next [`run`](Self::run). Returns `value` back
    /// when `bump` refuses the memory.
    // Each call returns fresh memory, as `Bump::alloc` does.
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn try_alloc<'a, T: 'static>(
        &self,
        bump: &'a Bump,
        value: T,
    ) -> Result<&'a mut T, T> {
        let whole = match bump.try_alloc_layout(Layout::new::<WithDrop<T>>()) {
            Ok(memory) => memory.cast::<WithDrop<T>>(),
            Err(_) => return Err(value),
        };
        let node = DropNode {
            prev: self.head.get(),
            drop_value: drop_value::<T>,
        };
        // SAFETY: `whole` is fresh memory from `bump` with the size and
        // alignment of `WithDrop<T>` (bumpalo's `try_alloc_layout` contract),
        // valid for writes and referenced by nothing else yet.
        unsafe { whole.as_ptr().write(WithDrop { node, value }) };
        self.head.set(Some(whole.cast::<DropNode>()));
        // SAFETY: `whole` now holds an initialised `WithDrop<T>` in memory
        // that `bump` keeps for `'a`. The returned `&mut` covers only the
        // `value` field, which nothing else references: the list touches the
        // value again only in `run`, whose caller must hold the owning arena
        // exclusively, which ends `'a`.
        Ok(unsafe { &mut *ptr::addr_of_mut!((*whole.as_ptr()).value) })
    }

    /// Drops every pending value, newest first, and empties the list. If a
    /// destructor panics, the ones not yet run stay in the list for the next
    /// call (the arena's `Drop` runs them).
    ///
    /// # Safety
    ///
    /// Every node in the list must still be allocated (the bump it lives in is
    /// not reset or freed yet), and no reference to any listed value may be
    /// used after this call.
    pub(crate) unsafe fn run(&self) {
        while let Some(node) = self.head.get() {
            // SAFETY: the caller guarantees the node's memory is still
            // allocated; nodes are written once in `try_alloc` and never
            // mutated, so reading `prev` and `drop_value` is a plain read.
            let (prev, drop_fn) = unsafe {
                let node = node.as_ref();
                (node.prev, node.drop_value)
            };
            // Unlink first: if the destructor panics, this value is not
            // dropped twice.
            self.head.set(prev);
            // SAFETY: the node was linked by `try_alloc::<T>` with
            // `drop_value::<T>` for the same `T`, its value is live (each node
            // is unlinked before its one drop), and the caller guarantees no
            // reference to it is used afterwards.
            unsafe { drop_fn(node) };
        }
    }
}
