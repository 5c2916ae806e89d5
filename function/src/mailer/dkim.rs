//! DKIM signatures (RFC 6376) on what the SMTP mailer sends, with lettre's signer: RSA-SHA256
//! (a PKCS#1 or PKCS#8 PEM key, as `openssl genrsa` or `openssl genpkey` writes it) or
//! Ed25519-SHA256 (RFC 8463; the base64 of a 32-byte seed). SES signs by itself (Easy DKIM),
//! so only SMTP needs this.
//!
//! The signature covers the headers a receiver judges a mail by, and `List-Unsubscribe` with
//! `List-Unsubscribe-Post`, which RFC 8058 requires to be signed for one-click unsubscribe.
//! A listed header that a mail lacks is signed as absent, so it cannot be added on the way.

use anyhow::Context;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;

/// The headers signed, in this order. Not `Content-Type`: lettre writes a multipart's with its
/// body, after the signature is computed, so it would be signed as absent and fail; the body
/// hash covers every part and its own headers.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Auto-Submitted",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

pub struct Dkim {
    config: DkimConfig,
    pub selector: String,
    pub domain: String,
}

impl std::fmt::Debug for Dkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dkim")
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Dkim {
    /// `key`: a PEM RSA private key, or the base64 of an Ed25519 seed.
    pub fn new(selector: &str, domain: &str, key: &str) -> anyhow::Result<Dkim> {
        anyhow::ensure!(
            !selector.is_empty()
                && selector
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
            "invalid DKIM selector {selector:?}"
        );
        let key = key.trim();
        let signing_key = if key.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            DkimSigningKey::new(key, DkimSigningAlgorithm::Rsa)
                .map_err(|e| anyhow::anyhow!("the DKIM RSA key: {e}"))?
        } else if key.starts_with("-----BEGIN PRIVATE KEY-----") {
            let rsa = rsa::RsaPrivateKey::from_pkcs8_pem(key)
                .context("the DKIM key (PKCS#8 PEM; RSA keys only)")?;
            let pkcs1 = rsa
                .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                .context("while converting the DKIM key")?;
            DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
                .map_err(|e| anyhow::anyhow!("the DKIM RSA key: {e}"))?
        } else {
            DkimSigningKey::new(key, DkimSigningAlgorithm::Ed25519).map_err(|e| {
                anyhow::anyhow!(
                    "the DKIM key is neither a PEM RSA key nor the base64 of an Ed25519 seed: {e}"
                )
            })?
        };
        let config = DkimConfig::new(
            selector.to_string(),
            domain.to_string(),
            signing_key,
            SIGNED_HEADERS
                .iter()
                .map(|h| HeaderName::new_from_ascii_str(h))
                .collect(),
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Ok(Dkim {
            config,
            selector: selector.to_string(),
            domain: domain.to_string(),
        })
    }

    pub fn sign(&self, message: &mut lettre::Message) {
        message.sign(&self.config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use rsa::pkcs8::EncodePrivateKey;

    #[test]
    fn rsa_keys_in_either_pem_and_ed25519_seeds_are_read_and_junk_refused() {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let pkcs8 = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let pkcs1 = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let seed = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        for k in [pkcs8.as_str(), pkcs1.as_str(), seed.as_str()] {
            let d = Dkim::new("s1", "example.org", k).unwrap();
            let mut m = lettre::Message::builder()
                .from("a@example.org".parse().unwrap())
                .to("b@example.org".parse().unwrap())
                .subject("x")
                .body("hello".to_string())
                .unwrap();
            d.sign(&mut m);
            let raw = String::from_utf8(m.formatted()).unwrap();
            assert!(raw.contains("DKIM-Signature: v=1; a="), "{raw}");
            assert!(raw.contains("list-unsubscribe-post"), "{raw}");
        }
        let e = Dkim::new("s1", "example.org", "not a key").unwrap_err();
        assert!(e.to_string().contains("neither a PEM RSA key"), "{e}");
        assert!(Dkim::new("bad selector", "example.org", &seed).is_err());
    }
}
