//! Who is calling: the socket peer by default; `X-Forwarded-For` only when the peer is a
//! configured trusted proxy (load balancer); under Lambda the event's source address, or behind
//! CloudFront the viewer address when the request provably came through it ([`crate::edge`]).
//! No usable address means [`UNKNOWN_CLIENT`]: one shared bucket and budget, never a free pass.

use crate::edge::{self, EdgeAuth};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where every caller without a usable address is counted: `::` (its /64 and /48 are one
/// shared network too), so the rate limits and budgets fail closed instead of open.
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// What the Lambda event says about the caller (absent outside Lambda).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LambdaCaller {
    /// `requestContext.http.sourceIp`: the viewer without a CDN, CloudFront's address with one.
    pub source_ip: Option<IpAddr>,
    /// `requestContext.authorizer.iam` is present: Lambda verified a SigV4 signature (a
    /// function URL with `AuthType: AWS_IAM`, which only the distribution may invoke).
    pub iam_signed: bool,
}

/// What the resolution looks at, gathered from the request by the caller.
#[derive(Debug, Clone, Copy)]
pub struct CallerFacts<'a> {
    /// The socket peer (standalone server).
    pub peer: Option<IpAddr>,
    pub lambda: Option<LambdaCaller>,
    pub headers: &'a HeaderMap,
}

/// The caller of `req`: [`resolve`] on what the request carries (socket peer from the
/// standalone server's `ConnectInfo`, the Lambda event's context, the headers).
pub fn of_request<B>(req: &Request<B>, options: &crate::state::Options) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let facts = CallerFacts {
        peer,
        lambda: lambda_caller(req),
        headers: req.headers(),
    };
    resolve(&facts, &options.trusted_proxies, &options.edge)
}

/// What the Lambda event says about the caller (nothing outside Lambda).
fn lambda_caller<B>(req: &Request<B>) -> Option<LambdaCaller> {
    use lambda_http::request::RequestContext;
    let ctx = req.extensions().get::<RequestContext>()?;
    let (source, iam_signed) = match ctx {
        RequestContext::ApiGatewayV2(c) => (
            c.http.source_ip.clone(),
            c.authorizer.as_ref().is_some_and(|a| a.iam.is_some()),
        ),
        RequestContext::ApiGatewayV1(c) => (c.identity.source_ip.clone(), false),
        _ => (None, false),
    };
    Some(LambdaCaller {
        source_ip: source.and_then(|ip| ip.parse().ok()),
        iam_signed,
    })
}

/// The address the limiter, the budgets and the captcha key on, or [`UNKNOWN_CLIENT`].
pub fn resolve(facts: &CallerFacts<'_>, trusted: &TrustedProxies, edge: &EdgeAuth) -> IpAddr {
    let found = match edge {
        EdgeAuth::None => client_ip(
            facts.peer,
            facts.lambda.and_then(|l| l.source_ip),
            facts.headers,
            trusted,
        ),
        // The origin secret was checked by `edge::require_origin_secret` before the handler;
        // checked again here so this function is right on its own.
        EdgeAuth::OriginHeader(_) if edge.origin_verified(facts.headers) => {
            edge::viewer_address(facts.headers)
        }
        EdgeAuth::OriginHeader(_) => None,
        EdgeAuth::Iam if facts.lambda.is_some_and(|l| l.iam_signed) => {
            edge::viewer_address(facts.headers)
        }
        EdgeAuth::Iam => None,
    };
    match found {
        Some(ip) => canonical(ip),
        None => {
            log_unknown(facts, edge);
            UNKNOWN_CLIENT
        }
    }
}

/// Logs the first caller without an address, then one in a thousand: a misconfigured edge
/// under a flood must not turn into a flood of log lines.
fn log_unknown(facts: &CallerFacts<'_>, edge: &EdgeAuth) {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let n = SEEN.fetch_add(1, Ordering::Relaxed);
    if n % 1000 == 0 {
        tracing::warn!(
            target: "cahier::fraud",
            decision = "client_unknown",
            edge = ?edge,
            lambda = facts.lambda.is_some(),
            iam_signed = facts.lambda.is_some_and(|l| l.iam_signed),
            viewer_header = facts.headers.contains_key(edge::VIEWER_ADDRESS),
            seen = n + 1,
            "no usable client address: counted in the shared unknown bucket"
        );
    }
}

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

    fn viewer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(edge::VIEWER_ADDRESS, v.parse().unwrap());
        h
    }

    const EDGE: &str = "130.176.1.1";

    #[test]
    fn behind_cloudfront_the_viewer_counts_not_the_edge() {
        let h = viewer("203.0.113.7:50000");
        let signed = CallerFacts {
            peer: None,
            lambda: Some(LambdaCaller {
                source_ip: Some(EDGE.parse().unwrap()),
                iam_signed: true,
            }),
            headers: &h,
        };
        let none = TrustedProxies::default();
        assert_eq!(
            resolve(&signed, &none, &EdgeAuth::Iam),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // The same event without Lambda's proof of a signed request: the header is anybody's.
        let unsigned = CallerFacts {
            lambda: Some(LambdaCaller {
                iam_signed: false,
                ..signed.lambda.unwrap()
            }),
            ..signed
        };
        assert_eq!(resolve(&unsigned, &none, &EdgeAuth::Iam), UNKNOWN_CLIENT);
        // No edge configured: the event's source, as with API Gateway.
        assert_eq!(
            resolve(&signed, &none, &EdgeAuth::None),
            EDGE.parse::<IpAddr>().unwrap()
        );
        // IPv6 viewers in CloudFront's unbracketed form; mapped IPv4 is the IPv4 address.
        let h6 = viewer("2001:db8::5:443");
        let v6 = CallerFacts {
            headers: &h6,
            ..signed
        };
        assert_eq!(
            resolve(&v6, &none, &EdgeAuth::Iam),
            "2001:db8::5".parse::<IpAddr>().unwrap()
        );
        let bad = viewer("garbage");
        let no_viewer = CallerFacts {
            headers: &bad,
            ..signed
        };
        assert_eq!(resolve(&no_viewer, &none, &EdgeAuth::Iam), UNKNOWN_CLIENT);
    }

    #[test]
    fn origin_header_mode_needs_the_secret() {
        let secret = "k".repeat(48);
        let auth = EdgeAuth::from_mode("origin-header", Some(&secret)).unwrap();
        let mut h = viewer("198.51.100.20:1234");
        let facts = |h: &HeaderMap| {
            resolve(
                &CallerFacts {
                    peer: Some("127.0.0.1".parse().unwrap()),
                    lambda: None,
                    headers: h,
                },
                &TrustedProxies::default(),
                &auth,
            )
        };
        assert_eq!(
            facts(&h),
            UNKNOWN_CLIENT,
            "forged viewer header without the secret"
        );
        h.insert(edge::ORIGIN_VERIFY, secret.parse().unwrap());
        assert_eq!(facts(&h), "198.51.100.20".parse::<IpAddr>().unwrap());
    }
}
