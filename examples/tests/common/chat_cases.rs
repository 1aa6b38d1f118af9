//! Behaviour every chat server twin must show, over real loopback sockets.
//! Each case takes a factory, starts its own server, and drives it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Barrier, Semaphore};

use super::{command_of, test_config, ChatServerFactory, TestClient};

/// Registration, JOIN echo, NAMES, and the common numeric errors.
pub async fn numerics_over_the_wire(f: &dyn ChatServerFactory) {
    let server = f.start(test_config());
    let addr = server.addr();
    let mut c = TestClient::connect(addr).await;
    c.send("JOIN #early").await;
    assert_eq!(command_of(&c.next_line().await.unwrap()), "451");
    c.send("NICK al ice").await; // parameter is "al"; "ice" is extra
    c.send("USER alice 0 * :Alice").await;
    let mut codes = Vec::new();
    while codes.last().map(String::as_str) != Some("422") {
        codes.push(command_of(&c.next_line().await.unwrap()).to_owned());
    }
    assert_eq!(codes, ["001", "002", "003", "004", "005", "422"]);
    c.send("JOIN #Room").await;
    assert_eq!(
        c.next_line().await.unwrap(),
        ":al!alice@127.0.0.1 JOIN #Room"
    );
    assert_eq!(
        c.next_line().await.unwrap(),
        ":pinstack.chat 353 al = #Room :al"
    );
    assert_eq!(command_of(&c.next_line().await.unwrap()), "366");
    let mut d = TestClient::connect(addr).await;
    d.send("NICK AL").await;
    assert_eq!(command_of(&d.next_line().await.unwrap()), "433");
    d.send("NICK 1x").await;
    assert_eq!(command_of(&d.next_line().await.unwrap()), "432");
    c.send("FROBNICATE").await;
    assert_eq!(command_of(&c.next_line().await.unwrap()), "421");
    c.send("PRIVMSG ghost :boo").await;
    assert_eq!(command_of(&c.next_line().await.unwrap()), "401");
    c.send("PRIVMSG #ghost :boo").await;
    assert_eq!(command_of(&c.next_line().await.unwrap()), "403");
    c.send("PART").await;
    assert_eq!(command_of(&c.next_line().await.unwrap()), "461");
    c.send("QUIT :bye").await;
    let rest = c.read_to_eof().await;
    assert_eq!(rest, ["ERROR :Closing Link: 127.0.0.1 (Quit: bye)"]);
}

/// `clients` clients in `rooms` rooms each send `per_client` messages; every
/// member receives every other member's messages, in order, and never its
/// own.
pub async fn many_clients_delivery_and_order(
    f: &dyn ChatServerFactory,
    clients: usize,
    rooms: usize,
) {
    let per_client = 5;
    let server = f.start(test_config());
    let addr = server.addr();
    let barrier = Arc::new(Barrier::new(clients));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let room = format!("#room{}", i % rooms);
            let mut c = TestClient::register(addr, &format!("n{i}")).await;
            c.join(&room).await;
            barrier.wait().await;
            for k in 0..per_client {
                c.send(&format!("PRIVMSG {room} :m {i} {k}")).await;
            }
            let members = (0..clients).filter(|j| j % rooms == i % rooms).count();
            let want = (members - 1) * per_client;
            let mut next = vec![0usize; clients];
            let mut got = 0;
            while got < want {
                let l = c
                    .next_line()
                    .await
                    .expect("connection closed before all messages arrived");
                let Some(text) = l.split_once(" PRIVMSG ").map(|(_, r)| r) else {
                    continue;
                };
                let (target, body) = text.split_once(" :").unwrap();
                assert_eq!(target, room);
                let mut it = body.split(' ').skip(1);
                let from: usize = it.next().unwrap().parse().unwrap();
                let k: usize = it.next().unwrap().parse().unwrap();
                assert_ne!(from, i, "own message echoed back");
                assert_eq!(from % rooms, i % rooms, "message from another room");
                assert_eq!(k, next[from], "out of order or lost from n{from}");
                next[from] += 1;
                got += 1;
            }
            // Nothing more than expected: a PING round trip flushes the rest.
            let extra: Vec<String> = c
                .sync("done")
                .await
                .into_iter()
                .filter(|l| l.contains(" PRIVMSG "))
                .collect();
            assert!(extra.is_empty(), "duplicates: {extra:?}");
            got
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let per_room = clients / rooms;
    assert_eq!(total, rooms * per_room * (per_room - 1) * per_client);
}

