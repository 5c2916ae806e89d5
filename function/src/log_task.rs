//! The sequencer of the transparency log: a background task of the standalone server and of
//! `cahier serve` (into a served folder), or the scheduled function under AWS (into the site
//! bucket, `log_bucket.rs`).
//!
//! The store records one log event in the transaction of every count change (see
//! [`Store::records_log`]) and numbers each petition's events densely (DynamoDB when asked
//! for them, see `store/dynamo_log.rs`). Every few
//! seconds this task takes, per petition, the events from the log's current size on and
//! integrates them with [`cahier_tlog::Sequencer`] into `<slug>/log/` of its [`LogTarget`]
//! (entry bundles, tiles, then the signed checkpoint).
//!
//! There is no cursor in the store: the signed checkpoint's size *is* the cursor, and the
//! store keeps every event. Killed anywhere, the next run reopens the folder (checking the
//! checkpoint's signature and that the tiles give its root), asks the store for `seq >= size`
//! and writes the same bytes again: no gap, no duplicate. A log bigger than the store's events
//! (a database replaced under a log) is refused with an error rather than silently extended.
//! One task per folder: the sequencer swaps the checkpoint only over the one it started from.

use crate::store::Store;
use anyhow::Context;
use cahier_tlog::{LogDir, LogFiles, LogKey, Sequencer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often the task integrates, unless configured.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Events read from the store per integration step (one checkpoint each).
const BATCH: usize = 65_536;

/// Entries per checkpoint in the bucket: a batch holds its receipts (about 1.1 KB each) in
/// memory until they are uploaded, and the sequencer function has 256 MB.
#[cfg(feature = "s3")]
const BUCKET_BATCH: u64 = 8_192;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Events integrated, all petitions together.
    pub added: u64,
    /// Petitions whose log grew.
    pub grown: usize,
}

/// Where the logs go.
#[derive(Debug, Clone)]
pub enum LogTarget {
    /// `<dir>/<slug>/log/`, served at the site's root by the server in front.
    Folder(PathBuf),
    /// `<slug>/log/` in the site bucket, the checkpoint swapped in the DynamoDB store first.
    #[cfg(feature = "s3")]
    Bucket(crate::log_bucket::Bucket),
}

impl std::fmt::Display for LogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogTarget::Folder(dir) => write!(f, "{}", dir.display()),
            #[cfg(feature = "s3")]
            LogTarget::Bucket(b) => write!(f, "s3://{}", b.name()),
        }
    }
}

type Log = Sequencer<Box<dyn LogFiles>>;

pub struct LogTask {
    store: Arc<dyn Store>,
    target: LogTarget,
    key: LogKey,
    /// The site's `base_url`: each log's origin is it without the scheme, then `/<slug>`.
    base_url: String,
    durable: bool,
    /// The manifest's petitions, gone through besides those the store lists (DynamoDB lists
    /// none: see [`Store::log_petitions`]).
    petitions: Vec<String>,
    /// The logs opened so far (reopened from disk after an error).
    logs: HashMap<String, Log>,
    /// When set, a pass stops between two checkpoints once it is past (the scheduled
    /// function's invocation ends; the next one goes on from the checkpoint).
    deadline: Option<std::time::Instant>,
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
    /// Integrates into folders under `dir`.
    pub fn new(store: Arc<dyn Store>, dir: PathBuf, key: LogKey, base_url: &str) -> LogTask {
        LogTask::into_target(store, LogTarget::Folder(dir), key, base_url)
    }

    pub fn into_target(
        store: Arc<dyn Store>,
        target: LogTarget,
        key: LogKey,
        base_url: &str,
    ) -> LogTask {
        LogTask {
            store,
            target,
            key,
            base_url: base_url.trim_end_matches('/').to_string(),
            durable: true,
            petitions: Vec::new(),
            logs: HashMap::new(),
            deadline: None,
        }
    }

    /// Also integrates these petitions' events (the manifest's).
    pub fn with_petitions(mut self, petitions: impl IntoIterator<Item = String>) -> LogTask {
        self.petitions = petitions.into_iter().collect();
        self
    }

