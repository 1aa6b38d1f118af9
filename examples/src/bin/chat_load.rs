//! The chat load generator: `chat_load --addr 127.0.0.1:6667 --clients 10000
//! --rooms 100 --rate 1000 --duration 10s [--server-pid PID] [--ramp-start M]`.
//!
//! Prints the report (one `chat_load ...` line per figure group) on stdout.
//! Exits 1 if anything was lost, duplicated or misrouted in the steady phase.

use pinstack_examples::chat::load::{self, LoadConfig, LOAD_FLAGS_HELP};
use pinstack_examples::flags::{exit_with, Flags};

fn main() {
    let usage = format!("usage: chat_load --addr ADDR [flags]\n\n{LOAD_FLAGS_HELP}");
    let config =
        LoadConfig::from_flags(Flags::from_env()).unwrap_or_else(|e| exit_with(&e, &usage));
    match load::run(&config) {
        Ok(report) => {
            print!("{report}");
            let bad = report
                .steady
                .as_ref()
                .is_some_and(|s| s.lost > 0 || s.duplicates > 0 || s.misrouted > 0);
            if bad {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("chat_load: {e}");
            std::process::exit(1);
        }
    }
}
