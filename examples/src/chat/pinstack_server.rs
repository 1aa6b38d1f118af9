//! The chat server on pinstack: the same protocol, core, queues and limits
//! as the tokio twin, written as plain blocking code on coroutines.
//!
//! # Per connection
//!
//! ```text
//!   reader coroutine (owns Session, LineFramer)          writer coroutine (same worker,
//!     stream.readable (timeout = next idle deadline),    only while there is output)
//!     then try_read into the framer (buffer freed after)
//!     → frames → Session::on_line_in ─try_push─▶ mpsc(sendq + 1) ──▶ rx.recv → write_vectored
//!     IdleClock: PING, then drop         └─ claims a writer if none runs; the reader starts it
//!     on end: Session::disconnect,                        on close: drop queue, finish
//!     wait for the writer to leave                        the line in flight, farewell
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
//! # The writer
//!
//! A client has a writer coroutine only while it has output: the push that
//! finds no writer running claims one, the reader starts it, and the writer
//! leaves as soon as the queue is empty. An idle client (most of a chat
//! server's clients, most of the time) then costs one coroutine, the reader,
//! and one touched stack page instead of two. Starting a writer per burst
//! is a spawn from the worker's caches (a pooled stack whose pages are
//! warm, a recycled task block); keeping one parked between bursts costs a
//! wake-up plus a clock read and a timer to decide when to leave, and
//! measured more: with a 2 s linger the demo took 9.4 us of server CPU per
//! delivery (mean of 3) against 8.6 us leaving at once, and 10.2 against
//! 5.9 KiB of RSS per client right after the joins. Every writer starts on
//! the reader's worker (`task::Builder::on_worker`): the two talk for every
//! message, and a started coroutine never moves (DESIGN.md).
//!
//! `ConnCtl::writer` says who may drain the queue:
//!
//! ```text
//!            push: CAS, spawn                 reader, at its end: CAS
//!   IDLE ───────────────────────▶ RUNNING       IDLE ──────────────▶ DONE
//!     ▲                              │          (RUNNING: wait for `writer_left`, retry)
//!     └── writer: queue empty ───────┘
//!         (rx put back first)                   a writer that fails, says goodbye, or
//!                                               sees every sender gone: ─▶ DONE
//! ```
//!
//! The receiver lives in `ConnCtl::rx` whenever no writer runs, and is put
//! back there before `IDLE` is stored, so the writer started next always
//! finds it. A leaving writer stores `IDLE` and then looks at the queue once
//! more, while a pusher queues and then looks at the state, both with a
//! `SeqCst` fence between: one of the two sees the other, so a line is never
//! left in a queue nobody drains.
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

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::net::{Shutdown as SockShutdown, SocketAddr};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pinstack::arena::{self, Arena};
use pinstack::net::{TcpListener, TcpStream};
use pinstack::sync::{mpsc, Notify};
use pinstack::task::{self, WorkerId};

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

/// `ConnCtl::writer`: no writer runs; the receiver is in `ConnCtl::rx`.
const IDLE: u8 = 0;
/// A writer runs (or was just spawned) and holds the receiver.
const RUNNING: u8 = 1;
/// Writing is over for good: no writer starts again.
const DONE: u8 = 2;
/// Stack size hints: the reader runs the protocol, the writer only writes.
const READER_STACK: usize = 32 * 1024;
const WRITER_STACK: usize = 16 * 1024;

#[derive(Debug)]
struct ConnCtl {
    closed: AtomicBool,
    write_failed: AtomicBool,
    farewell: Mutex<Option<Line>>,
    stream: TcpStream,
    /// `IDLE`, `RUNNING` or `DONE` (module docs, "The writer").
    writer: AtomicU8,
    /// The queue's receiving end while no writer holds it.
    rx: Mutex<Option<mpsc::Receiver<Line>>>,
    /// Notified by every writer as it leaves; the ending reader waits on it.
    writer_left: Notify,
    /// The reader's worker, where every writer runs.
    home: WorkerId,
    grace: Duration,
}

thread_local! {
    /// Writers claimed (`IDLE` -> `RUNNING`) by pushes on this worker and
    /// not started yet; see [`start_claimed_writers`].
    static CLAIMED: RefCell<Vec<Arc<ConnCtl>>> = const { RefCell::new(Vec::new()) };
}

