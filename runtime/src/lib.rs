//! pinstack: stackful coroutines on pooled stacks.
//!
//! (The crate tour is written as the runtime lands.)
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![doc(test(attr(deny(warnings))))]

mod loom;
mod park;
pub mod sync;
