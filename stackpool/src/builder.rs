//! `PoolBuilder`: every knob of a pool, validated once in `build()` into an
//! immutable [`Config`] that the hot paths read without synchronisation.

use crate::class::SizeClass;
use crate::error::PoolError;
use crate::pool::StackPool;
use crate::{overflow, sys};

/// How guard pages are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GuardMode {
    /// `Madvise` when the kernel supports it (Linux 6.13+), else `Mprotect`.
    #[default]
    Auto,
    /// `madvise(MADV_GUARD_INSTALL)`: guard pages live inside the slab's one
    /// mapping, so a million guarded stacks cost a few hundred mappings.
    Madvise,
    /// `mprotect(PROT_NONE)` on each guard page: works on every kernel but
    /// splits the mapping, so each stack costs two of the process's
    /// `vm.max_map_count` mappings. The pool counts them and returns
    /// [`PoolError::MapCountExhausted`] before the limit.
    Mprotect,
}

/// Default address space per slab: 64 MiB (5,461 stacks of the 8 KiB class).
pub(crate) const DEFAULT_SLAB_BYTES: usize = 64 << 20;
/// Default bound of each per-thread, per-class cache.
pub(crate) const DEFAULT_THREAD_CACHE: usize = 64;
/// Default bound of each shared per-class free list.
pub(crate) const DEFAULT_SHARED_CACHE: usize = 1024;
/// Default resident bytes a released stack may keep.
pub(crate) const DEFAULT_RESIDENT_TARGET: usize = 64 << 10;
/// Largest accepted per-thread cache bound.
const MAX_THREAD_CACHE: usize = 1 << 16;

/// Builds a [`StackPool`]. Every setting has a default suited to a server
/// with many connections; see each method.
///
/// ```
/// use pinstack_stackpool::{GuardMode, SizeClass, StackPool};
///
/// let pool = StackPool::builder()
///     .max_stacks(100_000)
///     .guard(GuardMode::Auto)
///     .thread_cache_per_class(32)
///     .resident_target_for(SizeClass::MAX, 1 << 20)
///     .sample_every(1000)
///     .build()?;
/// let stack = pool.acquire(16 * 1024)?;
/// assert_eq!(stack.class().usable_bytes(), 16 * 1024);
/// # Ok::<(), pinstack_stackpool::PoolError>(())
/// ```
#[derive(Clone, Debug)]
pub struct PoolBuilder {
    max_stacks: usize,
    max_reserved_bytes: usize,
    guard: GuardMode,
    max_map_count: Option<usize>,
    slab_bytes: usize,
    thread_cache_per_class: usize,
    shared_cache_per_class: usize,
    resident_target: [usize; SizeClass::COUNT],
    sample_every: u32,
    numa_node: Option<usize>,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder {
            max_stacks: usize::MAX,
            max_reserved_bytes: usize::MAX,
            guard: GuardMode::Auto,
            max_map_count: None,
            slab_bytes: DEFAULT_SLAB_BYTES,
            thread_cache_per_class: DEFAULT_THREAD_CACHE,
            shared_cache_per_class: DEFAULT_SHARED_CACHE,
            resident_target: [DEFAULT_RESIDENT_TARGET; SizeClass::COUNT],
            sample_every: 0,
            numa_node: None,
        }
    }
}

impl PoolBuilder {
    /// A builder with the defaults.
    pub fn new() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// Most stacks that may hold memory at once: checked out, or cached in a
    /// thread cache or shared list. Stacks whose memory was given back to the
    /// OS do not count. Default: unlimited.
    pub fn max_stacks(mut self, n: usize) -> Self {
        self.max_stacks = n;
        self
    }

    /// Most bytes of address space the pool's slabs may reserve (reserved,
    /// not resident: only touched pages use memory). Default: unlimited.
    pub fn max_reserved_bytes(mut self, bytes: usize) -> Self {
        self.max_reserved_bytes = bytes;
        self
    }

    /// How guard pages are made. Default [`GuardMode::Auto`].
    pub fn guard(mut self, mode: GuardMode) -> Self {
        self.guard = mode;
        self
    }

