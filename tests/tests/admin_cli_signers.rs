//! `cahier admin signers hide` (the real binary) on a SQLite store: the signer found by the
//! address they signed with (any spelling of it), taken off the public list once, still
//! counted; or by the name the list shows, read with the organizer's identity.

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

/// A name seen on the list, whose address the organizer does not know: every listed entry of
/// that name (any case or spacing) is found by reading the signatures with the organizer's
/// identity and taken off; the others stay, and every signature still counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizer_hides_every_entry_of_a_name_seen_on_the_list() {
    use age::secrecy::ExposeSecret;
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s.sqlite3");
    let identity = age::x25519::Identity::generate();
    let identity_file = tmp.path().join("age-identity.txt");
    std::fs::write(&identity_file, identity.to_string().expose_secret()).unwrap();
    let sealer = cahier_function::crypto::Sealer::new(&identity.to_public().to_string()).unwrap();
    let hasher = Hasher::new(&PEPPER).unwrap();
    // (name typed, on the list)
    let signers = [
        ("Ana Dupont", true),
        ("Insulte  Grossière", true),
        ("insulte grossière", true),
        ("INSULTE GROSSIÈRE", false),
    ];
    {
        let store = SqliteStore::open(&db).unwrap();
        let t = conformance::now();
        for (i, (name, listed)) in signers.iter().enumerate() {
            let hash = hasher.email(&format!("s{i}@example.org"));
            let mut sig = conformance::signature("ecole", &hash, t);
            sig.sealed = sealer
                .seal(&cahier_function::crypto::PersonalData {
                    name: name.to_string(),
                    email: format!("s{i}@example.org"),
                    fields: Default::default(),
                    lang: "fr".into(),
                    text_sha256: None,
                    consent_sha256: None,
                })
                .unwrap();
            sig.listing = listed.then(|| format!("entry {i}").into_bytes());
            store.sign(&sig).await.unwrap();
            store.confirm("ecole", &hash, t + i as i64).await.unwrap();
        }
        assert_eq!(store.listed("ecole", 0, 10).await.unwrap().len(), 3);
    }
    let hide_name = |name: &str| {
        let out = Command::new(cahier_tests::server::cahier_binary())
            .args(["admin", "--store"])
            .arg(format!("sqlite:{}", db.display()))
            .args(["--json", "signers", "hide", "--petition", "ecole", "--name"])
            .arg(name)
            .arg("--identity")
            .arg(&identity_file)
            .env("CAHIER_PEPPER", hex::encode(PEPPER))
            .env_remove("CAHIER_SECRETS_FILE")
            .env_remove("CAHIER_STORE")
            .output()
            .expect("running cahier admin");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let v: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.success(), v)
    };
    let (ok, v) = hide_name("insulte grossière");
    assert!(ok, "{v}");
    assert_eq!(
        (v["signatures_named"].clone(), v["hidden"].clone()),
        (3.into(), 2.into())
    );
    let (ok, v) = hide_name("Insulte Grossière");
    assert!(!ok && v["hidden"] == 0, "once: {v}");
    let store = SqliteStore::open(&db).unwrap();
    let left: Vec<_> = store
        .listed("ecole", 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.sealed)
        .collect();
    assert_eq!(left, [b"entry 0".to_vec()]);
    assert_eq!(store.count("ecole").await.unwrap().count, 4);
}
