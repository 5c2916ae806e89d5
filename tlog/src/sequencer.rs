//! Integrating pending events into a log's folder.
//!
//! The store numbers each petition's events densely (`seq` 0, 1, 2, … in the transaction that
//! records them), and the signed checkpoint's size *is* the sequencer's cursor: events with
//! `seq < size` are in the log. A batch writes its entry bundles and tiles first, then swaps
//! the checkpoint. Killed anywhere before the swap, the next run starts again from the same
//! size and writes the same bytes (entries, tiles and Ed25519 signatures are deterministic):
//! no gap, no duplicate, and nothing to repair.

use crate::checkpoint::{self, LogKey};
use crate::dir::{LogDir, LogFiles};
use crate::entry::Entry;
use crate::hashes::TreeHashes;
use crate::layout::{self, bundle_path, decode_bundle, encode_bundle, tile_path, CHECKPOINT};
use crate::proof::TlogProof;
use anyhow::{bail, ensure, Context};
use tlog_tiles::{prove_record, record_hash, stored_hashes, tree_hash, Hash, Tile, EMPTY_HASH};

/// An event recorded by the store, waiting to be integrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// Its position in the petition's log.
    pub seq: u64,
    pub entry: Entry,
}

/// The log of one petition, ready to grow.
pub struct Sequencer<F: LogFiles = LogDir> {
    dir: F,
    key: LogKey,
    origin: String,
    size: u64,
    root: Hash,
    checkpoint: Option<Vec<u8>>,
    /// Most entries per checkpoint (bounds memory and the work lost to a crash).
    pub max_batch: u64,
}

/// What one call to [`Sequencer::integrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Integrated {
    pub added: u64,
    pub skipped: u64,
    pub size: u64,
    pub checkpoints: u64,
}

