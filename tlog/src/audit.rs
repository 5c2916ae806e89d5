//! Checking a whole log from its files, as an outside monitor does: every entry bundle is
//! decoded and counted, the whole tree is rebuilt from the entries, every served tile must be
//! byte-for-byte the rebuilt one, the root must be the signed one, and an earlier checkpoint
//! (the monitor's memory) must be a prefix of this tree.

use crate::entry::Entry;
use crate::hashes::MemHashes;
use crate::layout::{self, bundle_path, decode_bundle, tile_path};
use crate::tally::{Counter, Tally};
use serde::Serialize;
use std::fmt;
use tlog_tiles::{stored_hashes, tree_hash, Hash};

/// A tree head: size and root.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Head {
    pub size: u64,
    pub root: Hash,
}

/// Every file a log of `size` entries serves besides its checkpoint: bundles, then tiles.
pub fn files_of(size: u64) -> Vec<String> {
    let tiles = layout::tiles_of(size);
    let mut v: Vec<String> = tiles
        .iter()
        .filter(|t| t.level() == 0)
        .map(bundle_path)
        .collect();
    v.extend(tiles.iter().map(tile_path));
    v
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// A file of the tree is not served.
    Missing { path: String },
    /// A bundle that does not decode, or holds the wrong number of entries.
    BadBundle { path: String, error: String },
    /// A tile that is not the one the entries give.
    TileChanged { path: String },
    /// The entries give another root than the signed one.
    RootMismatch { expected: String, rebuilt: String },
    /// The log is smaller than a checkpoint seen before.
    Rollback { seen: u64, now: u64 },
    /// The tree does not extend the tree of a checkpoint seen before.
    Fork {
        size: u64,
        seen: String,
        now: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { path } => write!(f, "{path}: missing"),
            Problem::BadBundle { path, error } => write!(f, "{path}: {error}"),
            Problem::TileChanged { path } => {
                write!(f, "{path}: not the tile of the entries (changed)")
            }
            Problem::RootMismatch { expected, rebuilt } => write!(
                f,
                "the entries give root {rebuilt}, the checkpoint signs {expected}"
            ),
            Problem::Rollback { seen, now } => write!(
                f,
                "the log has {now} entries, a checkpoint of {seen} was seen before (rollback)"
            ),
            Problem::Fork { size, seen, now } => write!(
                f,
                "fork: at size {size} the log now gives root {now}, a checkpoint seen before signed {seen}"
            ),
        }
    }
}

/// What the files say.
#[derive(Debug, Clone)]
pub struct Audit {
    pub tally: Tally,
    pub problems: Vec<Problem>,
}

/// Audits the tree `head` from its files (`file(path)` gives a served file, None if absent),
/// against a head seen earlier.
pub fn audit<'a>(head: Head, seen: Option<Head>, file: impl Fn(&str) -> Option<&'a [u8]>) -> Audit {
    let mut problems = Vec::new();
    let mut counter = Counter::default();
    let mut mem = MemHashes::default();
    let tiles = layout::tiles_of(head.size);
    let mut index = 0u64;
    for t in tiles.iter().filter(|t| t.level() == 0) {
        let path = bundle_path(t);
        let entries = match file(&path).map(decode_bundle) {
            None => {
                problems.push(Problem::Missing { path });
                return Audit {
                    tally: counter.finish(),
                    problems,
                };
            }
            Some(Err(error)) => Err(error),
            Some(Ok(e)) if e.len() as u64 != u64::from(t.width()) => {
                Err(format!("{} entries, expected {}", e.len(), t.width()))
            }
            Some(Ok(e)) => Ok(e),
        };
        let entries = match entries {
            Ok(e) => e,
            Err(error) => {
                problems.push(Problem::BadBundle { path, error });
                return Audit {
                    tally: counter.finish(),
                    problems,
                };
            }
        };
        for e in entries {
            match Entry::decode(e) {
                Ok(entry) => counter.add(&entry),
                Err(err) => counter.unreadable(format!("entry {index}: {err}")),
            }
            let h = stored_hashes(index, e, &mem).expect("the tree in memory has every hash");
            mem.0.extend(h);
            index += 1;
        }
    }
    for t in &tiles {
        let path = tile_path(t);
        let rebuilt = t
            .read_data(&mem)
            .expect("the tree in memory has every hash");
        match file(&path) {
            None => problems.push(Problem::Missing { path }),
            Some(b) if b != rebuilt.as_slice() => problems.push(Problem::TileChanged { path }),
            Some(_) => {}
        }
    }
    let root = tree_hash(head.size, &mem).expect("in memory");
    if root != head.root {
        problems.push(Problem::RootMismatch {
            expected: head.root.to_string(),
            rebuilt: root.to_string(),
        });
    }
    if let Some(seen) = seen {
        if seen.size > head.size {
            problems.push(Problem::Rollback {
                seen: seen.size,
                now: head.size,
            });
        } else {
            let then = tree_hash(seen.size, &mem).expect("in memory");
            if then != seen.root {
                problems.push(Problem::Fork {
                    size: seen.size,
                    seen: seen.root.to_string(),
                    now: then.to_string(),
                });
            }
        }
    }
    Audit {
        tally: counter.finish(),
        problems,
    }
}
