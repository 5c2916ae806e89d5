//! Local decryption of the personal data with the organizer's age identity. The identity file
//! stays on the organizer's machine; nothing decrypted is ever written back to the store.

use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

/// What a signer typed, as sealed by the sign path (a JSON object; unknown keys ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Personal {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// The organizer's X25519 identities (an `age-keygen` file: `AGE-SECRET-KEY-1…` lines,
/// `#` comments).
pub struct Identities(Vec<age::x25519::Identity>);

impl Identities {
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("while reading the age identity file {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let mut ids = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = age::x25519::Identity::from_str(line).map_err(|e| {
                anyhow::anyhow!("{origin}:{}: not an age X25519 identity: {e}", n + 1)
            })?;
            ids.push(id);
        }
        anyhow::ensure!(
            !ids.is_empty(),
            "{origin}: no AGE-SECRET-KEY-1… identity in the file"
        );
        Ok(Identities(ids))
    }

    /// Decrypts one sealed blob. Erased or purged records have none.
    pub fn open(&self, sealed: &[u8]) -> anyhow::Result<Personal> {
        anyhow::ensure!(!sealed.is_empty(), "no personal data (erased or purged)");
        let decryptor =
            age::Decryptor::new(sealed).map_err(|e| anyhow::anyhow!("not an age file: {e}"))?;
        let mut reader = decryptor
            .decrypt(self.0.iter().map(|i| i as &dyn age::Identity))
            .map_err(|e| anyhow::anyhow!("cannot decrypt with this identity: {e}"))?;
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut plain).context("while decrypting")?;
        serde_json::from_slice(&plain).context("decrypted data is not the expected JSON object")
    }
}
