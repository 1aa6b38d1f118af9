//! One simulated chat client of the load generator.
//!
//! ```text
//!  connect (bounded concurrency) ─▶ NICK/USER/JOIN ─▶ own JOIN echo seen = joined
//!        │ fail/timeout: `failed += 1`              │
//!        ▼                                          ▼
//!      exit              loop { read: verify payloads, answer PING
//!                               control: Wait | Send{phase} | Stop
//!                               timer: send the next payload of the phase }
//! ```
//!
//! In a `Send` phase of total rate M, client `i` of C sends at
//! `start + i/M + k*C/M` for k = 0, 1, ... while before `end`, so the
//! clients' sends interleave evenly. When it has nothing left to send in the
//! phase (or dies during it) it bumps `done_sending` once, which the driver
//! waits for before draining.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};

use super::verify::{parse_payload, payload_text, Receiver, Tally, Verdict};
use crate::chat::framing::{Frame, LineFramer};
use crate::chat::proto::{self, MAX_LINE};
use crate::{connect_from, sys, Histogram};

/// What the driver tells every client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Control {
    /// Connected, not sending.
    Wait,
    /// Send at `rate` messages/s in total between `start` and `end`.
    Send {
        start: Instant,
        end: Instant,
        rate: f64,
    },
    /// Leave.
    Stop,
}

/// State shared by the driver and every client.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tally: Tally,
    pub(crate) hist: Histogram,
    pub(crate) sent: AtomicU64,
    pub(crate) expected: AtomicU64,
    pub(crate) joined: AtomicUsize,
    pub(crate) failed: AtomicUsize,
    pub(crate) alive: AtomicUsize,
    pub(crate) disconnects: AtomicU64,
    pub(crate) done_sending: AtomicUsize,
    pub(crate) server_errors: AtomicU64,
    pub(crate) pings: AtomicU64,
    pub(crate) room_size: Vec<AtomicU64>,
    pub(crate) first_error: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn new(rooms: usize) -> Self {
        Self {
            tally: Tally::default(),
            hist: Histogram::new(),
            sent: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            joined: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            alive: AtomicUsize::new(0),
            disconnects: AtomicU64::new(0),
            done_sending: AtomicUsize::new(0),
            server_errors: AtomicU64::new(0),
            pings: AtomicU64::new(0),
            room_size: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            first_error: Mutex::new(None),
        }
    }

    fn note_error(&self, e: String) {
        let mut f = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f.get_or_insert(e);
    }
}

/// Who one client is.
#[derive(Debug, Clone)]
pub(crate) struct ClientSpec {
    pub(crate) index: usize,
    pub(crate) clients: usize,
    pub(crate) rooms: usize,
    pub(crate) addr: SocketAddr,
    pub(crate) source: Option<IpAddr>,
    pub(crate) nick_prefix: Arc<str>,
    pub(crate) connect_deadline: Instant,
}

impl ClientSpec {
    fn room(&self) -> usize {
        self.index % self.rooms
    }
    fn nick(&self) -> String {
        format!("{}{}", self.nick_prefix, self.index)
    }
}

/// The room name of room `r`.
pub(crate) fn room_name(r: usize) -> String {
    format!("#r{r}")
}

/// The client's sending schedule in the current phase.
struct Schedule {
    start: Instant,
    end: Instant,
    offset: Duration,
    period: Duration,
    k: u32,
}

impl Schedule {
    fn next(&self) -> Option<Instant> {
        let t = self.start + self.offset + self.period * self.k;
        (t < self.end).then_some(t)
    }
}

