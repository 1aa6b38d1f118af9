//! Slabs and the shared per-class state: where stacks are carved from, and
//! where they wait between thread caches.
//!
//! # Memory layout
//!
//! One slab is one `mmap` (`MAP_NORESERVE`, read-write, `MADV_NOHUGEPAGE`,
//! optionally `mbind`ed to a NUMA node) cut into equal slots, each a guard
//! page below the stack's usable bytes. Stacks grow down, towards the guard:
//!
//! ```text
//!  low                                                                    high
//!  | guard | usable 0 ........| guard | usable 1 ........| ... | guard | usable n-1 |
//!  ^ slot 0 = limit()          ^ slot 1                    base() of slot 0 ^ = slot 1
//!  |<------ stride ---------->|
//! ```
//!
//! Slots are carved in address order, lazily: the guard is installed when
//! a slot is first handed out (`MADV_GUARD_INSTALL`, or `mprotect` in the
//! fallback mode), so a fresh slab costs one mapping and no page tables.
//!
//! # Slot lifecycle
//!
//! ```text
//!   uncarved ──carve (guard)──► checked out ◄──► thread cache
//!                                  │   ▲   ▲            │ spill/exit
//!                                  ▼   │   └──── shared `free` (pages kept)
//!                             shared `free`              │ over the bound, or trim()
//!                                                        ▼
//!                                     shared `empty` (MADV_DONTNEED: no pages)
//! ```
//!
//! Slots never return to "uncarved" and slabs are unmapped only when the
//! pool itself is freed (after every stack came back): giving pages back
//! with `MADV_DONTNEED` keeps the guard and the registry entry, costs no
//! mapping churn, and an emptied slot is reused before a fresh one is carved.
//!
//! # Map-count accounting
//!
//! All pools of the process share [`PROCESS_MAPPINGS`]: one per slab, plus
//! two per `mprotect` guard (an upper bound: a split adds at most two
//! mappings). Before creating one, a pool reserves it against
//! `Config::map_budget` (7/8 of `vm.max_map_count`) and fails with
//! `MapCountExhausted` instead of letting the kernel's limit hit.

use crate::builder::{Config, GuardMode};
use crate::class::SizeClass;
use crate::error::{Limit, PoolError};
use crate::loom::statics::{AtomicUsize as StaticAtomicUsize, Ordering as StaticOrdering};
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::registry::{self, Registration};
use crate::stats::SharedCounters;
use crate::sys;

/// Mappings held by all pools of the process (see the module docs).
static PROCESS_MAPPINGS: StaticAtomicUsize = StaticAtomicUsize::new(0);

/// Reserves `n` mappings of the process-wide budget.
fn reserve_mappings(n: usize, cfg: &Config) -> Result<(), PoolError> {
    let mut cur = PROCESS_MAPPINGS.load(StaticOrdering::Relaxed);
    loop {
        if cur + n > cfg.map_budget {
            return Err(PoolError::MapCountExhausted {
                mappings: cur,
                budget: cfg.map_budget,
                max_map_count: cfg.max_map_count,
            });
        }
        match PROCESS_MAPPINGS.compare_exchange_weak(
            cur,
            cur + n,
            StaticOrdering::Relaxed,
            StaticOrdering::Relaxed,
        ) {
            Ok(_) => return Ok(()),
            Err(actual) => cur = actual,
        }
    }
}

fn unreserve_mappings(n: usize) {
    PROCESS_MAPPINGS.fetch_sub(n, StaticOrdering::Relaxed);
}

/// Adds `n` to `counter` unless that would exceed `max`.
fn reserve_bounded(counter: &AtomicUsize, n: usize, max: usize) -> bool {
    let mut cur = counter.load(Ordering::Relaxed);
    loop {
        if cur.checked_add(n).is_none_or(|v| v > max) {
            return false;
        }
        match counter.compare_exchange_weak(cur, cur + n, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(actual) => cur = actual,
        }
    }
}

