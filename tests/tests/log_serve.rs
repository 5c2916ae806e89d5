//! The transparency log wired into `cahier serve` (SQLite): confirmations, an erasure and an
//! organizer's invalidation go into the log in the store's transactions, the background task
//! integrates them into `.cahier/log/`, the dev server serves them at `/<slug>/log/`, and the
//! real `cahier log verify` recomputes the count the count endpoint shows, with the reasons.

use cahier_tests::flow::Api;
use cahier_tests::outbox::{read_dir, token};
use cahier_tests::serve::{copy_example_site, CahierServe};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SLUG: &str = "noel-sans-geant";

/// A valid signature of the example petition (it asks for a postcode).
async fn sign(api: &Api, email: &str) -> reqwest::Response {
    let captcha = api.captcha().await;
    api.sign_json(&serde_json::json!({
        "name": "Camille Essai", "email": email, "consent": true, "postcode": "69001",
        "h-captcha-response": captcha, "lang": "fr", "fill_ms": 6000,
    }))
    .await
}

/// The checkpoint's size, once it is served.
async fn checkpoint_size(http: &reqwest::Client, s: &CahierServe) -> Option<u64> {
    let res = http
        .get(s.url(&format!("/{SLUG}/log/checkpoint")))
        .send()
        .await
        .ok()?;
    if res.status() != 200 {
        return None;
    }
    let text = res.text().await.ok()?;
    text.lines().nth(1)?.parse().ok()
}

