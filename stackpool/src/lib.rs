//! Guarded, size-classed, reusable coroutine stacks.
//!
//! (Placeholder: being written.)