/// Pool-wide tallies that the classes' carving paths share.
#[derive(Debug)]
pub(crate) struct PoolTally {
    /// Stacks holding memory (checked out or cached), for `max_stacks`.
    pub(crate) live: AtomicUsize,
    /// Bytes of address space mapped, for `max_reserved_bytes`.
    pub(crate) reserved: AtomicUsize,
}

impl PoolTally {
    pub(crate) fn new() -> PoolTally {
        PoolTally {
            live: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
        }
    }

    /// Counts one more live stack, or fails with `LimitReached`.
    pub(crate) fn reserve_live(&self, cfg: &Config) -> Result<(), PoolError> {
        if reserve_bounded(&self.live, 1, cfg.max_stacks) {
            Ok(())
        } else {
            Err(PoolError::LimitReached {
                limit: Limit::Stacks,
                value: cfg.max_stacks,
            })
        }
    }

    pub(crate) fn unreserve_live(&self, n: usize) {
        self.live.fetch_sub(n, Ordering::Relaxed);
    }
}

/// One `mmap`ed slab.
#[derive(Debug)]
pub(crate) struct Slab {
    pub(crate) base: usize,
    pub(crate) len: usize,
    pub(crate) slots: usize,
    /// Mappings this slab accounts for in `PROCESS_MAPPINGS`.
    pub(crate) mappings: usize,
    reg: Option<Registration>,
}

/// The shared state of one size class, behind the class's mutex.
#[derive(Debug, Default)]
pub(crate) struct ClassShared {
    /// Returned stacks with their pages, ready to hand out (bounded by
    /// `shared_cache_per_class`).
    pub(crate) free: Vec<usize>,
    /// Carved slots whose pages were given back; guard still installed.
    pub(crate) empty: Vec<usize>,
    pub(crate) slabs: Vec<Slab>,
    /// Slots of the last slab carved so far.
    pub(crate) next: usize,
    /// Stacks of this class holding memory.
    pub(crate) live: usize,
    /// The shortest `free` has been since the last decay step: that many
    /// stacks sat unused the whole time (see `PoolInner::decay_shared`).
    pub(crate) free_low: usize,
    pub(crate) counters: SharedCounters,
}

/// Where a slot handed out by [`ClassShared::take_one`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Shared,
    Empty,
    Fresh,
}

impl ClassShared {
    /// Takes one slot: from `free`, else `empty`, else carves a fresh one.
    pub(crate) fn take_one(
        &mut self,
        class: SizeClass,
        cfg: &Config,
        tally: &PoolTally,
    ) -> Result<(usize, Source), PoolError> {
        if let Some(slot) = self.free.pop() {
            self.free_low = self.free_low.min(self.free.len());
            self.counters.shared_hits += 1;
            return Ok((slot, Source::Shared));
        }
        tally.reserve_live(cfg)?;
        let taken = match self.empty.pop() {
            Some(slot) => Ok((slot, Source::Empty)),
            None => self.carve(class, cfg, tally).map(|s| (s, Source::Fresh)),
        };
        match taken {
            Ok((slot, source)) => {
                self.live += 1;
                match source {
                    Source::Empty => self.counters.reused_empty += 1,
                    _ => self.counters.fresh_carves += 1,
                }
                Ok((slot, source))
            }
            Err(e) => {
                tally.unreserve_live(1);
                Err(e)
            }
        }
    }

