//! The chat server on tokio: the twin pinstack is compared with.
//!
//! Idiomatic tokio: `tokio::net`, a bounded `tokio::sync::mpsc` queue per
//! client, `tokio::time` for idle PINGs. Protocol, limits and state come
//! from the shared core, so both twins do the same work.
//!
//! # Per connection
//!
//! ```text
//!   reader task (owns Session, LineFramer, read half)     writer task (owns write half)
//!     read → frames → Session::on_line ──push──▶ mpsc(sendq) ──recv──▶ writev
//!     idle::IdleClock: PING, then drop                             │
//!     on end: Session::disconnect, await writer                ▼
//!   ConnCtl { closed, farewell, wake_reader, wake_writer }: Outbox::close sets
//!   `closed` + farewell and wakes both; the writer drops the queue, writes the
//!   rest of the line in flight and the farewell within `close_grace`, closes.
//! ```
//!
//! Shutdown order: a normal end (EOF, QUIT, ping timeout) disconnects the
//! session, which drops the hub's copies of the client's queue sender; the
//! writer drains what is left and shuts the socket down. Server shutdown
//! stops the accept loop, tells every reader (farewell `ERROR`), and waits up
//! to `close_grace` for connections to finish before the runtime is dropped.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

use super::config::ChatConfig;
use super::framing::{Frame, LineFramer};
use super::hub::Hub;
use super::idle::{IdleAction, IdleClock};
use super::outbox::{Line, Outbox, PushError, WriteBatch};
use super::session::{Flow, Session};
use super::stats::ServerStats;
use crate::server_thread::{self, ServerThread};
use crate::Shutdown;

#[derive(Debug, Default)]
struct ConnCtl {
    closed: AtomicBool,
    write_failed: AtomicBool,
    farewell: Mutex<Option<Line>>,
    wake_reader: Notify,
    wake_writer: Notify,
}

/// The tokio twin's [`Outbox`]: a bounded mpsc sender plus the close flag.
#[derive(Debug, Clone)]
pub struct TokioOutbox {
    tx: mpsc::Sender<Line>,
    ctl: Arc<ConnCtl>,
}

impl Outbox for TokioOutbox {
    fn try_push(&self, line: Line) -> Result<(), PushError> {
        if self.ctl.closed.load(Ordering::Relaxed) {
            return Err(PushError::Closed);
        }
        self.tx.try_send(line).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PushError::Full,
            mpsc::error::TrySendError::Closed(_) => PushError::Closed,
        })
    }

    fn close(&self, farewell: Line) {
        if !self.ctl.closed.swap(true, Ordering::AcqRel) {
            *self
                .ctl
                .farewell
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(farewell);
            self.ctl.wake_writer.notify_one();
            self.ctl.wake_reader.notify_one();
        }
    }
}

/// A server running on its own thread, from [`spawn`].
pub type ServerHandle = ServerThread<ServerStats>;

/// Starts the server on a new thread and returns once it listens.
///
/// ```
/// use pinstack_examples::chat::{tokio_server, ChatConfig};
/// let mut cfg = ChatConfig::default();
/// cfg.addr = "127.0.0.1:0".parse().unwrap();
/// cfg.workers = 1;
/// let server = tokio_server::spawn(cfg).unwrap();
/// assert_ne!(server.addr().port(), 0);
/// server.stop().unwrap();
/// ```
///
/// # Errors
///
/// The runtime, bind or listen error.
pub fn spawn(config: ChatConfig) -> io::Result<ServerHandle> {
    spawn_with(config, "chat-tokio", |c, sd, st, ready| {
        run_with_stats(c, sd, st, ready)
    })
}

/// The runner of a twin: serve `config` until `shutdown`, calling `ready`
/// with the bound address.
pub(crate) type RunFn = server_thread::RunFn<ChatConfig, ServerStats>;

/// Starts a twin's runner on a new thread; returns once it listens.
pub(crate) fn spawn_with(config: ChatConfig, name: &str, run: RunFn) -> io::Result<ServerHandle> {
    server_thread::spawn(config, name, "chat server", run)
}