/// Starts the writers that pushes on this worker claimed.
///
/// A push happens deep in the protocol (a room's broadcast, inside the
/// session and the hub), and a spawn there would add its own frames to the
/// deepest point of every reader's stack: measured, a quarter of the idle
/// readers then reached into a second stack page, where without it almost
/// none do. So a push only claims the writer, and the reader spawns it from
/// the top of its loop, after the line, before it blocks again. Nothing
/// between a push and that point suspends (the hub takes no suspending
/// lock), and any reader on the same worker would start the claimed
/// writers too.
fn start_claimed_writers() {
    while let Some(ctl) = CLAIMED.with(|c| c.borrow_mut().pop()) {
        let home = ctl.home;
        let writer = ctl.clone();
        let spawned = task::Builder::new()
            .name("chat-writer")
            .stack_size(WRITER_STACK)
            .on_worker(home)
            .spawn(move || write_loop(&writer));
        if let Err(e) = spawned {
            // No task can start (live-task limit, shutdown): this client
            // cannot be written to; end it as after a write error.
            eprintln!("chat: cannot start a writer task: {e}");
            ctl.writing_failed(SockShutdown::Both);
        }
    }
}

impl ConnCtl {
    /// After a line was queued: claims the writer unless one runs (or
    /// writing is over), for [`start_claimed_writers`] to start.
    fn wake_writer(self: &Arc<Self>) {
        // Pairs with the fence in `write_loop`'s leaving path.
        fence(Ordering::SeqCst);
        if self.writer.load(Ordering::Relaxed) == IDLE
            && self
                .writer
                .compare_exchange(IDLE, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            CLAIMED.with(|c| c.borrow_mut().push(self.clone()));
        }
    }

    /// Nothing more can be written to this client: marks the connection
    /// closed by a write error (the reader ends with "Write error"), shuts
    /// the socket's `how` side so a blocked reader returns, and ends
    /// writing for good.
    fn writing_failed(&self, how: SockShutdown) {
        self.write_failed.store(true, Ordering::Release);
        self.closed.store(true, Ordering::Release);
        let _ = self.stream.shutdown(how);
        self.writer_leaves(DONE);
    }

    /// The running writer leaves: `DONE` for good, or `IDLE`.
    fn writer_leaves(&self, state: u8) {
        self.writer.store(state, Ordering::Release);
        self.writer_left.notify_one();
    }

