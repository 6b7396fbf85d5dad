//! The addresses participants should open: one per LAN interface when the
//! hub listens on all of them.

use std::net::{IpAddr, SocketAddr};

/// `http://IP:PORT/` for every address a participant on the LAN can reach
/// the hub at: each non-loopback IPv4 address of the machine when bound to
/// 0.0.0.0 (or ::), else the bound address. Loopback comes last, and alone
/// when the machine has no network.
pub fn join_urls(bound: SocketAddr) -> Vec<String> {
    let port = bound.port();
    let url = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}/"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}/"),
    };
    if !bound.ip().is_unspecified() {
        return vec![url(bound.ip())];
    }
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|iface| iface.ip())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .collect();
    ips.sort();
    ips.dedup();
    let mut urls: Vec<String> = ips.into_iter().map(url).collect();
    urls.push(url(IpAddr::from([127, 0, 0, 1])));
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_address_is_the_only_one() {
        let bound: SocketAddr = "192.0.2.7:8765".parse().expect("addr");
        assert_eq!(join_urls(bound), vec!["http://192.0.2.7:8765/".to_owned()]);
    }

    #[test]
    fn all_interfaces_end_with_loopback() {
        let urls = join_urls("0.0.0.0:9000".parse().expect("addr"));
        assert_eq!(
            urls.last().map(String::as_str),
            Some("http://127.0.0.1:9000/")
        );
        assert!(urls.iter().all(|u| u.ends_with(":9000/")));
    }
}
