//! Suspending synchronisation: channels, a mutex, notifications and wait
//! groups that park the calling coroutine instead of blocking its worker.
//!
//! Inside a pinstack task, a contended `lock`, an empty `recv` or a `wait`
//! suspends only that task; the worker thread goes on running others. On a
//! plain thread the same calls block the thread, so these types also work
//! (and are tested) outside the runtime.
//!
//! | type | like | waits for |
//! |---|---|---|
//! | [`mpsc::channel`], [`mpsc::unbounded`] | `std::sync::mpsc`, Go channels | room / a value |
//! | [`broadcast::channel`] | `tokio::sync::broadcast` | the next value (every receiver gets each) |
//! | [`mpsc::Select`] | Go `select` on receives, `crossbeam::Select` | one of several receivers to be ready |
//! | [`oneshot::channel`] | `tokio::sync::oneshot` | the one value |
//! | [`Mutex`] | `tokio::sync::Mutex`, Go `sync.Mutex` | the lock |
//! | [`RwLock`] | `tokio::sync::RwLock`, Go `sync.RWMutex` | shared or exclusive access |
//! | [`Condvar`] | `std::sync::Condvar` (pairs with [`Mutex`]) | a notification |
//! | [`Notify`] | `tokio::sync::Notify` | a notification or permit |
//! | [`WaitGroup`] | Go `sync.WaitGroup` | the counter to reach zero |
//! | [`Semaphore`] | `tokio::sync::Semaphore` | permits |
//! | [`OnceCell`] | Go `sync.Once`, `tokio::sync::OnceCell` | the value's initialiser (which may suspend) |
//!
//! Every blocking operation has a timeout form. None of them poisons: a
//! task that panics while holding a [`MutexGuard`] releases the lock as it
//! unwinds, like tokio's mutex.
//!
//! # How waiting works
//!
//! Every primitive keeps its state behind a small internal mutex that is
//! held only for a few field updates, never across a suspension and never
//! while user code runs. A waiter registers its unparker, re-checks its
//! condition, and parks (the `crate::park` contract); whoever changes the
//! condition takes the unparker out under the lock and wakes it after
//! unlocking. Queued waiters live in a slab-backed FIFO, so parking does not
//! allocate once the slab has grown to the peak number of waiters.
//!
//! # Examples
//!
//! ```
//! use pinstack::sync::{mpsc, WaitGroup};
//! use std::thread;
//!
//! let (tx, rx) = mpsc::channel(8);
//! let wg = WaitGroup::new();
//! for id in 0..3 {
//!     wg.add(1);
//!     let (tx, wg) = (tx.clone(), wg.clone());
//!     thread::spawn(move || {
//!         tx.send(id).unwrap();
//!         wg.done();
//!     });
//! }
//! wg.wait();
//! drop(tx);
//! let mut got: Vec<i32> = rx.iter().collect();
//! got.sort();
//! assert_eq!(got, [0, 1, 2]);
//! ```

pub mod broadcast;
mod condvar;
mod error;
pub mod mpsc;
mod mutex;
mod notify;
mod once_cell;
pub mod oneshot;
mod raw_mutex;
mod rwlock;
mod semaphore;
mod wait;
mod wait_group;
mod wait_list;

#[cfg(all(test, not(pinstack_loom)))]
mod tests;
#[cfg(all(test, pinstack_loom))]
mod tests_loom;

pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{Mutex, MutexGuard};
pub use notify::Notify;
pub use once_cell::OnceCell;
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use wait_group::WaitGroup;
