//! Delivery verification: per receiver, per sender sequence tracking.
//!
//! Client `i` is in room `i % rooms` at position `i / rooms`, so a receiver
//! indexes its senders by position in a dense `Vec<u32>` holding the last
//! sequence number seen (0: none yet; senders count from 1). Per sender the
//! server must deliver in order (one TCP stream, one queue), so:
//!
//! | seq vs last seen | meaning                           | counted as            |
//! |------------------|-----------------------------------|-----------------------|
//! | `last + 1`       | the next one                      | delivered             |
//! | `> last + 1`     | messages in between never came    | delivered, `gaps += seq - last - 1` |
//! | `<= last`        | a duplicate or out of order       | `duplicates`          |
//!
//! Loss is settled at the end of a phase: expected deliveries (room size - 1
//! per message sent) minus unique deliveries.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by all receivers.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Payload lines received, duplicates included.
    pub(crate) received: AtomicU64,
    /// Lines whose sequence number was not above the last one seen.
    pub(crate) duplicates: AtomicU64,
    /// Sequence numbers skipped (seen missing while later ones arrived).
    pub(crate) gaps: AtomicU64,
    /// Payloads for another room, from an impossible sender, or garbled.
    pub(crate) misrouted: AtomicU64,
}

impl Tally {
    /// Unique deliveries so far.
    pub(crate) fn unique(&self) -> u64 {
        self.received.load(Ordering::Relaxed) - self.duplicates.load(Ordering::Relaxed)
    }
}

/// One payload: `pl <sender> <seq> <send time ns>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Payload {
    pub(crate) sender: usize,
    pub(crate) seq: u32,
    pub(crate) sent_ns: u64,
}

/// Formats the text of a payload message.
pub(crate) fn payload_text(sender: usize, seq: u32, sent_ns: u64) -> String {
    format!("pl {sender} {seq} {sent_ns}")
}

/// Parses a payload text; `None` if it is not one.
pub(crate) fn parse_payload(text: &str) -> Option<Payload> {
    let mut it = text.strip_prefix("pl ")?.split(' ');
    let p = Payload {
        sender: it.next()?.parse().ok()?,
        seq: it.next()?.parse().ok()?,
        sent_ns: it.next()?.parse().ok()?,
    };
    it.next().is_none().then_some(p)
}

/// One receiver's view of its room's senders.
#[derive(Debug)]
pub(crate) struct Receiver {
    me: usize,
    room: usize,
    rooms: usize,
    clients: usize,
    last: Vec<u32>,
}

/// What [`Receiver::accept`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A new delivery (record its latency).
    Fresh,
    /// A duplicate or out-of-order delivery.
    Duplicate,
    /// Not from a member of this room (or from this client itself).
    Misrouted,
}

impl Receiver {
    pub(crate) fn new(me: usize, clients: usize, rooms: usize) -> Self {
        Self {
            me,
            room: me % rooms,
            rooms,
            clients,
            last: Vec::new(),
        }
    }

    /// Checks one delivery and updates `tally`.
    pub(crate) fn accept(&mut self, p: Payload, tally: &Tally) -> Verdict {
        tally.received.fetch_add(1, Ordering::Relaxed);
        if p.sender >= self.clients
            || p.sender % self.rooms != self.room
            || p.sender == self.me
            || p.seq == 0
        {
            tally.misrouted.fetch_add(1, Ordering::Relaxed);
            // Not a duplicate, but not a valid delivery either: keep
            // `unique` honest by counting it out.
            tally.duplicates.fetch_add(1, Ordering::Relaxed);
            return Verdict::Misrouted;
        }
        if self.last.is_empty() {
            // Allocated on first use: idle clients cost nothing.
            self.last = vec![0; self.clients.div_ceil(self.rooms)];
        }
        let slot = &mut self.last[p.sender / self.rooms];
        if p.seq <= *slot {
            tally.duplicates.fetch_add(1, Ordering::Relaxed);
            return Verdict::Duplicate;
        }
        if p.seq > *slot + 1 {
            tally
                .gaps
                .fetch_add(u64::from(p.seq - *slot - 1), Ordering::Relaxed);
        }
        *slot = p.seq;
        Verdict::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(sender: usize, seq: u32) -> Payload {
        Payload {
            sender,
            seq,
            sent_ns: 1,
        }
    }

    #[test]
    fn payload_round_trip() {
        let t = payload_text(17, 3, 123_456_789);
        assert_eq!(
            parse_payload(&t),
            Some(Payload {
                sender: 17,
                seq: 3,
                sent_ns: 123_456_789
            })
        );
        assert_eq!(parse_payload("pl 1 2"), None);
        assert_eq!(parse_payload("pl 1 2 3 4"), None);
        assert_eq!(parse_payload("hello"), None);
    }

    #[test]
    fn in_order_gaps_and_duplicates() {
        let tally = Tally::default();
        // 10 clients, 2 rooms: client 0 hears 2, 4, 6, 8.
        let mut r = Receiver::new(0, 10, 2);
        assert_eq!(r.accept(p(2, 1), &tally), Verdict::Fresh);
        assert_eq!(r.accept(p(2, 2), &tally), Verdict::Fresh);
        assert_eq!(r.accept(p(4, 1), &tally), Verdict::Fresh);
        assert_eq!(r.accept(p(2, 5), &tally), Verdict::Fresh); // 3, 4 missing
        assert_eq!(r.accept(p(2, 4), &tally), Verdict::Duplicate); // late = out of order
        assert_eq!(r.accept(p(4, 1), &tally), Verdict::Duplicate);
        assert_eq!(r.accept(p(3, 1), &tally), Verdict::Misrouted); // other room
        assert_eq!(r.accept(p(0, 1), &tally), Verdict::Misrouted); // own message echoed
        assert_eq!(r.accept(p(99, 1), &tally), Verdict::Misrouted);
        assert_eq!(tally.received.load(Ordering::Relaxed), 9);
        assert_eq!(tally.unique(), 4);
        assert_eq!(tally.gaps.load(Ordering::Relaxed), 2);
        assert_eq!(tally.misrouted.load(Ordering::Relaxed), 3);
    }
}
