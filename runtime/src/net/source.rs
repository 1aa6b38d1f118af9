//! The readiness cell every pinstack socket carries, and how a task waits
//! on it.
//!
//! ```text
//!   task (any worker)                    home poller (one worker thread)
//!   -----------------                    -------------------------------
//!   t0 = readiness.load()
//!   read(fd) -> WouldBlock
//!   clear READ bits if tick == t0  <---- event: readiness |= bits, tick += 1
//!   reader = current unparker            wake reader / writer if waiting
//!   re-check readiness -> retry
//!   park(Io)
//! ```
//!
//! The *tick* (upper bits of `readiness`) makes the clear conditional: an
//! event that arrived after the failed syscall bumped the tick, so the stale
//! clear fails and its readiness survives. The re-check after publishing the
//! waiter covers an event landing between the clear and the publish. So
//! readiness is never lost between the failed syscall and the suspension.
//!
//! Registration is lazy and edge-triggered: the first task that gets
//! `WouldBlock` registers the socket with *its* worker's poller (the home
//! poller). Tasks on other workers may wait on the same socket: the event is
//! handled on the home poller's thread and the waiter is unparked on its own
//! worker (a cross-worker wake).
//!
//! The poller's token is the address of the `Source`; the registration owns
//! one strong count, released once the poller can no longer report the token
//! (see `Registration::drop`).

use crate::loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use crate::loom::sync::{Arc, Mutex};
use crate::park::{self, Reason, Unparker};
use crate::scheduler::{self, WorkerHandle};
use std::io;
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub(crate) const READABLE: usize = 1 << 0;
pub(crate) const WRITABLE: usize = 1 << 1;
pub(crate) const READ_CLOSED: usize = 1 << 2;
pub(crate) const WRITE_CLOSED: usize = 1 << 3;
pub(crate) const ERROR: usize = 1 << 4;
const READY_MASK: usize = (1 << 8) - 1;
const TICK_ONE: usize = 1 << 8;

/// Which way a task waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    /// The readiness bits that let a waiter in this direction retry.
    fn bits(self) -> usize {
        match self {
            Direction::Read => READABLE | READ_CLOSED | ERROR,
            Direction::Write => WRITABLE | WRITE_CLOSED | ERROR,
        }
    }

    /// The bits a `WouldBlock` proves stale.
    fn clearable(self) -> usize {
        match self {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        }
    }
}

/// Shared state of one socket: readiness and the two waiters.
#[derive(Debug)]
pub(crate) struct Source {
    readiness: AtomicUsize,
    reader: Mutex<Option<Unparker>>,
    writer: Mutex<Option<Unparker>>,
}

impl Source {
    fn new() -> Source {
        Source {
            readiness: AtomicUsize::new(0),
            reader: Mutex::new(None),
            writer: Mutex::new(None),
        }
    }

    fn waiter(&self, dir: Direction) -> &Mutex<Option<Unparker>> {
        match dir {
            Direction::Read => &self.reader,
            Direction::Write => &self.writer,
        }
    }

    /// Called on the home poller's thread for each event.
    pub(crate) fn on_event(&self, ev: &mio::event::Event) {
        let mut bits = 0;
        if ev.is_readable() {
            bits |= READABLE;
        }
        if ev.is_writable() {
            bits |= WRITABLE;
        }
        if ev.is_read_closed() {
            bits |= READ_CLOSED;
        }
        if ev.is_write_closed() {
            bits |= WRITE_CLOSED;
        }
        if ev.is_error() {
            bits |= ERROR;
        }
        self.on_ready(bits);
    }

    /// Records readiness `bits` (one poller event) and wakes the waiters it
    /// concerns.
    fn on_ready(&self, bits: usize) {
        let mut cur = self.readiness.load(Acquire);
        loop {
            let next = ((cur & !READY_MASK).wrapping_add(TICK_ONE)) | (cur & READY_MASK) | bits;
            match self
                .readiness
                .compare_exchange_weak(cur, next, AcqRel, Acquire)
            {
                Ok(_) => break,
                Err(a) => cur = a,
            }
        }
        for dir in [Direction::Read, Direction::Write] {
            if bits & dir.bits() != 0 {
                let w = lock(self.waiter(dir)).take();
                if let Some(w) = w {
                    w.unpark();
                }
            }
        }
    }

    /// After a `WouldBlock` on a registered socket, with `observed` the
    /// readiness loaded before the syscall: clears the stale readiness and
    /// publishes the caller as the waiter. Returns true if readiness arrived
    /// meanwhile (the caller retries at once instead of parking); else the
    /// caller parks, and an event wakes it.
    fn prepare_wait(&self, dir: Direction, observed: usize) -> bool {
        self.clear(dir, observed);
        self.set_waiter(dir);
        if self.readiness.load(Acquire) & dir.bits() != 0 {
            self.clear_waiter(dir);
            return true;
        }
        false
    }

