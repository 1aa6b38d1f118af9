//! The chat server on pinstack: the same protocol, core, queues and limits
//! as the tokio twin, written as plain blocking code on coroutines.
//!
//! # Per connection
//!
//! ```text
//!   reader coroutine (owns Session, LineFramer)          writer coroutine (same worker)
//!     stream.read (timeout = next idle deadline)           rx.recv → write_vectored
//!     → frames → Session::on_line_in ─try_push─▶ mpsc(sendq + 1) ──▶
//!     IdleClock: PING, then drop                          on close: drop queue, finish
//!     on end: Session::disconnect, join writer            the line in flight, farewell
//! ```
//!
//! Where the tokio twin `select!`s, the coroutines block and are woken by
//! the socket itself:
//! * `Outbox::close` (SendQ exceeded) marks the connection closed, puts a
//!   wake-up line in the slot reserved for it (the queue holds `sendq + 1`,
//!   pushes stop at `sendq`), and shuts the socket's read side down, so a
//!   reader blocked in `read` returns at once.
//! * The writer writes with a short timeout, so a writer stuck on a client
//!   that never reads still notices the close within a second.
//! * Server shutdown marks every connection stopping and shuts its read side
//!   down; readers say goodbye (`ERROR`) and end.
//!
//! The writer is spawned pinned to the reader's worker: the two talk for
//! every message, and a started coroutine never moves (DESIGN.md).
//!
//! # Per message
//!
//! Each line is handled inside a per-request arena (`pinstack::arena::
//! with_arena`): the session formats its reply lines there ([`Scratch`]),
//! and the arena goes back to the worker's pool, reset, when the line is
//! done. Only the shared [`Line`] each recipient queues outlives it. Keeping
//! the 512-byte format buffers off the coroutine stack is what keeps the
//! reader's stack at one touched page (measured: stack high-water 4 KiB,
//! 8 KiB with the buffers on the stack), and resident memory per client
//! with it.
//!
//! Stack hints: the reader runs the protocol and the writer only writes;
//! both touch one 4 KiB page in release builds. The hints (32 and 16 KiB)
//! leave room for debug builds and for deeper paths than the load exercises;
//! only touched pages are resident, so a larger hint costs address space, not
//! memory.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::net::{Shutdown as SockShutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pinstack::arena::{self, Arena};
use pinstack::net::{TcpListener, TcpStream};
use pinstack::sync::mpsc;
use pinstack::task;

use super::config::ChatConfig;
use super::framing::{Frame, LineFramer};
use super::hub::Hub;
use super::idle::{IdleAction, IdleClock};
use super::outbox::{Line, Outbox, PushError, WriteBatch};
use super::proto::LineBuf;
use super::scratch::Scratch;
use super::session::{Flow, Session};
use super::stats::ServerStats;
use super::tokio_server::{spawn_with, ServerHandle};
use crate::Shutdown;

/// How often a blocked writer looks at the close flag.
const WRITE_POLL: Duration = Duration::from_millis(500);
/// Stack size hints: the reader runs the protocol, the writer only writes.
const READER_STACK: usize = 32 * 1024;
const WRITER_STACK: usize = 16 * 1024;

#[derive(Debug)]
struct ConnCtl {
    closed: AtomicBool,
    write_failed: AtomicBool,
    farewell: Mutex<Option<Line>>,
    stream: TcpStream,
}

/// The pinstack twin's [`Outbox`]: a bounded channel plus the close flag.
#[derive(Debug, Clone)]
pub struct PinstackOutbox {
    tx: mpsc::Sender<Line>,
    ctl: Arc<ConnCtl>,
    sendq: usize,
}

impl Outbox for PinstackOutbox {
    fn try_push(&self, line: Line) -> Result<(), PushError> {
        if self.ctl.closed.load(Ordering::Relaxed) {
            return Err(PushError::Closed);
        }
        if self.tx.len() >= self.sendq {
            return Err(PushError::Full);
        }
        self.tx.try_send(line).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => PushError::Full,
            mpsc::TrySendError::Disconnected(_) => PushError::Closed,
        })
    }

    fn close(&self, farewell: Line) {
        if !self.ctl.closed.swap(true, Ordering::AcqRel) {
            *self
                .ctl
                .farewell
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(farewell);
            // The reserved slot: wakes a writer blocked on an empty queue.
            let _ = self.tx.try_send(Line::from(&[][..]));
            let _ = self.ctl.stream.shutdown(SockShutdown::Read);
        }
    }
}

/// Live connections, so shutdown can wake every blocked reader.
#[derive(Debug, Default)]
struct Registry {
    stopping: AtomicBool,
    next: AtomicU64,
    conns: Mutex<HashMap<u64, TcpStream>>,
}

impl Registry {
    fn add(&self, s: &TcpStream) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, s.clone());
        id
    }

    fn remove(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    fn stop_all(&self) {
        self.stopping.store(true, Ordering::Release);
        for s in self
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            let _ = s.shutdown(SockShutdown::Read);
        }
    }
}

