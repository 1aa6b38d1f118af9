//! Runs a chat load: connect everyone, the steady phase, the ramp.
//!
//! The driver owns the control channel (`watch<Control>`) and reads the
//! shared counters; clients ([`super::client`]) do the I/O. Per phase it
//! snapshots the counters, sends `Send`, sleeps until the phase ends, waits
//! (at most `drain`) first for every live client to report it sent its last
//! message and then for unique deliveries to reach the expected count, sends
//! `Wait`, and takes the differences.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};

use super::client::{run_client, ClientSpec, Control, Shared};
use super::report::{LoadReport, PhaseReport};
use super::{LoadConfig, Ramp};
use crate::{cpu_time, raise_nofile_limit, rss_kib, SourcePlan};

/// Runs the load described by `config` (blocking; builds its own tokio
/// runtime) and reports what it measured.
///
/// Raises the `RLIMIT_NOFILE` soft limit to the hard limit first and says
/// so on stderr.
///
/// # Errors
///
/// Invalid settings, runtime creation, the source-address plan, or no
/// client managing to join (the error then quotes the first failure).
pub fn run(config: &LoadConfig) -> io::Result<LoadReport> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    match raise_nofile_limit() {
        Ok(l) => eprintln!("chat load: {l}"),
        Err(e) => eprintln!("chat load: cannot raise RLIMIT_NOFILE: {e}"),
    }
    let plan = match &config.sources {
        Some(a) => SourcePlan::explicit(a.clone()),
        None => SourcePlan::auto(config.addr, config.clients)?,
    };
    if !plan.addrs().is_empty() {
        eprintln!("chat load: source addresses {:?}", plan.addrs());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers.max(1))
        .thread_name("chat-load")
        .enable_all()
        .build()?;
    let r = rt.block_on(drive(config, plan));
    rt.shutdown_timeout(Duration::from_secs(2));
    r
}

async fn drive(cfg: &LoadConfig, plan: SourcePlan) -> io::Result<LoadReport> {
    let rss_before = cfg.server_pid.and_then(|p| rss_kib(p).ok());
    let shared = Arc::new(Shared::new(cfg.rooms));
    let (ctl_tx, ctl_rx) = watch::channel(Control::Wait);
    let sem = Arc::new(Semaphore::new(cfg.connect_concurrency));
    let t0 = Instant::now();
    let connect_deadline = t0 + cfg.connect_timeout;
    let prefix: Arc<str> = cfg.nick_prefix.as_str().into();
    let mut tasks = Vec::with_capacity(cfg.clients);
    for i in 0..cfg.clients {
        let spec = ClientSpec {
            index: i,
            clients: cfg.clients,
            rooms: cfg.rooms,
            addr: cfg.addr,
            source: plan.for_connection(i),
            nick_prefix: prefix.clone(),
            connect_deadline,
        };
        tasks.push(tokio::spawn(run_client(
            spec,
            shared.clone(),
            ctl_rx.clone(),
            sem.clone(),
        )));
    }
    drop(ctl_rx);
    // Every client either joins or fails by the deadline (its own timeout).
    // Slow connects (big C, an emulated machine) say how far they got.
    let settle = connect_deadline + Duration::from_secs(1);
    let mut next_progress = t0 + Duration::from_secs(30);
    loop {
        let done = shared.joined.load(Ordering::Acquire) + shared.failed.load(Ordering::Acquire);
        if done >= cfg.clients || Instant::now() > settle {
            break;
        }
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(30);
            eprintln!(
                "chat load: {} of {} clients joined, {} failed, after {:.0} s",
                shared.joined.load(Ordering::Acquire),
                cfg.clients,
                shared.failed.load(Ordering::Acquire),
                t0.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let connect_time = t0.elapsed();
    let connected = shared.joined.load(Ordering::Acquire);
    let first_error = || {
        shared
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    };
    if connected == 0 {
        let _ = ctl_tx.send(Control::Stop);
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!(
                "no client could join the chat at {}: {}",
                cfg.addr,
                first_error().unwrap_or_else(|| "no error recorded".into())
            ),
        ));
    }
    // Let the JOIN and NAMES bursts settle before measuring.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_joined = cfg.server_pid.and_then(|p| rss_kib(p).ok());
    // After a hold the clients have been idle for its length: the RSS of a
    // server holding idle clients (a pinstack client's writer has left).
    let rss_held = if cfg.hold.is_zero() {
        None
    } else {
        tokio::time::sleep(cfg.hold).await;
        cfg.server_pid.and_then(|p| rss_kib(p).ok())
    };

    let steady = if cfg.duration.is_zero() {
        None
    } else {
        Some(phase(cfg, &shared, &ctl_tx, "steady", cfg.rate, cfg.duration).await)
    };
    let mut ramp_steps = Vec::new();
    let mut peak = None;
    if let Some(Ramp {
        start,
        step,
        steps,
        step_duration,
    }) = cfg.ramp.clone()
    {
        for k in 0..steps {
            let rate = start + step * k as f64;
            let r = phase(cfg, &shared, &ctl_tx, "ramp", rate, step_duration).await;
            let pass = r.pass;
            ramp_steps.push(r);
            if !pass {
                break;
            }
            peak = Some(rate);
        }
    }

    let held = shared.alive.load(Ordering::Relaxed);
    let _ = ctl_tx.send(Control::Stop);
    let quit_by = tokio::time::Instant::now() + Duration::from_secs(2);
    for t in tasks {
        if tokio::time::timeout_at(quit_by, t).await.is_err() {
            break; // the runtime shutdown ends the rest
        }
    }
    let per_client = |after: Option<u64>| match (rss_before, after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / connected as f64),
        _ => None,
    };
    let (rss_kib_per_client, rss_kib_per_client_held) =
        (per_client(rss_joined), per_client(rss_held));
    Ok(LoadReport {
        clients: cfg.clients,
        rooms: cfg.rooms,
        connected,
        connect_failures: shared.failed.load(Ordering::Acquire),
        first_error: first_error(),
        connect_time,
        disconnects: shared.disconnects.load(Ordering::Relaxed),
        server_errors: shared.server_errors.load(Ordering::Relaxed),
        pings_answered: shared.pings.load(Ordering::Relaxed),
        held,
        steady,
        ramp: ramp_steps,
        peak_msgs_per_s: peak,
        server_rss_before_kib: rss_before,
        server_rss_kib: rss_joined,
        rss_kib_per_client,
        server_rss_held_kib: rss_held,
        rss_kib_per_client_held,
    })
}

