//! A shutdown signal a server waits on and any thread can trigger.

use std::sync::Arc;

use tokio::sync::watch;

/// A cloneable shutdown trigger for the servers of this crate.
///
/// Triggering it from any thread (no runtime needed) makes the server stop
/// accepting, say goodbye to its clients and return.
///
/// ```
/// let s = pinstack_examples::Shutdown::new();
/// assert!(!s.is_triggered());
/// s.clone().trigger();
/// assert!(s.is_triggered());
/// ```
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A fresh, untriggered signal.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Triggers shutdown; idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once shutdown is triggered (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // `wait_for` returns Err only if the sender is gone; we hold it.
        let _ = rx.wait_for(|v| *v).await;
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
}
