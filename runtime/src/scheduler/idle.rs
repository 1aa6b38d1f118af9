//! Counting sleeping workers, so producers skip the wake-up path when
//! everybody is busy (the common case under load).

use crate::loom::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[derive(Debug, Default)]
pub(crate) struct Idle {
    /// Workers whose `sleeping` flag is set.
    pub(crate) sleepers: AtomicUsize,
    /// Rotates the first worker tried by `notify_one`, so wake-ups spread.
    rotor: AtomicUsize,
}

impl Idle {
    pub(crate) fn next_start(&self, n: usize) -> usize {
        self.rotor.fetch_add(1, Relaxed) % n.max(1)
    }
}
