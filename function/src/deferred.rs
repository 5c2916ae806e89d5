//! Confirmation mails that wait for their network to earn room ([`OverBudget::Defer`]).
//!
//! Over a network budget a signature is stored pending, so that its confirmation will count,
//! but its mail is queued instead of sent: a farm of fake mailboxes behind one network gets no
//! more mails than its budget, while the people behind one carrier-grade NAT, who confirm,
//! release the queue (each confirmation gives its unit back and releases
//! [`RELEASED_PER_CONFIRMATION`] queued mails). The queue must hold the recipient, which the
//! organizer-only age seal cannot give back to the function: it is sealed here with a key
//! derived from the token key (XChaCha20-Poly1305), only until it is sent, erased or expired.
//!
//! [`OverBudget::Defer`]: crate::store::OverBudget::Defer

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Queued mails one confirmation releases: more than one, so that a crowd behind one address
/// drains its queue in a few rounds of confirmations; a farm that never confirms releases none.
pub const RELEASED_PER_CONFIRMATION: usize = 3;

/// What a queued mail needs to be sent later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    /// The canonical recipient address.
    pub to: String,
    pub lang: String,
}

/// Seals and opens [`Letter`]s with the function's own key.
#[derive(Debug)]
pub struct LetterSeal(crate::crypto::FunctionSeal);

impl LetterSeal {
    /// A key of its own, derived from `secret` (the token key), so that no other use of that
    /// key can open a letter.
    pub fn new(secret: &[u8]) -> LetterSeal {
        LetterSeal(crate::crypto::FunctionSeal::new(
            secret,
            b"cahier queued confirmation mail v1",
        ))
    }

    /// Random nonce ‖ ciphertext.
    pub fn seal(&self, letter: &Letter) -> anyhow::Result<Vec<u8>> {
        self.0
            .seal(&serde_json::to_vec(letter)?)
            .context("sealing a queued mail")
    }

    pub fn open(&self, sealed: &[u8]) -> anyhow::Result<Letter> {
        let plain = self.0.open(sealed).context("opening a queued mail")?;
        serde_json::from_slice(&plain).context("a queued mail is not a letter")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_open_with_their_key_only() {
        let seal = LetterSeal::new(&[7; 32]);
        let letter = Letter {
            to: "ana@example.org".into(),
            lang: "fr".into(),
        };
        let sealed = seal.seal(&letter).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("ana@"));
        assert_ne!(
            sealed,
            seal.seal(&letter).unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(seal.open(&sealed).unwrap(), letter);
        assert!(LetterSeal::new(&[8; 32]).open(&sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(seal.open(&tampered).is_err());
    }
}
