//! `pinstack::signal`: real signals sent to this test process with
//! `kill(2)`, received by coroutines and threads.

use pinstack::signal::{Signals, SIGHUP, SIGUSR1, SIGUSR2};
use pinstack::Runtime;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

fn rt() -> Runtime {
    Runtime::builder()
        .worker_threads(2)
        .ignore_environment()
        .build()
        .unwrap()
}

fn raise(sig: i32) {
    // SAFETY: `kill` has no memory preconditions; the signal is one the
    // test installed a handler for before sending it.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

#[test]
fn a_coroutine_receives_each_delivery() {
    let rt = rt();
    let signals = Signals::new(&[SIGUSR1, SIGUSR2]).unwrap();
    assert_eq!(signals.try_recv().unwrap(), None);
    let (tx, rx) = pinstack::sync::mpsc::channel(1);
    let receiver = rt.spawn(move || -> std::io::Result<()> {
        for _ in 0..3 {
            tx.send(signals.recv()?).unwrap();
        }
        Ok(())
    });
    // One at a time: the kernel merges a standard signal sent again before
    // the first was handled.
    for sig in [SIGUSR1, SIGUSR2, SIGUSR1] {
        raise(sig);
        assert_eq!(rx.recv(), Ok(sig));
    }
    receiver.join().unwrap().unwrap();
}

#[test]
fn two_sets_of_the_same_signal_both_get_it_and_a_timeout_times_out() {
    let a = Signals::new(&[SIGHUP]).unwrap();
    let b = Signals::new(&[SIGHUP]).unwrap();
    let d = Duration::from_millis(20);
    let start = Instant::now();
    let e = a.recv_timeout(d).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(start.elapsed() >= d);
    raise(SIGHUP);
    // A plain thread blocks in poll(2) for it.
    assert_eq!(a.recv().unwrap(), SIGHUP);
    assert_eq!(b.recv_timeout(Duration::from_secs(60)).unwrap(), SIGHUP);
    assert_eq!(a.try_recv().unwrap(), None);
}

#[test]
fn signals_that_cannot_be_caught_are_refused_with_a_clear_error() {
    for bad in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, 0, 65, -1] {
        let e = Signals::new(&[bad]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
        assert!(e.to_string().contains("cannot be caught"), "{e}");
    }
    let e = Signals::new(&[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}
