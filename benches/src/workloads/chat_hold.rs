//! The `chat_hold` workload: the chat server (own process) holds N
//! registered, idle clients (each joined to one of N / 100 rooms, answering
//! PINGs) for 5 s; nothing is sent.
//!
//! | metric                      | what                                                    |
//! |-----------------------------|---------------------------------------------------------|
//! | `clients_held`              | clients still connected at the end (`better=higher`)    |
//! | `rss_kib_per_client`        | (server RSS at the end of the hold - before) / clients  |
//! | `rss_kib_per_client_joined` | the same 200 ms after the last client joined            |
//!
//! The hold's end is the idle state the workload is about: the join
//! bursts are over, and a server that frees per-client state while a
//! client is quiet (pinstack's writer coroutine leaves once its queue is
//! empty; its cached stack decays by halves each second) has done so. The
//! figure right after the joins is there too.
//!
//! BENCHMARKS.md asks for N = 100,000. Each side needs one descriptor per
//! client, and server and load generator are separate processes, so N is
//! capped by the hard `RLIMIT_NOFILE` of one process (minus a margin for
//! the runtime's own descriptors): 20,000 on the machines this was written
//! on, where the hard limit cannot be raised. The cap is said on stderr and
//! is the `n=` of the lines. Holding 100,000 needs a hard limit above that
//! (`ulimit -Hn`, `LimitNOFILE=`) and several source addresses, which the
//! load generator picks by itself. `--quick`: 2,000; `--n N` asks for N.
//!
//! Runs alternate pinstack, tokio, three times; each figure is a median.

use std::time::Duration;

use pinstack_examples::chat::load::{LoadConfig, LoadReport};
use pinstack_examples::raise_nofile_limit;

use super::chat::{measure, ROOM_SIZE};
use super::{Opts, Workload};
use crate::report::{median, Figure};
use crate::runtimes::Which;
use crate::Result;

/// The workload's registry entry (its server is `chat.server`).
pub const WORKLOAD: Workload = Workload {
    name: NAME,
    run,
    children: &[],
};

const NAME: &str = "chat_hold";
/// How long the clients stay idle before the RSS that counts is read.
const HOLD: Duration = Duration::from_secs(5);
/// What BENCHMARKS.md asks for.
pub const FULL_CLIENTS: u64 = 100_000;
/// Descriptors a process keeps for itself besides one per client (runtime
/// pollers and wake-ups, stdio, /proc reads, the listener).
pub const FD_MARGIN: u64 = 1_000;

/// The client count actually run: `wanted`, capped so one process with a
/// hard descriptor limit of `hard` can hold that many sockets.
///
/// ```
/// use pinstack_benches::workloads::chat_hold::cap;
/// assert_eq!(cap(100_000, 20_000), 19_000);
/// assert_eq!(cap(5_000, 20_000), 5_000);
/// ```
pub fn cap(wanted: u64, hard: u64) -> u64 {
    wanted.min(hard.saturating_sub(FD_MARGIN)).max(1)
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    let wanted = opts.size(FULL_CLIENTS, 2_000);
    let limit = raise_nofile_limit()?;
    let n = cap(wanted, limit.hard);
    if n < wanted {
        eprintln!(
            "chat_hold: holding {n} clients, not {wanted}: the hard RLIMIT_NOFILE is {} per \
             process (server and load generator each need one descriptor per client, {FD_MARGIN} \
             kept for the rest) and cannot be raised here",
            limit.hard
        );
    } else {
        eprintln!("chat_hold: holding {n} clients ({limit})");
    }
    let exe = std::env::current_exe()?;
    let mut runs: [Vec<LoadReport>; 2] = Default::default();
    for _ in 0..3 {
        for (i, which) in [Which::Pinstack, Which::Tokio].into_iter().enumerate() {
            let mut cfg = LoadConfig::new(([127, 0, 0, 1], 0).into());
            cfg.clients = n as usize;
            cfg.rooms = (n / ROOM_SIZE).max(1) as usize;
            cfg.duration = Duration::ZERO;
            cfg.hold = HOLD;
            cfg.connect_timeout = Duration::from_secs(300);
            let r = measure(&exe, which, cfg)?;
            if r.held < n as usize {
                eprintln!(
                    "chat_hold: WARNING: {} held {} of {n} (connect failures {}, first error {})",
                    which.name(),
                    r.held,
                    r.connect_failures,
                    r.first_error.as_deref().unwrap_or("none recorded")
                );
            }
            runs[i].push(r);
        }
    }
    let med = |i: usize, f: fn(&LoadReport) -> f64| {
        median(&runs[i].iter().map(f).collect::<Vec<_>>())
    };
    let held = |r: &LoadReport| r.held as f64;
    let rss = |r: &LoadReport| r.rss_kib_per_client_held.unwrap_or(f64::NAN);
    let rss_joined = |r: &LoadReport| r.rss_kib_per_client.unwrap_or(f64::NAN);
    Ok(vec![
        Figure::higher_count(NAME, "clients_held", n, med(0, held), "tokio", med(1, held)),
        Figure::lower(NAME, "rss_kib_per_client", n, med(0, rss), "tokio", med(1, rss))
            .with_decimals(2),
        Figure::lower(
            NAME,
            "rss_kib_per_client_joined",
            n,
            med(0, rss_joined),
            "tokio",
            med(1, rss_joined),
        )
        .with_decimals(2),
    ])
}