/// Runs the server on the calling thread until `shutdown` is triggered:
/// builds a tokio runtime with `config.workers` threads, listens on
/// `config.addr`, calls `ready` with the bound address, serves.
///
/// # Errors
///
/// The runtime, bind or listen error (accept errors are logged and
/// retried, never fatal).
pub fn run(
    config: &ChatConfig,
    shutdown: &Shutdown,
    ready: impl FnOnce(SocketAddr),
) -> io::Result<()> {
    run_with_stats(config, shutdown, Arc::new(ServerStats::default()), ready)
}

fn run_with_stats(
    config: &ChatConfig,
    shutdown: &Shutdown,
    stats: Arc<ServerStats>,
    ready: impl FnOnce(SocketAddr),
) -> io::Result<()> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .thread_name("chat-tokio-worker")
        .enable_all()
        .build()?;
    let listener = rt.block_on(async { listen(config.addr, config.backlog) })?;
    ready(listener.local_addr()?);
    let r = rt.block_on(serve(listener, config.clone(), shutdown.clone(), stats));
    rt.shutdown_timeout(Duration::from_secs(1));
    r
}

fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    socket.listen(backlog)
}

/// Serves on `listener` inside the current tokio runtime until `shutdown`.
///
/// # Errors
///
/// None today: accept errors are logged and retried. The `Result` leaves
/// room for fatal listener errors.
pub async fn serve(
    listener: TcpListener,
    config: ChatConfig,
    shutdown: Shutdown,
    stats: Arc<ServerStats>,
) -> io::Result<()> {
    let config = Arc::new(config);
    let hub: Arc<Hub<TokioOutbox>> = Arc::new(Hub::new(config.hub.clone()));
    let mut stop = shutdown.subscribe();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    stats.bump_accepted();
                    if !stats.try_open(config.max_clients) {
                        stats.bump_refused();
                        let _ = stream.try_write(b"ERROR :Closing Link: server full\r\n");
                        continue;
                    }
                    let conn = Conn {
                        hub: hub.clone(),
                        config: config.clone(),
                        stats: stats.clone(),
                        stop: shutdown.subscribe(),
                    };
                    tokio::spawn(conn.serve(stream, peer));
                }
                Err(e) => accept_error(e).await,
            },
        }
    }
    drop(listener);
    let deadline = Instant::now() + config.close_grace + Duration::from_millis(500);
    while stats.connections() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Out of descriptors or memory: say so and back off instead of spinning.
