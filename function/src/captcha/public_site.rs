//! Captchas that stop nothing, refused for a public site. The development captcha accepts any
//! solved token of its own widget, and hCaptcha's published test keys make hCaptcha's real
//! siteverify accept every response: either one on a site the public can reach leaves signing
//! open to any script. They are fine while the site itself is on a loopback address (`cahier
//! serve`), or when the verify URL is a loopback verifier that decides by itself (tests).

use crate::manifest::Manifest;
use crate::secrets::Secrets;
use std::net::IpAddr;

/// hCaptcha's public test site keys (always pass with the test secret).
pub const HCAPTCHA_TEST_SITEKEYS: &[&str] = &[
    "10000000-ffff-ffff-ffff-000000000001",
    "20000000-ffff-ffff-ffff-000000000002",
    "30000000-ffff-ffff-ffff-000000000003",
];

/// hCaptcha's public test secret.
pub const HCAPTCHA_TEST_SECRET: &str = "0x0000000000000000000000000000000000000000";

/// `localhost`, a `*.localhost` name, or an address in 127.0.0.0/8 or `::1`.
pub fn is_loopback(url: &str) -> bool {
    let Some(host) = super::host_of(url) else {
        return false;
    };
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `sitekey` or `secret` is one of hCaptcha's published test keys.
pub fn uses_test_keys(sitekey: &str, secret: Option<&str>) -> bool {
    HCAPTCHA_TEST_SITEKEYS.contains(&sitekey.trim())
        || secret.is_some_and(|s| s.trim() == HCAPTCHA_TEST_SECRET)
}

/// Refuses, at start-up, a captcha that would let anyone sign a public site.
pub fn refuse_open_captcha(
    manifest: &Manifest,
    secrets: &Secrets,
    verify_url: Option<&str>,
) -> anyhow::Result<()> {
    let site = &manifest.site;
    if is_loopback(&site.base_url) {
        return Ok(());
    }
    match site.captcha_provider.as_str() {
        "dev" => anyhow::bail!(
            "the development captcha lets anyone sign, and the site {} is public: it is only for \
             `cahier serve` on a loopback address; set captcha.provider = \"hcaptcha\" with your \
             own keys in cahier.toml",
            site.base_url
        ),
        "hcaptcha"
            if uses_test_keys(&site.captcha_sitekey, secrets.hcaptcha_secret.as_deref())
                && !verify_url.is_some_and(is_loopback) =>
        {
            anyhow::bail!(
                "hCaptcha's public test keys (sitekey 10000000-ffff-…, secret 0x000…) pass every \
                 response, and the site {} is public: put your own site key in cahier.toml \
                 (captcha.sitekey) and your own secret in HCAPTCHA_SECRET",
                site.base_url
            )
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_sites_and_test_keys_are_recognised() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9/",
            "http://localhost:3000",
            "http://site.localhost",
            "http://[::1]:8080/x",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://petitions.example.org",
            "http://10.0.0.1",
            "https://127.0.0.1.evil.test",
            "https://localhost.evil.test",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
        assert!(uses_test_keys("10000000-ffff-ffff-ffff-000000000001", None));
        assert!(uses_test_keys("my-key", Some(HCAPTCHA_TEST_SECRET)));
        assert!(!uses_test_keys("my-key", Some("0x1234")));
    }
}
