//! The embedded store: one SQLite file in WAL mode (`.cahier/signatures.sqlite3` by default).
//!
//! Every state change and its counter change commit in one transaction; confirm and erase
//! commit with `synchronous=FULL` (fsync of the WAL), so a confirmed signature survives a
//! kill -9 or a power cut; new pending signatures commit with `NORMAL` (they survive a
//! process crash, and the signer can simply sign again after a power cut). Erased data is
//! overwritten (`secure_delete`) and the WAL truncated, so it is gone from the files' bytes.
//! Writes run on one writer thread that commits queued changes together (`sqlite_writer.rs`);
//! reads run on tokio's blocking pool.

use super::{
    AuditEvent, Budget, ConfirmOutcome, Count, EraseOutcome, NewSignature, SignOutcome,
    SignatureRecord, Status, Store,
};
use anyhow::Context;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// `AdminStore` for this store (a child module: it shares the connections and helpers).
#[path = "sqlite_admin.rs"]
mod admin;
#[path = "sqlite_writer.rs"]
mod writer;

use writer::{Durability, Writer};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS signatures (
    petition TEXT NOT NULL,
    email_hash TEXT NOT NULL,
    email_domain TEXT NOT NULL,
    ip_hash TEXT NOT NULL,
    prefix_hash TEXT NOT NULL,
    network TEXT NOT NULL DEFAULT '',
    name_hash TEXT NOT NULL,
    sealed BLOB NOT NULL,
    lang TEXT NOT NULL,
    public INTEGER NOT NULL,
    newsletter INTEGER NOT NULL,
    status TEXT NOT NULL,
    hold_reason TEXT,
    flags TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER,
    expires_at INTEGER,
    PRIMARY KEY (petition, email_hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS signatures_expiry ON signatures (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (
    petition TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS budgets (
    key TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    petition TEXT NOT NULL,
    email_hash TEXT NOT NULL,
    event TEXT NOT NULL,
    at INTEGER NOT NULL,
    detail TEXT NOT NULL
);
";

pub struct SqliteStore {
    path: PathBuf,
    /// One writer thread (SQLite serialises writes anyway; it commits in groups) and one reader
    /// (WAL readers never block).
    writer: Writer,
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn connect(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("while opening SQLite database {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Brings a database created by an older version to [`SCHEMA`]: columns added since are added
/// with their default (records signed before keep an empty `network`). Idempotent.
fn migrate(conn: &Connection) -> anyhow::Result<()> {
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('signatures')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if !columns.iter().any(|c| c == "network") {
        conn.execute_batch("ALTER TABLE signatures ADD COLUMN network TEXT NOT NULL DEFAULT ''")
            .context("while adding the network column")?;
    }
    Ok(())
}

fn status_from(s: &str) -> anyhow::Result<Status> {
    Ok(match s {
        "pending" => Status::Pending,
        "confirmed" => Status::Confirmed,
        "held" => Status::Held,
        "confirmed_held" => Status::ConfirmedHeld,
        "invalidated" => Status::Invalidated,
        "erased" => Status::Erased,
        other => anyhow::bail!("unknown signature status {other:?} in the database"),
    })
}

/// Pending and held signatures expire; the others are kept until retention.
fn is_expired(status: Status, expires_at: Option<i64>, now: i64) -> bool {
    matches!(status, Status::Pending | Status::Held) && expires_at.is_some_and(|t| t <= now)
}

fn audit(
    tx: &Connection,
    petition: &str,
    email_hash: &str,
    event: &str,
    at: i64,
    detail: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (petition, email_hash, event, at, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![petition, email_hash, event, at, detail])?;
    Ok(())
}

fn bump_counter(tx: &Connection, petition: &str, delta: i64, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO counters (petition, count, updated_at) VALUES (?1, MAX(?2, 0), ?3)
         ON CONFLICT (petition) DO UPDATE SET count = MAX(count + ?2, 0), updated_at = ?3",
    )?
    .execute(params![petition, delta, now])?;
    Ok(())
}

/// Units used of `budget` in the window containing `now`.
fn budget_used(tx: &Connection, budget: &Budget, now: i64) -> rusqlite::Result<(i64, u32)> {
    let window = budget.window_secs.max(1) as i64;
    let start = now.div_euclid(window) * window;
    let row: Option<(i64, u32)> = tx
        .prepare_cached("SELECT window_start, used FROM budgets WHERE key = ?1")?
        .query_row(params![budget.key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok((
        start,
        row.filter(|(s, _)| *s == start)
            .map(|(_, u)| u)
            .unwrap_or(0),
    ))
}

fn budget_take(tx: &Connection, key: &str, start: i64, used: u32) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO budgets (key, window_start, used) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET window_start = ?2, used = ?3",
    )?
    .execute(params![key, start, used + 1])?;
    Ok(())
}

fn row_status(
    tx: &Connection,
    petition: &str,
    email_hash: &str,
) -> anyhow::Result<Option<(Status, Option<i64>)>> {
    let row: Option<(String, Option<i64>)> = tx
        .prepare_cached(
            "SELECT status, expires_at FROM signatures WHERE petition = ?1 AND email_hash = ?2",
        )?
        .query_row(params![petition, email_hash], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    row.map(|(s, e)| Ok((status_from(&s)?, e))).transpose()
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("while creating {}", dir.display()))?;
        }
        let writer = connect(path)?;
        writer
            .execute_batch(SCHEMA)
            .with_context(|| format!("while creating the tables of {}", path.display()))?;
        migrate(&writer).with_context(|| format!("while migrating {}", path.display()))?;
        let reader = connect(path)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Writer::start(writer, &path.display().to_string())?,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write transactions committed (or failed) so far; fewer than the writes under load, as
    /// the writer commits queued changes together.
    pub fn write_transactions(&self) -> u64 {
        self.writer.batches()
    }

    /// Runs `f` in a transaction of the writer thread (see `sqlite_writer.rs`): all of it or
    /// nothing, and answered only once committed with `durability`.
    async fn write<T: Send + 'static>(
        &self,
        durability: Durability,
        f: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.writer.write(durability, f).await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let conn = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&guard)
        })
        .await
        .context("SQLite task panicked")?
    }

    /// Deletes pending and held signatures past their expiry; returns how many. Called by the
    /// server periodically and by `cahier admin`.
    pub async fn purge_expired_at(&self, now: i64) -> anyhow::Result<u64> {
        self.write(Durability::Normal, move |tx| {
            let n = tx.execute(
                "DELETE FROM signatures WHERE status IN ('pending', 'held') AND expires_at IS NOT NULL AND expires_at <= ?1",
                params![now],
            )?;
            if n > 0 {
                audit(tx, "*", "*", "purged", now, &format!("{n} expired unconfirmed signatures"))?;
            }
            Ok(n as u64)
        })
        .await
    }

    /// Number of confirmed records per petition, by scan (for the consistency checks).
    pub async fn recount(&self, petition: &str) -> anyhow::Result<u64> {
        let petition = petition.to_string();
        self.read(move |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM signatures WHERE petition = ?1 AND status = 'confirmed'",
                params![petition],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn purge_expired(&self, now: i64) -> anyhow::Result<u64> {
        self.purge_expired_at(now).await
    }

    async fn init(&self) -> anyhow::Result<()> {
        self.write(Durability::Full, |conn| {
            conn.execute_batch(SCHEMA)?;
            migrate(conn)
        })
        .await
    }

    async fn sign(&self, sig: &NewSignature) -> anyhow::Result<SignOutcome> {
        let sig = sig.clone();
        self.write(Durability::Normal, move |tx| {
            let now = sig.created_at;
            if let Some((status, expires)) = row_status(tx, &sig.petition, &sig.email_hash)? {
                if !is_expired(status, expires, now) {
                    return Ok(SignOutcome::Duplicate { status });
                }
                tx.execute(
                    "DELETE FROM signatures WHERE petition = ?1 AND email_hash = ?2",
                    params![sig.petition, sig.email_hash],
                )?;
                audit(tx, &sig.petition, &sig.email_hash, "expired", now, "")?;
            }
            let mut over_budget = None;
            for budget in &sig.budgets {
                let (start, used) = budget_used(tx, budget, now)?;
                if used >= budget.limit && over_budget.is_none() {
                    over_budget = Some(budget.key.clone());
                }
                budget_take(tx, &budget.key, start, used)?;
            }
            let status = if sig.hold_reason.is_some() || over_budget.is_some() {
                Status::Held
            } else {
                Status::Pending
            };
            let hold_reason = sig
                .hold_reason
                .clone()
                .or_else(|| over_budget.as_ref().map(|k| format!("over budget {k}")));
            tx.prepare_cached(
                "INSERT INTO signatures (petition, email_hash, email_domain, ip_hash, prefix_hash, name_hash,
                    sealed, lang, public, newsletter, status, hold_reason, flags, created_at, confirmed_at, expires_at,
                    network)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL, ?15, ?16)",
            )?
            .execute(
                params![
                    sig.petition, sig.email_hash, sig.email_domain, sig.ip_hash, sig.prefix_hash,
                    sig.name_hash, sig.sealed, sig.lang, sig.public, sig.newsletter, status.as_str(),
                    hold_reason, serde_json::to_string(&sig.flags)?, now, sig.expires_at,
                    sig.network,
                ],
            )?;
            audit(tx, &sig.petition, &sig.email_hash, "created", now, &sig.flags.join(","))?;
            if status == Status::Held {
                audit(tx, &sig.petition, &sig.email_hash, "held", now, hold_reason.as_deref().unwrap_or(""))?;
            }
            Ok(SignOutcome::Created { status, over_budget })
        })
        .await
        .context("while storing a signature")
    }

    async fn take_budget(&self, budget: &Budget, now: i64) -> anyhow::Result<bool> {
        let budget = budget.clone();
        self.write(Durability::Normal, move |tx| {
            let (start, used) = budget_used(tx, &budget, now)?;
            if used >= budget.limit {
                return Ok(false);
            }
            budget_take(tx, &budget.key, start, used)?;
            Ok(true)
        })
        .await
    }

    async fn confirm(
        &self,
        petition: &str,
        email_hash: &str,
        now: i64,
    ) -> anyhow::Result<ConfirmOutcome> {
        let (petition, email_hash) = (petition.to_string(), email_hash.to_string());
        // Durable: the signer is told the signature counts only once it is fsynced.
        self.write(Durability::Full, move |tx| {
            let Some((status, expires)) = row_status(tx, &petition, &email_hash)? else {
                return Ok(ConfirmOutcome::NotFound);
            };
            if is_expired(status, expires, now) {
                return Ok(ConfirmOutcome::NotFound);
            }
            let next = match status.on_confirm() {
                Ok(next) => next,
                Err(answer) => return Ok(answer),
            };
            tx.execute(
                "UPDATE signatures SET status = ?3, confirmed_at = ?4, expires_at = NULL
                 WHERE petition = ?1 AND email_hash = ?2",
                params![petition, email_hash, next.as_str(), now],
            )?;
            if next == Status::Confirmed {
                bump_counter(tx, &petition, 1, now)?;
            }
            audit(tx, &petition, &email_hash, "confirmed", now, next.as_str())?;
            Ok(ConfirmOutcome::Confirmed { status: next })
        })
        .await
        .context("while confirming a signature")
    }

    async fn erase(
        &self,
        petition: &str,
        email_hash: &str,
        now: i64,
    ) -> anyhow::Result<EraseOutcome> {
        let (petition, email_hash) = (petition.to_string(), email_hash.to_string());
        // The wipe: old page images still hold the data until the WAL is checkpointed and cut.
        self.write(Durability::FullAndWipe, move |tx| {
            let Some((status, _)) = row_status(tx, &petition, &email_hash)? else {
                return Ok(EraseOutcome::NotFound);
            };
            if status == Status::Erased {
                return Ok(EraseOutcome::NotFound);
            }
            let was_counted = status == Status::Confirmed;
            // The row stays (pseudonymous hash only) so the same address cannot be re-used
            // by whoever abused it; everything personal is overwritten.
            tx.execute(
                "UPDATE signatures SET status = 'erased', sealed = x'', ip_hash = '', prefix_hash = '',
                    network = '', name_hash = '', email_domain = '', flags = '[]', hold_reason = NULL, public = 0,
                    newsletter = 0, expires_at = NULL
                 WHERE petition = ?1 AND email_hash = ?2",
                params![petition, email_hash],
            )?;
            if was_counted {
                bump_counter(tx, &petition, -1, now)?;
            }
            audit(tx, &petition, &email_hash, "erased", now, status.as_str())?;
            Ok(EraseOutcome::Erased { was_counted })
        })
        .await
        .context("while erasing a signature")
    }

    async fn count(&self, petition: &str) -> anyhow::Result<Count> {
        let petition = petition.to_string();
        self.read(move |conn| {
            let row: Option<(i64, i64)> = conn
                .query_row(
                    "SELECT count, updated_at FROM counters WHERE petition = ?1",
                    params![petition],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (count, updated_at) = row.unwrap_or((0, 0));
            Ok(Count {
                count: count.max(0) as u64,
                updated_at,
            })
        })
        .await
    }

    async fn audit(&self, event: &AuditEvent) -> anyhow::Result<()> {
        let e = event.clone();
        self.write(Durability::Normal, move |conn| {
            Ok(audit(
                conn,
                &e.petition,
                &e.email_hash,
                &e.event,
                e.at,
                &e.detail,
            )?)
        })
        .await
    }

    async fn get(
        &self,
        petition: &str,
        email_hash: &str,
    ) -> anyhow::Result<Option<SignatureRecord>> {
        let (petition, email_hash) = (petition.to_string(), email_hash.to_string());
        let now = crate::now();
        self.read(move |conn| {
            let rec = conn
                .query_row(
                    "SELECT petition, email_hash, email_domain, ip_hash, prefix_hash, name_hash, sealed, lang,
                        public, newsletter, status, hold_reason, flags, created_at, confirmed_at, expires_at,
                        network
                     FROM signatures WHERE petition = ?1 AND email_hash = ?2",
                    params![petition, email_hash],
                    |r| {
                        Ok((
                            SignatureRecord {
                                petition: r.get(0)?,
                                email_hash: r.get(1)?,
                                email_domain: r.get(2)?,
                                ip_hash: r.get(3)?,
                                prefix_hash: r.get(4)?,
                                network: r.get(16)?,
                                name_hash: r.get(5)?,
                                sealed: r.get(6)?,
                                lang: r.get(7)?,
                                public: r.get(8)?,
                                newsletter: r.get(9)?,
                                status: Status::Pending,
                                hold_reason: r.get(11)?,
                                flags: Vec::new(),
                                created_at: r.get(13)?,
                                confirmed_at: r.get(14)?,
                                expires_at: r.get(15)?,
                            },
                            r.get::<_, String>(10)?,
                            r.get::<_, String>(12)?,
                        ))
                    },
                )
                .optional()?;
            let Some((mut rec, status, flags)) = rec else {
                return Ok(None);
            };
            rec.status = status_from(&status)?;
            rec.flags = serde_json::from_str(&flags).unwrap_or_default();
            if is_expired(rec.status, rec.expires_at, now) {
                return Ok(None);
            }
            Ok(Some(rec))
        })
        .await
    }
}
