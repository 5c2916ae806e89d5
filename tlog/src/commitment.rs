//! The commitment an entry carries instead of anything personal.
//!
//! `SHA-256("cahier/signature-commitment/v1" ‖ 0 ‖ len(petition) as u16 ‖ petition ‖ secret)`,
//! where the 32-byte secret is drawn at random when the signature is confirmed and given only
//! to the signer, in their receipt. Without the secret the commitment is a random-looking
//! value: it cannot be linked to an e-mail, a name, or to the same person's signature of
//! another petition (each signature has its own secret). With it, the signer finds their entry.

use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

const DOMAIN: &[u8] = b"cahier/signature-commitment/v1";

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Commitment(pub [u8; 32]);

impl Commitment {
    /// The commitment to one signature of `petition` (its slug).
    pub fn new(petition: &str, secret: &ReceiptSecret) -> Commitment {
        let len = u16::try_from(petition.len()).expect("a slug is short");
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update([0]);
        h.update(len.to_be_bytes());
        h.update(petition.as_bytes());
        h.update(secret.0);
        Commitment(h.finalize().into())
    }
}

impl fmt::Display for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Commitment({self})")
    }
}

/// The secret of a receipt: whoever holds it can find and prove their entry.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiptSecret(pub [u8; 32]);

impl ReceiptSecret {
    pub fn random() -> ReceiptSecret {
        let mut b = [0; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        ReceiptSecret(b)
    }

    /// As the signer's receipt carries it (a link's fragment): base64url, no padding.
    pub fn to_base64url(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn from_base64url(s: &str) -> Option<ReceiptSecret> {
        use base64::Engine;
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim())
            .ok()?;
        Some(ReceiptSecret(b.try_into().ok()?))
    }
}

impl fmt::Debug for ReceiptSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReceiptSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commitment_binds_petition_and_secret() {
        let s = ReceiptSecret([7; 32]);
        let a = Commitment::new("ecole", &s);
        assert_eq!(a, Commitment::new("ecole", &s));
        assert_ne!(a, Commitment::new("ecole2", &s));
        assert_ne!(a, Commitment::new("ecole", &ReceiptSecret([8; 32])));
        // Length-prefixed: moving a byte from the slug into the secret changes it.
        assert_ne!(ReceiptSecret::random(), ReceiptSecret::random());
    }

    #[test]
    fn a_receipt_secret_survives_its_link() {
        let s = ReceiptSecret::random();
        let text = s.to_base64url();
        assert_eq!(text.len(), 43);
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(ReceiptSecret::from_base64url(&text), Some(s));
        assert_eq!(ReceiptSecret::from_base64url("too-short"), None);
    }

    #[test]
    fn known_answer() {
        // Pinned so that a receipt made today still opens its entry tomorrow.
        let c = Commitment::new("noel-sans-geant", &ReceiptSecret([0; 32]));
        let mut h = Sha256::new();
        h.update(b"cahier/signature-commitment/v1\x00\x00\x0fnoel-sans-geant");
        h.update([0; 32]);
        assert_eq!(c.0, <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn the_secret_is_not_printed() {
        assert_eq!(format!("{:?}", ReceiptSecret([1; 32])), "ReceiptSecret(..)");
    }
}
