//! Stack use per spawn site: sampled high-water marks, and (opt-in) the
//! size class learned from them.
//!
//! A spawn site is the `#[track_caller]` location in `Meta::site`. When a
//! task whose stack the pool sampled finishes, its worker measures the
//! stack's high-water mark (`PooledStack::touched_bytes`, before the stack
//! goes back to the pool) and records it under the site: in `table` for
//! reports, and, with learning on, in `classes` for spawns.
//!
//! ```text
//! finish (sampled, 1 in N) --lock--> table: site -> {hint, class, samples, max, sum}
//!                                      | learning on, >= MIN_SAMPLES samples, no hint
//!                                      v
//! first run (every spawn)  <--no lock-- classes: [key: site ptr | bytes] (open addressing)
//! ```
//!
//! `classes` is written only under `table`'s lock and read without it: a
//! writer stores `bytes` before publishing `key` (release); a reader that
//! sees its key (acquire) also sees a class. Keys are `'static` locations,
//! never removed, so a slot, once taken, belongs to one site forever; a
//! later, larger class overwrites `bytes` (a reader may see the old one).

use crate::loom::sync::atomic::{AtomicUsize, Ordering::*};
use crate::loom::sync::Mutex;
use crate::scheduler::Shared;
use crate::task::{Co, Header};
use pinstack_stackpool::SizeClass;
use std::collections::HashMap;
use std::panic::Location;

/// Slots of the learned-class table (sites beyond it are not learned).
const SLOTS: usize = 1024;
/// Slots probed per lookup.
const PROBES: usize = 8;
/// Samples of a site before its class is learned.
pub(crate) const MIN_SAMPLES: u64 = 4;
/// Headroom above the largest mark seen, at least.
const HEADROOM: usize = 16 * 1024;

/// Stack use observed at one spawn site, from
/// [`RuntimeMetrics::stack_sites`](crate::RuntimeMetrics::stack_sites).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StackSite {
    /// Where the tasks were spawned.
    pub site: &'static Location<'static>,
    /// The stack size hint given at the site (`None`: no hint).
    pub hint: Option<usize>,
    /// Usable bytes of the stack class the last sampled task ran on.
    pub class_bytes: usize,
    /// Tasks sampled.
    pub samples: u64,
    /// Largest high-water mark seen, in bytes (page granularity).
    pub max_touched: usize,
    /// Mean high-water mark, in bytes.
    pub mean_touched: usize,
    /// With [`Builder::learn_stack_sizes`](crate::Builder::learn_stack_sizes):
    /// the class the runtime now gives this site's unhinted tasks.
    pub learned_class_bytes: Option<usize>,
}

#[derive(Debug)]
struct Entry {
    site: &'static Location<'static>,
    hint: usize,
    class: SizeClass,
    samples: u64,
    max: usize,
    sum: u64,
    learned: Option<SizeClass>,
}

#[derive(Debug, Default)]
struct Slot {
    key: AtomicUsize,
    bytes: AtomicUsize,
}

/// The per-runtime site table.
#[derive(Debug)]
pub(crate) struct Sites {
    learn: bool,
    table: Mutex<HashMap<usize, Entry>>,
    classes: Box<[Slot]>,
}

fn key(site: &'static Location<'static>) -> usize {
    site as *const Location<'static> as usize
}

fn first_slot(k: usize) -> usize {
    // Fibonacci hashing of the address (low bits are alignment).
    (k.wrapping_mul(0x9e37_79b9_7f4a_7c15_u64 as usize) >> 20) % SLOTS
}

/// The class learned from a largest mark of `max` bytes.
pub(crate) fn class_for(max: usize) -> Option<SizeClass> {
    SizeClass::for_hint(max.saturating_mul(2).max(max + HEADROOM)).ok()
}

impl Sites {
    pub(crate) fn new(learn: bool) -> Sites {
        let n = if learn { SLOTS } else { 0 };
        Sites {
            learn,
            table: Mutex::new(HashMap::new()),
            classes: (0..n).map(|_| Slot::default()).collect(),
        }
    }

    /// The learned stack size for an unhinted spawn at `site`.
    #[inline]
    pub(crate) fn learned(&self, site: &'static Location<'static>) -> Option<usize> {
        if !self.learn {
            return None;
        }
        let k = key(site);
        let start = first_slot(k);
        for i in 0..PROBES {
            let s = &self.classes[(start + i) % SLOTS];
            match s.key.load(Acquire) {
                0 => return None,
                x if x == k => return Some(s.bytes.load(Relaxed)),
                _ => {}
            }
        }
        None
    }

