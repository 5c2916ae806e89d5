//! Inclusion and consistency proofs (RFC 6962), read from a log's tiles: what a receipt
//! carries, and what a monitor checks between two checkpoints.

use crate::dir::LogFiles;
use crate::hashes::TreeHashes;
use tlog_tiles::{check_record, check_tree, prove_record, prove_tree, record_hash, Hash};

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
