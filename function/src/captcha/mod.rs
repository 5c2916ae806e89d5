//! Captcha verification. One trait; hCaptcha (through the `hcaptcha` crate, verify URL
//! configurable) and the development provider each in their own file. Always fail closed.

use async_trait::async_trait;

#[async_trait]
pub trait Captcha: Send + Sync {
    /// True only if the provider positively verified this response for our site key and
    /// hostname. Timeouts and transport errors are `false`: fail closed.
    async fn verify(&self, response: &str, remote_ip: Option<std::net::IpAddr>) -> bool;
}
