//! The background sequencer of the transparency log (standalone server and `cahier serve`).
//!
//! The store records one log event in the transaction of every count change (SQLite only for
//! now, see [`Store::records_log`]) and numbers each petition's events densely. Every few
//! seconds this task takes, per petition, the events from the log's current size on and
//! integrates them with [`cahier_tlog::Sequencer`] into `<dir>/<slug>/log/` (entry bundles,
//! tiles, then the signed checkpoint).
//!
//! There is no cursor in the store: the signed checkpoint's size *is* the cursor, and the
//! store keeps every event. Killed anywhere, the next run reopens the folder (checking the
//! checkpoint's signature and that the tiles give its root), asks the store for `seq >= size`
//! and writes the same bytes again: no gap, no duplicate. A log bigger than the store's events
//! (a database replaced under a log) is refused with an error rather than silently extended.
//! One task per folder: the sequencer swaps the checkpoint only over the one it started from.

use crate::store::Store;
use anyhow::Context;
use cahier_tlog::{LogDir, LogKey, Sequencer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often the task integrates, unless configured.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Events read from the store per integration step (one checkpoint each).
const BATCH: usize = 65_536;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Events integrated, all petitions together.
    pub added: u64,
    /// Petitions whose log grew.
    pub grown: usize,
}

pub struct LogTask {
    store: Arc<dyn Store>,
    dir: PathBuf,
    key: LogKey,
    /// The site's `base_url`: each log's origin is it without the scheme, then `/<slug>`.
    base_url: String,
    durable: bool,
    /// The logs opened so far (reopened from disk after an error).
    logs: HashMap<String, Sequencer>,
}

/// A slug as a folder name: what the generator accepts (lower-case letters, digits, `-`, `_`).
fn safe_slug(slug: &str) -> bool {
    !slug.is_empty()
        && !slug.starts_with(['.', '-'])
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The folder of one petition's log under `dir`: `<dir>/<slug>/log`, served at `/<slug>/log/`.
pub fn log_folder(dir: &Path, slug: &str) -> PathBuf {
    dir.join(slug).join("log")
}

impl LogTask {
    pub fn new(store: Arc<dyn Store>, dir: PathBuf, key: LogKey, base_url: &str) -> LogTask {
        LogTask {
            store,
            dir,
            key,
            base_url: base_url.trim_end_matches('/').to_string(),
            durable: true,
            logs: HashMap::new(),
        }
    }

    /// Without fsync (tests).
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Integrates every petition's pending events. A petition that fails is reported in the
    /// error and retried from disk at the next pass; the others go on.
    pub async fn run_once(&mut self) -> anyhow::Result<Pass> {
        let mut pass = Pass::default();
        let mut failed = Vec::new();
        for slug in self.store.log_petitions().await? {
            match self.integrate(&slug).await {
                Ok(0) => {}
                Ok(n) => {
                    pass.added += n;
                    pass.grown += 1;
                }
                Err(e) => {
                    self.logs.remove(&slug);
                    failed.push(format!("{slug}: {e:#}"));
                }
            }
        }
        if !failed.is_empty() {
            anyhow::bail!("{}", failed.join("; "));
        }
        Ok(pass)
    }

    async fn integrate(&mut self, slug: &str) -> anyhow::Result<u64> {
        anyhow::ensure!(safe_slug(slug), "{slug:?} is not a slug");
        let mut seq = match self.logs.remove(slug) {
            Some(s) => s,
            None => {
                let folder = log_folder(&self.dir, slug);
                let origin = cahier_tlog::checkpoint::origin(&self.base_url, slug);
                let (key, durable) = (self.key.clone(), self.durable);
                tokio::task::spawn_blocking(move || {
                    let mut dir = LogDir::open(&folder)?;
                    dir.set_durable(durable);
                    Sequencer::open(dir, key, &origin)
                })
                .await
                .context("the log task panicked")??
            }
        };
        let mut added = 0;
        loop {
            let (events, total) = self.store.log_events(slug, seq.size(), BATCH).await?;
            anyhow::ensure!(
                total >= seq.size(),
                "the log holds {} entries but the store only {total} events: refusing to go on \
                 (was the database replaced?)",
                seq.size()
            );
            if events.is_empty() {
                break;
            }
            let full = events.len() == BATCH;
            let (back, done) = tokio::task::spawn_blocking(move || {
                let r = seq.integrate(&events);
                (seq, r)
            })
            .await
            .context("the sequencer panicked")?;
            seq = back;
            added += done?.added;
            if !full {
                break;
            }
        }
        self.logs.insert(slug.to_string(), seq);
        Ok(added)
    }

    /// Runs a pass every `interval` until the returned task is aborted; failures are logged
    /// (and printed when `print` is set, as under `cahier serve`) and retried.
    pub fn spawn(mut self, interval: Duration, print: bool) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.run_once().await {
                    tracing::warn!(error = %format!("{e:#}"), "transparency log: integration failed");
                    if print {
                        eprintln!("warning: transparency log: {e:#}");
                    }
                }
            }
        })
    }
}
