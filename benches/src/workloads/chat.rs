//! The `chat` workload: the chat server (pinstack's model user) in its own
//! process, driven by the chat load generator from this one.
//!
//! Full size: 10,000 clients in 100 rooms, 1,000 messages/s sent in total
//! (99,000 deliveries/s: no echo to the sender) for 30 s, then a ramp of the
//! send rate. `--quick`: 2,000 clients in 20 rooms (the same 100 members per
//! room, so the same fan-out and delivery rate) for 3 s, and a shorter ramp
//! (250 to 1,500 msgs/s in 1 s steps; full: 500 to 8,000 in 3 s steps).
//! `--n N` sets the client count (rooms stay at N / 100).
//!
//! | metric                | what                                                   |
//! |-----------------------|--------------------------------------------------------|
//! | `cpu_us_per_delivery` | server CPU (utime + stime of its process, `/proc/PID/stat`) over the steady phase / deliveries |
//! | `p50_us`, `p99_us`    | delivery latency, send to receipt, steady phase         |
//! | `lost`                | deliveries that never came, summed over all runs        |
//! | `rss_kib_per_client`  | (server RSS with everyone joined - before) / clients    |
//! | `peak_msgs_per_s`     | highest ramp rate with zero loss and p99 < 100 ms (`better=higher`) |
//!
//! Each run starts a fresh server process (this binary re-run as child
//! `chat.server`, so nothing has to be located or built separately):
//!
//! ```text
//! compare ──ServerChild::start──▶ compare --pinstack-bench-child chat.server <rt> <max_clients>
//!    │                               raises RLIMIT_NOFILE, 2 workers, 127.0.0.1:0,
//!    │◀── "listening on ADDR" ───────┘ stops when its stdin closes
//!    ├─ chat::load::run (tokio, 2 threads; its own RLIMIT_NOFILE; --server-pid)
//!    │    connect + join everyone, steady phase, ramp
//!    └─ ServerChild::stop
//! ```
//!
//! The server and the load generator are separate processes, so each has its
//! own descriptors (the hard `RLIMIT_NOFILE` here is 20,000 per process).
//! Runs alternate pinstack, tokio, pinstack, ... three times; each figure is
//! the median of its three runs, except `lost`, which is the total.
//!
//! The load generator shares the machine with the server: on a 2-core host
//! the peak it finds is that of server + load generator together, the same
//! for both twins.

use std::net::SocketAddr;
use std::time::Duration;

use pinstack_examples::chat::load::{self, LoadConfig, LoadReport, Ramp};
use pinstack_examples::chat::{pinstack_server, tokio_server, ChatConfig};
use pinstack_examples::{raise_nofile_limit, Shutdown};

use super::{Child, Opts, Workload};
use crate::child::{stop_on_stdin_eof, ServerChild};
use crate::report::{median, Figure};
use crate::runtimes::{arg_or, Which, WORKERS};
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

const NAME: &str = "chat";
/// Members per room: 99 deliveries per message.
pub const ROOM_SIZE: u64 = 100;
/// How long a stopping server may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// A ramp step passes with p99 below this (BENCHMARKS.md).
const P99_LIMIT: Duration = Duration::from_millis(100);
/// Reads one figure out of a load report.
type Metric = fn(&LoadReport) -> f64;

/// Sizes and durations of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Clients (`n=` of the lines).
    pub clients: u64,
    /// Rooms; client i joins room i % rooms.
    pub rooms: u64,
    /// Steady send rate, messages/s in total.
    pub rate: f64,
    /// Steady phase length.
    pub duration: Duration,
    /// The rate ramp after the steady phase.
    pub ramp: Ramp,
}

