//! Where a log's files live: [`LogFiles`], the few operations the sequencer needs, and
//! [`LogDir`], a folder on disk (the served folder). The site bucket's implementation is the
//! function's (`function/src/log_bucket.rs`).
//!
//! Every file is written whole to `.tmp/` and renamed into place, so a reader (or a crash)
//! never sees half a file. Tiles and bundles have exactly one correct content per path, so
//! writing one again after a crash is harmless. The checkpoint is written last and only over
//! the checkpoint the writer started from: one writer per folder (the sequencer task), the
//! swap refused if someone else moved it.

use crate::layout::CHECKPOINT;
use anyhow::Context;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const TMP: &str = ".tmp";

/// Called with each path about to be renamed into place (tests use it to crash there).
pub type WriteHook = Box<dyn FnMut(&str) + Send + Sync>;

/// A log's files: tiles, entry bundles and the checkpoint, by their path in the log
/// (`tile/0/000`, `checkpoint`).
///
/// Tiles and bundles have exactly one correct content per path, so writing one again is
/// harmless; only the checkpoint moves, and only by [`LogFiles::swap_checkpoint`], which must
/// refuse when the checkpoint is no longer the one the writer started from: that refusal is
/// what keeps two writers from signing a fork.
pub trait LogFiles: Send + Sync {
    /// The file's bytes, or None when it does not exist.
    fn read(&self, rel: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Writes a tile or bundle whole (a reader never sees half of it).
    fn write(&mut self, rel: &str, data: &[u8]) -> anyhow::Result<()>;
    /// Writes a receipt's proof ([`crate::layout::receipt_path`]). A convenience beside the
    /// log (the log alone proves the entry), so a store may write it with less ceremony.
    fn write_receipt(&mut self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        self.write(rel, data)
    }
    /// Replaces the checkpoint, only if it is still `expected` (None: there was none), once
    /// every earlier write is durable.
    fn swap_checkpoint(&mut self, expected: Option<&[u8]>, new: &[u8]) -> anyhow::Result<()>;
    /// Where the files are, for messages ("/srv/site/ecole/log", "s3://bucket/ecole/log").
    fn location(&self) -> String;
}

pub struct LogDir {
    root: PathBuf,
    /// fsync each file before its rename, and the folders before and after the checkpoint's,
    /// so that a power cut cannot leave a checkpoint without its tiles.
    durable: bool,
    hook: Option<WriteHook>,
    writes: u64,
    /// Folders with renames not yet fsynced (synced once each, before the checkpoint).
    dirty: std::collections::BTreeSet<PathBuf>,
}

impl std::fmt::Debug for LogDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDir")
            .field("root", &self.root)
            .field("durable", &self.durable)
            .finish()
    }
}

impl LogDir {
    /// Opens (creating) the folder and drops what an interrupted writer left in `.tmp/`.
    pub fn open(root: &Path) -> anyhow::Result<LogDir> {
        let tmp = root.join(TMP);
        match fs::remove_dir_all(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("while clearing {}", tmp.display())),
        }
        fs::create_dir_all(&tmp).with_context(|| format!("while creating {}", tmp.display()))?;
        Ok(LogDir {
            root: root.to_path_buf(),
            durable: true,
            hook: None,
            writes: 0,
            dirty: Default::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    pub fn set_hook(&mut self, hook: WriteHook) {
        self.hook = Some(hook);
    }

    /// Files renamed into place so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    fn sync_folders(&mut self) -> anyhow::Result<()> {
        for d in std::mem::take(&mut self.dirty) {
            fs::File::open(&d)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("while syncing {}", d.display()))?;
        }
        Ok(())
    }
}

impl LogFiles for LogDir {
    /// Without the file's own fsync (one per signature would dominate the integration): the
    /// rename reaches the disk with the folders', before the checkpoint.
    fn write_receipt(&mut self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        let durable = std::mem::replace(&mut self.durable, false);
        let result = self.write(rel, data);
        self.durable = durable;
        if durable {
            if let Some(parent) = self.root.join(rel).parent() {
                self.dirty.insert(parent.to_path_buf());
            }
        }
        result
    }

    fn read(&self, rel: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let p = self.root.join(rel);
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("while reading {}", p.display())),
        }
    }

    fn write(&mut self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        let dest = self.root.join(rel);
        let tmp = self.root.join(TMP).join(rel.replace('/', "%"));
        (|| -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(data)?;
            if self.durable {
                f.sync_all()?;
            }
            drop(f);
            if let Some(h) = self.hook.as_mut() {
                h(rel);
            }
            let parent = dest.parent().expect("inside the root");
            match fs::rename(&tmp, &dest) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir_all(parent)?;
                    fs::rename(&tmp, &dest)
                }
                r => r,
            }?;
            if self.durable {
                self.dirty.insert(parent.to_path_buf());
            }
            Ok(())
        })()
        .with_context(|| format!("while writing {}", dest.display()))?;
        self.writes += 1;
        Ok(())
    }

    fn swap_checkpoint(&mut self, expected: Option<&[u8]>, new: &[u8]) -> anyhow::Result<()> {
        let current = self.read(CHECKPOINT)?;
        anyhow::ensure!(
            current.as_deref() == expected,
            "the checkpoint of {} changed under the sequencer: refusing to sign a fork",
            self.root.display()
        );
        // Every tile's rename reaches the disk before the checkpoint that covers it.
        self.sync_folders()?;
        self.write(CHECKPOINT, new)?;
        self.sync_folders()
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}

/// A log whose files live in a place chosen at run time (a folder or the site bucket).
impl<T: LogFiles + ?Sized> LogFiles for Box<T> {
    fn read(&self, rel: &str) -> anyhow::Result<Option<Vec<u8>>> {
        (**self).read(rel)
    }

    fn write(&mut self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        (**self).write(rel, data)
    }

    fn write_receipt(&mut self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        (**self).write_receipt(rel, data)
    }

    fn swap_checkpoint(&mut self, expected: Option<&[u8]>, new: &[u8]) -> anyhow::Result<()> {
        (**self).swap_checkpoint(expected, new)
    }

    fn location(&self) -> String {
        (**self).location()
    }
}
