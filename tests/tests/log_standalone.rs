//! The transparency log of the standalone server (`cahier-function --log-dir`, SQLite): the
//! signing key comes from Secrets Manager (moto) like the other secrets, only its ARN in the
//! environment; confirmations reach the folder within an interval; the folder, read as an
//! outside monitor reads it, verifies under the manifest's public key and counts what the count
//! endpoint says; a restart after SIGKILL extends the same tree. A key that is not the
//! manifest's refuses to start.

use cahier_function::manifest::Manifest;
use cahier_tests::fixture::{self, SLUG};
use cahier_tests::flow::Api;
use cahier_tests::log_folder::{audit_log, size};
use cahier_tests::moto::{into_secrets_manager, Moto};
use cahier_tests::outbox::{read_dir, token};
use cahier_tests::server::{FunctionServer, ServerConfig};
use cahier_tlog::LogKey;
use std::path::Path;
use std::time::{Duration, Instant};

fn wait_for_size(dir: &Path, n: u64, server: &FunctionServer) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while size(dir, SLUG) != Some(n) {
        assert!(
            Instant::now() < deadline,
            "the log did not reach {n} entries (at {:?}):\n{}",
            size(dir, SLUG),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Signs `email` and confirms it from the mail the outbox received.
async fn sign_and_confirm(api: &Api, outbox: &Path, email: &str) {
    assert_eq!(api.sign(email).await.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mail = loop {
        if let Some(m) = read_dir(outbox).into_iter().find(|m| m.to.contains(email)) {
            break m;
        }
        assert!(Instant::now() < deadline, "no mail to {email}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let t = token(&mail.text, "confirm").expect("a confirm link");
    assert_eq!(api.confirm(&t).await.status(), 200);
}

struct Site {
    dir: tempfile::TempDir,
    manifest: std::path::PathBuf,
    base: String,
    port: u16,
    public: String,
    env: Vec<(String, String)>,
}

/// A manifest publishing `published`'s public key, and the function's secrets (with `seed` as
/// the log key) moved into moto's Secrets Manager.
async fn site(moto: &Moto, published: &LogKey, seed: &LogKey) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let (secrets, _) = fixture::secrets();
    let port = cahier_tests::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut manifest: Manifest =
        fixture::manifest(&base, secrets.age_recipient.as_deref().unwrap());
    manifest.site.log_public_key = Some(published.public_base64());
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let mut env = fixture::secrets_env(&secrets);
    env.push(("CAHIER_LOG_KEY".to_string(), seed.seed_base64()));
    let env = into_secrets_manager(moto, env).await;
    Site {
        manifest: path,
        base,
        port,
        public: published.public_base64(),
        env,
        dir,
    }
}

fn config(s: &Site) -> ServerConfig {
    let dir = s.dir.path();
    ServerConfig {
        dir: dir.to_path_buf(),
        port: s.port,
        manifest: s.manifest.clone(),
        store: format!("sqlite:{}", dir.join("signatures.sqlite3").display()),
        mailer: format!("outbox:{}", dir.join("outbox").display()),
        env: s.env.clone(),
        args: vec![
            "--log-dir".into(),
            dir.join("public").display().to_string(),
            "--log-interval".into(),
            "0.2".into(),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_log_is_signed_with_the_key_from_secrets_manager_and_counts_the_store() {
    let moto = Moto::start().expect("moto starts (run scripts/test.sh to create the venv)");
    let key = LogKey::generate();
    let s = site(&moto, &key, &key).await;
    // Only ARNs in the environment: the log key is a secret like the others.
    assert!(!s.env.iter().any(|(k, _)| k == "CAHIER_LOG_KEY"));
    assert!(s.env.iter().any(|(k, _)| k == "CAHIER_LOG_KEY_ARN"));

    let mut server = FunctionServer::start(config(&s));
    let public = s.dir.path().join("public");
    let outbox = s.dir.path().join("outbox");
    let api = Api::new(&server.base).slug(SLUG);
    for i in 0..3 {
        sign_and_confirm(&api, &outbox, &format!("journal{i}@example.org")).await;
    }
    wait_for_size(&public, 3, &server);
    let (first, a) = audit_log(&public, &s.base, SLUG, &s.public, None);
    assert!(a.problems.is_empty(), "{:?}", a.problems);
    assert_eq!(a.tally.counted, 3);
    assert_eq!(a.tally.count, api.count().await);

    // Killed without warning, started again: the same tree, extended.
    server.kill9();
    server.restart();
    sign_and_confirm(&api, &outbox, "journal3@example.org").await;
    wait_for_size(&public, 4, &server);
    let (_, a) = audit_log(&public, &s.base, SLUG, &s.public, Some(first));
    assert!(a.problems.is_empty(), "{:?}", a.problems);
    assert_eq!((a.tally.count, api.count().await), (4, 4));
    let secret = key.seed_base64();
    assert!(
        !server.log().contains(&secret),
        "the log key in the server's log"
    );
    for entry in walkdir::WalkDir::new(&public).into_iter().flatten() {
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&secret),
                "the log key in {}",
                entry.path().display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_key_that_is_not_the_published_one_refuses_to_start() {
    let moto = Moto::start().expect("moto starts (run scripts/test.sh to create the venv)");
    let s = site(&moto, &LogKey::generate(), &LogKey::generate()).await;
    let c = config(&s);
    let out = FunctionServer::command(&c).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with the wrong key:\n{err}");
    assert!(
        err.contains("CAHIER_LOG_KEY is not the key of the manifest's site.log_public_key"),
        "{err}"
    );
    assert!(!s.dir.path().join("public").join(SLUG).exists());
}