    /// Overrides the `vm.max_map_count` value the pool budgets against (in
    /// [`GuardMode::Mprotect`]); `None` (default) reads
    /// `/proc/sys/vm/max_map_count`. The pools of a process together use at
    /// most 7/8 of it, leaving the rest to the process's other mappings.
    pub fn max_map_count(mut self, limit: Option<usize>) -> Self {
        self.max_map_count = limit;
        self
    }

    /// Address space per slab (one `mmap`), rounded down to whole stacks and
    /// up to at least one stack. Default 64 MiB.
    pub fn slab_bytes(mut self, bytes: usize) -> Self {
        self.slab_bytes = bytes;
        self
    }

    /// Stacks each thread keeps per class for reuse without atomics or locks.
    /// 0 sends every release to the shared list. Default 64.
    pub fn thread_cache_per_class(mut self, n: usize) -> Self {
        self.thread_cache_per_class = n;
        self
    }

    /// Stacks the shared list keeps per class, with their pages, beyond the
    /// thread caches; further releases give their pages back to the OS.
    /// Default 1024.
    pub fn shared_cache_per_class(mut self, n: usize) -> Self {
        self.shared_cache_per_class = n;
        self
    }

    /// Resident bytes a released stack of any class may keep (rounded up to
    /// pages, plus the slot's one color page); its deeper pages are given
    /// back with `MADV_DONTNEED` at release. Classes at or below the target
    /// never pay that syscall.
    /// Default 64 KiB.
    pub fn resident_target_bytes(mut self, bytes: usize) -> Self {
        self.resident_target = [bytes; SizeClass::COUNT];
        self
    }

    /// Like [`resident_target_bytes`](Self::resident_target_bytes) for one
    /// class only.
    pub fn resident_target_for(mut self, class: SizeClass, bytes: usize) -> Self {
        self.resident_target[class.index()] = bytes;
        self
    }

    /// Measures stack use on 1 in `n` acquisitions (0 = never, the default).
    /// A sampled stack's pages below its top page are dropped before it is
    /// handed out (the top page is where any coroutine starts, so it counts
    /// in every measurement), and its high-water mark is recorded when it is
    /// released (see
    /// [`PooledStack::touched_bytes`](crate::PooledStack::touched_bytes)).
    pub fn sample_every(mut self, n: u32) -> Self {
        self.sample_every = n;
        self
    }

    /// Binds every slab to this NUMA node (`mbind(MPOL_BIND)`) right after
    /// mapping it. Default `None`: the thread's memory policy applies.
    pub fn numa_node(mut self, node: Option<usize>) -> Self {
        self.numa_node = node;
        self
    }

