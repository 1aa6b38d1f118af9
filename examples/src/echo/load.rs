//! Closed-loop echo load generator.
//!
//! `connections` clients on a tokio multi-thread runtime; each sends a
//! `msg_size`-byte message, waits for the whole echo, checks it, and sends
//! the next. Time line:
//!
//! ```text
//! connect all ──▶ warmup (not recorded) ──▶ measured window (duration) ──▶ stop
//! ```
//!
//! A round trip counts in the window if it started inside it. Every echo
//! is compared with what was sent (connection id and sequence number), so a
//! server that corrupts or reorders bytes shows up as `mismatches`.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::flags::{FlagError, Flags};
use crate::{connect_from, raise_nofile_limit, Histogram, SourcePlan};

/// Echo load settings.
#[derive(Debug, Clone)]
pub struct EchoLoadConfig {
    /// Server address (`--addr`).
    pub addr: SocketAddr,
    /// Concurrent connections C (`--connections`, default 1000).
    pub connections: usize,
    /// Measured time (`--duration`, default 10s).
    pub duration: Duration,
    /// Unrecorded time before it (`--warmup`, default 1s).
    pub warmup: Duration,
    /// Message size (`--size`, 16..=65536, default 64).
    pub msg_size: usize,
    /// Load generator threads (`--workers`, default: CPUs).
    pub workers: usize,
    /// Source addresses (`--source-addrs`; default: as many 127.0.0.x as
    /// the port range needs).
    pub sources: Option<Vec<IpAddr>>,
    /// Connects in flight at once (`--connect-concurrency`, default 256).
    pub connect_concurrency: usize,
    /// Limit for the connect phase (`--connect-timeout`, default 60s).
    pub connect_timeout: Duration,
}

impl EchoLoadConfig {
    /// Defaults aimed at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            connections: 1000,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            msg_size: 64,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            sources: None,
            connect_concurrency: 256,
            connect_timeout: Duration::from_secs(60),
        }
    }

    /// From command-line flags (`--addr` is required).
    ///
    /// # Errors
    ///
    /// A [`FlagError`] for unknown flags, bad values, or a missing `--addr`.
    pub fn from_flags(mut flags: Flags) -> Result<Self, FlagError> {
        let mut c = Self::new(SocketAddr::from(([0, 0, 0, 0], 0)));
        let mut have_addr = false;
        while let Some(name) = flags.next_flag()? {
            match name.as_str() {
                "addr" => {
                    c.addr = flags.value(&name)?;
                    have_addr = true;
                }
                "connections" | "c" => c.connections = flags.value(&name)?,
                "duration" => c.duration = flags.duration(&name)?,
                "warmup" => c.warmup = flags.duration(&name)?,
                "size" => c.msg_size = flags.value(&name)?,
                "workers" => c.workers = flags.value(&name)?,
                "source-addrs" => c.sources = Some(flags.ip_list(&name)?),
                "connect-concurrency" => c.connect_concurrency = flags.value(&name)?,
                "connect-timeout" => c.connect_timeout = flags.duration(&name)?,
                _ => return Err(flags.unknown(&name)),
            }
        }
        if !have_addr {
            return Err(FlagError::Invalid(
                "--addr is required (the echo server's address)".into(),
            ));
        }
        if c.connections == 0 || c.workers == 0 || c.connect_concurrency == 0 {
            return Err(FlagError::Invalid(
                "--connections, --workers and --connect-concurrency must be at least 1".into(),
            ));
        }
        if !(16..=65536).contains(&c.msg_size) {
            return Err(FlagError::Invalid(
                "--size must be between 16 and 65536".into(),
            ));
        }
        Ok(c)
    }
}

/// `--help` text for [`EchoLoadConfig::from_flags`].
pub const ECHO_LOAD_FLAGS_HELP: &str = "\
  --addr ADDR                 echo server address (required)
  --connections N             concurrent connections (default 1000)
  --duration DUR              measured time (default 10s)
  --warmup DUR                unmeasured time first (default 1s)
  --size BYTES                message size (default 64)
  --workers N                 client threads (default: CPUs)
  --source-addrs A,B,...      source addresses (default: automatic 127.0.0.x)
  --connect-concurrency N     connects in flight (default 256)
  --connect-timeout DUR       limit for connecting everyone (default 60s)";

/// What an echo run measured.
#[derive(Debug, Clone)]
pub struct EchoReport {
    /// Connections that took part.
    pub connections: usize,
    /// Connections that failed to connect.
    pub connect_failures: usize,
    /// Time to open all connections.
    pub connect_time: Duration,
    /// Round trips completed in the measured window.
    pub round_trips: u64,
    /// The measured window.
    pub window: Duration,
    /// Round trips per second.
    pub rps: f64,
    /// Round-trip latency percentiles, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// 99.9th percentile, microseconds.
    pub p999_us: f64,
    /// Largest round trip, microseconds.
    pub max_us: f64,
    /// Echoes that differed from what was sent.
    pub mismatches: u64,
    /// Connections that failed mid-run (reset, closed early).
    pub io_errors: u64,
}

