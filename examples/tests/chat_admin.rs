//! The pinstack chat server's admin port serves Prometheus metrics.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pinstack_examples::chat::{pinstack_server, ChatConfig};

fn free_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn admin_port_serves_prometheus_text() {
    let admin = free_port();
    let cfg = ChatConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        admin_addr: Some(admin),
        ..ChatConfig::default()
    };
    let server = pinstack_server::spawn(cfg).unwrap();
    // The admin listener is bound right after the chat one: retry briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect(admin) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "admin port never opened: {e}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    // A chat client connects too, so the counters have something to count.
    let chat = TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len, body.len());
    assert!(body.contains("# TYPE pinstack_worker_resumes_total counter"));
    assert!(body.contains("pinstack_worker_resumes_total{worker=\"1\"}"));
    assert!(body.contains("pinstack_live_tasks "));
    drop(chat);
    server.stop().unwrap();
}
