//! The chat load generator's own verification: zero loss against the tokio
//! twin, and loss / duplicates reported against test doubles that drop or
//! repeat messages.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pinstack_examples::chat::load::{self, LoadConfig, Ramp};
use pinstack_examples::chat::{tokio_server, ChatConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn small_load(addr: SocketAddr) -> LoadConfig {
    let mut c = LoadConfig::new(addr);
    c.clients = 200;
    c.rooms = 10;
    c.rate = 400.0;
    c.duration = Duration::from_millis(1500);
    c.drain = Duration::from_secs(10);
    c.workers = 2;
    c
}

fn tokio_twin() -> tokio_server::ServerHandle {
    tokio_server::spawn(ChatConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        ..ChatConfig::default()
    })
    .unwrap()
}

#[test]
fn zero_loss_against_the_tokio_twin() {
    let server = tokio_twin();
    let mut cfg = small_load(server.addr());
    cfg.server_pid = Some(std::process::id()); // the server runs in this process
    cfg.hold = std::time::Duration::from_millis(100); // RSS read after it too
    let r = load::run(&cfg).unwrap();
    assert_eq!(
        (r.connected, r.connect_failures, r.disconnects),
        (200, 0, 0),
        "{r}"
    );
    let s = r.steady.as_ref().unwrap();
    assert!(s.sent > 0, "{r}");
    assert_eq!(
        s.expected,
        s.sent * 19,
        "20 members per room, no echo to the sender"
    );
    assert_eq!(s.delivered, s.expected, "{r}");
    assert_eq!(
        (s.lost, s.duplicates, s.gaps, s.misrouted),
        (0, 0, 0, 0),
        "{r}"
    );
    assert!(
        s.p50_us > 0.0 && s.p50_us <= s.p99_us && s.p99_us <= s.max_us,
        "{r}"
    );
    assert!(
        s.server_cpu.is_some() && s.cpu_us_per_delivery.is_some(),
        "{r}"
    );
    assert!(
        r.server_rss_kib.is_some() && r.rss_kib_per_client.is_some(),
        "{r}"
    );
    assert!(
        r.server_rss_held_kib.is_some() && r.rss_kib_per_client_held.is_some(),
        "{r}"
    );
    assert_eq!(server.stats().sendq_exceeded(), 0);
    server.stop().unwrap();
}

#[test]
fn ramp_steps_are_reported_in_order() {
    let server = tokio_twin();
    let mut cfg = small_load(server.addr());
    cfg.duration = Duration::ZERO;
    cfg.ramp = Some(Ramp {
        start: 200.0,
        step: 200.0,
        steps: 2,
        step_duration: Duration::from_millis(500),
    });
    let r = load::run(&cfg).unwrap();
    assert!(r.steady.is_none());
    assert!(!r.ramp.is_empty() && r.ramp.len() <= 2, "{r}");
    for (k, step) in r.ramp.iter().enumerate() {
        assert_eq!(step.rate, 200.0 * (k + 1) as f64);
        assert_eq!(step.lost, 0, "{r}");
    }
    // The peak is the last passing step; a failed step ends the ramp.
    let passed: Vec<f64> = r
        .ramp
        .iter()
        .take_while(|s| s.pass)
        .map(|s| s.rate)
        .collect();
    assert_eq!(r.peak_msgs_per_s, passed.last().copied());
    if r.ramp.iter().any(|s| !s.pass) {
        assert!(!r.ramp.last().unwrap().pass);
    }
    server.stop().unwrap();
}

