//! TCP and UDP over real loopback sockets.

use pinstack::net::{TcpListener, TcpStream, UdpSocket};
use pinstack::{task, Runtime};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

fn rt(workers: usize) -> Runtime {
    Runtime::builder()
        .worker_threads(workers)
        .build()
        .expect("runtime starts")
}

/// An echo server task; returns its address.
fn echo_server() -> io::Result<std::net::SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    pinstack::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            pinstack::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if (&s).write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

#[test]
fn echo_many_clients_in_tasks() {
    let rt = rt(2);
    let ok = rt.block_on(|| {
        let addr = echo_server().unwrap();
        let clients: Vec<_> = (0..200)
            .map(|i| {
                pinstack::spawn(move || -> io::Result<bool> {
                    let mut c = TcpStream::connect(addr)?;
                    let mut r = BufReader::new(c.try_clone()?);
                    for j in 0..20 {
                        writeln!(c, "client {i} line {j}")?;
                        let mut line = String::new();
                        r.read_line(&mut line)?;
                        if line != format!("client {i} line {j}\n") {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(ok, 200);
}

#[test]
fn half_close_delivers_eof_and_keeps_other_direction() {
    let rt = rt(2);
    rt.block_on(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = pinstack::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut all = Vec::new();
            (&s).read_to_end(&mut all).unwrap(); // ends at the client's FIN
            (&s).write_all(format!("got {}", all.len()).as_bytes())
                .unwrap();
        });
        let c = TcpStream::connect(addr).unwrap();
        (&c).write_all(&[7u8; 10_000]).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        (&c).read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "got 10000");
        server.join().unwrap();
    });
}

#[test]
fn peer_reset_is_an_error_not_a_hang() {
    let rt = rt(2);
    rt.block_on(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        // SO_LINGER 0 makes close send a RST
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
        let mut buf = [0u8; 16];
        let mut saw_error_or_eof = false;
        for _ in 0..3 {
            match s.read(&mut buf) {
                Ok(0) => saw_error_or_eof = true,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
                    saw_error_or_eof = true;
                }
                Ok(n) => panic!("read {n} bytes from a reset connection"),
            }
        }
        assert!(saw_error_or_eof);
    });
}

#[test]
fn read_timeout_returns_timed_out() {
    let rt = rt(2);
    rt.block_on(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, _) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let t = Instant::now();
        let e = c.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert!(c.set_read_timeout(Some(Duration::ZERO)).is_err());
    });
}

#[test]
fn write_timeout_when_peer_never_reads() {
    let rt = rt(2);
    rt.block_on(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, _) = l.accept().unwrap();
        c.set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let chunk = vec![1u8; 1 << 20];
        let mut written = 0usize;
        let err = loop {
            match c.write(&chunk) {
                Ok(n) => written += n,
                Err(e) => break e,
            }
            assert!(written < 1 << 30, "the socket buffer never filled");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(written > 0);
    });
}

#[test]
fn large_write_suspends_until_reader_drains() {
    let rt = rt(2);
    let total = rt.block_on(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let writer = pinstack::spawn(move || {
            let c = TcpStream::connect(addr).unwrap();
            let data: Vec<u8> = (0..32 << 20).map(|i| (i % 251) as u8).collect();
            (&c).write_all(&data).unwrap(); // far more than the socket buffers
        });
        let (s, _) = l.accept().unwrap();
        let mut got = 0usize;
        let mut buf = vec![0u8; 65536];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, ((got + k) % 251) as u8);
            }
            got += n;
        }
        writer.join().unwrap();
        got
    });
    assert_eq!(total, 32 << 20);
}

#[test]
fn blocking_path_on_plain_threads() {
    // No runtime at all: the same types block the thread.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut buf = [0u8; 5];
        (&s).read_exact(&mut buf).unwrap();
        (&s).write_all(&buf).unwrap();
    });
    let c = TcpStream::connect(addr).unwrap();
    (&c).write_all(b"plain").unwrap();
    let mut back = [0u8; 5];
    (&c).read_exact(&mut back).unwrap();
    assert_eq!(&back, b"plain");
    t.join().unwrap();
    // the server thread closed its side: EOF, without a runtime
    assert_eq!(c.read(&mut back).unwrap(), 0);
    // and a read timeout works on a plain thread too
    let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let c2 = TcpStream::connect(l2.local_addr().unwrap()).unwrap();
    let _s2 = l2.accept().unwrap();
    c2.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    assert_eq!(
        c2.read(&mut back).unwrap_err().kind(),
        io::ErrorKind::TimedOut
    );
}