    /// Validates the settings, resolves the guard mode, installs the
    /// stack-overflow handler (once per process) and creates the pool. No
    /// memory is mapped until the first acquisition.
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidConfig`] for out-of-range settings,
    /// [`PoolError::GuardUnsupported`] for `GuardMode::Madvise` on a kernel
    /// without it, [`PoolError::Io`] when `/proc/sys/vm/max_map_count` or
    /// the signal handler setup fails.
    pub fn build(self) -> Result<StackPool, PoolError> {
        let config = self.into_config()?;
        overflow::install_handler().map_err(PoolError::Io)?;
        Ok(StackPool::from_config(config))
    }

    fn into_config(self) -> Result<Config, PoolError> {
        if self.slab_bytes == 0 {
            return Err(PoolError::InvalidConfig(
                "slab_bytes must be greater than 0",
            ));
        }
        if self.thread_cache_per_class > MAX_THREAD_CACHE {
            return Err(PoolError::InvalidConfig(
                "thread_cache_per_class must be at most 65536",
            ));
        }
        if self.max_stacks == 0 {
            return Err(PoolError::InvalidConfig("max_stacks must be at least 1"));
        }
        if matches!(self.numa_node, Some(n) if n > sys::MAX_NUMA_NODE) {
            return Err(PoolError::InvalidConfig("numa_node must be at most 1023"));
        }
        let guard = match self.guard {
            GuardMode::Mprotect => GuardMode::Mprotect,
            GuardMode::Madvise => {
                if sys::probe_guard_install().map_err(PoolError::Io)? {
                    GuardMode::Madvise
                } else {
                    return Err(PoolError::GuardUnsupported);
                }
            }
            GuardMode::Auto => {
                if sys::probe_guard_install().map_err(PoolError::Io)? {
                    GuardMode::Madvise
                } else {
                    GuardMode::Mprotect
                }
            }
        };
        let max_map_count = match self.max_map_count {
            Some(n) => n,
            None => sys::read_max_map_count().map_err(PoolError::Io)?,
        };
        let page = sys::page_size();
        let mut resident_target = self.resident_target;
        // Plus the color page every slot has above its class size (see
        // `class::usable_for`): without it a class exactly at the target
        // (the runtime's default 64 KiB stacks) would pay an `madvise`, and
        // its TLB shootdown, on every release.
        for t in &mut resident_target {
            *t = (t.saturating_add(page - 1) & !(page - 1)).saturating_add(page);
        }
        Ok(Config {
            max_stacks: self.max_stacks,
            max_reserved_bytes: self.max_reserved_bytes,
            guard,
            map_budget: max_map_count / 8 * 7,
            max_map_count,
            slab_bytes: self.slab_bytes,
            thread_cache_per_class: self.thread_cache_per_class,
            shared_cache_per_class: self.shared_cache_per_class,
            resident_target,
            sample_every: self.sample_every,
            numa_node: self.numa_node,
            page,
        })
    }
}

/// A validated, immutable pool configuration.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) max_stacks: usize,
    pub(crate) max_reserved_bytes: usize,
    /// Resolved: never `Auto`.
    pub(crate) guard: GuardMode,
    pub(crate) max_map_count: usize,
    /// Mappings all pools of the process may hold in `Mprotect` mode.
    pub(crate) map_budget: usize,
    pub(crate) slab_bytes: usize,
    pub(crate) thread_cache_per_class: usize,
    pub(crate) shared_cache_per_class: usize,
    /// Page-rounded resident target per class.
    pub(crate) resident_target: [usize; SizeClass::COUNT],
    pub(crate) sample_every: u32,
    pub(crate) numa_node: Option<usize>,
    /// Page size, which is also the guard size.
    pub(crate) page: usize,
}

impl Config {
    /// Usable bytes of `class`, at least one page.
    #[inline]
    pub(crate) fn usable(&self, class: SizeClass) -> usize {
        crate::class::usable_for(class, self.page)
    }

    /// Guard page plus usable bytes: the distance between slots of `class`.
    #[inline]
    pub(crate) fn stride(&self, class: SizeClass) -> usize {
        crate::class::stride_for(class, self.page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_settings_are_rejected_with_a_reason() {
        let e = PoolBuilder::new().slab_bytes(0).build().unwrap_err();
        assert!(e.to_string().contains("slab_bytes"), "{e}");
        let e = PoolBuilder::new().max_stacks(0).build().unwrap_err();
        assert!(e.to_string().contains("max_stacks"), "{e}");
        let e = PoolBuilder::new()
            .numa_node(Some(5000))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("numa_node"), "{e}");
        let e = PoolBuilder::new()
            .thread_cache_per_class(1 << 20)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("thread_cache_per_class"), "{e}");
    }

    #[test]
    fn resident_targets_are_rounded_up_to_pages_plus_color_and_budget_is_seven_eighths() {
        let cfg = PoolBuilder::new()
            .resident_target_bytes(1)
            .resident_target_for(SizeClass::MAX, 10_000)
            .max_map_count(Some(800))
            .guard(GuardMode::Mprotect)
            .into_config()
            .unwrap();
        let page = sys::page_size();
        // Rounded up to pages, plus the color page.
        assert_eq!(cfg.resident_target[0], 2 * page);
        assert_eq!(
            cfg.resident_target[SizeClass::MAX.index()],
            10_000_usize.div_ceil(page) * page + page
        );
        assert_eq!(cfg.map_budget, 700);
        assert_eq!(cfg.guard, GuardMode::Mprotect);
    }

    #[test]
    fn auto_resolves_to_a_concrete_mode() {
        let cfg = PoolBuilder::new().into_config().unwrap();
        assert_ne!(cfg.guard, GuardMode::Auto);
        let expect = if sys::probe_guard_install().unwrap() {
            GuardMode::Madvise
        } else {
            GuardMode::Mprotect
        };
        assert_eq!(cfg.guard, expect);
    }
}
