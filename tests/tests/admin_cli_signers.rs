//! `cahier admin signers hide` (the real binary) on a SQLite store: the signer found by the
//! address they signed with (any spelling of it), taken off the public list once, still
//! counted.

use cahier_function::crypto::Hasher;
use cahier_function::store::sqlite::SqliteStore;
use cahier_function::store::Store;
use cahier_tests::conformance;
use std::process::Command;

const PEPPER: [u8; 32] = [0; 32];

fn hide(db: &std::path::Path, email: &str) -> (bool, serde_json::Value) {
    let out = Command::new(cahier_tests::server::cahier_binary())
        .args(["admin", "--store"])
        .arg(format!("sqlite:{}", db.display()))
        .args([
            "--json",
            "signers",
            "hide",
            "--petition",
            "ecole",
            "--email",
            email,
        ])
        .env("CAHIER_PEPPER", hex::encode(PEPPER))
        .env_remove("CAHIER_SECRETS_FILE")
        .env_remove("CAHIER_STORE")
        .output()
        .expect("running cahier admin");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizer_takes_a_signer_off_the_list_and_the_signature_still_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s.sqlite3");
    let hash = Hasher::new(&PEPPER).unwrap().email("ana@example.org");
    {
        let store = SqliteStore::open(&db).unwrap();
        let t = conformance::now();
        let mut sig = conformance::signature("ecole", &hash, t);
        sig.listing = Some(b"sealed entry".to_vec());
        store.sign(&sig).await.unwrap();
        store.confirm("ecole", &hash, t).await.unwrap();
        assert_eq!(store.listed("ecole", 0, 10).await.unwrap().len(), 1);
    }
    let (ok, v) = hide(&db, "Ana@Example.org");
    assert!(ok && v["hidden"] == true, "{v}");
    let (ok, v) = hide(&db, "ana@example.org");
    assert!(!ok && v["hidden"] == false, "once: {v}");
    let store = SqliteStore::open(&db).unwrap();
    assert!(store.listed("ecole", 0, 10).await.unwrap().is_empty());
    assert_eq!(store.count("ecole").await.unwrap().count, 1);
}
