//! The echo server's tokio twin (the cases shared with the pinstack twin,
//! `common/echo_cases.rs`) and the echo load generator.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::echo_cases;
use pinstack_examples::echo::load::{self, EchoLoadConfig};
use pinstack_examples::echo::tokio_server;

#[test]
fn echoes_large_writes_exactly() {
    echo_cases::echoes_large_writes_exactly(tokio_server::spawn);
}

#[test]
fn loadgen_measures_round_trips() {
    echo_cases::loadgen_measures_round_trips(tokio_server::spawn);
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
