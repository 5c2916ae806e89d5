//! The real `cahier-function` binary with the production backends, both on one moto server:
//! `--store dynamodb:TABLE?endpoint=..` and `--mailer ses:?endpoint=..`. Sign → the mail is
//! read back from moto's SES → confirm by POST → the count, and the records in the table.
//! Fails (never skips) if moto cannot start.

use cahier_tests::fixture::{self, SLUG};
use cahier_tests::moto::{fresh_table, ses_mails, Moto};
use cahier_tests::outbox::{token, ReadMail};
use cahier_tests::server::{FunctionServer, ServerConfig};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FROM: &str = "petitions@example.org";

/// Waits (at most 10 s) until moto's SES holds `n` mails; returns them, parsed.
fn wait_for_messages(moto: &Moto, n: usize) -> Vec<ReadMail> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sent = ses_mails(moto).expect("moto data");
        if sent.len() >= n || Instant::now() > deadline {
            return sent;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_mail_confirm_count_on_dynamodb_and_ses() {
    let moto = Moto::start().expect("moto starts (run scripts/test.sh to create the venv)");
    let endpoint = moto.endpoint();
    // SES refuses an unverified sender, as in production: verify the identity first.
    let conf = moto.sdk_config().await;
    aws_sdk_sesv2::Client::new(&conf)
        .create_email_identity()
        .email_identity(FROM)
        .send()
        .await
        .expect("sender identity verified in moto");

    let dir = tempfile::tempdir().unwrap();
    let (secrets, _identity) = fixture::secrets();
    let port = cahier_tests::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let manifest = fixture::manifest(&base, secrets.age_recipient.as_deref().unwrap());
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let table = fresh_table("cahier-e2e");
    let mut env = fixture::secrets_env(&secrets);
    // Dummy credentials for moto; no instance-metadata lookup leaves loopback.
    env.extend(
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let server = FunctionServer::start(ServerConfig {
        dir: dir.path().to_path_buf(),
        port,
        manifest: manifest_path,
        store: format!("dynamodb:{table}?endpoint={endpoint}&region=us-east-1"),
        mailer: format!(
            "ses:?endpoint={endpoint}&region=us-east-1&from=Collectif%20Test%20%3C{}%3E",
            FROM.replace('@', "%40")
        ),
        env,
        args: Vec::new(),
    });

    let http = reqwest::Client::new();
    let count = || async {
        let v: Value = http
            .get(server.url(&format!("/api/petitions/{SLUG}/count")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["count"].as_u64().expect("count is a number")
    };
    let captcha: Value = http
        .post(server.url("/api/__dev/captcha"))
        .json(&json!({"sitekey": cahier_function::captcha::dev::DEV_SITEKEY}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = http
        .post(server.url(&format!("/api/petitions/{SLUG}/sign")))
        .header("origin", &base)
        .json(&json!({
            "name": "Camille Nuage", "email": "Camille.Nuage@example.org", "consent": true,
            "h-captcha-response": captcha["token"], "lang": "fr", "fill_ms": 6000,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", server.log());
    assert_eq!(
        res.bytes().await.unwrap().as_ref(),
        br#"{"status":"pending"}"#
    );

    // The confirmation mail went through SES, from the verified identity under the
    // collective's name, to the canonical address (one identity per mailbox: the case folded),
    // with the headers receiving servers look for.
    let sent = wait_for_messages(&moto, 1);
    assert_eq!(sent.len(), 1, "one SES message; log:\n{}", server.log());
    let msg = &sent[0];
    assert_eq!(msg.to, "camille.nuage@example.org", "{msg:?}");
    assert_eq!(msg.from, format!("Collectif Test <{FROM}>"), "{msg:?}");
    assert_eq!(msg.reply_to.as_deref(), Some("contact@petitions.example"));
    assert_eq!(msg.auto_submitted.as_deref(), Some("auto-generated"));
    let id = msg.message_id.as_deref().expect("a Message-ID");
    assert!(id.ends_with("@example.org"), "on the sender's domain: {id}");
    let body = &msg.text;
    assert!(
        body.contains(&format!("{base}/{SLUG}/confirm/#t=")),
        "confirm link in the mail: {msg:?}"
    );
    let confirm = token(body, "confirm").expect("confirm token in the SES body");

    // Pending in DynamoDB: one signature item, nothing counted yet, even after a GET.
    assert_eq!(count().await, 0);
    let res = http
        .get(server.url(&format!("/api/confirm?t={confirm}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(count().await, 0, "a GET confirms nothing");

    let res = http
        .post(server.url("/api/confirm"))
        .json(&json!({ "token": confirm }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", server.log());
    assert_eq!(count().await, 1);
    // Confirming again is idempotent: still one.
    let res = http
        .post(server.url("/api/confirm"))
        .json(&json!({ "token": confirm }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(count().await, 1);

    // The table the binary created holds one confirmed signature, no plaintext address, and
    // its count in a shard item.
    let items = aws_sdk_dynamodb::Client::new(&conf)
        .scan()
        .table_name(&table)
        .send()
        .await
        .expect("scan of the table the binary created");
    let attr = |item: &std::collections::HashMap<_, aws_sdk_dynamodb::types::AttributeValue>,
                name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let sigs: Vec<_> = items
        .items()
        .iter()
        .filter(|i| attr(i, "sk") == "sig")
        .collect();
    assert_eq!(sigs.len(), 1);
    assert_eq!(attr(sigs[0], "status"), "confirmed");
    assert_eq!(attr(sigs[0], "petition"), SLUG);
    let shards: i64 = items
        .items()
        .iter()
        .filter(|i| attr(i, "sk") == "count")
        .filter_map(|i| i.get("n")?.as_n().ok()?.parse::<i64>().ok())
        .sum();
    assert_eq!(shards, 1);
    let dump = format!("{:?}", items.items());
    assert!(
        !dump.to_lowercase().contains("camille"),
        "no plaintext name or e-mail in the table"
    );
}
