//! Waiting on several receivers at once: Go's `select` over receive cases,
//! crossbeam's `Select::ready`.
//!
//! ```text
//!   ready(): scan from `next` ─ one ready? ──────────────────────────▶ its index
//!              │ none
//!              ▼
//!            register the task's unparker in every receiver's hand-off slot
//!            (the same registration a parked `recv` makes; stop at one found
//!            ready meanwhile) ─▶ park ─▶ withdraw every registration
//!              │ one was claimed by a sender (or the last sender's drop)? ─▶ its index
//!              ▼ none (spurious wake-up or deadline)
//!            scan again, or give up at the deadline
//! ```
//!
//! A sender that finds a registration claims it and hands its value into
//! that receiver's slot, exactly as for a parked `recv`. If two channels
//! are claimed before the task withdraws, the one not chosen keeps the
//! value in its slot, and the next receive on it takes that value first
//! (`handoff.rs` rule 5): nothing is lost and per-channel order holds.
//!
//! The scan starts after the index chosen last, so channels that are always
//! ready take turns (Go picks at random among ready cases; a rotation gives
//! the same fairness without a random number).

use super::chan::Chan;
use super::Receiver;
use crate::sync::error::ReadyTimeoutError;
use crate::sync::wait::{self, deadline_after, expired};
use std::fmt;
use std::time::{Duration, Instant};

/// What `Select` needs of a receiver, whatever its message type.
trait Selectable {
    fn select_ready(&self) -> bool;
    fn select_register(&self) -> bool;
    fn select_withdraw(&self) -> bool;
}

impl<T> Selectable for Chan<T> {
    fn select_ready(&self) -> bool {
        Chan::select_ready(self)
    }
    fn select_register(&self) -> bool {
        Chan::select_register(self)
    }
    fn select_withdraw(&self) -> bool {
        Chan::select_withdraw(self)
    }
}

/// Waits until one of several [`Receiver`]s is ready: Go's `select` over
/// receive cases.
///
/// Add receivers with [`recv`](Select::recv), which returns each one's
/// index, then wait with [`ready`](Select::ready) (or
/// [`ready_timeout`](Select::ready_timeout), or check with
/// [`try_ready`](Select::try_ready)). The index returned names a receiver
/// whose `try_recv` will not fail with [`Empty`](super::TryRecvError::Empty):
/// it returns a value, or [`Disconnected`](super::TryRecvError::Disconnected)
/// once every sender is gone and nothing is left. A coroutine suspends while
/// it waits, a plain thread blocks. Receivers of different message types
/// can be mixed.
///
/// Readiness, not a receive: `ready` takes no value out. A value handed to
/// a receiver that was not chosen stays there for its next receive, so no
/// message is lost; but a sender on a rendezvous channel (capacity 0) may
/// have returned from `send` for a value the selecting task has not taken
/// yet (as if one receive had been cut short, see [`channel`](super::channel)).
/// When several receivers are ready, they take turns.
///
/// A `Select` borrows its receivers, which are `!Sync`, so it stays with
/// the task that made it:
///
/// ```compile_fail
/// fn is_send<T: Send>() {}
/// is_send::<pinstack::sync::mpsc::Select<'static>>();
/// ```
///
/// # Panics
///
/// `ready` panics if no receiver was added: it would wait forever.
///
/// # Examples
///
/// A worker that serves jobs until told to stop, whichever comes first:
///
/// ```
/// use pinstack::sync::mpsc::{self, Select};
///
/// let rt = pinstack::Runtime::new()?;
/// let (jobs_tx, jobs) = mpsc::channel::<u32>(8);
/// let (stop_tx, stop) = mpsc::channel::<()>(1);
/// let worker = rt.spawn(move || {
///     let mut done = 0;
///     let mut sel = Select::new();
///     let job = sel.recv(&jobs);
///     let quit = sel.recv(&stop);
///     loop {
///         let i = sel.ready();
///         if i == job {
///             match jobs.try_recv() {
///                 Ok(n) => done += n,
///                 Err(_) => break, // every job sender is gone
///             }
///         } else if i == quit {
///             break;
///         }
///     }
///     done
/// });
/// for n in 1..=3 {
///     jobs_tx.send(n)?;
/// }
/// drop(jobs_tx);
/// assert_eq!(worker.join()?, 6);
/// drop(stop_tx);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Select<'a> {
    /// Receivers by index; `None` once removed.
    handles: Vec<Option<&'a dyn Selectable>>,
    /// Where the next scan starts: after the index chosen last.
    next: usize,
}

