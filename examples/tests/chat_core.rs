//! The chat core (hub + session) driven directly, with a recording outbox.

use std::sync::{Arc, Mutex};

use pinstack_examples::chat::{Flow, Hub, HubConfig, Line, Outbox, PushError, Session};

#[derive(Default)]
struct Inner {
    lines: Mutex<Vec<Line>>,
    farewell: Mutex<Option<Line>>,
    cap: usize,
}

/// Records pushed lines; bounded by `cap`; remembers `close`.
#[derive(Clone, Default)]
struct Rec(Arc<Inner>);

impl Rec {
    fn with_cap(cap: usize) -> Self {
        Rec(Arc::new(Inner {
            cap,
            ..Inner::default()
        }))
    }
    /// Takes every line received so far, as strings without CRLF.
    fn take(&self) -> Vec<String> {
        let v = std::mem::take(&mut *self.0.lines.lock().unwrap());
        v.iter()
            .map(|l| {
                let s = std::str::from_utf8(l).unwrap();
                assert!(s.ends_with("\r\n"), "{s:?}");
                assert!(l.len() <= 512);
                s.trim_end_matches("\r\n").to_owned()
            })
            .collect()
    }
    fn closed_with(&self) -> Option<String> {
        self.0
            .farewell
            .lock()
            .unwrap()
            .as_ref()
            .map(|l| String::from_utf8_lossy(l).into_owned())
    }
}

impl Outbox for Rec {
    fn try_push(&self, line: Line) -> Result<(), PushError> {
        if self.0.farewell.lock().unwrap().is_some() {
            return Err(PushError::Closed);
        }
        let mut v = self.0.lines.lock().unwrap();
        if self.0.cap != 0 && v.len() >= self.0.cap {
            return Err(PushError::Full);
        }
        v.push(line);
        Ok(())
    }
    fn close(&self, farewell: Line) {
        self.0.farewell.lock().unwrap().get_or_insert(farewell);
    }
}

struct Client {
    s: Session<Rec>,
    out: Rec,
}

impl Client {
    fn new(hub: &Hub<Rec>) -> Self {
        let out = Rec::default();
        Client {
            s: Session::new(hub, out.clone(), "127.0.0.1"),
            out,
        }
    }
    /// Sends a line that must not end the session.
    fn send(&mut self, hub: &Hub<Rec>, line: &str) {
        assert_eq!(
            self.s.on_line(hub, line.as_bytes()),
            Flow::Continue,
            "{line}"
        );
    }
    fn registered(hub: &Hub<Rec>, nick: &str) -> Self {
        let mut c = Client::new(hub);
        c.send(hub, &format!("NICK {nick}"));
        c.send(hub, &format!("USER {nick} 0 * :{nick} real"));
        let got = c.out.take();
        assert!(got[0].contains(" 001 "), "{got:?}");
        c
    }
    fn codes(&self) -> Vec<String> {
        self.out
            .take()
            .iter()
            .map(|l| l.split(' ').nth(1).unwrap_or("").to_owned())
            .collect()
    }
}

fn hub() -> Hub<Rec> {
    Hub::new(HubConfig::default())
}

#[test]
fn registration_sends_welcome_burst() {
    let h = hub();
    let mut c = Client::new(&h);
    c.send(&h, "CAP LS 302");
    c.send(&h, "NICK alice");
    assert!(!c.s.is_registered());
    c.send(&h, "USER alice 0 * :Alice");
    c.send(&h, "CAP END");
    let got = c.out.take();
    assert_eq!(got[0], ":pinstack.chat CAP * LS :");
    let codes: Vec<&str> = got[1..]
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(codes, ["001", "002", "003", "004", "005", "422"]);
    assert!(got[1].ends_with("alice!alice@127.0.0.1"), "{}", got[1]);
    assert!(c.s.is_registered());
    assert_eq!(h.clients(), 1);
}

#[test]
fn commands_before_registration_get_451() {
    let h = hub();
    let mut c = Client::new(&h);
    c.send(&h, "JOIN #a");
    c.send(&h, "PRIVMSG #a :x");
    assert_eq!(c.codes(), ["451", "451"]);
    c.send(&h, "PING tok");
    assert_eq!(c.out.take(), [":pinstack.chat PONG pinstack.chat :tok"]);
}

#[test]
fn nick_errors() {
    let h = hub();
    let _a = Client::registered(&h, "alice");
    let mut b = Client::new(&h);
    b.send(&h, "NICK ALICE");
    b.send(&h, "NICK 9lives");
    b.send(&h, "NICK");
    b.send(&h, "USER b");
    assert_eq!(b.codes(), ["433", "432", "431", "461"]);
    assert!(!b.s.is_registered());
    assert!(h.nick_in_use("Alice"));
}

