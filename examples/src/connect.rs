//! Client-side connection setup for the load generators: choosing source
//! addresses and binding before `connect`.
//!
//! One source address can reach one destination through at most the
//! ephemeral port range (`ip_local_port_range`, 28,232 ports by default),
//! and well before that `connect` slows down: it takes ports of one parity
//! first (Linux 4.6+, the other parity is left for `bind`) and, once those
//! run short, scans that whole half of the range for every new connection
//! (at 100,000 clients over two addresses in a 64,511-port range, joins fell
//! from ~90/s to ~4/s in an emulated guest at 64,000: two addresses' even
//! ports). So a load generator gives each source address at most a quarter
//! of the range and spreads its connections over several addresses. On loopback every 127.0.0.0/8 address is local, so
//! [`SourcePlan::auto`] picks 127.0.0.1, 127.0.0.2, ... as needed. Sockets get
//! `IP_BIND_ADDRESS_NO_PORT`, so `bind(addr:0)` leaves the port choice to
//! `connect`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;

use tokio::net::{TcpSocket, TcpStream};

use crate::{procfs, sys};

/// Which source addresses connection `i` binds before connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePlan {
    addrs: Vec<IpAddr>,
}

/// Ports kept free per source address for everything else on the host.
const PORT_MARGIN: usize = 1_000;

impl SourcePlan {
    /// No binding: the kernel picks the source address.
    pub fn kernel() -> Self {
        Self { addrs: Vec::new() }
    }

    /// Exactly these source addresses, round-robin.
    pub fn explicit(addrs: Vec<IpAddr>) -> Self {
        Self { addrs }
    }

    /// For `connections` connections to `target`: none if one address has
    /// enough ports; otherwise as many 127.0.0.x addresses as needed when the
    /// target is IPv4 loopback.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when more than one address is needed but the target is
    /// not IPv4 loopback: pass explicit source addresses then.
    pub fn auto(target: SocketAddr, connections: usize) -> io::Result<Self> {
        // Half of one parity: the port search stays short.
        let per_addr = (procfs::ephemeral_port_count() / 4)
            .saturating_sub(PORT_MARGIN / 4)
            .max(1);
        if connections <= per_addr {
            return Ok(Self::kernel());
        }
        let needed = connections.div_ceil(per_addr);
        match target.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => {
                if needed > 250 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "{connections} connections need {needed} source addresses: too many"
                        ),
                    ));
                }
                Ok(Self {
                    addrs: (1..=needed as u8)
                        .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, k)))
                        .collect(),
                })
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{connections} connections to {target} need {needed} source addresses; \
                     give them with --source-addrs"
                ),
            )),
        }
    }

    /// The source addresses (empty when the kernel chooses).
    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// The source address for connection `i`.
    pub fn for_connection(&self, i: usize) -> Option<IpAddr> {
        if self.addrs.is_empty() {
            None
        } else {
            Some(self.addrs[i % self.addrs.len()])
        }
    }
}

/// Connects to `target`, from `source` when given, with `TCP_NODELAY` set.
///
/// # Errors
///
/// The socket, bind or connect error, with the addresses added.
pub async fn connect_from(source: Option<IpAddr>, target: SocketAddr) -> io::Result<TcpStream> {
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source {
        if ip.is_ipv4() {
            sys::set_bind_address_no_port(socket.as_raw_fd())?;
        }
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| io::Error::new(e.kind(), format!("bind to source address {ip}: {e}")))?;
    }
    let stream = socket.connect(target).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("connect to {target} (from {source:?}): {e}"),
        )
    })?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_plan() {
        let lo: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(SourcePlan::auto(lo, 10).unwrap(), SourcePlan::kernel());
        let big = SourcePlan::auto(lo, 100_000).unwrap();
        assert!(big.addrs().len() >= 4, "{big:?}");
        assert_eq!(big.for_connection(0), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(big.for_connection(1), Some("127.0.0.2".parse().unwrap()));
        let remote: SocketAddr = "192.0.2.1:9".parse().unwrap();
        assert!(SourcePlan::auto(remote, 100_000).is_err());
    }

    #[tokio::test]
    async fn binds_the_source_address() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let src: IpAddr = "127.0.0.3".parse().unwrap();
        let c = connect_from(Some(src), addr).await.unwrap();
        let (_s, peer) = l.accept().await.unwrap();
        assert_eq!(peer.ip(), src);
        assert_eq!(c.local_addr().unwrap().ip(), src);
    }
}