async fn accept_error(e: io::Error) {
    // Other errors mean the peer gave up (ECONNABORTED and the like): ignore.
    if let Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) = e.raw_os_error() {
        eprintln!(
            "chat: accept: {e}; raise RLIMIT_NOFILE or lower --max-clients; retrying in 50 ms"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Conn {
    hub: Arc<Hub<TokioOutbox>>,
    config: Arc<ChatConfig>,
    stats: Arc<ServerStats>,
    stop: watch::Receiver<bool>,
}

impl Conn {
    async fn serve(mut self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel(self.config.sendq);
        let ctl = Arc::new(ConnCtl::default());
        let writer = tokio::spawn(write_loop(wr, rx, ctl.clone(), self.config.close_grace));
        let outbox = TokioOutbox {
            tx,
            ctl: ctl.clone(),
        };
        let host = peer.ip().to_string();
        let mut session = Session::new(&self.hub, outbox, &host);
        let reason = self.read_loop(rd, &mut session, &ctl).await;
        session.disconnect(&self.hub, &reason);
        let _ = writer.await;
        self.stats.close();
    }

    /// Reads until the client leaves or must leave; returns the QUIT reason.
    async fn read_loop(
        &mut self,
        rd: OwnedReadHalf,
        session: &mut Session<TokioOutbox>,
        ctl: &ConnCtl,
    ) -> String {
        let hub = &*self.hub;
        let mut framer = LineFramer::new(self.config.max_line);
        let mut clock = IdleClock::new(
            std::time::Instant::now(),
            self.config.ping_interval,
            self.config.ping_timeout,
        );
        let timer = tokio::time::sleep_until(clock.first_deadline().into());
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                _ = ctl.wake_reader.notified() => {
                    if ctl.write_failed.load(Ordering::Acquire) {
                        return "Write error".into();
                    }
                    self.stats.bump_sendq_exceeded();
                    return "SendQ exceeded".into();
                }
                _ = self.stop.wait_for(|s| *s) => {
                    session.on_server_shutdown(hub);
                    return "Server shutting down".into();
                }
                () = &mut timer => match clock.on_deadline(std::time::Instant::now()) {
                    IdleAction::Rearm(at) => timer.as_mut().reset(at.into()),
                    IdleAction::Ping(at) => {
                        session.on_idle(hub);
                        timer.as_mut().reset(at.into());
                    }
                    IdleAction::TimedOut => {
                        self.stats.bump_ping_timeouts();
                        session.on_ping_timeout(hub, clock.silence_secs());
                        return "Ping timeout".into();
                    }
                },
                // Wait without a buffer, as the pinstack twin does.
                r = rd.readable() => {
                    if let Err(e) = r {
                        return format!("Read error: {e}");
                    }
                    let n = match rd.try_read(framer.spare()) {
                        Ok(0) => return "Connection closed".into(),
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(e) => return format!("Read error: {e}"),
                    };
                    framer.commit(n);
                    if let Some(at) = clock.on_input(std::time::Instant::now()) {
                        timer.as_mut().reset(at.into());
                    }
                    while let Some(frame) = framer.next_frame() {
                        match frame {
                            Frame::Line(l) => {
                                if session.on_line(hub, l) == Flow::Close {
                                    return String::new(); // the session holds the reason
                                }
                            }
                            Frame::TooLong => {
                                self.stats.bump_lines_too_long();
                                session.on_line_too_long(hub);
                            }
                        }
                    }
                    framer.release_if_empty();
                }
            }
        }
    }
}

/// Drains the queue into the socket with vectored writes (no copy of the
/// shared lines); see the module docs for the close protocol.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Line>,
    ctl: Arc<ConnCtl>,
    grace: Duration,
) {
    let mut batch = WriteBatch::new();
    loop {
        if batch.is_empty() {
            tokio::select! {
                biased;
                _ = ctl.wake_writer.notified() => break,
                l = rx.recv() => match l {
                    Some(l) => batch.push(l),
                    None => {
                        // Every sender is gone: the session ended normally.
                        let _ = tokio::time::timeout(grace, wr.shutdown()).await;
                        return;
                    }
                },
            }
        }
        batch.fill(|| rx.try_recv().ok());
        let written = {
            let mut iov = [IoSlice::new(&[]); WriteBatch::MAX];
            tokio::select! {
                biased;
                _ = ctl.wake_writer.notified() => None,
                r = wr.write_vectored(batch.io_slices(&mut iov)) => Some(r),
            }
        };
        match written {
            None => break,
            Some(Ok(0)) | Some(Err(_)) => {
                // The peer is gone; make the reader notice even if its read
                // half has not seen an error yet.
                ctl.write_failed.store(true, Ordering::Release);
                ctl.closed.store(true, Ordering::Release);
                ctl.wake_reader.notify_one();
                return;
            }
            Some(Ok(n)) => batch.advance(n),
        }
    }
    // Aborted (SendQ exceeded): finish the line in flight so the farewell
    // starts a line, drop everything queued, say goodbye, close.
    rx.close();
    let farewell = ctl
        .farewell
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let mut tail = batch.unwritten_tail().to_vec();
    if let Some(f) = farewell {
        tail.extend_from_slice(&f);
    }
    let _ = tokio::time::timeout(grace, async {
        wr.write_all(&tail).await?;
        wr.shutdown().await
    })
    .await;
}
