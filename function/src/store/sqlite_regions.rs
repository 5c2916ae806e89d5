//! The counters by region on SQLite ([`crate::geography`]): a table `regions(petition, region,
//! n)` that moves with the count, in the same transaction, wherever a signer's signature starts
//! or stops counting ([`super::count_signer`]), so the published geography always adds up to
//! the signers counted there. The region itself is a column of the signature (`region`, a
//! country or French département code in clear, nothing finer), cleared on erasure.

use rusqlite::{params, Connection};
use std::collections::BTreeMap;

/// Adds the signature's `region` column and the `regions` table to a database from before
/// them (signatures stored before have no region, so the counters start at zero, which is
/// what they are). Idempotent.
pub(super) fn migrate(conn: &Connection, columns: &[String]) -> anyhow::Result<()> {
    use anyhow::Context;
    if !columns.iter().any(|c| c == "region") {
        conn.execute_batch("ALTER TABLE signatures ADD COLUMN region TEXT")
            .context("while adding the region column")?;
    }
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS regions (
             petition TEXT NOT NULL,
             region TEXT NOT NULL,
             n INTEGER NOT NULL,
             PRIMARY KEY (petition, region)
         ) WITHOUT ROWID",
    )
    .context("while creating the regions table")?;
    Ok(())
}

/// The signature's region counter moves by `delta` with the count (nothing for a signature
/// without a region). Never below zero, like the counter.
pub(super) fn follow_count(
    tx: &Connection,
    petition: &str,
    email_hash: &str,
    delta: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO regions (petition, region, n)
         SELECT petition, region, MAX(?3, 0) FROM signatures
         WHERE petition = ?1 AND email_hash = ?2 AND region IS NOT NULL
         ON CONFLICT (petition, region) DO UPDATE SET n = MAX(n + ?3, 0)",
    )?
    .execute(params![petition, email_hash, delta])?;
    Ok(())
}

/// The counters of `petition` above zero.
pub(super) fn read(conn: &Connection, petition: &str) -> rusqlite::Result<BTreeMap<String, u64>> {
    let mut stmt =
        conn.prepare_cached("SELECT region, n FROM regions WHERE petition = ?1 AND n > 0")?;
    let rows = stmt.query_map(params![petition], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    rows.map(|row| row.map(|(region, n)| (region, n.max(0) as u64)))
        .collect()
}

/// Sets the counters of `petition` to its confirmed records (`cahier admin recount`), inside
/// the recount's transaction.
pub(super) fn recount(tx: &Connection, petition: &str) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM regions WHERE petition = ?1", params![petition])?;
    tx.execute(
        "INSERT INTO regions (petition, region, n)
         SELECT petition, region, COUNT(*) FROM signatures
         WHERE petition = ?1 AND status = 'confirmed' AND region IS NOT NULL
         GROUP BY region",
        params![petition],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::log_tests::sig;
    use super::super::SqliteStore;
    use crate::store::Store;

    /// The erase link leaves no region on the row (nor anything else), and its counter goes
    /// down with the count; another signer's stays.
    #[tokio::test]
    async fn erasure_clears_the_region_and_its_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        let store = SqliteStore::open(&path).unwrap();
        for h in ["a", "b"] {
            let mut s = sig(h, None);
            s.region = Some("FR-2B".into());
            store.sign(&s).await.unwrap();
            store.confirm(&s.petition, h, s.created_at).await.unwrap();
        }
        let p = sig("a", None).petition;
        assert_eq!(store.regions(&p).await.unwrap()["FR-2B"], 2);
        store.erase(&p, "a", crate::now()).await.unwrap();
        assert_eq!(store.regions(&p).await.unwrap()["FR-2B"], 1);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let region: Option<String> = conn
            .query_row(
                "SELECT region FROM signatures WHERE email_hash = 'a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(region, None);
    }

    /// A database from before regions gains them on open, and its counters start at zero.
    #[test]
    fn an_older_database_gains_the_column_and_the_table() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE signatures (petition TEXT, email_hash TEXT)")
            .unwrap();
        super::migrate(&conn, &["petition".into(), "email_hash".into()]).unwrap();
        super::migrate(&conn, &["petition".into(), "region".into()]).unwrap();
        assert!(super::read(&conn, "p").unwrap().is_empty());
    }
}
