//! `readable` + `try_read`: waiting for input without holding a buffer,
//! over real loopback and Unix sockets, from tasks and from plain threads.

use pinstack::net::{TcpListener, TcpStream, UnixStream};
use pinstack::Runtime;
use std::io::{self, Write};
use std::net::Shutdown;
use std::time::Duration;

fn rt(workers: usize) -> Runtime {
    Runtime::builder()
        .worker_threads(workers)
        .build()
        .expect("runtime starts")
}

/// A connected pair: (the pinstack side, the std peer).
fn tcp_pair() -> (TcpStream, std::net::TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (s, peer)
}

#[test]
fn try_read_on_an_empty_socket_is_would_block_and_readable_waits_for_data() {
    let rt = rt(2);
    rt.block_on(|| {
        let (s, mut peer) = tcp_pair();
        let mut buf = [0u8; 16];
        let e = s.try_read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        // The data arrives while this task waits in `readable`.
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            peer.write_all(b"abc").unwrap();
            peer
        });
        s.readable().unwrap();
        // `readable` may be stale; a reader loops until it gets the bytes.
        let n = loop {
            match s.try_read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.readable().unwrap(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..n], b"abc");
        // Drained: the next attempt is WouldBlock again, and `readable`
        // waits (here: until its timeout) instead of trusting the old
        // readiness.
        let e = s.try_read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        assert_eq!(s.readable().unwrap_err().kind(), io::ErrorKind::TimedOut);
        drop(writer.join().unwrap());
    });
}

#[test]
fn readable_honours_the_read_timeout_and_reports_the_end_of_the_stream() {
    let rt = rt(1);
    rt.block_on(|| {
        let (s, peer) = tcp_pair();
        s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        assert_eq!(s.readable().unwrap_err().kind(), io::ErrorKind::TimedOut);
        peer.shutdown(Shutdown::Write).unwrap();
        s.readable().unwrap();
        let mut buf = [0u8; 8];
        let n = loop {
            match s.try_read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.readable().unwrap(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(n, 0, "the end of the stream");
    });
}

/// The pattern `readable` exists for: many connections wait with no
/// buffer, and a reader borrows one only while it reads. Every byte of
/// every connection arrives, in order.
#[test]
fn many_tasks_wait_without_buffers_and_receive_everything_in_order() {
    const CONNS: usize = 50;
    const MSGS: usize = 200;
    let rt = rt(2);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = rt.spawn(move || {
        let mut readers = Vec::new();
        for _ in 0..CONNS {
            let (s, _) = l.accept().unwrap();
            readers.push(pinstack::spawn(move || {
                let mut got = Vec::new();
                loop {
                    s.readable().unwrap();
                    let mut buf = vec![0u8; 64]; // only while reading
                    match s.try_read(&mut buf) {
                        Ok(0) => return got,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }));
        }
        readers
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let clients: Vec<_> = (0..CONNS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                for m in 0..MSGS {
                    s.write_all(format!("{c}:{m};").as_bytes()).unwrap();
                    if m % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                s.shutdown(Shutdown::Write).unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let mut streams = server.join().unwrap();
    assert_eq!(streams.len(), CONNS);
    streams.sort_by_key(|g| {
        let s = String::from_utf8_lossy(g);
        s.split(':').next().unwrap().parse::<usize>().unwrap()
    });
    for (c, got) in streams.iter().enumerate() {
        let want: String = (0..MSGS).map(|m| format!("{c}:{m};")).collect();
        assert_eq!(String::from_utf8_lossy(got), want, "connection {c}");
    }
}

#[test]
fn a_plain_thread_blocks_in_readable_and_unix_streams_have_it_too() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        a.try_read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        (&b).write_all(b"hi").unwrap();
        b
    });
    a.readable().unwrap(); // no runtime here: the thread blocks
    assert_eq!(a.try_read(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"hi");
    drop(t.join().unwrap());
    // And inside a task, on a worker.
    let rt = rt(1);
    rt.block_on(move || {
        let (a, b) = UnixStream::pair().unwrap();
        (&b).write_all(b"x").unwrap();
        a.readable().unwrap();
        assert_eq!(a.try_read(&mut buf).unwrap(), 1);
        drop(b);
        a.readable().unwrap();
        assert_eq!(a.try_read(&mut buf).unwrap(), 0);
    });
}
