//! `cahier admin mail` (the real binary) on the example site under `cahier serve`, sending
//! through a real SMTP sink (aiosmtpd) with DKIM: a dry run sends nothing; a run killed with -9
//! in the middle and run again mails every subscriber once, in their language, and nobody
//! else; the signature verifies with an independent DKIM implementation; an RFC 8058
//! one-click POST to the function unsubscribes (a GET does not), and the next update skips
//! that address.

use base64::Engine;
use cahier_function::crypto::{PersonalData, Sealer};
use cahier_function::store::sqlite::SqliteStore;
use cahier_function::store::Store;
use cahier_tests::conformance;
use cahier_tests::outbox::ReadMail;
use cahier_tests::site::{Site, PETITION};
use cahier_tests::smtp::SmtpSink;
use mail_auth::DkimResult;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SUBSCRIBERS: usize = 40;
const SELECTOR: &str = "cahier1";
const SENDER_DOMAIN: &str = "petitions.example";

fn subscriber(i: usize) -> String {
    format!("abonne{i}@example.org")
}

/// The site's development secrets (`cahier serve` wrote them).
fn dev_secrets(root: &Path) -> (Vec<u8>, String) {
    let text = std::fs::read_to_string(root.join(".cahier/secrets.toml")).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    let pepper = hex::decode(t["cahier_pepper"].as_str().unwrap()).unwrap();
    (
        pepper,
        t["cahier_age_recipient"].as_str().unwrap().to_string(),
    )
}

/// Confirmed subscribers in French and English, and the ones an update must never reach.
async fn seed(root: &Path) -> Vec<String> {
    let (pepper, recipient) = dev_secrets(root);
    let hasher = cahier_function::crypto::Hasher::new(&pepper).unwrap();
    let sealer = Sealer::new(&recipient).unwrap();
    let store = SqliteStore::open(&root.join(".cahier/signatures.sqlite3")).unwrap();
    let now = conformance::now();
    let add = |email: String, lang: &str, newsletter: bool| {
        let mut sig = conformance::signature(PETITION, &hasher.email(&email), now);
        sig.sealed = sealer
            .seal(&PersonalData {
                name: "Abonné".into(),
                email,
                fields: BTreeMap::new(),
                lang: lang.into(),
                text_sha256: None,
                consent_sha256: None,
            })
            .unwrap();
        sig.lang = lang.into();
        sig.newsletter = newsletter;
        sig
    };
    let mut subscribed = Vec::new();
    for i in 0..SUBSCRIBERS {
        let lang = if i % 4 == 0 { "en" } else { "fr" };
        let sig = add(subscriber(i), lang, true);
        store.sign(&sig).await.unwrap();
        store.confirm(PETITION, &sig.email_hash, now).await.unwrap();
        subscribed.push(subscriber(i));
    }
    // Confirmed without the newsletter box; pending; held; erased.
    let no_news = add("sans-nouvelles@example.org".into(), "fr", false);
    store.sign(&no_news).await.unwrap();
    store
        .confirm(PETITION, &no_news.email_hash, now)
        .await
        .unwrap();
    let pending = add("en-attente@example.org".into(), "fr", true);
    store.sign(&pending).await.unwrap();
    let mut held = add("retenu@example.org".into(), "fr", true);
    held.hold_reason = Some("protected_domain".into());
    store.sign(&held).await.unwrap();
    store
        .confirm(PETITION, &held.email_hash, now)
        .await
        .unwrap();
    let erased = add("efface@example.org".into(), "fr", true);
    store.sign(&erased).await.unwrap();
    store
        .confirm(PETITION, &erased.email_hash, now)
        .await
        .unwrap();
    store
        .erase(PETITION, &erased.email_hash, now)
        .await
        .unwrap();
    subscribed
}

struct Campaign {
    root: PathBuf,
    body: PathBuf,
    mailer: String,
}

impl Campaign {
    fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(cahier_tests::server::cahier_binary());
        c.arg("--root")
            .arg(&self.root)
            .args(["admin", "--json", "mail", "--petition", PETITION])
            .args(["--subject", "Nouvelles", "--to", "newsletter", "--body"])
            .arg(&self.body)
            .arg("--identity")
            .arg(self.root.join(".cahier/age-identity.txt"))
            .args(["--mailer", &self.mailer])
            .args(extra)
            .env_remove("CAHIER_STORE")
            .env_remove("CAHIER_PEPPER")
            .env_remove("CAHIER_SECRETS_FILE")
            .env_remove("CAHIER_MAILER")
            .env_remove("CAHIER_DKIM_KEY");
        c
    }

    /// Runs to the end; its JSON summary.
    fn run(&self, extra: &[&str]) -> (bool, Value) {
        let out = self
            .command(extra)
            .output()
            .expect("running cahier admin mail");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let v = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.success(), v)
    }
}

