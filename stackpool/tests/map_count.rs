//! The mprotect fallback counts the mappings it creates and stops with a
//! typed, actionable error before `vm.max_map_count` (here a low limit set
//! through the builder). Alone in its binary: the budget is process-wide.

use pinstack_stackpool::{GuardMode, PoolError, StackPool};

#[test]
fn mprotect_pool_stops_before_the_map_count_limit_and_recovers() {
    const LIMIT: usize = 800; // budget = 7/8 = 700 mappings
    let pool = StackPool::builder()
        .guard(GuardMode::Mprotect)
        .max_map_count(Some(LIMIT))
        .build()
        .unwrap();
    let mut held = Vec::new();
    let err = loop {
        match pool.acquire(0) {
            Ok(s) => held.push(s),
            Err(e) => break e,
        }
        assert!(held.len() <= LIMIT, "no error before the limit");
    };
    // One slab (1 mapping) + 2 per guard <= 700: 349 stacks.
    assert_eq!(held.len(), 349, "{err}");
    match &err {
        PoolError::MapCountExhausted {
            mappings,
            budget,
            max_map_count,
        } => {
            assert_eq!(*mappings, 699);
            assert_eq!(*budget, 700);
            assert_eq!(*max_map_count, LIMIT);
        }
        other => panic!("expected MapCountExhausted, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("vm.max_map_count"), "{text}");
    assert!(text.contains("sysctl -w vm.max_map_count="), "{text}");
    assert_eq!(pool.stats().mappings_created, 699);

    // Released stacks are reused without new mappings, so the pool works on.
    let reused = held.pop().unwrap().usable_range();
    assert_eq!(pool.acquire(0).unwrap().usable_range(), reused);

    // Freeing the pool returns its mappings to the budget.
    drop(held);
    drop(pool);
    let pool = StackPool::builder()
        .guard(GuardMode::Mprotect)
        .max_map_count(Some(LIMIT))
        .build()
        .unwrap();
    let again: Vec<_> = (0..349).map(|_| pool.acquire(0).unwrap()).collect();
    assert_eq!(again.len(), 349);
    assert!(matches!(
        pool.acquire(0),
        Err(PoolError::MapCountExhausted { .. })
    ));

    // Slabs count too, in every mode: with one mapping of budget left, a
    // madvise pool whose slabs hold one stack each gets exactly one stack.
    let one_per_slab = StackPool::builder()
        .guard(GuardMode::Auto)
        .slab_bytes(1)
        .max_map_count(Some(LIMIT))
        .build()
        .unwrap();
    if one_per_slab.guard_mode() == GuardMode::Madvise {
        let first = one_per_slab.acquire(0).unwrap();
        assert!(matches!(
            one_per_slab.acquire(0),
            Err(PoolError::MapCountExhausted { .. })
        ));
        drop(first);
    }
    drop(again);
    drop(pool);

    // Madvise guards cost no mappings: 2,000 stacks in one slab, one mapping.
    let madvise = StackPool::builder()
        .guard(GuardMode::Auto)
        .max_map_count(Some(LIMIT))
        .build()
        .unwrap();
    if madvise.guard_mode() == GuardMode::Madvise {
        let many: Vec<_> = (0..2000).map(|_| madvise.acquire(0).unwrap()).collect();
        assert_eq!(madvise.stats().mappings_created, 1);
        drop(many);
    }
}
