//! The chat load generator: C clients in R rooms over loopback, checking
//! that every member gets every message of its room, in order per sender.
//!
//! It is a client of any chat server speaking the protocol (`--addr`), the
//! same for both twins, and runs on a tokio multi-thread runtime so it is
//! not the bottleneck. A run:
//!
//! 1. raises `RLIMIT_NOFILE` (and says so), picks source addresses
//!    127.0.0.x when C exceeds one address's ephemeral ports;
//! 2. connects, registers and joins every client (bounded concurrency),
//!    timing it (`connect_s`);
//! 3. a steady phase at `rate` messages/s in total for `duration`, each
//!    message carrying sender id, sequence number and CLOCK_MONOTONIC send
//!    time; then stop sending, wait up to `drain` for in-flight deliveries,
//!    and count losses;
//! 4. optionally a ramp: phases at rising rates, each passing if nothing
//!    was lost and p99 < `p99_limit`; stops at the first failure and reports
//!    the highest passing rate;
//! 5. with `--hold`, before any sending, every client stays connected and
//!    idle (answering PINGs) for that long; `held` counts who is still
//!    connected at the end of the run;
//! 6. with `--server-pid`: the server's RSS per client and CPU time per
//!    delivery over each phase, from `/proc`.

mod client;
mod driver;
mod report;
mod verify;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use driver::run;
pub use report::{LoadReport, PhaseReport};

use crate::flags::{FlagError, Flags};

/// A ramp of send rates: `start`, `start + step`, ... for at most `steps`
/// phases of `step_duration` each.
#[derive(Debug, Clone, PartialEq)]
pub struct Ramp {
    /// First rate, messages/s in total.
    pub start: f64,
    /// Added per step.
    pub step: f64,
    /// Most steps.
    pub steps: usize,
    /// Length of each step.
    pub step_duration: Duration,
}

/// Chat load settings.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Server address (`--addr`).
    pub addr: SocketAddr,
    /// Clients C (`--clients`, default 1000).
    pub clients: usize,
    /// Rooms R (`--rooms`, default 10); client i is in room i % R.
    pub rooms: usize,
    /// Messages per second, all clients together (`--rate`, default 1000;
    /// or `--interval` per client).
    pub rate: f64,
    /// Steady phase length (`--duration`, default 10s; 0 skips it).
    pub duration: Duration,
    /// Longest wait for in-flight deliveries after a phase (`--drain`,
    /// default 5s).
    pub drain: Duration,
    /// Limit for connecting and joining everyone (`--connect-timeout`,
    /// default 120s).
    pub connect_timeout: Duration,
    /// Connects in flight at once (`--connect-concurrency`, default 256).
    pub connect_concurrency: usize,
    /// Load generator threads (`--workers`, default: CPUs).
    pub workers: usize,
    /// Source addresses (`--source-addrs`; default automatic 127.0.0.x).
    pub sources: Option<Vec<IpAddr>>,
    /// The server's PID, for RSS and CPU figures (`--server-pid`).
    pub server_pid: Option<u32>,
    /// Rate ramp after the steady phase (`--ramp-start`, `--ramp-step`,
    /// `--ramp-steps`, `--ramp-step-duration`).
    pub ramp: Option<Ramp>,
    /// A ramp step passes only with p99 below this (`--p99-limit`, 100ms).
    pub p99_limit: Duration,
    /// Nicknames are this plus the client index (`--nick-prefix`, "c").
    pub nick_prefix: String,
    /// Keep every client connected and idle this long after joining, before
    /// any sending phase (`--hold`, default 0): the `chat_hold` workload.
    /// Clients answer the server's PINGs meanwhile.
    pub hold: Duration,
}

