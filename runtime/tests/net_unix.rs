//! Unix domain sockets on real socket files: echo between coroutines,
//! pairs, timeouts, a reader and a writer task on one connection, errors.

use pinstack::net::{UnixListener, UnixStream};
use pinstack::Runtime;
use std::io::{ErrorKind, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn rt() -> Runtime {
    Runtime::builder()
        .worker_threads(2)
        .ignore_environment()
        .build()
        .unwrap()
}

/// A fresh directory for this test's socket files, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("pinstack-unix-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn fifty_coroutine_clients_echo_through_one_listener() {
    let dir = Dir::new("echo");
    let path = dir.path("echo.sock");
    let rt = rt();
    let listener = UnixListener::bind(&path).unwrap();
    let server = rt.spawn(move || {
        for _ in 0..50 {
            let (mut conn, _) = listener.accept().unwrap();
            pinstack::spawn(move || {
                let mut buf = [0u8; 256];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    conn.write_all(&buf[..n]).unwrap();
                }
            });
        }
        listener.accept_stats()
    });
    let clients: Vec<_> = (0..50u32)
        .map(|i| {
            let path = path.clone();
            rt.spawn(move || {
                let mut c = UnixStream::connect(&path).unwrap();
                for k in 0..20u32 {
                    let msg = format!("client {i} message {k}");
                    c.write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0u8; msg.len()];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.as_bytes());
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let stats = server.join().unwrap();
    assert_eq!(stats.accepted, 50);
    assert_eq!(stats.fd_exhausted, 0);
}

#[test]
fn a_pair_carries_data_and_a_read_timeout_times_out() {
    let rt = rt();
    let (a, b) = UnixStream::pair().unwrap();
    let d = Duration::from_millis(20);
    let (timed_out, waited, got) = rt.block_on(move || {
        b.set_read_timeout(Some(d)).unwrap();
        let mut buf = [0u8; 8];
        let start = Instant::now();
        let e = b.read(&mut buf).unwrap_err();
        let waited = start.elapsed();
        (&a).write_all(b"late").unwrap();
        let n = b.read(&mut buf).unwrap();
        (e.kind(), waited, buf[..n].to_vec())
    });
    assert_eq!(timed_out, ErrorKind::TimedOut);
    assert!(waited >= d, "{waited:?}");
    assert_eq!(got, b"late");
}

#[test]
fn a_reader_task_and_a_writer_task_share_one_connection() {
    let rt = rt();
    let (a, b) = UnixStream::pair().unwrap();
    let reader_side = a.try_clone().unwrap();
    let n = 100_000usize;
    let reader = rt.spawn(move || {
        let mut total = 0;
        let mut buf = [0u8; 4096];
        let r = reader_side;
        while total < n {
            total += r.read(&mut buf).unwrap();
        }
        total
    });
    let writer = rt.spawn(move || {
        let chunk = [7u8; 1000];
        for _ in 0..n / 1000 {
            (&a).write_all(&chunk).unwrap();
        }
    });
    // The peer echoes from a plain thread (blocking calls there).
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut left = n;
        while left > 0 {
            let k = b.read(&mut buf).unwrap();
            (&b).write_all(&buf[..k]).unwrap();
            left -= k;
        }
    });
    writer.join().unwrap();
    assert_eq!(reader.join().unwrap(), n);
    echo.join().unwrap();
}

#[test]
fn binding_a_taken_path_and_connecting_to_nothing_fail_clearly() {
    let dir = Dir::new("errors");
    let path = dir.path("taken.sock");
    let _l = UnixListener::bind(&path).unwrap();
    assert_eq!(
        UnixListener::bind(&path).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    let e = UnixStream::connect(dir.path("nobody.sock")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}
