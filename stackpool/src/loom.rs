//! The one place this crate takes its synchronisation types from.
//!
//! Built normally, these are `std` types. Built with
//! `RUSTFLAGS="--cfg pinstack_loom"`, [`sync`] holds loom's instrumented
//! twins, so the models in `src/**/tests_loom*` explore every interleaving of
//! the real code (STYLE.md habit 6). Nothing else in the crate imports
//! `std::sync` directly.
//!
//! [`statics`] is the one deliberate exception: it is `std` in every build.
//! It serves data that lives in `static`s and is read by the SIGSEGV handler
//! (the slab registry, the saved previous handlers). loom's types cannot be
//! constructed in a `static` and cannot run inside a signal handler, and the
//! registry's protocol (publish with Release, read with Acquire) is a
//! single-writer-per-slot pattern that needs no model.
#![allow(dead_code, unused_imports)] // a shim: not every re-export is used in every build

#[cfg(not(pinstack_loom))]
mod imp {
    pub(crate) mod sync {
        pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
        pub(crate) mod atomic {
            pub(crate) use std::sync::atomic::{
                fence, AtomicBool, AtomicU64, AtomicUsize, Ordering,
            };
        }
    }

    /// Whether the crate is built for the loom checker.
    pub(crate) const LOOM: bool = false;
}

#[cfg(pinstack_loom)]
mod imp {
    pub(crate) mod sync {
        pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
        pub(crate) mod atomic {
            pub(crate) use loom::sync::atomic::{
                fence, AtomicBool, AtomicU64, AtomicUsize, Ordering,
            };
        }
    }

    /// Whether the crate is built for the loom checker.
    pub(crate) const LOOM: bool = true;
}

pub(crate) use imp::*;

/// `std` synchronisation for `static`s and the signal handler, in every build
/// (see the module docs for why loom does not apply here).
pub(crate) mod statics {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    pub(crate) use std::sync::Once;
}