fn to_counts(mails: &[ReadMail]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for mail in mails {
        *m.entry(mail.to.clone()).or_default() += 1;
    }
    m
}

/// The token of an update's `List-Unsubscribe: <…/api/unsubscribe?t=TOKEN>`.
fn token(mail: &ReadMail) -> String {
    let header = mail.list_unsubscribe.as_deref().expect("List-Unsubscribe");
    assert!(header.starts_with('<') && header.ends_with('>'), "{header}");
    assert!(
        header.starts_with("<https://petitions.example.org/api/unsubscribe?t="),
        "the function's URL from the site's configuration: {header}"
    );
    header
        .trim_end_matches('>')
        .split_once("?t=")
        .unwrap()
        .1
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_reaches_every_subscriber_once_across_a_crash_and_one_click_unsubscribes() {
    let site = Site::start().await.unwrap();
    let subscribed = seed(&site.root).await;
    let work = tempfile::tempdir().unwrap();
    let body = work.path().join("update.md");
    std::fs::write(
        &body,
        "+++\nsubject = \"Audience le 3 mars\"\n+++\nLe conseil nous **reçoit** le 3 mars.\n\n[Le compte rendu](https://petitions.example.org/compte-rendu/)\n",
    )
    .unwrap();
    std::fs::write(
        work.path().join("update.en.md"),
        "---\nsubject: Hearing on 3 March\n---\nThe council **hears** us on 3 March.\n",
    )
    .unwrap();
    let seed_bytes: [u8; 32] = rand::random();
    let key_file = work.path().join("dkim.key");
    std::fs::write(
        &key_file,
        base64::engine::general_purpose::STANDARD.encode(seed_bytes),
    )
    .unwrap();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed_bytes)
        .verifying_key()
        .to_bytes();
    let record = format!(
        "v=DKIM1; k=ed25519; p={}",
        base64::engine::general_purpose::STANDARD.encode(public)
    );
    let sink = SmtpSink::start();
    let campaign = Campaign {
        root: site.root.clone(),
        body: body.clone(),
        mailer: format!(
            "smtp://127.0.0.1:{}?tls=none&from=nouvelles%40{SENDER_DOMAIN}&dkim_selector={SELECTOR}&dkim_key={}",
            sink.port,
            key_file.display()
        ),
    };

    // A dry run counts and sends nothing.
    let (ok, dry) = campaign.run(&["--dry-run"]);
    assert!(ok, "{dry}");
    assert_eq!(dry["recipients"], SUBSCRIBERS, "{dry}");
    assert_eq!(dry["per_language"]["en"], SUBSCRIBERS / 4, "{dry}");
    // The erased one is not confirmed any more: never a recipient.
    let sample = dry["sample"]["text"].as_str().unwrap();
    assert!(
        sample.contains("on 3 March") || sample.contains("le 3 mars"),
        "{dry}"
    );
    assert!(sink.mails().is_empty());

    // Killed with -9 in the middle.
    let mut child = campaign
        .command(&["--rate", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.mails().len() < 10 {
        assert!(Instant::now() < deadline, "no 10 mails within 60 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = sink.mails().len();
    assert!(before < SUBSCRIBERS, "killed in the middle: {before}");

    // The rerun finishes the campaign without a second copy for anyone.
    let (ok, v) = campaign.run(&["--rate", "50"]);
    assert!(ok, "{v}");
    let interrupted = v["interrupted"].as_u64().unwrap() as usize;
    assert!(interrupted <= 1, "{v}");
    assert_eq!(
        v["sent"].as_u64().unwrap() as usize
            + v["already_sent"].as_u64().unwrap() as usize
            + interrupted,
        SUBSCRIBERS,
        "{v}"
    );
    assert!(
        v["already_sent"].as_u64().unwrap() as usize >= before - 1,
        "{v}"
    );
    let mails = sink.mails();
    let counts = to_counts(&mails);
    assert!(counts.values().all(|n| *n == 1), "nobody twice: {counts:?}");
    let missing: Vec<&String> = subscribed
        .iter()
        .filter(|s| !counts.contains_key(*s))
        .collect();
    assert!(
        missing.len() <= interrupted,
        "only one interrupted by the kill may lack the mail: {missing:?}"
    );
    assert!(
        counts.keys().all(|to| subscribed.contains(to)),
        "never the unsubscribed, pending, held or erased: {counts:?}"
    );
    // A third run of the same campaign sends nothing.
    let (ok, again) = campaign.run(&["--rate", "50"]);
    assert!(ok && again["sent"] == 0, "{again}");
    assert_eq!(sink.mails().len(), mails.len());

    // Each in their language, with the one-click headers, DKIM-signed.
    let in_lang = |subject: &'static str| mails.iter().filter(move |m| m.subject == subject);
    assert!(in_lang("Hearing on 3 March").all(|m| subscribed
        .iter()
        .position(|s| *s == m.to)
        .unwrap()
        % 4
        == 0));
    let fr = in_lang("Audience le 3 mars").next().unwrap();
    let en = in_lang("Hearing on 3 March").next().unwrap();
    assert_eq!(fr.subject, "Audience le 3 mars");
    assert!(
        fr.text.contains("Vous recevez ce message parce que"),
        "{}",
        fr.text
    );
    assert!(fr.html.contains("<strong>reçoit</strong>"), "{}", fr.html);
    assert!(
        fr.text
            .contains("https://petitions.example.org/unsubscribe/#t="),
        "{}",
        fr.text
    );
    assert_eq!(en.subject, "Hearing on 3 March");
    assert!(en.text.contains("You receive this because"), "{}", en.text);
    assert!(
        en.text
            .contains("https://petitions.example.org/en/unsubscribe/#t="),
        "{}",
        en.text
    );
    assert_eq!(
        fr.list_unsubscribe_post.as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        fr.auto_submitted.is_none(),
        "an update is written by a person"
    );
    assert!(fr
        .message_id
        .as_deref()
        .unwrap()
        .ends_with(&format!("@{SENDER_DOMAIN}")));
    let verdict = cahier_tests::dkim::verify(&fr.raw, SELECTOR, SENDER_DOMAIN, &record).await;
    assert_eq!(verdict, vec![DkimResult::Pass], "DKIM by mail-auth");
    let tampered = String::from_utf8(fr.raw.clone()).unwrap().replacen(
        "List-Unsubscribe: <",
        "List-Unsubscribe: <https://evil.example/?",
        1,
    );
    let verdict =
        cahier_tests::dkim::verify(tampered.as_bytes(), SELECTOR, SENDER_DOMAIN, &record).await;
    assert!(
        verdict.iter().all(|r| !matches!(r, DkimResult::Pass)),
        "the unsubscribe header is signed: {verdict:?}"
    );

    // A GET (a link scanner) only shows the page; the provider's one-click POST unsubscribes.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (scanned, leaving) = (&mails[0], &mails[1]);
    let res = http
        .get(site.url(&format!("/api/unsubscribe?t={}", token(scanned))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .contains("/unsubscribe/#t="));
    let one_click = |t: String| {
        http.post(site.url(&format!("/api/unsubscribe?t={t}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
    };
    let res = one_click(token(leaving)).await.unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let mut forged = token(leaving);
    forged.replace_range(10..11, if &forged[10..11] == "A" { "B" } else { "A" });
    assert_eq!(one_click(forged).await.unwrap().status(), 400);
    // Without the one-click body it is not RFC 8058's POST.
    let res = http
        .post(site.url(&format!("/api/unsubscribe?t={}", token(scanned))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // The next update: everyone once more but the one who left.
    let body2 = work.path().join("second.md");
    std::fs::write(&body2, "La pétition est remise au maire.\n").unwrap();
    let second = Campaign {
        body: body2,
        ..campaign
    };
    let (ok, v) = second.run(&["--rate", "50"]);
    assert!(ok, "{v}");
    assert_eq!(v["suppressed"], 1, "{v}");
    assert_eq!(v["sent"].as_u64().unwrap() as usize, SUBSCRIBERS - 1, "{v}");
    let counts = to_counts(&sink.mails());
    assert_eq!(counts[&leaving.to], 1, "not mailed after unsubscribing");
    assert_eq!(counts[&scanned.to], 2, "a GET does not unsubscribe");
}
