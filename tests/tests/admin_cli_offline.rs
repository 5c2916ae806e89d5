//! `cahier admin offline` (the real binary) on a SQLite store: paper batches added, declared
//! again, refused when malformed (the message names the option), withdrawn and listed; then
//! the sequencer integrates the store's log and a monitor's audit of it finds the batches as
//! offline entries and the same count as the store.

use cahier_function::log_task::LogTask;
use cahier_function::store::sqlite::SqliteStore;
use cahier_function::store::Store;
use cahier_tests::conformance;
use std::process::Command;
use std::sync::Arc;

fn admin(db: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(cahier_tests::server::cahier_binary())
        .args(["admin", "--store"])
        .arg(format!("sqlite:{}", db.display()))
        .arg("--json")
        .args(args)
        .env("CAHIER_PEPPER", "00".repeat(32))
        .env_remove("CAHIER_SECRETS_FILE")
        .env_remove("CAHIER_STORE")
        .output()
        .expect("running cahier admin");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_batches_count_once_and_show_in_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s.sqlite3");
    {
        let store = SqliteStore::open(&db).unwrap();
        let t = conformance::now();
        for i in 0..2 {
            let h = format!("{i:064x}");
            store
                .sign(&conformance::signature("ecole", &h, t))
                .await
                .unwrap();
            store.confirm("ecole", &h, t).await.unwrap();
        }
    }
    let add = |id: &str, n: &str, date: &str| {
        admin(
            &db,
            &[
                "offline",
                "add",
                "--petition",
                "ecole",
                "--id",
                id,
                "--signatures",
                n,
                "--date",
                date,
                "--note",
                "marché",
            ],
        )
    };
    let (ok, out) = add("marche-2026-11-28", "140", "2026-11-28");
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["added"], true, "{out}");
    let (ok, out) = add("marche-2026-11-28", "140", "2026-11-28");
    assert!(ok, "{out}");
    assert!(out.contains("\"added\": false"), "declared again: {out}");
    let (ok, out) = add("ecole-porte", "12", "28/11/2026");
    assert!(!ok && out.contains("--date"), "{out}");
    let (ok, out) = add("Ecole Porte", "12", "2026-11-28");
    assert!(!ok && out.contains("--id"), "{out}");
    let (ok, out) = add("ecole-porte", "0", "2026-11-28");
    assert!(!ok && out.contains("--signatures"), "{out}");
    let (ok, out) = add("ecole-porte", "12", "2026-11-29");
    assert!(ok, "{out}");
    let (ok, out) = admin(
        &db,
        &[
            "offline",
            "withdraw",
            "--petition",
            "ecole",
            "--id",
            "ecole-porte",
        ],
    );
    assert!(ok && out.contains("\"withdrawn\""), "{out}");
    let (ok, out) = admin(
        &db,
        &[
            "offline",
            "withdraw",
            "--petition",
            "ecole",
            "--id",
            "nowhere",
        ],
    );
    assert!(!ok && out.contains("not found"), "{out}");
    let (ok, out) = admin(&db, &["offline", "list", "--petition", "ecole"]);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["batches"].as_array().map(Vec::len), Some(2), "{out}");

    let store = Arc::new(SqliteStore::open(&db).unwrap());
    assert_eq!(store.count("ecole").await.unwrap().count, 2 + 140);
    let (ok, out) = admin(&db, &["recount", "--petition", "ecole"]);
    assert!(ok && out.contains("\"repaired\": false"), "{out}");

    let key = cahier_tlog::LogKey::generate();
    let dir = tmp.path().join("public");
    let mut task = LogTask::new(store.clone(), dir.clone(), key.clone(), "https://p.example");
    task.set_durable(false);
    assert_eq!(task.run_once().await.unwrap().added, 2 + 2 + 1);
    let (_, audit) = cahier_tests::log_folder::audit_log(
        &dir,
        "https://p.example",
        "ecole",
        &key.public_base64(),
        None,
    );
    assert!(audit.problems.is_empty(), "{:?}", audit.problems);
    let t = audit.tally;
    assert!(t.anomalies.is_empty(), "{:?}", t.anomalies);
    assert_eq!((t.offline_batches, t.offline_signatures), (2, 152));
    assert_eq!(t.offline_withdrawn, 12);
    assert_eq!(t.count, 142);
}

