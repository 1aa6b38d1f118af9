//! Trace events: their encoding in a ring slot's seven words, and decoding.
//!
//! ```text
//! w0: kind (8) | aux (8) | track (16)      w1: timestamp (ns, CLOCK_MONOTONIC)
//! w2: task id                              w3..w6: a, b, c, d (per kind)
//! ```
//!
//! | kind         | ts            | a            | b           | c            | d            | aux      |
//! |--------------|---------------|--------------|-------------|--------------|--------------|----------|
//! | RUN          | resume start  | resume end   | site ptr    | waker who    | woken at     | outcome (+FIRST: c, d = spawner, spawned at) |
//! | NAME         | first run     | name[0..8]   | name[8..16] | [16..24]     | [24..32]     | len      |
//! | REGION_BEGIN | time          | name ptr     | name len    | resume no.   |              |          |
//! | REGION_END   | time          | name ptr     | name len    | resume no.   |              |          |
//! | SUMMARY      | finish        | running, runnable | io, timer | sync, join | future, resumes | |
//!
//! Timestamps are clock ticks (`metrics/clock.rs`). A RUN's start is the
//! end of the worker's previous traced resume when the worker went straight
//! from one to the other (`metrics/probe.rs`: slices on a busy worker's
//! track touch), but never before the task's wake-up or spawn. One resume is one
//! event: the wake-up that led to it (or, on a first run, the spawn) rides
//! along in `c` and `d`. SUMMARY packs seven durations as `f32` ticks and
//! the resume count as `u32`, two per word.
//!
//! `track` is the worker the event is drawn on (`EXTERNAL` for threads
//! outside the runtime). Pointers are to `&'static` data (spawn sites,
//! region names); they are turned back into references only from copies
//! the ring validated (see `ring.rs`), and only when they were written by
//! this module from a `&'static` value.

use super::ring::WORDS;
use std::panic::Location;

pub(crate) const RUN: u8 = 1;
pub(crate) const NAME: u8 = 2;
pub(crate) const REGION_BEGIN: u8 = 3;
pub(crate) const REGION_END: u8 = 4;
pub(crate) const SUMMARY: u8 = 5;

/// RUN `aux` flag: the task's first resume (`c`, `d` describe its spawn).
pub(crate) const FIRST: u8 = 0x80;

/// Track of events from threads outside the runtime's workers.
pub(crate) const EXTERNAL: u16 = u16::MAX;

/// Bytes of a task name carried by a NAME event.
pub(crate) const NAME_BYTES: usize = 32;

// Who spawned or woke a task: kind (4 bits) | track (16 bits) | value (44).
const WHO_KIND_SHIFT: u32 = 60;
const WHO_TRACK_SHIFT: u32 = 44;
const WHO_VALUE_MASK: u64 = (1 << WHO_TRACK_SHIFT) - 1;
/// A task (value: its id).
pub(crate) const WHO_TASK: u64 = 1;
/// A worker outside any task: its I/O poller, or a task's completion.
pub(crate) const WHO_WORKER: u64 = 2;
/// A worker's timer wheel.
pub(crate) const WHO_TIMER: u64 = 3;
/// A thread outside the runtime.
pub(crate) const WHO_THREAD: u64 = 4;

/// Encodes who did something, and on which track.
pub(crate) fn who(kind: u64, track: u16, value: u64) -> u64 {
    (kind << WHO_KIND_SHIFT) | (track as u64) << WHO_TRACK_SHIFT | (value & WHO_VALUE_MASK)
}

/// Splits an encoded spawner or waker into (kind, track, value).
pub(crate) fn who_parts(w: u64) -> (u64, u16, u64) {
    (
        w >> WHO_KIND_SHIFT,
        (w >> WHO_TRACK_SHIFT) as u16,
        w & WHO_VALUE_MASK,
    )
}

/// One decoded event, with the worker whose ring held it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) kind: u8,
    pub(crate) aux: u8,
    pub(crate) track: u16,
    pub(crate) ts: u64,
    pub(crate) task: u64,
    pub(crate) a: u64,
    pub(crate) b: u64,
    pub(crate) c: u64,
    pub(crate) d: u64,
}

impl Event {
    pub(crate) fn new(kind: u8, track: u16, ts: u64, task: u64) -> Event {
        Event {
            kind,
            aux: 0,
            track,
            ts,
            task,
            a: 0,
            b: 0,
            c: 0,
            d: 0,
        }
    }

    pub(crate) fn encode(&self) -> [u64; WORDS] {
        [
            self.kind as u64 | (self.aux as u64) << 8 | (self.track as u64) << 16,
            self.ts,
            self.task,
            self.a,
            self.b,
            self.c,
            self.d,
        ]
    }

