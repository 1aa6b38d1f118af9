//! The one place concurrent code takes its synchronisation types from.
#![allow(dead_code, unused_imports)] // a shim: not every re-export is used in every build
//!
//! Built normally, these are `std` types. Built with
//! `RUSTFLAGS="--cfg pinstack_loom"`, they are loom's instrumented twins, so
//! the models in `loom-tests/` and `src/**/tests_loom*.rs` explore every
//! interleaving of the real code (STYLE.md habit 6). Nothing in the crate may
//! import `std::sync` or `std::cell::UnsafeCell` directly.

#[cfg(not(pinstack_loom))]
mod imp {
    pub(crate) mod sync {
        pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
        pub(crate) mod atomic {
            pub(crate) use std::sync::atomic::{
                fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
            };
        }
    }

    pub(crate) mod thread {
        pub(crate) use std::thread::{current, park, park_timeout, yield_now, Thread};
    }

    /// An `UnsafeCell` whose accessors mirror loom's, so the checker can track
    /// every read and write.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(data: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(data))
        }

        /// Calls `f` with a shared raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Calls `f` with a unique raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// Whether the crate is built for the loom checker.
    pub(crate) const LOOM: bool = false;
}

#[cfg(pinstack_loom)]
mod imp {
    pub(crate) mod sync {
        pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
        pub(crate) mod atomic {
            pub(crate) use loom::sync::atomic::{
                fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
            };
        }
    }

    pub(crate) mod thread {
        pub(crate) use loom::thread::{current, park, yield_now, Thread};

        /// loom has no timed park; a timed park is modelled as a park that
        /// may return spuriously, which callers must tolerate anyway.
        pub(crate) fn park_timeout(_: std::time::Duration) {
            loom::thread::yield_now();
        }
    }

    pub(crate) use loom::cell::UnsafeCell;

    /// Whether the crate is built for the loom checker.
    pub(crate) const LOOM: bool = true;
}

#[allow(unused_imports)]
pub(crate) use imp::*;
