//! Reading the tree's hashes: those of the committed tree from its tiles, those being added
//! from memory. This is the [`HashReader`] the `tlog_tiles` algorithms (stored hashes, tree
//! hash, tile data, proofs) run on.

use crate::dir::LogFiles;
use crate::layout::{self, tile_path};
use std::cell::RefCell;
use std::collections::HashMap;
use tlog_tiles::{stored_hash_count, Error, Hash, HashReader, Tile};

/// Hashes of a tree of `size` entries stored in `dir`, plus `added` ones beyond it.
pub struct TreeHashes<'a> {
    dir: &'a dyn LogFiles,
    size: u64,
    base: u64,
    added: Vec<Hash>,
    tiles: RefCell<HashMap<(u8, u64), Vec<u8>>>,
}

impl<'a> TreeHashes<'a> {
    pub fn new(dir: &'a dyn LogFiles, size: u64) -> TreeHashes<'a> {
        TreeHashes {
            dir,
            size,
            base: stored_hash_count(size),
            added: Vec::new(),
            tiles: RefCell::default(),
        }
    }

    /// Adds the stored hashes of the next entry (as returned by `stored_hashes`).
    pub fn extend(&mut self, hashes: Vec<Hash>) {
        self.added.extend(hashes);
    }

    fn committed(&self, index: u64) -> Result<Hash, Error> {
        let t = Tile::from_index(layout::HEIGHT, index);
        let (level, n) = (t.level(), t.level_index());
        let width = layout::width_in(level, n, self.size);
        if width < u64::from(t.width()) {
            return Err(Error::IndexesNotInTree);
        }
        let stored = layout::tile(level, n, width);
        let mut cache = self.tiles.borrow_mut();
        if !cache.contains_key(&(level, n)) {
            let data = self
                .dir
                .read(&tile_path(&stored))
                .ok()
                .flatten()
                .ok_or(Error::InvalidTile)?;
            if cache.len() > 64 {
                cache.clear();
            }
            cache.insert((level, n), data);
        }
        stored.hash_at_index(&cache[&(level, n)], index)
    }
}

impl HashReader for TreeHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Error> {
        indexes
            .iter()
            .map(|&i| match i.checked_sub(self.base) {
                Some(k) => self
                    .added
                    .get(usize::try_from(k).map_err(|_| Error::IndexesNotInTree)?)
                    .copied()
                    .ok_or(Error::IndexesNotInTree),
                None => self.committed(i),
            })
            .collect()
    }
}

/// Every stored hash of a tree held in memory (the verifier rebuilds the whole tree).
#[derive(Default)]
pub struct MemHashes(pub Vec<Hash>);

impl HashReader for MemHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Error> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.0.get(i))
                    .copied()
                    .ok_or(Error::IndexesNotInTree)
            })
            .collect()
    }
}