#[test]
fn join_echoes_names_and_broadcasts() {
    let h = hub();
    let mut a = Client::registered(&h, "alice");
    let mut b = Client::registered(&h, "bob");
    a.send(&h, "JOIN #Rust");
    let got = a.out.take();
    assert_eq!(got[0], ":alice!alice@127.0.0.1 JOIN #Rust");
    assert_eq!(got[1], ":pinstack.chat 353 alice = #Rust :alice");
    assert_eq!(got[2], ":pinstack.chat 366 alice #Rust :End of /NAMES list");
    b.send(&h, "JOIN #rust,#other");
    let got = b.out.take();
    // Case-insensitive: the same room, shown under its first spelling.
    assert_eq!(got[0], ":bob!bob@127.0.0.1 JOIN #Rust");
    let names = got[1].rsplit(':').next().unwrap();
    let mut names: Vec<&str> = names.split(' ').collect();
    names.sort();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(a.out.take(), [":bob!bob@127.0.0.1 JOIN #Rust"]);
    assert_eq!(h.room_size("#RUST"), 2);
    assert_eq!(h.rooms(), 2);
    // Joining again is a no-op.
    b.send(&h, "JOIN #rust");
    assert!(b.out.take().is_empty());
}

#[test]
fn privmsg_fans_out_to_room_except_sender() {
    let h = hub();
    let mut cs: Vec<Client> = (0..5)
        .map(|i| Client::registered(&h, &format!("u{i}")))
        .collect();
    for c in &mut cs {
        c.send(&h, "JOIN #r");
    }
    let mut outsider = Client::registered(&h, "out");
    for c in &cs {
        c.out.take();
    }
    cs[0].send(&h, "PRIVMSG #r :hello  world");
    assert!(cs[0].out.take().is_empty());
    for c in &cs[1..] {
        assert_eq!(c.out.take(), [":u0!u0@127.0.0.1 PRIVMSG #r :hello  world"]);
    }
    assert!(outsider.out.take().is_empty());
    outsider.send(&h, "PRIVMSG #r :let me in");
    outsider.send(&h, "PRIVMSG #nope :x");
    outsider.send(&h, "PRIVMSG nobody :x");
    outsider.send(&h, "PRIVMSG #r");
    outsider.send(&h, "PRIVMSG");
    assert_eq!(outsider.codes(), ["404", "403", "401", "412", "411"]);
    // NOTICE never gets error replies.
    outsider.send(&h, "NOTICE nobody :x");
    assert!(outsider.out.take().is_empty());
}

#[test]
fn privmsg_to_nick_and_multiple_targets() {
    let h = hub();
    let mut a = Client::registered(&h, "alice");
    let b = Client::registered(&h, "bob");
    let c = Client::registered(&h, "carol");
    a.send(&h, "PRIVMSG BOB,carol :hi");
    assert_eq!(b.out.take(), [":alice!alice@127.0.0.1 PRIVMSG BOB :hi"]);
    assert_eq!(c.out.take(), [":alice!alice@127.0.0.1 PRIVMSG carol :hi"]);
    a.send(&h, "PRIVMSG bob,bob,bob,bob,bob :spam");
    assert_eq!(b.out.take().len(), 4);
    assert_eq!(a.codes(), ["407"]);
}

#[test]
fn part_and_errors() {
    let h = hub();
    let mut a = Client::registered(&h, "alice");
    let mut b = Client::registered(&h, "bob");
    a.send(&h, "JOIN #r");
    b.send(&h, "JOIN #r");
    a.out.take();
    b.out.take();
    b.send(&h, "PART #r :bye now");
    assert_eq!(b.out.take(), [":bob!bob@127.0.0.1 PART #r :bye now"]);
    assert_eq!(a.out.take(), [":bob!bob@127.0.0.1 PART #r :bye now"]);
    b.send(&h, "PART #r");
    b.send(&h, "PART #zzz");
    b.send(&h, "PART");
    assert_eq!(b.codes(), ["442", "403", "461"]);
    a.send(&h, "PART #r");
    assert_eq!(h.rooms(), 0, "empty rooms are removed");
    b.send(&h, "PART #r");
    assert_eq!(b.codes(), ["403"]);
}

#[test]
fn quit_removes_from_rooms_and_tells_each_member_once() {
    let h = hub();
    let mut a = Client::registered(&h, "alice");
    let mut b = Client::registered(&h, "bob");
    a.send(&h, "JOIN #one,#two");
    b.send(&h, "JOIN #one,#two");
    a.out.take();
    assert_eq!(a.s.on_line(&h, b"QUIT :gone fishing"), Flow::Close);
    assert_eq!(
        a.out.take(),
        ["ERROR :Closing Link: 127.0.0.1 (Quit: gone fishing)"]
    );
    b.out.take();
    a.s.disconnect(&h, "ignored: QUIT gave the reason");
    assert_eq!(
        b.out.take(),
        [":alice!alice@127.0.0.1 QUIT :Quit: gone fishing"]
    );
    assert_eq!(h.room_size("#one"), 1);
    assert_eq!(h.room_size("#two"), 1);
    assert!(!h.nick_in_use("alice"));
    assert_eq!(h.clients(), 1);
    // The nick is free again.
    let _a2 = Client::registered(&h, "alice");
}