    /// Records a sampled task's high-water mark.
    pub(crate) fn record(
        &self,
        site: &'static Location<'static>,
        hint: usize,
        class: SizeClass,
        touched: usize,
    ) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let e = table.entry(key(site)).or_insert(Entry {
            site,
            hint,
            class,
            samples: 0,
            max: 0,
            sum: 0,
            learned: None,
        });
        e.hint = hint;
        e.class = class;
        e.samples += 1;
        e.max = e.max.max(touched);
        e.sum += touched as u64;
        if self.learn && hint == 0 && e.samples >= MIN_SAMPLES {
            if let Some(c) = class_for(e.max) {
                if e.learned.is_none_or(|l| c > l) && self.publish(site, c.usable_bytes()) {
                    e.learned = Some(c);
                }
            }
        }
    }

    /// Stores a learned class for lookups; false if the table is full
    /// around this site's slot. Called under `table`'s lock.
    fn publish(&self, site: &'static Location<'static>, bytes: usize) -> bool {
        let k = key(site);
        let start = first_slot(k);
        for i in 0..PROBES {
            let s = &self.classes[(start + i) % SLOTS];
            let cur = s.key.load(Relaxed);
            if cur == k {
                s.bytes.store(bytes, Relaxed);
                return true;
            }
            if cur == 0 {
                s.bytes.store(bytes, Relaxed);
                s.key.store(k, Release);
                return true;
            }
        }
        false
    }

    /// The report, sorted by file and line.
    pub(crate) fn report(&self) -> Vec<StackSite> {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<StackSite> = table
            .values()
            .map(|e| StackSite {
                site: e.site,
                hint: (e.hint != 0).then_some(e.hint),
                class_bytes: e.class.usable_bytes(),
                samples: e.samples,
                max_touched: e.max,
                mean_touched: e.sum.checked_div(e.samples).unwrap_or(0) as usize,
                learned_class_bytes: e.learned.map(SizeClass::usable_bytes),
            })
            .collect();
        out.sort_by(|a, b| {
            (a.site.file(), a.site.line(), a.site.column()).cmp(&(
                b.site.file(),
                b.site.line(),
                b.site.column(),
            ))
        });
        out
    }
}

/// The stack size to give a task without a hint: what its site learned,
/// else `default`.
#[inline]
pub(crate) fn learned_or(shared: &Shared, h: &Header, default: usize) -> usize {
    shared.obs.sites.learned(h.meta.site).unwrap_or(default)
}

/// Drops a finished task's coroutine; if its stack was sampled, first
/// records the stack's high-water mark under the task's spawn site.
#[inline]
pub(crate) fn release_stack(shared: &Shared, h: &Header, co: Option<Co>) {
    let Some(co) = co else { return };
    if !shared.obs.stack_sampling || !co.done() {
        drop(co);
        return;
    }
    let stack = co.into_stack();
    if stack.is_sampled() {
        record_sample(shared, h, &stack);
    }
}

#[cold]
fn record_sample(shared: &Shared, h: &Header, stack: &pinstack_stackpool::PooledStack) {
    shared.obs.sites.record(
        h.meta.site,
        h.meta.stack_hint as usize,
        stack.class(),
        stack.touched_bytes(),
    );
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    #[test]
    fn learns_after_min_samples_and_only_grows() {
        let s = Sites::new(true);
        let here = Location::caller();
        let class = SizeClass::for_hint(64 * 1024).unwrap();
        for _ in 0..MIN_SAMPLES - 1 {
            s.record(here, 0, class, 4096);
        }
        assert_eq!(s.learned(here), None);
        s.record(here, 0, class, 4096);
        assert_eq!(
            s.learned(here),
            Some(32 * 1024),
            "4 KiB + 16 KiB -> 32 KiB class"
        );
        s.record(here, 0, class, 40 * 1024);
        assert_eq!(
            s.learned(here),
            Some(128 * 1024),
            "2 x 40 KiB -> 128 KiB class"
        );
        s.record(here, 0, class, 4096);
        assert_eq!(s.learned(here), Some(128 * 1024), "never shrinks");
        let r = s.report();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].samples, MIN_SAMPLES + 2);
        assert_eq!(r[0].max_touched, 40 * 1024);
        assert_eq!(r[0].hint, None);
        assert_eq!(r[0].learned_class_bytes, Some(128 * 1024));
    }

    #[test]
    fn hinted_sites_and_learning_off_are_not_learned() {
        let here = Location::caller();
        let class = SizeClass::for_hint(16 * 1024).unwrap();
        let s = Sites::new(true);
        for _ in 0..10 {
            s.record(here, 16 * 1024, class, 8192);
        }
        assert_eq!(s.learned(here), None);
        assert_eq!(s.report()[0].hint, Some(16 * 1024));
        let off = Sites::new(false);
        for _ in 0..10 {
            off.record(here, 0, class, 8192);
        }
        assert_eq!(off.learned(here), None);
        assert_eq!(off.report()[0].class_bytes, 16 * 1024);
    }
}
