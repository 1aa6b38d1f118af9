//! Both guard mechanisms: guard pages are inaccessible (the kernel refuses
//! to read them), and the mapping cost is what each mode promises, counted
//! in /proc/self/maps.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};

use pinstack_stackpool::{GuardMode, PooledStack, StackPool};

/// Whether the kernel can read one byte at `addr` (`write(2)` from it into
/// a pipe fails with EFAULT for a guard page, without any signal).
fn kernel_can_read(addr: usize) -> bool {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) returns.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe(2) just returned these descriptors; we own them now.
    let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: write(2) only reads from `addr`; an inaccessible address makes
    // it fail with EFAULT instead of faulting.
    let n = unsafe { libc::write(w.as_raw_fd(), addr as *const libc::c_void, 1) };
    drop((r, w));
    if n == 1 {
        return true;
    }
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EFAULT)
    );
    false
}

/// Lines of /proc/self/maps that overlap `[lo, hi)`.
fn mappings_overlapping(lo: usize, hi: usize) -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| {
            let range = l.split_whitespace().next().unwrap();
            let (s, e) = range.split_once('-').unwrap();
            let s = usize::from_str_radix(s, 16).unwrap();
            let e = usize::from_str_radix(e, 16).unwrap();
            s < hi && e > lo
        })
        .count()
}

fn span(stacks: &[PooledStack]) -> (usize, usize) {
    let lo = stacks.iter().map(|s| s.guard_range().start).min().unwrap();
    let hi = stacks.iter().map(|s| s.usable_range().end).max().unwrap();
    (lo, hi)
}

fn check_guards(mode: GuardMode) -> (StackPool, Vec<PooledStack>) {
    let pool = StackPool::builder().guard(mode).build().unwrap();
    assert_eq!(pool.guard_mode(), mode);
    let stacks: Vec<_> = (0..200).map(|_| pool.acquire(8 * 1024).unwrap()).collect();
    for s in &stacks {
        assert!(
            !kernel_can_read(s.guard_range().start),
            "{mode:?}: guard readable"
        );
        assert!(
            !kernel_can_read(s.guard_range().end - 1),
            "{mode:?}: guard readable"
        );
        assert!(
            kernel_can_read(s.usable_range().start),
            "{mode:?}: stack unreadable"
        );
        assert!(
            kernel_can_read(s.usable_range().end - 1),
            "{mode:?}: stack unreadable"
        );
    }
    (pool, stacks)
}

#[test]
fn madvise_guards_fault_and_do_not_split_the_mapping() {
    let (pool, stacks) = check_guards(GuardMode::Madvise);
    let (lo, hi) = span(&stacks);
    // 200 guarded stacks in one slab: one mapping (possibly merged with a
    // neighbouring slab, still one line).
    assert_eq!(mappings_overlapping(lo, hi), 1);
    let s = pool.stats();
    assert_eq!(s.slabs, 1);
    assert_eq!(s.mappings_created, 1);
    // Released and reacquired stacks keep their guards.
    drop(stacks);
    let again: Vec<_> = (0..200).map(|_| pool.acquire(8 * 1024).unwrap()).collect();
    for s in &again {
        assert!(!kernel_can_read(s.guard_range().start));
    }
    pool.trim();
    assert_eq!(pool.stats().fresh_carves, 200);
}

#[test]
fn mprotect_guards_fault_and_cost_two_mappings_each() {
    let (pool, stacks) = check_guards(GuardMode::Mprotect);
    let (lo, hi) = span(&stacks);
    // guard, stack, guard, stack, ...: one line each.
    assert_eq!(mappings_overlapping(lo, hi), 400);
    let s = pool.stats();
    assert_eq!(s.mappings_created, 1 + 2 * 200);
    drop(stacks);
    drop(pool);
}

#[test]
fn trimmed_slots_keep_their_guards_in_both_modes() {
    for mode in [GuardMode::Madvise, GuardMode::Mprotect] {
        let pool = StackPool::builder().guard(mode).build().unwrap();
        let s = pool.acquire(0).unwrap();
        let guard = s.guard_range().start;
        drop(s);
        pool.trim();
        assert_eq!(pool.stats().released_to_os, 1);
        let s = pool.acquire(0).unwrap();
        assert_eq!(s.guard_range().start, guard);
        assert!(!kernel_can_read(guard), "{mode:?}");
    }
}

#[test]
fn hundred_thousand_guarded_stacks_fit_under_the_default_map_count() {
    // corosensei's DefaultStack stops near 32,750 (two mappings each) under
    // the default vm.max_map_count of 65,530; guards that do not split the
    // mapping cost one mapping per 64 MiB slab.
    let pool = StackPool::new().unwrap();
    if pool.guard_mode() != GuardMode::Madvise {
        eprintln!("kernel lacks MADV_GUARD_INSTALL: covered by map_count.rs instead");
        return;
    }
    let stacks: Vec<_> = (0..100_000)
        .map(|_| pool.acquire(8 * 1024).unwrap())
        .collect();
    let s = pool.stats();
    assert_eq!(s.live_stacks, 100_000);
    assert_eq!(s.mappings_created, s.slabs);
    // 100,000 slots of 16 KiB (8 KiB class, guard page, color page) fill
    // 25 slabs of 64 MiB.
    assert!(s.slabs <= 25, "{s:?}");
    let (lo, hi) = span(&stacks);
    assert!(mappings_overlapping(lo, hi) <= s.slabs);
    // Only what was touched is resident: nothing, so far.
    assert_eq!(pool.measure_resident_bytes().unwrap(), 0);
}