/// One member stops reading: the room keeps flowing to the others, and the
/// slow one is cut off with `ERROR :SendQ exceeded` after what was already
/// in its socket.
pub async fn slow_consumer_is_dropped(f: &dyn ChatServerFactory) {
    let mut cfg = test_config();
    cfg.sendq = 16;
    cfg.close_grace = Duration::from_secs(120); // the slow client reads late
    let server = f.start(cfg);
    let addr = server.addr();
    let mut slow = TestClient::register(addr, "slow").await;
    slow.join("#r").await;
    let mut a = TestClient::register(addr, "alice").await;
    a.join("#r").await;
    let mut b = TestClient::register(addr, "bob").await;
    b.join("#r").await;
    // Alice may be at most 8 messages ahead of Bob's reading, so Bob's own
    // queue never fills; the slow client reads nothing.
    let window = Arc::new(Semaphore::new(8));
    let w = window.clone();
    let text = "x".repeat(400);
    let reader = tokio::spawn(async move {
        let mut next = 0u64;
        loop {
            let l = b.next_line().await.expect("bob was disconnected");
            if l.starts_with(":slow!") && l.contains(" QUIT ") {
                assert!(l.ends_with(":SendQ exceeded"), "{l}");
                return (b, next);
            }
            if let Some((_, body)) = l.split_once("PRIVMSG #r :") {
                let n: u64 = body.split(' ').next().unwrap().parse().unwrap();
                assert_eq!(n, next, "bob lost or reordered a message");
                next += 1;
                w.add_permits(1);
            }
        }
    });
    let mut sent = 0u64;
    while !reader.is_finished() {
        let Ok(Ok(p)) = tokio::time::timeout(Duration::from_millis(50), window.acquire()).await
        else {
            continue;
        };
        p.forget();
        a.send(&format!("PRIVMSG #r :{sent} {text}")).await;
        sent += 1;
        assert!(sent < 1_000_000, "the slow client was never dropped");
    }
    let (mut b, received) = reader.await.unwrap();
    // The room still flows after the drop.
    a.send(&format!("PRIVMSG #r :{sent} after")).await;
    let l = b
        .expect(|l| l.contains(" PRIVMSG #r ") && l.ends_with(" after"))
        .await;
    assert!(l.contains(&format!(":{sent} after")), "{l}");
    assert!(received <= sent);
    // The slow client now reads: queued data, then the farewell, then EOF.
    let lines = slow.read_to_eof().await;
    assert_eq!(
        lines.last().map(String::as_str),
        Some("ERROR :SendQ exceeded")
    );
    let relayed = lines.iter().filter(|l| l.contains(" PRIVMSG ")).count() as u64;
    assert!(
        relayed < sent,
        "slow client got everything ({relayed} of {sent}): it was not slow"
    );
    for l in &lines[..lines.len() - 1] {
        assert!(!l.starts_with("ERROR"), "{l}");
    }
}

/// A line over 512 bytes gets 417 once and the connection carries on; an
/// endless line is discarded, not buffered.
pub async fn oversized_line_gets_417(f: &dyn ChatServerFactory) {
    let server = f.start(test_config());
    let addr = server.addr();
    let mut a = TestClient::register(addr, "alice").await;
    a.join("#r").await;
    let mut b = TestClient::register(addr, "bob").await;
    b.join("#r").await;
    a.expect(|l| l.contains(" JOIN ")).await;
    let long = format!("PRIVMSG #r :{}\r\n", "y".repeat(600));
    a.send_raw(long.as_bytes()).await;
    let seen = a.sync("one").await;
    assert_eq!(
        seen.iter().map(|l| command_of(l)).collect::<Vec<_>>(),
        ["417"]
    );
    // 1 MiB without a newline, then the newline.
    let chunk = vec![b'z'; 64 * 1024];
    for _ in 0..16 {
        a.send_raw(&chunk).await;
    }
    a.send_raw(b"\r\n").await;
    let seen = a.sync("two").await;
    assert_eq!(
        seen.iter().map(|l| command_of(l)).collect::<Vec<_>>(),
        ["417"]
    );
    // Exactly 512 bytes with CRLF is fine and relayed.
    let head = "PRIVMSG #r :";
    let fits = format!("{head}{}\r\n", "w".repeat(512 - head.len() - 2));
    assert_eq!(fits.len(), 512);
    a.send_raw(fits.as_bytes()).await;
    let l = b.expect(|l| l.contains(" PRIVMSG ")).await;
    assert!(l.ends_with("www"), "{l}");
    assert!(a.sync("three").await.is_empty());
}