impl Plan {
    /// Full or `--quick` sizes; `clients` overrides the client count.
    pub fn new(quick: bool, clients: Option<u64>) -> Plan {
        let clients = clients.unwrap_or(if quick { 2_000 } else { 10_000 });
        Plan {
            clients,
            rooms: (clients / ROOM_SIZE).max(1),
            rate: 1_000.0,
            duration: Duration::from_secs(if quick { 3 } else { 30 }),
            ramp: Ramp {
                start: if quick { 250.0 } else { 500.0 },
                step: if quick { 250.0 } else { 500.0 },
                steps: if quick { 6 } else { 16 },
                step_duration: Duration::from_secs(if quick { 1 } else { 3 }),
            },
        }
    }
}

/// Starts a fresh `which` chat server process (child `chat.server` of `exe`,
/// the `compare` binary or one dispatching its children the same way)
/// holding up to `max_clients`, and returns it with its address.
///
/// # Errors
///
/// The child failing to start or printing something other than its address.
pub fn start_server(
    exe: &std::path::Path,
    which: Which,
    max_clients: u64,
) -> Result<(ServerChild, SocketAddr)> {
    let server = ServerChild::start_exe(
        exe,
        "chat.server",
        &[which.name(), &max_clients.to_string()],
    )?;
    let addr: SocketAddr = server
        .first_line()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("chat server printed {:?}", server.first_line()))?
        .parse()?;
    Ok((server, addr))
}

/// One run: a fresh `which` server process driven by `config` (its address
/// and server PID filled in here).
///
/// # Errors
///
/// The server failing to start or stop, or the load generator failing.
pub fn measure(
    exe: &std::path::Path,
    which: Which,
    mut config: LoadConfig,
) -> Result<LoadReport> {
    let (server, addr) = start_server(exe, which, config.clients as u64)?;
    config.addr = addr;
    config.server_pid = Some(server.pid());
    config.workers = WORKERS;
    let report = load::run(&config);
    let stopped = server.stop(STOP_TIMEOUT);
    let report = report?;
    stopped?;
    eprint!("chat: {} server: {report}", which.name());
    Ok(report)
}

/// The load of one `chat` run.
fn load_config(plan: &Plan) -> LoadConfig {
    let mut cfg = LoadConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    cfg.clients = plan.clients as usize;
    cfg.rooms = plan.rooms as usize;
    cfg.rate = plan.rate;
    cfg.duration = plan.duration;
    cfg.ramp = Some(plan.ramp.clone());
    cfg.p99_limit = P99_LIMIT;
    cfg
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    let plan = Plan::new(opts.quick, opts.n);
    let exe = std::env::current_exe()?;
    eprintln!(
        "chat: {} clients in {} rooms, {} msgs/s for {:?}, then a ramp from {} by {} msgs/s \
         ({} steps of {:?}); 3 alternating runs per server",
        plan.clients,
        plan.rooms,
        plan.rate,
        plan.duration,
        plan.ramp.start,
        plan.ramp.step,
        plan.ramp.steps,
        plan.ramp.step_duration
    );
    let mut runs: [Vec<LoadReport>; 2] = Default::default();
    for _ in 0..3 {
        for (i, which) in [Which::Pinstack, Which::Tokio].into_iter().enumerate() {
            let report = measure(&exe, which, load_config(&plan))?;
            check(which, &report, &plan)?;
            runs[i].push(report);
        }
    }
    let med = |i: usize, f: Metric| median(&runs[i].iter().map(f).collect::<Vec<_>>());
    let total = |i: usize, f: Metric| runs[i].iter().map(f).sum::<f64>();
    let n = plan.clients;
    let cpu: Metric = |r| {
        r.steady
            .as_ref()
            .and_then(|s| s.cpu_us_per_delivery)
            .unwrap_or(f64::NAN)
    };
    let p50: Metric = |r| r.steady.as_ref().map_or(f64::NAN, |s| s.p50_us);
    let p99: Metric = |r| r.steady.as_ref().map_or(f64::NAN, |s| s.p99_us);
    let lost: Metric = |r| {
        r.steady
            .as_ref()
            .map_or(0.0, |s| (s.lost + s.duplicates + s.misrouted) as f64)
    };
    let rss: Metric = |r| r.rss_kib_per_client.unwrap_or(f64::NAN);
    let peak: Metric = |r| r.peak_msgs_per_s.unwrap_or(0.0);
    let mut figures = vec![
        Figure::lower(NAME, "cpu_us_per_delivery", n, med(0, cpu), "tokio", med(1, cpu))
            .with_decimals(3),
        Figure::lower(NAME, "p50_us", n, med(0, p50), "tokio", med(1, p50)),
        Figure::lower(NAME, "p99_us", n, med(0, p99), "tokio", med(1, p99)),
        Figure::lower(NAME, "lost", n, total(0, lost), "tokio", total(1, lost)).with_decimals(0),
        Figure::lower(NAME, "rss_kib_per_client", n, med(0, rss), "tokio", med(1, rss))
            .with_decimals(2),
    ];
    let ceiling = plan.ramp.start + plan.ramp.step * (plan.ramp.steps - 1) as f64;
    for (i, which) in [Which::Pinstack, Which::Tokio].into_iter().enumerate() {
        if runs[i].iter().any(|r| r.peak_msgs_per_s == Some(ceiling)) {
            eprintln!(
                "chat: {}: a ramp passed every step up to {ceiling} msgs/s: its peak is at least that",
                which.name()
            );
        }
    }
    figures.push(Figure::higher(
        NAME,
        "peak_msgs_per_s",
        n,
        med(0, peak),
        "tokio",
        med(1, peak),
    ));
    Ok(figures)
}

