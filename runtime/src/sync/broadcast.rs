//! A multi-producer, multi-consumer broadcast channel: every receiver gets
//! every value sent after it subscribed (tokio's `sync::broadcast`).
//!
//! Sends never wait. The channel keeps the last `capacity` values; a
//! receiver that falls further behind loses the oldest ones and learns how
//! many with [`RecvError::Lagged`], then goes on from the oldest value
//! still kept. So one slow receiver never holds back the senders or the
//! other receivers, and memory stays bounded.
//!
//! # Layout
//!
//! ```text
//!   State (behind one internal mutex)
//!     ring: VecDeque<Arc<T>>   values seq head .. tail (at most capacity)
//!     head, tail: u64          sequence numbers of the oldest kept / next value
//!     senders, receivers
//!     waiters: WaitList        receivers parked for the next value
//!   Receiver { next: u64 }     the sequence number it reads next
//! ```
//!
//! A value is stored once (`Arc<T>`) and cloned by each receiver after it
//! leaves the lock: the lock never runs user code (`T::clone`, `T::drop`),
//! as for every primitive in [`crate::sync`]. A send wakes every parked
//! receiver (each must see the value).
//!
//! # Examples
//!
//! ```
//! use pinstack::sync::broadcast;
//!
//! let rt = pinstack::Runtime::new()?;
//! let (tx, rx) = broadcast::channel::<String>(16);
//! let members: Vec<_> = (0..3)
//!     .map(|_| {
//!         let mut rx = tx.subscribe();
//!         rt.spawn(move || {
//!             let mut got = Vec::new();
//!             while let Ok(line) = rx.recv() {
//!                 got.push(line);
//!             }
//!             got // ends once every sender is gone
//!         })
//!     })
//!     .collect();
//! drop(rx);
//! tx.send("hello".into())?;
//! tx.send("room".into())?;
//! drop(tx);
//! for m in members {
//!     assert_eq!(m.join()?, ["hello", "room"]);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::wait::{deadline_after, expired, lock};
use super::wait_list::{Registered, WaitList, WakeSet};
use crate::loom::sync::{Arc, Mutex};
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

/// Creates a broadcast channel keeping the last `capacity` values, and its
/// first receiver; more come from [`Sender::subscribe`].
///
/// # Panics
///
/// If `capacity` is 0 (nothing could ever be received).
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        capacity > 0,
        "broadcast::channel(0): a broadcast channel must keep at least one value"
    );
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            ring: VecDeque::new(),
            capacity,
            head: 0,
            tail: 0,
            senders: 1,
            receivers: 1,
            waiters: WaitList::new(),
        }),
    });
    let rx = Receiver {
        shared: shared.clone(),
        next: 0,
    };
    (Sender { shared }, rx)
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    ring: VecDeque<Arc<T>>,
    capacity: usize,
    /// Sequence number of `ring[0]`.
    head: u64,
    /// Sequence number of the next value sent.
    tail: u64,
    senders: usize,
    receivers: usize,
    waiters: WaitList,
}

impl<T> State<T> {
    /// What a receiver at `next` gets now, moving `next` on.
    fn take(&self, next: &mut u64) -> Option<Result<Arc<T>, RecvError>> {
        if *next < self.head {
            let missed = self.head - *next;
            *next = self.head;
            return Some(Err(RecvError::Lagged(missed)));
        }
        if *next < self.tail {
            let v = self.ring[(*next - self.head) as usize].clone();
            *next += 1;
            return Some(Ok(v));
        }
        if self.senders == 0 {
            return Some(Err(RecvError::Closed));
        }
        None
    }
}

/// The sending half; clone it for more senders.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Sends `value` to every receiver; never waits. If the channel already
    /// keeps `capacity` values, the oldest is dropped (receivers that had
    /// not read it get [`RecvError::Lagged`]). Returns how many receivers
    /// there are.
    ///
    /// # Errors
    ///
    /// Hands `value` back if there is no receiver.
    pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
        let mut st = lock(&self.shared.state);
        if st.receivers == 0 {
            return Err(SendError(value));
        }
        st.ring.push_back(Arc::new(value));
        st.tail += 1;
        let dropped = if st.ring.len() > st.capacity {
            st.head += 1;
            st.ring.pop_front()
        } else {
            None
        };
        let mut wakes = WakeSet::new();
        st.waiters.notify_all(0, &mut wakes);
        let receivers = st.receivers;
        drop(st);
        wakes.wake_all();
        drop(dropped); // user code, after unlocking
        Ok(receivers)
    }

    /// A new receiver, which gets the values sent from now on.
    pub fn subscribe(&self) -> Receiver<T> {
        Receiver::at_tail(&self.shared)
    }

    /// Receivers alive now (a snapshot).
    pub fn receiver_count(&self) -> usize {
        lock(&self.shared.state).receivers
    }
}

#[cfg(all(test, not(pinstack_loom)))]
impl<T> Sender<T> {
    /// Receivers parked for the next value (test probe).
    pub(crate) fn parked_receivers(&self) -> usize {
        lock(&self.shared.state).waiters.len()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        lock(&self.shared.state).senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut st = lock(&self.shared.state);
        st.senders -= 1;
        if st.senders > 0 {
            return;
        }
        // The last one: parked receivers wake to find the channel closed.
        let mut wakes = WakeSet::new();
        st.waiters.notify_all(0, &mut wakes);
        drop(st);
        wakes.wake_all();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Sender").finish_non_exhaustive()
    }
}

