//! What a CDN in front of the function (CloudFront, in the reference deployment) says about the
//! viewer, and when to believe it.
//!
//! Behind CloudFront the function's own peer (`requestContext.http.sourceIp` under Lambda) is one
//! of CloudFront's origin-facing addresses, shared by everybody behind that edge. The viewer is in
//! `CloudFront-Viewer-Address`, but anybody who reaches the function without CloudFront can write
//! that header too. So it is believed only with proof that the request came through the
//! distribution:
//! - [`EdgeAuth::Iam`]: the function URL has `AuthType: AWS_IAM` and only the distribution may
//!   invoke it (origin access control). Lambda then invokes the function only for a request
//!   whose SigV4 signature it verified, and says so in `requestContext.authorizer.iam`.
//! - [`EdgeAuth::OriginHeader`]: a secret that the stack generates and CloudFront adds as an
//!   origin custom header; checked in constant time, and a request without it is refused
//!   ([`require_origin_secret`]), so a leaked function URL is useless.

use crate::problem::Problem;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The header CloudFront adds when the origin request policy lists it: `ip:port`, and for IPv6
/// the address and the port joined by a colon without brackets (`2001:db8::1:443`).
pub const VIEWER_ADDRESS: &str = "cloudfront-viewer-address";

/// The origin custom header carrying the stack's origin secret ([`EdgeAuth::OriginHeader`]).
pub const ORIGIN_VERIFY: &str = "x-cahier-origin-verify";

/// How the function knows that a request came through the CDN.
#[derive(Clone, Default)]
pub enum EdgeAuth {
    /// No CDN to believe: the socket peer, `X-Forwarded-For` from trusted proxies, or the
    /// Lambda event's source address (API Gateway, or a function URL without CloudFront).
    #[default]
    None,
    /// Function URL with `AuthType: AWS_IAM` behind CloudFront's origin access control.
    Iam,
    /// A secret origin header that CloudFront adds (function URL with `AuthType: NONE`).
    OriginHeader(Arc<[u8]>),
}

impl std::fmt::Debug for EdgeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EdgeAuth::None => "EdgeAuth::None",
            EdgeAuth::Iam => "EdgeAuth::Iam",
            EdgeAuth::OriginHeader(_) => "EdgeAuth::OriginHeader(..)",
        })
    }
}

impl EdgeAuth {
    /// `none`, `iam` or `origin-header` (which needs `secret`, at least 32 characters).
    pub fn from_mode(mode: &str, secret: Option<&str>) -> anyhow::Result<EdgeAuth> {
        match mode.trim() {
            "" | "none" => Ok(EdgeAuth::None),
            "iam" => Ok(EdgeAuth::Iam),
            "origin-header" => {
                let secret = secret
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "CAHIER_EDGE_AUTH=origin-header needs the origin secret \
                         (CAHIER_ORIGIN_SECRET_ARN under Lambda, or CAHIER_ORIGIN_SECRET)"
                        )
                    })?;
                anyhow::ensure!(
                    secret.len() >= 32,
                    "the origin secret must be at least 32 characters"
                );
                Ok(EdgeAuth::OriginHeader(secret.as_bytes().into()))
            }
            other => anyhow::bail!(
                "CAHIER_EDGE_AUTH: unknown mode {other:?} (expected none, iam or origin-header)"
            ),
        }
    }

    /// Whether `headers` carry the origin secret (always true when no secret is configured).
    pub fn origin_verified(&self, headers: &HeaderMap) -> bool {
        match self {
            EdgeAuth::OriginHeader(secret) => headers
                .get(ORIGIN_VERIFY)
                .is_some_and(|v| bool::from(v.as_bytes().ct_eq(secret))),
            _ => true,
        }
    }
}

