//! `AdminStore` for [`SqliteStore`]: the organizer's scans, bulk status changes, recount, purge
//! and audit log. A child module of `sqlite` so that it shares its connections and helpers.
//!
//! Scans read through the reader connection (WAL: never blocks the sign path); every change goes
//! through the writer thread, each call in one transaction (all of it or nothing) with its
//! counter changes and audit events, committed with `synchronous=FULL`, so a crash mid-batch
//! leaves counts equal to the confirmed records.

use super::{
    audit, bump_counter, count_signer, is_expired, log_counted, log_event, log_uncounted,
    status_from, Durability, SqliteStore,
};
use crate::store::admin::{AdminStore, Criteria, OfflineAdded, OfflineBatch, OfflineWithdrawn};
use crate::store::{AuditEvent, Count, CountDelta, SignatureRecord, Status};
use async_trait::async_trait;
use cahier_tlog::{Commitment, Entry, Reason, ReceiptSecret};
use rusqlite::{params, params_from_iter, types::Value, Connection, OptionalExtension};

const COLUMNS: &str = "petition, email_hash, email_domain, ip_hash, prefix_hash, name_hash, sealed,
    lang, public, newsletter, status, hold_reason, flags, created_at, confirmed_at, expires_at, network";

fn record_from(r: &rusqlite::Row<'_>) -> anyhow::Result<SignatureRecord> {
    let status: String = r.get(10)?;
    let flags: String = r.get(12)?;
    Ok(SignatureRecord {
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
        status: status_from(&status)?,
        hold_reason: r.get(11)?,
        flags: serde_json::from_str(&flags).unwrap_or_default(),
        created_at: r.get(13)?,
        confirmed_at: r.get(14)?,
        expires_at: r.get(15)?,
    })
}

/// The indexable part of the criteria as SQL (petition, time window, statuses); the rest is
/// checked with [`Criteria::matches`] on each row.
fn where_clause(c: &Criteria) -> (String, Vec<Value>) {
    let mut conds = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(p) = &c.petition {
        args.push(Value::Text(p.clone()));
        conds.push(format!("petition = ?{}", args.len()));
    }
    if let Some(f) = c.from {
        args.push(Value::Integer(f));
        conds.push(format!("created_at >= ?{}", args.len()));
    }
    if let Some(t) = c.to {
        args.push(Value::Integer(t));
        conds.push(format!("created_at < ?{}", args.len()));
    }
    if let Some(h) = &c.email_hash {
        args.push(Value::Text(h.clone()));
        conds.push(format!("email_hash = ?{}", args.len()));
    }
    if !c.statuses.is_empty() {
        let mut list = Vec::new();
        for s in &c.statuses {
            args.push(Value::Text(s.as_str().to_string()));
            list.push(format!("?{}", args.len()));
        }
        conds.push(format!("status IN ({})", list.join(", ")));
    }
    if conds.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", conds.join(" AND ")), args)
    }
}

/// One signature from a status in `from` to `to`, with its count and audit event.
fn set_one(
    tx: &Connection,
    petition: &str,
    email_hash: &str,
    from: &[Status],
    to: Status,
    detail: &str,
    now: i64,
) -> anyhow::Result<u64> {
    let Some((status, expires)) = super::row_status(tx, petition, email_hash)? else {
        return Ok(0);
    };
    if is_expired(status, expires, now) || !from.contains(&status) || status == to {
        return Ok(0);
    }
    // Approved back to pending or still held: it keeps expiring unless confirmed; any other
    // state is kept as a record.
    let sql = if matches!(to, Status::Pending | Status::Held) {
        "UPDATE signatures SET status = ?3 WHERE petition = ?1 AND email_hash = ?2"
    } else {
        "UPDATE signatures SET status = ?3, expires_at = NULL WHERE petition = ?1 AND email_hash = ?2"
    };
    tx.execute(sql, params![petition, email_hash, to.as_str()])?;
    let delta = i64::from(to == Status::Confirmed) - i64::from(status == Status::Confirmed);
    if delta != 0 {
        count_signer(tx, petition, email_hash, delta, now)?;
    }
    // The log follows the count in the same transaction: counted again with a new commitment,
    // or uncounted with the reason (an erasure, else an organizer's invalidation).
    if delta > 0 {
        log_counted(tx, petition, email_hash, now)?;
    } else if delta < 0 {
        let reason = if to == Status::Erased {
            Reason::Erased
        } else {
            Reason::Invalidated
        };
        log_uncounted(tx, petition, email_hash, reason, now)?;
    }
    audit(tx, petition, email_hash, to.as_str(), now, detail)?;
    Ok(1)
}

