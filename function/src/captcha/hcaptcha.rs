//! hCaptcha through the `hcaptcha` crate. The verify URL is configurable (the development
//! provider points it at the function's own `/api/__dev/siteverify`, so the real client code
//! runs in every test). Sitekey and hostname are checked; any error or a 2 s timeout is `false`.

use super::Captcha;
use async_trait::async_trait;
use std::net::IpAddr;
use std::time::Duration;

pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(2);

pub struct HCaptcha {
    client: ::hcaptcha::Client,
    secret: String,
    /// Sent with each verification so the provider checks the token was issued for it.
    sitekey: Option<String>,
    /// Hostnames the solved widget may have been on; empty disables the check.
    hostnames: Vec<String>,
    timeout: Duration,
}

impl std::fmt::Debug for HCaptcha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HCaptcha")
            .field("sitekey", &self.sitekey)
            .field("hostnames", &self.hostnames)
            .finish()
    }
}

impl HCaptcha {
    /// `verify_url`: `None` for hCaptcha's own endpoint. `sitekey` must be hCaptcha's UUID form
    /// (checked by the crate); an empty one disables the sitekey check.
    pub fn new(
        verify_url: Option<&str>,
        secret: &str,
        sitekey: &str,
        hostnames: Vec<String>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!secret.trim().is_empty(), "HCAPTCHA_SECRET is empty");
        let client = match verify_url {
            Some(url) => ::hcaptcha::Client::new_with(url)
                .map_err(|e| anyhow::anyhow!("invalid captcha verify URL {url:?}: {e}"))?,
            None => ::hcaptcha::Client::new(),
        };
        let sitekey = (!sitekey.trim().is_empty()).then(|| sitekey.trim().to_string());
        if let Some(key) = &sitekey {
            ::hcaptcha::Captcha::new("probe")
                .and_then(|mut c| c.set_sitekey(key))
                .map_err(|e| anyhow::anyhow!("invalid hCaptcha sitekey {key:?}: {e}"))?;
        }
        Ok(HCaptcha {
            client,
            secret: secret.trim().to_string(),
            sitekey,
            hostnames: hostnames
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            timeout: VERIFY_TIMEOUT,
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn check(
        &self,
        response: &str,
        remote_ip: Option<IpAddr>,
    ) -> Result<bool, ::hcaptcha::Error> {
        let mut captcha = ::hcaptcha::Captcha::new(response)?;
        if let Some(ip) = remote_ip {
            captcha = captcha.set_remoteip(&ip.to_string())?;
        }
        if let Some(key) = &self.sitekey {
            captcha = captcha.set_sitekey(key)?;
        }
        let request = ::hcaptcha::Request::new(&self.secret, captcha)?;
        let answer = self.client.verify_request(request).await?;
        if !answer.success() {
            return Ok(false);
        }
        if self.hostnames.is_empty() {
            return Ok(true);
        }
        Ok(answer.hostname().is_some_and(|h| {
            self.hostnames
                .iter()
                .any(|allowed| *allowed == h.to_ascii_lowercase())
        }))
    }
}

#[async_trait]
impl Captcha for HCaptcha {
    async fn verify(&self, response: &str, remote_ip: Option<IpAddr>) -> bool {
        match tokio::time::timeout(self.timeout, self.check(response, remote_ip)).await {
            Ok(Ok(ok)) => ok,
            Ok(Err(e)) => {
                tracing::info!(error = %e, "captcha refused");
                false
            }
            Err(_) => {
                tracing::warn!("captcha verification timed out: failing closed");
                false
            }
        }
    }
}
