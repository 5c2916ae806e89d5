//! Inclusion and consistency proofs (RFC 6962), read from a log's tiles, and the receipt's
//! file: a C2SP tlog-proof ([`TlogProof`]) of a counted entry, whose `extra` data is the entry
//! itself, so that the proof verifies offline with nothing but the log's public key.

use crate::checkpoint::{self, Verified};
use crate::dir::LogFiles;
use crate::entry::Entry;
use crate::hashes::TreeHashes;
use anyhow::{bail, ensure, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use tlog_tiles::{check_record, check_tree, prove_record, prove_tree, record_hash, Hash};

/// The first line of a C2SP tlog-proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A C2SP tlog-proof: entry `index` is in the tree the `checkpoint` signs (`hashes` being its
/// RFC 6962 inclusion proof); Cahier puts the entry's bytes in `extra`.
#[derive(Debug, Clone, PartialEq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub hashes: Vec<Hash>,
    /// The signed note, as served.
    pub checkpoint: Vec<u8>,
}

/// What a verified receipt proves.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvenEntry {
    pub index: u64,
    pub entry: Entry,
    /// The checkpoint the proof is against.
    pub head: Verified,
}

impl TlogProof {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            out.push_str(&B64.encode(h.0));
            out.push('\n');
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.checkpoint);
        bytes
    }

    pub fn parse(bytes: &[u8]) -> anyhow::Result<TlogProof> {
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .context("a tlog-proof without the blank line before its checkpoint")?;
        let head = std::str::from_utf8(&bytes[..split]).context("a tlog-proof is text")?;
        let checkpoint = bytes[split + 2..].to_vec();
        let mut lines = head.lines();
        ensure!(
            lines.next() == Some(TLOG_PROOF_HEADER),
            "not a {TLOG_PROOF_HEADER} file"
        );
        let mut line = lines.next().context("a tlog-proof without its index")?;
        let mut extra = None;
        if let Some(e) = line.strip_prefix("extra ") {
            extra = Some(B64.decode(e).context("the extra line is not base64")?);
            line = lines.next().context("a tlog-proof without its index")?;
        }
        let index = line
            .strip_prefix("index ")
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *line == format!("index {n}"))
            .context("the index line is not `index N`")?;
        let hashes = lines
            .map(|l| {
                let b = B64.decode(l).context("a proof hash is not base64")?;
                let h: [u8; 32] = b
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("a proof hash is not 32 bytes"))?;
                Ok(Hash(h))
            })
            .collect::<anyhow::Result<Vec<Hash>>>()?;
        Ok(TlogProof {
            extra,
            index,
            hashes,
            checkpoint,
        })
    }

    /// Checks the checkpoint's signature (`origin`, `key`) and that the entry in `extra` is
    /// entry `index` of the tree it signs.
    pub fn verify(
        &self,
        origin: &str,
        key: &ed25519_dalek::VerifyingKey,
    ) -> anyhow::Result<ProvenEntry> {
        let head = checkpoint::open(&self.checkpoint, origin, key)
            .context("the proof's checkpoint does not verify")?;
        let Some(bytes) = &self.extra else {
            bail!("the proof carries no entry")
        };
        let entry = Entry::decode(bytes).context("the proof's entry")?;
        ensure!(
            self.index < head.size,
            "entry {} is beyond the checkpoint's {} entries",
            self.index,
            head.size
        );
        check_inclusion(&self.hashes, head.size, head.root, self.index, bytes)
            .context("the inclusion proof does not give the checkpoint's root")?;
        Ok(ProvenEntry {
            index: self.index,
            entry,
            head,
        })
    }
}

/// The proof that entry `index` is in the tree of `size` entries stored in `dir`.
pub fn inclusion(dir: &dyn LogFiles, size: u64, index: u64) -> anyhow::Result<Vec<Hash>> {
    Ok(prove_record(size, index, &TreeHashes::new(dir, size))?)
}

/// The proof that the tree of `old` entries is a prefix of the tree of `size` entries.
pub fn consistency(dir: &dyn LogFiles, size: u64, old: u64) -> anyhow::Result<Vec<Hash>> {
    Ok(prove_tree(size, old, &TreeHashes::new(dir, size))?)
}

/// Checks that `entry` is entry `index` of the tree (`size`, `root`).
pub fn check_inclusion(
    proof: &[Hash],
    size: u64,
    root: Hash,
    index: u64,
    entry: &[u8],
) -> anyhow::Result<()> {
    Ok(check_record(
        &proof.to_vec(),
        size,
        root,
        index,
        record_hash(entry),
    )?)
}

/// Checks that the tree (`old`, `old_root`) is a prefix of the tree (`size`, `root`).
pub fn check_consistency(
    proof: &[Hash],
    size: u64,
    root: Hash,
    old: u64,
    old_root: Hash,
) -> anyhow::Result<()> {
    Ok(check_tree(&proof.to_vec(), size, root, old, old_root)?)
}
