//! The pinstack server's writers exist only while a client has output:
//! idle clients hold one task (the reader), and a later message
//! still reaches everyone through a new writer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pinstack_examples::chat::{pinstack_server, ChatConfig};

fn free_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `pinstack_live_tasks` from the admin port.
fn live_tasks(admin: std::net::SocketAddr) -> u64 {
    let mut s = TcpStream::connect(admin).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
        .lines()
        .find_map(|l| l.strip_prefix("pinstack_live_tasks "))
        .expect("pinstack_live_tasks in the metrics")
        .trim()
        .parse()
        .unwrap()
}

/// Polls until `cond` holds (a minute at most: a guard against a hang,
/// not a timing check).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn join(addr: std::net::SocketAddr, nick: &str) -> Client {
        let w = TcpStream::connect(addr).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut c = Client {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        };
        c.send(&format!(
            "NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #room"
        ));
        c.expect(" JOIN #room");
        c
    }
    fn send(&mut self, line: &str) {
        self.w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }
    fn expect(&mut self, needle: &str) -> String {
        loop {
            let mut l = String::new();
            assert!(
                self.r.read_line(&mut l).unwrap() > 0,
                "closed before {needle:?}"
            );
            if l.contains(needle) {
                return l;
            }
        }
    }
}

#[test]
fn idle_clients_keep_no_writer_and_later_messages_still_arrive() {
    let admin = free_port();
    let server = pinstack_server::spawn(ChatConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        admin_addr: Some(admin),
        ..ChatConfig::default()
    })
    .unwrap();
    wait_until("the admin port", || TcpStream::connect(admin).is_ok());
    let base = live_tasks(admin);
    let n = 20u64;
    let mut clients: Vec<Client> = (0..n)
        .map(|i| Client::join(server.addr(), &format!("u{i}")))
        .collect();
    // Every client got lines, so each had a writer; once their queues are
    // drained, only the readers are left.
    wait_until("the writers to leave", || live_tasks(admin) <= base + n);
    assert_eq!(live_tasks(admin), base + n);
    clients[0].send("PRIVMSG #room :after the writers left");
    for c in &mut clients[1..] {
        c.expect("PRIVMSG #room :after the writers left");
    }
    drop(clients);
    server.stop().unwrap();
}