impl<F: LogFiles> Sequencer<F> {
    /// Opens the log in `dir`; checks its checkpoint against the key and its tiles.
    pub fn open(dir: F, key: LogKey, origin: &str) -> anyhow::Result<Sequencer<F>> {
        let checkpoint = dir.read(CHECKPOINT)?;
        let (size, root) = match &checkpoint {
            None => (0, EMPTY_HASH),
            Some(b) => {
                let v = checkpoint::open(b, origin, &key.public()).with_context(|| {
                    format!("the checkpoint in {} does not open", dir.location())
                })?;
                let found = tree_hash(v.size, &TreeHashes::new(&dir, v.size))
                    .with_context(|| format!("the tiles in {} are incomplete", dir.location()))?;
                ensure!(
                    found == v.root,
                    "the tiles in {} do not match their checkpoint",
                    dir.location()
                );
                (v.size, v.root)
            }
        };
        Ok(Sequencer {
            dir,
            key,
            origin: origin.to_string(),
            size,
            root,
            checkpoint,
            max_batch: 1 << 16,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn root(&self) -> Hash {
        self.root
    }

    pub fn dir(&self) -> &F {
        &self.dir
    }

    pub fn dir_mut(&mut self) -> &mut F {
        &mut self.dir
    }

    /// Signs the empty log's checkpoint (size 0, the empty tree's root) when the folder has
    /// none, so that a petition's log answers from its first day instead of a 404, and a
    /// monitor pins the key and the origin before the first signature. Whether it wrote one.
    pub fn publish_empty(&mut self) -> anyhow::Result<bool> {
        if self.checkpoint.is_some() {
            return Ok(false);
        }
        let cp = self.key.sign(&self.origin, 0, EMPTY_HASH)?;
        self.dir.swap_checkpoint(None, &cp)?;
        self.checkpoint = Some(cp);
        Ok(true)
    }

    /// Integrates `events` (in `seq` order; those already in the log are skipped).
    pub fn integrate(&mut self, events: &[Pending]) -> anyhow::Result<Integrated> {
        let mut out = Integrated {
            size: self.size,
            ..Default::default()
        };
        let fresh: Vec<&Pending> = events.iter().filter(|p| p.seq >= self.size).collect();
        out.skipped = (events.len() - fresh.len()) as u64;
        for (i, p) in fresh.iter().enumerate() {
            let expected = self.size + i as u64;
            if p.seq != expected {
                bail!(
                    "event {} of {} is not the next one ({expected}): refusing a gap",
                    p.seq,
                    self.origin
                );
            }
        }
        for chunk in fresh.chunks(usize::try_from(self.max_batch.max(1)).unwrap_or(usize::MAX)) {
            let entries: Vec<Vec<u8>> = chunk.iter().map(|p| p.entry.encode()).collect();
            self.append(&entries)?;
            out.added += chunk.len() as u64;
            out.checkpoints += 1;
        }
        out.size = self.size;
        Ok(out)
    }

    /// One batch: bundles and tiles, then the checkpoint.
    fn append(&mut self, entries: &[Vec<u8>]) -> anyhow::Result<()> {
        let old = self.size;
        let new = old + entries.len() as u64;
        let mut hashes = TreeHashes::new(&self.dir, old);
        for (i, e) in entries.iter().enumerate() {
            let h = stored_hashes(old + i as u64, e, &hashes)
                .with_context(|| format!("while hashing entry {}", old + i as u64))?;
            hashes.extend(h);
        }
        let tiles = Tile::new_tiles(layout::HEIGHT, old, new);
        let mut files = Vec::with_capacity(tiles.len() * 2);
        for t in &tiles {
            if t.level() == 0 {
                files.push((bundle_path(t), self.bundle(t, old, entries)?));
            }
        }
        for t in &tiles {
            let data = t
                .read_data(&hashes)
                .with_context(|| format!("while building {}", tile_path(t)))?;
            files.push((tile_path(t), data));
        }
        let root = tree_hash(new, &hashes)?;
        let cp = self.key.sign(&self.origin, new, root)?;
        let receipts = receipts(&hashes, old, new, entries, &cp)?;
        drop(hashes);
        for (path, data) in &files {
            self.dir.write(path, data)?;
        }
        // Before the swap: a crash here leaves proofs against a checkpoint not yet published,
        // which the next run (from the same size, so over the same entries) writes again.
        for (path, data) in &receipts {
            self.dir.write_receipt(path, data)?;
        }
        self.dir.swap_checkpoint(self.checkpoint.as_deref(), &cp)?;
        self.checkpoint = Some(cp);
        self.size = new;
        self.root = root;
        Ok(())
    }

    /// The bundle of the level-0 tile `t`: the committed entries it already held, then new ones.
    fn bundle(&self, t: &Tile, old: u64, entries: &[Vec<u8>]) -> anyhow::Result<Vec<u8>> {
        let start = t.level_index() * layout::WIDTH;
        let end = start + u64::from(t.width());
        let had = layout::width_in(0, t.level_index(), old);
        let previous = if had > 0 {
            let p = bundle_path(&layout::tile(0, t.level_index(), had));
            self.dir
                .read(&p)?
                .with_context(|| format!("{p} is missing"))?
        } else {
            Vec::new()
        };
        let mut all: Vec<&[u8]> =
            decode_bundle(&previous).map_err(|e| anyhow::anyhow!("{e} in a committed bundle"))?;
        ensure!(
            all.len() as u64 == had,
            "a committed bundle has the wrong size"
        );
        let from = usize::try_from(start + had - old).expect("small");
        let to = usize::try_from(end - old).expect("small");
        all.extend(entries[from..to].iter().map(|e| e.as_slice()));
        Ok(encode_bundle(all))
    }
}

/// The receipt file of every counted entry of the batch `old..new`: its tlog-proof against
/// the batch's checkpoint `cp`, the entry in `extra`.
fn receipts(
    hashes: &TreeHashes<'_>,
    old: u64,
    new: u64,
    entries: &[Vec<u8>],
    cp: &[u8],
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for (i, bytes) in entries.iter().enumerate() {
        let entry = Entry::decode(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        if entry.event != crate::Event::Counted {
            continue;
        }
        let index = old + i as u64;
        let proof = TlogProof {
            extra: Some(bytes.clone()),
            index,
            hashes: prove_record(new, index, hashes)
                .with_context(|| format!("while proving entry {index}"))?,
            checkpoint: cp.to_vec(),
        };
        out.push((layout::receipt_path(&entry.commitment), proof.encode()));
    }
    Ok(out)
}

/// The leaf hash of an entry (RFC 6962: SHA-256 of 0x00 and the entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    record_hash(entry)
}