/// A minimal chat server that relays room messages but drops every
/// `drop_every`-th delivery and sends every `dup_every`-th twice (0: never).
fn faulty_double(drop_every: u64, dup_every: u64) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            type Members = Vec<(u64, mpsc::UnboundedSender<String>)>;
            let rooms: Arc<Mutex<HashMap<String, Members>>> = Arc::default();
            let counter = Arc::new(AtomicU64::new(1));
            let mut next_id = 0;
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                next_id += 1;
                let (id, rooms, counter) = (next_id, rooms.clone(), counter.clone());
                tokio::spawn(async move {
                    let (rd, mut wr) = s.into_split();
                    let (otx, mut orx) = mpsc::unbounded_channel::<String>();
                    tokio::spawn(async move {
                        while let Some(l) = orx.recv().await {
                            if wr.write_all(l.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    });
                    let mut lines = BufReader::new(rd).lines();
                    let mut nick = String::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let mut parts = line.splitn(3, ' ');
                        match (parts.next(), parts.next()) {
                            (Some("NICK"), Some(n)) => nick = n.to_owned(),
                            (Some("USER"), _) => {
                                let _ = otx.send(format!(":double 001 {nick} :hi\r\n"));
                            }
                            (Some("JOIN"), Some(r)) => {
                                rooms
                                    .lock()
                                    .unwrap()
                                    .entry(r.to_owned())
                                    .or_default()
                                    .push((id, otx.clone()));
                                let _ = otx.send(format!(":{nick}!u@h JOIN {r}\r\n"));
                            }
                            (Some("PRIVMSG"), Some(r)) => {
                                let text = parts.next().unwrap_or("");
                                let out = format!(":{nick}!u@h PRIVMSG {r} {text}\r\n");
                                let rooms = rooms.lock().unwrap();
                                for (mid, m) in rooms.get(r).into_iter().flatten() {
                                    if *mid == id {
                                        continue;
                                    }
                                    let k = counter.fetch_add(1, Ordering::Relaxed);
                                    if drop_every > 0 && k % drop_every == 0 {
                                        continue;
                                    }
                                    let _ = m.send(out.clone());
                                    if dup_every > 0 && k % dup_every == 0 {
                                        let _ = m.send(out.clone());
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                });
            }
        });
    });
    rx.recv().unwrap()
}

#[test]
fn loss_is_reported_against_a_dropping_server() {
    let addr = faulty_double(7, 0);
    let mut cfg = small_load(addr);
    cfg.drain = Duration::from_secs(3);
    let r = load::run(&cfg).unwrap();
    let s = r.steady.as_ref().unwrap();
    assert!(s.sent > 0);
    assert!(s.lost > 0, "a server dropping 1 in 7 must show loss: {r}");
    assert_eq!(s.lost, s.expected - s.delivered);
    // Roughly one in seven deliveries is gone.
    assert!(
        s.lost * 10 > s.expected / 10 && s.lost < s.expected / 3,
        "{r}"
    );
    assert!(s.gaps > 0, "{r}");
    assert!(!s.pass);
}

#[test]
fn duplicates_are_reported_against_a_repeating_server() {
    let addr = faulty_double(0, 5);
    let cfg = small_load(addr);
    let r = load::run(&cfg).unwrap();
    let s = r.steady.as_ref().unwrap();
    assert!(s.sent > 0);
    assert_eq!(s.lost, 0, "{r}");
    assert_eq!(s.delivered, s.expected, "{r}");
    assert!(
        s.duplicates > 0,
        "a server repeating 1 in 5 must show duplicates: {r}"
    );
}

#[test]
fn unreachable_server_is_an_error_not_a_hang() {
    // Bind then drop: nothing listens on this port any more.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = small_load(addr);
    cfg.clients = 20;
    cfg.rooms = 2;
    let err = load::run(&cfg).unwrap_err();
    assert!(err.to_string().contains("no client could join"), "{err}");
}

#[test]
fn hold_keeps_idle_clients_connected_and_answers_pings() {
    let server = tokio_server::spawn(ChatConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        ping_interval: Duration::from_millis(50),
        ping_timeout: Duration::from_secs(30),
        ..ChatConfig::default()
    })
    .unwrap();
    let mut cfg = small_load(server.addr());
    cfg.clients = 50;
    cfg.rooms = 5;
    cfg.duration = Duration::ZERO;
    cfg.hold = Duration::from_millis(1500);
    let r = load::run(&cfg).unwrap();
    assert!(r.steady.is_none() && r.ramp.is_empty());
    assert_eq!((r.connected, r.held, r.disconnects), (50, 50, 0), "{r}");
    // Idle for 30 PING intervals: everyone was pinged at least once, and
    // answered (no ping timeouts, nobody dropped).
    assert!(r.pings_answered >= 50, "{r}");
    assert_eq!(server.stats().ping_timeouts(), 0);
    server.stop().unwrap();
}
