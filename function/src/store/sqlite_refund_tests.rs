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
        let (key, signed_at): (String, i64) = conn
            .query_row(
                "SELECT json_extract(refunds, '$[0]'), created_at
                 FROM signatures WHERE email_hash = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(key, net().key, "the row lists the key it took");
        let start = signed_at - signed_at % 3_600;
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

/// A signature as the sign path builds it: the default budgets over hashed labels, its
/// personal data sealed to an age recipient, every hash of full length.
fn realistic(
    i: usize,
    hasher: &crate::crypto::Hasher,
    sealer: &crate::crypto::Sealer,
) -> NewSignature {
    let ip: std::net::IpAddr = format!("10.{}.{}.7", i % 256, i / 256).parse().unwrap();
    let domain = format!("d{i}.example");
    let personal = crate::crypto::PersonalData {
        name: format!("Camille Dupont-Lefèvre {i}"),
        email: format!("camille.dupont{i}@{domain}"),
        fields: Default::default(),
        lang: "fr".into(),
        text_sha256: Some("a".repeat(64)),
        consent_sha256: Some("b".repeat(64)),
    };
    NewSignature {
        petition: "noel-sans-amazon".into(),
        email_hash: hasher.email(&personal.email),
        email_domain: domain.clone(),
        ip_hash: hasher.ip(ip),
        prefix_hash: hasher.prefix(ip),
        network: crate::network::network_of(ip),
        name_hash: hasher.name(&personal.name),
        sealed: sealer.seal(&personal).unwrap(),
        flags: vec!["fast_fill".into()],
        budgets: crate::budgets::BudgetPolicy::default().budgets_for(
            "noel-sans-amazon",
            Some(ip),
            |label| hasher.budget(label),
            &domain,
        ),
        ..log_tests::sig("", None)
    }
}

/// A row that spills out of its B-tree page takes an overflow page to itself, one more page
/// written per signature (the sign rate fell by a fifth when the refunds listed full-length
/// keys with their windows). A realistic signature, refunds and all, stays within its page.
#[tokio::test]
async fn a_signature_with_its_refunds_stays_within_one_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.sqlite3");
    let store = SqliteStore::open(&path).unwrap();
    store.init().await.unwrap();
    let hasher = crate::crypto::Hasher::new(&[7; 32]).unwrap();
    let identity = age::x25519::Identity::generate();
    let sealer = crate::crypto::Sealer::new(&identity.to_public().to_string()).unwrap();
    // Bytes of the database file, all in it after a checkpoint.
    let bytes = || -> i64 {
        let conn = Connection::open(&path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        let size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        pages * size
    };
    let before = bytes();
    let n = 400;
    for i in 0..n {
        let sig = realistic(i, &hasher, &sealer);
        store.sign(&sig).await.unwrap();
    }
    let refunds: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT MIN(json_array_length(refunds)) FROM signatures",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(refunds, 4, "every row lists its four network units");
    let per_signature = (bytes() - before) / n as i64;
    // Within its page: the row (some 1.1 KB here) with the B-tree's slack, the budgets and the
    // audit, about 2 KB; spilling: 4 KB more per row (5.3 KB measured on 4 KiB pages).
    assert!(
        per_signature < 3_072,
        "{per_signature} bytes per signature: rows spill into overflow pages"
    );
}

/// A file made with 4 KiB pages and a rowid budgets table (every database before) gets its
/// budgets rebuilt without rowid and the larger pages when the store opens it, its rows and
/// counters intact; a file another process holds open is left
/// as it is (and still works).
#[tokio::test]
async fn an_older_file_gets_the_larger_pages_once_it_is_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small-pages.sqlite3");
    let page_size = |path: &std::path::Path| -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    };
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "page_size", 4096).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        // And the budgets as a rowid table, as they were.
        let rowid_budgets = super::SCHEMA.replace(
            "used INTEGER NOT NULL\n) WITHOUT ROWID;",
            "used INTEGER NOT NULL\n);",
        );
        assert_ne!(rowid_budgets, super::SCHEMA);
        conn.execute_batch(&rowid_budgets).unwrap();
        conn.execute(
            "INSERT INTO budgets VALUES ('dom:3600:example.org:p', ?1, 7)",
            [NOW - NOW % 3_600],
        )
        .unwrap();
    }
    assert_eq!(page_size(&path), 4096);
    // Held open by another process's read transaction: the store opens, the file stays as is.
    let holder = Connection::open(&path).unwrap();
    holder
        .execute_batch("BEGIN; SELECT COUNT(*) FROM signatures;")
        .unwrap();
    {
        let store = SqliteStore::open(&path).unwrap();
        store.sign(&sig("a")).await.unwrap();
    }
    assert_eq!(page_size(&path), 4096);
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(page_size(&path), super::PAGE_SIZE);
    let mode: String = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(
        budget_used(&path),
        1,
        "the budget taken before is still there"
    );
    let (sql, used): (String, i64) = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT (SELECT sql FROM sqlite_master WHERE name = 'budgets'), used FROM budgets
             WHERE key = 'dom:3600:example.org:p'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(sql.contains("WITHOUT ROWID"), "{sql}");
    assert_eq!(used, 7, "the older table's counters were copied");
    store.confirm(P, "a", NOW + 60).await.unwrap();
    assert_eq!(store.count(P).await.unwrap().count, 1);
    assert_eq!(budget_used(&path), 0);
}
