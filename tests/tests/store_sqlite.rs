//! The store conformance suite against `SqliteStore` (a real SQLite file in a temporary
//! directory), the same scenarios as `store_dynamodb.rs` runs on moto.

use cahier_function::store::{sqlite::SqliteStore, Store};
use cahier_tests::conformance;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_on_sqlite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("sigs.sqlite3"))?);
    store.init().await?;
    conformance::run_all(store).await
}

#[tokio::test]
async fn store_open_parses_the_setting_and_initialises() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("a.sqlite3").display());
    let store = cahier_function::store::open(&url).await?;
    assert_eq!(store.count("nothing-yet").await?.count, 0);
    let err = cahier_function::store::open("mysql:x")
        .await
        .err()
        .expect("unknown scheme refused")
        .to_string();
    assert!(err.contains("unknown store \"mysql\""), "{err}");
    Ok(())
}

/// A database written before signatures kept their network gains the column on open: old
/// records read with an empty network, new ones keep theirs.
#[tokio::test]
async fn a_database_without_the_network_column_is_migrated() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("old.sqlite3");
    {
        let old = rusqlite::Connection::open(&path)?;
        old.execute_batch(
            "CREATE TABLE signatures (
                petition TEXT NOT NULL, email_hash TEXT NOT NULL, email_domain TEXT NOT NULL,
                ip_hash TEXT NOT NULL, prefix_hash TEXT NOT NULL, name_hash TEXT NOT NULL,
                sealed BLOB NOT NULL, lang TEXT NOT NULL, public INTEGER NOT NULL,
                newsletter INTEGER NOT NULL, status TEXT NOT NULL, hold_reason TEXT,
                flags TEXT NOT NULL, created_at INTEGER NOT NULL, confirmed_at INTEGER,
                expires_at INTEGER, PRIMARY KEY (petition, email_hash)
            ) WITHOUT ROWID;
            INSERT INTO signatures VALUES ('noel', 'old', 'example.org', 'i', 'p', 'n', x'01',
                'fr', 0, 0, 'confirmed', NULL, '[]', 1, 2, NULL);",
        )?;
    }
    let store = SqliteStore::open(&path)?;
    store.init().await?;
    let old = store.get("noel", "old").await?.expect("old record kept");
    assert_eq!(old.network, "");
    assert_eq!(old.status, cahier_function::store::Status::Confirmed);
    let now = cahier_function::now();
    let sig = conformance::signature("noel", "new", now);
    store.sign(&sig).await?;
    let new = store.get("noel", "new").await?.expect("new record");
    assert_eq!(new.network, "203.0.113.0/24");
    drop(store);
    // Opening again is a no-op.
    let again = SqliteStore::open(&path)?;
    assert_eq!(
        again.get("noel", "new").await?.unwrap().network,
        "203.0.113.0/24"
    );
    Ok(())
}

/// Counters written before the open data gain the paper part of the count (from the batches)
/// and the time of the last confirmation (from the signatures) on open.
#[tokio::test]
async fn counters_without_the_paper_part_and_the_last_confirmation_are_migrated(
) -> anyhow::Result<()> {
    use cahier_function::store::admin::{AdminStore, OfflineBatch};
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("old.sqlite3");
    let now = cahier_function::now();
    {
        let store = SqliteStore::open(&path)?;
        store.init().await?;
        store
            .sign(&conformance::signature("noel", "a", now - 100))
            .await?;
        store.confirm("noel", "a", now - 50).await?;
        let batch = OfflineBatch {
            petition: "noel".into(),
            id: "marche".into(),
            signatures: 40,
            date: "2026-11-28".into(),
            note: String::new(),
            added_at: now,
            withdrawn_at: None,
        };
        store.add_offline(&batch, now).await?;
    }
    {
        let old = rusqlite::Connection::open(&path)?;
        old.execute_batch(
            "ALTER TABLE counters DROP COLUMN offline;
             ALTER TABLE counters DROP COLUMN last_confirmed_at;",
        )?;
    }
    let store = SqliteStore::open(&path)?;
    store.init().await?;
    let c = store.count("noel").await?;
    assert_eq!(
        (c.count, c.offline, c.last_confirmed_at),
        (41, 40, now - 50)
    );
    Ok(())
}
