//! The hub under test: only loopback or LAN addresses are loaded.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Connections per source address: the ephemeral ports of one address run
/// out near 28 000, and TIME_WAIT keeps some busy.
const PER_SOURCE: usize = 15_000;

pub struct Target {
    pub base: String,
    pub addr: SocketAddr,
    pub host: String,
}

impl Target {
    pub async fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: the target is http://HOST:PORT"))?;
        let host = rest.trim_end_matches('/').to_owned();
        let addr = tokio::net::lookup_host(&host)
            .await
            .map_err(|e| format!("{host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host}: no address"))?;
        if !is_local(addr.ip()) {
            return Err(format!(
                "{addr} is not a loopback or LAN address: votehub-bench only loads hubs on this machine or its network"
            ));
        }
        Ok(Target {
            base: format!("http://{host}"),
            addr,
            host,
        })
    }

    /// Loopback targets get connections from several 127.0.0.x addresses,
    /// so that more than one address's worth of ports can be open.
    pub fn source(&self, i: usize) -> Option<SocketAddr> {
        if !self.addr.ip().is_loopback() || !self.addr.is_ipv4() || i < PER_SOURCE {
            return None;
        }
        let n = (i / PER_SOURCE) as u8;
        Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + n)),
            0,
        ))
    }
}

pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_targets() {
        assert!(is_local("127.0.0.1".parse().expect("ip")));
        assert!(is_local("192.168.1.20".parse().expect("ip")));
        assert!(is_local("10.0.0.1".parse().expect("ip")));
        assert!(!is_local("8.8.8.8".parse().expect("ip")));
        assert!(!is_local("2001:db8::1".parse().expect("ip")));
    }
}
