//! Errors of the channels in [`crate::sync::mpsc`] and [`crate::sync::oneshot`].
//!
//! They mirror `std::sync::mpsc`'s: a failed send hands the value back, and
//! a failed receive says whether waiting longer could help (`Empty`,
//! `Timeout`) or not (`Disconnected`). `Debug` never needs `T: Debug`, so
//! `?` works for any message type.

use std::error::Error;
use std::fmt;

/// A send failed because the receiver was dropped; the value is returned.
///
/// # Examples
///
/// ```
/// use pinstack::sync::mpsc::{self, SendError};
///
/// let (tx, rx) = mpsc::channel(1);
/// drop(rx);
/// let SendError(back) = tx.send(String::from("lost?")).unwrap_err();
/// assert_eq!(back, "lost?"); // not lost: handed back
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that could not be sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "sending on a closed channel: the receiver was dropped \
             (keep the Receiver alive for as long as senders may send)",
        )
    }
}

impl<T> Error for SendError<T> {}

/// Why [`try_send`](crate::sync::mpsc::Sender::try_send) failed; the value
/// is returned either way.
///
/// # Examples
///
/// ```
/// use pinstack::sync::mpsc::{self, TrySendError};
///
/// let (tx, rx) = mpsc::channel(1);
/// tx.try_send(1).unwrap();
/// match tx.try_send(2) {
///     Err(TrySendError::Full(v)) => assert_eq!(v, 2), // retry later
///     other => panic!("{other:?}"),
/// }
/// drop(rx);
/// assert!(tx.try_send(3).unwrap_err().is_disconnected());
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel is full (for a rendezvous channel: no receiver is
    /// waiting). Retry later, or use `send` to wait for room.
    Full(T),
    /// The receiver was dropped; no send can ever succeed.
    Disconnected(T),
}

impl<T> TrySendError<T> {
    /// The value that could not be sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Disconnected(v) => v,
        }
    }

    /// Whether the channel was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// Whether the receiver was dropped.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TrySendError::Disconnected(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str(
                "sending on a full channel: retry later, or use send/send_timeout to wait for room",
            ),
            TrySendError::Disconnected(_) => SendError(()).fmt(f),
        }
    }
}

impl<T> Error for TrySendError<T> {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> TrySendError<T> {
        TrySendError::Disconnected(e.0)
    }
}

/// Why [`send_timeout`](crate::sync::mpsc::Sender::send_timeout) failed;
/// the value is returned either way.
///
/// # Examples
///
/// ```
/// use pinstack::sync::mpsc::{self, SendTimeoutError};
/// use std::time::Duration;
///
/// let (tx, _rx) = mpsc::channel(0); // rendezvous, nobody receiving
/// let err = tx.send_timeout('x', Duration::from_millis(1)).unwrap_err();
/// assert_eq!(err, SendTimeoutError::Timeout('x'));
/// println!("{err}"); // says what to do about it
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// No room appeared (for a rendezvous channel: no receiver took the
    /// value) before the timeout.
    Timeout(T),
    /// The receiver was dropped; no send can ever succeed.
    Disconnected(T),
}

impl<T> SendTimeoutError<T> {
    /// The value that could not be sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Disconnected(v) => v,
        }
    }

    /// Whether the send timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// Whether the receiver was dropped.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendTimeoutError::Disconnected(_))
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str(
                "timed out sending on a full channel: the receiver is not keeping up \
                 (raise the capacity or the timeout)",
            ),
            SendTimeoutError::Disconnected(_) => SendError(()).fmt(f),
        }
    }
}

impl<T> Error for SendTimeoutError<T> {}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> SendTimeoutError<T> {
        SendTimeoutError::Disconnected(e.0)
    }
}

/// A blocking receive failed: the channel is empty and every sender is
/// gone, so no value will ever arrive.
///
/// # Examples
///
/// ```
/// use pinstack::sync::mpsc::{self, RecvError};
///
/// let (tx, rx) = mpsc::channel::<u8>(1);
/// drop(tx);
/// assert_eq!(rx.recv(), Err(RecvError));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed channel: every sender was dropped and no value is left")
    }
}

impl Error for RecvError {}

/// No receiver of a [`Select`](crate::sync::mpsc::Select) was ready before
/// the deadline.
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
/// let e = sel.ready_timeout(Duration::ZERO).unwrap_err();
/// assert_eq!(e.to_string(), "timed out waiting for a receiver to be ready");
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct ReadyTimeoutError;

impl fmt::Display for ReadyTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for a receiver to be ready")
    }
}

impl Error for ReadyTimeoutError {}

/// Why a non-blocking receive returned nothing.
///
/// # Examples
///
/// ```
/// use pinstack::sync::mpsc::{self, TryRecvError};
///
/// let (tx, rx) = mpsc::channel::<u8>(1);
/// assert!(rx.try_recv().unwrap_err().is_empty());
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// Nothing yet; a value may still arrive.
    Empty,
    /// Nothing, and every sender is gone: nothing ever will.
    Disconnected,
}

impl TryRecvError {
    /// Whether the channel was merely empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// Whether every sender is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TryRecvError::Disconnected)
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => {
                f.write_str("receiving on an empty channel: retry later, or use recv to wait")
            }
            TryRecvError::Disconnected => RecvError.fmt(f),
        }
    }
}

impl Error for TryRecvError {}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> TryRecvError {
        TryRecvError::Disconnected
    }
}

/// Why a receive with a timeout returned nothing.
///
/// # Examples
///
/// ```
/// use pinstack::sync::mpsc::{self, RecvTimeoutError};
/// use std::time::Duration;
///
/// let (tx, rx) = mpsc::channel::<u8>(1);
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// drop(tx);
/// assert!(rx.recv_timeout(Duration::from_millis(1)).unwrap_err().is_disconnected());
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the timeout; a value may still arrive.
    Timeout,
    /// Nothing, and every sender is gone: nothing ever will.
    Disconnected,
}

impl RecvTimeoutError {
    /// Whether the receive timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// Whether every sender is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvTimeoutError::Disconnected)
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str(
                "timed out waiting on a channel: no value arrived in time (the sender is slow or stuck)",
            ),
            RecvTimeoutError::Disconnected => RecvError.fmt(f),
        }
    }
}

impl Error for RecvTimeoutError {}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> RecvTimeoutError {
        RecvTimeoutError::Disconnected
    }
}
