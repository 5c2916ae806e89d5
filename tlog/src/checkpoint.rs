//! Signed checkpoints: a C2SP tlog-checkpoint body in a C2SP signed note, signed with the
//! collective's Ed25519 key.
//!
//! One key signs every petition's log. Each log has its own origin, `<host>/<slug>`, and the
//! signature's key name is that origin (as tlog-checkpoint recommends), so the key ID differs per
//! petition while the public key, published once in the manifest, stays the same.

use base64::prelude::{Engine, BASE64_STANDARD};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use signed_note::{Note, StandardVerifier, VerifierList};
use std::fmt;
use tlog_tiles::{Checkpoint, Hash};

/// The collective's log key (a function secret: never in `public/`).
#[derive(Clone)]
pub struct LogKey(SigningKey);

impl fmt::Debug for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogKey(public {})", self.public_base64())
    }
}

impl LogKey {
    pub fn generate() -> LogKey {
        LogKey(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// From the 32-byte seed, base64 (the form kept as a secret).
    pub fn from_base64(seed: &str) -> anyhow::Result<LogKey> {
        let b = BASE64_STANDARD
            .decode(seed.trim())
            .map_err(|e| anyhow::anyhow!("the log key is not base64: {e}"))?;
        let seed: [u8; 32] = b
            .try_into()
            .map_err(|_| anyhow::anyhow!("the log key must be 32 bytes"))?;
        Ok(LogKey(SigningKey::from_bytes(&seed)))
    }

    pub fn seed_base64(&self) -> String {
        BASE64_STANDARD.encode(self.0.to_bytes())
    }

    pub fn public(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// The public key, base64 of its 32 bytes: what the manifest publishes.
    pub fn public_base64(&self) -> String {
        BASE64_STANDARD.encode(self.public().to_bytes())
    }

    /// Signs the checkpoint of a tree. Ed25519 is deterministic: same tree, same bytes.
    pub fn sign(&self, origin: &str, size: u64, root: Hash) -> anyhow::Result<Vec<u8>> {
        let body = Checkpoint::new(origin, size, root, "")
            .map_err(|_| anyhow::anyhow!("invalid origin {origin:?}"))?
            .to_bytes();
        let signer = NoteSigner {
            name: origin.to_string(),
            id: key_id(origin, &self.public()),
            key: &self.0,
        };
        let mut note = Note::new(&body, &[])?;
        note.add_sigs(&[&signer])?;
        Ok(note.to_bytes())
    }
}

struct NoteSigner<'a> {
    name: String,
    id: u32,
    key: &'a SigningKey,
}

impl signed_note::Signer for NoteSigner<'_> {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

/// The signed-note key ID of `name` with this Ed25519 key (algorithm byte 0x01).
fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let mut k = vec![1u8];
    k.extend_from_slice(key.as_bytes());
    signed_note::key_id(name, &k)
}

/// The origin line of a petition's log: the site's host (and path) without scheme, then the slug.
pub fn origin(base_url: &str, slug: &str) -> String {
    let rest = base_url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(base_url)
        .trim_end_matches('/');
    format!("{rest}/{slug}")
}

/// The verifier key (`<name>+<id>+<base64>`) of one log, from the collective's public key.
pub fn verifier_key(origin: &str, public: &VerifyingKey) -> String {
    signed_note::new_ed25519_verifier_key(origin, public)
}

/// A public key given as base64 of its 32 bytes, or as a verifier key string.
pub fn parse_public_key(s: &str) -> anyhow::Result<VerifyingKey> {
    let s = s.trim();
    // A raw key first (base64 may hold '+'), then `<name>+<id>+<base64>`.
    let b = match BASE64_STANDARD.decode(s) {
        Ok(b) => b,
        Err(_) => {
            let b64 = s.splitn(3, '+').nth(2).unwrap_or(s);
            BASE64_STANDARD
                .decode(b64)
                .map_err(|e| anyhow::anyhow!("the public key is not base64: {e}"))?
        }
    };
    let raw: &[u8] = match b.len() {
        32 => &b,
        33 if b[0] == 1 => &b[1..],
        n => anyhow::bail!("the public key has {n} bytes, expected an Ed25519 key of 32"),
    };
    Ok(VerifyingKey::from_bytes(raw.try_into().expect("32 bytes"))?)
}

/// A checkpoint whose signature was checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Why a checkpoint was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a signed note: {0}")]
    Note(#[from] signed_note::NoteError),
    #[error("the signed text is not a checkpoint")]
    Body,
    #[error("the checkpoint is for {found:?}, expected {expected:?}")]
    Origin { expected: String, found: String },
}

/// Opens a checkpoint of the log `origin`, signed with `public`.
pub fn open(
    bytes: &[u8],
    origin: &str,
    public: &VerifyingKey,
) -> Result<Verified, CheckpointError> {
    let note = Note::from_bytes(bytes)?;
    let verifier = StandardVerifier::new(&verifier_key(origin, public))
        .expect("a key we just encoded is well formed");
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))?;
    let cp = Checkpoint::from_bytes(note.text()).map_err(|_| CheckpointError::Body)?;
    if cp.origin() != origin {
        return Err(CheckpointError::Origin {
            expected: origin.to_string(),
            found: cp.origin().to_string(),
        });
    }
    Ok(Verified {
        origin: cp.origin().to_string(),
        size: cp.size(),
        root: *cp.hash(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "petitions.example.org/ecole";

    #[test]
    fn a_signed_checkpoint_opens_with_the_public_key_only() {
        let key = LogKey::generate();
        let bytes = key.sign(ORIGIN, 3, Hash([9; 32])).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("petitions.example.org/ecole\n3\n"),
            "{text}"
        );
        assert!(
            text.contains("\n\n— petitions.example.org/ecole "),
            "{text}"
        );
        let v = open(&bytes, ORIGIN, &key.public()).unwrap();
        assert_eq!((v.size, v.root), (3, Hash([9; 32])));
        // Deterministic.
        assert_eq!(bytes, key.sign(ORIGIN, 3, Hash([9; 32])).unwrap());
    }

    #[test]
    fn another_key_a_changed_text_or_another_origin_is_refused() {
        let key = LogKey::generate();
        let bytes = key.sign(ORIGIN, 3, Hash([9; 32])).unwrap();
        assert!(open(&bytes, ORIGIN, &LogKey::generate().public()).is_err());
        let forged = String::from_utf8(bytes.clone())
            .unwrap()
            .replacen("\n3\n", "\n4\n", 1);
        assert!(matches!(
            open(forged.as_bytes(), ORIGIN, &key.public()),
            Err(CheckpointError::Note(_))
        ));
        assert!(open(&bytes, "petitions.example.org/other", &key.public()).is_err());
    }

    #[test]
    fn keys_round_trip_and_parse_in_both_forms() {
        let key = LogKey::generate();
        let again = LogKey::from_base64(&key.seed_base64()).unwrap();
        assert_eq!(again.public(), key.public());
        assert_eq!(
            parse_public_key(&key.public_base64()).unwrap(),
            key.public()
        );
        let vkey = verifier_key(ORIGIN, &key.public());
        assert_eq!(parse_public_key(&vkey).unwrap(), key.public());
        assert!(LogKey::from_base64("c2hvcnQ=").is_err());
        assert!(!format!("{key:?}").contains(&key.seed_base64()));
    }

    #[test]
    fn origins_drop_the_scheme() {
        assert_eq!(origin("https://p.example.org/", "a"), "p.example.org/a");
        assert_eq!(origin("http://127.0.0.1:8080", "a"), "127.0.0.1:8080/a");
    }
}
