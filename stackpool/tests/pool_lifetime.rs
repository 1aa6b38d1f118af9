//! A pool's slabs are unmapped once its last handle is gone and every stack
//! came back, whichever thread returns them, including thread exit. One
//! test in its own binary, so no other pool maps memory at the addresses
//! being watched.

use std::sync::mpsc;

use pinstack_stackpool::StackPool;

fn is_mapped(addr: usize) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .any(|l| {
            let range = l.split_whitespace().next().unwrap();
            let (s, e) = range.split_once('-').unwrap();
            let s = usize::from_str_radix(s, 16).unwrap();
            let e = usize::from_str_radix(e, 16).unwrap();
            s <= addr && addr < e
        })
}

#[test]
fn slabs_are_unmapped_when_the_last_handle_and_stack_are_gone() {
    // 1. Last handle dropped on the thread whose cache holds the stacks.
    let pool = StackPool::new().unwrap();
    let addrs: Vec<usize> = (0..3)
        .map(|i| pool.acquire(i * 100 * 1024).unwrap())
        .map(|s| s.usable_range().start)
        .collect();
    assert!(addrs.iter().all(|&a| is_mapped(a)));
    drop(pool);
    for a in &addrs {
        assert!(!is_mapped(*a), "slab at {a:#x} still mapped");
    }

    // 2. A stack outlives every handle and is dropped on another thread.
    let pool = StackPool::new().unwrap();
    let stack = pool.acquire(0).unwrap();
    let addr = stack.usable_range().start;
    let clone = pool.clone();
    drop(pool);
    drop(clone);
    assert!(is_mapped(addr), "freed while a stack was checked out");
    std::thread::spawn(move || drop(stack)).join().unwrap();
    assert!(!is_mapped(addr), "not freed after the last stack returned");

    // 3. Another, still running thread caches the pool's stacks when the
    //    last handle goes: the pool is freed as soon as that thread releases
    //    a stack of it (it notices the pool closed) or exits.
    let pool = StackPool::new().unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    let p = pool.clone();
    let worker = std::thread::spawn(move || {
        let kept = p.acquire(0).unwrap();
        let cached = p.acquire(0).unwrap();
        let addr = cached.usable_range().start;
        drop(cached); // into this thread's cache
        drop(p);
        done_tx.send(addr).unwrap();
        go_rx.recv().unwrap();
        drop(kept); // the pool is closed now: this frees it
        done_tx.send(0).unwrap();
        go_rx.recv().unwrap();
    });
    let addr = done_rx.recv().unwrap();
    drop(pool);
    assert!(is_mapped(addr), "freed while another thread holds a stack");
    go_tx.send(()).unwrap();
    done_rx.recv().unwrap();
    assert!(
        !is_mapped(addr),
        "not freed after the closed pool's last stack returned"
    );
    go_tx.send(()).unwrap();
    worker.join().unwrap();

    // 4. Thread exit returns a cache holding the last references.
    let pool = StackPool::new().unwrap();
    let p = pool.clone();
    let (tx, rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        drop(p.acquire(0).unwrap()); // cached here
        drop(p);
        ready_tx.send(()).unwrap();
        rx.recv().unwrap();
    });
    ready_rx.recv().unwrap(); // the worker's handle is gone: ours is the last
    let stack = pool.acquire(0).unwrap();
    let addr = stack.usable_range().start;
    drop(stack);
    drop(pool);
    tx.send(()).unwrap();
    worker.join().unwrap();
    assert!(
        !is_mapped(addr),
        "not freed after the caching thread exited"
    );
}
