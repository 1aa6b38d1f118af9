//! Behaviour every echo server twin must show, over loopback. Each case
//! takes the twin's `spawn` and starts its own server.

use std::io::{self, Read, Write};
use std::time::Duration;

use pinstack_examples::echo::load::{self, EchoLoadConfig};
use pinstack_examples::echo::tokio_server::EchoHandle;
use pinstack_examples::echo::EchoConfig;

/// A twin's `spawn` (`tokio_server::spawn`, `pinstack_server::spawn`).
pub type EchoSpawn = fn(EchoConfig) -> io::Result<EchoHandle>;

fn server(spawn: EchoSpawn) -> EchoHandle {
    spawn(EchoConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        ..EchoConfig::default()
    })
    .expect("start the echo server")
}

/// 200,000 bytes written at once come back exactly, and are counted.
pub fn echoes_large_writes_exactly(spawn: EchoSpawn) {
    let s = server(spawn);
    let mut c = std::net::TcpStream::connect(s.addr()).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = c.try_clone().unwrap();
    let d2 = data.clone();
    let t = std::thread::spawn(move || w.write_all(&d2).unwrap());
    let mut back = vec![0; data.len()];
    c.read_exact(&mut back).unwrap();
    t.join().unwrap();
    assert!(back == data);
    assert_eq!(s.stats().bytes(), 200_000);
    assert_eq!(s.stats().connections(), 1);
    drop(c);
    s.stop().unwrap();
}

/// The load generator's 50 connections all get in and measure round trips
/// with ordered percentiles; the server counts what they sent.
pub fn loadgen_measures_round_trips(spawn: EchoSpawn) {
    let s = server(spawn);
    let mut cfg = EchoLoadConfig::new(s.addr());
    cfg.connections = 50;
    cfg.duration = Duration::from_millis(700);
    cfg.warmup = Duration::from_millis(100);
    cfg.workers = 2;
    let r = load::run(&cfg).unwrap();
    assert_eq!((r.connections, r.connect_failures), (50, 0), "{r}");
    assert!(r.round_trips > 0, "{r}");
    assert_eq!((r.mismatches, r.io_errors), (0, 0), "{r}");
    assert!(
        r.p50_us > 0.0 && r.p50_us <= r.p99_us && r.p99_us <= r.p999_us && r.p999_us <= r.max_us,
        "{r}"
    );
    assert_eq!(s.stats().accepted(), 50);
    // Every measured round trip moved 64 bytes each way (plus warmup).
    assert!(s.stats().bytes() >= r.round_trips * 64);
    s.stop().unwrap();
}