async fn wait_for_size(http: &reqwest::Client, s: &CahierServe, size: u64) -> Duration {
    let start = Instant::now();
    loop {
        if checkpoint_size(http, s).await == Some(size) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the log did not reach {size} entries (at {:?}):\n{}",
            checkpoint_size(http, s).await,
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The mail sent to `to` (waiting for it, bounded).
async fn mail_to(s: &CahierServe, to: &str) -> cahier_tests::outbox::ReadMail {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = read_dir(&s.outbox())
            .into_iter()
            .find(|m| m.to.contains(to))
        {
            return m;
        }
        assert!(Instant::now() < deadline, "no mail to {to}:\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cahier(root: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(cahier_tests::server::cahier_binary())
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("CAHIER_SECRETS_FILE")
        .env_remove("CAHIER_STORE")
        .env_remove("CAHIER_PEPPER")
        .output()
        .expect("running cahier");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn verify(root: &Path, s: &CahierServe, state: &Path) -> Value {
    let (ok, out) = cahier(
        root,
        &[
            "log",
            "verify",
            &format!("{}/", s.base),
            "--petition",
            SLUG,
            "--json",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    assert!(ok, "cahier log verify failed:\n{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test]
async fn the_served_log_counts_what_the_store_counts_and_shows_each_uncount_with_its_reason() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    std::fs::create_dir(&root).unwrap();
    copy_example_site(&root);
    let s = CahierServe::start_with(&root, &["--log-interval", "0.2"]);
    let http = reqwest::Client::new();
    let api = Api::new(&s.base).slug(SLUG);

    // The manifest publishes the development log key of .cahier/secrets.toml.
    let manifest: Value = http
        .get(s.url("/api/manifest.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = manifest["site"]["log_public_key"]
        .as_str()
        .expect("site.log_public_key in the manifest")
        .to_string();
    let secrets = std::fs::read_to_string(root.join(".cahier/secrets.toml")).unwrap();
    assert!(secrets.contains("cahier_log_key"), "{secrets}");
    assert!(
        !secrets.contains(&public),
        "the public key is not the secret"
    );

    // Five signatures confirmed, one erased by its signer, one invalidated by the organizer.
    let emails: Vec<String> = (0..5)
        .map(|i| format!("journal{i}@redaction{i}.example"))
        .collect();
    // One after the other: the loopback network's mail budget is earned back by confirming.
    let mut erase_token = None;
    for e in &emails {
        assert_eq!(sign(&api, e).await.status(), 202, "{}", s.log());
        let m = mail_to(&s, e).await;
        let t = token(&m.text, "confirm").expect("confirm link");
        assert_eq!(api.confirm(&t).await.status(), 200);
        if e.starts_with("journal0@") {
            erase_token = token(&m.text, "erase");
        }
    }
    assert_eq!(api.count().await, 5);
    let t = wait_for_size(&http, &s, 5).await;
    println!("5 confirmations in the log {t:?} after the last one");

    let erase = api
        .post_token("/api/erase", &erase_token.expect("erase link"))
        .await;
    assert_eq!(erase.status(), 200);
    let (ok, out) = cahier(
        &root,
        &[
            "admin",
            "--json",
            "invalidate",
            "--petition",
            SLUG,
            "--email",
            "journal1@redaction1.example",
            "--yes",
        ],
    );
    assert!(ok, "cahier admin invalidate: {out}");
    assert_eq!(api.count().await, 3);
    let t = wait_for_size(&http, &s, 7).await;
    println!("erase and invalidation in the log {t:?} later");

    // The real monitor against the served site.
    let state = dir.path().join("verify-state");
    let report = verify(&root, &s, &state);
    assert_eq!(report["ok"], true, "{report:#}");
    let log = &report["logs"][0];
    assert_eq!(log["petition"], SLUG);
    assert_eq!(log["size"], 7);
    assert_eq!(log["problems"].as_array().unwrap().len(), 0, "{log:#}");
    let tally = &log["tally"];
    assert_eq!(tally["counted"], 5, "{log:#}");
    assert_eq!(tally["uncounted"]["erased"], 1, "{log:#}");
    assert_eq!(tally["uncounted"]["invalidated"], 1, "{log:#}");
    assert_eq!(tally["count"], 3);
    assert_eq!(log["count_endpoint"], 3);
    let conn = rusqlite::Connection::open(root.join(".cahier/signatures.sqlite3")).unwrap();
    let confirmed: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM signatures WHERE petition = ?1 AND status = 'confirmed'",
            [SLUG],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(confirmed, 3, "the log's count is the counted signatures");

    // The log lives outside the built site: a rebuild (its atomic swap of .cahier/public)
    // leaves it served, and the monitor sees the same tree extended by nothing.
    // One folder per origin under .cahier/log/.
    let origin = s.base.trim_start_matches("http://").replace(':', "-");
    assert!(root
        .join(format!(".cahier/log/{origin}/{SLUG}/log/checkpoint"))
        .is_file());
    assert!(!root.join(format!(".cahier/public/{SLUG}/log")).exists());
    let page = root.join(format!("content/{SLUG}/index.md"));
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, format!("{text}\n\nÉdité.\n")).unwrap();
    s.wait_log("rebuilt in", Duration::from_secs(30));
    assert_eq!(checkpoint_size(&http, &s).await, Some(7));
    let again = verify(&root, &s, &state);
    assert_eq!(again["ok"], true, "{again:#}");
    assert_eq!(again["logs"][0]["previous_size"], 7);
    // One more confirmation after the rebuild grows the same log.
    assert_eq!(
        sign(&api, "journal9@redaction9.example").await.status(),
        202
    );
    let mail = mail_to(&s, "journal9@redaction9.example").await;
    api.confirm(&token(&mail.text, "confirm").unwrap()).await;
    wait_for_size(&http, &s, 8).await;
    let last = verify(&root, &s, &state);
    assert_eq!(last["ok"], true, "{last:#}");
    assert_eq!(last["logs"][0]["tally"]["count"], 4);
    // Nothing of the log's hidden folder is served.
    let tmp = http
        .get(s.url(&format!("/{SLUG}/log/.tmp/")))
        .send()
        .await
        .unwrap();
    assert_eq!(tmp.status(), 404);
    println!("whole test: {:?}", started.elapsed());
}
