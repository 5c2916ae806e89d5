//! The SQLite store records the transparency log's events in the transaction of each count
//! change (see `docs/transparency-log.md`, "Integration design").

use super::SqliteStore;
use crate::store::admin::AdminStore;
use crate::store::{ConfirmOutcome, EraseOutcome, NewSignature, Status, Store};
use cahier_tlog::tally::Counter;
use cahier_tlog::{Commitment, Entry, Event, Reason};
use rusqlite::{params, Connection};

pub(super) const P: &str = "ecole";
pub(super) const NOW: i64 = 1_700_000_000;

pub(super) fn sig(email_hash: &str, hold: Option<&str>) -> NewSignature {
    NewSignature {
        petition: P.into(),
        email_hash: email_hash.into(),
        email_domain: "example.org".into(),
        ip_hash: "ip".into(),
        prefix_hash: "prefix".into(),
        network: "203.0.113.0/24".into(),
        name_hash: "name".into(),
        sealed: vec![1, 2, 3],
        lang: "fr".into(),
        public: false,
        newsletter: false,
        hold_reason: hold.map(str::to_string),
        flags: Vec::new(),
        created_at: NOW,
        expires_at: NOW + 86_400,
        budgets: Vec::new(),
        deferred_mail: None,
        listing: None,
        region: None,
    }
}

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.sqlite3")).unwrap();
    store.init().await.unwrap();
    (dir, store)
}

async fn events(store: &SqliteStore) -> Vec<Entry> {
    let (events, total) = store.log_events(P, 0, 1000).await.unwrap();
    assert_eq!(events.len() as u64, total);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64, "dense numbering");
    }
    events.into_iter().map(|e| e.entry).collect()
}

fn commitment_of(store: &SqliteStore, email_hash: &str) -> Option<Vec<u8>> {
    let conn = Connection::open(store.path()).unwrap();
    conn.query_row(
        "SELECT commitment FROM signatures WHERE petition = ?1 AND email_hash = ?2",
        params![P, email_hash],
        |r| r.get(0),
    )
    .unwrap()
}

/// The log's count, recomputed as `cahier log verify` does.
fn tally(entries: &[Entry]) -> cahier_tlog::tally::Tally {
    let mut c = Counter::default();
    entries.iter().for_each(|e| c.add(e));
    c.finish()
}

#[tokio::test]
async fn confirm_erase_invalidate_and_release_record_their_events() {
    let (_dir, store) = store().await;
    for h in ["a", "b", "c", "d"] {
        store.sign(&sig(h, None)).await.unwrap();
    }
    store
        .sign(&sig("held", Some("protected domain")))
        .await
        .unwrap();
    store.sign(&sig("pending", None)).await.unwrap();

    // Confirm: counted, with the commitment of the secret handed back, kept on the row.
    let mut secrets = Vec::new();
    for h in ["a", "b", "c", "d"] {
        let (outcome, secret) = store.confirm_with_receipt(P, h, NOW + 10).await.unwrap();
        assert_eq!(
            outcome,
            ConfirmOutcome::Confirmed {
                status: Status::Confirmed
            }
        );
        let secret = secret.expect("a counted confirmation gives a receipt secret");
        let c = Commitment::new(P, &secret);
        assert_eq!(commitment_of(&store, h), Some(c.0.to_vec()));
        secrets.push(secret);
    }
    let log = events(&store).await;
    assert_eq!(log.len(), 4);
    for (e, s) in log.iter().zip(&secrets) {
        assert_eq!(e.event, Event::Counted);
        assert_eq!(e.commitment, Commitment::new(P, s));
        assert_eq!(e.hour, Entry::hour_of(NOW + 10));
    }
    // A second confirmation changes nothing and gives no secret; a held one is not counted.
    let (again, none) = store.confirm_with_receipt(P, "a", NOW + 20).await.unwrap();
    assert!(matches!(again, ConfirmOutcome::AlreadyConfirmed { .. }));
    assert!(none.is_none());
    let (held, none) = store
        .confirm_with_receipt(P, "held", NOW + 20)
        .await
        .unwrap();
    assert_eq!(
        held,
        ConfirmOutcome::Confirmed {
            status: Status::ConfirmedHeld
        }
    );
    assert!(none.is_none());
    assert_eq!(events(&store).await.len(), 4);

    // Erase of a counted one: uncounted (erased), cancelling its commitment, which leaves the row.
    assert_eq!(
        store.erase(P, "b", NOW + 30).await.unwrap(),
        EraseOutcome::Erased { was_counted: true }
    );
    assert_eq!(commitment_of(&store, "b"), None);
    // Erase of an uncounted one: nothing in the log.
    store.erase(P, "pending", NOW + 30).await.unwrap();
    // Invalidate one counted (and one already erased: nothing).
    let changed = store
        .set_status(
            P,
            &["c".into(), "b".into()],
            &[Status::Confirmed, Status::Erased],
            Status::Invalidated,
            "test",
            NOW + 40,
        )
        .await
        .unwrap();
    assert_eq!(changed, 2);
    // Release of the confirmed-held one: counted.
    assert_eq!(
        store
            .release(P, &["held".into()], "test", NOW + 50)
            .await
            .unwrap(),
        1
    );
    assert!(commitment_of(&store, "held").is_some());

    let log = events(&store).await;
    let kinds: Vec<Event> = log.iter().map(|e| e.event).collect();
    assert_eq!(
        kinds[4..],
        [
            Event::Uncounted(Reason::Erased),
            Event::Uncounted(Reason::Invalidated),
            Event::Counted,
        ]
    );
    assert_eq!(log[4].commitment, Commitment::new(P, &secrets[1]));
    assert_eq!(log[5].commitment, Commitment::new(P, &secrets[2]));
    let t = tally(&log);
    assert!(t.anomalies.is_empty(), "{:?}", t.anomalies);
    assert_eq!(t.count, store.count(P).await.unwrap().count);
    assert_eq!(t.count, 3, "a, d and the released one");
    assert_eq!(t.uncounted.values().sum::<u64>(), 2);

    // A signature invalidated then approved back counts again, with a new commitment.
    store
        .set_status(
            P,
            &["c".into()],
            &[Status::Invalidated],
            Status::Confirmed,
            "reinstated",
            NOW + 60,
        )
        .await
        .unwrap();
    let log = events(&store).await;
    assert_eq!(log.len(), 8);
    assert_eq!(log[7].event, Event::Counted);
    assert_ne!(log[7].commitment, log[5].commitment);
    assert_eq!(tally(&log).count, store.count(P).await.unwrap().count);

    // The receipt secrets are nowhere in the database's files.
    let mut bytes = std::fs::read(store.path()).unwrap();
    let wal = store.path().with_extension("sqlite3-wal");
    bytes.extend(std::fs::read(wal).unwrap_or_default());
    for s in &secrets {
        assert!(!bytes.windows(32).any(|w| w == s.0), "a secret was stored");
    }
}