/// Starts the pinstack server on a new thread; returns once it listens.
///
/// ```
/// use pinstack_examples::chat::{pinstack_server, ChatConfig};
/// let mut cfg = ChatConfig::default();
/// cfg.addr = "127.0.0.1:0".parse().unwrap();
/// cfg.workers = 1;
/// let server = pinstack_server::spawn(cfg).unwrap();
/// assert_ne!(server.addr().port(), 0);
/// server.stop().unwrap();
/// ```
///
/// # Errors
///
/// The runtime, bind or listen error.
pub fn spawn(config: ChatConfig) -> io::Result<ServerHandle> {
    spawn_with(config, "chat-pinstack", run_with_stats)
}

/// Runs the server on the calling thread until `shutdown` is triggered.
///
/// # Errors
///
/// The runtime, bind or listen error.
pub fn run(
    config: &ChatConfig,
    shutdown: &Shutdown,
    ready: impl FnOnce(SocketAddr) + Send + 'static,
) -> io::Result<()> {
    run_with_stats(
        config,
        shutdown,
        Arc::new(ServerStats::default()),
        Box::new(ready),
    )
}

fn run_with_stats(
    config: &ChatConfig,
    shutdown: &Shutdown,
    stats: Arc<ServerStats>,
    ready: Box<dyn FnOnce(SocketAddr) + Send>,
) -> io::Result<()> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let rt = pinstack::Runtime::builder()
        .worker_threads(config.workers)
        .thread_name("chat-pinstack")
        .build()?;
    let listener = TcpListener::bind(config.addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.addr)))?;
    ready(listener.local_addr()?);
    let config = Arc::new(config.clone());
    let hub: Arc<Hub<PinstackOutbox>> = Arc::new(Hub::new(config.hub.clone()));
    let registry = Arc::new(Registry::default());
    let server = Server {
        hub,
        config: config.clone(),
        stats: stats.clone(),
        registry: registry.clone(),
    };
    let acceptor = rt.spawn(move || server.accept_loop(listener));
    if let Some(addr) = config.admin_addr {
        let admin = TcpListener::bind(addr).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot serve metrics on {addr}: {e}"))
        })?;
        let handle = rt.handle();
        drop(rt.spawn(move || super::admin::serve(admin, handle)));
    }
    pinstack::block_on(shutdown.wait());
    registry.stop_all();
    let deadline = Instant::now() + config.close_grace + Duration::from_millis(500);
    while stats.connections() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(rt); // unwinds the acceptor and anything still running
    match acceptor.join() {
        Ok(r) => r,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

#[derive(Clone)]
struct Server {
    hub: Arc<Hub<PinstackOutbox>>,
    config: Arc<ChatConfig>,
    stats: Arc<ServerStats>,
    registry: Arc<Registry>,
}

impl Server {
    fn accept_loop(self, listener: TcpListener) -> io::Result<()> {
        loop {
            // Out of descriptors, `accept` backs off by itself (pinstack::net).
            let (stream, peer) = listener.accept()?;
            if self.registry.stopping.load(Ordering::Acquire) {
                return Ok(());
            }
            self.stats.bump_accepted();
            if !self.stats.try_open(self.config.max_clients) {
                self.stats.bump_refused();
                let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
                let _ = (&stream).write_all_refused();
                continue;
            }
            let conn = self.clone();
            let spawned = task::Builder::new()
                .name("chat-conn")
                .stack_size(READER_STACK)
                .spawn(move || conn.serve(stream, peer));
            if let Err(e) = spawned {
                self.stats.close();
                eprintln!("chat: cannot start a connection task: {e}");
            }
        }
    }

    fn serve(self, stream: TcpStream, peer: SocketAddr) {
        let id = self.registry.add(&stream);
        let _ = stream.set_nodelay(true);
        let (tx, rx) = mpsc::channel(self.config.sendq + 1);
        let ctl = Arc::new(ConnCtl {
            closed: AtomicBool::new(false),
            write_failed: AtomicBool::new(false),
            farewell: Mutex::new(None),
            stream: stream.clone(),
        });
        let (ctl2, grace) = (ctl.clone(), self.config.close_grace);
        let writer = task::Builder::new()
            .name("chat-writer")
            .stack_size(WRITER_STACK)
            .pin_to_current_worker()
            .spawn(move || write_loop(rx, &ctl2, grace));
        let outbox = PinstackOutbox {
            tx,
            ctl: ctl.clone(),
            sendq: self.config.sendq,
        };
        let host = peer.ip().to_string();
        let mut session = Session::new(&self.hub, outbox, &host);
        let reason = match &writer {
            Ok(_) => self.read_loop(&stream, &mut session, &ctl),
            Err(_) => "Server busy".into(),
        };
        session.disconnect(&self.hub, &reason);
        if let Ok(w) = writer {
            let _ = w.join();
        }
        self.registry.remove(id);
        self.stats.close();
    }

    /// Reads until the client leaves or must leave; returns the QUIT reason.
    fn read_loop(
        &self,
        stream: &TcpStream,
        session: &mut Session<PinstackOutbox>,
        ctl: &ConnCtl,
    ) -> String {
        let hub = &*self.hub;
        let mut framer = LineFramer::new(self.config.max_line);
        let mut clock = IdleClock::new(
            Instant::now(),
            self.config.ping_interval,
            self.config.ping_timeout,
        );
        let mut deadline = clock.first_deadline();
        loop {
            if ctl.closed.load(Ordering::Acquire) {
                if ctl.write_failed.load(Ordering::Acquire) {
                    return "Write error".into();
                }
                self.stats.bump_sendq_exceeded();
                return "SendQ exceeded".into();
            }
            if self.registry.stopping.load(Ordering::Acquire) {
                session.on_server_shutdown(hub);
                return "Server shutting down".into();
            }
            let now = Instant::now();
            if now >= deadline {
                match clock.on_deadline(now) {
                    IdleAction::Rearm(at) => deadline = at,
                    IdleAction::Ping(at) => {
                        session.on_idle(hub);
                        deadline = at;
                    }
                    IdleAction::TimedOut => {
                        self.stats.bump_ping_timeouts();
                        session.on_ping_timeout(hub, clock.silence_secs());
                        return "Ping timeout".into();
                    }
                }
                continue;
            }
            let _ = stream.set_read_timeout(Some(deadline - now));
            let n = match stream.read(framer.spare()) {
                Ok(0) if ctl.closed.load(Ordering::Acquire) => continue,
                Ok(0) if self.registry.stopping.load(Ordering::Acquire) => continue,
                Ok(0) => return "Connection closed".into(),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
                Err(e) => return format!("Read error: {e}"),
            };
            framer.commit(n);
            if let Some(at) = clock.on_input(Instant::now()) {
                deadline = at;
            }
            while let Some(frame) = framer.next_frame() {
                match frame {
                    Frame::Line(l) => {
                        // One message, one arena: its reply lines are
                        // formatted there and the arena is reset on return.
                        let flow = arena::with_arena(|a| session.on_line_in(hub, l, &InArena(a)));
                        if flow == Flow::Close {
                            return String::new(); // the session holds the reason
                        }
                    }
                    Frame::TooLong => {
                        self.stats.bump_lines_too_long();
                        session.on_line_too_long(hub);
                    }
                }
            }
        }
    }
}

/// A message's scratch memory: a per-request arena from this worker's pool.
struct InArena<'a>(&'a Arena);