async fn phase(
    cfg: &LoadConfig,
    shared: &Shared,
    ctl: &watch::Sender<Control>,
    name: &'static str,
    rate: f64,
    duration: Duration,
) -> PhaseReport {
    let t = &shared.tally;
    let sent0 = shared.sent.load(Ordering::Relaxed);
    let exp0 = shared.expected.load(Ordering::Relaxed);
    let uniq0 = t.unique();
    let dup0 = t.duplicates.load(Ordering::Relaxed);
    let gaps0 = t.gaps.load(Ordering::Relaxed);
    let mis0 = t.misrouted.load(Ordering::Relaxed);
    shared.hist.reset();
    shared.done_sending.store(0, Ordering::Release);
    let senders = shared.alive.load(Ordering::Relaxed);
    let cpu0 = cfg.server_pid.and_then(|p| cpu_time(p).ok());

    let start = Instant::now() + Duration::from_millis(20);
    let end = start + duration;
    let _ = ctl.send(Control::Send { start, end, rate });
    tokio::time::sleep_until(end.into()).await;
    let limit = end + cfg.drain;
    while shared.done_sending.load(Ordering::Acquire) < senders && Instant::now() < limit {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let expected = loop {
        let expected = shared.expected.load(Ordering::Relaxed) - exp0;
        if t.unique() - uniq0 >= expected || Instant::now() >= limit {
            break expected;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let drained_at = Instant::now();
    let _ = ctl.send(Control::Wait);
    let cpu = match (cpu0, cfg.server_pid.and_then(|p| cpu_time(p).ok())) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let delivered = t.unique() - uniq0;
    let lost = expected.saturating_sub(delivered);
    let us = |v: u64| v as f64 / 1000.0;
    let p99_ns = shared.hist.quantile(0.99);
    let sent = shared.sent.load(Ordering::Relaxed) - sent0;
    PhaseReport {
        name,
        rate,
        duration,
        sent,
        expected,
        delivered,
        lost,
        duplicates: t.duplicates.load(Ordering::Relaxed)
            - dup0
            - (t.misrouted.load(Ordering::Relaxed) - mis0),
        gaps: t.gaps.load(Ordering::Relaxed) - gaps0,
        misrouted: t.misrouted.load(Ordering::Relaxed) - mis0,
        deliveries_per_s: delivered as f64
            / drained_at.duration_since(start).as_secs_f64().max(1e-9),
        p50_us: us(shared.hist.quantile(0.5)),
        p99_us: us(p99_ns),
        p999_us: us(shared.hist.quantile(0.999)),
        max_us: us(shared.hist.max()),
        drain: drained_at.saturating_duration_since(end),
        server_cpu: cpu,
        cpu_us_per_delivery: cpu
            .filter(|_| delivered > 0)
            .map(|c| c.as_secs_f64() * 1e6 / delivered as f64),
        pass: sent > 0 && lost == 0 && Duration::from_nanos(p99_ns) < cfg.p99_limit,
    }
}
