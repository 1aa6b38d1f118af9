//! The reaper: where the pidfds of children dropped un-waited go, so that
//! they do not stay zombies for the life of the process.
//!
//! One process-wide thread (`pinstack-reaper`, 64 KiB stack), started at the
//! first adoption of a child that is still running, owns a `mio::Poll`.
//! Adopted pidfds are kept in `State::waiting`, keyed by descriptor number
//! (unique while the descriptor is open, which it is until reaped), and
//! registered with that poll. When one becomes readable the thread reaps it
//! with `waitid(P_PIDFD, WNOHANG)`, deregisters it and closes it. The thread
//! never exits; it sleeps in `epoll_wait` when there is nothing to do.
//!
//! ```text
//!   Child::drop ─▶ adopt(fd) ─┬─ already exited ─▶ reaped at once, fd closed
//!                             └─ running ─▶ lock; waiting.insert; register
//!   reaper thread: poll ─▶ lock; for each event: try_wait ─▶ deregister; close
//! ```
//!
//! Insert-then-register happens under the lock, and the thread looks
//! entries up under the same lock, so an event can never find its entry
//! missing for a child that is still to be reaped. A stale event for a
//! number that was closed and reused by a newer adoption just costs one
//! `WNOHANG` try on the newer child.
//!
//! If the poll or the thread cannot be created (out of descriptors or
//! threads), adopted children stay in `waiting` and every later adoption
//! retries both the start and a `WNOHANG` sweep of what is waiting, so they
//! are reaped late rather than never; nothing panics.

use super::sys;
use crate::loom::sync::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::OnceLock;

struct State {
    /// The poll's registry, once the thread runs.
    registry: Option<mio::Registry>,
    waiting: HashMap<usize, OwnedFd>,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| {
        Mutex::new(State {
            registry: None,
            waiting: HashMap::new(),
        })
    })
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes ownership of the pidfd of an un-reaped child and reaps the child
/// once it exits.
pub(crate) fn adopt(pidfd: OwnedFd) {
    match sys::pidfd_try_wait(pidfd.as_fd()) {
        // Reaped now, or nothing left to reap (someone else did): done.
        Ok(Some(_)) | Err(_) => return,
        Ok(None) => {}
    }
    let mut st = lock(state());
    if st.registry.is_none() {
        sweep(&mut st);
        start(&mut st);
    }
    let key = pidfd.as_raw_fd() as usize;
    if let Some(reg) = &st.registry {
        // A failed registration leaves the child to the next sweep.
        let _ = reg.register(
            &mut mio::unix::SourceFd(&pidfd.as_raw_fd()),
            mio::Token(key),
            mio::Interest::READABLE,
        );
    }
    st.waiting.insert(key, pidfd);
}

/// Reaps whatever has exited among the waiting children (used while the
/// thread is not running).
fn sweep(st: &mut State) {
    st.waiting
        .retain(|_, fd| matches!(sys::pidfd_try_wait(fd.as_fd()), Ok(None)));
}

/// Starts the reaper thread and registers everything already waiting.
fn start(st: &mut State) {
    let Ok(poll) = mio::Poll::new() else { return };
    let Ok(registry) = poll.registry().try_clone() else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("pinstack-reaper".into())
        .stack_size(64 * 1024)
        .spawn(move || run(poll));
    if spawned.is_err() {
        return;
    }
    for (key, fd) in &st.waiting {
        let _ = registry.register(
            &mut mio::unix::SourceFd(&fd.as_raw_fd()),
            mio::Token(*key),
            mio::Interest::READABLE,
        );
    }
    st.registry = Some(registry);
}

fn run(mut poll: mio::Poll) {
    let mut events = mio::Events::with_capacity(64);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                // epoll_wait fails only on a bad descriptor or memory, which
                // cannot happen to a poll we own; do not spin if it does.
                std::thread::sleep(std::time::Duration::from_millis(100));
                sweep(&mut lock(state()));
            }
            continue;
        }
        let mut st = lock(state());
        for ev in events.iter() {
            let key = ev.token().0;
            let done = match st.waiting.get(&key) {
                Some(fd) => !matches!(sys::pidfd_try_wait(fd.as_fd()), Ok(None)),
                None => false,
            };
            if done {
                if let Some(fd) = st.waiting.remove(&key) {
                    if let Some(reg) = &st.registry {
                        let _ = reg.deregister(&mut mio::unix::SourceFd(&fd.as_raw_fd()));
                    }
                }
            }
        }
    }
}