/// A receiving half: gets every value sent after it was created (by
/// [`channel`] or [`Sender::subscribe`]), unless it lags.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// Sequence number of the next value this receiver reads.
    next: u64,
}

impl<T: Clone> Receiver<T> {
    /// Receives the next value, parking until one is sent.
    ///
    /// # Errors
    ///
    /// [`RecvError::Lagged`] with the number of values this receiver missed
    /// (the next call returns the oldest value still kept), or
    /// [`RecvError::Closed`] once every sender is gone and this receiver has
    /// read everything.
    pub fn recv(&mut self) -> Result<T, RecvError> {
        match self.recv_until(None) {
            Ok(v) => Ok(v),
            Err(RecvTimeoutError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(_) => Err(RecvError::Closed),
        }
    }

    /// Like [`recv`](Receiver::recv), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// As `recv`, plus [`RecvTimeoutError::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(deadline_after(timeout))
    }

    /// The next value if one is there now; never waits.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing new was sent; otherwise as `recv`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::broadcast::{self, TryRecvError};
    ///
    /// let (tx, mut rx) = broadcast::channel(2);
    /// for i in 0..5 {
    ///     tx.send(i).unwrap();
    /// }
    /// // Only the last two are kept: three were missed.
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(3)));
    /// assert_eq!(rx.try_recv(), Ok(3));
    /// assert_eq!(rx.try_recv(), Ok(4));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let got = lock(&self.shared.state).take(&mut self.next);
        match got {
            Some(Ok(v)) => Ok(T::clone(&v)),
            Some(Err(RecvError::Lagged(n))) => Err(TryRecvError::Lagged(n)),
            Some(Err(RecvError::Closed)) => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut st = lock(&self.shared.state);
        loop {
            match st.take(&mut self.next) {
                Some(Ok(v)) => {
                    drop(st);
                    return Ok(T::clone(&v));
                }
                Some(Err(RecvError::Lagged(n))) => return Err(RecvTimeoutError::Lagged(n)),
                Some(Err(RecvError::Closed)) => return Err(RecvTimeoutError::Closed),
                None => {}
            }
            if expired(deadline) {
                return Err(RecvTimeoutError::Timeout);
            }
            st = Registered::push(&self.shared.state, st, |s| &mut s.waiters).wait(deadline);
        }
    }
}

impl<T> Receiver<T> {
    /// A new receiver at the sending end (as [`Sender::subscribe`]); it
    /// does not get the values this one has not read yet.
    pub fn resubscribe(&self) -> Receiver<T> {
        Receiver::at_tail(&self.shared)
    }

    /// A new receiver of `shared`'s channel that reads what is sent next.
    fn at_tail(shared: &Arc<Shared<T>>) -> Receiver<T> {
        let mut st = lock(&shared.state);
        st.receivers += 1;
        let next = st.tail;
        drop(st);
        Receiver {
            shared: shared.clone(),
            next,
        }
    }

    /// Values sent that this receiver has not read yet, counting the ones
    /// it will miss if it lags.
    pub fn len(&self) -> usize {
        let tail = lock(&self.shared.state).tail;
        (tail - self.next) as usize
    }

    /// Whether [`len`](Receiver::len) is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        lock(&self.shared.state).receivers -= 1;
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Receiver")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// [`Sender::send`] found no receiver; the value is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("broadcast send with no receiver: every Receiver was dropped")
    }
}

impl<T> Error for SendError<T> {}

/// Why [`Receiver::recv`] returned no value.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvError {
    /// Every sender is gone and this receiver has read everything.
    Closed,
    /// This receiver fell behind by more than the capacity: this many
    /// values were dropped before it read them. The next receive returns
    /// the oldest value still kept.
    Lagged(u64),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str("broadcast channel closed: every sender was dropped"),
            RecvError::Lagged(n) => write!(f, "broadcast receiver lagged: {n} values missed"),
        }
    }
}

impl Error for RecvError {}

/// Why [`Receiver::try_recv`] returned no value.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing new was sent.
    Empty,
    /// As [`RecvError::Closed`].
    Closed,
    /// As [`RecvError::Lagged`].
    Lagged(u64),
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("broadcast channel empty: nothing new was sent"),
            TryRecvError::Closed => RecvError::Closed.fmt(f),
            TryRecvError::Lagged(n) => RecvError::Lagged(*n).fmt(f),
        }
    }
}

impl Error for TryRecvError {}

/// Why [`Receiver::recv_timeout`] returned no value.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// Nothing was sent before the deadline.
    Timeout,
    /// As [`RecvError::Closed`].
    Closed,
    /// As [`RecvError::Lagged`].
    Lagged(u64),
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on a broadcast channel"),
            RecvTimeoutError::Closed => RecvError::Closed.fmt(f),
            RecvTimeoutError::Lagged(n) => RecvError::Lagged(*n).fmt(f),
        }
    }
}

impl Error for RecvTimeoutError {}
