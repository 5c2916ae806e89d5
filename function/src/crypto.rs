//! Keyed hashes and encryption of personal data.
//!
//! The store sees only HMAC-SHA-256(pepper, ·) of the canonical e-mail, the IP, its prefix and
//! the name, plus an age (X25519) ciphertext of what the organizer may later export with the
//! offline identity. The function can write that data but cannot read it back.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

/// HMAC with the pepper; each purpose has its own label so hashes never collide across uses.
#[derive(Clone)]
pub struct Hasher {
    pepper: Vec<u8>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher(..)")
    }
}

impl Hasher {
    pub fn new(pepper: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(pepper.len() >= 32, "the pepper must be at least 32 bytes");
        Ok(Hasher {
            pepper: pepper.to_vec(),
        })
    }

    /// Hex HMAC-SHA-256(pepper, purpose ‖ 0 ‖ value): 64 hex characters.
    pub fn hash(&self, purpose: &str, value: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.pepper).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The keyed hash of a network's label in a budget key ([`crate::budgets`]): the first
    /// 128 bits of [`Hasher::hash`], 32 hex characters. Enough that no two networks share a
    /// counter by chance, and short enough that the refunds a signature's row lists keep the
    /// row within one SQLite page (a row that spills takes an overflow page of its own).
    pub fn budget(&self, label: &str) -> String {
        let mut h = self.hash("budget", label);
        h.truncate(32);
        h
    }

    /// The dedup key of a canonical e-mail.
    pub fn email(&self, canonical: &str) -> String {
        self.hash("email", canonical)
    }

    pub fn ip(&self, ip: IpAddr) -> String {
        self.hash("ip", &ip.to_string())
    }

    /// Hash of the address's prefix as stored (/24 for IPv4, /48 for IPv6).
    pub fn prefix(&self, ip: IpAddr) -> String {
        self.hash("prefix", &storage_prefix(ip))
    }

    /// Hash of the name, case- and space-folded, to spot identical names in a burst.
    pub fn name(&self, name: &str) -> String {
        let folded: Vec<String> = name.split_whitespace().map(|w| w.to_lowercase()).collect();
        self.hash("name", &folded.join(" "))
    }
}

/// The prefix a signature records: /24 for IPv4, /48 for IPv6 (one site or customer).
pub fn storage_prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// What a signer typed, as the organizer decrypts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalData {
    pub name: String,
    pub email: String,
    pub fields: BTreeMap<String, String>,
    pub lang: String,
    /// Hashes of the petition text and consent wording the signer saw (proof of consent).
    pub text_sha256: Option<String>,
    pub consent_sha256: Option<String>,
}

/// Encrypts personal data to the collective's age recipient.
#[derive(Clone)]
pub struct Sealer {
    recipient: age::x25519::Recipient,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({})", self.recipient)
    }
}

impl Sealer {
    /// `recipient` is an `age1…` public key.
    pub fn new(recipient: &str) -> anyhow::Result<Self> {
        let recipient = age::x25519::Recipient::from_str(recipient.trim())
            .map_err(|e| anyhow::anyhow!("invalid age recipient {recipient:?}: {e}"))?;
        Ok(Sealer { recipient })
    }

    pub fn seal(&self, data: &PersonalData) -> anyhow::Result<Vec<u8>> {
        let json = serde_json::to_vec(data)?;
        age::encrypt(&self.recipient, &json)
            .map_err(|e| anyhow::anyhow!("age encryption failed: {e}"))
    }
}

/// Decrypts a sealed blob with the organizer's identity (`AGE-SECRET-KEY-1…`); for the admin
/// tools and tests, never used by the running function.
pub fn unseal(identity: &str, sealed: &[u8]) -> anyhow::Result<PersonalData> {
    let identity = age::x25519::Identity::from_str(identity.trim())
        .map_err(|e| anyhow::anyhow!("invalid age identity: {e}"))?;
    let plain = age::decrypt(&identity, sealed)
        .map_err(|e| anyhow::anyhow!("age decryption failed: {e}"))?;
    Ok(serde_json::from_slice(&plain)?)
}

/// Data only the function opens (a queued mail's recipient, a public signer's name before it
/// is published), sealed with XChaCha20-Poly1305 under a key derived from the token key and a
/// label, so that each use has its own key.
pub struct FunctionSeal {
    cipher: chacha20poly1305::XChaCha20Poly1305,
}

impl std::fmt::Debug for FunctionSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FunctionSeal")
    }
}

const SEAL_NONCE: usize = 24;

impl FunctionSeal {
    pub fn new(secret: &[u8], label: &[u8]) -> FunctionSeal {
        use chacha20poly1305::KeyInit;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
        mac.update(label);
        let key = mac.finalize().into_bytes();
        FunctionSeal {
            cipher: chacha20poly1305::XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(
                &key,
            )),
        }
    }

    /// Random nonce ‖ ciphertext.
    pub fn seal(&self, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        use chacha20poly1305::aead::Aead;
        let nonce: [u8; SEAL_NONCE] = rand::random();
        let sealed = self
            .cipher
            .encrypt(chacha20poly1305::XNonce::from_slice(&nonce), plain)
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        use chacha20poly1305::aead::Aead;
        anyhow::ensure!(sealed.len() > SEAL_NONCE, "sealed data too short to open");
        let (nonce, body) = sealed.split_at(SEAL_NONCE);
        self.cipher
            .decrypt(chacha20poly1305::XNonce::from_slice(nonce), body)
            .map_err(|_| anyhow::anyhow!("sealed data does not open with this key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn sealed_data_opens_only_with_the_identity() {
        let id = age::x25519::Identity::generate();
        let sealer = Sealer::new(&id.to_public().to_string()).unwrap();
        let data = PersonalData {
            name: "Jane".into(),
            email: "jane@example.org".into(),
            fields: BTreeMap::new(),
            lang: "fr".into(),
            text_sha256: None,
            consent_sha256: None,
        };
        let sealed = sealer.seal(&data).unwrap();
        assert!(!sealed.windows(4).any(|w| w == b"jane"));
        assert_eq!(
            unseal(id.to_string().expose_secret(), &sealed).unwrap(),
            data
        );
        let other = age::x25519::Identity::generate();
        assert!(unseal(other.to_string().expose_secret(), &sealed).is_err());
    }

    #[test]
    fn hashes_are_keyed_and_separated_by_purpose() {
        let a = Hasher::new(&[1u8; 32]).unwrap();
        let b = Hasher::new(&[2u8; 32]).unwrap();
        assert_ne!(a.email("x@y.org"), b.email("x@y.org"));
        assert_ne!(a.hash("email", "v"), a.hash("name", "v"));
        assert_eq!(a.email("x@y.org").len(), 64);
        assert_eq!(a.name("  Jane   DOE "), a.name("jane doe"));
        assert_eq!(
            storage_prefix("192.0.2.77".parse().unwrap()),
            "192.0.2.0/24"
        );
        assert_eq!(
            storage_prefix("2001:db8:1:2::1".parse().unwrap()),
            "2001:db8:1::/48"
        );
    }
}
