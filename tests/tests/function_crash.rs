//! Crash test: sign and confirm under load against the real binary, kill -9 it mid-flight,
//! restart, and find every signature whose confirmation was answered 200, with a counter equal
//! to the confirmed records.

use cahier_function::token::TokenKind;
use cahier_tests::fixture::SLUG;
use cahier_tests::server::Fixture;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WORKERS: usize = 12;
const PER_WORKER: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirmed_signatures_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Fixture::start(dir.path(), None, &["--trusted-proxies", "127.0.0.1"]);
    let http = reqwest::Client::new();
    let base = f.server.base.clone();
    let v: Value = http
        .post(format!(
            "{base}/api/__dev/captcha?n={}",
            WORKERS * PER_WORKER
        ))
        .json(&json!({"sitekey": cahier_function::captcha::dev::DEV_SITEKEY}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let captchas: Vec<String> = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let captchas = Arc::new(captchas);
    let confirmed: Arc<Mutex<Vec<String>>> = Arc::default();
    let far = cahier_function::now() + 3600;
    let tokens: Arc<Vec<Vec<(String, String)>>> = Arc::new(
        (0..WORKERS)
            .map(|w| {
                (0..PER_WORKER)
                    .map(|i| {
                        let email = format!("crash.w{w}.i{i}@gmail.com");
                        let canonical = format!("crashw{w}i{i}@gmail.com");
                        (email, f.token_for(TokenKind::Confirm, &canonical, far))
                    })
                    .collect()
            })
            .collect(),
    );
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (http, base, captchas, confirmed, tokens) = (
            http.clone(),
            base.clone(),
            captchas.clone(),
            confirmed.clone(),
            tokens.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_WORKER {
                let (email, token) = &tokens[w][i];
                let sign = http
                    .post(format!("{base}/api/petitions/{SLUG}/sign"))
                    .header("x-forwarded-for", format!("10.{w}.{i}.1"))
                    .json(
                        &json!({"name": format!("Crash {w} {i}"), "email": email, "consent": "yes",
                                  "h-captcha-response": captchas[w * PER_WORKER + i]}),
                    )
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                match sign {
                    Ok(r) if r.status() == 202 => {}
                    Ok(r) => panic!("sign answered {}", r.status()),
                    Err(_) => return, // the server is gone
                }
                let res = http
                    .post(format!("{base}/api/confirm"))
                    .json(&json!({ "token": token }))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 200 => confirmed.lock().unwrap().push(email.clone()),
                    Ok(r) => panic!("confirm answered {}", r.status()),
                    Err(_) => return,
                }
            }
        }));
    }
    // Let the load build up, then pull the plug.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while confirmed.lock().unwrap().len() < 150 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.server.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    let confirmed = confirmed.lock().unwrap().clone();
    assert!(
        confirmed.len() >= 100,
        "only {} confirmations before the kill",
        confirmed.len()
    );
    assert!(
        confirmed.len() < WORKERS * PER_WORKER,
        "the kill came after all the work"
    );

    f.server.restart();
    let v: Value = http
        .get(format!("{base}/api/petitions/{SLUG}/count"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let count = v["count"].as_u64().unwrap();
    let conn = rusqlite::Connection::open(&f.db).unwrap();
    let records: u64 = conn
        .query_row(
            "SELECT COUNT(*) FROM signatures WHERE petition = ?1 AND status = 'confirmed'",
            [SLUG],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, records, "the counter equals the confirmed records");
    assert!(count >= confirmed.len() as u64);
    let hasher = cahier_function::crypto::Hasher::new(&f.secrets.pepper).unwrap();
    for email in &confirmed {
        let canonical = cahier_function::email::canonicalize(email)
            .unwrap()
            .canonical;
        let status: String = conn
            .query_row(
                "SELECT status FROM signatures WHERE petition = ?1 AND email_hash = ?2",
                [SLUG, &hasher.email(&canonical)],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("{email} confirmed (200) but missing after kill -9: {e}"));
        assert_eq!(status, "confirmed", "{email}");
    }
    eprintln!(
        "{} confirmations answered 200 before kill -9; {records} confirmed records after restart",
        confirmed.len()
    );
}
