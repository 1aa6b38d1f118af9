//! The `chat` binary stops gracefully on SIGTERM: every client gets an
//! `ERROR` goodbye and the process exits 0. A real process, a real signal.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn sigterm_says_goodbye_to_clients_and_exits_zero() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(["--addr", "127.0.0.1:0", "--workers", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chat starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // "listening on ADDR pid N"
    let addr = line
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    let mut client = TcpStream::connect(&addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    client
        .write_all(b"NICK alice\r\nUSER a 0 * :A\r\n")
        .unwrap();
    let mut lines = BufReader::new(client.try_clone().unwrap()).lines();
    // Registered once the welcome (001) arrived.
    let welcome = lines.next().unwrap().unwrap();
    assert!(welcome.contains(" 001 alice "), "{welcome}");

    // SAFETY: `kill` has no memory preconditions; the pid is our child's.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.last().is_some_and(|l| l.starts_with("ERROR :")),
        "the last line is a goodbye: {rest:?}"
    );
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("signal 15"), "{err}");
}