/// One held signature released: confirmed-held → confirmed (counted), held → pending; the hold
/// reason goes. 1 if it changed.
fn release_one(
    tx: &Connection,
    petition: &str,
    email_hash: &str,
    detail: &str,
    now: i64,
) -> anyhow::Result<u64> {
    let Some((status, expires)) = super::row_status(tx, petition, email_hash)? else {
        return Ok(0);
    };
    let to = match status {
        Status::ConfirmedHeld => Status::Confirmed,
        Status::Held => Status::Pending,
        _ => return Ok(0),
    };
    if is_expired(status, expires, now) {
        return Ok(0);
    }
    // A pending one keeps expiring unless confirmed; a confirmed one is kept.
    let sql = if to == Status::Pending {
        "UPDATE signatures SET status = ?3, hold_reason = NULL WHERE petition = ?1 AND email_hash = ?2"
    } else {
        "UPDATE signatures SET status = ?3, hold_reason = NULL, expires_at = NULL
         WHERE petition = ?1 AND email_hash = ?2"
    };
    tx.execute(sql, params![petition, email_hash, to.as_str()])?;
    if to == Status::Confirmed {
        count_signer(tx, petition, email_hash, 1, now)?;
        // Released after review: it counts, with a new counted entry (its receipt secret is
        // drawn and dropped here: the signer's receipt came with the first confirmation).
        log_counted(tx, petition, email_hash, now)?;
    }
    audit(tx, petition, email_hash, "released", now, detail)?;
    Ok(1)
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn scan(
        &self,
        criteria: &Criteria,
        visit: &mut (dyn FnMut(SignatureRecord) + Send),
    ) -> anyhow::Result<()> {
        let (clause, args) = where_clause(criteria);
        let sql = format!("SELECT {COLUMNS} FROM signatures{clause}");
        let now = crate::now();
        // Read in one go on the blocking pool, then visit here (the visitor is not 'static).
        let records = self
            .read(move |conn| {
                let mut stmt = conn.prepare(&sql)?;
                let mut rows = stmt.query(params_from_iter(args))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let r = record_from(row)?;
                    if !is_expired(r.status, r.expires_at, now) {
                        out.push(r);
                    }
                }
                Ok(out)
            })
            .await?;
        for r in records {
            if criteria.matches(&r) {
                visit(r);
            }
        }
        Ok(())
    }

    async fn set_status(
        &self,
        petition: &str,
        email_hashes: &[String],
        from: &[Status],
        to: Status,
        audit_detail: &str,
        now: i64,
    ) -> anyhow::Result<u64> {
        anyhow::ensure!(
            email_hashes.len() <= 500,
            "at most 500 signatures per call, got {}",
            email_hashes.len()
        );
        let petition = petition.to_string();
        let hashes = email_hashes.to_vec();
        let from = from.to_vec();
        let detail = audit_detail.to_string();
        self.write(Durability::Full, move |conn| {
            let mut changed = 0;
            for h in &hashes {
                changed += set_one(conn, &petition, h, &from, to, &detail, now)?;
            }
            Ok(changed)
        })
        .await
    }

    async fn release(
        &self,
        petition: &str,
        email_hashes: &[String],
        audit_detail: &str,
        now: i64,
    ) -> anyhow::Result<u64> {
        anyhow::ensure!(
            email_hashes.len() <= 500,
            "at most 500 signatures per call, got {}",
            email_hashes.len()
        );
        let petition = petition.to_string();
        let hashes = email_hashes.to_vec();
        let detail = audit_detail.to_string();
        self.write(Durability::Full, move |conn| {
            let mut changed = 0;
            for h in &hashes {
                changed += release_one(conn, &petition, h, &detail, now)?;
            }
            Ok(changed)
        })
        .await
    }

    async fn recount(&self, petition: &str) -> anyhow::Result<Count> {
        let petition = petition.to_string();
        let now = crate::now();
        self.write(Durability::Full, move |tx| {
            let (signers, offline, last): (i64, i64, i64) = tx.query_row(
                "SELECT COUNT(*), COALESCE(MAX(confirmed_at), 0),
                        (SELECT COALESCE(SUM(signatures), 0) FROM offline_batches
                         WHERE petition = ?1 AND withdrawn_at IS NULL)
                 FROM signatures WHERE petition = ?1 AND status = 'confirmed'",
                params![petition],
                |r| Ok((r.get(0)?, r.get(2)?, r.get(1)?)),
            )?;
            let n = signers + offline;
            tx.execute(
                "INSERT INTO counters (petition, count, updated_at, offline, last_confirmed_at)
                   VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (petition) DO UPDATE SET count = ?2, updated_at = ?3, offline = ?4,
                   last_confirmed_at = MAX(last_confirmed_at, ?5)",
                params![petition, n, now, offline, last],
            )?;
            super::regions::recount(tx, &petition)?;
            let last_confirmed_at = tx.query_row(
                "SELECT last_confirmed_at FROM counters WHERE petition = ?1",
                params![petition],
                |r| r.get(0),
            )?;
            Ok(Count {
                count: n.max(0) as u64,
                updated_at: now,
                offline: offline.max(0) as u64,
                last_confirmed_at,
            })
        })
        .await
    }

    async fn add_offline(&self, batch: &OfflineBatch, now: i64) -> anyhow::Result<OfflineAdded> {
        batch.check()?;
        let b = batch.clone();
        self.write(Durability::Full, move |tx| {
            let existing: Option<(u32, Option<i64>)> = tx
                .query_row(
                    "SELECT signatures, withdrawn_at FROM offline_batches WHERE petition = ?1 AND id = ?2",
                    params![b.petition, b.id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match existing {
                Some((n, None)) if n == b.signatures => return Ok(OfflineAdded::AlreadyRecorded),
                Some((n, None)) => anyhow::bail!(
                    "batch {} of {} is already recorded with {n} signatures (withdraw it first to \
                     record another size)",
                    b.id,
                    b.petition
                ),
                Some((_, Some(_))) => anyhow::bail!(
                    "batch {} of {} was withdrawn: record the corrected batch under a new id",
                    b.id,
                    b.petition
                ),
                None => {}
            }
            let commitment = Commitment::new(&b.petition, &ReceiptSecret::random());
            tx.execute(
                "INSERT INTO offline_batches (petition, id, signatures, date, note, commitment, added_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![b.petition, b.id, b.signatures, b.date, b.note, commitment.0.to_vec(), now],
            )?;
            bump_counter(tx, &b.petition, CountDelta::Offline(i64::from(b.signatures)), now)?;
            log_event(tx, &b.petition, &Entry::offline(commitment, b.signatures, now))?;
            let detail = format!("batch {}: {} signatures of {}", b.id, b.signatures, b.date);
            audit(tx, &b.petition, &b.key_hash(), "offline_added", now, &detail)?;
            Ok(OfflineAdded::Added)
        })
        .await
    }

    async fn withdraw_offline(
        &self,
        petition: &str,
        id: &str,
        now: i64,
    ) -> anyhow::Result<OfflineWithdrawn> {
        let (petition, id) = (petition.to_string(), id.to_string());
        self.write(Durability::Full, move |tx| {
            let existing: Option<(u32, Vec<u8>, Option<i64>)> = tx
                .query_row(
                    "SELECT signatures, commitment, withdrawn_at FROM offline_batches
                     WHERE petition = ?1 AND id = ?2",
                    params![petition, id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((n, commitment, withdrawn)) = existing else {
                return Ok(OfflineWithdrawn::NotFound);
            };
            if withdrawn.is_some() {
                return Ok(OfflineWithdrawn::AlreadyWithdrawn);
            }
            let c = Commitment(
                commitment
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("a stored batch commitment is not 32 bytes"))?,
            );
            tx.execute(
                "UPDATE offline_batches SET withdrawn_at = ?3 WHERE petition = ?1 AND id = ?2",
                params![petition, id, now],
            )?;
            bump_counter(tx, &petition, CountDelta::Offline(-i64::from(n)), now)?;
            log_event(tx, &petition, &Entry::uncounted(c, Reason::Withdrawn, now))?;
            let key = OfflineBatch {
                petition: petition.clone(),
                id: id.clone(),
                signatures: n,
                date: String::new(),
                note: String::new(),
                added_at: 0,
                withdrawn_at: None,
            }
            .key_hash();
            audit(
                tx,
                &petition,
                &key,
                "offline_withdrawn",
                now,
                &format!("batch {id}: {n} signatures"),
            )?;
            Ok(OfflineWithdrawn::Withdrawn)
        })
        .await
    }

    async fn offline_batches(&self, petition: Option<&str>) -> anyhow::Result<Vec<OfflineBatch>> {
        let petition = petition.map(str::to_string);
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT petition, id, signatures, date, note, added_at, withdrawn_at
                 FROM offline_batches WHERE ?1 IS NULL OR petition = ?1 ORDER BY petition, id",
            )?;
            let rows = stmt.query_map(params![petition], |r| {
                Ok(OfflineBatch {
                    petition: r.get(0)?,
                    id: r.get(1)?,
                    signatures: r.get(2)?,
                    date: r.get(3)?,
                    note: r.get(4)?,
                    added_at: r.get(5)?,
                    withdrawn_at: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn suppression_counts(&self) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare("SELECT reason, COUNT(*) FROM suppressions GROUP BY reason")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn purge(&self, older_than: i64, now: i64) -> anyhow::Result<u64> {
        // The wipe: old page images still hold the data until the WAL is checkpointed and cut.
        self.write(Durability::FullAndWipe, move |tx| {
            let targets: Vec<(String, String)> = {
                let mut stmt = tx.prepare(
                    "SELECT petition, email_hash FROM signatures WHERE created_at < ?1
                     AND (length(sealed) > 0 OR ip_hash != '' OR prefix_hash != '' OR network != ''
                          OR name_hash != '' OR listing IS NOT NULL)",
                )?;
                let rows = stmt.query_map(params![older_than], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (p, h) in &targets {
                tx.execute(
                    "UPDATE signatures SET sealed = x'', ip_hash = '', prefix_hash = '', network = '',
                        name_hash = '', listing = NULL, listed_at = NULL
                     WHERE petition = ?1 AND email_hash = ?2",
                    params![p, h],
                )?;
                audit(tx, p, h, "purged", now, "retention")?;
            }
            Ok(targets.len() as u64)
        })
        .await
    }

    async fn audit_log(
        &self,
        petition: Option<&str>,
        since: i64,
    ) -> anyhow::Result<Vec<AuditEvent>> {
        let petition = petition.map(str::to_string);
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT petition, email_hash, event, at, detail FROM audit
                 WHERE at >= ?1 AND (?2 IS NULL OR petition = ?2) ORDER BY at, id",
            )?;
            let rows = stmt.query_map(params![since, petition], |r| {
                Ok(AuditEvent {
                    petition: r.get(0)?,
                    email_hash: r.get(1)?,
                    event: r.get(2)?,
                    at: r.get(3)?,
                    detail: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
