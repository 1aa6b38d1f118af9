//! The tokio twin of the chat server, standalone.
//!
//! `chat_tokio --addr 127.0.0.1:6667 --workers 2 [limits]`; prints
//! `listening on ADDR pid PID` once ready and serves until killed.

use pinstack_examples::chat::config::CHAT_FLAGS_HELP;
use pinstack_examples::chat::{tokio_server, ChatConfig};
use pinstack_examples::flags::{exit_with, Flags};
use pinstack_examples::{raise_nofile_limit, Shutdown};

fn main() {
    let usage = format!("usage: chat_tokio [flags]\n\n{CHAT_FLAGS_HELP}");
    let config =
        ChatConfig::from_flags(Flags::from_env()).unwrap_or_else(|e| exit_with(&e, &usage));
    match raise_nofile_limit() {
        Ok(l) => eprintln!("chat_tokio: {l}"),
        Err(e) => eprintln!("chat_tokio: cannot raise RLIMIT_NOFILE: {e}"),
    }
    let shutdown = Shutdown::new();
    let workers = config.workers;
    let r = tokio_server::run(&config, &shutdown, |addr| {
        println!(
            "listening on {addr} pid {} workers {workers}",
            std::process::id()
        );
    });
    if let Err(e) = r {
        eprintln!("chat_tokio: {e}");
        std::process::exit(1);
    }
}