/// Middleware: with [`EdgeAuth::OriginHeader`], a request without the secret did not come
/// through the distribution and is refused before any other work.
pub async fn require_origin_secret(auth: Arc<EdgeAuth>, req: Request, next: Next) -> Response {
    if auth.origin_verified(req.headers()) {
        return next.run(req).await;
    }
    tracing::warn!(
        target: "cahier::fraud",
        decision = "origin_secret_missing",
        path = %req.uri().path(),
        "refused a request that did not come through the CDN"
    );
    Problem::forbidden("This endpoint is reached through the site only.").into_response()
}

/// Parses `CloudFront-Viewer-Address`: `198.51.100.10:46532`, `2001:db8::1:46532`, and the
/// bracketed `[2001:db8::1]:46532` too. The port is required, as CloudFront always sends it.
pub fn parse_viewer_address(value: &str) -> Option<IpAddr> {
    let value = value.trim();
    if let Ok(sock) = value.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    let (addr, port) = value.rsplit_once(':')?;
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse::<u16>().ok()?;
    addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// The viewer address in `headers`, if there is exactly one well-formed value.
pub fn viewer_address(headers: &HeaderMap) -> Option<IpAddr> {
    let mut values = headers.get_all(VIEWER_ADDRESS).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_viewer_address(first.to_str().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_addresses_in_cloudfront_forms() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            parse_viewer_address("198.51.100.10:46532"),
            ip("198.51.100.10")
        );
        assert_eq!(
            parse_viewer_address("2001:db8:85a3::8a2e:370:7334:46532"),
            ip("2001:db8:85a3::8a2e:370:7334")
        );
        assert_eq!(parse_viewer_address("[2001:db8::1]:443"), ip("2001:db8::1"));
        for bad in [
            "",
            "198.51.100.10",
            "198.51.100.10:",
            "nope:12",
            "1.2.3.4:99999",
            "::1:x",
        ] {
            assert_eq!(parse_viewer_address(bad), None, "{bad:?}");
        }
        let mut h = HeaderMap::new();
        h.append(VIEWER_ADDRESS, "192.0.2.1:1".parse().unwrap());
        assert_eq!(viewer_address(&h), ip("192.0.2.1"));
        h.append(VIEWER_ADDRESS, "192.0.2.2:1".parse().unwrap());
        assert_eq!(viewer_address(&h), None, "two values: believe neither");
    }

    /// Spellings an attacker (or an odd network) can put in front of the edge: an IPv4-mapped
    /// viewer lands in its IPv4 network, one budget for both spellings; a zone index or a
    /// bracket without a port is not an address (the caller falls to the shared unknown bucket).
    #[test]
    fn odd_viewer_spellings() {
        let mapped = parse_viewer_address("::ffff:198.51.100.7:40000").unwrap();
        assert_eq!(
            crate::network::network_of(mapped),
            crate::network::network_of("198.51.100.9".parse().unwrap())
        );
        for bad in [
            "fe80::1%eth0:443",
            "[fe80::1%eth0]:443",
            "[2001:db8::1]",
            "2001:db8::1",
            " 198.51.100.7:1 , 203.0.113.1:2",
        ] {
            assert_eq!(parse_viewer_address(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn origin_secret_checked_and_modes_parsed() {
        let secret = "s".repeat(40);
        let auth = EdgeAuth::from_mode("origin-header", Some(&secret)).unwrap();
        let mut h = HeaderMap::new();
        assert!(!auth.origin_verified(&h));
        h.insert(ORIGIN_VERIFY, "s".repeat(39).parse().unwrap());
        assert!(!auth.origin_verified(&h));
        h.insert(ORIGIN_VERIFY, secret.parse().unwrap());
        assert!(auth.origin_verified(&h));
        assert!(EdgeAuth::Iam.origin_verified(&HeaderMap::new()));
        assert!(EdgeAuth::from_mode("origin-header", None).is_err());
        assert!(EdgeAuth::from_mode("origin-header", Some("short")).is_err());
        assert!(EdgeAuth::from_mode("cloudflare", None).is_err());
        assert!(matches!(EdgeAuth::from_mode("", None), Ok(EdgeAuth::None)));
        assert!(!format!("{auth:?}").contains(&secret));
    }
}
