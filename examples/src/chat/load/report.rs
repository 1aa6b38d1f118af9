//! What a chat load run measured, and its one-line-per-figure text form.

use std::fmt;
use std::time::Duration;

/// One sending phase (the steady run or one ramp step).
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseReport {
    /// `steady` or `ramp`.
    pub name: &'static str,
    /// Target rate, messages/s in total.
    pub rate: f64,
    /// Sending time.
    pub duration: Duration,
    /// Messages sent.
    pub sent: u64,
    /// Deliveries expected: room size - 1 per message.
    pub expected: u64,
    /// Unique deliveries received.
    pub delivered: u64,
    /// Expected deliveries that never came (within the drain time).
    pub lost: u64,
    /// Deliveries received twice or out of order per sender.
    pub duplicates: u64,
    /// Sequence numbers found skipped while later ones arrived.
    pub gaps: u64,
    /// Deliveries to the wrong room, from impossible senders, or echoed to
    /// their sender.
    pub misrouted: u64,
    /// Unique deliveries per second, from the phase start until drained.
    pub deliveries_per_s: f64,
    /// Delivery latency percentiles (send to receipt), microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Time from the end of sending until everything arrived (or the drain
    /// limit).
    pub drain: Duration,
    /// Server CPU (user + system) over the phase, with `--server-pid`.
    pub server_cpu: Option<Duration>,
    /// Server CPU microseconds per delivery.
    pub cpu_us_per_delivery: Option<f64>,
    /// Ramp verdict: nothing lost and p99 under the limit.
    pub pass: bool,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// Clients asked for.
    pub clients: usize,
    /// Rooms.
    pub rooms: usize,
    /// Clients that connected, registered and joined.
    pub connected: usize,
    /// Clients that did not.
    pub connect_failures: usize,
    /// The first error seen, if any (connect failure, server ERROR line).
    pub first_error: Option<String>,
    /// Time to connect, register and join everyone.
    pub connect_time: Duration,
    /// Clients the server disconnected during the run.
    pub disconnects: u64,
    /// Numeric error replies received after joining.
    pub server_errors: u64,
    /// Server PINGs answered.
    pub pings_answered: u64,
    /// Clients still connected at the end of the run (before leaving).
    pub held: usize,
    /// The steady phase, unless skipped.
    pub steady: Option<PhaseReport>,
    /// Ramp steps run, in order; the last one failed unless all passed.
    pub ramp: Vec<PhaseReport>,
    /// Highest ramp rate that passed.
    pub peak_msgs_per_s: Option<f64>,
    /// Server RSS before the clients connected, KiB.
    pub server_rss_before_kib: Option<u64>,
    /// Server RSS with every client joined, KiB.
    pub server_rss_kib: Option<u64>,
    /// (RSS joined - RSS before) / connected clients, KiB.
    pub rss_kib_per_client: Option<f64>,
    /// Server RSS at the end of the hold (`--hold`), KiB: every client
    /// joined and idle for the hold's length.
    pub server_rss_held_kib: Option<u64>,
    /// (RSS at the end of the hold - RSS before) / connected clients, KiB.
    pub rss_kib_per_client_held: Option<f64>,
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "na".to_owned(), |v| v.to_string())
}

impl fmt::Display for PhaseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chat_load phase={} rate={:.0} duration_s={:.1} sent={} expected={} delivered={} lost={} \
             duplicates={} gaps={} misrouted={} deliveries_per_s={:.0} p50_us={:.0} p99_us={:.0} \
             p999_us={:.0} max_us={:.0} drain_ms={} server_cpu_s={} cpu_us_per_delivery={} pass={}",
            self.name,
            self.rate,
            self.duration.as_secs_f64(),
            self.sent,
            self.expected,
            self.delivered,
            self.lost,
            self.duplicates,
            self.gaps,
            self.misrouted,
            self.deliveries_per_s,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.drain.as_millis(),
            opt(&self.server_cpu.map(|d| format!("{:.3}", d.as_secs_f64()))),
            opt(&self.cpu_us_per_delivery.map(|v| format!("{v:.3}"))),
            self.pass,
        )
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chat_load clients={} rooms={} connected={} connect_failures={} connect_s={:.2} \
             held={} disconnects={} server_errors={} pings_answered={} server_rss_before_kib={} \
             server_rss_kib={} rss_kib_per_client={} server_rss_held_kib={} \
             rss_kib_per_client_held={}",
            self.clients,
            self.rooms,
            self.connected,
            self.connect_failures,
            self.connect_time.as_secs_f64(),
            self.held,
            self.disconnects,
            self.server_errors,
            self.pings_answered,
            opt(&self.server_rss_before_kib),
            opt(&self.server_rss_kib),
            opt(&self.rss_kib_per_client.map(|v| format!("{v:.2}"))),
            opt(&self.server_rss_held_kib),
            opt(&self.rss_kib_per_client_held.map(|v| format!("{v:.2}"))),
        )?;
        if let Some(e) = &self.first_error {
            writeln!(f, "chat_load first_error={e:?}")?;
        }
        if let Some(s) = &self.steady {
            writeln!(f, "{s}")?;
        }
        for r in &self.ramp {
            writeln!(f, "{r}")?;
        }
        if !self.ramp.is_empty() {
            writeln!(
                f,
                "chat_load peak_msgs_per_s={}",
                opt(&self.peak_msgs_per_s.map(|v| format!("{v:.0}")))
            )?;
        }
        Ok(())
    }
}
