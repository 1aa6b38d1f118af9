//! `task::Builder::on_worker`: a task starts on the worker it names and
//! stays there, from inside the runtime and from outside it.

use pinstack::sync::mpsc;
use pinstack::task::{current_worker, Builder, WorkerId};
use pinstack::Runtime;
use std::io::ErrorKind;

fn rt(workers: usize) -> Runtime {
    Runtime::builder()
        .worker_threads(workers)
        .ignore_environment()
        .build()
        .unwrap()
}

/// Where the task ran, checked again after each of a few suspensions.
fn stays_put() -> Option<WorkerId> {
    let first = current_worker();
    for _ in 0..5 {
        pinstack::yield_now();
        pinstack::sleep(std::time::Duration::from_millis(1));
        assert_eq!(current_worker(), first, "a started task moved");
    }
    first
}

#[test]
fn tasks_start_on_the_named_worker_from_outside_and_inside() {
    let rt = rt(3);
    let workers = rt.handle().workers();
    assert_eq!(workers.len(), 3);
    assert_eq!(
        workers.iter().map(|w| w.index()).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    // From outside: 20 tasks on each worker.
    let handle = rt.handle();
    let mut handles = Vec::new();
    for &w in &workers {
        for _ in 0..20 {
            handles.push((w, Builder::new().on_worker(w).spawn_on(stays_put, &handle)));
        }
    }
    for (w, h) in handles {
        assert_eq!(h.unwrap().join().unwrap(), Some(w));
    }
    // From inside: a task on worker 0 starts one on every worker.
    let w0 = workers[0];
    let all = workers.clone();
    let inner = Builder::new()
        .on_worker(w0)
        .spawn_on(
            move || {
                pinstack::task::current_worker()
                    .into_iter()
                    .chain(
                        all.iter()
                            .map(|&w| Builder::new().on_worker(w).spawn(stays_put).unwrap())
                            .map(|h| h.join().unwrap().unwrap()),
                    )
                    .collect::<Vec<_>>()
            },
            &rt.handle(),
        )
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(inner, [w0, workers[0], workers[1], workers[2]]);
}

#[test]
fn a_task_placed_next_to_its_peer_talks_without_leaving_the_worker() {
    let rt = rt(2);
    let (tx, rx) = mpsc::channel::<u32>(1);
    let (back_tx, back_rx) = mpsc::channel::<u32>(1);
    let home = rt.handle().workers()[1];
    let server = Builder::new()
        .on_worker(home)
        .spawn_on(
            move || {
                while let Ok(v) = rx.recv() {
                    back_tx.send(v + 1).unwrap();
                }
                current_worker()
            },
            &rt.handle(),
        )
        .unwrap();
    let client = Builder::new()
        .on_worker(home)
        .spawn_on(
            move || {
                for i in 0..1000 {
                    tx.send(i).unwrap();
                    assert_eq!(back_rx.recv(), Ok(i + 1));
                }
                current_worker()
            },
            &rt.handle(),
        )
        .unwrap();
    assert_eq!(client.join().unwrap(), Some(home));
    assert_eq!(server.join().unwrap(), Some(home));
}

#[test]
fn a_worker_of_another_runtime_is_refused() {
    let a = rt(1);
    let b = rt(1);
    let wa = a.handle().workers()[0];
    let e = Builder::new()
        .on_worker(wa)
        .spawn_on(|| (), &b.handle())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("another runtime"), "{e}");
    assert_eq!(current_worker(), None, "the test thread is no worker");
}
