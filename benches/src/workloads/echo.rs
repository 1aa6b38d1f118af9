//! The `echo` workload: a loopback echo server driven by a closed-loop load
//! generator, C = 1,000 and 10,000 connections, 64-byte messages, 10 s
//! measured after 1 s of warm-up (`--quick`: 1 s after 0.5 s).
//!
//! | metric   | what                                                  |
//! |----------|-------------------------------------------------------|
//! | `rps`    | round trips per second in the window (`better=higher`) |
//! | `p50_us`, `p99_us`, `p999_us` | round-trip latency percentiles |
//!
//! The servers and the load generator are those of `pinstack-examples`
//! (`echo::{pinstack_server, tokio_server, load}`), each server with 2
//! workers. Every run starts the server in its own fresh process and drives
//! it from this one:
//!
//! ```text
//! compare ──ServerChild::start──▶ compare --pinstack-bench-child echo.server <rt>
//!    │                               raises RLIMIT_NOFILE, serves on 127.0.0.1:0,
//!    │◀── "listening on ADDR" ───────┘ stops when its stdin closes
//!    ├─ echo::load::run (tokio, 2 threads, C connections; raises RLIMIT_NOFILE)
//!    └─ ServerChild::stop
//! ```
//!
//! Runs alternate pinstack, tokio, pinstack, ... three times per C; each
//! figure is the median of its three runs. A run whose echoes came back
//! corrupted is an error; connect failures and dropped connections are
//! reported on stderr with the full load report of every run.

use std::net::SocketAddr;
use std::time::Duration;

use pinstack_examples::echo::{
    load, pinstack_server, tokio_server, EchoConfig, EchoLoadConfig, EchoReport,
};
use pinstack_examples::{raise_nofile_limit, Shutdown};

use super::{Child, Opts, Workload};
use crate::child::{stop_on_stdin_eof, ServerChild};
use crate::report::{median, Figure};
use crate::runtimes::{Which, WORKERS};
use crate::Result;

/// The workload's registry entry.
pub const WORKLOAD: Workload = Workload {
    name: NAME,
    run,
    children: &[Child {
        name: "server",
        run: child_server,
    }],
};

const NAME: &str = "echo";
/// Connection counts of a run (`n=` of the lines).
pub const CONNECTIONS: [u64; 2] = [1_000, 10_000];
/// Message size.
pub const MSG_SIZE: usize = 64;
/// Reads one figure out of a load report.
type Metric = fn(&EchoReport) -> f64;
/// How long a stopping server may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Durations of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Measured window.
    pub duration: Duration,
    /// Unrecorded warm-up before it.
    pub warmup: Duration,
}

impl Timing {
    /// Full or `--quick` durations.
    pub fn new(quick: bool) -> Timing {
        if quick {
            Timing {
                duration: Duration::from_secs(1),
                warmup: Duration::from_millis(500),
            }
        } else {
            Timing {
                duration: Duration::from_secs(10),
                warmup: Duration::from_secs(1),
            }
        }
    }
}

/// One run: a fresh `which` server process (from `exe`, the `compare`
/// binary or one that dispatches its children the same way), driven by
/// `connections` clients.
///
/// # Errors
///
/// The server failing to start or stop, the load generator failing, or
/// corrupted echoes.
pub fn measure(
    exe: &std::path::Path,
    which: Which,
    connections: u64,
    timing: Timing,
) -> Result<EchoReport> {
    let server = ServerChild::start_exe(exe, "echo.server", &[which.name()])?;
    let addr: SocketAddr = server
        .first_line()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("echo server printed {:?}", server.first_line()))?
        .parse()?;
    let mut cfg = EchoLoadConfig::new(addr);
    cfg.connections = connections as usize;
    cfg.duration = timing.duration;
    cfg.warmup = timing.warmup;
    cfg.msg_size = MSG_SIZE;
    cfg.workers = WORKERS;
    let report = load::run(&cfg);
    let rss = pinstack_examples::rss_kib(server.pid());
    let stopped = server.stop(STOP_TIMEOUT);
    let report = report?;
    stopped?;
    let rss = rss.map_or_else(|e| format!("unknown ({e})"), |k| format!("{k} KiB"));
    eprintln!("echo: {} server (rss {rss}): {report}", which.name());
    if report.mismatches > 0 {
        return Err(format!(
            "echo: the {} server returned {} corrupted echoes",
            which.name(),
            report.mismatches
        )
        .into());
    }
    if report.connect_failures > 0 || report.io_errors > 0 {
        eprintln!(
            "echo: WARNING: {} server: {} connections failed to connect, {} failed mid-run",
            which.name(),
            report.connect_failures,
            report.io_errors
        );
    }
    Ok(report)
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    let timing = Timing::new(opts.quick);
    let counts: Vec<u64> = match opts.n {
        Some(c) => vec![c],
        None => CONNECTIONS.to_vec(),
    };
    let exe = std::env::current_exe()?;
    let mut figures = Vec::new();
    for c in counts {
        let mut runs: [Vec<EchoReport>; 2] = Default::default();
        for _ in 0..3 {
            runs[0].push(measure(&exe, Which::Pinstack, c, timing)?);
            runs[1].push(measure(&exe, Which::Tokio, c, timing)?);
        }
        let med = |i: usize, f: Metric| {
            median(&runs[i].iter().map(f).collect::<Vec<_>>())
        };
        figures.push(Figure::higher(
            NAME,
            "rps",
            c,
            med(0, |r| r.rps),
            "tokio",
            med(1, |r| r.rps),
        ));
        let lat: [(&'static str, Metric); 3] = [
            ("p99_us", |r| r.p99_us),
            ("p50_us", |r| r.p50_us),
            ("p999_us", |r| r.p999_us),
        ];
        for (metric, f) in lat {
            figures.push(Figure::lower(NAME, metric, c, med(0, f), "tokio", med(1, f)));
        }
    }
    Ok(figures)
}

/// Child: `echo.server <pinstack|tokio>`: an echo server with 2 workers on
/// 127.0.0.1 (a free port); prints `listening on ADDR`, serves until stdin
/// closes.
fn child_server(args: &[String]) -> Result<String> {
    let which = Which::from_args(args)?;
    match raise_nofile_limit() {
        Ok(l) => eprintln!("echo server ({}): {l}", which.name()),
        Err(e) => eprintln!("echo server ({}): cannot raise RLIMIT_NOFILE: {e}", which.name()),
    }
    let cfg = EchoConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers: WORKERS,
        ..EchoConfig::default()
    };
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    stop_on_stdin_eof(move || trigger.trigger())?;
    let ready = |addr: SocketAddr| println!("listening on {addr}");
    match which {
        Which::Pinstack => pinstack_server::run(&cfg, &shutdown, ready)?,
        Which::Tokio => tokio_server::run(&cfg, &shutdown, ready)?,
    }
    Ok("stopped".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_runs_are_shorter() {
        let q = Timing::new(true);
        let f = Timing::new(false);
        assert!(q.duration < f.duration && q.warmup < f.warmup);
        assert_eq!(f.duration, Duration::from_secs(10));
        assert!(child_server(&["neither".into()]).is_err());
    }
}
