//! A channel for exactly one value, whose receive parks the calling
//! coroutine (or thread).
//!
//! # State
//!
//! One `Arc` holding a mutex around:
//!
//! ```text
//!   value: Option<T>     set once by Sender::send, taken by the receiver
//!   tx_alive: bool       false after send or Sender drop (nothing more will come)
//!   rx_alive: bool       false after Receiver drop (send hands the value back)
//!   rx_waiter            the parked receiver's unparker, taken by send / Sender drop
//! ```
//!
//! The receiver checks `value` first, then `tx_alive`, so a value sent just
//! before the sender dropped is always delivered. Values are dropped after
//! unlocking.
//!
//! # Examples
//!
//! ```
//! use pinstack::sync::oneshot;
//! use std::thread;
//!
//! let (tx, rx) = oneshot::channel();
//! thread::spawn(move || tx.send(6 * 7).unwrap());
//! assert_eq!(rx.recv(), Ok(42));
//! ```

pub use super::error::{RecvError, RecvTimeoutError, TryRecvError};
use super::wait::{self, deadline_after, expired, lock};
use crate::loom::sync::{Arc, Mutex};
use crate::park::{self, Unparker};
use std::fmt;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Inner<T> {
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    value: Option<T>,
    tx_alive: bool,
    rx_alive: bool,
    rx_waiter: Option<Unparker>,
}

/// Creates a oneshot channel.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = pinstack::sync::oneshot::channel::<u8>();
/// drop(tx);
/// assert!(rx.try_recv().unwrap_err().is_disconnected());
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            value: None,
            tx_alive: true,
            rx_alive: true,
            rx_waiter: None,
        }),
    });
    (
        Sender {
            inner: Some(inner.clone()),
        },
        Receiver { inner },
    )
}

/// Sends the one value; dropping it unsent wakes the receiver with an
/// error.
///
/// # Examples
///
/// ```
/// let (tx, rx) = pinstack::sync::oneshot::channel();
/// tx.send("done").unwrap();
/// assert_eq!(rx.recv(), Ok("done"));
/// ```
pub struct Sender<T> {
    /// `None` once `send` has run (so `Drop` has nothing left to do).
    inner: Option<Arc<Inner<T>>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waking the receiver if it is parked.
    ///
    /// # Errors
    ///
    /// Hands `value` back if the receiver has been dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = pinstack::sync::oneshot::channel();
    /// drop(rx);
    /// assert_eq!(tx.send(1), Err(1));
    /// ```
    pub fn send(mut self, value: T) -> Result<(), T> {
        let Some(inner) = self.inner.take() else {
            return Err(value);
        };
        let mut st = lock(&inner.state);
        st.tx_alive = false;
        if !st.rx_alive {
            return Err(value);
        }
        st.value = Some(value);
        let rx = st.rx_waiter.take();
        drop(st);
        if let Some(rx) = rx {
            rx.unpark();
        }
        Ok(())
    }

    /// Whether the receiver has been dropped (a send would fail).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = pinstack::sync::oneshot::channel::<()>();
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        match &self.inner {
            Some(inner) => !lock(&inner.state).rx_alive,
            None => true,
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let mut st = lock(&inner.state);
        st.tx_alive = false;
        let rx = st.rx_waiter.take();
        drop(st);
        if let Some(rx) = rx {
            rx.unpark();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender").finish_non_exhaustive()
    }
}

/// Receives the one value.
///
/// After a value has been received through `try_recv` or `recv_timeout`,
/// further receives report [`TryRecvError::Disconnected`] /
/// [`RecvTimeoutError::Disconnected`].
///
/// # Examples
///
/// ```
/// use pinstack::sync::oneshot;
/// use std::{thread, time::Duration};
///
/// let (tx, mut rx) = oneshot::channel();
/// let t = thread::spawn(move || {
///     thread::sleep(Duration::from_millis(5));
///     tx.send(1u32).unwrap();
/// });
/// let v = loop {
///     match rx.recv_timeout(Duration::from_millis(1)) {
///         Ok(v) => break v,
///         Err(e) if e.is_timeout() => continue, // do other work, retry
///         Err(e) => panic!("{e}"),
///     }
/// };
/// assert_eq!(v, 1);
/// t.join().unwrap();
/// ```
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Receiver<T> {
    /// Waits for the value, parking until it is sent.
    ///
    /// # Errors
    ///
    /// [`RecvError`] if the sender was dropped without sending.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = pinstack::sync::oneshot::channel::<u8>();
    /// drop(tx);
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn recv(self) -> Result<T, RecvError> {
        self.wait(None).map_err(|_| RecvError)
    }

    /// Takes the value if it has been sent.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if it has not been sent yet,
    /// [`TryRecvError::Disconnected`] if the sender is gone without
    /// sending, or the value was already received.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::oneshot::{self, TryRecvError};
    ///
    /// let (tx, mut rx) = oneshot::channel();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(9).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(9));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut st = lock(&self.inner.state);
        match st.value.take() {
            Some(v) => Ok(v),
            None if st.tx_alive => Err(TryRecvError::Empty),
            None => Err(TryRecvError::Disconnected),
        }
    }

    /// Waits for the value for at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if it was not sent in time (the
    /// receiver stays usable), [`RecvTimeoutError::Disconnected`] as for
    /// [`try_recv`](Self::try_recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::sync::oneshot::{self, RecvTimeoutError};
    /// use std::time::Duration;
    ///
    /// let (_tx, mut rx) = oneshot::channel::<u8>();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.wait(deadline_after(timeout))
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
    /// use std::time::{Duration, Instant};
    ///
    /// let (tx, mut rx) = pinstack::sync::oneshot::channel();
    /// tx.send(()).unwrap();
    /// assert_eq!(rx.recv_deadline(Instant::now() + Duration::from_secs(1)), Ok(()));
    /// ```
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.wait(Some(deadline))
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut st = lock(&self.inner.state);
        let mut registered = false;
        loop {
            let outcome = match st.value.take() {
                Some(v) => Some(Ok(v)),
                None if !st.tx_alive => Some(Err(RecvTimeoutError::Disconnected)),
                None if expired(deadline) => Some(Err(RecvTimeoutError::Timeout)),
                None => None,
            };
            if let Some(outcome) = outcome {
                let stale = if registered {
                    st.rx_waiter.take()
                } else {
                    None
                };
                drop(st);
                drop(stale);
                return outcome;
            }
            if !registered || st.rx_waiter.is_none() {
                // Replacing (not keeping) whatever is in the slot matters:
                // a wait that was unwound while parked leaves its unparker
                // behind, and it must not stand in for this one.
                st.rx_waiter = Some(park::current());
                registered = true;
            }
            drop(st);
            wait::park_until(deadline);
            st = lock(&self.inner.state);
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = lock(&self.inner.state);
        st.rx_alive = false;
        let value = st.value.take();
        let stale = st.rx_waiter.take();
        drop(st);
        drop(stale);
        drop(value);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Receiver").finish_non_exhaustive()
    }
}