impl fmt::Display for EchoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "echo connections={} connect_failures={} connect_s={:.2} window_s={:.2} round_trips={} \
             rps={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} mismatches={} io_errors={}",
            self.connections,
            self.connect_failures,
            self.connect_time.as_secs_f64(),
            self.window.as_secs_f64(),
            self.round_trips,
            self.rps,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.mismatches,
            self.io_errors
        )
    }
}

#[derive(Default)]
struct Counters {
    round_trips: AtomicU64,
    mismatches: AtomicU64,
    io_errors: AtomicU64,
}

/// Runs the load (blocking; builds its own runtime) and reports.
///
/// Raises the `RLIMIT_NOFILE` soft limit to the hard limit first and says
/// so on stderr.
///
/// # Errors
///
/// Runtime creation, the source-address plan, or every connection failing.
pub fn run(config: &EchoLoadConfig) -> io::Result<EchoReport> {
    match raise_nofile_limit() {
        Ok(l) => eprintln!("echo load: {l}"),
        Err(e) => eprintln!("echo load: cannot raise RLIMIT_NOFILE: {e}"),
    }
    let plan = match &config.sources {
        Some(a) => SourcePlan::explicit(a.clone()),
        None => SourcePlan::auto(config.addr, config.connections)?,
    };
    if !plan.addrs().is_empty() {
        eprintln!("echo load: source addresses {:?}", plan.addrs());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers.max(1))
        .thread_name("echo-load")
        .enable_all()
        .build()?;
    let r = rt.block_on(drive(config, plan));
    rt.shutdown_timeout(Duration::from_secs(1));
    r
}

async fn drive(config: &EchoLoadConfig, plan: SourcePlan) -> io::Result<EchoReport> {
    let sem = Arc::new(Semaphore::new(config.connect_concurrency));
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + config.connect_timeout;
    let mut connecting = Vec::with_capacity(config.connections);
    for i in 0..config.connections {
        let (sem, src, addr) = (sem.clone(), plan.for_connection(i), config.addr);
        connecting.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.ok()?;
            match tokio::time::timeout_at(deadline, connect_from(src, addr)).await {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) => {
                    if i < 3 {
                        eprintln!("echo load: {e}");
                    }
                    None
                }
                Err(_) => None,
            }
        }));
    }
    let mut streams = Vec::with_capacity(config.connections);
    for h in connecting {
        if let Ok(Some(s)) = h.await {
            streams.push(s);
        }
    }
    let connect_time = t0.elapsed();
    let failures = config.connections - streams.len();
    if streams.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("no connection to {} succeeded", config.addr),
        ));
    }
    let hist = Arc::new(Histogram::new());
    let counters = Arc::new(Counters::default());
    let start = Instant::now() + Duration::from_millis(20);
    let window_start = start + config.warmup;
    let end = window_start + config.duration;
    let mut tasks = Vec::with_capacity(streams.len());
    for (id, mut s) in streams.into_iter().enumerate() {
        let (hist, counters, size) = (hist.clone(), counters.clone(), config.msg_size);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            let mut out = vec![b'.'; size];
            let mut back = vec![0u8; size];
            out[..8].copy_from_slice(&(id as u64).to_le_bytes());
            let mut seq = 0u64;
            loop {
                let sent_at = Instant::now();
                if sent_at >= end {
                    break;
                }
                out[8..16].copy_from_slice(&seq.to_le_bytes());
                let r = async {
                    s.write_all(&out).await?;
                    s.read_exact(&mut back).await
                }
                .await;
                if r.is_err() {
                    counters.io_errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                if back != out {
                    counters.mismatches.fetch_add(1, Ordering::Relaxed);
                }
                if sent_at >= window_start {
                    hist.record(sent_at.elapsed().as_nanos() as u64);
                    counters.round_trips.fetch_add(1, Ordering::Relaxed);
                }
                seq += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let window = config.duration;
    let n = counters.round_trips.load(Ordering::Relaxed);
    let us = |v: u64| v as f64 / 1000.0;
    Ok(EchoReport {
        connections: config.connections - failures,
        connect_failures: failures,
        connect_time,
        round_trips: n,
        window,
        rps: n as f64 / window.as_secs_f64().max(1e-9),
        p50_us: us(hist.quantile(0.5)),
        p99_us: us(hist.quantile(0.99)),
        p999_us: us(hist.quantile(0.999)),
        max_us: us(hist.max()),
        mismatches: counters.mismatches.load(Ordering::Relaxed),
        io_errors: counters.io_errors.load(Ordering::Relaxed),
    })
}
