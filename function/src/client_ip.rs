//! Who is calling: the socket peer by default; `X-Forwarded-For` only when the peer is a
//! configured trusted proxy (CDN, load balancer); the request context's source IP under Lambda.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// Proxies whose `X-Forwarded-For` we believe.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    /// Comma- or space-separated addresses or CIDR ranges.
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let mut nets = Vec::new();
        for item in list
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let net = match item.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => IpNet::from(item.parse::<IpAddr>().map_err(|_| {
                    anyhow::anyhow!("invalid trusted proxy {item:?} (expected an address or CIDR)")
                })?),
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses are the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The client address. `lambda_source` wins (API Gateway already resolved it); otherwise, if the
/// peer is trusted, walk `X-Forwarded-For` from the right and take the first untrusted hop.
pub fn client_ip(
    peer: Option<IpAddr>,
    lambda_source: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    if let Some(ip) = lambda_source {
        return Some(canonical(ip));
    }
    let peer = peer.map(canonical);
    let peer_ip = peer?;
    if !trusted.contains(peer_ip) {
        return peer;
    }
    let mut client = peer_ip;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // An unparsable hop: stop, keep the last trusted-to-be-true address.
            break;
        };
        client = canonical(ip);
        if !trusted.contains(client) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        let peer = Some("127.0.0.1".parse().unwrap());
        let h = headers("203.0.113.9, 198.51.100.7, 10.1.2.3");
        assert_eq!(
            client_ip(peer, None, &h, &trusted),
            Some("198.51.100.7".parse().unwrap())
        );
        let stranger = Some("192.0.2.1".parse().unwrap());
        assert_eq!(client_ip(stranger, None, &h, &trusted), stranger);
        assert_eq!(client_ip(peer, None, &HeaderMap::new(), &trusted), peer);
        let lambda = Some("198.51.100.1".parse().unwrap());
        assert_eq!(client_ip(None, lambda, &h, &trusted), lambda);
        assert!(TrustedProxies::parse("nope").is_err());
        let mapped = Some("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(
            client_ip(mapped, None, &h, &trusted),
            Some("192.0.2.1".parse().unwrap())
        );
    }
}