impl<'a> Select<'a> {
    /// An empty selection.
    pub fn new() -> Select<'a> {
        Select {
            handles: Vec::new(),
            next: 0,
        }
    }

    /// Adds `rx` and returns its index (0 for the first, then 1, ...).
    ///
    /// # Panics
    ///
    /// If `rx` was added already (one receive registration per receiver).
    pub fn recv<T>(&mut self, rx: &'a Receiver<T>) -> usize {
        let chan: &'a dyn Selectable = &*rx.chan;
        if let Some(i) = self
            .handles
            .iter()
            .position(|h| h.is_some_and(|h| std::ptr::addr_eq(h, chan)))
        {
            panic!("Select::recv: this receiver was added already, as index {i}");
        }
        self.handles.push(Some(chan));
        self.handles.len() - 1
    }

    /// Removes the receiver of `index` (other indices stay as they are),
    /// as a Go program sets a closed channel's variable to `nil`: a
    /// disconnected receiver is always ready, and a coroutine that keeps
    /// choosing it never suspends, so the other tasks of its worker would
    /// not run.
    ///
    /// # Panics
    ///
    /// If `index` was not returned by [`recv`](Select::recv) or was
    /// removed already.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc::{self, Select, TryRecvError};
    ///
    /// let (tx_a, a) = mpsc::channel::<u8>(1);
    /// let (tx_b, b) = mpsc::channel::<u8>(1);
    /// let mut sel = Select::new();
    /// let ia = sel.recv(&a);
    /// let ib = sel.recv(&b);
    /// drop(tx_a);
    /// assert_eq!(sel.ready(), ia);
    /// assert_eq!(a.try_recv(), Err(TryRecvError::Disconnected));
    /// sel.remove(ia);
    /// tx_b.send(1).unwrap();
    /// assert_eq!(sel.ready(), ib);
    /// ```
    pub fn remove(&mut self, index: usize) {
        let h = self.handles.get_mut(index).and_then(Option::take);
        assert!(
            h.is_some(),
            "Select::remove({index}): no such receiver (never added, or removed already)"
        );
    }

    /// The index of a ready receiver, if one is ready now; never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc::{self, Select};
    ///
    /// let (_tx_a, a) = mpsc::channel::<u8>(1);
    /// let (tx_b, b) = mpsc::channel::<&str>(1);
    /// let mut sel = Select::new();
    /// sel.recv(&a);
    /// let ib = sel.recv(&b);
    /// assert_eq!(sel.try_ready(), None);
    /// tx_b.send("hi").unwrap();
    /// assert_eq!(sel.try_ready(), Some(ib));
    /// assert_eq!(b.try_recv(), Ok("hi"));
    /// ```
    pub fn try_ready(&mut self) -> Option<usize> {
        let i = self.scan()?;
        Some(self.chose(i))
    }

    /// Waits until a receiver is ready and returns its index.
    ///
    /// # Panics
    ///
    /// If no receiver was added.
    pub fn ready(&mut self) -> usize {
        match self.wait(None) {
            Some(i) => i,
            None => unreachable!("a wait without a deadline ends only with a ready receiver"),
        }
    }

    /// Waits at most `timeout` for a receiver to be ready.
    ///
    /// # Errors
    ///
    /// [`ReadyTimeoutError`] if none was ready in time.
    ///
    /// # Panics
    ///
    /// If no receiver was added.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc::{self, Select};
    /// use std::time::Duration;
    ///
    /// let (_tx, rx) = mpsc::channel::<u8>(1);
    /// let mut sel = Select::new();
    /// sel.recv(&rx);
    /// assert!(sel.ready_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn ready_timeout(&mut self, timeout: Duration) -> Result<usize, ReadyTimeoutError> {
        match deadline_after(timeout) {
            Some(d) => self.ready_deadline(d),
            None => Ok(self.ready()),
        }
    }

    /// Waits until `deadline` at most for a receiver to be ready.
    ///
    /// # Errors
    ///
    /// [`ReadyTimeoutError`] if none was ready in time.
    ///
    /// # Panics
    ///
    /// If no receiver was added.
    pub fn ready_deadline(&mut self, deadline: Instant) -> Result<usize, ReadyTimeoutError> {
        self.wait(Some(deadline)).ok_or(ReadyTimeoutError)
    }

    /// Receivers added and not removed.
    pub fn len(&self) -> usize {
        self.handles.iter().flatten().count()
    }

    /// Whether no receiver is left to wait on.
    pub fn is_empty(&self) -> bool {
        self.handles.iter().all(Option::is_none)
    }

    /// Indices in scan order: from `next`, wrapping around.
    fn order(&self) -> impl Iterator<Item = (usize, &'a dyn Selectable)> + '_ {
        live_from(&self.handles, self.next)
    }

    fn scan(&self) -> Option<usize> {
        self.order().find(|(_, h)| h.select_ready()).map(|(i, _)| i)
    }

    fn chose(&mut self, i: usize) -> usize {
        self.next = i + 1;
        i
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Option<usize> {
        assert!(
            !self.is_empty(),
            "Select::ready with no receivers would wait forever: add one with Select::recv"
        );
        loop {
            if let Some(i) = self.scan() {
                return Some(self.chose(i));
            }
            if expired(deadline) {
                return None;
            }
            let mut regs = Registrations {
                handles: &self.handles,
                start: self.next,
                count: 0,
            };
            let mut found = None;
            for (i, h) in self.order() {
                if h.select_register() {
                    regs.count += 1;
                } else {
                    found = Some(i);
                    break;
                }
            }
            if found.is_none() {
                wait::park_until(deadline);
            }
            // Withdraw every registration; a claimed one is ready. Any
            // channel that became ready while registered claimed its
            // registration (`handoff.rs` rule 4), so finding none claimed
            // means a spurious wake-up or the deadline: scan again.
            let claimed = regs.withdraw();
            drop(regs);
            if let Some(i) = found.or(claimed) {
                return Some(self.chose(i));
            }
        }
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("receivers", &self.len())
            .finish_non_exhaustive()
    }
}

/// The receivers not removed, with their indices, starting at index
/// `start % len` and wrapping around.
fn live_from<'s, 'a>(
    handles: &'s [Option<&'a dyn Selectable>],
    start: usize,
) -> impl Iterator<Item = (usize, &'a dyn Selectable)> + 's {
    let n = handles.len();
    let start = start % n.max(1);
    (0..n).filter_map(move |k| {
        let i = (start + k) % n;
        handles[i].map(|h| (i, h))
    })
}

/// The registrations of one wait (the first `count` live receivers in
/// scan order from `start`), withdrawn on every way out: normally by
/// [`withdraw`](Registrations::withdraw), and by `Drop` if the coroutine is
/// unwound while parked (runtime shutdown), so no slot keeps the task's
/// unparker.
struct Registrations<'s, 'a> {
    handles: &'s [Option<&'a dyn Selectable>],
    start: usize,
    count: usize,
}

impl Registrations<'_, '_> {
    /// Withdraws them all (once: `count` drops to 0); returns the first
    /// (in scan order) that a sender claimed.
    fn withdraw(&mut self) -> Option<usize> {
        let count = std::mem::take(&mut self.count);
        let mut claimed = None;
        for (i, h) in live_from(self.handles, self.start).take(count) {
            if !h.select_withdraw() && claimed.is_none() {
                claimed = Some(i);
            }
        }
        claimed
    }
}

impl Drop for Registrations<'_, '_> {
    fn drop(&mut self) {
        self.withdraw();
    }
}
