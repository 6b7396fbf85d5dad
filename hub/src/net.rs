//! The hub's sockets: the listener that bounds connections and sets each
//! one's kernel buffers, and the addresses participants should open (one
//! per LAN interface when the hub listens on all of them).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::tls::Certificate;

/// The addresses a participant on the LAN can open the hub at.
///
/// Plain HTTP: `http://IP:PORT/` for each non-loopback IPv4 address of the
/// machine when bound to 0.0.0.0 (or ::), else the bound address; loopback
/// comes last, and alone when the machine has no network.
///
/// HTTPS: a browser accepts only the names the certificate is for, so
/// those come first (`https://NAME:PORT/`), then the addresses above that
/// the certificate covers; the others only if nothing else is left.
pub fn join_urls(bound: SocketAddr, tls: Option<&Certificate>) -> Vec<String> {
    let port = bound.port();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let at = |host: &str| match (scheme, port) {
        ("https", 443) | ("http", 80) => format!("{scheme}://{host}/"),
        _ => format!("{scheme}://{host}:{port}/"),
    };
    let url = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => at(&v4.to_string()),
        IpAddr::V6(v6) => at(&format!("[{v6}]")),
    };
    let ips: Vec<IpAddr> = if bound.ip().is_unspecified() {
        let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .map(|iface| iface.ip())
            .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
            .collect();
        // The venue's network first: home and office ranges before the
        // addresses of containers and VPNs (cards print the first).
        ips.sort_by_key(|ip| (lan_rank(*ip), *ip));
        ips.dedup();
        ips.push(IpAddr::from([127, 0, 0, 1]));
        ips
    } else {
        vec![bound.ip()]
    };
    let Some(cert) = tls else {
        return ips.into_iter().map(url).collect();
    };
    let mut urls: Vec<String> = cert.dns_names().iter().map(|n| at(n)).collect();
    urls.extend(ips.iter().filter(|ip| cert.covers(**ip)).map(|ip| url(*ip)));
    if urls.is_empty() {
        urls = ips.into_iter().map(url).collect();
    }
    urls
}

/// How likely an address is the one the room's phones reach: 192.168/16,
/// then 10/8, then 172.16/12 (where container bridges live), then others.
fn lan_rank(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(v4) => match v4.octets() {
            [192, 168, ..] => 0,
            [10, ..] => 1,
            [172, b, ..] if (16..32).contains(&b) => 2,
            _ => 3,
        },
        IpAddr::V6(_) => 4,
    }
}

/// A listener that holds one permit per open connection.
pub struct BoundedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    send_buffer: usize,
    /// `TCP_NOTSENT_LOWAT`: set on Linux only (ARCHITECTURE.md, "Platforms").
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    unsent_limit: u32,
}

impl BoundedListener {
    /// `max` connections at most; each gets `send_buffer` bytes of kernel
    /// send buffer and at most `unsent_limit` unsent bytes (Linux).
    pub fn new(inner: TcpListener, max: usize, send_buffer: usize, unsent_limit: u32) -> Self {
        BoundedListener {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            send_buffer,
            unsent_limit,
        }
    }

    pub async fn accept(&mut self) -> CountedStream {
        // The semaphore is never closed, so this only waits.
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return std::future::pending().await;
        };
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let sock = socket2::SockRef::from(&stream);
                    let _ = sock.set_send_buffer_size(self.send_buffer);
                    // The kernel takes no more writes while this much is
                    // still unsent: a subscriber that cannot keep up makes
                    // its connection wait, and the hub sends it only the
                    // newest tally when it can take one.
                    #[cfg(any(target_os = "linux", target_os = "android"))]
                    let _ = sock.set_tcp_notsent_lowat(self.unsent_limit);
                    return CountedStream { stream, permit };
                }
                // The peer gave up before we accepted: nothing to do.
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // Out of file descriptors, mostly: wait for some to free.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A TCP stream that gives its connection permit back when dropped.
pub struct CountedStream {
    stream: TcpStream,
    permit: OwnedSemaphorePermit,
}

impl CountedStream {
    /// The socket, and the permit that must live as long as it.
    pub fn into_parts(self) -> (TcpStream, OwnedSemaphorePermit) {
        (self.stream, self.permit)
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_address_is_the_only_one() {
        let bound: SocketAddr = "192.0.2.7:8765".parse().expect("addr");
        assert_eq!(
            join_urls(bound, None),
            vec!["http://192.0.2.7:8765/".to_owned()]
        );
    }

    #[test]
    fn venue_networks_come_first() {
        let mut ips: Vec<IpAddr> = ["172.17.0.1", "10.0.0.5", "192.168.1.20", "100.64.0.2"]
            .iter()
            .map(|s| s.parse().expect("ip"))
            .collect();
        ips.sort_by_key(|ip| (lan_rank(*ip), *ip));
        assert_eq!(ips[0], "192.168.1.20".parse::<IpAddr>().expect("ip"));
        assert_eq!(ips[1], "10.0.0.5".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn all_interfaces_end_with_loopback() {
        let urls = join_urls("0.0.0.0:9000".parse().expect("addr"), None);
        assert_eq!(
            urls.last().map(String::as_str),
            Some("http://127.0.0.1:9000/")
        );
        assert!(urls.iter().all(|u| u.ends_with(":9000/")));
    }
}
