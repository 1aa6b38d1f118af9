//! The chat behaviour cases against the pinstack server.

mod common;

use std::net::SocketAddr;

use common::{chat_cases, ChatServerFactory, RunningServer};
use pinstack_examples::chat::ChatConfig;
use pinstack_examples::chat::{pinstack_server, tokio_server::ServerHandle};

struct Pinstack;

impl RunningServer for ServerHandle {
    fn addr(&self) -> SocketAddr {
        ServerHandle::addr(self)
    }
}

impl ChatServerFactory for Pinstack {
    fn start(&self, config: ChatConfig) -> Box<dyn RunningServer> {
        Box::new(pinstack_server::spawn(config).expect("start the pinstack chat server"))
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn numerics_over_the_wire() {
    block_on(chat_cases::numerics_over_the_wire(&Pinstack));
}

#[test]
fn three_hundred_clients_get_everything_in_order() {
    block_on(chat_cases::many_clients_delivery_and_order(
        &Pinstack, 300, 6,
    ));
}

#[test]
fn slow_consumer_is_dropped() {
    block_on(chat_cases::slow_consumer_is_dropped(&Pinstack));
}

#[test]
fn oversized_line_gets_417() {
    block_on(chat_cases::oversized_line_gets_417(&Pinstack));
}

#[test]
fn client_vanishing_mid_line() {
    block_on(chat_cases::client_vanishing_mid_line(&Pinstack));
}

#[test]
fn invalid_utf8_gets_a_reply() {
    block_on(chat_cases::invalid_utf8_gets_a_reply(&Pinstack));
}

#[test]
fn idle_ping_and_timeout() {
    block_on(chat_cases::idle_ping_and_timeout(&Pinstack));
}

#[test]
fn max_clients_refused() {
    block_on(chat_cases::max_clients_refused(&Pinstack));
}

#[test]
fn stats_count_what_happened() {
    let mut cfg = common::test_config();
    cfg.max_clients = 1;
    let server = pinstack_server::spawn(cfg).unwrap();
    let addr = server.addr();
    let stats = server.stats().clone();
    block_on(async move {
        let mut a = common::TestClient::register(addr, "a").await;
        let mut b = common::TestClient::connect(addr).await;
        assert_eq!(b.read_to_eof().await.len(), 1);
        a.send_raw(format!("{}\n", "q".repeat(700)).as_bytes())
            .await;
        a.sync("s").await;
        assert_eq!(stats.connections(), 1);
    });
    assert_eq!(server.stats().accepted(), 2);
    assert_eq!(server.stats().refused(), 1);
    assert_eq!(server.stats().lines_too_long(), 1);
    server.stop().unwrap();
}