    /// Carves the next slot, mapping a new slab when the last one is full,
    /// and installs its guard page.
    fn carve(
        &mut self,
        class: SizeClass,
        cfg: &Config,
        tally: &PoolTally,
    ) -> Result<usize, PoolError> {
        let stride = cfg.stride(class);
        if self.slabs.last().is_none_or(|s| self.next >= s.slots) {
            let slab = map_slab(class, cfg, tally)?;
            self.slabs.push(slab);
            self.next = 0;
        }
        let Some(slab) = self.slabs.last_mut() else {
            unreachable!("a slab was pushed above");
        };
        let slot = slab.base + self.next * stride;
        match cfg.guard {
            GuardMode::Mprotect => {
                reserve_mappings(2, cfg)?;
                // SAFETY: `slot..slot+page` is the guard page of an uncarved
                // slot of our slab: nothing has used it yet.
                if let Err(e) = unsafe { sys::protect_none(slot, cfg.page) } {
                    unreserve_mappings(2);
                    return Err(if e.raw_os_error() == Some(libc::ENOMEM) {
                        PoolError::MapCountExhausted {
                            mappings: PROCESS_MAPPINGS.load(StaticOrdering::Relaxed),
                            budget: cfg.map_budget,
                            max_map_count: cfg.max_map_count,
                        }
                    } else {
                        PoolError::Guard(e)
                    });
                }
                slab.mappings += 2;
            }
            _ => {
                // SAFETY: as above, an unused guard page of our slab.
                unsafe { sys::guard_install(slot, cfg.page) }.map_err(PoolError::Guard)?;
            }
        }
        self.next += 1;
        Ok(slot)
    }

    /// Unmaps every slab (the pool is being freed: no stack is out).
    pub(crate) fn unmap_all(&mut self, tally: &PoolTally) {
        for slab in self.slabs.drain(..) {
            if let Some(reg) = slab.reg {
                registry::unregister(reg);
            }
            // SAFETY: the pool is being freed, so every slot of the slab is
            // back (the reference count reached zero) and nothing points
            // into it; the slab mapping is ours.
            let _ = unsafe { sys::unmap(slab.base, slab.len) };
            unreserve_mappings(slab.mappings);
            tally.reserved.fetch_sub(slab.len, Ordering::Relaxed);
        }
        self.free.clear();
        self.empty.clear();
    }

    /// Mappings this class's slabs hold.
    pub(crate) fn mappings(&self) -> usize {
        self.slabs.iter().map(|s| s.mappings).sum()
    }

    /// Bytes reserved by this class's slabs.
    pub(crate) fn reserved(&self) -> usize {
        self.slabs.iter().map(|s| s.len).sum()
    }

    /// `(base, carved bytes)` of each slab, for resident-memory scans.
    pub(crate) fn carved_ranges(&self, stride: usize) -> Vec<(usize, usize)> {
        let last = self.slabs.len().saturating_sub(1);
        self.slabs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let carved = if i == last { self.next } else { s.slots };
                (s.base, carved * stride)
            })
            .collect()
    }
}

/// Maps, configures and registers a new slab for `class`.
fn map_slab(class: SizeClass, cfg: &Config, tally: &PoolTally) -> Result<Slab, PoolError> {
    let stride = cfg.stride(class);
    let slots = (cfg.slab_bytes / stride).max(1);
    let len = slots * stride;
    if !reserve_bounded(&tally.reserved, len, cfg.max_reserved_bytes) {
        return Err(PoolError::LimitReached {
            limit: Limit::ReservedBytes,
            value: cfg.max_reserved_bytes,
        });
    }
    if let Err(e) = reserve_mappings(1, cfg) {
        tally.reserved.fetch_sub(len, Ordering::Relaxed);
        return Err(e);
    }
    let undo = |e: PoolError| {
        unreserve_mappings(1);
        tally.reserved.fetch_sub(len, Ordering::Relaxed);
        e
    };
    let base =
        sys::map_reserve(len).map_err(|source| undo(PoolError::Mmap { bytes: len, source }))?;
    // Without THP support the kernel rejects the advice; nothing to prevent.
    let _ = sys::no_huge_pages(base, len);
    if let Some(node) = cfg.numa_node {
        if let Err(source) = sys::mbind_node(base, len, node) {
            // SAFETY: the slab was just mapped here and is not shared.
            let _ = unsafe { sys::unmap(base, len) };
            return Err(undo(PoolError::Numa { node, source }));
        }
    }
    let reg = registry::register(base, len, class.index());
    Ok(Slab {
        base,
        len,
        slots,
        mappings: 1,
        reg,
    })
}
