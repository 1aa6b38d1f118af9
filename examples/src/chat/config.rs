//! Chat server settings and their command-line flags.

use std::net::SocketAddr;
use std::time::Duration;

use super::hub::HubConfig;
use super::proto::MAX_LINE;
use crate::flags::{FlagError, Flags};

/// Everything a chat server (either twin) can be told.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Listen address (`--addr`, default 127.0.0.1:6667; port 0 picks one).
    pub addr: SocketAddr,
    /// Worker threads (`--workers`, default: one per CPU).
    pub workers: usize,
    /// Longest input line including CRLF (`--max-line`, 64..=8192,
    /// default 512).
    pub max_line: usize,
    /// Lines a client's outbound queue holds before the client is dropped
    /// with `ERROR :SendQ exceeded` (`--sendq`, default 1024). Bounds memory
    /// per client at `sendq` × 512 bytes in the worst case.
    pub sendq: usize,
    /// Silence after which the server PINGs a client (`--ping-interval`,
    /// default 120s).
    pub ping_interval: Duration,
    /// Time a PINGed client has to say anything before it is dropped
    /// (`--ping-timeout`, default 60s).
    pub ping_timeout: Duration,
    /// Connections served at once; more are refused with an ERROR line
    /// (`--max-clients`, default 1,000,000).
    pub max_clients: usize,
    /// How long a closing connection may take to flush its last lines
    /// (`--close-grace`, default 5s).
    pub close_grace: Duration,
    /// Listen backlog (`--backlog`, default 4096).
    pub backlog: u32,
    /// Names and per-client limits (`--server-name`, `--max-rooms`).
    pub hub: HubConfig,
    /// Where the pinstack twin serves its runtime metrics in the
    /// Prometheus text format over HTTP (`--admin-addr`, default none).
    pub admin_addr: Option<SocketAddr>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 6667)),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_line: MAX_LINE,
            sendq: 1024,
            ping_interval: Duration::from_secs(120),
            ping_timeout: Duration::from_secs(60),
            max_clients: 1_000_000,
            close_grace: Duration::from_secs(5),
            backlog: 4096,
            hub: HubConfig::default(),
            admin_addr: None,
        }
    }
}

/// The flags [`ChatConfig::from_flags`] understands, for `--help`.
pub const CHAT_FLAGS_HELP: &str = "\
  --addr ADDR            listen address (default 127.0.0.1:6667)
  --workers N            worker threads (default: CPUs)
  --max-line BYTES       longest input line incl. CRLF (default 512)
  --sendq LINES          outbound queue per client (default 1024)
  --ping-interval DUR    idle time before a PING (default 120s)
  --ping-timeout DUR     time to answer a PING (default 60s)
  --max-clients N        connections at once (default 1000000)
  --max-rooms N          rooms per client (default 20)
  --close-grace DUR      time to flush a closing connection (default 5s)
  --backlog N            listen backlog (default 4096)
  --server-name NAME     server name in replies (default pinstack.chat)
  --admin-addr ADDR      serve Prometheus metrics here (pinstack twin; default off)";

impl ChatConfig {
    /// Applies one flag; returns `Ok(false)` if `name` is not a chat flag
    /// (so a binary can add flags of its own).
    ///
    /// # Errors
    ///
    /// A [`FlagError`] for a missing or bad value.
    pub fn apply_flag(&mut self, flags: &mut Flags, name: &str) -> Result<bool, FlagError> {
        match name {
            "addr" => self.addr = flags.value(name)?,
            "workers" => self.workers = flags.value(name)?,
            "max-line" => self.max_line = flags.value(name)?,
            "sendq" => self.sendq = flags.value(name)?,
            "ping-interval" => self.ping_interval = flags.duration(name)?,
            "ping-timeout" => self.ping_timeout = flags.duration(name)?,
            "max-clients" => self.max_clients = flags.value(name)?,
            "max-rooms" => self.hub.max_rooms_per_client = flags.value(name)?,
            "close-grace" => self.close_grace = flags.duration(name)?,
            "backlog" => self.backlog = flags.value(name)?,
            "server-name" => self.hub.server_name = flags.value(name)?,
            "admin-addr" => self.admin_addr = Some(flags.value(name)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A config from command-line flags (see [`CHAT_FLAGS_HELP`]).
    ///
    /// ```
    /// use pinstack_examples::chat::ChatConfig;
    /// use pinstack_examples::flags::Flags;
    /// let args = ["--addr", "127.0.0.1:0", "--sendq=64", "--ping-interval", "5s"];
    /// let c = ChatConfig::from_flags(Flags::new(args.map(String::from))).unwrap();
    /// assert_eq!((c.sendq, c.ping_interval.as_secs()), (64, 5));
    /// ```
    ///
    /// # Errors
    ///
    /// A [`FlagError`] for unknown flags, bad values or an invalid
    /// combination.
    pub fn from_flags(mut flags: Flags) -> Result<Self, FlagError> {
        let mut c = Self::default();
        while let Some(name) = flags.next_flag()? {
            if !c.apply_flag(&mut flags, &name)? {
                return Err(flags.unknown(&name));
            }
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks that the limits make sense.
    ///
    /// # Errors
    ///
    /// [`FlagError::Invalid`] naming the offending setting.
    pub fn validate(&self) -> Result<(), FlagError> {
        let bad = |m: &str| Err(FlagError::Invalid(m.to_owned()));
        if self.workers == 0 {
            return bad("--workers must be at least 1");
        }
        if !(64..=8192).contains(&self.max_line) {
            return bad("--max-line must be between 64 and 8192 bytes");
        }
        if self.sendq == 0 {
            return bad("--sendq must be at least 1 line");
        }
        if self.ping_interval.is_zero() || self.ping_timeout.is_zero() {
            return bad("--ping-interval and --ping-timeout must be above zero");
        }
        if self.max_clients == 0 || self.hub.max_rooms_per_client == 0 {
            return bad("--max-clients and --max-rooms must be at least 1");
        }
        if self.hub.server_name.is_empty() || self.hub.server_name.contains(' ') {
            return bad("--server-name must be one word");
        }
        Ok(())
    }
}
