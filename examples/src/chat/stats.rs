//! Counters a chat server keeps, shared by both twins.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Live counters of one chat server. All loads are relaxed snapshots.
#[derive(Debug, Default)]
pub struct ServerStats {
    connections: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    sendq_exceeded: AtomicU64,
    ping_timeouts: AtomicU64,
    lines_too_long: AtomicU64,
}

macro_rules! counter {
    ($get:ident, $bump:ident, $field:ident, $doc:literal) => {
        #[doc = $doc]
        pub fn $get(&self) -> u64 {
            self.$field.load(Ordering::Relaxed) as u64
        }

        pub(crate) fn $bump(&self) {
            self.$field.fetch_add(1, Ordering::Relaxed);
        }
    };
}

impl ServerStats {
    counter!(
        accepted,
        bump_accepted,
        accepted,
        "Connections accepted so far."
    );
    counter!(
        refused,
        bump_refused,
        refused,
        "Connections refused because `max_clients` were connected."
    );
    counter!(
        sendq_exceeded,
        bump_sendq_exceeded,
        sendq_exceeded,
        "Clients dropped because their outbound queue overflowed."
    );
    counter!(
        ping_timeouts,
        bump_ping_timeouts,
        ping_timeouts,
        "Clients dropped for not answering a PING."
    );
    counter!(
        lines_too_long,
        bump_lines_too_long,
        lines_too_long,
        "Input lines refused as too long (417)."
    );

    /// Connections open right now (until both their reader and writer end).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts a connection in if fewer than `max` are open.
    pub(crate) fn try_open(&self, max: usize) -> bool {
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    pub(crate) fn close(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }
}
