//! Multi-producer, single-consumer channels whose blocking operations park
//! the calling coroutine (or thread) instead of blocking a worker.
//!
//! The API follows `std::sync::mpsc`: [`channel`] makes a bounded channel
//! whose [`send`](Sender::send) waits for room, [`unbounded`] one whose
//! sends never wait. Both return the same [`Sender`] and [`Receiver`]
//! types.
//!
//! * **Capacity 0** makes a *rendezvous* channel, like Go's unbuffered
//!   `make(chan T)` and `std::sync::mpsc::sync_channel(0)`: `send` returns
//!   once the receiver has taken the value, or has been handed it while
//!   parked in a receive (it then returns with that value), and `try_send`
//!   succeeds only if the receiver is parked in a receive at that moment.
//! * **Order**: values from one sender arrive in the order sent. Senders
//!   parked on a full channel are served first come, first served: a parked
//!   sender's value waits in its wait slot, and each receive moves the
//!   oldest one into the freed room (and wakes its sender) without waiting
//!   for that sender to run, as Go's channels do.
//! * **Disconnection**: once every `Sender` is dropped, the receiver gets
//!   the values still queued and then [`RecvError`]; a parked receive wakes
//!   for it. Once the `Receiver` is dropped, sends fail with the value
//!   handed back, parked senders wake, and queued values are dropped.
//! * **Cost**: an idle channel is one small allocation (a mutex, counters
//!   and an empty ring buffer, under 200 bytes); messages on a bounded
//!   channel do not allocate once the buffer has grown to its working size;
//!   a wake-up is issued only when the other side is actually parked. A
//!   receive that parks usually registers without taking the channel's
//!   lock, and a send that finds it registered hands the value straight to
//!   it with one compare-and-swap, no lock on either side. A value handed
//!   over counts as received, so a channel of capacity `c` whose receiver
//!   was parked can hold that value plus `c` queued ones (as in Go).
//! * **Several receivers at once**: [`Select`] waits until one of them is
//!   ready, as Go's `select` does over receive cases.
//!
//! # Examples
//!
//! ```
//! use pinstack::sync::mpsc;
//! use std::thread;
//!
//! let (tx, rx) = mpsc::channel(16);
//! let producers: Vec<_> = (0..4)
//!     .map(|id| {
//!         let tx = tx.clone();
//!         thread::spawn(move || {
//!             for i in 0..100 {
//!                 tx.send((id, i)).unwrap();
//!             }
//!         })
//!     })
//!     .collect();
//! drop(tx); // the receiver's loop ends once every clone is gone
//!
//! let total = rx.iter().count();
//! assert_eq!(total, 400);
//! for p in producers {
//!     p.join().unwrap();
//! }
//! ```

mod chan;
mod handoff;
mod select;

use crate::loom::sync::Arc;
pub use crate::sync::error::{
    ReadyTimeoutError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
use chan::Chan;
pub use select::Select;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::wait::deadline_after;

/// Creates a bounded channel holding up to `capacity` values; `send` parks
/// while it is full. A `capacity` of 0 makes a rendezvous channel (see the
/// [module docs](self)).
///
/// The buffer is not allocated up front: it grows as values queue up, to
/// at most `capacity`, so a large bound costs nothing until it is used.
///
/// # Examples
///
/// ```
/// use pinstack::sync::mpsc::{self, TrySendError};
///
/// let (tx, rx) = mpsc::channel(1);
/// tx.send(1).unwrap();
/// assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
/// assert_eq!(rx.recv(), Ok(1));
/// tx.try_send(2).unwrap();
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(capacity));
    (
        Sender { chan: chan.clone() },
        Receiver {
            chan,
            _not_sync: PhantomData,
        },
    )
}

/// Creates an unbounded channel: `send` never waits (memory is the limit).
///
/// # Examples
///
/// ```
/// use pinstack::sync::mpsc;
///
/// let (tx, rx) = mpsc::unbounded();
/// for i in 0..1000 {
///     tx.send(i).unwrap();
/// }
/// drop(tx);
/// assert_eq!(rx.iter().sum::<i32>(), 499_500);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    channel(usize::MAX)
}

/// The sending half of a channel. Clone it to get more senders.
///
/// # Examples
///
/// ```
/// use pinstack::sync::mpsc;
/// use std::thread;
///
/// let (tx, rx) = mpsc::channel(4);
/// let tx2 = tx.clone();
/// thread::spawn(move || tx2.send("from a thread").unwrap());
/// tx.send("from main").unwrap();
/// let mut got = vec![rx.recv().unwrap(), rx.recv().unwrap()];
/// got.sort();
/// assert_eq!(got, ["from a thread", "from main"]);
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, parking while the channel is full (for a rendezvous
    /// channel: until the receiver takes it, or is handed it while parked
    /// in a receive).
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver has been dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel(1);
    /// tx.send(5).unwrap();
    /// drop(rx);
    /// assert_eq!(tx.send(6).unwrap_err().into_inner(), 6);
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan
            .send(value, None)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `value` if that needs no waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the channel is full (a rendezvous channel:
    /// if the receiver is not parked in a receive);
    /// [`TrySendError::Disconnected`] if the receiver was dropped. Both
    /// hand the value back.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc::{self, TrySendError};
    ///
    /// let (tx, _rx) = mpsc::channel(0);
    /// // Nobody is receiving on this rendezvous channel.
    /// assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// Like [`send`](Self::send), but gives up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] if no room appeared in time (for a
    /// rendezvous channel: the receiver did not take the value),
    /// [`SendTimeoutError::Disconnected`] if the receiver was dropped. Both
    /// hand the value back.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let (tx, _rx) = mpsc::channel(1);
    /// tx.send(1).unwrap();
    /// let err = tx.send_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(err.into_inner(), 2);
    /// ```
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(value, deadline_after(timeout))
    }

    /// Like [`send_timeout`](Self::send_timeout), with an absolute deadline.
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc;
    /// use std::time::{Duration, Instant};
    ///
    /// let (tx, rx) = mpsc::channel(1);
    /// tx.send_deadline(1, Instant::now() + Duration::from_secs(1)).unwrap();
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(value, Some(deadline))
    }

    /// Whether the receiver has been dropped (every send would fail).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = pinstack::sync::mpsc::channel::<u8>(1);
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// How many values are queued now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc;
    /// let (tx, _rx) = mpsc::channel(4);
    /// tx.send(1).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no value is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity given to [`channel`], or `None` for an unbounded one.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc;
    /// assert_eq!(mpsc::channel::<u8>(8).0.capacity(), Some(8));
    /// assert_eq!(mpsc::unbounded::<u8>().0.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether both senders feed the same channel.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = pinstack::sync::mpsc::channel::<u8>(1);
    /// let (other, _rx2) = pinstack::sync::mpsc::channel::<u8>(1);
    /// assert!(tx.same_channel(&tx.clone()));
    /// assert!(!tx.same_channel(&other));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

