//! The tokio echo server, standalone: `echo_tokio --addr 127.0.0.1:7000
//! --workers 2`. Prints `listening on ADDR pid PID` once ready.

use pinstack_examples::echo::tokio_server::{self, ECHO_FLAGS_HELP};
use pinstack_examples::echo::EchoConfig;
use pinstack_examples::flags::{exit_with, Flags};
use pinstack_examples::{raise_nofile_limit, Shutdown};

fn main() {
    let usage = format!("usage: echo_tokio [flags]\n\n{ECHO_FLAGS_HELP}");
    let config =
        EchoConfig::from_flags(Flags::from_env()).unwrap_or_else(|e| exit_with(&e, &usage));
    match raise_nofile_limit() {
        Ok(l) => eprintln!("echo_tokio: {l}"),
        Err(e) => eprintln!("echo_tokio: cannot raise RLIMIT_NOFILE: {e}"),
    }
    let workers = config.workers;
    let r = tokio_server::run(&config, &Shutdown::new(), move |addr| {
        println!(
            "listening on {addr} pid {} workers {workers}",
            std::process::id()
        );
    });
    if let Err(e) = r {
        eprintln!("echo_tokio: {e}");
        std::process::exit(1);
    }
}
