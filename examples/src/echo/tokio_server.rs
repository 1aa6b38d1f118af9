//! The echo server on tokio: one task per connection, read and write back.
//!
//! Each connection owns a fixed buffer of `buf_size` bytes: memory per
//! connection is bounded whatever the client sends. Shutdown stops the
//! accept loop and ends every connection task.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::flags::{FlagError, Flags};
use crate::server_thread::{self, ServerThread};
use crate::Shutdown;

/// Echo server settings.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Listen address (`--addr`, default 127.0.0.1:7000; port 0 picks one).
    pub addr: SocketAddr,
    /// Worker threads (`--workers`, default: one per CPU).
    pub workers: usize,
    /// Read buffer per connection (`--buf`, default 1024 bytes).
    pub buf_size: usize,
    /// Listen backlog (`--backlog`, default 4096).
    pub backlog: u32,
}

impl Default for EchoConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 7000)),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            buf_size: 1024,
            backlog: 4096,
        }
    }
}

/// `--help` text for [`EchoConfig::from_flags`].
pub const ECHO_FLAGS_HELP: &str = "\
  --addr ADDR      listen address (default 127.0.0.1:7000)
  --workers N      worker threads (default: CPUs)
  --buf BYTES      read buffer per connection (default 1024)
  --backlog N      listen backlog (default 4096)";

impl EchoConfig {
    /// A config from command-line flags.
    ///
    /// # Errors
    ///
    /// A [`FlagError`] for unknown flags or bad values.
    pub fn from_flags(mut flags: Flags) -> Result<Self, FlagError> {
        let mut c = Self::default();
        while let Some(name) = flags.next_flag()? {
            match name.as_str() {
                "addr" => c.addr = flags.value(&name)?,
                "workers" => c.workers = flags.value(&name)?,
                "buf" => c.buf_size = flags.value(&name)?,
                "backlog" => c.backlog = flags.value(&name)?,
                _ => return Err(flags.unknown(&name)),
            }
        }
        if c.workers == 0 || c.buf_size == 0 {
            return Err(FlagError::Invalid(
                "--workers and --buf must be at least 1".into(),
            ));
        }
        Ok(c)
    }
}

/// Counters of an echo server.
#[derive(Debug, Default)]
pub struct EchoStats {
    pub(crate) connections: AtomicUsize,
    pub(crate) accepted: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

impl EchoStats {
    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
    /// Bytes received and echoed (or being echoed) so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// An echo server on its own thread, from [`spawn`].
pub type EchoHandle = ServerThread<EchoStats>;

/// Starts the echo server on a new thread; returns once it listens.
///
/// ```
/// use std::io::{Read, Write};
/// use pinstack_examples::echo::{tokio_server, EchoConfig};
/// let cfg = EchoConfig { addr: "127.0.0.1:0".parse().unwrap(), workers: 1, ..EchoConfig::default() };
/// let server = tokio_server::spawn(cfg).unwrap();
/// let mut c = std::net::TcpStream::connect(server.addr()).unwrap();
/// c.write_all(b"ping").unwrap();
/// let mut buf = [0; 4];
/// c.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"ping");
/// server.stop().unwrap();
/// ```
///
/// # Errors
///
/// The runtime, bind or listen error.
pub fn spawn(config: EchoConfig) -> io::Result<EchoHandle> {
    spawn_with(config, "echo-tokio", run_with_stats)
}

/// The runner of a twin: serve until `shutdown`, calling `ready` with the
/// bound address.
pub(crate) type RunFn = server_thread::RunFn<EchoConfig, EchoStats>;

/// Starts `run` (a twin's `run_with_stats`) on a new thread and waits until
/// it listens.
pub(crate) fn spawn_with(
    config: EchoConfig,
    thread_name: &str,
    run_with_stats: RunFn,
) -> io::Result<EchoHandle> {
    server_thread::spawn(config, thread_name, "echo server", run_with_stats)
}

/// Runs the echo server on the calling thread until `shutdown`; `ready`
/// gets the bound address.
///
/// # Errors
///
/// The runtime, bind or listen error.
pub fn run(
    config: &EchoConfig,
    shutdown: &Shutdown,
    ready: impl FnOnce(SocketAddr) + Send + 'static,
) -> io::Result<()> {
    run_with_stats(
        config,
        shutdown,
        Arc::new(EchoStats::default()),
        Box::new(ready),
    )
}

fn run_with_stats(
    config: &EchoConfig,
    shutdown: &Shutdown,
    stats: Arc<EchoStats>,
    ready: Box<dyn FnOnce(SocketAddr) + Send>,
) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers.max(1))
        .thread_name("echo-tokio-worker")
        .enable_all()
        .build()?;
    let listener = rt.block_on(async {
        let socket = match config.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(config.addr).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.addr))
        })?;
        socket.listen(config.backlog)
    })?;
    ready(listener.local_addr()?);
    let r = rt.block_on(serve(listener, config.buf_size, shutdown.clone(), stats));
    rt.shutdown_timeout(Duration::from_secs(1));
    r
}

async fn serve(
    listener: TcpListener,
    buf_size: usize,
    shutdown: Shutdown,
    stats: Arc<EchoStats>,
) -> io::Result<()> {
    let mut stop = shutdown.subscribe();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(()),
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    stats.accepted.fetch_add(1, Ordering::Relaxed);
                    stats.connections.fetch_add(1, Ordering::Relaxed);
                    let (stats, mut stop) = (stats.clone(), shutdown.subscribe());
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = stop.wait_for(|s| *s) => {}
                            _ = echo(stream, buf_size, &stats) => {}
                        }
                        stats.connections.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) => {
                    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) {
                        eprintln!("echo: accept: {e}; raise RLIMIT_NOFILE; retrying in 50 ms");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            },
        }
    }
}

async fn echo(mut stream: TcpStream, buf_size: usize, stats: &EchoStats) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; buf_size];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        // Counted before the echo goes out, so a client that has its bytes
        // back sees them counted.
        stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        stream.write_all(&buf[..n]).await?;
    }
}