#[cfg(all(test, not(pinstack_loom)))]
impl<T> Sender<T> {
    /// Senders parked for room (test probe).
    pub(crate) fn parked_senders(&self) -> usize {
        self.chan.parked_senders()
    }

    /// Whether the receiver has registered to be woken (test probe).
    pub(crate) fn receiver_registered(&self) -> bool {
        self.chan.receiver_registered()
    }

    /// Allocated buffer slots (test probe).
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.chan.buffer_capacity()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The receiving half of a channel.
///
/// It can be moved to another thread or task (`Send`) but not shared
/// (`!Sync`): one receive runs at a time, which is what lets a receive
/// register its wake-up in a single slot.
///
/// ```compile_fail
/// fn is_sync<T: Sync>() {}
/// is_sync::<pinstack::sync::mpsc::Receiver<u8>>();
/// ```
///
/// # Examples
///
/// ```
/// use pinstack::sync::mpsc;
/// use std::thread;
///
/// let (tx, rx) = mpsc::channel(2);
/// let consumer = thread::spawn(move || rx.iter().collect::<Vec<u32>>());
/// for i in 0..10 {
///     tx.send(i).unwrap();
/// }
/// drop(tx);
/// assert_eq!(consumer.join().unwrap(), (0..10).collect::<Vec<_>>());
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> Receiver<T> {
    /// Receives the next value, parking while the channel is empty.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is empty and every sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc::{self, RecvError};
    ///
    /// let (tx, rx) = mpsc::channel(1);
    /// tx.send('a').unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Ok('a'));
    /// assert_eq!(rx.recv(), Err(RecvError));
    /// ```
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(None).map_err(|_| RecvError)
    }

    /// Receives a value if one is queued.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing is queued,
    /// [`TryRecvError::Disconnected`] if nothing is queued and every sender
    /// is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc::{self, TryRecvError};
    ///
    /// let (tx, rx) = mpsc::channel::<u8>(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if nothing arrived in time,
    /// [`RecvTimeoutError::Disconnected`] if the channel is empty and every
    /// sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc::{self, RecvTimeoutError};
    /// use std::time::Duration;
    ///
    /// let (_tx, rx) = mpsc::channel::<u8>(1);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.chan.recv(deadline_after(timeout))
    }

    /// Like [`recv_timeout`](Self::recv_timeout), with an absolute deadline.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::mpsc;
    /// use std::time::{Duration, Instant};
    ///
    /// let (tx, rx) = mpsc::channel(1);
    /// tx.send(3).unwrap();
    /// assert_eq!(rx.recv_deadline(Instant::now() + Duration::from_secs(1)), Ok(3));
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(deadline))
    }

    /// An iterator that receives until every sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = pinstack::sync::mpsc::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the values queued right now; it never parks.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = pinstack::sync::mpsc::channel(4);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// assert_eq!(rx.try_iter().count(), 0); // tx is still alive
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// How many values are queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = pinstack::sync::mpsc::channel(4);
    /// tx.send(()).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no value is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = pinstack::sync::mpsc::channel::<u8>(4);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every sender has been dropped (queued values can still be
    /// received).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = pinstack::sync::mpsc::channel::<u8>(4);
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.senders_gone()
    }

    /// The capacity given to [`channel`], or `None` for an unbounded one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(pinstack::sync::mpsc::channel::<u8>(0).1.capacity(), Some(0));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.close_receiver();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// Receives until every sender is gone; see [`Receiver::iter`].
///
/// # Examples
///
/// ```
/// let (tx, rx) = pinstack::sync::mpsc::channel(2);
/// std::thread::spawn(move || {
///     for i in 0..5 {
///         tx.send(i).unwrap();
///     }
/// });
/// let mut n = 0;
/// for v in &rx {
///     assert_eq!(v, n);
///     n += 1;
/// }
/// assert_eq!(n, 5);
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Yields the values queued right now; see [`Receiver::try_iter`].
///
/// # Examples
///
/// ```
/// let (tx, rx) = pinstack::sync::mpsc::unbounded();
/// tx.send("a").unwrap();
/// let batch: Vec<_> = rx.try_iter().collect();
/// assert_eq!(batch, ["a"]);
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owns the receiver and receives until every sender is gone.
///
/// # Examples
///
/// ```
/// let (tx, rx) = pinstack::sync::mpsc::unbounded();
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// drop(tx);
/// let all: Vec<i32> = rx.into_iter().collect();
/// assert_eq!(all, [1, 2]);
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
