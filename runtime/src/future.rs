//! `block_on(future)`: using async libraries from coroutines.

use crate::park::{self, Reason, Unparker};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Wake, Waker};

struct UnparkWaker(Unparker);

impl Wake for UnparkWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.unpark_by_ref();
    }
}

/// Runs a future to completion.
///
/// Inside a pinstack task it suspends only the calling coroutine between
/// polls: the future's `Waker` re-queues the coroutine on its home worker.
/// On a plain thread it blocks the thread. This lets handlers call async
/// libraries.
///
/// The future must not depend on a runtime that is not running (for
/// example tokio's timers need a tokio runtime context).
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::new()?;
/// let v = rt.block_on(|| pinstack::block_on(async { 7 }));
/// assert_eq!(v, 7);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(std::sync::Arc::new(UnparkWaker(park::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        park::park(Reason::Future);
    }
}
