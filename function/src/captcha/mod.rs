//! Captcha verification. One trait; hCaptcha (through the `hcaptcha` crate, verify URL
//! configurable) and the development provider each in their own file. Always fail closed.

use async_trait::async_trait;

#[async_trait]
pub trait Captcha: Send + Sync {
    /// True only if the provider positively verified this response for our site key and
    /// hostname. Timeouts and transport errors are `false`: fail closed.
    async fn verify(&self, response: &str, remote_ip: Option<std::net::IpAddr>) -> bool;
}

pub mod hcaptcha;
pub mod public_site;

#[cfg(feature = "dev")]
pub mod dev;

/// The host part of an origin or URL (`https://a.example:8443/x` → `a.example`).
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?.to_string()
    } else {
        authority.split(':').next()?.to_string()
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}