impl Scratch for InArena<'_> {
    fn line(
        &self,
        prefix: Option<&str>,
        cmd: &str,
        middle: &[&str],
        trailing: Option<&str>,
    ) -> Line {
        let buf = self.0.alloc(LineBuf::new());
        Line::from(buf.format(prefix, cmd, middle, trailing))
    }
}

trait RefuseExt {
    fn write_all_refused(self) -> io::Result<()>;
}

impl RefuseExt for &TcpStream {
    fn write_all_refused(self) -> io::Result<()> {
        io::Write::write_all(&mut { self }, b"ERROR :Closing Link: server full\r\n")
    }
}

/// Drains the queue into the socket with vectored writes (the shared lines
/// are not copied); see the module docs for the close protocol.
fn write_loop(rx: mpsc::Receiver<Line>, ctl: &ConnCtl, grace: Duration) {
    let stream = &ctl.stream;
    let _ = stream.set_write_timeout(Some(WRITE_POLL));
    let mut batch = WriteBatch::new();
    loop {
        if batch.is_empty() {
            match rx.recv() {
                Ok(l) => batch.push(l),
                Err(_) => {
                    // Every sender is gone: the session ended normally.
                    let _ = stream.shutdown(SockShutdown::Write);
                    return;
                }
            }
        }
        if ctl.closed.load(Ordering::Acquire) {
            break;
        }
        batch.fill(|| rx.try_recv().ok());
        let mut iov = [IoSlice::new(&[]); WriteBatch::MAX];
        match stream.write_vectored(batch.io_slices(&mut iov)) {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => continue, // re-check `closed`
            Ok(0) | Err(_) => {
                // The peer is gone; make the reader notice.
                ctl.write_failed.store(true, Ordering::Release);
                ctl.closed.store(true, Ordering::Release);
                let _ = stream.shutdown(SockShutdown::Read);
                return;
            }
            Ok(n) => batch.advance(n),
        }
    }
    // Aborted (SendQ exceeded): finish the line in flight so the farewell
    // starts a line, drop everything queued, say goodbye, close.
    drop(rx);
    let farewell = ctl
        .farewell
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let mut tail = batch.unwritten_tail().to_vec();
    if let Some(f) = farewell {
        tail.extend_from_slice(&f);
    }
    let _ = stream.set_write_timeout(Some(grace));
    let _ = io::Write::write_all(&mut { stream }, &tail);
    let _ = stream.shutdown(SockShutdown::Both);
}