#[test]
fn socket_handed_to_a_task_on_another_worker() {
    let rt = rt(2);
    rt.block_on(|| {
        let addr = echo_server().unwrap();
        // register the socket on this worker by blocking on it once
        let c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        assert_eq!(
            c.read(&mut [0u8; 1]).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        c.set_read_timeout(None).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // many tasks, so some start on the other worker; each uses the socket in turn
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let c = c.clone();
                let tx = tx.clone();
                task::Builder::new()
                    .spawn(move || {
                        let mut buf = [0u8; 6];
                        (&c).write_all(format!("task{i:02}").as_bytes()).unwrap();
                        (&c).read_exact(&mut buf).unwrap();
                        tx.send(String::from_utf8(buf.to_vec()).unwrap()).unwrap();
                    })
                    .unwrap()
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        drop(tx);
        let got: Vec<String> = rx.iter().collect();
        assert_eq!(got.len(), 8);
        for g in got {
            assert!(g.starts_with("task"), "{g}");
        }
    });
}

#[test]
fn reader_and_writer_tasks_share_one_socket() {
    let rt = rt(2);
    let n = rt.block_on(|| {
        let addr = echo_server().unwrap();
        let c = TcpStream::connect(addr).unwrap();
        let w = c.try_clone().unwrap();
        let writer = task::Builder::new()
            .spawn(move || {
                for i in 0..2000u32 {
                    (&w).write_all(&i.to_le_bytes()).unwrap();
                }
            })
            .unwrap();
        let reader = pinstack::spawn(move || {
            let mut buf = [0u8; 4];
            for i in 0..2000u32 {
                (&c).read_exact(&mut buf).unwrap();
                assert_eq!(u32::from_le_bytes(buf), i);
            }
            2000
        });
        writer.join().unwrap();
        reader.join().unwrap()
    });
    assert_eq!(n, 2000);
}

#[test]
fn connect_refused_and_timeout() {
    let rt = rt(1);
    rt.block_on(|| {
        // a port nobody listens on
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = TcpStream::connect(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    });
}

#[test]
fn udp_round_trip_and_timeout() {
    let rt = rt(2);
    rt.block_on(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b_addr = b.local_addr().unwrap();
        let echo = pinstack::spawn(move || {
            let mut buf = [0u8; 64];
            for _ in 0..100 {
                let (n, from) = b.recv_from(&mut buf).unwrap();
                b.send_to(&buf[..n], from).unwrap();
            }
        });
        let mut buf = [0u8; 64];
        for i in 0..100u32 {
            a.send_to(&i.to_le_bytes(), b_addr).unwrap();
            let (n, _) = a.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &i.to_le_bytes());
        }
        echo.join().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(
            a.recv_from(&mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    });
}

#[test]
fn a_task_woken_by_io_runs_before_the_backlog() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    let rt = rt(1);
    let (ran_at, total) = rt.block_on(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        let reader = pinstack::spawn(move || {
            let mut b = [0u8; 8];
            server.read(&mut b).unwrap();
            t.load(SeqCst)
        });
        for _ in 0..3 {
            pinstack::yield_now(); // the reader starts and parks on its socket
        }
        // 200 tasks queued ahead of the reader when its data arrives.
        let busy: Vec<_> = (0..200)
            .map(|_| {
                let t = ticks.clone();
                pinstack::spawn(move || {
                    for _ in 0..10 {
                        t.fetch_add(1, SeqCst);
                        pinstack::yield_now();
                    }
                })
            })
            .collect();
        (&client).write_all(b"x").unwrap();
        let at = reader.join().unwrap();
        for b in busy {
            b.join().unwrap();
        }
        (at, ticks.load(SeqCst))
    });
    assert_eq!(total, 2000);
    // The next I/O poll (one maintenance interval, 61 ticks) puts the reader
    // in front of the queued tasks; at the back it waits for every started
    // one of them (measured: 254 ticks, unstarted tasks taking 8 of every 9).
    assert!(
        ran_at < 150,
        "the reader ran after {ran_at} of {total} ticks"
    );
}

/// Short reads and writes clear the socket's readiness (the next call waits
/// for an event instead of trying the syscall): a byte stream written in
/// bursts of every size, by a peer on a plain thread, with pauses that let
/// the reader drain the socket and park in between, arrives whole and in
/// order, and so does the echo of it written back through short writes.
#[test]
fn stream_of_short_reads_and_writes_arrives_whole() {
    const TOTAL: usize = 4 << 20;
    let pattern = |i: usize| (i * 31 % 251) as u8;
    let rt = rt(2);
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let mut r = s.try_clone().expect("clone");
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 100_000];
            let mut got = 0usize;
            loop {
                let n = r.read(&mut buf).expect("peer read");
                if n == 0 {
                    return got;
                }
                for (k, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(b, pattern(got + k), "echo byte {}", got + k);
                }
                got += n;
            }
        });
        let data: Vec<u8> = (0..TOTAL).map(pattern).collect();
        let (mut off, mut burst) = (0usize, 1usize);
        while off < TOTAL {
            let end = (off + burst).min(TOTAL);
            s.write_all(&data[off..end]).expect("peer write");
            off = end;
            burst = burst * 7 % 65_521 + 1;
            if burst % 5 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        s.shutdown(Shutdown::Write).expect("shutdown");
        reader.join().expect("peer reader")
    });
    let echoed = rt.block_on(move || {
        let s = TcpStream::connect(addr).expect("connect");
        let mut buf = vec![0u8; 3000];
        let mut got = 0usize;
        loop {
            let n = s.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            for (k, &b) in buf[..n].iter().enumerate() {
                assert_eq!(b, pattern(got + k), "byte {}", got + k);
            }
            (&s).write_all(&buf[..n]).expect("echo");
            got += n;
        }
        s.shutdown(Shutdown::Write).expect("shutdown");
        got
    });
    assert_eq!(echoed, TOTAL);
    assert_eq!(peer.join().expect("peer"), TOTAL);
}