#[tokio::test]
async fn a_failed_transaction_leaves_no_event() {
    let (_dir, store) = store().await;
    store.sign(&sig("a", None)).await.unwrap();
    store.sign(&sig("b", None)).await.unwrap();
    store.confirm(P, "b", NOW).await.unwrap();
    assert_eq!(events(&store).await.len(), 1);
    // The audit row is the last write of confirm, erase and set_status: failing it fails the
    // transaction after the log event was inserted.
    let conn = Connection::open(store.path()).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER fail_audit BEFORE INSERT ON audit
         BEGIN SELECT RAISE(ABORT, 'audit refused'); END;",
    )
    .unwrap();
    assert!(store.confirm(P, "a", NOW).await.is_err());
    assert!(store.erase(P, "b", NOW).await.is_err());
    assert!(store
        .set_status(
            P,
            &["b".into()],
            &[Status::Confirmed],
            Status::Invalidated,
            "",
            NOW
        )
        .await
        .is_err());
    assert_eq!(events(&store).await.len(), 1);
    assert_eq!(store.count(P).await.unwrap().count, 1);
    assert!(commitment_of(&store, "a").is_none());
    assert!(commitment_of(&store, "b").is_some());
    conn.execute_batch("DROP TRIGGER fail_audit").unwrap();
    store.confirm(P, "a", NOW).await.unwrap();
    let log = events(&store).await;
    assert_eq!(log.len(), 2);
    assert_eq!(tally(&log).count, 2);
}

#[tokio::test]
async fn an_older_database_gets_the_column_and_its_counted_signatures_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    {
        let store = SqliteStore::open(&path).unwrap();
        for h in ["a", "b", "c"] {
            store.sign(&sig(h, None)).await.unwrap();
        }
        store.confirm(P, "a", NOW).await.unwrap();
        store.confirm(P, "b", NOW + 7200).await.unwrap();
    }
    // Back to the schema of before the log: no column, no table.
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE log_events; ALTER TABLE signatures DROP COLUMN commitment;")
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    store.init().await.unwrap();
    let log = events(&store).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].hour, Entry::hour_of(NOW));
    assert_eq!(log[1].hour, Entry::hour_of(NOW + 7200));
    assert!(commitment_of(&store, "a").is_some());
    assert!(commitment_of(&store, "c").is_none());
    assert_eq!(tally(&log).count, store.count(P).await.unwrap().count);
    drop(store);
    // Idempotent: opening again adds nothing.
    let store = SqliteStore::open(&path).unwrap();
    store.init().await.unwrap();
    assert_eq!(events(&store).await.len(), 2);
    store.erase(P, "a", NOW + 9000).await.unwrap();
    let log = events(&store).await;
    assert_eq!(log[2].event, Event::Uncounted(Reason::Erased));
    assert_eq!(tally(&log).count, 1);
}

#[tokio::test]
async fn the_petitions_with_events_are_listed_each_once_in_order() {
    let (_dir, store) = store().await;
    assert!(store.log_petitions().await.unwrap().is_empty());
    for (petition, n) in [("zoo", 3), ("ecole", 2), ("a-b", 1)] {
        for i in 0..n {
            let h = format!("{petition}-{i}");
            store
                .sign(&NewSignature {
                    petition: petition.into(),
                    ..sig(&h, None)
                })
                .await
                .unwrap();
            store.confirm(petition, &h, NOW).await.unwrap();
        }
    }
    // A signature that never counted makes no event, and no petition.
    store
        .sign(&NewSignature {
            petition: "silence".into(),
            ..sig("s", None)
        })
        .await
        .unwrap();
    assert_eq!(
        store.log_petitions().await.unwrap(),
        ["a-b", "ecole", "zoo"]
    );
}
