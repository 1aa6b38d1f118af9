//! Test support shared by the chat and echo server integration tests: the
//! cases every twin must pass (`chat_cases`, `echo_cases`), a chat server
//! factory seam, and a line-oriented chat test client.
#![allow(dead_code, unreachable_pub)]

pub mod chat_cases;
pub mod echo_cases;

use std::net::SocketAddr;
use std::time::Duration;

use pinstack_examples::chat::ChatConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Hang protection for every wait in the tests. Not a performance
/// threshold: only a broken server takes this long.
pub const HANG: Duration = Duration::from_secs(60);

/// Starts a chat server with a given config.
pub trait ChatServerFactory: Sync {
    /// Starts a server listening on `config.addr` (port 0 in tests).
    fn start(&self, config: ChatConfig) -> Box<dyn RunningServer>;
}

/// A started server; dropping it stops it.
pub trait RunningServer {
    /// Where it listens.
    fn addr(&self) -> SocketAddr;
}

/// A config for tests: ephemeral port, 2 workers.
pub fn test_config() -> ChatConfig {
    ChatConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        ..ChatConfig::default()
    }
}

/// A chat client speaking raw lines.
pub struct TestClient {
    pub nick: String,
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

impl TestClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr)
            .await
            .expect("connect to the chat server");
        Self::from_stream(s)
    }

    pub fn from_stream(s: TcpStream) -> Self {
        s.set_nodelay(true).unwrap();
        let (rd, wr) = s.into_split();
        TestClient {
            nick: String::new(),
            rd: BufReader::new(rd),
            wr,
        }
    }

    /// Connects, registers as `nick` and waits for the end of the welcome
    /// burst (422).
    pub async fn register(addr: SocketAddr, nick: &str) -> Self {
        let mut c = Self::connect(addr).await;
        c.nick = nick.to_owned();
        c.send(&format!("NICK {nick}")).await;
        c.send(&format!("USER {nick} 0 * :{nick}")).await;
        c.expect(|l| l.contains(" 001 ")).await;
        c.expect(|l| l.contains(" 422 ")).await;
        c
    }

    /// Joins `room` and waits for the end of NAMES (366).
    pub async fn join(&mut self, room: &str) {
        self.send(&format!("JOIN {room}")).await;
        self.expect(|l| l.contains(" 366 ")).await;
    }

    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.wr
            .write_all(bytes)
            .await
            .expect("write to the chat server");
    }

    /// Sends, but tolerates a server that already closed the connection.
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.wr.write_all(bytes).await
    }

    /// The next line without CRLF, or `None` at EOF (or reset).
    pub async fn next_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let r = tokio::time::timeout(HANG, self.rd.read_until(b'\n', &mut buf))
            .await
            .expect("server sent nothing for 60 s");
        match r {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                assert!(
                    buf.ends_with(b"\r\n"),
                    "server line not ended by CRLF: {buf:?}"
                );
                assert!(buf.len() <= 512, "server line over 512 bytes");
                Some(
                    String::from_utf8(buf[..buf.len() - 2].to_vec())
                        .expect("server sent invalid UTF-8"),
                )
            }
        }
    }

    /// Skips lines until one matches; panics at EOF.
    pub async fn expect(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            match self.next_line().await {
                Some(l) if pred(&l) => return l,
                Some(_) => {}
                None => panic!("{}: connection closed while waiting for a line", self.nick),
            }
        }
    }

    /// Reads everything up to EOF.
    pub async fn read_to_eof(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = self.next_line().await {
            out.push(l);
        }
        out
    }

    /// Sends PING and waits for its PONG: everything the server sent before
    /// is returned.
    pub async fn sync(&mut self, token: &str) -> Vec<String> {
        self.send(&format!("PING {token}")).await;
        let mut seen = Vec::new();
        loop {
            let l = self
                .next_line()
                .await
                .expect("connection closed during sync");
            if l.contains(" PONG ") && l.ends_with(token) {
                return seen;
            }
            seen.push(l);
        }
    }
}

/// The numeric or command of a server line (`:prefix CMD ...`).
pub fn command_of(line: &str) -> &str {
    line.split(' ').nth(1).unwrap_or("")
}