impl LoadConfig {
    /// Defaults aimed at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            clients: 1000,
            rooms: 10,
            rate: 1000.0,
            duration: Duration::from_secs(10),
            drain: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(120),
            connect_concurrency: 256,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            sources: None,
            server_pid: None,
            ramp: None,
            p99_limit: Duration::from_millis(100),
            nick_prefix: "c".into(),
            hold: Duration::ZERO,
        }
    }

    /// From command-line flags (`--addr` is required).
    ///
    /// ```
    /// use pinstack_examples::chat::load::LoadConfig;
    /// use pinstack_examples::flags::Flags;
    /// let a = "--addr 127.0.0.1:6667 --clients 200 --rooms 10 --interval 500ms --ramp-start 100";
    /// let c = LoadConfig::from_flags(Flags::new(a.split(' ').map(String::from))).unwrap();
    /// assert_eq!(c.rate, 400.0); // 200 clients, one message each per 0.5 s
    /// assert_eq!(c.ramp.unwrap().start, 100.0);
    /// ```
    ///
    /// # Errors
    ///
    /// A [`FlagError`] for unknown flags, bad values or a missing `--addr`.
    pub fn from_flags(mut flags: Flags) -> Result<Self, FlagError> {
        let mut c = Self::new(SocketAddr::from(([0, 0, 0, 0], 0)));
        let mut have_addr = false;
        let mut interval: Option<Duration> = None;
        let mut ramp = Ramp {
            start: 0.0,
            step: 0.0,
            steps: 10,
            step_duration: Duration::from_secs(5),
        };
        let mut want_ramp = false;
        while let Some(name) = flags.next_flag()? {
            match name.as_str() {
                "addr" => {
                    c.addr = flags.value(&name)?;
                    have_addr = true;
                }
                "clients" => c.clients = flags.value(&name)?,
                "rooms" => c.rooms = flags.value(&name)?,
                "rate" => c.rate = flags.value(&name)?,
                "interval" => interval = Some(flags.duration(&name)?),
                "duration" => c.duration = flags.duration(&name)?,
                "drain" => c.drain = flags.duration(&name)?,
                "connect-timeout" => c.connect_timeout = flags.duration(&name)?,
                "connect-concurrency" => c.connect_concurrency = flags.value(&name)?,
                "workers" => c.workers = flags.value(&name)?,
                "source-addrs" => c.sources = Some(flags.ip_list(&name)?),
                "server-pid" => c.server_pid = Some(flags.value(&name)?),
                "p99-limit" => c.p99_limit = flags.duration(&name)?,
                "nick-prefix" => c.nick_prefix = flags.value(&name)?,
                "hold" => c.hold = flags.duration(&name)?,
                "ramp-start" => {
                    ramp.start = flags.value(&name)?;
                    want_ramp = true;
                }
                "ramp-step" => {
                    ramp.step = flags.value(&name)?;
                    want_ramp = true;
                }
                "ramp-steps" => ramp.steps = flags.value(&name)?,
                "ramp-step-duration" => ramp.step_duration = flags.duration(&name)?,
                _ => return Err(flags.unknown(&name)),
            }
        }
        if !have_addr {
            return Err(FlagError::Invalid(
                "--addr is required (the chat server's address)".into(),
            ));
        }
        if let Some(i) = interval {
            if i.is_zero() {
                return Err(FlagError::Invalid("--interval must be above zero".into()));
            }
            c.rate = c.clients as f64 / i.as_secs_f64();
        }
        if want_ramp {
            if ramp.start <= 0.0 {
                ramp.start = c.rate;
            }
            if ramp.step <= 0.0 {
                ramp.step = ramp.start;
            }
            c.ramp = Some(ramp);
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`FlagError::Invalid`] naming what is wrong.
    pub fn validate(&self) -> Result<(), FlagError> {
        let bad = |m: &str| Err(FlagError::Invalid(m.to_owned()));
        if self.clients == 0 || self.rooms == 0 || self.rooms > self.clients {
            return bad("need at least 1 room and at least as many clients as rooms");
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return bad("--rate must be a positive number of messages per second");
        }
        if self.workers == 0 || self.connect_concurrency == 0 {
            return bad("--workers and --connect-concurrency must be at least 1");
        }
        if self.nick_prefix.is_empty()
            || !self
                .nick_prefix
                .starts_with(|c: char| c.is_ascii_alphabetic())
            || self.nick_prefix.len() > 20
        {
            return bad("--nick-prefix must start with a letter and be at most 20 bytes");
        }
        if let Some(r) = &self.ramp {
            if !(r.start > 0.0 && r.step > 0.0 && r.steps > 0 && !r.step_duration.is_zero()) {
                return bad("ramp: start, step, steps and step duration must be above zero");
            }
        }
        if self.duration.is_zero() && self.ramp.is_none() && self.hold.is_zero() {
            return bad("nothing to do: --duration and --hold are 0 and no ramp was asked for");
        }
        Ok(())
    }
}

/// `--help` text for [`LoadConfig::from_flags`].
pub const LOAD_FLAGS_HELP: &str = "\
  --addr ADDR                 chat server address (required)
  --clients N                 clients (default 1000)
  --rooms N                   rooms; client i joins room i % N (default 10)
  --rate M                    messages/s from all clients together (default 1000)
  --interval DUR              or: one message per client every DUR
  --duration DUR              steady phase (default 10s; 0 = ramp only)
  --drain DUR                 wait for in-flight deliveries (default 5s)
  --server-pid PID            report the server's RSS and CPU from /proc
  --ramp-start M              ramp: first rate (enables the ramp; default --rate)
  --ramp-step M               ramp: added per step (default the start rate)
  --ramp-steps N              ramp: most steps (default 10)
  --ramp-step-duration DUR    ramp: length of a step (default 5s)
  --p99-limit DUR             ramp pass: p99 below this (default 100ms)
  --workers N                 client threads (default: CPUs)
  --source-addrs A,B,...      source addresses (default: automatic 127.0.0.x)
  --connect-concurrency N     connects in flight (default 256)
  --connect-timeout DUR       limit for connecting everyone (default 120s)
  --nick-prefix P             nicknames are P<index> (default c)
  --hold DUR                  stay connected and idle this long first (default 0)";
