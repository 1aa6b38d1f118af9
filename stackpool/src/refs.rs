//! The pool's reference count, shared out in batches so that the hot paths
//! never touch it.
//!
//! Every holder of a reference keeps the pool's memory (`PoolInner`, its
//! slabs) alive:
//!
//! * each `StackPool` handle (one `Arc<Handle>`) holds 1;
//! * each checked-out `PooledStack` holds 1 (its *token*);
//! * each thread-cache entry holds `1 + cached stacks + spare` tokens.
//!
//! Taking a stack from a thread cache moves a token from the entry to the
//! stack; releasing it into a cache moves it back: no atomic operation. The
//! count itself changes only on slow paths, in batches: an entry that runs
//! out of spare tokens takes [`BATCH`] more, and one holding too many gives
//! the excess back. Whoever drops the count to zero frees the pool.
//!
//! Orderings follow `Arc`: increments are Relaxed (the caller already holds
//! a reference), decrements are Release, and the last one is followed by an
//! Acquire fence so that every holder's writes happen-before the free.

use crate::loom::sync::atomic::{fence, AtomicUsize, Ordering};

/// Tokens a thread-cache entry takes at a time.
pub(crate) const BATCH: usize = 64;

/// A reference count released in batches (see the module docs).
#[derive(Debug)]
pub(crate) struct RefCount(AtomicUsize);

impl RefCount {
    /// A count of `n` held by the creator.
    pub(crate) fn new(n: usize) -> RefCount {
        RefCount(AtomicUsize::new(n))
    }

    /// Adds `n` references. The caller must already hold one, so the count
    /// cannot be zero here.
    pub(crate) fn acquire(&self, n: usize) {
        let old = self.0.fetch_add(n, Ordering::Relaxed);
        debug_assert!(old > 0, "RefCount::acquire without holding a reference");
        if old > usize::MAX / 2 {
            // Like Arc: a count this large means leaked references; continuing
            // could overflow into a use-after-free.
            std::process::abort();
        }
    }

    /// Gives back `n` references. Returns `true` when this was the last
    /// release: the caller must then free the counted object.
    #[must_use = "the last release must free the object"]
    pub(crate) fn release(&self, n: usize) -> bool {
        if n == 0 {
            return false;
        }
        let old = self.0.fetch_sub(n, Ordering::Release);
        debug_assert!(old >= n, "RefCount released more than was held");
        if old == n {
            fence(Ordering::Acquire);
            true
        } else {
            false
        }
    }

    /// The current count (for tests and debugging only: racy).
    #[allow(dead_code)]
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    #[test]
    fn last_release_reports_zero_once() {
        let rc = RefCount::new(1);
        rc.acquire(BATCH);
        assert!(!rc.release(BATCH - 1));
        assert!(!rc.release(0));
        assert_eq!(rc.get(), 2);
        assert!(!rc.release(1));
        assert!(rc.release(1));
    }
}

#[cfg(all(test, pinstack_loom))]
mod tests_loom {
    use super::*;
    use crate::loom::sync::atomic::AtomicUsize;
    use crate::loom::sync::Arc;

    /// Two threads hold references in different batch sizes while the
    /// creator drops its own: exactly one release frees, and it sees every
    /// other holder's earlier (Relaxed) writes.
    #[test]
    fn loom_batched_releases_free_exactly_once_after_all_writes() {
        loom::model(|| {
            let rc = Arc::new(RefCount::new(1));
            let written = Arc::new([
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ]);
            let frees = Arc::new(AtomicUsize::new(0));
            let check = |rc: &RefCount,
                         n: usize,
                         written: &[AtomicUsize; 3],
                         frees: &AtomicUsize| {
                if rc.release(n) {
                    for w in written {
                        assert_eq!(w.load(Ordering::Relaxed), 1, "free before a holder's write");
                    }
                    frees.fetch_add(1, Ordering::Relaxed);
                }
            };
            // A thread-cache entry: takes 1 + BATCH-like tokens, hands one to
            // a stack that another thread releases.
            rc.acquire(3);
            let handles: Vec<_> = [(0usize, 2usize), (1, 1)]
                .into_iter()
                .map(|(i, n)| {
                    let (rc, written, frees) = (rc.clone(), written.clone(), frees.clone());
                    loom::thread::spawn(move || {
                        written[i].store(1, Ordering::Relaxed);
                        check(&rc, n, &written, &frees);
                    })
                })
                .collect();
            written[2].store(1, Ordering::Relaxed);
            check(&rc, 1, &written, &frees);
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(frees.load(Ordering::Relaxed), 1);
            assert_eq!(rc.get(), 0);
        });
    }
}
