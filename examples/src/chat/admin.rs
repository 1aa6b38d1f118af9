//! The pinstack chat server's optional admin port: `GET /metrics` (any
//! path, in fact) answers the runtime's metrics in the Prometheus text
//! format. One request per connection, served in turn by one task: admin
//! traffic is a scraper every few seconds.

use std::io;
use std::time::Duration;

use pinstack::net::{TcpListener, TcpStream};

/// Largest request head read (the request itself is ignored).
const MAX_REQUEST: usize = 8192;
/// How long a scraper may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the metrics of the runtime behind `handle` until the listener
/// fails (or the runtime shuts down and cancels this task).
///
/// # Errors
///
/// The listener's `accept` error.
pub fn serve(listener: TcpListener, handle: pinstack::Handle) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept()?;
        // A misbehaving scraper costs only its own request.
        let _ = answer(&stream, &handle);
    }
}

fn answer(stream: &TcpStream, handle: &pinstack::Handle) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let body = handle.metrics().to_prometheus();
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut out = reply.as_bytes();
    while !out.is_empty() {
        let n = stream.write(out)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        out = &out[n..];
    }
    stream.shutdown(std::net::Shutdown::Write)
}
