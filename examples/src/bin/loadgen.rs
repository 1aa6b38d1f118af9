//! Closed-loop echo load generator: `loadgen --addr 127.0.0.1:7000
//! --connections 1000 --duration 5s`. Prints one `echo ...` report line.

use pinstack_examples::echo::load::{self, EchoLoadConfig, ECHO_LOAD_FLAGS_HELP};
use pinstack_examples::flags::{exit_with, Flags};

fn main() {
    let usage = format!("usage: loadgen --addr ADDR [flags]\n\n{ECHO_LOAD_FLAGS_HELP}");
    let config =
        EchoLoadConfig::from_flags(Flags::from_env()).unwrap_or_else(|e| exit_with(&e, &usage));
    match load::run(&config) {
        Ok(r) => {
            println!("{r}");
            if r.mismatches > 0 {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
    }
}