    pub(crate) fn decode(w: &[u64; WORDS]) -> Event {
        Event {
            kind: w[0] as u8,
            aux: (w[0] >> 8) as u8,
            track: (w[0] >> 16) as u16,
            ts: w[1],
            task: w[2],
            a: w[3],
            b: w[4],
            c: w[5],
            d: w[6],
        }
    }
}

/// Packs two 32-bit values into a word.
pub(crate) fn pack(lo: u32, hi: u32) -> u64 {
    lo as u64 | (hi as u64) << 32
}

/// Unpacks a word of [`pack`].
pub(crate) fn unpack(w: u64) -> (u32, u32) {
    (w as u32, (w >> 32) as u32)
}

/// A duration in ticks as `f32` bits (24 bits of precision).
pub(crate) fn f32_bits(ticks: u64) -> u32 {
    (ticks as f32).to_bits()
}

/// The ticks of [`f32_bits`].
pub(crate) fn from_f32_bits(b: u32) -> u64 {
    f32::from_bits(b) as u64
}

/// A site as an event word.
pub(crate) fn site_word(site: &'static Location<'static>) -> u64 {
    site as *const Location<'static> as usize as u64
}

/// The site an event word holds.
///
/// # Safety
/// `w` came from [`site_word`] (through a validated ring copy).
pub(crate) unsafe fn word_site(w: u64) -> Option<&'static Location<'static>> {
    let p = w as usize as *const Location<'static>;
    // SAFETY: the caller guarantees `w` is `site_word` of a `&'static`
    // location (or 0, which gives `None`).
    unsafe { p.as_ref() }
}

/// A `&'static str` as two event words (pointer, length).
pub(crate) fn str_words(s: &'static str) -> (u64, u64) {
    (s.as_ptr() as usize as u64, s.len() as u64)
}

/// The string two event words hold.
///
/// # Safety
/// `(ptr, len)` came from [`str_words`] (through a validated ring copy).
pub(crate) unsafe fn words_str(ptr: u64, len: u64) -> &'static str {
    if ptr == 0 {
        return "";
    }
    // SAFETY: the caller guarantees these are the pointer and length of a
    // `&'static str`, so the bytes are valid UTF-8 and live forever.
    unsafe {
        std::str::from_utf8_unchecked(std::slice::from_raw_parts(
            ptr as usize as *const u8,
            len as usize,
        ))
    }
}

/// Packs up to [`NAME_BYTES`] of `name` (cut at a character boundary) into
/// four words; returns them and the length.
pub(crate) fn name_words(name: &str) -> ([u64; 4], u8) {
    let mut end = name.len().min(NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut bytes = [0u8; NAME_BYTES];
    bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
    let words = std::array::from_fn(|i| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    });
    (words, end as u8)
}

/// The name a NAME event carries (lossy if the bytes are not UTF-8, which
/// `name_words` never produces).
pub(crate) fn words_name(words: [u64; 4], len: u8) -> String {
    let mut bytes = Vec::with_capacity(NAME_BYTES);
    for w in words {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    bytes.truncate((len as usize).min(NAME_BYTES));
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let mut e = Event::new(RUN, 3, 12345, 99);
        e.aux = 7;
        e.a = 1;
        e.d = u64::MAX;
        assert_eq!(Event::decode(&e.encode()), e);
        assert_eq!(who_parts(who(WHO_TASK, 3, 42)), (WHO_TASK, 3, 42));
        assert_eq!(unpack(pack(7, u32::MAX)), (7, u32::MAX));
        let t = 51_000_000_u64 * 3; // 51 ms of 3 GHz ticks
        assert!(from_f32_bits(f32_bits(t)).abs_diff(t) <= t >> 23);
        assert_eq!(
            who_parts(who(WHO_THREAD, EXTERNAL, 0)),
            (WHO_THREAD, EXTERNAL, 0)
        );
    }

    #[test]
    fn names_are_cut_at_char_boundaries() {
        let (w, n) = name_words("reader");
        assert_eq!(words_name(w, n), "reader");
        let long = "é".repeat(20); // 40 bytes
        let (w, n) = name_words(&long);
        assert_eq!(n, 32);
        assert_eq!(words_name(w, n), "é".repeat(16));
        let (w, n) = name_words("abcdefghijklmnopqrstuvwxyz01234é");
        assert_eq!(n, 31);
        assert_eq!(words_name(w, n), "abcdefghijklmnopqrstuvwxyz01234");
    }

    #[test]
    fn static_words_round_trip() {
        let (p, l) = str_words("parse");
        // SAFETY: made by `str_words` from a `&'static str`.
        assert_eq!(unsafe { words_str(p, l) }, "parse");
        let site = Location::caller();
        // SAFETY: made by `site_word` from a `&'static Location`.
        assert_eq!(unsafe { word_site(site_word(site)) }, Some(site));
    }
}