#[test]
fn nick_change_is_seen_by_room_and_frees_old_nick() {
    let h = hub();
    let mut a = Client::registered(&h, "alice");
    let b = Client::registered(&h, "bob");
    let mut b = b;
    a.send(&h, "JOIN #r");
    b.send(&h, "JOIN #r");
    a.out.take();
    b.out.take();
    a.send(&h, "NICK alicia");
    assert_eq!(a.out.take(), [":alice!alice@127.0.0.1 NICK :alicia"]);
    assert_eq!(b.out.take(), [":alice!alice@127.0.0.1 NICK :alicia"]);
    assert!(!h.nick_in_use("alice") && h.nick_in_use("alicia"));
    b.send(&h, "NAMES #r");
    let names = b.out.take();
    assert!(names[0].contains("alicia"), "{names:?}");
    a.send(&h, "PRIVMSG #r :hi");
    assert_eq!(b.out.take(), [":alicia!alice@127.0.0.1 PRIVMSG #r :hi"]);
}

#[test]
fn bad_input_gets_replies_not_disconnects() {
    let h = hub();
    let mut a = Client::registered(&h, "alice");
    assert_eq!(a.s.on_line(&h, b"PRIVMSG #r :\xff\xfe"), Flow::Continue);
    let got = a.out.take();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(":pinstack.chat NOTICE alice :") && got[0].contains("UTF-8"),
        "{got:?}"
    );
    a.send(&h, "FROB x");
    a.send(&h, "");
    a.send(&h, "USER again 0 * :x");
    a.s.on_line_too_long(&h);
    assert_eq!(a.codes(), ["421", "462", "417"]);
}

#[test]
fn too_many_rooms_and_bad_names() {
    let h = Hub::new(HubConfig {
        max_rooms_per_client: 2,
        ..HubConfig::default()
    });
    let mut a = Client::registered(&h, "alice");
    a.send(&h, "JOIN #a,#b,#c,nohash");
    let codes = a.codes();
    assert_eq!(codes.iter().filter(|c| *c == "405").count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "403").count(), 1, "{codes:?}");
    assert_eq!(a.s.rooms().count(), 2);
    a.send(&h, "JOIN 0");
    assert_eq!(a.s.rooms().count(), 0);
    assert_eq!(h.rooms(), 0);
}

#[test]
fn full_queue_closes_only_that_client() {
    let h = hub();
    let mut a = Client::registered(&h, "alice");
    let slow_out = Rec::with_cap(3);
    let mut slow = Client {
        s: Session::new(&h, slow_out.clone(), "127.0.0.9"),
        out: slow_out,
    };
    slow.send(&h, "NICK slow");
    // The welcome burst alone overflows a 3-line queue.
    slow.send(&h, "USER slow 0 * :s");
    assert_eq!(
        slow.out.closed_with().as_deref(),
        Some("ERROR :SendQ exceeded\r\n")
    );
    a.send(&h, "JOIN #r");
    a.send(&h, "PRIVMSG slow :still fine for me");
    assert!(a.out.take().len() >= 3);
    assert!(a.out.closed_with().is_none());
}

#[test]
fn relayed_lines_are_truncated_to_512_bytes() {
    let h = hub();
    let mut a = Client::registered(&h, "alice");
    let mut b = Client::registered(&h, "bob");
    a.send(&h, "JOIN #r");
    b.send(&h, "JOIN #r");
    b.out.take();
    let text = "ü".repeat(250); // 500 bytes: fits the input limit, not the relay
    a.send(&h, &format!("PRIVMSG #r :{text}"));
    let got = b.out.take();
    assert_eq!(got.len(), 1);
    assert!(got[0].len() + 2 <= 512);
    assert!(got[0].starts_with(":alice!alice@127.0.0.1 PRIVMSG #r :üü"));
}

#[test]
fn concurrent_sessions_keep_rooms_consistent() {
    let h = Arc::new(hub());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let mut c = Client::registered(&h, &format!("t{t}x{i}"));
                    c.send(&h, "JOIN #shared");
                    c.send(&h, "PRIVMSG #shared :hi");
                    if i % 2 == 0 {
                        c.send(&h, "PART #shared");
                    }
                    c.s.disconnect(&h, "done");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(h.clients(), 0);
    assert_eq!(h.rooms(), 0);
    assert_eq!(h.room_size("#shared"), 0);
}
