//! The pinstack echo server over loopback (same cases as the tokio twin).

use std::io::{Read, Write};
use std::time::Duration;

use pinstack_examples::echo::load::{self, EchoLoadConfig};
use pinstack_examples::echo::{pinstack_server, EchoConfig};

fn server() -> pinstack_examples::echo::tokio_server::EchoHandle {
    pinstack_server::spawn(EchoConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        ..EchoConfig::default()
    })
    .unwrap()
}

#[test]
fn echoes_large_writes_exactly() {
    let s = server();
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

#[test]
fn loadgen_measures_round_trips() {
    let s = server();
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

#[test]
fn loadgen_detects_a_corrupting_server() {
    // A server that echoes with the last byte changed.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while c.read_exact(&mut buf).is_ok() {
                    buf[63] ^= 0xff;
                    if c.write_all(&buf).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let mut cfg = EchoLoadConfig::new(addr);
    cfg.connections = 4;
    cfg.duration = Duration::from_millis(300);
    cfg.warmup = Duration::ZERO;
    let r = load::run(&cfg).unwrap();
    assert!(r.mismatches > 0, "{r}");
}
