//! The echo server on pinstack: one coroutine per connection, written as
//! plain blocking code.
//!
//! Each connection owns a fixed buffer of `buf_size` bytes. Shutdown drops
//! the runtime, which unwinds every connection task (closing its socket).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use pinstack::net::{TcpListener, TcpStream};
use pinstack::task;

use super::tokio_server::{spawn_with, EchoHandle, EchoStats};
use super::EchoConfig;
use crate::Shutdown;

/// Stack size hint of a connection task: the echo loop is shallow.
const CONN_STACK: usize = 16 * 1024;

/// Starts the pinstack echo server on a new thread; returns once it listens.
///
/// ```
/// use std::io::{Read, Write};
/// use pinstack_examples::echo::{pinstack_server, EchoConfig};
/// let cfg = EchoConfig { addr: "127.0.0.1:0".parse().unwrap(), workers: 1, ..EchoConfig::default() };
/// let server = pinstack_server::spawn(cfg).unwrap();
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
    spawn_with(config, "echo-pinstack", run_with_stats)
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
    let rt = pinstack::Runtime::builder()
        .worker_threads(config.workers.max(1))
        .thread_name("echo-pinstack")
        .build()?;
    let listener = TcpListener::bind(config.addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.addr)))?;
    ready(listener.local_addr()?);
    let buf_size = config.buf_size;
    let acceptor = rt.spawn(move || serve(listener, buf_size, stats));
    // The calling thread waits for the signal; the runtime serves meanwhile.
    pinstack::block_on(shutdown.wait());
    drop(rt); // unwinds the acceptor and every connection task
    match acceptor.join() {
        Ok(r) => r,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

fn serve(listener: TcpListener, buf_size: usize, stats: Arc<EchoStats>) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept()?;
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let stats = stats.clone();
        let spawned = task::Builder::new()
            .name("echo-conn")
            .stack_size(CONN_STACK)
            .spawn(move || {
                let _ = echo(&stream, buf_size, &stats);
                stats.connections.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            // The connection (moved into the closure) is dropped: closed.
            eprintln!("echo: cannot spawn a connection task: {e}");
        }
    }
}

fn echo(mut stream: &TcpStream, buf_size: usize, stats: &EchoStats) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; buf_size];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        stream.write_all(&buf[..n])?;
    }
}
