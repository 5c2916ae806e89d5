//! The `Defer` units a signature took live in its row: a database from before (a `refunds`
//! table) gets them moved on open, and the first confirmation still gives them back.

use super::log_tests::{self, NOW, P};
use super::SqliteStore;
use crate::store::{Budget, NewSignature, OverBudget, Store};
use rusqlite::Connection;

fn net() -> Budget {
    Budget::new(format!("net:3600:n:{P}"), 1, 3_600).with(OverBudget::Defer)
}

/// The log tests' pending signature, taking one network unit.
fn sig(email_hash: &str) -> NewSignature {
    NewSignature {
        budgets: vec![net()],
        ..log_tests::sig(email_hash, None)
    }
}

fn budget_used(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT used FROM budgets WHERE key = ?1",
            [net().key],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn refunds_of_an_older_database_move_into_the_rows_and_are_still_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.sign(&sig("a")).await.unwrap();
    }
    assert_eq!(budget_used(&path), 1);
    // Back to the layout of before: a table of refunds, no column.
    {
        let conn = Connection::open(&path).unwrap();
        let (key, start): (String, i64) = conn
            .query_row(
                "SELECT json_extract(refunds, '$[0][0]'), json_extract(refunds, '$[0][1]')
                 FROM signatures WHERE email_hash = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(key, net().key);
        conn.execute_batch(
            "ALTER TABLE signatures DROP COLUMN refunds;
             CREATE TABLE refunds (petition TEXT NOT NULL, email_hash TEXT NOT NULL,
                 key TEXT NOT NULL, window_start INTEGER NOT NULL,
                 PRIMARY KEY (petition, email_hash, key)) WITHOUT ROWID;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO refunds VALUES (?1, 'a', ?2, ?3)",
            rusqlite::params![P, key, start],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    store.init().await.unwrap();
    let tables: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'refunds'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "the old table is gone");
    store.confirm(P, "a", NOW + 60).await.unwrap();
    assert_eq!(budget_used(&path), 0, "the confirmation gave the unit back");
    // Once only: a second confirmation gives nothing more.
    store.confirm(P, "a", NOW + 120).await.unwrap();
    store.sign(&sig("b")).await.unwrap();
    assert_eq!(budget_used(&path), 1);
    store.confirm(P, "b", NOW + 180).await.unwrap();
    store.confirm(P, "b", NOW + 240).await.unwrap();
    assert_eq!(budget_used(&path), 0);
    drop(store);

    // An older binary opened it since: it made the table again and wrote a refund there,
    // beside the column. The next open moves that one too.
    store_with_old_binary_row(&path, "c");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(budget_used(&path), 1);
    store.confirm(P, "c", NOW + 300).await.unwrap();
    assert_eq!(
        budget_used(&path),
        0,
        "the older binary's refund was given back"
    );
}

/// What a binary of before does on a sign: the budget taken, the refund in its own table.
fn store_with_old_binary_row(path: &std::path::Path, email_hash: &str) {
    let conn = Connection::open(path).unwrap();
    let start = NOW - NOW % 3_600;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS refunds (petition TEXT NOT NULL, email_hash TEXT NOT NULL,
             key TEXT NOT NULL, window_start INTEGER NOT NULL,
             PRIMARY KEY (petition, email_hash, key)) WITHOUT ROWID;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO signatures (petition, email_hash, email_domain, ip_hash, prefix_hash, name_hash,
             sealed, lang, public, newsletter, status, flags, created_at, expires_at)
         VALUES (?1, ?2, 'example.org', 'ip', 'prefix', 'name', x'01', 'fr', 0, 0, 'pending', '[]', ?3, ?4)",
        rusqlite::params![P, email_hash, NOW, NOW + 86_400],
    )
    .unwrap();
    conn.execute(
        "UPDATE budgets SET used = used + 1 WHERE key = ?1",
        [net().key],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO refunds VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![P, email_hash, net().key, start],
    )
    .unwrap();
}