/// A client that disconnects halfway through a line: the fragment is never
/// relayed and the others are unaffected.
pub async fn client_vanishing_mid_line(f: &dyn ChatServerFactory) {
    let server = f.start(test_config());
    let addr = server.addr();
    let mut a = TestClient::register(addr, "alice").await;
    a.join("#r").await;
    let mut b = TestClient::register(addr, "bob").await;
    b.join("#r").await;
    let mut c = TestClient::register(addr, "carol").await;
    c.join("#r").await;
    c.send_raw(b"PRIVMSG #r :half a li").await;
    drop(c);
    let l = a
        .expect(|l| l.starts_with(":carol!") && l.contains(" QUIT "))
        .await;
    assert!(l.ends_with(":Connection closed"), "{l}");
    b.send("PRIVMSG #r :still here").await;
    let l = a.expect(|l| l.contains(" PRIVMSG ")).await;
    assert_eq!(l, ":bob!bob@127.0.0.1 PRIVMSG #r :still here");
    let seen = b.sync("x").await;
    assert!(seen.iter().all(|l| !l.contains("half a li")), "{seen:?}");
    let seen = a.sync("y").await;
    assert!(seen.iter().all(|l| !l.contains("half a li")), "{seen:?}");
}

/// Invalid UTF-8 gets an error reply; nothing is relayed; the connection
/// and the room carry on.
pub async fn invalid_utf8_gets_a_reply(f: &dyn ChatServerFactory) {
    let server = f.start(test_config());
    let addr = server.addr();
    let mut a = TestClient::register(addr, "alice").await;
    a.join("#r").await;
    let mut b = TestClient::register(addr, "bob").await;
    b.join("#r").await;
    a.expect(|l| l.contains(" JOIN ")).await;
    a.send_raw(b"PRIVMSG #r :caf\xe9 \xff\r\n").await;
    let seen = a.sync("u").await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with(":pinstack.chat NOTICE alice :") && seen[0].contains("UTF-8"),
        "{seen:?}"
    );
    a.send("PRIVMSG #r :café ok").await;
    let l = b.expect(|l| l.contains(" PRIVMSG ")).await;
    assert!(l.ends_with(":café ok"), "{l}");
}

/// Idle clients are PINGed; one that answers stays, one that does not is
/// dropped with a ping timeout ERROR.
pub async fn idle_ping_and_timeout(f: &dyn ChatServerFactory) {
    let mut cfg = test_config();
    cfg.ping_interval = Duration::from_millis(200);
    cfg.ping_timeout = Duration::from_millis(300);
    let server = f.start(cfg);
    let addr = server.addr();
    let mut mute = TestClient::register(addr, "mute").await;
    let mut polite = TestClient::register(addr, "polite").await;
    polite.join("#r").await;
    mute.join("#r").await;
    // The polite client answers two PINGs and is still connected.
    for _ in 0..2 {
        let ping = polite.expect(|l| l.starts_with("PING ")).await;
        assert_eq!(ping, "PING :pinstack.chat");
        polite.send("PONG :pinstack.chat").await;
    }
    // The mute one was pinged, then dropped; the room hears its QUIT.
    let lines = mute.read_to_eof().await;
    assert!(
        lines.iter().any(|l| l == "PING :pinstack.chat"),
        "{lines:?}"
    );
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("ERROR :Closing Link: 127.0.0.1 (Ping timeout"),
        "{last}"
    );
    let quit = polite.expect(|l| l.starts_with(":mute!")).await;
    assert!(quit.contains(" QUIT :Ping timeout"), "{quit}");
    polite.send("PRIVMSG #r :anyone?").await;
    polite.send("NAMES #r").await;
    let names = polite.expect(|l| l.contains(" 353 ")).await;
    assert!(names.ends_with(":polite"), "{names}");
}

/// Beyond `max_clients` connections the server refuses with an ERROR.
pub async fn max_clients_refused(f: &dyn ChatServerFactory) {
    let mut cfg = test_config();
    cfg.max_clients = 2;
    let server = f.start(cfg);
    let addr = server.addr();
    let _a = TestClient::register(addr, "a").await;
    let _b = TestClient::register(addr, "b").await;
    let mut c = TestClient::connect(addr).await;
    let lines = c.read_to_eof().await;
    assert_eq!(lines, ["ERROR :Closing Link: server full"]);
}