    fn clear(&self, dir: Direction, observed: usize) {
        let _ =
            self.readiness
                .compare_exchange(observed, observed & !dir.clearable(), AcqRel, Acquire);
    }

    /// Publishes the current task (or thread) as the waiter in `dir`. A
    /// different previous waiter is unparked so it re-checks (two tasks
    /// reading one socket each still make progress, never sleep forever).
    fn set_waiter(&self, dir: Direction) {
        let me = park::current();
        let prev = lock(self.waiter(dir)).replace(me.clone());
        if let Some(prev) = prev {
            if !prev.same_target(&me) {
                prev.unpark();
            }
        }
    }

    fn clear_waiter(&self, dir: Direction) {
        let mut w = lock(self.waiter(dir));
        if w.as_ref().is_some_and(|w| w.same_target(&park::current())) {
            *w = None;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> crate::loom::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A socket's registration: its `Source`, and the poller it is registered
/// with (set once, by the first task that had to wait).
#[derive(Debug)]
pub(crate) struct Registration {
    fd: RawFd,
    source: Arc<Source>,
    home: OnceLock<Arc<WorkerHandle>>,
}

/// How long an I/O call may wait for readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// As long as it takes.
    Never,
    /// Until this instant (`connect_timeout`, `Child::wait_timeout`).
    At(Instant),
    /// This long from when the call first has to wait (a socket's read or
    /// write timeout, as `SO_RCVTIMEO` counts it). The clock is read only
    /// then: a call that completes at once reads no clock, which matters
    /// on hot sockets with a timeout set (a writer polling a close flag,
    /// a reader with an idle timeout).
    After(Duration),
}

impl Limit {
    /// Whether the limit has passed. The first call turns `After` into the
    /// instant it ends (and has not passed yet).
    fn expired(&mut self) -> bool {
        match *self {
            Limit::Never => false,
            Limit::At(d) => Instant::now() >= d,
            Limit::After(t) => {
                *self = Limit::At(Instant::now() + t);
                false
            }
        }
    }

    /// The instant it ends; called after [`expired`](Limit::expired).
    fn deadline(&self) -> Option<Instant> {
        match *self {
            Limit::Never => None,
            Limit::At(d) => Some(d),
            Limit::After(t) => Some(Instant::now() + t),
        }
    }
}

/// A socket's read or write timeout (`set_read_timeout` and friends), set
/// from any thread and read by each call: nanoseconds, 0 for none.
#[derive(Debug)]
pub(crate) struct Timeout(AtomicU64);

impl Default for Timeout {
    fn default() -> Timeout {
        Timeout(AtomicU64::new(0))
    }
}

impl Timeout {
    /// Sets it, refusing a zero duration as std does.
    pub(crate) fn set(&self, d: Option<Duration>) -> io::Result<()> {
        let ns = match d {
            None => 0,
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a zero timeout is not allowed (as in std): use None for no timeout",
                ))
            }
            Some(d) => d.as_nanos().min(u64::MAX as u128) as u64,
        };
        self.0.store(ns, Relaxed);
        Ok(())
    }

    /// The timeout, `None` for none.
    pub(crate) fn get(&self) -> Option<Duration> {
        match self.0.load(Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// The limit of one call: this long from when it first has to wait.
    pub(crate) fn limit(&self) -> Limit {
        self.get().map_or(Limit::Never, Limit::After)
    }
}

impl From<Option<Instant>> for Limit {
    fn from(d: Option<Instant>) -> Limit {
        d.map_or(Limit::Never, Limit::At)
    }
}

impl Registration {
    pub(crate) fn new(fd: RawFd) -> Registration {
        Registration {
            fd,
            source: Arc::new(Source::new()),
            home: OnceLock::new(),
        }
    }

    /// Runs `op` until it does not return `WouldBlock`, waiting for readiness
    /// in `dir` in between, within `limit`.
    pub(crate) fn io<R>(
        &self,
        dir: Direction,
        limit: Limit,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_inner(dir, limit, op, |_| false)
    }

    /// [`io`](Registration::io) for a stream read or write of `want` bytes:
    /// a short transfer (`0 < n < want`) proves the socket drained (or its
    /// send buffer full) as of the syscall, so the readiness it observed is
    /// cleared, and the next call waits for an event instead of making a
    /// syscall that would fail with `WouldBlock` (what tokio does too). The
    /// clear is conditional on the tick, as after `WouldBlock`: an event that
    /// arrived since keeps its readiness.
    pub(crate) fn io_transfer(
        &self,
        dir: Direction,
        limit: Limit,
        want: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.io_inner(dir, limit, op, |&n| n > 0 && n < want)
    }

    /// Waits within `limit` until a read would not return `WouldBlock`
    /// (data, the end of the stream or an error is there), without reading.
    /// Readiness the poller reported is taken at its word, so the answer can
    /// be stale: the next read may still return `WouldBlock`, and clears it
    /// (see [`try_transfer`](Registration::try_transfer)). Before the socket
    /// is registered, a one-byte `MSG_PEEK` asks the kernel.
    pub(crate) fn readable(&self, limit: Limit) -> io::Result<()> {
        let op = || {
            let bit = self.source.readiness.load(Acquire) & Direction::Read.bits();
            if self.home.get().is_some() && bit != 0 {
                return Ok(());
            }
            self.peek_one()
        };
        self.io_inner(Direction::Read, limit, op, |_| false)
    }

    /// `recv(MSG_PEEK | MSG_DONTWAIT)` of one byte: `Ok` if a read would
    /// not block (a byte, or the end of the stream), `WouldBlock` if it
    /// would, or the socket's error.
    fn peek_one(&self) -> io::Result<()> {
        let mut byte = 0u8;
        // SAFETY: `byte` is a valid, writable one-byte buffer for the call;
        // `recv` does not keep the pointer. A closed or foreign descriptor
        // makes the call fail with EBADF/ENOTSOCK, reported as an error.
        let n = unsafe {
            libc::recv(
                self.fd,
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// One attempt at a transfer of `want` bytes in `dir`, without waiting:
    /// `WouldBlock` goes back to the caller. Like a short transfer, it
    /// proves the readiness observed before the syscall stale and clears it,
    /// so the next wait parks instead of trusting it again.
    pub(crate) fn try_transfer(
        &self,
        dir: Direction,
        want: usize,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            let observed = self.source.readiness.load(Acquire);
            let r = op();
            if self.home.get().is_some() {
                let stale = match &r {
                    Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                    Ok(n) => *n > 0 && *n < want,
                };
                if stale {
                    self.source.clear(dir, observed);
                }
            }
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    fn io_inner<R>(
        &self,
        dir: Direction,
        mut limit: Limit,
        mut op: impl FnMut() -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        // A plain thread that poll(2) found ready tries the syscall even if
        // the home poller has not reported the readiness yet.
        let mut polled = false;
        loop {
            let observed = self.source.readiness.load(Acquire);
            let registered = self.home.get().is_some();
            // Once registered, the readiness cell is exact (edge-triggered
            // events since the registration reported the initial state): no
            // bit in `dir` means the last syscall found nothing, and no event
            // came since, so the syscall would fail. Skip it and wait.
            if polled || !registered || observed & dir.bits() != 0 {
                polled = false;
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Ok(r) => {
                        if registered && drained(&r) {
                            self.source.clear(dir, observed);
                        }
                        return Ok(r);
                    }
                    Err(e) => return Err(e),
                }
            }
            if limit.expired() {
                return Err(timed_out(dir));
            }
            let deadline = limit.deadline();
            if !scheduler::in_worker_task() {
                // A plain thread: block in poll(2) on this one descriptor.
                crate::sys::poll_fd(self.fd, dir == Direction::Read, deadline)?;
                polled = true;
                continue;
            }
            self.ensure_registered()?;
            if self.source.prepare_wait(dir, observed) {
                continue; // readiness arrived after the failed syscall
            }
            match deadline {
                Some(d) => park::park_until(Reason::Io, d),
                None => park::park(Reason::Io),
            }
            self.source.clear_waiter(dir);
        }
    }

    fn ensure_registered(&self) -> io::Result<()> {
        if self.home.get().is_some() {
            return Ok(());
        }
        let Some(home) = scheduler::current_worker() else {
            return Ok(());
        };
        // Several tasks may race here; the OnceLock picks one home, and only
        // the winner registers with the poller.
        let mut won = false;
        let home = self.home.get_or_init(|| {
            won = true;
            home
        });
        if !won {
            return Ok(());
        }
        let token = mio::Token(Arc::into_raw(self.source.clone()) as usize);
        let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
        let r = home
            .registry
            .register(&mut mio::unix::SourceFd(&self.fd), token, interest);
        if let Err(e) = r {
            // SAFETY: the pointer came from `Arc::into_raw` just above and the
            // poller never saw it.
            drop(unsafe { Arc::from_raw(token.0 as *const Source) });
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(home) = self.home.get() else { return };
        // After deregistration the poller reports no new events for the fd;
        // only events already fetched by the home worker may still name the
        // token, so the poller's strong count is released by the home worker
        // between polls.
        let _ = home.registry.deregister(&mut mio::unix::SourceFd(&self.fd));
        let token = Arc::as_ptr(&self.source) as usize;
        home.release_source(token);
    }
}

/// Handles one poller event on the home worker's thread.
///
/// # Safety
/// `token` was produced by `ensure_registered` and its strong count has not
/// been released (releases happen only between polls, on this thread).
pub(crate) unsafe fn dispatch(ev: &mio::event::Event) {
    // SAFETY: per the contract, the registration's strong count keeps the
    // `Source` alive while the poller can report its token.
    let source = unsafe { &*(ev.token().0 as *const Source) };
    source.on_event(ev);
}

/// Releases the poller's strong count of a deregistered source.
///
/// # Safety
/// `token` came from `ensure_registered`, is deregistered, and is released once.
pub(crate) unsafe fn release(token: usize) {
    // SAFETY: the caller's contract: one `Arc::into_raw` count per token.
    drop(unsafe { Arc::from_raw(token as *const Source) });
}

pub(crate) fn timed_out(dir: Direction) -> io::Error {
    let what = match dir {
        Direction::Read => "read",
        Direction::Write => "write",
    };
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

#[cfg(all(test, pinstack_loom))]
mod tests_loom {
    //! The readiness protocol of a registered socket, with the reader on a
    //! thread (park/unpark through the same `Unparker` a task uses) and the
    //! poller on another. The "socket" is a byte counter: the kernel makes
    //! data available, then the poller dispatches the edge-triggered event
    //! (`on_ready`). The reader follows `Registration::io_inner`: skip the
    //! syscall while the cell says not ready, a short read clears the
    //! readiness it observed, `WouldBlock` goes through `prepare_wait`. A
    //! lost readiness leaves the reader parked forever, which loom reports.
    use super::*;
    use crate::loom::sync::atomic::AtomicUsize;
    use crate::loom::sync::Arc;
    use loom::thread;

    fn read_all(source: &Source, data: &AtomicUsize, want: usize) {
        let dir = Direction::Read;
        let mut got = 0;
        while got < want {
            let observed = source.readiness.load(Acquire);
            if observed & dir.bits() != 0 {
                // The syscall: takes what is there (a buffer larger than
                // anything sent, so every successful read is short).
                let n = data.swap(0, AcqRel);
                if n > 0 {
                    got += n;
                    source.clear(dir, observed);
                    continue;
                }
            }
            if source.prepare_wait(dir, observed) {
                continue;
            }
            park::park(Reason::Io);
            source.clear_waiter(dir);
        }
    }

    /// The kernel queues each of `segments` (bytes) and the poller reports
    /// an edge with `bits` after each, while the reader reads them all.
    fn model(segments: &'static [usize], bits: usize) {
        loom::model(move || {
            let source = Arc::new(Source::new());
            let data = Arc::new(AtomicUsize::new(0));
            let (s, d) = (source.clone(), data.clone());
            let poller = thread::spawn(move || {
                for &n in segments {
                    d.fetch_add(n, AcqRel); // the kernel queues a segment
                    s.on_ready(bits); // the poller reports the edge
                }
            });
            read_all(&source, &data, segments.iter().sum());
            poller.join().expect("poller");
        });
    }

    #[test]
    fn loom_readiness_is_never_lost_with_short_read_clears() {
        model(&[1, 1], READABLE);
    }

    #[test]
    fn loom_event_before_the_first_wait_is_kept() {
        // The event lands while the reader's cell still says "not ready"
        // (it skipped the syscall): the re-check in `prepare_wait` or the
        // wake-up must carry it.
        model(&[3], READABLE | WRITABLE);
    }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::{Limit, Timeout};
    use std::time::{Duration, Instant};

    #[test]
    fn a_relative_limit_starts_when_first_checked() {
        let mut never = Limit::Never;
        assert!(!never.expired());
        assert_eq!(never.deadline(), None);

        let t = Duration::from_millis(50);
        let timeout = Timeout::default();
        assert_eq!(timeout.limit(), Limit::Never);
        assert!(timeout.set(Some(Duration::ZERO)).is_err());
        timeout.set(Some(t)).unwrap();
        assert_eq!(timeout.get(), Some(t));
        let mut after = timeout.limit();
        assert_eq!(after, Limit::After(t));
        let before = Instant::now();
        // The first check fixes the end (and never finds it passed) ...
        assert!(!after.expired());
        let Limit::At(end) = after else {
            panic!("{after:?} was not fixed");
        };
        assert!(end >= before + t && end <= Instant::now() + t);
        assert_eq!(after.deadline(), Some(end));
        // ... later checks compare against it.
        let mut past = Limit::At(Instant::now() - Duration::from_millis(1));
        assert!(past.expired());
        timeout.set(None).unwrap();
        assert_eq!(timeout.limit(), Limit::Never);
        assert_eq!(Limit::from(None), Limit::Never);
        assert_eq!(Limit::from(Some(end)), Limit::At(end));
    }
}