pub(crate) async fn run_client(
    spec: ClientSpec,
    shared: Arc<Shared>,
    mut ctl: watch::Receiver<Control>,
    sem: Arc<Semaphore>,
) {
    let permit = sem.acquire_owned().await;
    let joined =
        tokio::time::timeout_at(spec.connect_deadline.into(), connect_and_join(&spec)).await;
    drop(permit);
    let (mut stream, mut framer) = match joined {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            shared.note_error(format!("client {}: {e}", spec.index));
            shared.failed.fetch_add(1, Ordering::Release);
            return;
        }
        Err(_) => {
            shared.note_error(format!("client {}: connect/register timed out", spec.index));
            shared.failed.fetch_add(1, Ordering::Release);
            return;
        }
    };
    let room = spec.room();
    let room_name = room_name(room);
    shared.room_size[room].fetch_add(1, Ordering::Relaxed);
    shared.alive.fetch_add(1, Ordering::Relaxed);
    shared.joined.fetch_add(1, Ordering::Release);

    let mut receiver = Receiver::new(spec.index, spec.clients, spec.rooms);
    let mut seq: u32 = 0;
    let mut schedule: Option<Schedule> = None;
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let timer = tokio::time::sleep_until(far);
    tokio::pin!(timer);
    let stopped = loop {
        let sending = schedule.is_some();
        tokio::select! {
            r = ctl.changed() => {
                if r.is_err() {
                    break true;
                }
                let c = *ctl.borrow_and_update();
                if schedule.take().is_some() {
                    // A phase ended before this client finished it.
                    shared.done_sending.fetch_add(1, Ordering::Release);
                }
                match c {
                    Control::Stop => break true,
                    Control::Wait => {}
                    Control::Send { start, end, rate } => {
                        let rate = rate.max(1e-6);
                        let s = Schedule {
                            start,
                            end,
                            offset: Duration::from_secs_f64(spec.index as f64 / rate),
                            period: Duration::from_secs_f64(spec.clients as f64 / rate),
                            k: 0,
                        };
                        match s.next() {
                            Some(t) => {
                                timer.as_mut().reset(t.into());
                                schedule = Some(s);
                            }
                            None => {
                                shared.done_sending.fetch_add(1, Ordering::Release);
                            }
                        }
                    }
                }
            }
            () = &mut timer, if sending => {
                seq += 1;
                let text = payload_text(spec.index, seq, sys::monotonic_ns());
                let line = format!("PRIVMSG {room_name} :{text}\r\n");
                let others = shared.room_size[room].load(Ordering::Relaxed).saturating_sub(1);
                shared.expected.fetch_add(others, Ordering::Relaxed);
                shared.sent.fetch_add(1, Ordering::Relaxed);
                if stream.write_all(line.as_bytes()).await.is_err() {
                    break false;
                }
                if let Some(s) = schedule.as_mut() {
                    s.k += 1;
                    match s.next() {
                        Some(t) => timer.as_mut().reset(t.into()),
                        None => {
                            schedule = None;
                            timer.as_mut().reset(far);
                            shared.done_sending.fetch_add(1, Ordering::Release);
                        }
                    }
                }
            }
            r = stream.read(framer.spare()) => {
                let n = match r {
                    Ok(0) | Err(_) => break false,
                    Ok(n) => n,
                };
                framer.commit(n);
                if handle_lines(&mut framer, &mut stream, &mut receiver, &shared).await.is_err() {
                    break false;
                }
            }
        }
    };
    if !stopped {
        shared.disconnects.fetch_add(1, Ordering::Relaxed);
        if schedule.is_some() {
            shared.done_sending.fetch_add(1, Ordering::Release);
        }
    }
    shared.alive.fetch_sub(1, Ordering::Relaxed);
}

/// A 4xx/5xx numeric other than 422 (no MOTD, part of a normal welcome).
fn is_error_numeric(cmd: &str) -> bool {
    cmd.len() == 3 && cmd.starts_with(['4', '5']) && cmd != "422"
}

/// Processes every complete line from the server.
async fn handle_lines(
    framer: &mut LineFramer,
    stream: &mut TcpStream,
    receiver: &mut Receiver,
    shared: &Shared,
) -> io::Result<()> {
    while let Some(frame) = framer.next_frame() {
        let Frame::Line(l) = frame else {
            shared.note_error("server sent a line over 512 bytes".into());
            continue;
        };
        let Ok(m) = proto::parse(l) else { continue };
        if m.is("PRIVMSG") {
            if let Some(p) = m.param(1).and_then(parse_payload) {
                if receiver.accept(p, &shared.tally) == Verdict::Fresh {
                    shared
                        .hist
                        .record(sys::monotonic_ns().saturating_sub(p.sent_ns));
                }
            }
        } else if m.is("PING") {
            let token = m.param(0).unwrap_or("");
            shared.pings.fetch_add(1, Ordering::Relaxed);
            stream
                .write_all(format!("PONG :{token}\r\n").as_bytes())
                .await?;
        } else if m.is("ERROR") {
            shared.note_error(format!("server: {}", String::from_utf8_lossy(l)));
        } else if is_error_numeric(m.command()) {
            shared.server_errors.fetch_add(1, Ordering::Relaxed);
            shared.note_error(format!("server: {}", String::from_utf8_lossy(l)));
        }
    }
    Ok(())
}

/// Connects, registers and joins; returns once the server echoed the JOIN.
async fn connect_and_join(spec: &ClientSpec) -> io::Result<(TcpStream, LineFramer)> {
    let mut s = connect_from(spec.source, spec.addr).await?;
    let nick = spec.nick();
    let room = room_name(spec.room());
    let reg = format!("NICK {nick}\r\nUSER {nick} 0 * :load client\r\nJOIN {room}\r\n");
    s.write_all(reg.as_bytes()).await?;
    let mut framer = LineFramer::new(MAX_LINE);
    loop {
        let n = s.read(framer.spare()).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection during registration",
            ));
        }
        framer.commit(n);
        while let Some(frame) = framer.next_frame() {
            let Frame::Line(l) = frame else { continue };
            let Ok(m) = proto::parse(l) else { continue };
            let from_me = m
                .prefix()
                .is_some_and(|p| p.split('!').next() == Some(nick.as_str()));
            if m.is("JOIN") && from_me {
                return Ok((s, framer));
            }
            if m.is("ERROR") || is_error_numeric(m.command()) {
                return Err(io::Error::other(format!(
                    "server refused registration: {}",
                    String::from_utf8_lossy(l)
                )));
            }
            if m.is("PING") {
                let t = m.param(0).unwrap_or("").to_owned();
                s.write_all(format!("PONG :{t}\r\n").as_bytes()).await?;
            }
        }
    }
}
