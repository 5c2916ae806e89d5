//! Signed confirm and erase tokens: `base64url(payload ‖ HMAC-SHA-256(key, payload))`, the
//! payload carrying the kind, expiry, signature key (e-mail hash) and petition. The MAC is
//! checked in constant time before anything else, so a forged token never reaches the store.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const MAC_LEN: usize = 32;
const HASH_LEN: usize = 32;
const HEADER_LEN: usize = 1 + 1 + 8 + HASH_LEN;
/// Confirm links live 7 days (DESIGN: pending signatures expire).
pub const CONFIRM_TTL_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Confirm,
    Erase,
    /// The link of an update to signers ([`crate::unsubscribe`]); issued on the organizer's
    /// machine with a key of its own, so it can never confirm or erase anything.
    Unsubscribe,
}

impl TokenKind {
    fn byte(self) -> u8 {
        match self {
            TokenKind::Confirm => b'c',
            TokenKind::Erase => b'e',
            TokenKind::Unsubscribe => b'u',
        }
    }

    fn from_byte(b: u8) -> Option<TokenKind> {
        match b {
            b'c' => Some(TokenKind::Confirm),
            b'e' => Some(TokenKind::Erase),
            b'u' => Some(TokenKind::Unsubscribe),
            _ => None,
        }
    }

    /// The tokens a request of this kind accepts ([`TokenKey::verify`]). Erasing needs proof
    /// that the caller reads the mailbox, and a confirm token is that proof as much as an erase
    /// token — the confirm page's "this was not me" link carries the confirm token. Confirming
    /// never accepts an erase token: that one lives for the whole retention period and is also
    /// in the "someone used your address" mail.
    pub fn accepted(self) -> &'static [TokenKind] {
        match self {
            TokenKind::Confirm => &[TokenKind::Confirm],
            TokenKind::Erase => &[TokenKind::Erase, TokenKind::Confirm],
            TokenKind::Unsubscribe => &[TokenKind::Unsubscribe],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub kind: TokenKind,
    pub petition: String,
    /// Hex e-mail hash: the signature's key in the store.
    pub email_hash: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token we issued (bad encoding, bad MAC, wrong kind): 400.
    Invalid,
    /// Authentic but past its expiry: 410.
    Expired,
}

/// Issues and verifies tokens with one secret key.
#[derive(Clone)]
pub struct TokenKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    pub fn new(key: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(key.len() >= 32, "the token key must be at least 32 bytes");
        Ok(TokenKey { key: key.to_vec() })
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    pub fn issue(&self, claims: &TokenClaims) -> String {
        let hash = hex::decode(&claims.email_hash).unwrap_or_default();
        let mut payload = Vec::with_capacity(HEADER_LEN + claims.petition.len() + MAC_LEN);
        payload.push(VERSION);
        payload.push(claims.kind.byte());
        payload.extend_from_slice(&claims.expires_at.to_be_bytes());
        let mut fixed = [0u8; HASH_LEN];
        let n = hash.len().min(HASH_LEN);
        fixed[..n].copy_from_slice(&hash[..n]);
        payload.extend_from_slice(&fixed);
        payload.extend_from_slice(claims.petition.as_bytes());
        let mut mac = self.mac();
        mac.update(&payload);
        payload.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// Verifies a token for a request of `kind`: any of [`TokenKind::accepted`] (an erase
    /// request takes a confirm token too). The claims name the token's own kind.
    pub fn verify(
        &self,
        token: &str,
        kind: TokenKind,
        now: i64,
    ) -> Result<TokenClaims, TokenError> {
        self.verify_any(token, kind.accepted(), now)
    }

    /// Verifies the MAC (constant time), then that the token is of one of `kinds`, then the
    /// expiry at `now`.
    pub fn verify_any(
        &self,
        token: &str,
        kinds: &[TokenKind],
        now: i64,
    ) -> Result<TokenClaims, TokenError> {
        if token.len() > crate::decode::MAX_TOKEN {
            return Err(TokenError::Invalid);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .map_err(|_| TokenError::Invalid)?;
        if bytes.len() < HEADER_LEN + 1 + MAC_LEN {
            return Err(TokenError::Invalid);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_slice(tag).map_err(|_| TokenError::Invalid)?;
        if payload[0] != VERSION {
            return Err(TokenError::Invalid);
        }
        let kind = TokenKind::from_byte(payload[1])
            .filter(|k| kinds.contains(k))
            .ok_or(TokenError::Invalid)?;
        let expires_at =
            i64::from_be_bytes(payload[2..10].try_into().map_err(|_| TokenError::Invalid)?);
        let email_hash = hex::encode(&payload[10..HEADER_LEN]);
        let petition =
            String::from_utf8(payload[HEADER_LEN..].to_vec()).map_err(|_| TokenError::Invalid)?;
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(TokenClaims {
            kind,
            petition,
            email_hash,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> TokenKey {
        TokenKey::new(&[7u8; 32]).unwrap()
    }

    fn claims() -> TokenClaims {
        TokenClaims {
            kind: TokenKind::Confirm,
            petition: "noel-sans-amazon".into(),
            email_hash: hex::encode([0xabu8; 32]),
            expires_at: 1_000_000,
        }
    }

    #[test]
    fn round_trip_and_kind_and_expiry() {
        let t = key().issue(&claims());
        assert_eq!(
            key().verify(&t, TokenKind::Confirm, 999_999).unwrap(),
            claims()
        );
        assert_eq!(
            key().verify_any(&t, &[TokenKind::Erase], 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            key().verify(&t, TokenKind::Confirm, 1_000_000),
            Err(TokenError::Expired)
        );
        let other = TokenKey::new(&[8u8; 32]).unwrap();
        assert_eq!(
            other.verify(&t, TokenKind::Confirm, 0),
            Err(TokenError::Invalid)
        );
        assert!(TokenKey::new(&[1u8; 16]).is_err());
    }

    #[test]
    fn a_confirm_token_erases_but_an_erase_token_never_confirms() {
        let confirm = key().issue(&claims());
        let erase = key().issue(&TokenClaims {
            kind: TokenKind::Erase,
            ..claims()
        });
        // The confirm page's "this was not me" link carries the confirm token.
        assert_eq!(
            key().verify(&confirm, TokenKind::Erase, 0).unwrap(),
            claims(),
            "a confirm token proves the mailbox for an erase"
        );
        let e = key().verify(&erase, TokenKind::Erase, 0).unwrap();
        assert_eq!(e.kind, TokenKind::Erase);
        assert_eq!(
            key().verify(&erase, TokenKind::Confirm, 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            key().verify(&confirm, TokenKind::Erase, 1_000_000),
            Err(TokenError::Expired)
        );
    }

    proptest! {
        #[test]
        fn any_bit_flip_is_rejected(bit in 0usize..(8 * (HEADER_LEN + 16 + MAC_LEN))) {
            let t = key().issue(&claims());
            let mut bytes = URL_SAFE_NO_PAD.decode(&t).unwrap();
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            let forged = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert_eq!(key().verify(&forged, TokenKind::Confirm, 0), Err(TokenError::Invalid));
        }

        #[test]
        fn garbage_is_rejected(s in "[A-Za-z0-9_-]{0,200}") {
            prop_assert!(key().verify(&s, TokenKind::Confirm, 0).is_err());
        }

        #[test]
        fn truncation_is_rejected(cut in 1usize..100) {
            let t = key().issue(&claims());
            let cut = cut.min(t.len());
            prop_assert!(key().verify(&t[..t.len() - cut], TokenKind::Confirm, 0).is_err());
        }
    }
}
