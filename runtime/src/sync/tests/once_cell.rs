//! `sync::OnceCell` on plain threads and on coroutines.

use super::{runtime, wait_for, DropCounter};
use crate::sync::OnceCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

static GREETING: OnceCell<String> = OnceCell::new();

#[test]
fn a_static_cell_is_set_once() {
    assert_eq!(GREETING.get(), None);
    assert_eq!(GREETING.get_or_init(|| "hi".into()), "hi");
    assert_eq!(GREETING.get_or_init(|| unreachable!("set already")), "hi");
}

#[test]
fn an_initialiser_that_suspends_does_not_block_its_worker() {
    // One worker: the second caller runs on the same thread while the
    // first is suspended inside its initialiser. With a thread-blocking
    // once cell the worker would block and the first never resume.
    let rt = runtime(1);
    let cell = Arc::new(OnceCell::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let first = {
        let (cell, runs) = (cell.clone(), runs.clone());
        rt.spawn(move || {
            *cell.get_or_init(|| {
                runs.fetch_add(1, Ordering::SeqCst);
                crate::sleep(Duration::from_millis(20));
                41
            }) + 1
        })
    };
    wait_for("the first initialiser to start", || {
        runs.load(Ordering::SeqCst) == 1
    });
    let second = {
        let cell = cell.clone();
        rt.spawn(move || *cell.get_or_init(|| unreachable!("the first one runs")))
    };
    assert_eq!(first.join().unwrap(), 42);
    assert_eq!(second.join().unwrap(), 41);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn racing_coroutines_and_threads_run_one_initialiser() {
    for _ in 0..20 {
        let rt = runtime(2);
        let cell = Arc::new(OnceCell::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let init = {
            let runs = runs.clone();
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                std::thread::yield_now();
                7u32
            }
        };
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cell, init) = (cell.clone(), init.clone());
                rt.spawn(move || *cell.get_or_init(init))
            })
            .collect();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (cell, init) = (cell.clone(), init.clone());
                thread::spawn(move || *cell.get_or_init(init))
            })
            .collect();
        for t in tasks {
            assert_eq!(t.join().unwrap(), 7);
        }
        for t in threads {
            assert_eq!(t.join().unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_failed_initialiser_leaves_the_cell_to_the_next_caller() {
    let cell = Arc::new(OnceCell::<u8>::new());
    let c2 = cell.clone();
    let panicked = thread::spawn(move || {
        c2.get_or_init(|| panic!("init failed"));
    })
    .join();
    assert!(panicked.is_err());
    assert_eq!(cell.get(), None);
    assert_eq!(cell.get_or_try_init(|| Err("no")), Err("no"));
    assert_eq!(cell.get(), None);
    assert_eq!(cell.get_or_init(|| 3), &3);
}

#[test]
fn a_waiter_takes_over_when_the_initialiser_panics() {
    let rt = runtime(1);
    let cell = Arc::new(OnceCell::new());
    let started = Arc::new(AtomicUsize::new(0));
    let failing = {
        let (cell, started) = (cell.clone(), started.clone());
        rt.spawn(move || {
            *cell.get_or_init(|| {
                started.fetch_add(1, Ordering::SeqCst);
                crate::sleep(Duration::from_millis(20));
                panic!("the first initialiser fails");
            })
        })
    };
    wait_for("the first initialiser to start", || {
        started.load(Ordering::SeqCst) == 1
    });
    let waiter = {
        let cell = cell.clone();
        rt.spawn(move || *cell.get_or_init(|| 5u8))
    };
    assert!(failing.join().unwrap_err().is_panic());
    assert_eq!(waiter.join().unwrap(), 5);
}

#[test]
fn set_into_inner_and_drop_handle_the_value_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let cell = OnceCell::new();
    assert!(cell.set(DropCounter(drops.clone())).is_ok());
    let again = cell.set(DropCounter(drops.clone()));
    assert!(again.is_err());
    drop(again);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the refused value");
    let v = cell.into_inner();
    assert!(v.is_some());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(v);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    let mut cell = OnceCell::new();
    cell.set(DropCounter(drops.clone())).unwrap();
    assert!(cell.get_mut().is_some());
    drop(cell);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    assert_eq!(format!("{:?}", OnceCell::<u8>::new()), "OnceCell(<unset>)");
}