    /// The reader's last step: waits until no writer runs, then makes sure
    /// none starts again and shuts the write side (a writer that ended
    /// writing, `DONE`, shut it already).
    fn end_writing(&self) {
        loop {
            match self
                .writer
                .compare_exchange(IDLE, DONE, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let _ = self.stream.shutdown(SockShutdown::Write);
                    return;
                }
                Err(DONE) => return,
                Err(_) => self.writer_left.notified(),
            }
        }
    }
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
        })?;
        self.ctl.wake_writer();
        Ok(())
    }

    fn close(&self, farewell: Line) {
        if !self.ctl.closed.swap(true, Ordering::AcqRel) {
            *self
                .ctl
                .farewell
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(farewell);
            // The reserved slot: wakes a writer blocked on an empty queue,
            // or starts one to say goodbye.
            let _ = self.tx.try_send(Line::from(&[][..]));
            self.ctl.wake_writer();
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
        // Writes wait at most this long before looking at `closed`.
        let _ = stream.set_write_timeout(Some(WRITE_POLL));
        let (tx, rx) = mpsc::channel(self.config.sendq + 1);
        let Some(home) = task::current_worker() else {
            unreachable!("a connection's reader runs on a worker");
        };
        let ctl = Arc::new(ConnCtl {
            closed: AtomicBool::new(false),
            write_failed: AtomicBool::new(false),
            farewell: Mutex::new(None),
            stream: stream.clone(),
            writer: AtomicU8::new(IDLE),
            rx: Mutex::new(Some(rx)),
            writer_left: Notify::new(),
            home,
            grace: self.config.close_grace,
        });
        let outbox = PinstackOutbox {
            tx,
            ctl: ctl.clone(),
            sendq: self.config.sendq,
        };
        let host = peer.ip().to_string();
        let mut session = Session::new(&self.hub, outbox, &host);
        let reason = self.read_loop(&stream, &mut session, &ctl);
        session.disconnect(&self.hub, &reason);
        start_claimed_writers(); // for the QUIT line's recipients
        ctl.end_writing();
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
            // Writers the last line's pushes claimed, before blocking again.
            start_claimed_writers();
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
            // Wait without a buffer: an idle client holds none (the framer
            // frees it after each read that leaves no partial line).
            match stream.readable() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
                Err(e) => return format!("Read error: {e}"),
            }
            let n = match stream.try_read(framer.spare()) {
                Ok(0) if ctl.closed.load(Ordering::Acquire) => continue,
                Ok(0) if self.registry.stopping.load(Ordering::Acquire) => continue,
                Ok(0) => return "Connection closed".into(),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
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
            framer.release_if_empty();
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

thread_local! {
    /// Empty write batches left by this worker's writers, for its next
    /// ones: a writer runs per burst of output (about one per delivery in
    /// the chat workload), and a fresh batch allocated its line list on
    /// the first line (one `malloc` and one `free` per delivery, measured
    /// with a uprobe on `malloc`).
    static SPARE_BATCHES: RefCell<Vec<WriteBatch>> = const { RefCell::new(Vec::new()) };
}

/// Most spare batches a worker keeps (16 lines of capacity each at most).
const SPARE_BATCHES_MAX: usize = 64;

/// A writer's batch, taken from its worker's spares and given back (if
/// empty) when the writer ends, however it ends. A writer never leaves its
/// worker, so it gives the batch back to the list it took it from.
struct SpareBatch(WriteBatch);

impl SpareBatch {
    fn take() -> SpareBatch {
        SpareBatch(
            SPARE_BATCHES
                .with(|s| s.borrow_mut().pop())
                .unwrap_or_default(),
        )
    }
}

impl std::ops::Deref for SpareBatch {
    type Target = WriteBatch;
    fn deref(&self) -> &WriteBatch {
        &self.0
    }
}

impl std::ops::DerefMut for SpareBatch {
    fn deref_mut(&mut self) -> &mut WriteBatch {
        &mut self.0
    }
}

impl Drop for SpareBatch {
    fn drop(&mut self) {
        if self.0.is_empty() {
            let batch = std::mem::take(&mut self.0);
            let _ = SPARE_BATCHES.try_with(|s| {
                let mut s = s.borrow_mut();
                if s.len() < SPARE_BATCHES_MAX {
                    s.push(batch);
                }
            });
        }
    }
}

/// A writer: drains the queue into the socket with vectored writes (the
/// shared lines are not copied) until it is empty; see the module docs for
/// the hand-over and the close protocol.
fn write_loop(ctl: &ConnCtl) {
    let slot = || ctl.rx.lock().unwrap_or_else(PoisonError::into_inner);
    // Whoever stored `RUNNING` started this writer, and the receiver was
    // put back before the `IDLE` it replaced was stored.
    let mut rx = slot()
        .take()
        .expect("IDLE implies the receiver is in place");
    let stream = &ctl.stream;
    let mut batch = SpareBatch::take();
    loop {
        if batch.is_empty() {
            match rx.try_recv() {
                Ok(l) => batch.push(l),
                Err(mpsc::TryRecvError::Empty) => {
                    // All written: put the receiver back, then say so.
                    *slot() = Some(rx);
                    ctl.writer.store(IDLE, Ordering::Release);
                    // Pairs with the fence in `wake_writer`: a line queued
                    // before it is seen here, or its pusher sees `IDLE`
                    // and starts the next writer.
                    fence(Ordering::SeqCst);
                    let queued = slot().as_ref().is_some_and(|r| !r.is_empty());
                    if queued
                        && ctl
                            .writer
                            .compare_exchange(IDLE, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
                            .is_ok()
                    {
                        rx = slot()
                            .take()
                            .expect("IDLE implies the receiver is in place");
                        continue;
                    }
                    ctl.writer_left.notify_one();
                    return;
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    // Every sender is gone: the session ended normally.
                    let _ = stream.shutdown(SockShutdown::Write);
                    ctl.writer_leaves(DONE);
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
                ctl.writing_failed(SockShutdown::Read);
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
    let _ = stream.set_write_timeout(Some(ctl.grace));
    let _ = io::Write::write_all(&mut { stream }, &tail);
    let _ = stream.shutdown(SockShutdown::Both);
    ctl.writer_leaves(DONE);
}