    /// Stop each pass between two checkpoints once `deadline` is past.
    pub fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        self.deadline = deadline;
    }

    /// Without fsync (tests).
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    pub fn target(&self) -> &LogTarget {
        &self.target
    }

    /// Integrates every petition's pending events. A petition that fails is reported in the
    /// error and retried from disk at the next pass; the others go on.
    pub async fn run_once(&mut self) -> anyhow::Result<Pass> {
        let mut pass = Pass::default();
        let mut failed = Vec::new();
        let mut slugs = self.store.log_petitions().await?;
        slugs.extend(self.petitions.iter().cloned());
        slugs.sort();
        slugs.dedup();
        for slug in slugs {
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
            None => self.open(slug).await?,
        };
        let mut added = 0;
        // In the bucket one read is one checkpoint, so that a deadline falls between two.
        let batch = usize::try_from(seq.max_batch).map_or(BATCH, |b| b.min(BATCH));
        loop {
            if self
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
            {
                break;
            }
            let (events, total) = self.store.log_events(slug, seq.size(), batch).await?;
            anyhow::ensure!(
                total >= seq.size(),
                "the log holds {} entries but the store only {total} events: refusing to go on \
                 (was the database replaced?)",
                seq.size()
            );
            if events.is_empty() {
                break;
            }
            let full = events.len() == batch;
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

    /// Opens a petition's log where the target keeps it (checking its checkpoint and tiles)
    /// and signs its empty checkpoint if it has none.
    async fn open(&self, slug: &str) -> anyhow::Result<Log> {
        let origin = cahier_tlog::checkpoint::origin(&self.base_url, slug);
        let key = self.key.clone();
        let files: Box<dyn LogFiles> = match &self.target {
            LogTarget::Folder(dir) => {
                let folder = log_folder(dir, slug);
                let durable = self.durable;
                tokio::task::spawn_blocking(move || {
                    let mut dir = LogDir::open(&folder)?;
                    dir.set_durable(durable);
                    anyhow::Ok(Box::new(dir) as Box<dyn LogFiles>)
                })
                .await
                .context("the log task panicked")??
            }
            #[cfg(feature = "s3")]
            LogTarget::Bucket(bucket) => {
                Box::new(crate::log_bucket::BucketLog::open(bucket.clone(), slug).await?)
            }
        };
        #[cfg(feature = "s3")]
        let bucket = matches!(self.target, LogTarget::Bucket(_));
        tokio::task::spawn_blocking(move || {
            let mut seq = Sequencer::open(files, key, &origin)?;
            #[cfg(feature = "s3")]
            if bucket {
                seq.max_batch = BUCKET_BATCH;
            }
            seq.publish_empty()?;
            anyhow::Ok(seq)
        })
        .await
        .context("the log task panicked")?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::NewSignature;

    fn sig(h: &str) -> NewSignature {
        NewSignature {
            petition: "ecole".into(),
            email_hash: h.into(),
            email_domain: "example.org".into(),
            ip_hash: String::new(),
            prefix_hash: String::new(),
            network: String::new(),
            name_hash: String::new(),
            sealed: Vec::new(),
            lang: "fr".into(),
            public: false,
            newsletter: false,
            hold_reason: None,
            flags: Vec::new(),
            created_at: 1_700_000_000,
            expires_at: 1_800_000_000,
            budgets: Vec::new(),
            deferred_mail: None,
            listing: None,
            region: None,
        }
    }

    async fn confirm_many(store: &SqliteStore, from: usize, to: usize) {
        for i in from..to {
            let h = format!("h{i:04}");
            store.sign(&sig(&h)).await.unwrap();
            store.confirm("ecole", &h, 1_700_000_100).await.unwrap();
        }
    }

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().display().to_string();
                    out.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    /// A petition of the manifest has its log from the start: an empty signed checkpoint,
    /// which a later pass extends like any other.
    #[tokio::test]
    async fn a_petition_without_events_publishes_the_empty_log() {
        let tmp = tempfile::tempdir().unwrap();
        let store: Arc<SqliteStore> =
            Arc::new(SqliteStore::open(&tmp.path().join("s.sqlite3")).unwrap());
        let key = LogKey::generate();
        let dir = tmp.path().join("public");
        let task = || {
            let mut t = LogTask::new(store.clone(), dir.clone(), key.clone(), "https://p.example")
                .with_petitions(["ecole".to_string()]);
            t.set_durable(false);
            t
        };
        assert_eq!(task().run_once().await.unwrap(), Pass::default());
        let cp = log_folder(&dir, "ecole").join("checkpoint");
        let note = std::fs::read(&cp).unwrap();
        let opened = cahier_tlog::checkpoint::open(
            &note,
            &cahier_tlog::checkpoint::origin("https://p.example", "ecole"),
            &key.public(),
        )
        .unwrap();
        assert_eq!(opened.size, 0);
        // Reopened (a restart), then extended.
        let mut again = task();
        assert_eq!(again.run_once().await.unwrap(), Pass::default());
        assert_eq!(
            std::fs::read(&cp).unwrap(),
            note,
            "the empty checkpoint is not re-signed"
        );
        confirm_many(&store, 0, 3).await;
        assert_eq!(again.run_once().await.unwrap().added, 3);
        let text = String::from_utf8(std::fs::read(&cp).unwrap()).unwrap();
        assert_eq!(text.lines().nth(1), Some("3"));
    }

    /// Killed after writing a pass's tiles but before its checkpoint swap: the next task
    /// starts from the old checkpoint and ends byte for byte where an uninterrupted one does.
    #[tokio::test]
    async fn a_task_stopped_before_its_checkpoint_resumes_without_gap_or_duplicate() {
        let tmp = tempfile::tempdir().unwrap();
        let store: Arc<SqliteStore> =
            Arc::new(SqliteStore::open(&tmp.path().join("s.sqlite3")).unwrap());
        let key = LogKey::generate();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let task = |dir: &Path| {
            let mut t = LogTask::new(
                store.clone(),
                dir.to_path_buf(),
                key.clone(),
                "https://p.example",
            );
            t.set_durable(false);
            t
        };
        let (mut ta, mut tb) = (task(&a), task(&b));
        confirm_many(&store, 0, 300).await;
        assert_eq!(ta.run_once().await.unwrap().added, 300);
        let cp = log_folder(&a, "ecole").join("checkpoint");
        let first = std::fs::read(&cp).unwrap();
        confirm_many(&store, 300, 520).await;
        store.erase("ecole", "h0007", 1_700_000_200).await.unwrap();
        assert_eq!(ta.run_once().await.unwrap().added, 221);
        // The state a kill before the second checkpoint's rename leaves.
        std::fs::write(&cp, &first).unwrap();
        let mut resumed = task(&a);
        assert_eq!(resumed.run_once().await.unwrap().added, 221);
        assert_eq!(resumed.run_once().await.unwrap(), Pass::default());
        // The same events in one pass give the same bytes.
        assert_eq!(tb.run_once().await.unwrap().added, 521);
        // (The resumed folder also keeps the first pass's partial tiles, as the spec allows.)
        // Receipts carry the checkpoint of the batch that integrated them, so they follow the
        // batch boundaries: the same paths on both sides, each a proof that verifies.
        let resumed_files = files(&log_folder(&a, "ecole"));
        let receipt = |f: &(String, Vec<u8>)| f.0.starts_with("receipt/");
        let origin = cahier_tlog::checkpoint::origin("https://p.example", "ecole");
        let mut receipts = 0;
        for f in files(&log_folder(&b, "ecole")) {
            if receipt(&f) {
                let mine = resumed_files.iter().find(|r| r.0 == f.0);
                let mine = mine.unwrap_or_else(|| panic!("{} missing after the resume", f.0));
                let proof = cahier_tlog::proof::TlogProof::parse(&mine.1).unwrap();
                proof.verify(&origin, &key.public()).unwrap();
                receipts += 1;
            } else {
                assert!(resumed_files.contains(&f), "{} differs", f.0);
            }
        }
        assert_eq!(receipts, 520, "a receipt per counted entry");
        let text = String::from_utf8(std::fs::read(&cp).unwrap()).unwrap();
        assert_eq!(text.lines().nth(1), Some("521"));
        // A log ahead of the store (another database) is refused.
        let other: Arc<SqliteStore> =
            Arc::new(SqliteStore::open(&tmp.path().join("other.sqlite3")).unwrap());
        other.sign(&sig("x")).await.unwrap();
        other.confirm("ecole", "x", 1_700_000_100).await.unwrap();
        let mut wrong = LogTask::new(other, a.clone(), key.clone(), "https://p.example");
        let e = wrong.run_once().await.unwrap_err();
        assert!(format!("{e:#}").contains("refusing"), "{e:#}");
    }
}