/// A run that did not even measure is an error; loss is a figure, reported
/// (and warned about) rather than fatal.
fn check(which: Which, r: &LoadReport, plan: &Plan) -> Result<()> {
    let name = which.name();
    if r.connected < plan.clients as usize {
        eprintln!(
            "chat: WARNING: {name}: only {} of {} clients joined (first error: {})",
            r.connected,
            plan.clients,
            r.first_error.as_deref().unwrap_or("none recorded")
        );
    }
    let Some(s) = &r.steady else {
        return Err(format!("chat: {name}: the run has no steady phase").into());
    };
    if s.sent == 0 {
        return Err(format!("chat: {name}: no message was sent in the steady phase").into());
    }
    if s.cpu_us_per_delivery.is_none() {
        return Err(format!("chat: {name}: no server CPU figure (is /proc readable?)").into());
    }
    if s.lost + s.duplicates + s.misrouted > 0 {
        eprintln!(
            "chat: WARNING: {name}: steady phase lost {} duplicated {} misrouted {}",
            s.lost, s.duplicates, s.misrouted
        );
    }
    Ok(())
}

/// Child: `chat.server <pinstack|tokio> [MAX_CLIENTS]`: a chat server with 2
/// workers on 127.0.0.1 (a free port), raising `RLIMIT_NOFILE` and saying
/// so; prints `listening on ADDR`, serves until stdin closes.
fn child_server(args: &[String]) -> Result<String> {
    let which = Which::from_args(args)?;
    let max_clients: u64 = arg_or(args, 1, 1_000_000)?;
    match raise_nofile_limit() {
        Ok(l) => eprintln!("chat server ({}): {l}", which.name()),
        Err(e) => eprintln!("chat server ({}): cannot raise RLIMIT_NOFILE: {e}", which.name()),
    }
    let cfg = ChatConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers: WORKERS,
        // The load generator's clients: every one must be admitted.
        max_clients: max_clients as usize + 16,
        ..ChatConfig::default()
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
    fn quick_plan_keeps_room_size_and_is_shorter() {
        let q = Plan::new(true, None);
        let f = Plan::new(false, None);
        assert_eq!(f.clients, 10_000);
        assert_eq!(f.rooms, 100);
        assert_eq!(f.duration, Duration::from_secs(30));
        assert_eq!(q.clients / q.rooms, f.clients / f.rooms);
        assert!(q.duration < f.duration);
        assert_eq!(Plan::new(false, Some(500)).rooms, 5);
        assert!(child_server(&["neither".into()]).is_err());
    }
}
