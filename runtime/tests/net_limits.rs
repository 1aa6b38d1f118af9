//! Many connections and running out of file descriptors, across processes.
//!
//! Each side needs its own descriptors (the hard `RLIMIT_NOFILE` here is
//! 20,000 per process), so one side runs in a child process: this same test
//! binary, running one of the `#[ignore]`d `child_*` entry points, which are
//! driven by the parent tests and never run on their own.

use pinstack::net::{TcpListener, TcpStream};
use pinstack::Runtime;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn set_nofile(soft: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = soft.min(lim.rlim_max);
    // SAFETY: as above; lowering or raising the soft limit up to the hard one.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

fn child(test: &str, args: &[(&str, String)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        test,
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in args {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child test")
}

/// The text after `marker` in a line of the child's output (the test
/// harness may print on the same line before it).
fn marked(line: &str, marker: &str) -> Option<String> {
    line.split_once(marker)
        .map(|(_, rest)| rest.trim().to_owned())
}

fn echo_task(s: TcpStream) {
    let mut buf = [0u8; 256];
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
}

/// Child: connects `PINSTACK_TEST_CONNS` clients to `PINSTACK_TEST_ADDR`,
/// does one round trip on each, holds them all open, prints `@@ok N`.
#[test]
#[ignore = "child process of ten_thousand_connections"]
fn child_many_clients() {
    let addr: std::net::SocketAddr = std::env::var("PINSTACK_TEST_ADDR")
        .unwrap()
        .parse()
        .unwrap();
    let n: usize = std::env::var("PINSTACK_TEST_CONNS")
        .unwrap()
        .parse()
        .unwrap();
    set_nofile(n as u64 + 200);
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(std::net::TcpStream::connect(addr).expect("connect"));
    }
    let mut ok = 0;
    for (i, c) in conns.iter_mut().enumerate() {
        let msg = (i as u32).to_le_bytes();
        c.write_all(&msg).unwrap();
        let mut back = [0u8; 4];
        c.read_exact(&mut back).unwrap();
        ok += usize::from(back == msg);
    }
    println!("@@ok {ok}");
}

#[test]
fn ten_thousand_connections() {
    const N: usize = 10_000;
    set_nofile(N as u64 + 500);
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let live = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let l2 = live.clone();
    rt.spawn(move || {
        for s in listener.incoming() {
            let s = s.unwrap();
            l2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            pinstack::task::Builder::new()
                .stack_size(8 * 1024)
                .spawn(move || echo_task(s))
                .unwrap();
        }
    });
    let mut c = child(
        "child_many_clients",
        &[
            ("PINSTACK_TEST_ADDR", addr.to_string()),
            ("PINSTACK_TEST_CONNS", N.to_string()),
        ],
    );
    let out = BufReader::new(c.stdout.take().unwrap());
    // Read everything (the child's harness writes after our marker too).
    let lines: Vec<String> = out.lines().map_while(Result::ok).collect();
    let line = lines
        .iter()
        .find_map(|l| marked(l, "@@ok "))
        .expect("child reported");
    assert!(c.wait().unwrap().success());
    assert_eq!(line, N.to_string(), "every connection echoed");
    assert_eq!(live.load(std::sync::atomic::Ordering::SeqCst), N);
}

/// Child: an echo server limited to `PINSTACK_TEST_NOFILE` descriptors.
/// Prints its address, then on each line of stdin prints the listener's
/// accept statistics (`@@stats ACCEPTED ATTEMPTS FD_EXHAUSTED`).
#[test]
#[ignore = "child process of accept_backs_off_when_descriptors_run_out"]
fn child_limited_server() {
    let nofile: u64 = std::env::var("PINSTACK_TEST_NOFILE")
        .unwrap()
        .parse()
        .unwrap();
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    set_nofile(nofile);
    let listener = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    println!("@@addr {}", listener.local_addr().unwrap());
    let l2 = listener.clone();
    rt.spawn(move || loop {
        let (s, _) = l2.accept().unwrap();
        pinstack::spawn(move || echo_task(s));
    });
    for line in std::io::stdin().lines() {
        if line.is_err() {
            break;
        }
        let st = listener.accept_stats();
        println!(
            "@@stats {} {} {}",
            st.accepted, st.attempts, st.fd_exhausted
        );
    }
}

#[test]
fn accept_backs_off_when_descriptors_run_out() {
    let mut c = child(
        "child_limited_server",
        &[("PINSTACK_TEST_NOFILE", "64".into())],
    );
    let mut stdin = c.stdin.take().unwrap();
    let mut out = BufReader::new(c.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let addr: std::net::SocketAddr = out
        .find_map(|l| marked(&l, "@@addr "))
        .expect("child printed its address")
        .parse()
        .unwrap();
    let mut stats = move |stdin: &mut std::process::ChildStdin| -> (u64, u64, u64) {
        writeln!(stdin).unwrap();
        let l = out
            .find_map(|l| marked(&l, "@@stats "))
            .expect("stats line");
        let v: Vec<u64> = l.split(' ').map(|x| x.parse().unwrap()).collect();
        (v[0], v[1], v[2])
    };
    // 100 connections against a 64-descriptor server: the kernel completes
    // them all (backlog), the server can accept only some.
    let conns: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats(&mut stdin).2 == 0 {
        assert!(
            Instant::now() < deadline,
            "the server never ran out of descriptors"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (accepted, attempts_at_exhaustion, _) = stats(&mut stdin);
    assert!(accepted < 100);
    // Every connection the server did accept keeps echoing meanwhile.
    let mut echoed = 0;
    for c in conns.iter().take(accepted as usize) {
        let mut c = c;
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if c.write_all(b"ping").is_ok() {
            let mut b = [0u8; 4];
            if c.read_exact(&mut b).is_ok() && &b == b"ping" {
                echoed += 1;
            }
        }
    }
    assert_eq!(
        echoed, accepted as usize,
        "accepted connections keep working during the back-off"
    );
    // Back-off, not a busy loop: over a second of exhaustion, few attempts
    // (the sleeps double from 5 ms to 200 ms; a spinning loop makes millions).
    std::thread::sleep(Duration::from_secs(1));
    let (_, attempts_later, exhausted_later) = stats(&mut stdin);
    assert!(
        attempts_later - attempts_at_exhaustion < 100,
        "{} accept attempts in a second of exhaustion",
        attempts_later - attempts_at_exhaustion
    );
    assert!(exhausted_later >= 1);
    // Free descriptors: drop the accepted connections; the rest get accepted.
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (accepted_now, _, _) = stats(&mut stdin);
        if accepted_now == 100 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {accepted_now} of 100 accepted after descriptors were freed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let _ = c.wait();
}