/// `cahier admin offline sync` records the batches the front matter declares, once; a batch
/// whose size was changed since is reported, exits non-zero and is left as recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_batches_are_synced_once_and_a_changed_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir(&site).unwrap();
    cahier_tests::serve::copy_example_site(&site);
    let db = tmp.path().join("s.sqlite3");
    {
        let store = SqliteStore::open(&db).unwrap();
        store.init().await.unwrap();
    }
    let source = site.join("content/noel-sans-geant/index.md");
    let original = std::fs::read_to_string(&source).unwrap();
    let declare_on = |date: &str, n: u32| {
        let text = original.replacen(
            "[[fields]]",
            &format!("[[offline]]\ndate = \"{date}\"\nsignatures = {n}\n\n[[fields]]"),
            1,
        );
        std::fs::write(&source, text).unwrap();
    };
    let declare = |n: u32| declare_on("2026-11-28", n);
    let sync_with = |extra: &[&str]| {
        let out = Command::new(cahier_tests::server::cahier_binary())
            .arg("--root")
            .arg(&site)
            .args(["admin", "--store"])
            .arg(format!("sqlite:{}", db.display()))
            .args(["--json", "offline", "sync"])
            .args(extra)
            .env("CAHIER_PEPPER", "00".repeat(32))
            .env_remove("CAHIER_SECRETS_FILE")
            .env_remove("CAHIER_STORE")
            .output()
            .expect("running cahier admin");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let v: serde_json::Value =
            serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}{err}"));
        (out.status.success(), v)
    };
    let sync = || sync_with(&[]);
    let counted = || async {
        let store = SqliteStore::open(&db).unwrap();
        let c = store.count("noel-sans-geant").await.unwrap();
        (c.count, c.offline)
    };
    // A batch dated after today is refused, and nothing is counted.
    let tomorrow_but_one = time::OffsetDateTime::now_utc().date() + time::Duration::days(2);
    declare_on(&tomorrow_but_one.to_string(), 230);
    let (ok, v) = sync();
    assert!(!ok, "{v}");
    assert!(
        v["refused"][0].as_str().unwrap().contains("after today"),
        "{v}"
    );
    assert_eq!(counted().await, (0, 0));
    // Over the cap: nothing recorded, and the message says how to go on.
    declare(230);
    let out = Command::new(cahier_tests::server::cahier_binary())
        .arg("--root")
        .arg(&site)
        .args(["admin", "--store"])
        .arg(format!("sqlite:{}", db.display()))
        .args(["offline", "sync", "--max-signatures", "229"])
        .env("CAHIER_PEPPER", "00".repeat(32))
        .env_remove("CAHIER_SECRETS_FILE")
        .env_remove("CAHIER_STORE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("230 signatures") && err.contains("--max-signatures 230"),
        "{err}"
    );
    assert_eq!(counted().await, (0, 0));
    // A dry run says what would happen and records nothing.
    let (ok, v) = sync_with(&["--dry-run"]);
    assert!(ok, "{v}");
    assert_eq!(
        v["would_add"],
        serde_json::json!(["noel-sans-geant/paper-2026-11-28"])
    );
    assert_eq!(v["signatures"], 230);
    assert_eq!(counted().await, (0, 0));
    let (ok, v) = sync();
    assert!(ok, "{v}");
    assert_eq!(
        v["added"],
        serde_json::json!(["noel-sans-geant/paper-2026-11-28"])
    );
    let (ok, v) = sync();
    assert!(
        ok && v["unchanged"] == 1 && v["added"].as_array().unwrap().is_empty(),
        "{v}"
    );
    declare(2300);
    let (ok, v) = sync_with(&["--dry-run"]);
    assert!(
        ok && v["refused"][0]
            .as_str()
            .unwrap()
            .contains("already recorded with 230"),
        "{v}"
    );
    let (ok, v) = sync();
    assert!(!ok, "a changed batch fails the sync: {v}");
    let refused = v["refused"][0].as_str().unwrap();
    assert!(
        refused.contains("content/noel-sans-geant/index.md")
            && refused.contains("already recorded with 230"),
        "{refused}"
    );
    assert_eq!(counted().await, (230, 230));
}
